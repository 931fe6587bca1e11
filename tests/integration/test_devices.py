#!/usr/bin/env python3
"""status --devices (issue 25): each recorded task's devices from
ListOtaTaskExecutions, against the emulator's per-device outcomes.

- a task by name: its failed and timed-out things first, then the rest, each
  with its retry attempt and last update;
- 5,000 devices behind a target query: read in pages of 1,000 (MaxResults),
  the counts whole, the first 50 of each status shown and the rest counted
  (--all shows them all);
- a rollout's devices wave by wave; addresses choose what is shown; a
  configuration, an unknown name and an ADDRESS without --devices refused;
- text, json and markdown.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program  # noqa: E402
from harness import Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
tmp = tempfile.mkdtemp(prefix="otr-devices-")
repo, state = os.path.join(tmp, "fleet"), os.path.join(tmp, "state.json")
os.makedirs(os.path.join(repo, "manifests"))
FILES = {
    "plugs.yaml": "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: plugs}\n"
                  f"spec: {{S3Url: s3://fw/p.json, OtaType: ONE_TIME, Target: [{ARN}plugA, {ARN}plugB, {ARN}plugC]}}\n",
    "meters.yaml": "apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: meters}\n"
                   "spec: {S3Url: s3://fw/m.json, OtaType: ONE_TIME, OtaTargetQueryString: 'thingType:Meter'}\n",
    "push.yaml": "apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata: {name: push}\n"
                 "spec: {Name: Push}\n",
    "fw.yaml": "apiVersion: ota-runner/v1\nkind: OtaRollout\nmetadata: {name: fw}\nspec:\n"
               "  task: {S3Url: s3://fw/t.json, OtaType: ONE_TIME}\n  gate: {minFinished: 1, soak: 0s}\n"
               "  holdAfter: canary\n  waves:\n"
               f"    - {{name: canary, Target: [{ARN}therm1]}}\n"
               "    - {name: everyone, OtaTargetQueryString: 'thingType:Thermostat'}\n",
}
for name, text in FILES.items():
    with open(os.path.join(repo, "manifests", name), "w") as f:
        f.write(text)
subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
subprocess.run(["git", "-C", repo, "commit", "-qm", "fleet"], check=True, env=GIT_ENV)
outcomes = {"things": {ARN + "plugB": "FAILED", ARN + "plugC": "TIMED_OUT"},
            "queries": {"thingType:Meter": {"share": 0.9}}}


def run(emu, *args):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state), cwd=repo,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


with Emulator("--tick", "0", "--query-things", "5000", "--log-bodies", "--outcomes", json.dumps(outcomes)) as emu:
    rc, out, err = run(emu, "apply", "--auto-approve")
    check(rc == 0, "the fleet is applied", out + err)

    # ---- text: failing first, each device with its attempt and last update
    n = len(emu.log())
    rc, out, err = run(emu, "status", "--devices")
    plugs = out.split("plugs  task ")[1].split("\n\n")[0] if "plugs  task " in out else ""
    lines = [l.split() for l in plugs.splitlines()[1:]]
    check(rc == 0 and plugs.split("\n")[0].endswith("3 devices, 1 FAILED, 1 TIMED_OUT, 1 SUCCEEDED")
          and [l[0] for l in lines] == ["FAILED", "plugB", "TIMED_OUT", "plugC", "SUCCEEDED", "plugA"]
          and all(l[1:3] == ["attempt", "0"] and l[3].endswith("Z") for l in lines if len(l) == 4),
          "text: a task's devices by status, failed and timed out first, with attempt and last update", out + err)
    meters = out.split("meters  task ")[1].split("\n\n")[0] if "meters  task " in out else ""
    check("5000 devices, 500 FAILED, 4500 SUCCEEDED" in meters and "... and 450 more (--all shows them)" in meters
          and "... and 4450 more (--all shows them)" in meters and len(meters.splitlines()) == 1 + 2 * 52,
          "text: 5,000 devices counted whole, the first 50 of each status shown", meters[:600])
    pages = [e for e in emu.log()[n:] if e["op"] == "ListOtaTaskExecutions"]
    meter_pages = [e for e in pages if "thing" in json.dumps(e) or True]
    check(len(pages) == 1 + 5 + 1 and all("MaxResults=1000" in (e.get("query") or "") for e in pages),
          "read in pages of 1,000: one for the plugs, five for the meters, one for the canary",
          json.dumps(pages)[:1500])
    check("OtaRollout/fw wave canary  task " in out and "therm1" in out,
          "a rollout's devices are shown by wave", out)

    # ---- json and --all
    rc, out, err = run(emu, "status", "--devices", "meters", "--output", "json")
    d = json.loads(out or "[]")
    check(rc == 0 and len(d) == 1 and d[0]["address"] == "OtaTask/meters" and d[0]["total"] == 5000
          and d[0]["counts"] == {"FAILED": 500, "SUCCEEDED": 4500} and len(d[0]["devices"]) == 100
          and d[0]["notShown"] == 4900 and d[0]["devices"][0]["status"] == "FAILED"
          and set(d[0]["devices"][0]) == {"managedThingId", "status", "retryAttempt", "executionNumber",
                                          "lastUpdatedAt"},
          "json: an address chooses the task; counts, the first 50 of each status, how many are not shown",
          out[:800] + err)
    rc, out, err = run(emu, "status", "--devices", "meters", "--output", "json", "--all")
    d = json.loads(out or "[]")
    ids = [x["managedThingId"] for x in d[0]["devices"]] if d else []
    check(rc == 0 and len(ids) == 5000 and len(set(ids)) == 5000 and d[0]["notShown"] == 0,
          "--all: every one of the 5,000 devices, each once", out[:300] + err)
    rc, out, err = run(emu, "status", "--devices", "OtaRollout/fw", "--output", "json")
    d = json.loads(out or "[]")
    check(rc == 0 and [(x["wave"], x["total"]) for x in d] == [("canary", 1)],
          "json: a rollout's started waves, each with its name", out + err)

    # ---- markdown
    rc, out, err = run(emu, "status", "--devices", "plugs", "--output", "markdown")
    check(rc == 0 and "#### plugs (task `" in out and "| FAILED | `plugB` | 0 |" in out
          and out.index("plugB") < out.index("plugC") < out.index("plugA"),
          "markdown: a table per task, failed first", out + err)

    # ---- what is refused
    for args, want in ((["--devices", "nosuch"], "nothing named nosuch in the state"),
                       (["--devices", "OtaTaskConfiguration/push"], "has no devices; name a task or a rollout"),
                       (["plugs"], "an ADDRESS goes with --devices"),
                       (["--all"], "--all goes with --devices")):
        rc, out, err = run(emu, "status", *args)
        check(rc == 1 and want in err and not out, f"refused: status {' '.join(args)}", out + err)
finish()
