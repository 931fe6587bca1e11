#!/usr/bin/env python3
"""Staged rollouts (kind OtaRollout, issue 13), driven by repeated applies
against the emulator, whose things end as the test tells it (per-thing
outcomes); durations are seconds and the emulator's tick a fifth of one.

- three waves driven to the end: exactly three CreateOtaTask, in wave order,
  each after its predecessor's things all ended and its soak went by; then no
  changes; status shows every wave done;
- a failing canary halts the rollout: no second create, the halt and its
  reason in plan, status and the state; status --fail-on-halt exits 4;
- a relaxed gate in a new commit lifts the halt and the next wave starts;
- holdAfter holds after its wave; a commit that moves it shows "promotes"
  in the markdown and GitHub plans and releases the next wave;
- a wave whose devices never answer halts at its deadline;
- edits refused once started (the task, a started wave's targets) while a
  wave to come may change;
- a revision bump starts over (the old tasks left alone); --prune with the
  manifest gone deletes every wave's task, newest first;
- SIGKILL at random moments while waves are created: one task per wave, in
  order, never a wave skipped or doubled;
- soaks and deadlines follow the service's clock (its Date header): the
  emulator's clock moved a day ahead rehearses a day-long soak in a second,
  and with the service's clock behind the runner's, a soak is not cut short.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, mermaid, program  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator  # noqa: E402

RUNNER = program("OTA_RUNNER")
SLOW = os.environ.get("OTR_SANITIZED") == "1"
TICK = 0.2
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
CANARY = [ARN + "canary1", ARN + "canary2"]
CONFIG = """apiVersion: ota-runner/v1
kind: OtaTaskConfiguration
metadata: {name: push}
spec:
  Name: Push
  PushConfig:
    AbortConfig:
      AbortConfigCriteriaList:
        - {Action: CANCEL, FailureType: FAILED, MinNumberOfExecutedThings: 10, ThresholdPercentage: 20}
"""


def rollout(gate="{minFinished: 2, maxFailedPercent: 10, soak: 1s}", hold=None, revision=1,
            canary_gate=None, s3="s3://fw/2-5-0.json", everyone="thingType:Thermostat", canary=None):
    lines = ["apiVersion: ota-runner/v1", "kind: OtaRollout", f"metadata: {{name: fw, revision: {revision}}}",
             "spec:", "  task:", f"    S3Url: {s3}", "    OtaType: ONE_TIME", "    TaskConfigurationRef: push",
             f"  gate: {gate}"]
    if hold:
        lines.append(f"  holdAfter: {hold}")
    lines += ["  waves:", "    - name: canary", f"      Target: [{', '.join(canary or CANARY)}]"]
    if canary_gate:
        lines.append(f"      gate: {canary_gate}")
    lines += ["    - name: early", '      OtaTargetQueryString: "thingType:Thermostat AND attributes.ring:early"',
              "    - name: everyone", f'      OtaTargetQueryString: "{everyone}"', "      gate: {soak: 0s}"]
    return "\n".join(lines) + "\n"


class Fleet:
    """A repository, a state file and an emulator of its own."""

    def __init__(self, name, manifest, *emu_args):
        self.dir = tempfile.mkdtemp(prefix=f"otr-rollout-{name}-")
        self.repo = os.path.join(self.dir, "fleet")
        self.state = os.path.join(self.dir, "state.json")
        os.makedirs(os.path.join(self.repo, "manifests"))
        subprocess.run(["git", "init", "-q", "-b", "main", self.repo], check=True)
        self.write("push.yaml", CONFIG)
        self.commit(manifest, "rollout")
        self.emu = Emulator("--tick", str(TICK), *emu_args)

    def write(self, name, text):
        with open(os.path.join(self.repo, "manifests", name), "w") as f:
            f.write(text)

    def commit(self, manifest, msg):
        self.write("fw.yaml", manifest)
        subprocess.run(["git", "-C", self.repo, "add", "-A"], check=True, env=GIT_ENV)
        subprocess.run(["git", "-C", self.repo, "commit", "-qm", msg], check=True, env=GIT_ENV)

    def env(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
        e.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                  "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                  "AWS_ENDPOINT_URL": self.emu.url, "NO_COLOR": "1", "OTA_RUNNER_STATE": self.state})
        return e

    def run(self, *args):
        src = ["--repo", self.repo] if args[0] in ("plan", "apply") else []
        p = subprocess.run([RUNNER, *args, *src], capture_output=True, text=True, env=self.env(), timeout=300)
        return p.returncode, p.stdout, p.stderr

    def creates(self):
        return [e for e in self.emu.log() if e["op"] == "CreateOtaTask" and e["status"] == 201]

    def deletes(self):
        return [e for e in self.emu.log() if e["op"] == "DeleteOtaTask"]

    def record(self):
        if not os.path.exists(self.state):
            return None
        with open(self.state) as f:
            return json.load(f)["rollouts"].get("fw")

    def waves(self):
        """The waves the state records as started, by name."""
        rec = self.record()
        return {w["name"]: w for w in rec["progress"]["waves"]} if rec else {}

    def drive(self, until, limit=30.0, pause=0.25):
        """apply again and again until until() holds (or the limit passes)."""
        deadline = time.time() + limit * (3 if SLOW else 1)
        while time.time() < deadline:
            rc, out, err = self.run("apply")
            if rc != 0:
                return rc, out + err
            if until():
                return 0, out
            time.sleep(pause)
        return -1, "gave up waiting"

    def status(self, *args):
        rc, out, err = self.run("status", "--output", "json", *args)
        rows = json.loads(out) if out.strip() else []
        return rc, next((r for r in rows if r["kind"] == "OtaRollout"), None), err

    def stop(self):
        self.emu.stop()


def epoch(iso):
    return time.mktime(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def wave_states(view):
    return [(w["name"], w["state"]) for w in view["waves"]]


def three_waves():
    f = Fleet("three", rollout())
    try:
        rc, out = f.drive(lambda: len(f.creates()) == 3)
        check(rc == 0, "three waves: driven to the end by applies", out)
        creates = f.creates()
        waves = f.waves()
        tokens = [waves[n]["clientToken"] for n in ("canary", "early", "everyone")] if len(waves) == 3 else []
        check([c["clientToken"] for c in creates] == tokens,
              "three waves: exactly three creates, in wave order, with the waves' tokens",
              json.dumps([c["clientToken"] for c in creates]) + "\n" + json.dumps(tokens))
        tasks = {t["TaskId"]: t for t in f.emu.control("tasks")}
        sizes = {"canary": 2, "early": 4, "everyone": 4}
        ordered = True
        for prev, nxt in (("canary", "early"), ("early", "everyone")):
            task = tasks.get(waves.get(prev, {}).get("taskId"))
            nxt_created = tasks.get(waves.get(nxt, {}).get("taskId"), {}).get("CreatedAt", 0)
            ended = task["CreatedAt"] + TICK * (sizes[prev] + 1) if task else 1e18
            soak = 1 if prev == "canary" else 1  # the rollout's soak (everyone's own is 0s)
            ordered &= nxt_created >= ended and nxt_created >= epoch(waves[prev]["passedAt"]) + soak
        check(ordered, "three waves: each after its predecessor's things ended and its soak went by",
              json.dumps(waves, indent=1))
        rc, out, err = f.run("tokens", "--repo", f.repo, "--output", "json")
        calls = [c["clientToken"] for d in json.loads(out) if d["kind"] == "OtaRollout" for c in d["calls"]]
        check(calls == tokens, "three waves: `tokens` lists the tokens the waves were created with", out + err)
        # everyone passed: nothing more to do
        f.drive(lambda: f.waves().get("everyone", {}).get("passedAt") is not None, limit=10)
        rc, out, err = f.run("plan", "--detailed-exitcode")
        check(rc == 0 and "Rollout fw (revision 1):" in out and "No changes." in out,
              "three waves: then no changes", out + err)
        rc, row, err = f.status()
        check(rc == 0 and row and wave_states(row["rollout"]) == [("canary", "done"), ("early", "done"),
                                                                   ("everyone", "done")],
              "three waves: status shows every wave done", json.dumps(row, indent=1) + err)

        # ---- another name's ids: a wave's task is the rollout's
        early_id = waves["early"]["taskId"]
        rc, out, err = f.run("state", "import", "stolen", early_id)
        check(rc == 1 and f"task {early_id} is already recorded as OtaRollout/fw" in err,
              "a wave's task cannot be imported as an OtaTask", out + err)
        rc, out, err = f.run("state", "import", "OtaRollout/other", early_id)
        check(rc == 1 and "a rollout cannot be imported" in err, "a rollout cannot be imported", out + err)
        with open(f.state) as fh:
            forged = json.load(fh)
        forged["tasks"]["stolen"] = {**forged["rollouts"]["fw"], "taskId": early_id}
        for k in ("progress",):
            forged["tasks"]["stolen"].pop(k)
        forged["tasks"]["stolen"]["spec"] = {"S3Url": "s3://x/y", "OtaType": "ONE_TIME", "Target": ["a"]}
        other = os.path.join(f.dir, "forged.json")
        with open(other, "w") as fh:
            json.dump(forged, fh)
        rc, out, err = f.run("plan", "--state", other)
        check(rc == 1 and f"records task {early_id} under two names" in err and "OtaRollout/fw" in err,
              "a state where a task and a wave share an id is refused", out + err)

        # ---- what has started cannot change under it
        f.commit(rollout(s3="s3://fw/2-5-1.json"), "edit the task")
        rc, out, err = f.run("plan")
        check(rc == 1 and "OtaRollout/fw: its task changed after it started; bump metadata.revision" in err,
              "refused: an edit to the task after the start", out + err)
        f.commit(rollout(canary=[ARN + "canary1"], canary_gate="{minFinished: 1}"), "edit a started wave")
        rc, out, err = f.run("plan")
        check(rc == 1 and "wave canary has started: it stays where it is, with its targets" in err,
              "refused: an edit to a started wave's targets", out + err)
        before = len(f.creates())
        rc, out, err = f.run("apply")
        check(rc == 1 and len(f.creates()) == before, "refused: apply makes no call", out + err)

        # ---- a new revision starts over, the old tasks left alone
        f.commit(rollout(canary=[ARN + "canary1"], canary_gate="{minFinished: 1}", revision=2), "revision 2")
        rc, out, err = f.run("plan")
        check(rc == 0 and "metadata.revision 1 -> 2: starts over with wave canary; the old waves' tasks "
              "keep running, recorded as retired (--prune deletes them)" in out,
              "revision bump: plan says it starts over", out + err)
        rc, out, err = f.run("apply")
        new = f.creates()[before:]
        check(rc == 0 and len(new) == 1 and new[0]["clientToken"] not in tokens and not f.deletes()
              and list(f.waves()) == ["canary"] and f.record()["revision"] == 2,
              "revision bump: one create with a new token, no delete", out + err)
        live = [t for t in f.emu.control("tasks") if not t.get("Deleted")]
        check(len(live) == 4, "revision bump: the old waves' tasks are still there", json.dumps(live)[:500])
    finally:
        f.stop()


def halt_and_resume():
    f = Fleet("halt", rollout(), "--outcomes", json.dumps({"things": {CANARY[1]: "FAILED"}}))
    try:
        rc, out = f.drive(lambda: "halt" in (f.record() or {}).get("progress", {}), limit=15)
        check(rc == 0, "halt: the failing canary halts the rollout", out)
        halt = f.record()["progress"].get("halt", {})
        check(halt.get("wave") == "canary"
              and halt.get("reason") == "50% failed of 2 (at most 10%); first failed devices: canary2"
              and halt.get("counts", {}).get("failed") == 1,
              "halt: recorded in the state with its reason, the failed device it names and the counts",
              json.dumps(halt))
        time.sleep(1.2)  # past the soak, were it not halted
        for _ in range(3):
            f.run("apply")
        check(len(f.creates()) == 1, "halt: no second create", json.dumps(f.creates()))
        rc, out, err = f.run("plan")
        check(rc == 0 and "canary    halted" in out and "halted at wave canary since" in out
              and "50% failed of 2 (at most 10%)" in out, "halt: plan shows the halt and why", out + err)
        rc, row, err = f.status()
        check(rc == 0 and row and wave_states(row["rollout"])[0] == ("canary", "halted"),
              "halt: status shows it", json.dumps(row) + err)
        rc, row, err = f.status("--fail-on-halt")
        check(rc == 4, "halt: status --fail-on-halt exits 4", f"rc={rc} {err}")
        # apply says so too (issue 28): the rollout's block, a warning, the JSON, exit 4 when asked
        rc, out, err = f.run("apply")
        check(rc == 0 and "canary    halted" in out and "Nothing to apply" in out
              and "warning: OtaRollout/fw is halted: this apply moved it no further" in err,
              "halt: apply shows the rollout's standing and warns that it is halted", out + err)
        rc, out, err = f.run("apply", "--fail-on-halt")
        check(rc == 4 and len(f.creates()) == 1, "halt: apply --fail-on-halt exits 4", f"rc={rc} {out}{err}")
        rc, out, err = f.run("apply", "--output", "json")
        j = json.loads(out) if out.startswith("{") else {}
        check(rc == 0 and j.get("halted") == ["OtaRollout/fw"] and j["summary"]["halted"] == 1,
              "halt: apply's JSON names the halted rollout", out + err)
        rc, out, err = f.run("status")
        check(("%-12s %9d %9d %9d %9d  [##########xxxxxxxxxx]" % ("halted", 1, 1, 0, 0)) in out,
              "status: the rollout's own state (halted, not its task's COMPLETED), a bar of the canary's "
              "devices, half succeeded, half failed", out + err)
        rc, row, err = f.status()
        check(row and row.get("state") == "halted" and row.get("status") == "COMPLETED",
              "status JSON: the rollout's state beside its newest task's status", json.dumps(row))
        rc, out, err = f.run("status", "--output", "markdown")
        check("| `OtaRollout/fw` |" in out and "| 1 | 1 | 0 | 0 | `[##########xxxxxxxxxx]` |" in out
              and "| canary | 2 things | halted |" in out, "status --output markdown: the table and the waves", out + err)
        rc, out, err = f.run("plan", "--output", "github")
        check("::warning title=ota-runner plan: rollout halted::rollout fw is halted at wave canary" in out,
              "halt: a GitHub warning", out)

        # a wave that has not started may change
        f.commit(rollout(everyone="thingType:Thermostat AND attributes.ok:yes"), "edit a wave to come")
        rc, out, err = f.run("plan")
        check(rc == 0 and "halted" in out, "a wave to come may be edited", out + err)

        # ---- a relaxed gate for the canary lifts the halt
        f.commit(rollout(canary_gate="{minSucceededPercent: 50, maxFailedPercent: 60}"), "relax the canary")
        rc, out = f.drive(lambda: len(f.creates()) == 2, limit=15)
        check(rc == 0 and "halt" not in f.record()["progress"] and list(f.waves()) == ["canary", "early"],
              "relaxed gate: the halt is lifted and early starts", out)
    finally:
        f.stop()


def hold_after():
    f = Fleet("hold", rollout(hold="canary"))
    try:
        rc, out = f.drive(lambda: f.waves().get("canary", {}).get("passedAt") is not None, limit=15)
        time.sleep(2.2)  # the soak is over (counted from the second after the pass recorded)
        for _ in range(2):
            f.run("apply")
        check(rc == 0 and len(f.creates()) == 1, "holdAfter: nothing after the canary", out)
        rc, out, err = f.run("plan", "--detailed-exitcode")
        check(rc == 0 and "canary    passed, held by holdAfter" in out,
              "holdAfter: plan says held, and no changes", out + err)
        f.commit(rollout(hold="early"), "promote to early")
        rc, out, err = f.run("plan", "--output", "markdown")
        check("promotes fw to early" in out and "| canary | passed, held by holdAfter |" not in out,
              "holdAfter moved: the markdown plan says promotes fw to early", out + err)
        charts = mermaid(out)
        classes = {label.split("<br/>")[0]: cls for label, cls in charts[0][0].values()} if charts else {}
        check(classes == {"canary": "done", "early": "next", "everyone": "waiting"},
              "holdAfter moved: the picture marks early as the wave it starts", out)
        rc, out, err = f.run("plan", "--output", "github")
        check("::notice title=ota-runner plan: rollout::promotes fw to early" in out,
              "holdAfter moved: a GitHub notice", out)
        rc, out, err = f.run("plan")
        check("Devices: 1 task to create send firmware to the things of 1 target query." in out,
              "holdAfter moved: the devices a query-only wave reaches, in words", out)
        rc, out, err = f.run("apply")
        check(rc == 0 and len(f.creates()) == 2 and list(f.waves()) == ["canary", "early"],
              "holdAfter moved: the next apply starts early", out + err)

        # ---- the manifest gone, --prune: every wave's task, newest first
        ids = [f.waves()[n]["taskId"] for n in ("early", "canary")]
        os.remove(os.path.join(f.repo, "manifests", "fw.yaml"))
        subprocess.run(["git", "-C", f.repo, "commit", "-qam", "gone"], check=True, env=GIT_ENV)
        rc, out, err = f.run("apply", "--prune", "--allow-cancel")
        deleted = [e["path"].rsplit("/", 1)[-1] for e in f.deletes()]
        check(rc == 0 and deleted == ids and f.record() is None,
              "prune: both waves' tasks deleted, newest first, and the record gone",
              out + err + json.dumps(deleted))
    finally:
        f.stop()


def deadline():
    f = Fleet("deadline", rollout(gate="{minFinished: 2, deadline: 2s}"), "--outcomes",
              json.dumps({"never": True}))
    try:
        rc, out, err = f.run("apply")
        rc2, out2, err2 = f.run("plan")
        check(rc == 0 and "canary    running" in out2, "deadline: running before it", out2 + err2)
        rc, out = f.drive(lambda: "halt" in (f.record() or {}).get("progress", {}), limit=10)
        halt = f.record()["progress"].get("halt", {})
        check(rc == 0 and halt.get("reason", "").startswith("no pass within its deadline of 2s")
              and len(f.creates()) == 1, "deadline: devices that never answer halt the wave", json.dumps(halt))
        rc, row, err = f.status("--fail-on-halt")
        check(rc == 4, "deadline: status --fail-on-halt exits 4", f"{rc} {err}")
    finally:
        f.stop()


def kill_trials():
    rng = random.Random(13)
    f = Fleet("kill", rollout(gate="{minFinished: 1, soak: 0s}"), "--latency-ms", "60")
    try:
        kills = resumed = 0
        deadline = time.time() + (180 if SLOW else 60)
        while len(f.waves()) < 3 or not f.waves()["everyone"].get("taskId"):
            if time.time() > deadline:
                break
            p = subprocess.Popen([RUNNER, "apply", "--repo", f.repo], env=f.env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, 0.45))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
            rc, out, err = f.run("plan", "--refresh", "none", "--output", "json")
            if rc == 0 and any(a["kind"] == "resume" for a in json.loads(out)["actions"]):
                resumed += 1
        f.drive(lambda: f.waves().get("everyone", {}).get("taskId") is not None, limit=10)
        waves = f.waves()
        tasks = sorted(f.emu.control("tasks"), key=lambda t: t["CreatedAt"])
        by_token = {}
        for c in f.creates():
            by_token.setdefault(c["clientToken"], set()).add(c["path"])
        check([w for w in waves] == ["canary", "early", "everyone"] and len(tasks) == 3,
              f"kill trials: one task per wave ({kills} kills, {resumed} left a create to resume)",
              json.dumps(waves, indent=1) + json.dumps(tasks)[:800])
        check([t["TaskId"] for t in tasks] == [waves[n].get("taskId") for n in ("canary", "early", "everyone")],
              "kill trials: the tasks were created in wave order and the state holds their ids")
        check(kills > 0, "kill trials: some kills landed mid-run", str(kills))
        print(f"{kills} kills while waves were created; {resumed} of them between a create's intent and its result")
    finally:
        f.stop()


def old_revision_retired():
    """A new revision without --prune starts over and leaves the old waves'
    tasks running on their devices: they stay recorded, retired; plan and
    status list them; a run with --prune and --allow-cancel deletes them, and
    without --allow-cancel the guard holds a running one (issue 28)."""
    f = Fleet("retired", rollout(), "--outcomes", json.dumps({"never": True}))
    try:
        rc, out, err = f.run("apply")
        old = f.waves()["canary"]["taskId"]
        # the configuration changes too: the old one stays retired while the old wave uses it
        f.write("push.yaml", CONFIG.replace("Name: Push", "Name: Push2"))
        f.commit(rollout(revision=2, s3="s3://fw/2-5-1.json"), "a new image")
        rc, out, err = f.run("apply")
        state = json.load(open(f.state))
        retired = [r for r in state.get("retired", []) if r.get("taskId", r.get("id")) == old]
        check(rc == 0 and len(f.creates()) == 2 and not f.deletes() and retired,
              "retired: revision 2 starts over; revision 1's canary is recorded as retired, not dropped",
              out + err + json.dumps(state.get("retired")))
        rc, out, err = f.run("plan")
        check(rc == 0 and re.search(f"task {old} of an older revision is retired \\((SCHEDULED|IN_PROGRESS)\\): "
                                    "it still runs on its devices; --prune --allow-cancel deletes it", out),
              "retired: plan lists it, running, and says how to delete it", out + err)
        rc, out, err = f.run("status")
        check(rc == 0 and "OtaRollout/fw (retired)" in out and old in out,
              "retired: status lists it with its live status", out + err)
        rc, out, err = f.run("apply", "--prune")
        check(rc == 1 and "--allow-cancel" in err and old in err and not f.deletes(),
              "retired: --prune without --allow-cancel is held by the guard", out + err)
        rc, out, err = f.run("plan", "--prune", "--allow-cancel", "--output", "json")
        acts = json.loads(out).get("actions", []) if out.startswith("{") else []
        cfg = [a for a in acts if a["kind"] == "delete" and a["resource"] == "OtaTaskConfiguration"]
        check(cfg and "delete OtaRollout/fw" in cfg[0].get("dependsOn", []),
              "retired: the old configuration's delete waits for the old wave's (chaos I5: a retired wave "
              "keeps no spec to say what it uses)", json.dumps(acts)[:1500])
        rc, out, err = f.run("apply", "--prune", "--allow-cancel")
        state = json.load(open(f.state))
        order = [e["op"] for e in f.emu.log() if e["op"] in ("DeleteOtaTask", "DeleteOtaTaskConfiguration")]
        check(rc == 0 and [d["path"].rsplit("/", 1)[1] for d in f.deletes()] == [old]
              and order and order[0] == "DeleteOtaTask" and not state.get("retired"),
              "retired: --prune --allow-cancel deletes it (then the old configuration), and the state forgets it",
              out + err + str(order))
    finally:
        f.stop()


def status_fixed_points():
    """status judges now but records nothing: a pass or a halt no apply has
    recorded gets no moving time; once recorded, "soaking until" and "halted
    since" stay where they are (issue 28)."""
    f = Fleet("fixed", rollout(gate="{minFinished: 2, maxFailedPercent: 10, soak: 1h}"))
    try:
        f.run("apply")
        wait_for = lambda: "passed, not recorded" in f.run("status")[1]
        deadline = time.time() + 20 * (3 if SLOW else 1)
        while time.time() < deadline and not wait_for():
            time.sleep(0.2)
        rc, first, err = f.run("status")
        time.sleep(1.1)
        rc2, second, err2 = f.run("status")
        check(rc == 0 and "passed, not recorded" in first and "); its gate is met; the next apply records the pass, and its soak "
              "runs from then" in first and "soaking until" not in first and first == second,
              "fixed: status of a pass no apply recorded gives no time, and says the same a second later",
              first + err + second)
        f.run("apply")
        rc, first, err = f.run("status")
        time.sleep(1.1)
        rc, second, err = f.run("status")
        check("soaking until" in first and first == second,
              "fixed: once recorded, soaking until stays where it is", first + second)
        check("next: the first apply after the soak (see wave canary) moves on to wave early" in first
              and any(line.startswith("OtaRollout/fw") and " soaking " in line for line in first.splitlines()),
              "fixed: status says what comes next, and the rollout's state is soaking", first)
    finally:
        f.stop()
    f = Fleet("fixed-halt", rollout(), "--outcomes", json.dumps({"things": {CANARY[1]: "FAILED"}}))
    try:
        f.run("apply")
        deadline = time.time() + 20 * (3 if SLOW else 1)
        while time.time() < deadline and "halted" not in f.run("status")[1]:
            time.sleep(0.2)
        rc, out, err = f.run("status")
        check("halted at wave canary (the next apply records it)" in out and " since " not in out
              and "first failed devices: canary2;" in out,
              "fixed: a halt no apply recorded has no time yet, and status names its failed device", out + err)
        f.run("apply")
        rc, first, err = f.run("status")
        time.sleep(1.1)
        rc, second, err = f.run("status")
        check("halted at wave canary since" in first and first == second,
              "fixed: once recorded, halted since stays where it is", first + second)
        check("next: a person must act: look at wave canary's failed devices (ota-runner status --devices "
              "OtaRollout/fw)" in first,
              "fixed: a halt's next step is a person's", first)
    finally:
        f.stop()


def service_clock():
    """Soaks and deadlines by the service's clock (issue 28): a week
    rehearsed on the emulator by moving its clock, and a runner whose clock
    is ahead of the service's does not end a soak early."""
    f = Fleet("week", rollout(gate="{minFinished: 2, maxFailedPercent: 10, soak: 1d, deadline: 3d}"))
    try:
        f.run("apply")
        f.emu.control("clock", {"advance": 3600})  # an hour: the canary's two things ended
        rc, out, err = f.run("apply")
        passed = epoch(f.waves().get("canary", {}).get("passedAt", "1970-01-01T00:00:00Z"))
        check(rc == 0 and abs(passed - (time.time() + 3600)) < 60 and len(f.creates()) == 1,
              "clock: the pass is recorded at the service's time, an hour ahead of the runner's",
              f"{passed} {time.time()}\n" + out + err)
        rc, row, err = f.status()
        until = epoch(row["rollout"]["waves"][0].get("soakUntil", "1970-01-01T00:00:00Z")) if row else 0
        check(row and abs(until - (passed + 86401)) < 2, "clock: status soaks a day from the service's time",
              json.dumps(row, indent=1)[:1500] + err)
        f.emu.control("clock", {"advance": 86400 - 120})
        rc, out, err = f.run("apply")
        check(rc == 0 and len(f.creates()) == 1, "clock: two minutes before the soak ends, no next wave", out + err)
        f.emu.control("clock", {"advance": 180})
        rc, out, err = f.run("apply")
        early = f.waves().get("early", {})
        check(rc == 0 and len(f.creates()) == 2 and abs(epoch(early.get("createdAt", "1970-01-01T00:00:00Z"))
                                                        - (time.time() + 86400 + 3660)) < 60,
              "clock: a day later by the service's clock, wave early starts, created at the service's time",
              json.dumps(early) + out + err)
    finally:
        f.stop()
    f = Fleet("week-deadline", rollout(gate="{minFinished: 2, deadline: 2d}"), "--outcomes",
              json.dumps({"never": True}))
    try:
        f.run("apply")
        f.emu.control("clock", {"advance": 86400})
        rc, out, err = f.run("apply")
        check(rc == 0 and "halt" not in f.record()["progress"], "clock: a day into a 2d deadline, running", out + err)
        f.emu.control("clock", {"advance": 86400 + 60})
        rc, out, err = f.run("apply")
        halt = f.record()["progress"].get("halt", {})
        check(halt.get("reason", "").startswith("no pass within its deadline of 2d"),
              "clock: two days later by the service's clock, the wave halts at its deadline",
              json.dumps(halt) + out + err)
    finally:
        f.stop()
    f = Fleet("behind", rollout(gate="{minFinished: 2, maxFailedPercent: 10, soak: 30m}"))
    try:
        f.emu.control("clock", {"advance": -7200})  # the runner's clock two hours ahead
        rc, out = f.drive(lambda: f.waves().get("canary", {}).get("passedAt") is not None, limit=10)
        rc, out, err = f.run("apply")
        check(rc == 0 and len(f.creates()) == 1 and "soaking" in out,
              "clock: the runner's clock two hours ahead of the service's does not end a 30m soak", out + err)
    finally:
        f.stop()


three_waves()
service_clock()
old_revision_retired()
status_fixed_points()
halt_and_resume()
hold_after()
deadline()
kill_trials()
finish()
