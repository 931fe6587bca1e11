#!/usr/bin/env python3
"""plan and apply against the emulator, checked in its request log.

- the first apply creates one task per manifest; a second sends nothing
  mutating; plan then exits 0 with --detailed-exitcode;
- a Description edit is exactly one UpdateOtaTask; a Target edit is a replace;
  a revision bump is a replace; a removed manifest is orphaned, deleted only
  with --prune; --max-deletes refuses; --target limits the run;
- plan outputs: json (the documented schema), markdown, github (annotations
  and $GITHUB_STEP_SUMMARY); --out and apply FILE; a stale saved plan refused;
- status and state list / show / rm / import;
- a second apply while one runs exits 3 and changes nothing;
- corrupt, truncated and future-version state files are refused and left
  byte-identical.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, SRC, check, finish, program, wait_until  # noqa: E402
from harness import TASK_MUTATING, Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")

tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")


def git(*args):
    subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def commit(msg):
    git("add", "-A")
    git("commit", "-qm", msg)


def run(emu, *args, **extra):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state, **extra),
                       cwd=tmp, timeout=300)
    return p.returncode, p.stdout, p.stderr


def edit(path, old, new):
    p = os.path.join(repo, path)
    text = open(p).read()
    assert old in text, (path, old)
    open(p, "w").write(text.replace(old, new))


def state_json():
    return json.load(open(state))


try:
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    shutil.copytree(os.path.join(SRC, "manifests"), os.path.join(repo, "manifests"))
    shutil.rmtree(os.path.join(repo, "manifests", "rollouts"))  # test_rollouts.py covers it
    commit("fleet")
    # the smart plug's device never reaches its end, so its task is still running when the
    # test replaces it however slowly it runs (under ASan, say): no race with the clock; nor
    # do the outdoor cameras, whose task is edited in place (an ended task takes no update)
    plug = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/plug0001"
    cams = [f"arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/cam0{i}outdoor" for i in (1, 2, 3)]
    never = {thing: "NEVER" for thing in [plug] + cams}
    with Emulator("--tick", "0.5", "--outcomes", json.dumps({"things": never})) as emu:
        # ---- first plan and apply
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 2 and "Plan: 7 to create, 0 to update, 0 to replace, 0 to delete; 0 unchanged." in out,
              "first plan: 6 creates, exit 2", out + err)
        check(emu.mutations(0, TASK_MUTATING) == [], "plan sends nothing mutating")
        check("\n        firmware s3://acme-fw-jobs/thermostat/2.4.1/job-document.json · ONE_TIME over HTTP (PUSH) · "
              "2 things: th0a1b2c3d4e5f, th9f8e7d6c5b4a · from 2026-12-01T02:00 to 2026-12-08T02:00 (then "
              "STOP_ROLLOUT), in windows Mon-Fri 02:00 for 180 min, Sat-Sun 04:00 for 240 min · retries FAILED ×2, "
              "TIMED_OUT ×1 · configuration staged-push (\"Staged push\" · 10/min, ×2.5 per 50 succeeded, at most "
              "200/min · CANCEL when 10% of at least 20 executed FAILED · times out after 120 min)\n" in out
              and '\n        "Staged push" · 10/min, ×2.5 per 50 succeeded, at most 200/min · CANCEL when 10% of at '
              'least 20 executed FAILED · times out after 120 min\n' in out
              and "\nDevices: 6 tasks to create send firmware to 6 things by name and the things of 3 target "
              "queries.\n" in out,
              "first plan: each create in words (firmware, targets, schedule, retries, the configuration by "
              "name with its rate, abort criteria and timeout), and the devices line", out)
        rc, out, err = run(emu, "apply", "--repo", repo)
        creates = [e for e in emu.mutations(0, TASK_MUTATING) if e["op"] == "CreateOtaTask"]
        check(rc == 0 and "Apply complete: 7 created" in out and len(creates) == 6 and len(emu.live_tasks()) == 6,
              "first apply: one CreateOtaTask per manifest", out + err)
        s = state_json()
        check(s["serial"] == 1 and sorted(s["tasks"]) == sorted(t["name"] for t in json.loads(
            subprocess.run([RUNNER, "tokens", "--repo", repo, "--output", "json"], capture_output=True,
                           text=True).stdout) if t["kind"] == "OtaTask"), "the state records every manifest")
        ids = {t["TaskId"] for t in emu.live_tasks()}
        check({r["taskId"] for r in s["tasks"].values()} == ids, "the state's task ids are the service's")
        toks = {e["clientToken"] for e in creates}
        check(toks == {r["clientToken"] for r in s["tasks"].values()}, "sent with the manifests' ClientTokens")
        check(not os.path.exists(state + ".journal") or os.path.getsize(state + ".journal") == 0,
              "the journal is emptied after the snapshot")

        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        check(rc == 0 and "No changes." in out and emu.mutations(n, TASK_MUTATING) == [], "second apply sends nothing mutating",
              out + err)
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 0 and "No changes. 1 configuration and 6 tasks match the manifests." in out, "plan: no changes, exit 0", out + err)

        # ---- a Description edit: exactly one UpdateOtaTask
        edit("manifests/security/door-lock.yaml", "Door lock firmware 1-9-0 with BLE fixes",
             "Door lock firmware 1-9-0 with BLE and NFC fixes")
        commit("door lock description")
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 2 and "~   update  door-lock-1-9-0" in out and
              'Description: "Door lock firmware 1-9-0 with BLE fixes" -> "Door lock firmware 1-9-0 with BLE and NFC fixes"' in out,
              "plan shows the update with old -> new", out)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        m = emu.mutations(n, TASK_MUTATING)
        check(rc == 0 and [e["op"] for e in m] == ["UpdateOtaTask"], "a Description edit is one UpdateOtaTask",
              str(m) + out + err)
        door = state_json()["tasks"]["door-lock-1-9-0"]
        check(door["spec"]["Description"] == "Door lock firmware 1-9-0 with BLE and NFC fixes",
              "the state has the new Description")

        # ---- a Target edit: replace = delete, then create
        old_id = state_json()["tasks"]["smart-plug-5-1-0"]["taskId"]
        edit("manifests/energy/smart-plug.yaml", "managed-thing/plug0001", "managed-thing/plug0002")
        commit("smart plug target")
        rc, out, err = run(emu, "plan", "--repo", repo, "--output", "json")
        plan = json.loads(out)
        acts = plan["actions"]
        check(rc == 0 and plan["formatVersion"] == 1 and plan["summary"]["replace"] == 1 and
              acts[0]["kind"] == "replace" and acts[0]["name"] == "smart-plug-5-1-0" and
              acts[0]["changes"][0]["field"] == "Target" and acts[0]["taskId"] == old_id and
              len(acts[0]["clientToken"]) == 43 and acts[0]["file"] == "manifests/energy/smart-plug.yaml"
              and acts[0]["line"] == 3, "plan json: the replace with field, old and new", out)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        check(rc == 1 and "would delete 1 running task, cancelling their devices' executions: "
              "smart-plug-5-1-0 (replace task %s, " % old_id in err and "give --allow-cancel" in err
              and emu.mutations(n, TASK_MUTATING) == [] and "warning: task %s is " % old_id in out,
              "replacing a running task is refused without --allow-cancel, naming it", out + err)
        rc, out, err = run(emu, "apply", "--repo", repo, "--allow-cancel")
        m = emu.mutations(n, TASK_MUTATING)
        new_id = state_json()["tasks"]["smart-plug-5-1-0"]["taskId"]
        check(rc == 0 and [e["op"] for e in m] == ["DeleteOtaTask", "CreateOtaTask"] and new_id != old_id
              and len(emu.live_tasks()) == 6, "a Target edit is a replace", str(m) + out + err)

        # ---- a revision bump: a fresh token, so a new task
        edit("manifests/hvac/thermostat.yaml", "  revision: 1\n", "  revision: 2\n")
        commit("thermostat revision")
        rc, out, err = run(emu, "plan", "--repo", repo)
        check("-/+ replace thermostat-2-4-1" in out and "metadata.revision 1 -> 2" in out, "revision bump: replace", out)
        rc, out, err = run(emu, "apply", "--repo", repo, "--allow-cancel")
        check(rc == 0 and "1 replaced" in out, "revision bump applied", out + err)

        # ---- a removed manifest: orphaned, deleted only with --prune; --max-deletes
        gone_id = state_json()["tasks"]["hub-7-0-0"]["taskId"]
        git("rm", "-q", "manifests/hvac/hub.yml")
        commit("drop hub")
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        check(rc == 0 and "!   orphan  hub-7-0-0" in out and "run with --prune to delete the task" in out
              and emu.mutations(n, TASK_MUTATING) == [] and "hub-7-0-0" in state_json()["tasks"],
              "without --prune the task is orphaned, not deleted", out + err)
        rc, out, err = run(emu, "plan", "--repo", repo, "--prune", "--max-deletes", "0", "--allow-cancel",
                           "--detailed-exitcode")
        check(rc == 2 and "-   delete  hub-7-0-0" in out and
              "Warning: apply would refuse: this plan would delete 1 task (1 pruned, 0 replaced) and "
              "--max-deletes is 0" in out, "plan shows the whole plan with the --max-deletes warning", out + err)
        rc, out, err = run(emu, "apply", "--repo", repo, "--prune", "--max-deletes", "0", "--allow-cancel")
        check(rc == 1 and "error: this plan would delete 1 task (1 pruned, 0 replaced) and --max-deletes is 0"
              in err and emu.mutations(n, TASK_MUTATING) == [], "apply refuses past --max-deletes", out + err)
        rc, out, err = run(emu, "apply", "--repo", repo, "--prune", "--allow-cancel")
        m = emu.mutations(n, TASK_MUTATING)
        check(rc == 0 and [e["op"] for e in m] == ["DeleteOtaTask"] and m[0]["path"].endswith(gone_id)
              and "hub-7-0-0" not in state_json()["tasks"], "--prune deletes it", out + err)

        # ---- --target limits the run
        edit("manifests/security/cameras.yaml", "Indoor camera firmware 3-0-2", "Indoor camera firmware 3-0-3")
        edit("manifests/security/cameras.yaml", "Outdoor camera firmware 3-0-2", "Outdoor camera firmware 3-0-3")
        commit("cameras")
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo, "--target", "camera-indoor-3-0-2")
        m = emu.mutations(n, TASK_MUTATING)
        check(rc == 0 and len(m) == 1 and "camera-outdoor" not in out, "--target: only that manifest", out + str(m))

        # ---- markdown and github outputs
        rc, out, err = run(emu, "plan", "--repo", repo, "--output", "markdown")
        check(rc == 0 and "### ota-runner plan" in out and "| `~` | update | `camera-outdoor-3-0-2` |" in out
              and "<details><summary>update <code>camera-outdoor-3-0-2</code></summary>" in out,
              "markdown: a table and collapsible details", out)
        summary = os.path.join(tmp, "step-summary.md")
        rc, out, err = run(emu, "plan", "--repo", repo, "--output", "github", GITHUB_STEP_SUMMARY=summary)
        check(rc == 0 and "::notice file=manifests/security/cameras.yaml,line=21,title=ota-runner plan: update::update camera-outdoor-3-0-2 (Description)" in out
              and "### ota-runner plan" in open(summary).read(), "github: annotations and the step summary", out)

        # ---- saved plans
        planfile = os.path.join(tmp, "plan.json")
        rc, out, err = run(emu, "plan", "--repo", repo, "--out", planfile)
        check(rc == 0 and "Saved the plan to" in out, "plan --out", out + err)
        # ---- show: the saved plan in every output, as plan printed it; no call
        n = len(emu.log())
        for output in ("text", "json", "markdown"):
            saved = os.path.join(tmp, f"plan-{output}.json")
            rc, planned, err = run(emu, "plan", "--repo", repo, "--output", output, "--out", saved)
            planned = planned.replace(f"Saved the plan to {saved}; apply it with: ota-runner apply {saved}\n", "")
            n = len(emu.log())
            rc2, shown, err2 = run(emu, "show", saved, "--output", output, "--detailed-exitcode")
            check(rc2 == 2 and shown == planned and len(emu.log()) == n,
                  f"show --output {output}: the saved plan as plan printed it, exit 2 with changes, no call",
                  f"{rc2}\n{shown}\n---\n{planned}{err2}")
        for bad, why in ((os.path.join(tmp, "nope.json"), "cannot read"), (os.path.join(repo, "manifests", "energy",
                                                                                        "smart-plug.yaml"), "is not JSON")):
            rc, out, err = run(emu, "show", bad)
            check(rc == 1 and why in err and not out, f"show: a file that is not a plan is refused ({why})", out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", planfile)
        check(rc == 0 and [e["op"] for e in emu.mutations(n, TASK_MUTATING)] == ["UpdateOtaTask"], "apply FILE", out + err)
        rc, out, err = run(emu, "apply", planfile)
        check(rc == 1 and "the saved plan is stale" in err and "serial" in err, "a plan applied twice is stale", err)
        rc, out, err = run(emu, "plan", "--repo", repo, "--out", planfile)
        edit("manifests/energy/smart-plug.yaml", "plug0002", "plug0003")
        commit("moves the branch")
        n = len(emu.log())
        rc, out, err = run(emu, "apply", planfile)
        check(rc == 1 and "the saved plan is stale" in err and "was at" in err and emu.mutations(n, TASK_MUTATING) == [],
              "a plan whose commit moved is refused", err)
        git("reset", "-q", "--hard", "HEAD~1")

        # ---- status and state commands
        rc, out, err = run(emu, "status")
        check(rc == 0 and "door-lock-1-9-0" in out and "5 tasks in" in out, "status", out + err)
        rc, out, err = run(emu, "status", "--output", "json")
        st = [x for x in json.loads(out) if x["kind"] == "OtaTask"]
        check(rc == 0 and len(st) == 5 and all(x["status"] in ("SCHEDULED", "IN_PROGRESS", "COMPLETED") and "counts" in x
                                              for x in st), "status json with counts", out)
        rc, out, err = run(emu, "state", "list")
        check(rc == 0 and "camera-indoor-3-0-2" in out and "1 configuration, 5 tasks; state" in out, "state list", out)
        rc, out, err = run(emu, "state", "show", "door-lock-1-9-0")
        check(rc == 0 and json.loads(out)["taskId"] == state_json()["tasks"]["door-lock-1-9-0"]["taskId"],
              "state show", out)
        door_id = state_json()["tasks"]["door-lock-1-9-0"]["taskId"]
        rc, out, err = run(emu, "state", "rm", "door-lock-1-9-0")
        check(rc == 0 and "door-lock-1-9-0" not in state_json()["tasks"] and
              any(t["TaskId"] == door_id for t in emu.live_tasks()), "state rm forgets, the task stays", out + err)
        rc, out, err = run(emu, "state", "import", "door-lock-1-9-0", "nosuchtask")
        check(rc == 1 and "cannot import nosuchtask" in err and "404" in err, "import checks with GetOtaTask", err)
        rc, out, err = run(emu, "state", "import", "door-lock-1-9-0", door_id)
        check(rc == 0 and state_json()["tasks"]["door-lock-1-9-0"]["phase"] == "imported", "state import", out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 0 and "No changes." in out, "an imported task matching its manifest: no changes", out + err)

        # ---- a second run while one holds the lock: exit 3, nothing changed
        import fcntl
        before = open(state, "rb").read()
        with open(state + ".lock", "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            lock.seek(0)
            lock.truncate()
            lock.write(json.dumps({"pid": 4242, "host": "ci-runner-7", "startedAt": "2026-11-28T10:00:00Z",
                                   "command": "apply"}))
            lock.flush()
            n = len(emu.log())
            rc, out, err = run(emu, "apply", "--repo", repo)
            check(rc == 3 and "locked by another run: pid 4242 on ci-runner-7 since 2026-11-28T10:00:00Z (ota-runner apply)" in err
                  and len(emu.log()) == n and open(state, "rb").read() == before, "lock contention: exit 3", err)

        # ---- bad state files are refused and left byte-identical
        good = open(state, "rb").read()
        cases = {
            "truncated": good[: len(good) // 2],
            "future version": good.replace(b'"version":\t2', b'"version":\t3'),
            "not a state": b'{"hello": "world"}\n',
            "garbage": b"\x00\x01not json at all",
            "bad record": good.replace(b'"taskId":', b'"taskIdX":', 1),
            "unknown phase": good.replace(b'"phase":\t"created"', b'"phase":\t"creatd"', 1),
            "a name no manifest can have": good.replace(b'"door-lock-1-9-0":', b'"Door_Lock":', 1),
        }
        for what, data in cases.items():
            open(state, "wb").write(data)
            n = len(emu.log())
            rc, out, err = run(emu, "apply", "--repo", repo)
            check(rc == 1 and "was left as it is" in err and open(state, "rb").read() == data and len(emu.log()) == n,
                  f"{what} state: refused and untouched", err)
        open(state, "wb").write(good)
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 0, "the restored state works", out + err)
    # ---- --refresh full: a field changed in the service is put back (the
    # tasks still running: an ended task takes no update)
    with Emulator("--tick", "0", "--outcomes", json.dumps({"never": True})) as emu:
        for suffix in ("", ".journal", ".bak"):
            if os.path.exists(state + suffix):
                os.unlink(state + suffix)
        rc, out, err = run(emu, "apply", "--repo", repo)
        door = state_json()["tasks"]["door-lock-1-9-0"]["taskId"]
        subprocess.run(["aws", "iot-managed-integrations", "update-ota-task", "--identifier", door,
                        "--description", "Changed by hand", "--endpoint-url", emu.url],
                       env={**runner_env(emu.url, state), "AWS_PAGER": "", "AWS_DEFAULT_REGION": "us-east-1"}, check=True,
                       capture_output=True)
        rc, out, err = run(emu, "plan", "--repo", repo, "--detailed-exitcode")
        check(rc == 0, "--refresh list does not see field drift", out)
        # drift apart from changes (issue 25): status marks it, plan has its own section and list
        rc, out, err = run(emu, "status")
        check(rc == 0 and "drift: door-lock-1-9-0: the service's task differs from what the state records in "
              "Description" in out, "status marks the drifted task", out + err)
        rc, out, err = run(emu, "status", "--output", "json")
        check([x["name"] for x in json.loads(out) if x.get("drift")] == ["door-lock-1-9-0"],
              "status JSON: drift on the drifted task only", out)
        rc, out, err = run(emu, "plan", "--repo", repo, "--refresh", "full", "--output", "json")
        d = json.loads(out or "{}")
        check(d.get("drift") and d["drift"][0]["address"] == "OtaTask/door-lock-1-9-0"
              and d["drift"][0]["what"] == "changed" and d["drift"][0]["fields"] == ["Description"],
              "plan JSON: a drift list apart from the changes", json.dumps(d.get("drift")))
        rc, out, err = run(emu, "plan", "--repo", repo, "--refresh", "full")
        check(out.index("Drift: the service changed or lost these behind ota-runner's back") <
              out.index("~   update  door-lock-1-9-0") and "  door-lock-1-9-0: the service's task differs in "
              "Description\n" in out, "plan text: a drift section before the actions", out)
        rc, out, err = run(emu, "plan", "--repo", repo, "--refresh", "full", "--output", "markdown")
        check("#### Drift" in out and "- `door-lock-1-9-0`: the service's task differs in Description" in out,
              "plan markdown: a drift section", out)
        before = len(emu.log())
        rc, out, err = run(emu, "plan", "--repo", repo, "--refresh", "full", "--detailed-exitcode")
        gets = [e for e in emu.log()[before:] if e["op"] == "GetOtaTask"]
        check(rc == 2 and "~   update  door-lock-1-9-0" in out and "drift: the service's task differs" in out
              and 'Description: "Changed by hand" ->' in out and len(gets) == 5,
              "--refresh full: GetOtaTask per task, and the drift is planned back", out + err)
        rc, out, err = run(emu, "apply", "--repo", repo, "--refresh", "full")
        check(rc == 0 and "1 updated" in out, "drift repaired", out + err)
        rc, out, err = run(emu, "status")
        check(rc == 0 and "drift:" not in out, "status: no drift once repaired", out)
        # a task deleted behind ota-runner's back: drift too, made again
        gone_name = sorted(n for n in state_json()["tasks"] if n != "door-lock-1-9-0")[0]
        hub = state_json()["tasks"][gone_name]["taskId"]
        subprocess.run(["aws", "iot-managed-integrations", "delete-ota-task", "--identifier", hub,
                        "--endpoint-url", emu.url],
                       env={**runner_env(emu.url, state), "AWS_PAGER": "", "AWS_DEFAULT_REGION": "us-east-1"}, check=True,
                       capture_output=True)
        rc, out, err = run(emu, "plan", "--repo", repo, "--output", "json", "--detailed-exitcode")
        d = json.loads(out or "{}")
        check(rc == 2 and [(x["address"], x["what"], x.get("taskId")) for x in d.get("drift", [])] ==
              [("OtaTask/" + gone_name, "gone", hub)],
              "a task gone behind ota-runner's back is drift too (exit 2: the plan makes it again)",
              json.dumps(d.get("drift")) + err)

    # ---- failures: the others go on, every failure listed, exit 1; --fail-fast
    with Emulator("--tick", "0", "--error-rate", "1.0") as emu:
        for suffix in ("", ".journal", ".bak"):
            if os.path.exists(state + suffix):
                os.unlink(state + suffix)
        rc, out, err = run(emu, "apply", "--repo", repo, "--refresh", "list", "--max-attempts", "1")
        check(rc == 1 and "refresh (use --refresh none to plan without the service): ListOtaTaskConfigurations: HTTP 500"
              in err and not os.path.exists(state), "a failing refresh stops before any change", err)
        rc, out, err = run(emu, "apply", "--repo", repo, "--refresh", "none", "--no-adopt", "--max-attempts", "1",
                           "--parallelism", "1")
        creates = [e for e in emu.log() if e["op"] == "CreateOtaTask"]
        check(rc == 1 and len(creates) == 4 and err.count("ota-runner: error: CreateOtaTask (") == 4
              and err.count("ota-runner: error: CreateOtaTaskConfiguration (") == 1
              and "HTTP 500 InternalServerException" in err and "Apply incomplete: 0 created" in out
              and "6 failed" in out, "failures: all tried, all listed, exit 1", out + err)
        check("ota-runner: error: thermostat-2-4-1: not started: it waits for OtaTaskConfiguration/staged-push, "
              "which failed; the next apply tries again" in err and
              not [e for e in emu.log() if e["op"] == "CreateOtaTask" and "thermostat" in json.dumps(e)],
              "what refers to a configuration that failed is not started, and says why", err)
        lines = [json.loads(x) for x in open(state + ".journal").read().splitlines()]
        check(state_json()["tasks"] == {} and len(lines) == 5 and {x["type"] for x in lines} == {"intent"}
              and {x["op"] for x in lines} == {"create"},
              "nothing recorded for failed calls; a create answered 500 may have landed, so it stays pending "
              "in the journal for the next run to look for", json.dumps(state_json())[:200] + str(lines)[:300])
        emu.control("reset", {})
        rc, out, err = run(emu, "apply", "--repo", repo, "--refresh", "none", "--no-adopt", "--max-attempts", "1",
                           "--parallelism", "1", "--fail-fast")
        creates = [e for e in emu.log() if e["op"] in ("CreateOtaTask", "CreateOtaTaskConfiguration")]
        check(rc == 1 and len(creates) == 1 and "stopped early: --fail-fast" in err, "--fail-fast stops",
              out + err)

    # ---- two real applies at once: the second exits 3 at once and sends nothing
    with Emulator("--tick", "0", "--latency-ms", "300") as emu:
        for suffix in ("", ".journal", ".bak"):
            if os.path.exists(state + suffix):
                os.unlink(state + suffix)
        first = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--parallelism", "1"], env=runner_env(emu.url, state),
                                 cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the first holds the lock once it calls the service (it locks, then lists); the lock
        # file itself stays between runs, so its presence says nothing
        wait_until(lambda: len(emu.log()) > 0, timeout=30)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo)
        second_requests = len(emu.log()) - n
        out1, err1 = first.communicate(timeout=60)
        check(rc == 3 and "locked by another run: pid %d" % first.pid in err and "(ota-runner apply)" in err,
              "a second apply during a running one exits 3 naming the holder", err)
        check(first.returncode == 0 and len(emu.live_tasks()) == 5 and second_requests <= 1,
              "the first one finishes alone", out1 + err1)
finally:
    shutil.rmtree(tmp)

finish()
