#!/usr/bin/env python3
"""Safety by construction (issue 23): each place where a hostile pass broke a
gate, with the order of events that broke it, against the emulator (and
moto for the S3 state).

- holdAfter moved back to a wave before the newest started one holds: no
  wave after it starts;
- more in the functions below, one per defect, each named after it.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, program  # noqa: E402
from fleet import ARN, Fleet, config, rollout, service, task  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, MotoS3  # noqa: E402

RUNNER = program("OTA_RUNNER")
SLOW = os.environ.get("OTR_SANITIZED") == "1"
TICK = "0.05"


def drive(f, until, limit=20.0, *args):
    """apply until until() holds; returns the last (rc, out, err)."""
    deadline = time.time() + limit * (3 if SLOW else 1)
    last = None
    while time.time() < deadline:
        last = f.run("apply", *args)
        if last[0] != 0 or until():
            return last
        time.sleep(0.2)
    return last


def waves(f, name="fw"):
    s = f.read_state()
    rec = s and s.get("rollouts", {}).get(name)
    return [w["name"] for w in rec["progress"]["waves"]] if rec else []


def hold_moved_back():
    f = Fleet(RUNNER, "hold-back", "--tick", TICK, files={"fw.yaml": rollout(hold="w2")})
    try:
        rc, out, err = drive(f, lambda: waves(f) == ["w1", "w2"] and "held by holdAfter" in
                             f.run("status")[1])
        check(rc == 0 and waves(f) == ["w1", "w2"], "hold-back: w1 and w2 started, held after w2", out + err)
        f.commit({"fw.yaml": rollout(hold="w1")}, "hold after w1")
        rc, out, err = f.run("plan")
        check(rc == 0 and "starts wave w3" not in out and "held by holdAfter" in out,
              "hold-back: holdAfter moved back to w1 holds the plan (no wave w3)", out + err)
        rc, out, err = f.run("apply")
        check(rc == 0 and waves(f) == ["w1", "w2"] and len(f.creates()) == 2,
              "hold-back: apply starts no wave past holdAfter", out + err)
    finally:
        f.stop()


def adopt_records():
    """apply on a lost state adopts what the service holds, and saves it: the
    next plan adopts nothing (defect 8)."""
    f = Fleet(RUNNER, "adopt-saves", "--tick", TICK, files={"t1.yaml": task("t1")})
    try:
        rc, out, err = f.run("apply")
        check(rc == 0 and len(f.creates()) == 1, "adopt-saves: the first apply creates t1", out + err)
        f.lose_state()
        rc, out, err = f.run("apply")
        s = f.read_state()
        check(rc == 0 and s and s["tasks"].get("t1", {}).get("taskId") == f.emu.live_tasks()[0]["TaskId"],
              "adopt-saves: apply on a lost state records what it adopted", out + err)
        rc, out, err = f.run("plan")
        check(rc == 0 and "adopted" not in out + err and "No changes" in out,
              "adopt-saves: the next plan adopts nothing again", out + err)
        # killed after its first call: what it adopted is recorded already, or the next run,
        # its state no longer empty, adopts nothing and makes t1 again (found by tests/chaos)
        f.lose_state()
        f.emu.control("forget-tokens", {})
        f.commit({"t2.yaml": task("t2")}, "add t2")
        f.emu.control("faults", {"fail_ops": {"CreateOtaTask": 503}})
        tried = lambda: sum(e["op"] == "CreateOtaTask" for e in f.emu.log())
        before = tried()
        sent = lambda: tried() > before
        ok = killed_in(f, ("apply", "--max-attempts", "20"), sent)
        f.emu.control("faults", {"fail_ops": {}})
        rc, out, err = f.run("apply")
        t1s = [t for t in f.emu.live_tasks() if t["Tags"]["ota-runner:address"] == "OtaTask/t1"]
        check(ok and rc == 0 and len(t1s) == 1 and len(f.emu.live_tasks()) == 2,
              "adopt-saves: an apply killed after adopting t1 and sending t2's create: the next makes "
              "t2 only", out + err + str([t["TaskId"] for t in t1s]))
        f.lose_state()
        rc, out, err = f.run("plan", "--out", os.path.join(f.dir, "saved.plan"))
        rc, out, err = f.run("apply", os.path.join(f.dir, "saved.plan"))
        check(rc == 1 and "state rebuild" in err and len(f.creates()) == 2,
              "adopt-saves: a saved plan made on a lost state is refused, naming state rebuild", out + err)
    finally:
        f.stop()


def small_things():
    """apply says Devices: once; status takes the source options as every
    command does; a message that lists the kinds names OtaRollout too
    (defect 14)."""
    f = Fleet(RUNNER, "small", "--tick", TICK, files={"t1.yaml": task("t1"), "fw.yaml": rollout()})
    try:
        saved = os.path.join(f.dir, "first.plan")
        rc, out, err = f.run("plan", "--out", saved)
        rc, out, err = f.run("apply", saved)
        check(rc == 0 and len(f.creates()) == 2 and out.count("Devices:") == 1,
              "small: a plan saved on a state not yet written is applied (it was always 'stale'), "
              "and apply prints its Devices: line once", out + err)
        f.commit({"t2.yaml": task("t2")})
        rc, out, err = f.run("apply")
        check(rc == 0 and out.count("Devices:") == 1, "small: apply prints its Devices: line once", out + err)
        rc, out, err = f.run("status", "--repo", f.repo, "--ref", "HEAD", "--path", "manifests")
        check(rc == 0 and "t1" in out, "small: status accepts --repo, --ref and --path", out + err)
        rc, out, err = f.run("state", "show", "Foo/fw")
        check(rc == 1 and "OtaRollout)" in err, "small: the kinds listed in an error include OtaRollout", err)
    finally:
        f.stop()


def s3_dot_segments():
    """A state key with "." or ".." segments is refused before anything is
    written (libcurl sent x/../y.json as y.json, while the journal was listed
    under the literal key) (defect 9)."""
    with MotoS3(bucket="ota-dots") as s3:
        f = Fleet(RUNNER, "s3-dots", "--tick", TICK, files={"t1.yaml": task("t1")},
                  state=f"s3://{s3.bucket}/x/../y.json")
        f.extra_env = {"AWS_ENDPOINT_URL_S3": s3.url, "AWS_CONFIG_FILE": "/dev/null",
                       "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        try:
            rc, out, err = f.run("apply")
            check(rc == 1 and '".." segment' in err and not [k for k in s3.keys() if k.startswith(("x/", "y."))]
                  and f.creates() == [],
                  "s3-dots: a key with a .. segment is refused, nothing written, nothing created", out + err)
            rc, out, err = f.run("apply", "--state", f"s3://{s3.bucket}/x/..y/state.json")
            check(rc == 0 and "x/..y/state.json" in s3.keys(), "s3-dots: dots inside a segment are a name",
                  out + err + str(s3.keys()))
        finally:
            f.stop()


def forged_review():
    """A pull request cannot forge its own review: a manifest's link, image,
    code span or @-mention is escaped in every markdown cell, and what a
    state from elsewhere holds (an id with CR and ESC) shows as visible
    escapes in text and GitHub annotations (defect 6; the manifests with
    control characters themselves are cases 54-58 of tests/data/bad)."""
    hostile = "arn:x ![i](https://e/i.png) [click](https://e) `code` @octo-org/admins"
    f = Fleet(RUNNER, "forged", "--tick", TICK, files={"t1.yaml": task("t1"), "t2.yaml": task("t2")})
    try:
        base = f.head()
        f.commit({"t2.yaml": task("t2", targets=None, query=hostile)})
        for args in (("diff", base, "--output", "markdown"), ("plan", "--output", "markdown")):
            rc, out, err = f.run(*args)
            check(rc == 0 and "\\[click\\]\\(https://e\\)" in out and "](" not in out and "![" not in out
                  and "@octo" not in out.replace("@&#8203;octo", "") and "`code`" not in out,
                  f"forged: {args[0]} markdown escapes links, images, code spans and mentions", out + err)
        bad_name = "t3\nPlan: 0 to create.yaml"
        f.commit({bad_name: task("t3")})
        rc, out, err = f.run("plan")
        check(rc == 1 and "U+000A at character 13 of its name" in err and "\nPlan: 0 to create" not in out + err,
              "forged: a manifest file whose name has a line break is refused", out + err)
        f.commit({bad_name: None})
        rc, out, err = f.run("apply")
        s = f.read_state()
        s["tasks"]["t1"]["taskId"] = "ota1\rPlan: 0 to create\x1b[8m"
        s["tasks"]["t1"]["remote"] = {"status": "IN_PROGRESS\nForged line", "checkedAt": "2026-01-01T00:00:00Z"}
        with open(f.state, "w") as fh:
            json.dump(s, fh)
        f.commit({"t1.yaml": None})
        for args, shown in ((("plan", "--refresh", "none"), True),
                            (("plan", "--refresh", "none", "--output", "github"), False), (("status",), True)):
            rc, out, err = f.run(*args)
            check("\r" not in out + err and "\x1b" not in out + err and "\nForged" not in out + err
                  and (not shown or "\\rPlan: 0 to create\\x1b[8m" in out + err),
                  f"forged: {' '.join(args)} shows a state's CR, LF and ESC as escapes", repr(out + err))
    finally:
        f.stop()


def killed_in(f, args, until, limit=30):
    """Starts ota-runner with args and SIGKILLs it once until() holds."""
    p = f.popen(*args)
    deadline = time.time() + limit
    while time.time() < deadline and p.poll() is None and not until():
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return until()


def delete_judged_anew():
    """A delete an interrupted run left in the journal, whose task is still
    running, is not finished blindly by a plain apply once the manifest is
    back: the plan says so, the task keeps running (defect 3)."""
    f = Fleet(RUNNER, "delete-anew", "--tick", TICK, "--outcomes", '{"never": true}',
              files={"t1.yaml": task("t1"), "t2.yaml": task("t2")})
    try:
        rc, out, err = f.run("apply")
        t1 = next(t["TaskId"] for t in f.emu.live_tasks() if t["Target"][0].endswith("/t1"))
        f.commit({"t1.yaml": None}, "remove t1")
        f.emu.control("faults", {"fail_ops": {"DeleteOtaTask": 503}})
        sent = lambda: any(e["op"] == "DeleteOtaTask" for e in f.emu.log())
        ok = killed_in(f, ("apply", "--prune", "--allow-cancel", "--max-attempts", "20"), sent)
        f.emu.control("faults", {"fail_ops": {}})
        check(ok and t1 in [t["TaskId"] for t in f.emu.live_tasks()],
              "delete-anew: apply --prune --allow-cancel killed while its delete is refused: the task lives")
        f.commit({"t1.yaml": task("t1")}, "restore t1")
        rc, out, err = f.run("plan")
        check(rc == 0 and "is not finished: it is still in the service" in out and "resume" not in out
              and "No changes" in out, "delete-anew: the plan drops the delete and says so", out + err)
        before = len(f.emu.log())
        rc, out, err = f.run("apply")
        calls = [e["op"] for e in f.emu.log()[before:]]
        check(rc == 0 and "DeleteOtaTask" not in calls and "CreateOtaTask" not in calls
              and t1 in [t["TaskId"] for t in f.emu.live_tasks()],
              "delete-anew: a plain apply neither cancels the running task nor creates it again", out + err + str(calls))
        rc, out, err = f.run("plan")
        check(rc == 0 and "not finished" not in out and "No changes" in out,
              "delete-anew: the journal no longer holds the delete", out + err)
        # the same, the manifest still gone: a run without --prune does not delete either
        f.commit({"t1.yaml": None}, "remove t1 again")
        f.emu.control("faults", {"fail_ops": {"DeleteOtaTask": 503}})
        killed_in(f, ("apply", "--prune", "--allow-cancel", "--max-attempts", "20"),
                  lambda: sum(e["op"] == "DeleteOtaTask" for e in f.emu.log()) > 0 and
                  os.path.getsize(f.state + ".journal") > 0)
        f.emu.control("faults", {"fail_ops": {}})
        rc, out, err = f.run("apply")
        check(rc == 0 and t1 in [t["TaskId"] for t in f.emu.live_tasks()] and "orphan" in out,
              "delete-anew: without --prune the task is left, an orphan", out + err)
        rc, out, err = f.run("apply", "--prune")
        check(rc == 1 and "--allow-cancel" in err and t1 in [t["TaskId"] for t in f.emu.live_tasks()],
              "delete-anew: --prune without --allow-cancel is refused by the guard", out + err)
    finally:
        f.stop()


def rebuild_revisions():
    """state rebuild attaches to revision 2 only its own waves: its canary,
    still running; revision 1's passed waves are reported, not adopted, and
    the next apply starts nothing (defect 1)."""
    f = Fleet(RUNNER, "rebuild-rev", "--tick", TICK,
              files={"fw.yaml": rollout(hold="w2", s3="s3://fw/a.json")})
    try:
        rc, out, err = drive(f, lambda: waves(f) == ["w1", "w2"] and "held by holdAfter" in f.run("status")[1])
        check(rc == 0 and waves(f) == ["w1", "w2"], "rebuild-rev: revision 1 ran w1 and w2", out + err)
        f.emu.control("outcomes", {"never": True})
        f.commit({"fw.yaml": rollout(hold="w2", s3="s3://fw/b.json", revision=2)}, "revision 2")
        rc, out, err = f.run("apply")
        canary = [t for t in f.emu.live_tasks() if t["S3Url"] == "s3://fw/b.json"]
        check(rc == 0 and len(canary) == 1, "rebuild-rev: revision 2 started its canary", out + err)
        f.lose_state()
        rc, out, err = f.run("state", "rebuild")
        s = f.read_state()
        rec = (s or {}).get("rollouts", {}).get("fw", {})
        got = [(w["name"], w.get("taskId"), "passedAt" in w) for w in rec.get("progress", {}).get("waves", [])]
        check(rc == 0 and rec.get("revision") == 2 and got == [("w1", canary[0]["TaskId"], False)]
              and (out + err).count("not adopted") == 2,
              "rebuild-rev: revision 2 with its own canary only; revision 1's two tasks reported", out + err + str(got))
        before = len(f.creates())
        rc, out, err = f.run("plan")
        check(rc == 0 and "running" in out and "starts wave" not in out, "rebuild-rev: the plan shows revision "
              "2's canary running", out + err)
        rc, out, err = f.run("apply")
        check(rc == 0 and len(f.creates()) == before, "rebuild-rev: the next apply starts no wave", out + err)
    finally:
        f.stop()


def forged_tag():
    """A task made by hand and tagged as OtaTask/t1, with another image and an
    extra target, is never adopted, updated or deleted; the real one is
    adopted; with the real one gone, t1 is created anew beside it (defect 7)."""
    f = Fleet(RUNNER, "forged-tag", "--tick", TICK, files={"t1.yaml": task("t1")})
    try:
        rc, out, err = f.run("apply")
        real = f.emu.live_tasks()[0]["TaskId"]
        forged = service(f.emu).create_ota_task(
            S3Url="s3://evil/fw.json", OtaType="ONE_TIME", Target=[f"{ARN}t1", f"{ARN}victim"],
            Tags={"ota-runner:address": "OtaTask/t1", "ota-runner:revision": "1"})["TaskId"]
        f.lose_state()
        rc, out, err = f.run("state", "rebuild")
        s = f.read_state()
        check(rc == 0 and s["tasks"]["t1"]["taskId"] == real and f"task {forged} is tagged with it, but its "
              "S3Url, Target differ" in out + err, "forged-tag: rebuild adopts the real task and reports the forged one",
              out + err)
        rc, out, err = f.run("apply", "--prune", "--allow-cancel")
        live = [t["TaskId"] for t in f.emu.live_tasks()]
        check(rc == 0 and sorted(live) == sorted([real, forged]) and "older copy" not in out + err,
              "forged-tag: apply --prune --allow-cancel deletes nothing", out + err)
        service(f.emu).delete_ota_task(Identifier=real)
        f.lose_state()
        rc, out, err = f.run("apply", "--prune", "--allow-cancel")
        live = [t for t in f.emu.live_tasks()]
        check(rc == 0 and forged in [t["TaskId"] for t in live] and len(live) == 2
              and f.read_state()["tasks"]["t1"]["taskId"] != forged,
              "forged-tag: the real task gone, t1 is created anew and the forged one left alone", out + err)
    finally:
        f.stop()


def s3_takeover():
    """Run A (6 creates, a slow service) is stopped past --lock-stale-after;
    run B takes the lock over and creates the rest; A, woken, writes nothing
    more (no snapshot over B's), and says so truthfully; afterwards the plan
    is "no changes" and the service holds one task per manifest, also once
    every ClientToken is forgotten (defect 4)."""
    with MotoS3(bucket="ota-takeover") as s3:
        key = "fleet/state.json"
        files = {f"t{i}.yaml": task(f"t{i}") for i in range(6)}
        f = Fleet(RUNNER, "takeover", "--tick", TICK, "--token-ttl", "12", files=files,
                  state=f"s3://{s3.bucket}/{key}")
        f.extra_env = {"AWS_ENDPOINT_URL_S3": s3.url, "AWS_CONFIG_FILE": "/dev/null",
                       "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        try:
            f.emu.control("faults", {"latency_ms": 400})
            a = f.popen("apply", "--parallelism", "1", "--lock-stale-after", "2s")
            deadline = time.time() + 60
            while time.time() < deadline and len(f.creates()) < 2:
                time.sleep(0.05)
            a.send_signal(signal.SIGSTOP)
            time.sleep(2.6)
            made = len(f.creates())
            b = f.popen("apply", "--parallelism", "1", "--lock-stale-after", "2s")
            while time.time() < deadline and len(f.creates()) < made + 1:
                time.sleep(0.05)
            a.send_signal(signal.SIGCONT)  # A wakes while B is still at work
            aout, aerr = a.communicate(timeout=120)
            out, err = b.communicate(timeout=120)
            check(b.returncode == 0 and "took over the stale lock" in err,
                  "takeover: B takes the stale lock and applies", out + err)
            check(a.returncode != 0 and "is not this run's any more" in aerr and "nothing is lost" not in aerr,
                  "takeover: A, woken, stops and writes nothing more", aout + aerr)
            rc, out, err = f.run("plan")
            check(rc == 0 and "No changes" in out, "takeover: the next plan is no changes", out + err)
            time.sleep(12.5)  # every ClientToken forgotten: a lost record would be created twice
            rc, out, err = f.run("apply")
            live = f.emu.live_tasks()
            check(rc == 0 and len(live) == 6 and len({t["Tags"]["ota-runner:address"] for t in live}) == 6,
                  "takeover: one task per manifest in the service, once the tokens are forgotten too",
                  out + err + str(len(live)))
            serial = json.loads(s3.get(key))["serial"]
            left = [k for k in s3.keys() if k.startswith(key + ".journal/")]
            check(all(int(k.rsplit("/", 1)[1].split("-")[0]) < serial for k in left),
                  "takeover: a journal object left behind is only one the snapshot is newer than",
                  str(left) + f" serial {serial}")
        finally:
            f.stop()


def config_used_by_waves():
    """A configuration replace keeps the old configuration (retired) while a
    rollout's wave task still uses it, and deletes it once none does; the
    next wave is made with the new one (defect 5)."""
    f = Fleet(RUNNER, "cfg-waves", "--tick", TICK,
              files={"push.yaml": config(), "fw.yaml": rollout(ref="push", hold="w1")})
    try:
        rc, out, err = f.run("apply")
        old = f.read_state()["configurations"]["push"]["taskConfigurationId"]
        f.commit({"push.yaml": config(rate=20), "fw.yaml": rollout(ref="push", hold="w2")}, "rate 20, w2")
        rc, out, err = drive(f, lambda: waves(f) == ["w1", "w2"])
        deleted = [e for e in f.emu.log() if e["op"] == "DeleteOtaTaskConfiguration"]
        s = f.read_state()
        new = s["configurations"]["push"]["taskConfigurationId"]
        w2 = s["rollouts"]["fw"]["progress"]["waves"][1]["taskId"]
        w2_cfg = next(t for t in f.emu.live_tasks() if t["TaskId"] == w2).get("TaskConfigurationId")
        check(rc == 0 and not deleted and [r["id"] for r in s.get("retired", [])] == [old] and w2_cfg == new
              and "while OtaRollout/fw uses it" in out, "cfg-waves: the old configuration stays retired while "
              "wave w1 uses it; w2 is made with the new one", out + err + str(deleted))
        f.commit({"fw.yaml": None}, "rollout removed")
        rc, out, err = f.run("apply", "--prune", "--allow-cancel")
        rc2, out2, err2 = f.run("apply")
        deleted = [e for e in f.emu.log() if e["op"] == "DeleteOtaTaskConfiguration" and e["status"] < 300]
        check(rc == 0 and rc2 == 0 and len(deleted) == 1 and not f.read_state().get("retired")
              and old not in [c["TaskConfigurationId"] for c in f.emu.control("configurations")],
              "cfg-waves: with the waves' tasks gone, the old configuration is deleted", out + err + out2 + err2)
        # found by the chaos test: a rollout and its configuration pruned in one run
        f.commit({"fw.yaml": rollout(ref="push", hold="w1"), "t0.yaml": task("t0")}, "rollout again")
        rc, out, err = f.run("apply")
        cfg = f.read_state()["configurations"]["push"]["taskConfigurationId"]
        f.commit({"fw.yaml": None, "push.yaml": None}, "both gone")
        rc, out, err = f.run("apply", "--prune", "--allow-cancel")
        in_use = [e for e in f.emu.events() if e["op"] == "DeleteOtaTaskConfiguration" and e.get("inUseBy")]
        check(rc == 0 and not in_use and "still uses it: kept" in out,
              "cfg-waves: a configuration pruned with the rollout that uses it waits for its waves' deletes",
              out + err)
        rc, out, err = f.run("apply", "--prune")
        check(rc == 0 and cfg not in [c["TaskConfigurationId"] for c in f.emu.control("configurations")],
              "cfg-waves: the next --prune deletes it", out + err)
    finally:
        f.stop()


def config_used_by_retired_waves():
    """Found by the chaos test (seed 1796556569, I5). A rollout's new revision
    and its configuration's replace in one commit: the older revision's waves
    keep running, retired, on the old configuration, which stays (retired)
    while they use it. A retired record keeps no spec and its id counted as
    recorded, so nothing judged what it used: the old configuration was
    deleted under the running wave. The service's listing says it now."""
    f = Fleet(RUNNER, "cfg-retired-waves", "--tick", TICK,
              files={"push.yaml": config(), "fw.yaml": rollout(ref="push", hold="w1")})
    try:
        rc, out, err = f.run("apply")
        old = f.read_state()["configurations"]["push"]["taskConfigurationId"]
        f.commit({"push.yaml": config(rate=20),
                  "fw.yaml": rollout(ref="push", hold="w1", revision=2, s3="s3://fw/r2.json")}, "revision 2")
        outs = ""
        for _ in range(3):
            rc, out, err = f.run("apply")
            outs += out + err
        in_use = [e for e in f.emu.events() if e["op"] == "DeleteOtaTaskConfiguration" and e.get("inUseBy")]
        check(rc == 0 and not in_use and old in [c["TaskConfigurationId"] for c in f.emu.control("configurations")]
              and f"the old configuration {old} stays (retired) while rollout ota" in outs,
              "cfg-retired-waves: the old configuration stays while the older revision's waves use it",
              outs + json.dumps(in_use))
    finally:
        f.stop()


def serve(handler):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def s3_shares_the_run():
    """The S3 state's client takes the run's credentials (resolved once for
    the state and the service: one fetch a run), --max-attempts and
    --request-timeout (defect 13)."""
    hits = {"creds": 0, "s3": 0}

    class Container(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            hits["creds"] += 1
            body = json.dumps({"AccessKeyId": ACCESS_KEY_ID, "SecretAccessKey": SECRET_ACCESS_KEY,
                               "Token": "T", "Expiration": "2099-01-01T00:00:00Z"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Down(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            hits["s3"] += 1
            if "slow" in self.path:
                time.sleep(4)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_HEAD = do_DELETE = do_POST = do_GET

    creds, creds_url = serve(Container)
    down, down_url = serve(Down)
    with MotoS3(bucket="ota-shared") as s3:
        f = Fleet(RUNNER, "s3-run", "--tick", TICK, files={"t1.yaml": task("t1")},
                  state=f"s3://{s3.bucket}/state.json")
        f.extra_env = {"AWS_ENDPOINT_URL_S3": s3.url, "AWS_CONFIG_FILE": "/dev/null",
                       "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_ACCESS_KEY_ID": None,
                       "AWS_SECRET_ACCESS_KEY": None, "AWS_CONTAINER_CREDENTIALS_FULL_URI": creds_url + "/creds"}
        try:
            rc, out, err = f.run("apply")
            check(rc == 0 and hits["creds"] == 1, "s3-run: one credentials fetch for the state and the service",
                  f"fetches {hits['creds']}: {out}{err}")
            for attempts in (2, 4):
                hits["s3"] = 0
                rc, out, err = f.run("plan", "--refresh", "none", "--max-attempts", str(attempts),
                                     AWS_ENDPOINT_URL_S3=down_url)
                check(rc == 1 and hits["s3"] == attempts, f"s3-run: --max-attempts {attempts} holds for S3",
                      f"{hits['s3']} requests: {err}")
            t0 = time.time()
            rc, out, err = f.run("plan", "--refresh", "none", "--max-attempts", "1", "--request-timeout", "1",
                                 "--state", f"s3://{s3.bucket}/slow/state.json", AWS_ENDPOINT_URL_S3=down_url)
            check(rc == 1 and time.time() - t0 < 3.5, "s3-run: --request-timeout holds for S3",
                  f"{time.time() - t0:.1f}s: {err}")
        finally:
            f.stop()
    creds.shutdown()
    down.shutdown()


def landed_creates():
    """Found by the chaos test. A create whose answer was lost stays pending,
    and the next run finds the task it made by its tags and body instead of
    sending it again once the service forgot the ClientToken (a second task);
    a replace planned with --refresh none of a task never seen running is held
    by the --allow-cancel guard (its status is not known)."""
    f = Fleet(RUNNER, "landed", "--tick", TICK, files={"t1.yaml": task("t1")})
    try:
        f.emu.control("faults", {"drop_rate": 1.0})
        rc, out, err = f.run("apply", "--max-attempts", "1")
        f.emu.control("faults", {"drop_rate": 0})
        check(rc == 1 and len(f.emu.live_tasks()) == 1 and '"op":"create"' in open(f.state + ".journal").read(),
              "landed: a create whose answer was lost stays pending", out + err)
        f.emu.control("forget-tokens", {})
        rc, out, err = f.run("plan")
        check(rc == 0 and "had reached the service" in out + err and "resume" not in out,
              "landed: the plan finds the task and sends nothing again", out + err)
        rc, out, err = f.run("apply")
        live = f.emu.live_tasks()
        check(rc == 0 and len(live) == 1 and f.read_state()["tasks"]["t1"]["taskId"] == live[0]["TaskId"],
              "landed: one task, recorded, after the ClientToken was forgotten", out + err)
        f.commit({"t1.yaml": task("t1", targets=("t9",))})
        f.lose_state()
        rc, out, err = f.run("apply")  # adopts t1, replaces it: a task seen running now
        f.commit({"t1.yaml": task("t1", targets=("t8",))})
        rc, out, err = f.run("apply", "--refresh", "none")
        check(rc == 1 and "of a status not known" in out + err and "--allow-cancel" in err,
              "landed: --refresh none holds a replace of a task whose status was never seen", out + err)
        # the state lost, the tokens forgotten: an apply that does not ask the service is refused
        f.lose_state()
        f.emu.control("forget-tokens", {})
        before = len(f.creates())
        rc, out, err = f.run("apply", "--refresh", "none")
        check(rc == 1 and "records nothing, and --refresh none does not look" in err and len(f.creates()) == before,
              "landed: apply --refresh none on a state that records nothing is refused (it would make the fleet "
              "twice)", out + err)
        rc, out, err = f.run("plan", "--refresh", "none")
        check(rc == 0 and "warning: state" in err, "landed: plan --refresh none on it warns", err)
    finally:
        f.stop()


def resumed_replace_retires():
    """Found by the chaos test (seed 1796556340, I4). A configuration's replace
    whose create's answer was lost is resumed by the next run, beside the
    delete of the old configuration it retires: the delete waits for the
    create to settle. Run side by side, the delete went first and the create,
    settling, retired the old id again: the state recorded a configuration
    the service no longer had."""
    f = Fleet(RUNNER, "resumed-replace", "--tick", TICK,
              files={"c.yaml": config("push", rate=10), "t1.yaml": task("t1")})
    try:
        rc, out, err = f.run("apply")
        old = f.read_state()["configurations"]["push"]["taskConfigurationId"]
        f.commit({"c.yaml": config("push", rate=20)})
        f.emu.control("faults", {"drop_rate": 1.0})
        rc, out, err = f.run("apply", "--max-attempts", "1")
        f.emu.control("faults", {"drop_rate": 0})
        check(rc == 1 and '"op":"create"' in open(f.state + ".journal").read(),
              "resumed-replace: the new configuration's create, its answer lost, stays pending", out + err)
        rc, out, err = f.run("plan", "--output", "json")
        acts = json.loads(out)["actions"] if rc == 0 else []
        delete = next((a for a in acts if a["kind"] == "delete" and a.get("retired")), None)
        check(delete is not None and "resume OtaTaskConfiguration/push" in delete.get("dependsOn", []),
              "resumed-replace: the old configuration's delete waits for the resumed create", out + err)
        rc, out, err = f.run("apply", "--parallelism", "8")
        st = f.read_state()
        configs = [c["TaskConfigurationId"] for c in f.emu.control("configurations")]
        check(rc == 0 and old not in configs and not any(r["id"] == old for r in st.get("retired", []))
              and st["configurations"]["push"]["taskConfigurationId"] in configs,
              "resumed-replace: the old configuration deleted and forgotten, the new one recorded",
              out + err + json.dumps(st.get("retired")) + str(configs))
    finally:
        f.stop()


def unsent_create_replaced():
    """Found by the chaos test (seed 2, I2). A create an interrupted run
    journaled but never got into the service, whose manifest changed since: a
    plain apply does not make the old task only to delete it at once
    (cancelling its devices' executions): the plan, which looked and did not
    find it, drops the intent and makes the new task; with --refresh none,
    where nobody looked, the create is not sent again blind (chaos, I3: a
    token the service forgot made a second task), and with --no-adopt too
    the replace is held by the --allow-cancel guard."""
    f = Fleet(RUNNER, "unsent-create", "--tick", TICK, "--outcomes", '{"never": true}',
              files={"t1.yaml": task("t1")})
    try:
        f.emu.control("faults", {"fail_ops": {"CreateOtaTask": 503}})
        sent = lambda: any(e["op"] == "CreateOtaTask" for e in f.emu.log())
        ok = killed_in(f, ("apply", "--max-attempts", "20"), sent)
        f.emu.control("faults", {"fail_ops": {}})
        check(ok and not f.emu.live_tasks() and '"op":"create"' in open(f.state + ".journal").read(),
              "unsent-create: apply killed while its create is refused: the intent is journaled, no task")
        f.commit({"t1.yaml": task("t1", targets=("t9",))}, "t1 to t9")
        rc, out, err = f.run("apply", "--refresh", "none")
        check(rc == 1 and "t1: an interrupted run left its create unfinished, and --refresh none does not look "
              "for what it made" in err and not f.creates(),
              "unsent-create: --refresh none does not send the create again blind (a forgotten token would make "
              "a second task)", out + err)
        rc, out, err = f.run("apply", "--refresh", "none", "--no-adopt")
        check(rc == 1 and "of a status not known" in out + err and "--allow-cancel" in err and not f.creates(),
              "unsent-create: --refresh none --no-adopt holds a replace of the task the resumed create would make",
              out + err)
        rc, out, err = f.run("plan")
        check(rc == 0 and "never reached the service" in out and "resume" not in out and "1 to create" in out,
              "unsent-create: the plan drops the create it did not find and plans the new one", out + err)
        rc, out, err = f.run("apply")
        live = f.emu.live_tasks()
        deletes = [e for e in f.emu.log() if e["op"] == "DeleteOtaTask"]
        check(rc == 0 and len(f.creates()) == 1 and len(live) == 1 and live[0]["Target"] == [ARN + "t9"]
              and not deletes and f.read_state()["tasks"]["t1"]["taskId"] == live[0]["TaskId"],
              "unsent-create: apply makes only the new task and deletes nothing", out + err + str(deletes))
        rc, out, err = f.run("plan")
        check(rc == 0 and "No changes. 1 task matches the manifests." in out and "never reached" not in out,
              "unsent-create: the journal no longer holds the create (and one task 'matches')", out + err)
    finally:
        f.stop()


def state_at_root():
    """The default state file is at the repository's root wherever in it
    ota-runner runs (issue 28: run from manifests/, status showed nothing and
    plan adopted everything)."""
    f = Fleet(RUNNER, "state-root", "--tick", TICK, files={"t1.yaml": task("t1")})
    try:
        env = f.env(OTA_RUNNER_STATE=None)
        sub = os.path.join(f.repo, "manifests")
        run = lambda *a, cwd=sub: subprocess.run([RUNNER, *a], capture_output=True, text=True, env=env, cwd=cwd)
        p = run("apply")
        check(p.returncode == 0 and os.path.exists(os.path.join(f.repo, "ota-runner.state.json"))
              and not os.path.exists(os.path.join(sub, "ota-runner.state.json")),
              "state-root: apply from manifests/ writes the state at the repository's root", p.stdout + p.stderr)
        p = run("status")
        check(p.returncode == 0 and "t1" in p.stdout and os.path.join(f.repo, "ota-runner.state.json") in p.stdout,
              "state-root: status from manifests/ reads it", p.stdout + p.stderr)
        p = run("plan", cwd=f.repo)
        check(p.returncode == 0 and "No changes" in p.stdout and "adopted" not in p.stdout + p.stderr,
              "state-root: plan from the root reads the same state: no changes, nothing adopted", p.stdout + p.stderr)
        # edits not committed are named: the plan is of the commit
        f.write("t1.yaml", task("t1", description="Edited"))
        f.write("t2.yaml", task("t2"))
        p = run("plan")
        check(p.returncode == 0 and "No changes" in p.stdout and "warning: 2 files under manifests differ from "
              "the commit read (manifests/t1.yaml, manifests/t2.yaml)" in p.stderr and "--worktree" in p.stderr,
              "state-root: plan names the edits it does not read", p.stdout + p.stderr)
        # the check runs beside the plan: every command still waits for it and says it
        for args in (("plan", "-o", "json"), ("validate",), ("apply",)):
            p = run(*args)
            check(p.returncode == 0 and "warning: 2 files under manifests differ from the commit read" in p.stderr,
                  f"state-root: {args[0]} {' '.join(args[1:])} names the edits too", p.stdout + p.stderr)
        wt = os.path.join(tempfile.mkdtemp(), "wt")
        subprocess.run(["git", "-C", f.repo, "worktree", "add", "-q", "--detach", wt], check=True)
        with open(os.path.join(wt, "manifests", "t1.yaml"), "a") as fh:
            fh.write("# edited in a linked worktree\n")
        p = run("validate", "--repo", wt, cwd=wt)
        check(p.returncode == 0 and "warning: 1 file under manifests differs from the commit read "
              "(manifests/t1.yaml)" in p.stderr, "state-root: in a linked worktree, its own edits are named",
              p.stdout + p.stderr)
        p = run("plan", "--worktree")
        check(p.returncode == 0 and "differ from the commit" not in p.stderr and "1 to create" in p.stdout,
              "state-root: with --worktree they are read, and no warning", p.stdout + p.stderr)
        other = tempfile.mkdtemp()
        p = run("plan", "--repo", f.repo, cwd=other)
        check(p.returncode == 0 and "No changes" in p.stdout and not os.listdir(other),
              "state-root: --repo from elsewhere reads the state at that repository's root", p.stdout + p.stderr)
    finally:
        f.stop()


def on_terminal(f, answer, *args):
    """ota-runner apply ARGS on a pseudo-terminal, answering its question
    (if it asks) with answer; returns (exit code, what the terminal showed)."""
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(f.repo)
        os.execve(RUNNER, [RUNNER, "apply", *args], f.env())
    out, sent = b"", False
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
        if not sent and b"Only 'yes' is accepted" in out:
            os.write(fd, answer.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def confirm_on_terminal():
    """apply on a terminal shows the plan and asks, as Terraform does; only
    'yes' goes on; --auto-approve does not ask (issue 28)."""
    f = Fleet(RUNNER, "confirm", "--tick", TICK, files={"t1.yaml": task("t1")})
    try:
        rc, out = on_terminal(f, "no")
        check(rc == 1 and "+   create  t1" in out and "apply cancelled: nothing was changed" in out
              and not f.creates(), "confirm: 'no' on a terminal changes nothing", out)
        rc, out = on_terminal(f, "yes")
        check(rc == 0 and "Apply complete: 1 created" in out and len(f.creates()) == 1,
              "confirm: 'yes' applies the plan shown", out)
        f.commit({"t2.yaml": task("t2")})
        rc, out = on_terminal(f, "", "--auto-approve")
        check(rc == 0 and "Only 'yes'" not in out and len(f.creates()) == 2,
              "confirm: --auto-approve does not ask", out)
    finally:
        f.stop()


def older_commit():
    """A commit that does not contain the one the state's last apply read is
    refused by apply (a re-run of an old CI job would undo what came since; a
    rewritten history likewise) unless --allow-older; a plan warns (issue 31)."""
    f = Fleet(RUNNER, "older", "--tick", TICK, "--outcomes", '{"never": true}',
              files={"t1.yaml": task("t1", description="A")})
    try:
        a = f.head()
        f.run("apply")
        b = f.commit({"t1.yaml": task("t1", description="B")}, "B")
        rc, out, err = f.run("apply")
        check(rc == 0 and "1 updated" in out, "older: B applied", out + err)
        n = len(f.emu.log())
        rc, out, err = f.run("apply", "--ref", a)
        check(rc == 1 and f"commit {a[:12]} does not contain {b[:12]}" in err and "it is older" in err
              and "--allow-older" in err and not f.emu.mutations(n),
              "older: apply of the parent is refused, naming both commits; nothing sent", out + err)
        rc, out, err = f.run("plan", "--ref", a)
        check(rc == 0 and "warning: commit" in err and "it is older" in err and "Description" in out,
              "older: plan of it warns and shows what it would undo", out + err)
        rc, out, err = f.run("apply", "--ref", a, "--allow-older")
        check(rc == 0 and "1 updated" in out, "older: --allow-older rolls back on purpose", out + err)
        # a rewritten history: main reset to A, then C on top (B is in neither)
        rc, out, err = f.run("apply", "--ref", b)  # B again, the newest applied
        subprocess.run(["git", "-C", f.repo, "reset", "-q", "--hard", a], check=True)
        c = f.commit({"t1.yaml": task("t1", description="C")}, "C")
        n = len(f.emu.log())
        rc, out, err = f.run("apply")
        check(rc == 1 and f"commit {c[:12]} does not contain {b[:12]}" in err and "rewritten" in err
              and not f.emu.mutations(n), "older: a rewritten history is refused too", out + err)
        rc, out, err = f.run("apply", "--allow-older")
        check(rc == 0, "older: and applied with --allow-older", out + err)
        rc, out, err = f.run("plan")
        check(rc == 0 and "does not contain" not in err, "older: then the state holds C: no warning", out + err)
    finally:
        f.stop()


def rebuild_reordered():
    """Found by the chaos test: waves reordered after they started, then the
    state lost: the rebuilt record keeps the waves in the order they were made,
    so the plan refuses the reorder as it would have with the state, and no
    wave is made a second time."""
    f = Fleet(RUNNER, "reordered", "--tick", TICK, files={"fw.yaml": rollout(waves=("w1", "w2"), hold="w1")})
    try:
        rc, out, err = f.run("apply")
        f.commit({"fw.yaml": rollout(waves=("w2", "w1"), hold="w2")}, "reordered")
        f.lose_state()
        f.emu.control("forget-tokens", {})
        rc, out, err = f.run("state", "rebuild")
        rec = (f.read_state() or {}).get("rollouts", {}).get("fw", {})
        check(rc == 1 and [w["name"] for w in rec.get("progress", {}).get("waves", [])] == ["w1"]
              and "wave w1 has started" in err and "mend them before the next apply" in out,
              "reordered: the rebuild records wave w1, the one made, and says the plan is refused", out + err)
        rc, out, err = f.run("apply")
        check(rc == 1 and "wave w1 has started" in err and len(f.creates()) == 1,
              "reordered: the plan refuses the reorder; nothing made twice", out + err)
    finally:
        f.stop()


hold_moved_back()
adopt_records()
rebuild_reordered()
landed_creates()
resumed_replace_retires()
unsent_create_replaced()
state_at_root()
confirm_on_terminal()
older_commit()
s3_shares_the_run()
config_used_by_waves()
config_used_by_retired_waves()
s3_takeover()
rebuild_revisions()
forged_tag()
delete_judged_anew()
forged_review()
s3_dot_segments()
small_things()
finish()
