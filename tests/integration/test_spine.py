#!/usr/bin/env python3
"""The spine under attack (issue 11): what plan, apply and state do to running
rollouts when a user, a CI system or a bad file pushes them.

- one task belongs to one name: `state import` of another name's task, and a
  hand-edited state with two names on one task, are refused naming both;
- --fail-fast with failing calls: a replace whose delete went through is
  carried to its create; every failed name is listed, saying where it stopped;
- SIGTERM / SIGINT: nothing new starts, the calls in flight finish, the
  snapshot is written, what was left is named, exit 143 / 130; a second
  signal stops at once and the journal still covers it;
- a replace of a running task is marked in every plan output;
- a plan past --max-deletes is shown whole, with the warning;
- a state made at another endpoint is refused (--migrate-endpoint);
- plan reads without the lock, also while snapshots are being replaced;
- an empty manifest folder with --prune deletes nothing (--allow-empty);
- a `git mv` is recorded without a call;
- `state list` during a live apply names the run.
"""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program, sample_fleet, wait_until  # noqa: E402
from harness import Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
SANITIZED = bool(os.environ.get("OTR_SANITIZED"))

tmp = tempfile.mkdtemp()
state = os.path.join(tmp, "state.json")


def git(repo, *args):
    subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, env=GIT_ENV)


def write_fleet(repo, n, suffix=""):
    """n manifests, one per file, each with one target ending in suffix."""
    d = os.path.join(repo, "manifests")
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        with open(os.path.join(d, f"r{i:02d}.yaml"), "w") as f:
            f.write(f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {{name: rollout-{i:02d}}}\n"
                    f"spec:\n  S3Url: s3://fw/{i:02d}.json\n  OtaType: ONE_TIME\n"
                    f"  Target: [arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/t{i}{suffix}]\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"fleet {n}{suffix}")


def new_repo(name, n=0):
    repo = os.path.join(tmp, name)
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    if n:
        write_fleet(repo, n)
    return repo


def run(emu, *args, **extra):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state, **extra), cwd=tmp,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def fresh_state():
    for suffix in ("", ".journal", ".bak", ".lock"):
        if os.path.exists(state + suffix):
            os.unlink(state + suffix)


def state_json():
    return json.load(open(state))


def one_task_each(emu, n, what):
    tasks = emu.live_tasks()
    urls = sorted(t["S3Url"] for t in tasks)
    ids = sorted(r["taskId"] for r in state_json()["tasks"].values())
    check(len(tasks) == n and len(set(urls)) == n and ids == sorted(t["TaskId"] for t in tasks),
          f"{what}: exactly one task per manifest, and the state's ids are the service's",
          f"live={len(tasks)} distinct={len(set(urls))} state={len(ids)}")


try:
    # ---- 1. one task belongs to one name
    fleet = os.path.join(tmp, "sample")
    sample_fleet(fleet)
    with Emulator("--tick", "0") as emu:
        fresh_state()
        rc, out, err = run(emu, "apply", "--repo", fleet)
        check(rc == 0, "sample fleet applied", out + err)
        camera = state_json()["tasks"]["camera-indoor-3-0-2"]["taskId"]
        rc, out, err = run(emu, "state", "rm", "hub-7-0-0")
        n = len(emu.log())
        rc, out, err = run(emu, "state", "import", "hub-7-0-0", camera)
        check(rc == 1 and f"task {camera} is already recorded as camera-indoor-3-0-2" in err
              and "hub-7-0-0" in err and "hub-7-0-0" not in state_json()["tasks"],
              "state import of another name's task is refused, naming both", err)
        rc, out, err = run(emu, "state", "import", "no-such-manifest", camera)
        check(rc == 1 and "already recorded as camera-indoor-3-0-2" in err,
              "... also under a name no manifest has", err)
        # a hand-edited state with two names on one task
        s = state_json()
        s["tasks"]["hub-7-0-0"] = dict(s["tasks"]["camera-indoor-3-0-2"])
        text = json.dumps(s, indent=1)
        open(state, "w").write(text)
        n = len(emu.log())
        for cmd in (["plan", "--repo", fleet], ["apply", "--repo", fleet, "--prune"], ["status"]):
            rc, out, err = run(emu, *cmd)
            check(rc == 1 and f"records task {camera} under two names, camera-indoor-3-0-2 and hub-7-0-0"
                  in err and open(state).read() == text, f"{cmd[0]}: a state with one task under two names "
                  "is refused, naming both, and left as it is", err)
        check(not [e for e in emu.log()[n:] if e["op"] in ("DeleteOtaTask", "CreateOtaTask")],
              "nothing was deleted or created")
        rc, out, err = run(emu, "state", "rm", "hub-7-0-0")
        check(rc == 0, "state rm mends it", out + err)
        rc, out, err = run(emu, "plan", "--repo", fleet, "--output", "json")
        check(rc == 0 and [a["kind"] for a in json.loads(out)["actions"]] == ["create"],
              "after the mend: hub is created, the camera's task untouched", out + err)

        # ---- 10. git mv: recorded without a call
        git(fleet, "mv", "manifests/hvac/hub.yml", "manifests/hub.yml")
        git(fleet, "mv", "manifests/security/door-lock.yaml", "manifests/door-lock.yaml")
        git(fleet, "commit", "-qm", "move")
        rc, out, err = run(emu, "apply", "--repo", fleet)
        check(rc == 0, "apply after the move", out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "plan", "--repo", fleet, "--detailed-exitcode")
        check(rc == 0 and "No changes." in out, "a moved manifest is no change (the hub moved with its create)",
              out + err)
        rc, out, err = run(emu, "state", "list")
        check("manifests/door-lock.yaml" in out and "manifests/security/door-lock.yaml" not in out,
              "state list shows the file the manifest moved to", out)
        head = subprocess.run(["git", "-C", fleet, "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        check(state_json()["tasks"]["door-lock-1-9-0"]["commit"] == head and
              not [e for e in emu.log()[n:] if not e["op"].startswith("List")],
              "the new file and commit are recorded without a call")

    # ---- 6. a state made at another endpoint
    with Emulator("--tick", "0") as other:
        n = len(other.log())
        rc, out, err = run(other, "plan", "--repo", fleet)
        check(rc == 1 and "was made for http://127.0.0.1:" in err and f"this run would use {other.url}" in err
              and "--migrate-endpoint" in err and len(other.log()) == n,
              "a state from another endpoint is refused, naming both, before any call", err)
        rc, out, err = run(other, "apply", "--repo", fleet, "--refresh", "none")
        check(rc == 1 and "--migrate-endpoint" in err and other.live_tasks() == [], "apply too (even with --refresh none)",
              err)
        rc, out, err = run(other, "plan", "--repo", fleet, "--region", "eu-west-1")
        check(rc == 1 and "(region eu-west-1)" in err, "another region is another place too", err)
        rc, out, err = run(other, "apply", "--repo", fleet, "--migrate-endpoint")
        check(rc == 0 and "7 created" in out and state_json()["service"]["endpoint"] == other.url,
              "--migrate-endpoint: the fleet is created there and the state moves", out + err)

    # ---- 8. an empty manifest folder and --prune
    empty = new_repo("empty")
    os.makedirs(os.path.join(empty, "manifests"))
    open(os.path.join(empty, "manifests", "README.md"), "w").write("nothing here yet\n")
    git(empty, "add", "-A")
    git(empty, "commit", "-qm", "readme")
    with Emulator("--tick", "0") as emu:
        fresh_state()
        rc, out, err = run(emu, "apply", "--repo", fleet)
        before = len(emu.live_tasks())
        rc, out, err = run(emu, "plan", "--repo", empty, "--prune", "--detailed-exitcode")
        check(rc == 2 and "-   delete" in out and "no manifest was found under manifests" in out
              and "--allow-empty" in out, "plan of an empty folder with --prune: the deletes, and the warning", out)
        rc, out, err = run(emu, "apply", "--repo", empty, "--prune")
        check(rc == 1 and "no manifest was found under manifests" in err and len(emu.live_tasks()) == before == 6,
              "apply refuses to prune everything when no manifest is left", err)
        rc, out, err = run(emu, "apply", "--repo", empty, "--prune", "--allow-empty", "--allow-cancel")
        check(rc == 0 and emu.live_tasks() == [] and state_json()["tasks"] == {}, "--allow-empty: the fleet goes",
              out + err)

    # ---- 4, 5. a running task's replace is marked everywhere; a plan past --max-deletes is whole
    with Emulator("--tick", "30") as emu:  # tasks stay SCHEDULED, then IN_PROGRESS, for a long time
        fresh_state()
        rc, out, err = run(emu, "apply", "--repo", fleet)
        text = open(os.path.join(fleet, "manifests", "energy", "smart-plug.yaml")).read()
        open(os.path.join(fleet, "manifests", "energy", "smart-plug.yaml"), "w").write(
            text.replace("managed-thing/plug0001", "managed-thing/plug0009"))
        git(fleet, "commit", "-qam", "plug target")
        plug = state_json()["tasks"]["smart-plug-5-1-0"]["taskId"]
        rc, out, err = run(emu, "plan", "--repo", fleet, "--output", "json")
        act = [a for a in json.loads(out)["actions"] if a["name"] == "smart-plug-5-1-0"]
        check(rc == 0 and act and act[0]["cancelsRunning"] == "SCHEDULED" and
              any("--allow-cancel" in w for w in json.loads(out)["warnings"]), "plan json: cancelsRunning and the warning",
              out)
        rc, out, err = run(emu, "plan", "--repo", fleet, "--output", "markdown")
        check(f"**warning:** task {plug} is SCHEDULED: deleting it cancels its 1 device's executions" in out
              and "> [!WARNING]" in out, "plan markdown: the warning on the row, with the device count, and above "
              "the table", out)
        check("\n\nDevices: 1 task to create send firmware to 1 thing by name.\n\n" in out
              and "firmware s3://acme-fw-jobs/smart-plug/5.1.0/job-document.json · ONE_TIME · 1 thing: plug0009" in out,
              "plan markdown: the devices line under the summary, and what the new task sends to whom", out)
        rc, out, err = run(emu, "plan", "--repo", fleet, "--output", "github")
        check("::warning file=manifests/energy/smart-plug.yaml,line=3,title=ota-runner plan: replace::" in out
              and "deleting it cancels its 1 device's executions" in out and
              "::warning title=ota-runner plan: apply would refuse::" in out, "plan github: the warnings", out)
        rc, out, err = run(emu, "plan", "--repo", fleet, "--max-deletes", "0", "--allow-cancel", "--output",
                           "markdown")
        check(rc == 0 and "| `-/+` | replace | `smart-plug-5-1-0` |" in out and "--max-deletes is 0" in out,
              "plan past --max-deletes: the whole plan, with the warning (markdown)", out + err)
        git(fleet, "revert", "--no-edit", "HEAD")

    # ---- 7, 11. plan without the lock; state list names a live run
    with Emulator("--tick", "0") as emu:
        fresh_state()
        with open(state + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            lock.write(json.dumps({"pid": 4242, "host": "ci-7", "startedAt": "2026-11-30T10:00:00Z",
                                   "command": "apply"}))
            lock.flush()
            rc, out, err = run(emu, "plan", "--repo", fleet, "--detailed-exitcode")
            check(rc == 2 and "7 to create" in out, "plan works while another run holds the lock", out + err)
            rc, out, err = run(emu, "state", "list")
            check(rc == 0 and "(a run is in progress: pid 4242 on ci-7 since 2026-11-30T10:00:00Z (ota-runner apply))"
                  in out, "state list names the run in progress", out)
            rc, out, err = run(emu, "apply", "--repo", fleet)
            check(rc == 3 and "pid 4242 on ci-7" in err, "apply still waits its turn (exit 3)", err)
        rc, out, err = run(emu, "state", "list")
        check("in progress" not in out, "no run, no such line", out)

    # a read without the lock gets a snapshot and journal that belong together,
    # while another process keeps saving (a new snapshot renamed into place,
    # then a journal of the new serial, every 10 ms): never "the journal is
    # newer than the state". The snapshot is big enough (3,000 records) that
    # reading it leaves time for a save to land before the journal is read.
    lineage = "123e4567-e89b-42d3-a456-426614174000"
    big = json.dumps({"format": "ota-runner-state", "version": 1, "lineage": lineage, "serial": 999999999,
                      "tasks": {f"t{i:05d}": {"phase": "created", "clientToken": "t", "revision": 1,
                                              "spec": {"S3Url": f"s3://x/{i}", "OtaType": "ONE_TIME"},
                                              "specDigest": "sha256:00", "taskId": f"id{i}"} for i in range(3000)}})

    def snapshot(serial):
        return big.replace("999999999", str(serial))

    def journal(serial):
        rec = {"phase": "created", "clientToken": "t", "revision": 1, "spec": {"S3Url": "s3://x", "OtaType": "ONE_TIME"},
               "specDigest": "sha256:00"}
        return json.dumps({"type": "intent", "op": "create", "name": "rollout-00", "record": rec, "seq": 1,
                           "lineage": lineage, "serial": serial}) + "\n"

    stop = threading.Event()

    def saver():
        k = 1
        while not stop.is_set():
            open(state + ".tmp", "w").write(snapshot(k))
            os.replace(state + ".tmp", state)
            open(state + ".journal", "w").write(journal(k))
            k += 1
            stop.wait(0.01)

    fresh_state()
    saver_thread = threading.Thread(target=saver, daemon=True)
    saver_thread.start()
    bad = []
    try:
        for i in range(60):
            p = subprocess.run([RUNNER, "state", "list"], capture_output=True, text=True,
                               env={**os.environ, "OTA_RUNNER_STATE": state}, timeout=60)
            if p.returncode != 0:
                bad.append(p.stderr)
    finally:
        stop.set()
        saver_thread.join()
    check(bad == [], "60 reads while the state is saved again and again: every one consistent", "\n".join(bad[:3]))

    # ---- 2. --fail-fast and failing calls: no replace stopped between its delete and its create
    repo40 = new_repo("forty", 40)
    with Emulator("--tick", "0", "--seed", "7") as emu:
        fresh_state()
        rc, out, err = run(emu, "apply", "--repo", repo40, "--parallelism", "8")
        check(rc == 0, "40 tasks created", out + err)
        old = {name: r["taskId"] for name, r in state_json()["tasks"].items()}
        write_fleet(repo40, 40, "-v2")
        tokens = {t["clientToken"]: t["name"] for t in json.loads(subprocess.run(
            [RUNNER, "tokens", "--repo", repo40, "--output", "json"], capture_output=True, text=True).stdout)}
        emu.control("faults", {"error_rate": 0.3, "seed": 7})
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--repo", repo40, "--max-deletes", "100", "--allow-cancel", "--fail-fast", "--max-attempts",
                           "1", "--parallelism", "4", "--refresh", "none", "--output", "json")
        result = json.loads(out)
        log = emu.log()[n:]
        deleted = {e["path"].rsplit("/", 1)[-1] for e in log if e["op"] == "DeleteOtaTask" and e["status"] == 200}
        created_after = {}
        for e in log:
            if e["op"] == "CreateOtaTask":
                created_after[tokens.get(e["clientToken"])] = True
        half_done = [name for name, tid in old.items() if tid in deleted and name not in created_after]
        check(rc == 1 and "--fail-fast" in result["stopped"] and half_done == [],
              "--fail-fast: every replace whose delete went through went on to its create",
              f"half done: {half_done}\n{err[-800:]}")
        failed = result["summary"]["failed"]
        check(failed > 0 and len(result["failures"]) == failed and
              len({f["name"] for f in result["failures"]}) == failed,
              "every failed name is listed once", json.dumps(result, indent=1)[:1500])
        notes = ("the next apply creates it", "the next apply tries the replace again", "the next apply tries again")
        check(all(any(x in f["error"] for x in notes) for f in result["failures"]),
              "each failure says where its chain stopped", json.dumps(result["failures"], indent=1)[:1500])
        check(result["summary"]["notStarted"] == len(result["notStarted"]) and
              result["summary"]["notStarted"] + result["summary"]["replaced"] + failed == 40,
              "done + failed + not started = every name", json.dumps(result["summary"]))
        emu.control("faults", {"error_rate": 0})
        rc, out, err = run(emu, "apply", "--repo", repo40, "--max-deletes", "100")
        check(rc == 0, "a plain re-run finishes it", out + err)
        one_task_each(emu, 40, "after --fail-fast")

    # ---- 3. SIGTERM / SIGINT: a graceful stop
    def apply_then_signal(emu, repo, signals, after=1.5):
        p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--parallelism", "2"], env=runner_env(emu.url, state), cwd=tmp,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(after)
        sent = time.monotonic()
        for sig in signals:
            p.send_signal(sig)
            time.sleep(0.05)
        out, err = p.communicate(timeout=120)
        return p.returncode, out, err, time.monotonic() - sent

    for sig, code, name in ((signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")):
        with Emulator("--tick", "0", "--latency-ms", "200") as emu:
            fresh_state()
            rc, out, err, took = apply_then_signal(emu, repo40, [sig])
            s = state_json() if os.path.exists(state) else {"tasks": {}}
            check(rc == code and "signal received" in err and "Apply interrupted" in out,
                  f"{name}: exit {code}, with a message", f"rc={rc}\n{out[-500:]}\n{err[-500:]}")
            check(os.path.exists(state) and sorted(r["taskId"] for r in s["tasks"].values()) ==
                  sorted(t["TaskId"] for t in emu.live_tasks()) and 0 < len(s["tasks"]) < 40,
                  f"{name}: the snapshot records exactly what was created", f"{len(s['tasks'])} recorded")
            check(os.path.getsize(state + ".journal") == 0, f"{name}: the journal is settled")
            left = [ln for ln in err.splitlines() if "not started (the next apply does them)" in ln]
            check(left and int(left[0].split("ota-runner: ")[1].split(" ")[0]) + len(s["tasks"]) == 40,
                  f"{name}: what was left is named", err[-600:])
            check(took < (10 if SANITIZED else 5), f"{name}: it stopped soon after the signal ({took:.1f} s)")
            rc, out, err = run(emu, "apply", "--repo", repo40)
            check(rc == 0, f"{name}: the next run converges", out + err)
            one_task_each(emu, 40, f"after {name}")

    # calls that take 2 s: the first signal's stop is still waiting for them when the
    # second one comes
    with Emulator("--tick", "0", "--latency-ms", "2000") as emu:
        fresh_state()
        rc, out, err, took = apply_then_signal(emu, repo40, [signal.SIGTERM, signal.SIGTERM], after=1.0)
        check(rc == 143 and "second signal: stopping now" in err and took < 1.0,
              "a second SIGTERM stops at once", f"rc={rc} took={took:.2f}\n{err[-400:]}")
        rc, out, err = run(emu, "apply", "--repo", repo40)
        check(rc == 0, "after a second signal the next run converges (the journal covered it)", out + err)
        one_task_each(emu, 40, "after two signals")

    # state list during a live apply names it
    with Emulator("--tick", "0", "--latency-ms", "200") as emu:
        fresh_state()
        p = subprocess.Popen([RUNNER, "apply", "--repo", repo40, "--parallelism", "1"], env=runner_env(emu.url, state), cwd=tmp,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: len(emu.log()) > 0, timeout=30)  # it holds the lock once it calls the service
        rc, out, err = run(emu, "state", "list")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        check(rc == 0 and f"a run is in progress: pid {p.pid} on " in out and "(ota-runner apply)" in out,
              "state list during a live apply names the run", out + err)
finally:
    shutil.rmtree(tmp)

finish()
