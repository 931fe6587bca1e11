#!/usr/bin/env python3
"""The state on S3 (moto, a real S3 implementation): the same guarantees as
the local file.

- plan, apply, status and state on s3://; after a run only KEY (and KEY.bak)
  are left: the lock released, the journal emptied;
- SIGKILL mid-apply (kill trials): the lock and the journal objects stay on
  S3; the next run is refused with the holder and the lock id (exit 3),
  `state unlock ID` breaks it, and a re-run resumes from the journal: one
  task per manifest, the state's ids the service's; a stale lock is taken
  over (--lock-stale-after), with a warning;
- two applies started together (two processes): one waits (--lock-timeout)
  or exits 3; every task once; the state records all;
- a concurrent writer replaces the snapshot under a run (a broken lock):
  the run's snapshot is refused (412), the other's kept, its journal stays;
- S3 unreachable mid-apply: no call was made whose intent is not stored;
- a truncated snapshot and one of an unknown version are refused and left as
  they are, with no call made and the lock released;
- a store that ignores If-None-Match (a small stub) is refused before
  anything is written or called;
- state migrate between a file and S3 both ways, refusing a target that
  holds a state.
"""
import http.server
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program, sample_fleet  # noqa: E402
from harness import Emulator, MotoS3, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
try:
    import moto  # noqa: F401
except ImportError:
    print("SKIP: moto is not installed (pip install 'moto[server]')")
    sys.exit(77)

tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
sample_fleet(repo)
KEY = "fleets/prod/state.json"
STATE = f"s3://ota-state/{KEY}"


def env(emu, s3_url):
    return runner_env(emu.url, STATE, AWS_ENDPOINT_URL_S3=s3_url, AWS_CONFIG_FILE="/dev/null",
                      AWS_SHARED_CREDENTIALS_FILE="/dev/null")


def run(emu, s3, *args, state=STATE, timeout=120, s3_url=None):
    cmd = [RUNNER, *args, "--state", state]
    if args[0] in ("plan", "apply"):
        cmd += ["--repo", repo]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(emu, s3_url or s3.url), timeout=timeout)
    return p.returncode, p.stdout, p.stderr




def snapshot(s3, key=KEY):
    return json.loads(s3.get(key))


def mutations(emu):
    return emu.mutations()


def one_task_each(emu, s3, what):
    tasks = emu.live_tasks()
    urls = [t["S3Url"] for t in tasks]
    s = snapshot(s3)
    ids = sorted(r["taskId"] for r in s["tasks"].values())
    check(len(tasks) == 6 and len(set(urls)) == 6 and ids == sorted(t["TaskId"] for t in tasks)
          and not s3.keys(KEY + ".journal/") and KEY + ".lock" not in s3.keys(),
          f"{what}: one task per manifest, the state's ids the service's, no lock or journal left",
          f"tasks={len(tasks)} urls={len(set(urls))} ids={ids} keys={s3.keys()}")


def wait_for(what, timeout=30):
    """Waits until what() is true (a busy machine starts a run slowly): the
    timing of a test's step follows the run's progress, not the clock."""
    end = time.time() + timeout
    while not what() and time.time() < end:
        time.sleep(0.02)


def reset(emu, s3):
    emu.control("reset", {})
    for k in s3.keys("fleets/"):
        s3.client().delete_object(Bucket=s3.bucket, Key=k)


class IgnoringStore(http.server.BaseHTTPRequestHandler):
    """An S3-compatible store that ignores If-None-Match and If-Match."""
    objects = {}

    def log_message(self, *a):
        pass

    def _key(self):
        return self.path.split("?")[0]

    def do_GET(self):
        if "list-type=2" in self.path:
            body = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
        elif self._key() in self.objects:
            body = self.objects[self._key()]
        else:
            self.send_response(404)
            body = b"<Error><Code>NoSuchKey</Code><Message>none</Message></Error>"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("ETag", '"%032x"' % len(body))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", 0))
        self.objects[self._key()] = self.rfile.read(n)
        self.send_response(200)
        self.send_header("ETag", '"%032x"' % n)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_DELETE(self):
        self.objects.pop(self._key(), None)
        self.send_response(204)
        self.end_headers()


try:
    # the tasks keep running: a Description edit is an update (an ended task takes none)
    with Emulator("--tick", "0", "--outcomes", '{"never": true}') as emu, MotoS3() as s3:
        # ---- the basics: plan, apply, status, state list
        rc, out, err = run(emu, s3, "plan", "--detailed-exitcode")
        check(rc == 2 and "Plan: 7 to create" in out and s3.keys() == [], "plan on an empty S3 state writes nothing",
              out + err + str(s3.keys()))
        rc, out, err = run(emu, s3, "apply")
        check(rc == 0 and "Apply complete: 7 created" in out, "apply with the state on S3", out + err)
        one_task_each(emu, s3, "first apply")
        check(snapshot(s3)["serial"] == 1 and KEY + ".bak" not in s3.keys(), "serial 1, no backup of nothing")
        rc, out, err = run(emu, s3, "plan", "--detailed-exitcode")
        check(rc == 0 and "No changes. 1 configuration and 6 tasks match" in out, "the next plan reads it", out + err)
        rc, out, err = run(emu, s3, "status")
        check(rc == 0 and "hub-7-0-0" in out, "status reads it", out + err)
        with open(os.path.join(repo, "manifests", "security", "door-lock.yaml")) as f:
            text = f.read()
        with open(os.path.join(repo, "manifests", "security", "door-lock.yaml"), "w") as f:
            f.write(text.replace("with BLE fixes", "with NFC fixes"))
        subprocess.run(["git", "-C", repo, "commit", "-qam", "desc"], check=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"})
        rc, out, err = run(emu, s3, "apply")
        check(rc == 0 and snapshot(s3)["serial"] == 2 and json.loads(s3.get(KEY + ".bak"))["serial"] == 1,
              "the second save keeps the first as KEY.bak", out + err)

        # ---- a damaged or unknown snapshot on S3 is refused and left as it is
        for what, body in (("truncated", s3.get(KEY)[:200]),
                           ("of an unknown version", json.dumps({**snapshot(s3), "version": 99}).encode())):
            good = s3.get(KEY)
            s3.client().put_object(Bucket=s3.bucket, Key=KEY, Body=body)
            before = len(mutations(emu))
            rc, out, err = run(emu, s3, "apply")
            check(rc == 1 and "it was left as it is" in err and s3.get(KEY) == body
                  and len(mutations(emu)) == before and KEY + ".lock" not in s3.keys(),
                  f"a snapshot {what} is refused with a message, untouched, no call made, the lock released",
                  err)
            s3.client().put_object(Bucket=s3.bucket, Key=KEY, Body=good)

        # ---- two applies at once, from two processes
        reset(emu, s3)
        e = env(emu, s3.url)
        procs = [subprocess.Popen([RUNNER, "apply", "--repo", repo, "--state", STATE, *extra], env=e,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for extra in ([], [])]
        outs = [p.communicate(timeout=120) for p in procs]
        codes = sorted(p.returncode for p in procs)
        locked_msg = [o[1] for p, o in zip(procs, outs) if p.returncode == 3]
        check(codes in ([0, 0], [0, 3]) and all("is locked by another run: pid" in m and "lock id" in m
                                                 for m in locked_msg),
              "two applies at once: each finished or was refused with exit 3 naming the holder",
              f"{codes} {outs}")
        rc, out, err = run(emu, s3, "apply")
        one_task_each(emu, s3, "two applies at once, then a plain run")
        check(len([m for m in mutations(emu) if m["op"] == "CreateOtaTask"]) == 6, "and every task created once")

        # ---- SIGKILL mid-apply: the lock and the journal stay on S3
        resumed = 0
        for trial, delay in enumerate((0.3, 0.6, 0.9, 1.2)):
            reset(emu, s3)
            with Emulator("--tick", "0", "--latency-ms", "400") as slow:
                p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--state", STATE, "--parallelism", "2"],
                                     env=env(slow, s3.url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wait_for(lambda: KEY + ".lock" in s3.keys())
                time.sleep(delay)
                p.send_signal(signal.SIGKILL)
                p.wait()
                made = len(mutations(slow))
                lock = json.loads(s3.get(KEY + ".lock")) if KEY + ".lock" in s3.keys() else {}
                journal = s3.keys(KEY + ".journal/")
                check(lock.get("command") == "apply" and len(lock.get("id", "")) == 32 and
                      (made == 0 or len(journal) >= made),
                      f"kill {trial}: the lock stays, and an intent is on S3 for each of the {made} calls made",
                      f"lock={lock} journal={len(journal)}")
                rc, out, err = run(slow, s3, "apply")
                check(rc == 3 and f"lock id {lock.get('id')}" in err and "state unlock" in err,
                      f"kill {trial}: the next run is refused (exit 3), naming the lock id and how to break it", err)
                rc, out, err = run(slow, s3, "state", "unlock", lock.get("id", "x"))
                check(rc == 0 and KEY + ".lock" not in s3.keys(), f"kill {trial}: state unlock ID breaks it", out + err)
                rc, out, err = run(slow, s3, "apply")
                if " resumed;" in out:
                    resumed += int(out.split(" resumed;")[0].rsplit(" ", 1)[-1])
                check(rc == 0, f"kill {trial}: the re-run finishes", out + err)
                one_task_each(slow, s3, f"kill {trial}")
        check(resumed > 0, "some kills landed between an intent and its result (resumed from S3)", str(resumed))

        # ---- a stale lock is taken over
        reset(emu, s3)
        s3.client().put_object(Bucket=s3.bucket, Key=KEY + ".lock",
                               Body=json.dumps({"id": "f" * 32, "pid": 1, "host": "gone", "command": "apply",
                                                "startedAt": "2026-11-30T00:00:00Z"}).encode())
        rc, out, err = run(emu, s3, "apply")
        check(rc == 3 and "renewed" in err, "a fresh lock of another run is respected", err)
        time.sleep(2.2)
        rc, out, err = run(emu, s3, "apply", "--lock-stale-after", "2s")
        check(rc == 0 and "took over the stale lock" in err and "f" * 32 in err, "a lock not renewed for "
              "--lock-stale-after is taken over, with a warning", out + err)
        one_task_each(emu, s3, "after a takeover")
        rc, out, err = run(emu, s3, "state", "unlock", "0" * 32)
        check(rc == 1 and "is not locked" in err, "state unlock of no lock", err)

        # ---- --lock-timeout waits for a lock that is released
        s3.client().put_object(Bucket=s3.bucket, Key=KEY + ".lock",
                               Body=json.dumps({"id": "e" * 32, "pid": 2, "host": "ci-2", "command": "apply"}).encode())
        threading.Timer(1.5, lambda: s3.client().delete_object(Bucket=s3.bucket, Key=KEY + ".lock")).start()
        rc, out, err = run(emu, s3, "apply", "--lock-timeout", "20s")
        check(rc == 0 and "waiting for the lock" in err, "--lock-timeout waits for the holder to finish", out + err)

        # ---- a concurrent writer under a run: the run's snapshot is refused
        reset(emu, s3)
        with Emulator("--tick", "0", "--latency-ms", "300") as slow:
            p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--state", STATE, "--parallelism", "1"],
                                 env=env(slow, s3.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for(lambda: s3.keys(KEY + ".journal/"))  # it has read the snapshot and begun
            other = {"format": "ota-runner-state", "version": 2, "lineage": "another", "serial": 7, "tasks": {}}
            s3.client().put_object(Bucket=s3.bucket, Key=KEY, Body=json.dumps(other).encode())
            out, err = p.communicate(timeout=120)
            journal = s3.keys(KEY + ".journal/")
            check(p.returncode == 1 and "was written by another run while this one held the lock" in err
                  and snapshot(s3)["lineage"] == "another" and len(journal) >= 2,
                  "a snapshot written under the run: the run's own is refused, the other's kept, its journal stays",
                  f"rc={p.returncode} {err} journal={len(journal)}")

        # ---- S3 unreachable mid-apply: every call made has its intent stored
        reset(emu, s3)
        with Emulator("--tick", "0", "--latency-ms", "200") as slow:
            s3b = MotoS3(bucket="ota-state-2")  # the same moto backend, another port
            state2 = f"s3://ota-state-2/{KEY}"
            # (a connection the stopped server leaves open answers nothing: a short
            # request timeout ends each such attempt, which the S3 state shares)
            p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--state", state2, "--parallelism", "1",
                                  "--request-timeout", "5"],
                                 env=env(slow, s3b.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for(lambda: mutations(slow))  # a call has been made
            time.sleep(0.3)
            s3b.stop()
            out, err = p.communicate(timeout=300)
            made = [m for m in mutations(slow)]
            journal = [json.loads(s3.client().get_object(Bucket="ota-state-2", Key=k)["Body"].read())
                       for k in [o["Key"] for o in s3.client().list_objects_v2(
                           Bucket="ota-state-2", Prefix=KEY + ".journal/").get("Contents", [])]]
            intents = [j for j in journal if j["type"] == "intent"]
            check(p.returncode != 0 and len(made) >= 1 and len(intents) >= len(made),
                  "S3 gone mid-apply: the run stops, and no call was made whose intent is not on S3",
                  f"rc={p.returncode} made={len(made)} intents={len(intents)} {err[-400:]}")

        # ---- a store that ignores conditional writes
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), IgnoringStore)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        reset(emu, s3)
        rc, out, err = run(emu, s3, "apply", s3_url=f"http://127.0.0.1:{srv.server_address[1]}")
        check(rc == 1 and "ignores conditional writes" in err and mutations(emu) == []
              and not any(k.endswith("state.json") for k in IgnoringStore.objects),
              "a store that ignores If-None-Match is refused before anything is called or written",
              out + err + str(list(IgnoringStore.objects)))
        srv.shutdown()

        # ---- state migrate: file -> S3 -> file
        reset(emu, s3)
        local = os.path.join(tmp, "local.json")
        rc, out, err = run(emu, s3, "apply", state=local)
        rc, out, err = run(emu, s3, "state", "migrate", "--to", STATE, state=local)
        check(rc == 0 and snapshot(s3)["lineage"] == json.load(open(local))["lineage"]
              and sorted(snapshot(s3)["tasks"]) == sorted(json.load(open(local))["tasks"]),
              "state migrate copies a local state to S3 (same lineage, same records)", out + err)
        rc, out, err = run(emu, s3, "state", "migrate", "--to", STATE, state=local)
        check(rc == 1 and "holds a state already" in err, "migrate refuses a target that holds a state", err)
        back = os.path.join(tmp, "back.json")
        rc, out, err = run(emu, s3, "state", "migrate", "--to", back)
        check(rc == 0 and json.load(open(back))["tasks"] == snapshot(s3)["tasks"], "and back from S3 to a file",
              out + err)
        rc, out, err = run(emu, s3, "plan", "--detailed-exitcode")
        check(rc == 0, "the migrated state plans no change", out + err)
        # ---- state migrate killed at random moments, both ways (issue 29): the target is a whole copy or
        # one a second migrate takes up; never a snapshot that lacks the pending calls
        reset(emu, s3)
        local = os.path.join(tmp, "pending.json")
        run(emu, s3, "apply", state=local)
        edit = os.path.join(repo, "manifests", "hvac", "thermostat.yaml")
        with open(edit) as f:
            before_edit = f.read()
        with open(edit, "w") as f:
            f.write(before_edit.replace("thermostat/2.4.1/", "thermostat/2.4.2/"))
        subprocess.run(["git", "-C", repo, "commit", "-qam", "image 2.4.2"], check=True, env=GIT_ENV)
        emu.control("faults", {"fail_ops": {"CreateOtaTask": 503, "DeleteOtaTask": 503}})
        p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--state", local, "--allow-cancel",
                              "--max-attempts", "20"], env=env(emu, s3.url), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        wait_for(lambda: os.path.exists(local + ".journal") and os.path.getsize(local + ".journal") > 0)
        time.sleep(0.3)
        p.kill()
        p.wait()
        emu.control("faults", {"fail_ops": {}})
        pending = len(open(local + ".journal").read().splitlines())
        rng = random.Random(23)
        partial = 0
        for trial in range(12):
            to_s3 = trial % 2 == 0
            src = local if to_s3 else f"s3://ota-state/migrate/src-{trial}.json"
            if not to_s3:
                run(emu, s3, "state", "migrate", "--to", src, state=local)
            dst = f"s3://ota-state/migrate/dst-{trial}.json" if to_s3 else os.path.join(tmp, f"dst-{trial}.json")
            m = subprocess.Popen([RUNNER, "state", "migrate", "--to", dst, "--state", src], env=env(emu, s3.url),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.0, 0.25))
            m.kill()
            m.wait()
            if dst.startswith("s3://"):
                key = dst.split("/", 3)[3]
                has_snapshot = key in s3.keys("migrate/")
                entries = [k for k in s3.keys(key + ".journal/")]
            else:
                has_snapshot = os.path.exists(dst)
                entries = open(dst + ".journal").read().splitlines() if os.path.exists(dst + ".journal") else []
            check(not has_snapshot or len(entries) == pending,
                  f"migrate killed ({'to S3' if to_s3 else 'to a file'}): a snapshot only with every pending call",
                  f"snapshot {has_snapshot}, {len(entries)} of {pending} entries")
            partial += has_snapshot is False and len(entries) > 0
            if not has_snapshot and entries:
                rc, out, err = run(emu, s3, "state", "list", state=dst)
                check(rc == 1 and "a state migrate to here was interrupted" in err,
                      "a copy killed before its snapshot says so where it is read", out + err)
            for _ in range(3):  # a killed run leaves its S3 locks: broken by hand, as the message says
                rc, out, err = run(emu, s3, "state", "migrate", "--to", dst, state=src)
                held = re.search(r"state (\S+) is locked by another run: .*lock id (\w+)", err)
                if not held:
                    break
                run(emu, s3, "state", "unlock", held.group(2), state=held.group(1))
            done_here = rc == 0 or (has_snapshot and "holds a state already" in err)
            check(done_here, f"migrate killed ({'to S3' if to_s3 else 'to a file'}): a second one finishes it",
                  out + err)
            rc, out, err = run(emu, s3, "state", "list", state=dst)
            check(rc == 0 and "an interrupted run left work" in out, "the copy holds the pending calls", out + err)
        print(f"{partial} of 12 migrations were killed between the journal and the snapshot")
        with open(edit, "w") as f:
            f.write(before_edit)
        subprocess.run(["git", "-C", repo, "commit", "-qam", "image back"], check=True, env=GIT_ENV)
        rc, out, err = run(emu, s3, "plan", state="s3://Bad_Bucket/x")
        check(rc == 1 and "not one S3 allows" in err, "a bad bucket name is a clear error", err)
finally:
    pass
finish()
