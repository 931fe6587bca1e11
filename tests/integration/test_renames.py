#!/usr/bin/env python3
"""Renames without a replace (issue 25): metadata.previousNames moves a
record to its manifest's new name with no call to the service.

- a task renamed: plan says "moved from", apply makes no mutating call, the
  state holds the same task under the new name, and the next plan has no
  changes; a rename and an edit together: the move, then one update of the
  same task;
- a staged rollout renamed, its waves with it;
- diff shows the rename (text and JSON);
- refused: a previous name that is a live manifest, a manifest's own name,
  one previous name claimed twice;
- state mv by hand; a lost state rebuilt finds a renamed task by its old
  name's tag.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program  # noqa: E402
from harness import MUTATING, Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
tmp = tempfile.mkdtemp(prefix="otr-renames-")
repo, state = os.path.join(tmp, "fleet"), os.path.join(tmp, "state.json")
os.makedirs(os.path.join(repo, "manifests"))
subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)


def task(name, previous=None, description="Plugs"):
    meta = f"{{name: {name}" + (f", previousNames: [{', '.join(previous)}]" if previous else "") + "}"
    return (f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {meta}\n"
            f"spec: {{S3Url: s3://fw/p.json, OtaType: ONE_TIME, Description: {description}, "
            f"Target: [{ARN}plugA]}}\n")


def rollout(name, previous=None):
    meta = f"{{name: {name}" + (f", previousNames: [{', '.join(previous)}]" if previous else "") + "}"
    return (f"apiVersion: ota-runner/v1\nkind: OtaRollout\nmetadata: {meta}\nspec:\n"
            "  task: {S3Url: s3://fw/t.json, OtaType: ONE_TIME}\n  gate: {minFinished: 1, soak: 0s}\n"
            f"  holdAfter: canary\n  waves:\n    - {{name: canary, Target: [{ARN}c1]}}\n"
            "    - {name: everyone, OtaTargetQueryString: 'thingType:Thermostat'}\n")


def commit(files, msg):
    for name, text in files.items():
        path = os.path.join(repo, "manifests", name)
        if text is None:
            os.remove(path)
        else:
            with open(path, "w") as f:
                f.write(text)
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", repo, "commit", "-qm", msg], check=True, env=GIT_ENV)


def run(emu, *args):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state), cwd=repo,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def recorded():
    with open(state) as f:
        return json.load(f)


commit({"plugs.yaml": task("plugs"), "fw.yaml": rollout("fw")}, "fleet")
# plugA never answers: the task stays IN_PROGRESS, so an edit is an update (an ended task takes none)
with Emulator("--tick", "0", "--outcomes", json.dumps({"things": {ARN + "plugA": "NEVER"}})) as emu:
    run(emu, "apply")
    run(emu, "apply")  # the canary passes; held after it
    task_id = recorded()["tasks"]["plugs"]["taskId"]
    waves = recorded()["rollouts"]["fw"]["progress"]["waves"]

    # ---- a task renamed
    commit({"plugs.yaml": task("plugs-v2", ["plugs"])}, "rename the task")
    rc, out, err = run(emu, "plan", "--detailed-exitcode")
    check(rc == 2 and "plugs-v2: moved from plugs (metadata.previousNames): the same task, recorded under the "
          "new name without a call" in out and "No call: 1 rename (recorded by apply)." in out and "create" not in out.split("Plan:")[0].replace("created", ""),
          "plan: the rename is a move (exit 2), not a delete and a create", out + err)
    n = len(emu.log())
    rc, out, err = run(emu, "apply")
    st = recorded()
    check(rc == 0 and "Moved OtaTask/plugs to plugs-v2" in out and not emu.mutations(n)
          and st["tasks"].get("plugs-v2", {}).get("taskId") == task_id and "plugs" not in st["tasks"],
          "apply: no mutating call, the same task under the new name", out + err + json.dumps(emu.mutations(n)))
    rc, out, err = run(emu, "plan", "--detailed-exitcode")
    check(rc == 0 and "No changes." in out, "then: no changes", out + err)

    # ---- a rename and an edit together: the move, then an update of the same task
    commit({"plugs.yaml": task("plugs-v3", ["plugs-v2", "plugs"], description="Plugs again")}, "rename and edit")
    n = len(emu.log())
    rc, out, err = run(emu, "apply")
    muts = emu.mutations(n)
    check(rc == 0 and [m["op"] for m in muts] == ["UpdateOtaTask"] and task_id in json.dumps(muts)
          and recorded()["tasks"].get("plugs-v3", {}).get("taskId") == task_id,
          "a rename and an edit: moved, then one UpdateOtaTask of the same task", out + err + json.dumps(muts))

    # ---- a rollout renamed, with its waves
    commit({"fw.yaml": rollout("fw-next", ["fw"])}, "rename the rollout")
    n = len(emu.log())
    rc, out, err = run(emu, "apply")
    st = recorded()
    check(rc == 0 and not emu.mutations(n) and "fw" not in st["rollouts"]
          and st["rollouts"].get("fw-next", {}).get("progress", {}).get("waves") == waves,
          "a rollout renamed: its waves with it, no call", out + err)

    # ---- diff
    rc, out, err = run(emu, "diff", "HEAD~1", "--detailed-exitcode")
    check(rc == 2 and "  renamed OtaRollout/fw-next\n        from fw (metadata.previousNames): the same task, no call"
          in out and " 1 renamed, with no call." in out, "diff shows the rename", out + err)
    rc, out, err = run(emu, "diff", "HEAD~1", "--output", "json")
    d = json.loads(out or "{}")
    check(d.get("renames") == [{"address": "OtaRollout/fw-next", "from": "fw"}] and d["summary"]["renamed"] == 1,
          "diff JSON: renames", out + err)

    # ---- what is refused
    for files, want in (({"other.yaml": task("other", ["plugs-v3"])}, '"plugs-v3" is the name of a live OtaTask'),
                        ({"other.yaml": task("other", ["other"])}, '"other" is this manifest\'s own name'),
                        ({"other.yaml": task("other", ["plugs"])}, '"plugs" is also a previous name of plugs-v3')):
        commit(files, "bad")
        rc, out, err = run(emu, "validate")
        check(rc == 1 and want in out + err and "manifests/other.yaml:1:1" in out + err,
              f"validate refuses: {want}", out + err)
        commit({"other.yaml": None}, "undo")

    # ---- state mv, and a lost state rebuilt by the old name's tag
    rc, out, err = run(emu, "state", "mv", "plugs-v3", "plugs-v4")
    check(rc == 0 and "Moved plugs-v3 to plugs-v4, with no call" in out
          and recorded()["tasks"].get("plugs-v4", {}).get("taskId") == task_id, "state mv", out + err)
    rc, out, err = run(emu, "state", "mv", "plugs-v4", "OtaRollout/fw-next")
    check(rc == 1 and "two kinds" in err, "state mv refuses another kind", err)
    run(emu, "state", "mv", "plugs-v4", "plugs-v3")
    os.remove(state)
    rc, out, err = run(emu, "state", "rebuild")
    check(rc == 0 and recorded()["tasks"].get("plugs-v3", {}).get("taskId") == task_id,
          "a lost state: the renamed task found by its old name's tag (previousNames)", out + err)
finish()
