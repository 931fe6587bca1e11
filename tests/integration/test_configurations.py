#!/usr/bin/env python3
"""Task configurations as manifests, referenced by name (issue 12), checked in
the emulator's request log:

- the sample fleet: the configuration is created before the tasks that refer
  to it, and they carry its id;
- a configuration edit is one replace: create the new one, move every task
  that refers to it with UpdateOtaTask, delete the old one, in that order;
  then no changes;
- a task pointed at another configuration is updated, never replaced;
- a dangling reference, and a reference beside an id, are refused at their line;
- the service refusing to delete a configuration still in use (a 400
  ValidationException, the only refusal the model lists for it): the old
  one is kept retired, reported, and deleted by a later run once it can be;
- a pruned configuration is deleted after the tasks that used it moved;
- addresses: --target, state show / rm / import of a configuration;
- --refresh list finds a configuration gone from the service: it is created
  again and its tasks moved;
- a version-1 state file and journal (tests/data/state-v1) planned and applied.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, SRC, check, finish, program, sample_fleet  # noqa: E402
from harness import Emulator, aws_env, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
CFG = "OtaTaskConfiguration/staged-push"
tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")


def git(*args, where=None):
    subprocess.run(["git", "-C", where or repo, *args], check=True, capture_output=True, env=GIT_ENV)


def edit(path, old, new, msg):
    p = os.path.join(repo, path)
    text = open(p).read()
    assert old in text, (path, old)
    open(p, "w").write(text.replace(old, new))
    git("commit", "-qam", msg)


def run(emu, *args, **extra):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state, **extra), cwd=tmp,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def aws(emu, *args):
    p = subprocess.run(["aws", "iot-managed-integrations", *args, "--endpoint-url", emu.url, "--output", "json"],
                       capture_output=True, text=True, env=aws_env(), timeout=120)
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else None, p.stderr


def configs(emu):
    return emu.control("configurations")


def st():
    return json.load(open(state))


def config_id():
    return st()["configurations"]["staged-push"]["taskConfigurationId"]


def task_config(emu, name):
    tid = st()["tasks"][name]["taskId"]
    return [t for t in emu.live_tasks() if t["TaskId"] == tid][0].get("TaskConfigurationId")


try:
    sample_fleet(repo)
    # the tasks keep running (an ended task takes no update)
    with Emulator("--tick", "0", "--outcomes", json.dumps({"never": True})) as emu:
        # ---- the configuration before the tasks that refer to it
        rc, out, err = run(emu, "plan", "--repo", repo, "--output", "json")
        plan = json.loads(out)
        by = {a["address"]: a for a in plan["actions"]}
        check(rc == 0 and by[CFG]["kind"] == "create" and
              by["OtaTask/thermostat-2-4-1"]["dependsOn"] == ["create " + CFG] and
              by["OtaTask/hub-7-0-0"]["dependsOn"] == ["create " + CFG] and
              by["OtaTask/door-lock-1-9-0"]["dependsOn"] == [],
              "plan: the tasks that refer to the configuration wait for it", out)
        rc, out, err = run(emu, "apply", "--repo", repo)
        log = emu.mutations()
        seq = {(e["op"], e["clientToken"]): e["seq"] for e in log}
        cfg_at = [e["seq"] for e in log if e["op"] == "CreateOtaTaskConfiguration"]
        toks = {a["name"]: a["clientToken"] for a in plan["actions"]}
        check(rc == 0 and "7 created" in out and len(cfg_at) == 1 and
              seq[("CreateOtaTask", toks["thermostat-2-4-1"])] > cfg_at[0] and
              seq[("CreateOtaTask", toks["hub-7-0-0"])] > cfg_at[0], "apply: the configuration first", out + err)
        cid = config_id()
        check(task_config(emu, "thermostat-2-4-1") == cid and task_config(emu, "hub-7-0-0") == cid and
              len(configs(emu)) == 1, "both tasks carry the configuration's id")
        check(st()["version"] == 2 and st()["tasks"]["thermostat-2-4-1"]["spec"]["TaskConfigurationId"] == cid
              and "TaskConfigurationRef" not in st()["tasks"]["thermostat-2-4-1"]["spec"],
              "the state records what the service holds (the id, not the reference)")
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 0 and "No changes. 1 configuration and 6 tasks match the manifests." in out,
              "then no changes", out + err)

        # ---- a configuration edit: create the new, move the tasks, delete the old
        edit("manifests/configurations/staged-push.yaml", "BaseRatePerMinute: 10", "BaseRatePerMinute: 20", "rate")
        rc, out, err = run(emu, "plan", "--repo", repo)
        check(rc == 0 and f"-/+ replace {CFG} (configuration {cid})" in out and
              "creates the new configuration first, moves 2 tasks to it, then deletes the old one" in out and
              "PushConfig.RolloutConfig.ExponentialRolloutRate.BaseRatePerMinute: 10 -> 20" in out and
              f'TaskConfigurationId: "{cid}" -> "(the new id of {CFG})"' in out and
              out.index("replace " + CFG) < out.index("update  hub-7-0-0") < out.index("delete  " + CFG) and
              "Plan: 0 to create, 2 to update, 1 to replace, 0 to delete, 1 old to clean up; 4 unchanged." in out,
              "plan: the cascade as one unit, field by field", out)
        rc, out, err = run(emu, "plan", "--repo", repo, "--output", "markdown")
        check(f"| `-/+` | replace | `{CFG}` |" in out and "| ↳ `~` | update | `hub-7-0-0` |" in out and
              f"| ↳ `-` | delete | `{CFG}` |" in out, "markdown: the cascade as one unit", out)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        m = [e["op"] for e in emu.mutations(n)]
        check(rc == 0 and m == ["CreateOtaTaskConfiguration", "UpdateOtaTask", "UpdateOtaTask",
                                "DeleteOtaTaskConfiguration"], "apply: create, then the updates, then the delete",
              str(m) + out + err)
        new = config_id()
        check(new != cid and task_config(emu, "thermostat-2-4-1") == new and task_config(emu, "hub-7-0-0") == new
              and [c["TaskConfigurationId"] for c in configs(emu)] == [new] and st()["retired"] == [],
              "every task on the new configuration, the old one gone")
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 0, "then no changes", out + err)

        # ---- a task pointed at another configuration: an update, never a replace
        fast = open(os.path.join(repo, "manifests/configurations/staged-push.yaml")).read() \
            .replace("name: staged-push", "name: fast-push").replace("Name: Staged push", "Name: Fast push")
        open(os.path.join(repo, "manifests/configurations/fast-push.yaml"), "w").write(fast)
        git("add", "-A")
        edit("manifests/hvac/thermostat.yaml", "TaskConfigurationRef: staged-push", "TaskConfigurationRef: fast-push",
             "thermostat on the fast push")
        tid = st()["tasks"]["thermostat-2-4-1"]["taskId"]
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        m = [e["op"] for e in emu.mutations(n)]
        fid = st()["configurations"]["fast-push"]["taskConfigurationId"]
        check(rc == 0 and m == ["CreateOtaTaskConfiguration", "UpdateOtaTask"] and
              st()["tasks"]["thermostat-2-4-1"]["taskId"] == tid and task_config(emu, "thermostat-2-4-1") == fid,
              "another configuration: created, and the task updated (same task)", str(m) + out + err)

        # ---- references that cannot be
        edit("manifests/hvac/thermostat.yaml", "TaskConfigurationRef: fast-push", "TaskConfigurationRef: fast-psh",
             "typo")
        for cmd in ("validate", "plan"):
            rc, out, err = run(emu, cmd, "--repo", repo)
            check(rc == 1 and 'manifests/hvac/thermostat.yaml:20:25: error: spec.TaskConfigurationRef: no '
                  'OtaTaskConfiguration named "fast-psh" in this commit; did you mean fast-push?' in err,
                  f"{cmd}: a dangling reference, at its line and column, with did-you-mean", err)
        edit("manifests/hvac/thermostat.yaml", "TaskConfigurationRef: fast-psh",
             "TaskConfigurationRef: fast-push\n  TaskConfigurationId: abc123", "both")
        rc, out, err = run(emu, "validate", "--repo", repo)
        check(rc == 1 and "spec.TaskConfigurationRef: give TaskConfigurationRef (a configuration in this "
              "repository) or TaskConfigurationId (one made elsewhere), not both" in err,
              "a reference beside an id is refused", err)
        edit("manifests/hvac/thermostat.yaml", "\n  TaskConfigurationId: abc123", "", "one")

        # ---- the service refuses to delete a configuration still in use
        emu.control("faults", {"conflict_in_use": True})
        rc, other, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/by-hand.json", "--ota-type", "ONE_TIME",
                             "--task-configuration-id", new)
        old = new
        edit("manifests/configurations/staged-push.yaml", "BaseRatePerMinute: 20", "BaseRatePerMinute: 30", "rate 30")
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        m = [(e["op"], e["status"]) for e in emu.mutations(n)]
        check(rc == 0 and "DeleteOtaTaskConfiguration" not in [x[0] for x in m] and
              f"{CFG}: the old configuration {old} stays (retired) while task {other['TaskId']} uses it" in out,
              "a configuration the service lists a task of another's using: kept retired, no delete sent",
              str(m) + out + err)
        retired = st()["retired"]
        check(len(retired) == 1 and retired[0]["id"] == old and retired[0]["kind"] == "OtaTaskConfiguration" and
              old in [c["TaskConfigurationId"] for c in configs(emu)],
              "the old configuration is recorded as retired", json.dumps(retired))
        rc, out, err = run(emu, "state", "list")
        check(f"{CFG}" in out and old in out and "retired" in out and "1 retired" in out,
              "state list shows the retired configuration", out)
        # (a user the listing did not show, made between the list and the delete, is refused by the
        # service with a ValidationException, which is not a failure: test_apply.c,
        # test_in_use_is_kept_retired)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo, "--refresh", "none")
        check(rc == 0 and not emu.mutations(n) and "until a run that asks the service" in out,
              "--refresh none: who uses a retired configuration is not known, so it waits", out + err)
        aws(emu, "delete-ota-task", "--identifier", other["TaskId"])
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        m = [(e["op"], e["status"]) for e in emu.mutations(n)]
        check(rc == 0 and m == [("DeleteOtaTaskConfiguration", 204)] and st()["retired"] == [] and
              old not in [c["TaskConfigurationId"] for c in configs(emu)],
              "once nothing uses it, it is deleted and forgotten", str(m) + out + err)
        emu.control("faults", {"conflict_in_use": False})

        # ---- a pruned configuration goes after the task that used it moved away
        os.unlink(os.path.join(repo, "manifests/configurations/fast-push.yaml"))
        git("add", "-A")
        edit("manifests/hvac/thermostat.yaml", "TaskConfigurationRef: fast-push", "TaskConfigurationRef: staged-push",
             "back to the staged push")
        rc, out, err = run(emu, "plan", "--repo", repo)
        check("!   orphan  OtaTaskConfiguration/fast-push" in out, "without --prune it is an orphan", out)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo, "--prune")
        m = [e["op"] for e in emu.mutations(n)]
        check(rc == 0 and m == ["UpdateOtaTask", "DeleteOtaTaskConfiguration"] and
              "fast-push" not in st()["configurations"], "--prune: the task moves, then the configuration goes",
              str(m) + out + err)

        # ---- addresses
        rc, out, err = run(emu, "state", "show", CFG)
        check(rc == 0 and json.loads(out)["taskConfigurationId"] == config_id() and
              json.loads(out)["address"] == CFG, "state show KIND/NAME", out + err)
        rc, out, err = run(emu, "state", "show", "OtaTaskConfig/staged-push")
        check(rc == 1 and "OtaTaskConfig is not a kind; did you mean OtaTaskConfiguration?" in err,
              "an unknown kind in an address: did-you-mean", err)
        cur = config_id()
        rc, out, err = run(emu, "state", "rm", CFG)
        check(rc == 0 and "staged-push" not in st()["configurations"], "state rm of a configuration", out + err)
        rc, out, err = run(emu, "state", "import", "OtaTaskConfiguration/other-name", cur)
        rc, out, err = run(emu, "state", "import", CFG, cur)
        check(rc == 1 and f"configuration {cur} is already recorded as OtaTaskConfiguration/other-name" in err,
              "import of a configuration another name records: refused", err)
        run(emu, "state", "rm", "OtaTaskConfiguration/other-name")
        rc, out, err = run(emu, "state", "import", CFG, cur)
        check(rc == 0 and st()["configurations"]["staged-push"]["phase"] == "imported", "state import KIND/NAME ID",
              out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        check(rc == 0 and emu.mutations(n) == [] and
              st()["configurations"]["staged-push"]["specDigest"].startswith("sha256:"),
              "an imported configuration that is as its manifest says: recorded, no call", str(emu.mutations(n)) + out)
        edit("manifests/security/door-lock.yaml", "with BLE fixes", "with BLE and NFC fixes", "door")
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo, "--target", CFG)
        check(rc == 0 and emu.mutations(n) == [] and "No changes" in out, "--target KIND/NAME: only that one",
              out + err)
        rc, out, err = run(emu, "apply", "--repo", repo, "--target", "OtaTask/door-lock-1-9-0")
        check(rc == 0 and [e["op"] for e in emu.mutations(n)] == ["UpdateOtaTask"], "--target OtaTask/NAME", out + err)

        # ---- a configuration gone from the service is created again, its tasks moved
        gone = config_id()
        aws(emu, "delete-ota-task-configuration", "--identifier", gone)
        rc, out, err = run(emu, "plan", "--repo", repo)
        check(f"+   create  {CFG}" in out and f"drift: the recorded configuration {gone} no longer exists" in out
              and "~   update  hub-7-0-0" in out, "refresh: a vanished configuration is created, its tasks moved", out)
        rc, out, err = run(emu, "apply", "--repo", repo)
        check(rc == 0 and task_config(emu, "hub-7-0-0") == config_id() != gone, "and apply does it", out + err)
        rc, out, err = run(emu, "status")
        row = [ln.split() for ln in out.splitlines() if ln.startswith(CFG)]
        check(rc == 0 and row == [[CFG, config_id(), "EXISTS"]] and "1 configuration, 6 tasks in" in out,
              "status shows the configuration", out)

    # ---- a version-1 state (and journal) from before kinds
    data = os.path.join(SRC, "tests", "data", "state-v1")
    old_repo = os.path.join(tmp, "v1")
    subprocess.run(["git", "init", "-q", "-b", "main", old_repo], check=True)
    shutil.copytree(os.path.join(data, "manifests"), os.path.join(old_repo, "manifests"))
    git("add", "-A", where=old_repo)
    git("commit", "-qm", "v1", where=old_repo)
    emu_state = os.path.join(tmp, "emulator-state.json")
    shutil.copy(os.path.join(data, "emulator-state.json"), emu_state)
    with Emulator("--tick", "0", state=emu_state) as emu:
        for f in os.listdir(tmp):
            if f.startswith("state.json"):
                os.unlink(os.path.join(tmp, f))
        v1 = json.load(open(os.path.join(data, "state.json")))
        v1["service"]["endpoint"] = emu.url  # the emulator it was made with, on today's port
        v1_text = json.dumps(v1, indent=1)
        open(state, "w").write(v1_text)
        shutil.copy(os.path.join(data, "state.json.journal"), state + ".journal")
        rc, out, err = run(emu, "plan", "--repo", old_repo)
        check(rc == 0 and ">   resume  door-lock-1-9-0 (update)" in out and "Plan: 0 to create, 0 to update, "
              "0 to replace, 0 to delete, 1 to resume; 5 unchanged." in out,
              "a version-1 state and journal: the interrupted update is resumed, the rest unchanged", out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", old_repo)
        check(rc == 0 and [e["op"] for e in emu.log()[n:] if e["op"] in ("GetOtaTask", "UpdateOtaTask")] ==
              ["GetOtaTask", "UpdateOtaTask"] and "1 resumed" in out, "apply resumes it", out + err)
        check(st()["version"] == 2 and "configurations" in st() and json.load(open(state + ".bak"))["version"] == 1
              and open(state + ".bak").read() == v1_text, "written as version 2; .bak keeps the version-1 text")
        rc, out, err = run(emu, "plan", "--repo", old_repo, "--detailed-exitcode")
        check(rc == 0, "then no changes", out + err)
finally:
    shutil.rmtree(tmp)

finish()
