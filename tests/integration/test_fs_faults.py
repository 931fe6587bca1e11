#!/usr/bin/env python3
"""File-system faults: the run refuses before its first mutating call, or
stops before the next one, exit 1, with a message that says what to fix; the
state and journal stay loadable and nothing that was done is forgotten.

- a full disk under the journal (FILE.journal -> /dev/full): refused before
  the first call;
- a full disk when the snapshot is written at the end (FILE.tmp -> /dev/full):
  exit 1, and the journal still holds what was done, so the next run knows;
- a state path that is a folder;
- a read-only state folder, and a lock file owned by another user (run as
  nobody; skipped with a message when not root).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, program, sample_fleet  # noqa: E402
from harness import TASK_MUTATING, Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")

tmp = tempfile.mkdtemp()
os.chmod(tmp, 0o755)
repo = os.path.join(tmp, "fleet")


def run(emu, state, *args, user=None):
    env = runner_env(emu.url, state, HOME=tmp)
    cmd = [RUNNER, *args]
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, timeout=120)
    return p.returncode, p.stdout, p.stderr


def mutations(emu):
    return emu.mutations(0, TASK_MUTATING)


sample_fleet(repo)
subprocess.run(["chmod", "-R", "a+rX", tmp], check=True)

try:
    with Emulator("--tick", "0") as emu:
        # ---- a journal that is not a file (a device): refused at once
        d = os.path.join(tmp, "device-journal")
        os.mkdir(d)
        state = os.path.join(d, "state.json")
        os.symlink("/dev/full", state + ".journal")
        rc, out, err = run(emu, state, "apply", "--repo", repo, "--refresh", "none", "--no-adopt")
        check(rc == 1 and "is a device or a pipe, not a regular file" in err and mutations(emu) == [],
              "a journal that is a device: refused before the first call", err)

        # ---- the disk fills up in the middle of a run (a 40 KiB tmpfs)
        d = os.path.join(tmp, "small-disk")
        os.mkdir(d)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", d],
                                 capture_output=True).returncode == 0
        if not mounted:
            print("SKIP: cannot mount a small tmpfs here (not root?): the full-disk case")
        else:
            try:
                state = os.path.join(d, "state.json")
                # leave a page for the lock file and one for a few journal lines
                with open(os.path.join(d, "filler"), "wb") as f:
                    try:
                        f.write(b"x" * (40 * 1024 - 10 * 1024))
                    except OSError:
                        pass
                n = len(mutations(emu))
                rc, out, err = run(emu, state, "apply", "--repo", repo, "--refresh", "none", "--no-adopt",
                                   "--parallelism", "1")
                sent = len(mutations(emu)) - n
                check(rc == 1 and "No space left on device" in err and 0 < sent < 6,
                      "a full disk mid-run: stops before the next call", f"sent={sent}\n{err}")
                os.unlink(os.path.join(d, "filler"))
                rc, out, err = run(emu, state, "apply", "--repo", repo, "--refresh", "none", "--no-adopt")
                check(rc == 0, "with room again, a plain re-run finishes", out + err)
                live = [t for t in emu.control("tasks") if not t.get("Deleted")]
                s = json.load(open(state))
                check(len(live) == 6 and sorted(r["taskId"] for r in s["tasks"].values()) ==
                      sorted(t["TaskId"] for t in live), "one task per manifest, all recorded",
                      f"live={len(live)} recorded={len(s['tasks'])}")
            finally:
                subprocess.run(["umount", d])
            emu.control("reset", {})

        # ---- a full disk at the snapshot: the journal keeps what was done
        d = os.path.join(tmp, "full-snapshot")
        os.mkdir(d)
        state = os.path.join(d, "state.json")
        os.symlink("/dev/full", state + ".tmp")
        rc, out, err = run(emu, state, "apply", "--repo", repo, "--refresh", "none", "--no-adopt")
        created = len(mutations(emu))
        check(rc == 1 and "cannot save the state" in err and "the journal" in err and "still holds what was done" in err
              and created == 6 and os.path.getsize(state + ".journal") > 0,
              "a full disk at the snapshot: exit 1, saying the journal has it", err)
        if os.path.lexists(state + ".tmp"):
            os.unlink(state + ".tmp")
        rc, out, err = run(emu, state, "plan", "--repo", repo, "--refresh", "none", "--no-adopt", "--detailed-exitcode")
        check(rc == 0 and "No changes. 1 configuration and 6 tasks match" in out, "nothing that was done is forgotten",
              out + err)
        rc, out, err = run(emu, state, "apply", "--repo", repo)
        check(rc == 0 and len(mutations(emu)) == created, "and nothing is done twice", out + err)
        s = json.load(open(state)) if os.path.exists(state) else {}
        check("Nothing to apply; the journal's" in out and len(s.get("tasks", {})) == 6
              and len(s.get("configurations", {})) == 1 and os.path.getsize(state + ".journal") == 0,
              "a run with nothing to do writes the journal it replayed into the snapshot", out + err)
        emu.control("reset", {})

        # ---- a state path that is a folder
        d = os.path.join(tmp, "folder-state")
        os.makedirs(os.path.join(d, "state.json"))
        rc, out, err = run(emu, os.path.join(d, "state.json"), "plan", "--repo", repo)
        check(rc == 1 and "is a folder, not a regular file" in err, "a state path that is a folder", err)

        if os.geteuid() != 0 or not shutil.which("setpriv"):
            print("SKIP: the read-only folder and foreign lock cases need root and setpriv")
        else:
            n = len(mutations(emu))
            # nobody reads root's repository: first as git would say, then trusted
            rc, out, err = run(emu, os.path.join(tmp, "x.json"), "validate", "--repo", repo, user="nobody")
            check(rc == 1 and "is owned by another user, and git does not trust it" in err
                  and "safe.directory" in err, "a repository of another user: the reason is named", err)
            with open(os.path.join(tmp, ".gitconfig"), "w") as f:
                f.write(f"[safe]\n\tdirectory = {repo}\n")
            os.chmod(os.path.join(tmp, ".gitconfig"), 0o644)
            # ---- a read-only state folder
            d = os.path.join(tmp, "read-only")
            os.mkdir(d)
            os.chmod(d, 0o555)
            rc, out, err = run(emu, os.path.join(d, "state.json"), "apply", "--repo", repo, user="nobody")
            check(rc == 1 and "cannot open the lock file" in err and "Permission denied" in err
                  and "check the folder's permissions" in err and len(mutations(emu)) == n,
                  "a read-only state folder: refused before any call", err)
            # ---- a lock file owned by another user
            d = os.path.join(tmp, "foreign-lock")
            os.mkdir(d)
            os.chmod(d, 0o1777)
            open(os.path.join(d, "state.json.lock"), "w").close()
            os.chmod(os.path.join(d, "state.json.lock"), 0o600)
            rc, out, err = run(emu, os.path.join(d, "state.json"), "apply", "--repo", repo, user="nobody")
            check(rc == 1 and "cannot open the lock file" in err and "Permission denied" in err
                  and len(mutations(emu)) == n, "a lock file owned by another user: refused", err)
finally:
    subprocess.run(["chmod", "-R", "u+w", tmp])
    shutil.rmtree(tmp)

finish()
