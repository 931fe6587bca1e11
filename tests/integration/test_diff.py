#!/usr/bin/env python3
"""ota-runner diff BASE [HEAD] (issue 17): two commits compared with no state
and no network (no credentials at all in its environment).

- every kind of change on the sample fleet: a Description (in place), a
  Target (a replace), a configuration edit (a replace that moves the two
  tasks referring to it), a removed and an added manifest, a rollout's
  holdAfter moved on (a promotion) and a wave added; a rollout's task
  edited at the same revision refused, as plan refuses it (issue 28);
- text, json, markdown and github outputs; --detailed-exitcode 0 for the
  same manifests, 2 for changes; a bad ref and a manifest error refused.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, mermaid, program, sample_fleet  # noqa: E402

RUNNER = program("OTA_RUNNER")
tmp = tempfile.mkdtemp(prefix="otr-diff-")
repo = os.path.join(tmp, "fleet")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
ENV.update({"NO_COLOR": "1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true", "HOME": tmp})


def git(*args):
    subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, env=GIT_ENV)


def edit(path, old, new):
    p = os.path.join(repo, path)
    text = open(p).read()
    assert old in text, (path, old)
    open(p, "w").write(text.replace(old, new))


def diff(*args):
    p = subprocess.run([RUNNER, "diff", *args, "--repo", repo], capture_output=True, text=True, env=ENV,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


sample_fleet(repo, rollouts=True)
git("tag", "base")
rc, out, err = diff("base", "--detailed-exitcode")
check(rc == 0 and "No changes: the 8 manifests are the same." in out, "the same commit: no changes, exit 0",
      out + err)

edit("manifests/security/door-lock.yaml", "Door lock firmware 1-9-0 with BLE fixes",
     "Door lock firmware 1-9-0 with NFC fixes")
edit("manifests/energy/smart-plug.yaml", "plug0001", "plug0002")
edit("manifests/configurations/staged-push.yaml", "BaseRatePerMinute: 10", "BaseRatePerMinute: 20")
edit("manifests/rollouts/thermostat-2-5-0.yaml", "holdAfter: early", "holdAfter: everyone")
edit("manifests/rollouts/thermostat-2-5-0.yaml", '      OtaTargetQueryString: "thingType:Thermostat AND attributes.ring:general"\n',
     '      OtaTargetQueryString: "thingType:Thermostat AND attributes.ring:general"\n    - name: stragglers\n'
     '      OtaTargetQueryString: "thingType:Thermostat AND attributes.late:yes"\n')
os.remove(os.path.join(repo, "manifests", "hvac", "hub.yml"))
with open(os.path.join(repo, "manifests", "energy", "meter.yaml"), "w") as f:
    f.write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: meter-1-0-0}\n"
            "spec: {S3Url: s3://fw/meter.json, OtaType: ONE_TIME, OtaTargetQueryString: 'thingType:Meter',"
            " TaskConfigurationRef: staged-push}\n")
git("add", "-A")
git("commit", "-qm", "changes")

rc, out, err = diff("base", "--output", "json", "--detailed-exitcode")
d = json.loads(out) if out.strip() else {}
by = {c["address"]: c for c in d.get("changes", [])}
check(rc == 2 and d["summary"] == {"added": 1, "changed": 5, "inPlace": 3, "replaced": 2, "removed": 1,
                                   "unchanged": 2, "renamed": 0},
      "json: the summary (exit 2)", out + err)
check(by.get("OtaTask/door-lock-1-9-0", {}).get("how") == "update"
      and by["OtaTask/door-lock-1-9-0"]["fields"][0]["field"] == "Description",
      "a Description edit is made in place", json.dumps(by.get("OtaTask/door-lock-1-9-0")))
check(by.get("OtaTask/smart-plug-5-1-0", {}).get("how") == "replace"
      and by["OtaTask/smart-plug-5-1-0"]["fields"][0]["field"] == "Target",
      "a Target edit is a replace", json.dumps(by.get("OtaTask/smart-plug-5-1-0")))
cfg = by.get("OtaTaskConfiguration/staged-push", {})
check(cfg.get("how") == "replace" and cfg["fields"][0]["field"] ==
      "PushConfig.RolloutConfig.ExponentialRolloutRate.BaseRatePerMinute",
      "a configuration edit is a replace, named at the field", json.dumps(cfg))
moved = by.get("OtaTask/thermostat-2-4-1", {})
check(moved.get("how") == "update" and moved["fields"] == [
    {"field": "TaskConfigurationId", "old": "staged-push",
     "new": "(the new id of OtaTaskConfiguration/staged-push)"}],
      "the task that refers to it moves to the new one (in place)", json.dumps(moved))
ro = by.get("OtaRollout/thermostat-2-5-0", {})
check(ro.get("promotes") == "everyone" and "wave stragglers added" in ro.get("reason", "")
      and "holdAfter early -> everyone" in ro.get("reason", ""),
      "a rollout: the wave added and the promotion", json.dumps(ro))
check(by.get("OtaTask/hub-7-0-0", {}).get("change") == "removed"
      and by.get("OtaTask/meter-1-0-0", {}).get("change") == "added", "removed and added")

rc, out, err = diff("base")
check(rc == 0 and "  changed smart-plug-5-1-0  manifests/energy/smart-plug.yaml:3\n"
      "        by a replace: deleted, then created again" in out
      and "promotes thermostat-2-5-0 to everyone" in out
      and "\nDiff: 1 added, 5 changed (3 in place, 2 by a replace), 1 removed; 2 unchanged.\n" in out,
      "text", out + err)
# the configuration it names, in its words: the new one (this change replaces it at 20/min)
meter = ('firmware s3://fw/meter.json · ONE_TIME · the things of "thingType:Meter" · configuration staged-push '
         '("Staged push" · 20/min, ×2.5 per 50 succeeded, at most 200/min · CANCEL when 10% of at least 20 '
         'executed FAILED · times out after 120 min)')
check(meter in out and out.rstrip().endswith("\nDevices: 2 tasks to create send firmware to 1 thing by name and "
                                             "the things of 1 target query."), "text: what an added task sends to whom, and the devices line", out + err)
rc, out, err = diff("base", "--output", "json")
d = json.loads(out) if out.strip() else {}
by = {c["address"]: c for c in d.get("changes", [])}
check(by.get("OtaTask/meter-1-0-0", {}).get("description") == meter
      and "· 1 thing: plug0002" in by.get("OtaTask/smart-plug-5-1-0", {}).get("description", "")
      and "description" not in by.get("OtaTask/door-lock-1-9-0", {}),
      "json: a description for an added and a replaced task, none for an update", out + err)
rc, out, err = diff("base", "HEAD", "--output", "markdown")
md_meter = meter.replace("(", "\\(").replace(")", "\\)")  # a cell's parentheses are escaped
check(f"| added | `meter-1-0-0` | manifests/energy/meter.yaml:1 | {md_meter} |" in out
      and "\n\nDevices: 2 tasks" in out, "markdown: the description in the How column, the devices line", out)
check("**promotes thermostat-2-5-0 to everyone**" in out and "| changed | `smart-plug-5-1-0` |" in out,
      "markdown: the promotion first, then a row per change", out + err)
try:
    charts = mermaid(out)
except ValueError as e:
    charts = []
    print(f"FAIL detail: {e}")
nodes, edges = charts[0] if len(charts) == 1 else ({}, [])
labels = {label.split("<br/>")[0]: (label, cls) for label, cls in nodes.values()}
check(len(charts) == 1 and edges == [("w0", "w1"), ("w1", "w2"), ("w2", "w3")]
      and labels.get("stragglers", ("", ""))[1] == "next" and "<br/>added" in labels["stragglers"][0]
      and labels.get("everyone", ("", ""))[1] == "next" and labels.get("canary", ("", ""))[1] == "waiting"
      and "2 things" in labels["canary"][0],
      "markdown: a valid Mermaid picture of the waves, the added wave and the promotion marked",
      json.dumps(nodes) + json.dumps(edges))
rc, out, err = diff("base", "--output", "github")
check("::warning file=manifests/energy/smart-plug.yaml,line=3,title=ota-runner diff::changed smart-plug-5-1-0"
      in out and "promotes thermostat-2-5-0 to everyone" in out, "github annotations", out + err)
rc, out, err = diff("HEAD", "base", "--output", "json")
back = {c["address"]: c["change"] for c in json.loads(out)["changes"]}
check(back.get("OtaTask/hub-7-0-0") == "added" and back.get("OtaTask/meter-1-0-0") == "removed",
      "the other way round: added and removed swap", out + err)
edit("manifests/rollouts/thermostat-2-5-0.yaml", "    Description: Thermostat firmware 2-5-0",
     "    Description: Thermostat firmware 2-5-0 rebuilt")
git("commit", "-qam", "the rollout's task edited at the same revision")
for output in ("text", "json"):
    rc, out, err = diff("HEAD~1", "--output", output)
    check(rc == 1 and not out and "OtaRollout/thermostat-2-5-0: its task changed at the same metadata.revision, "
          "which plan and apply refuse once the rollout has started; bump metadata.revision" in err,
          f"{output}: a rollout's task edited at the same revision is refused, not counted in place", out + err)
edit("manifests/rollouts/thermostat-2-5-0.yaml", "revision: 1", "revision: 2")
git("commit", "-qam", "the rollout's revision bumped")
rc, out, err = diff("HEAD~2", "--output", "json")
ro = {c["address"]: c for c in json.loads(out or "{}").get("changes", [])}.get("OtaRollout/thermostat-2-5-0", {})
check(rc == 0 and "metadata.revision 1 -> 2: a new rollout, from its first wave" in ro.get("reason", ""),
      "with metadata.revision bumped, the task edit is a new rollout", out + err)
rc, out, err = diff("no-such-ref")
check(rc == 1 and "unknown ref no-such-ref" in err, "an unknown ref", err)
rc, out, err = diff()
check(rc == 1 and "ota-runner diff BASE [HEAD]" in err, "no BASE: says how", err)
# ---- a change too big for a pull-request comment: cut at a row, said so
big = os.path.join(tmp, "big")
subprocess.run(["git", "init", "-q", "-b", "main", big], check=True)
os.makedirs(os.path.join(big, "manifests"))
with open(os.path.join(big, "manifests", "keep.yaml"), "w") as f:
    f.write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: keep}\n"
            "spec: {S3Url: s3://fw/k.json, OtaType: ONE_TIME, OtaTargetQueryString: 'thingType:K'}\n")
subprocess.run(["git", "-C", big, "add", "-A"], check=True, env=GIT_ENV)
subprocess.run(["git", "-C", big, "commit", "-qm", "one"], check=True, env=GIT_ENV)
for i in range(1500):
    with open(os.path.join(big, "manifests", f"fleet-{i:04d}.yaml"), "w") as f:
        f.write(f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {{name: fleet-{i:04d}}}\n"
                f"spec: {{S3Url: s3://fw/{i}.json, OtaType: ONE_TIME, Description: Rollout number {i},"
                f" OtaTargetQueryString: 'thingType:Device AND attributes.batch:{i}'}}\n")
subprocess.run(["git", "-C", big, "add", "-A"], check=True, env=GIT_ENV)
subprocess.run(["git", "-C", big, "commit", "-qm", "many"], check=True, env=GIT_ENV)
for what, cmd, extra in (("diff", [RUNNER, "diff", "HEAD~1", "--repo", big, "--output", "markdown"], {}),
                         ("plan", [RUNNER, "plan", "--repo", big, "--refresh", "none", "--output", "markdown",
                                   "--state", os.path.join(tmp, "big.json")], {"AWS_REGION": "us-east-1"})):
    p = subprocess.run(cmd, capture_output=True, text=True, env={**ENV, **extra}, timeout=120)
    md = p.stdout
    rows = [l for l in md.splitlines() if l.startswith("| ")]
    check(p.returncode == 0 and len(md.encode()) <= 65536 and "Cut to fit a pull-request comment:" in md
          and f"The whole {what} is in the job's log" in md and 100 < len(rows) < 1500
          and md.count("```") % 2 == 0 and md.count("<details>") == md.count("</details>"),
          f"{what}: a 1,500-manifest change is cut under GitHub's 65,536-character comment limit, at a row",
          f"{len(md.encode())} bytes, {len(rows)} rows\n{md[-400:]}{p.stderr}")
    first_table = md.split("<details><summary>", 1)[0]
    total = 1500 if what == "diff" else 1501  # the plan creates the unchanged one too
    check(f"<details><summary>{total - 20} more</summary>" in md and
          len([r for r in first_table.splitlines() if r.startswith("| ") and "---" not in r]) == 21,
          f"{what}: the first 20 rows shown, the others folded in a <details> block (closed where cut)",
          md[:3000])

edit("manifests/energy/meter.yaml", "OtaType: ONE_TIME", "OtaType: WEEKLY")
git("commit", "-qam", "bad")
rc, out, err = diff("base")
check(rc == 1 and "spec.OtaType: must be ONE_TIME or CONTINUOUS" in err and "fix them first" in err,
      "a manifest error at HEAD is refused", err)
finish()
