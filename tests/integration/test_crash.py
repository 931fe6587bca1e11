#!/usr/bin/env python3
"""Whatever happens, every manifest ends up with exactly one task, and the
state file tells the truth.

- SIGKILL at random moments during apply (25 trials, fixed seed, the emulator
  adding latency so the kills land mid-run), then plain re-runs: exactly one
  live task per manifest, and the state's task ids equal the service's; the
  fleet has a task configuration half the tasks refer to: exactly one
  configuration, every task pointing at it, no retired one left;
- the same for a run of replaces (a Target edit on every manifest);
- the same for a configuration replace (create, move the tasks, delete);
- lost responses (the emulator drops the connection after committing): one task each;
- a 50% throttling storm: every task created, none twice.

With OTR_STATE_BACKEND=s3 (the CTest case integration.test_crash_s3) the same
trials run with the state on S3 (moto): a killed run leaves its lock there,
and each re-run first breaks it with `state unlock ID`, as an operator would.
"""
import re
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program  # noqa: E402
from harness import Emulator, MotoS3, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")

N = 24
TRIALS = 25
tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")
s3 = MotoS3() if os.environ.get("OTR_STATE_BACKEND") == "s3" else None
if s3:
    state = "s3://ota-state/crash/state.json"


def write_fleet(target_suffix, rate=10):
    os.makedirs(os.path.join(repo, "manifests"), exist_ok=True)
    with open(os.path.join(repo, "manifests", "push.yaml"), "w") as f:
        f.write("apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata: {name: push}\n"
                f"spec:\n  Name: Push\n  PushConfig:\n    RolloutConfig:\n      ExponentialRolloutRate:\n"
                f"        {{BaseRatePerMinute: {rate}, IncrementFactor: 1.5}}\n")
    for i in range(N):
        ref = "  TaskConfigurationRef: push\n" if i % 2 else ""
        with open(os.path.join(repo, "manifests", f"r{i:02d}.yaml"), "w") as f:
            f.write(f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {{name: rollout-{i:02d}}}\n"
                    f"spec:\n  S3Url: s3://fw/{i:02d}.json\n  OtaType: ONE_TIME\n  Description: Rollout {i}\n"
                    f"  Target: [arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/t{i}{target_suffix}]\n"
                    + ref)
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", repo, "commit", "-qm", f"fleet {target_suffix}"], check=True, env=GIT_ENV)


def env(emu):
    return runner_env(emu.url, state, **({"AWS_ENDPOINT_URL_S3": s3.url} if s3 else {}))


def read_state():
    if s3:
        return json.loads(s3.get("crash/state.json"))
    return json.load(open(state))


def remove_state():
    if s3:
        for key in s3.keys("crash/"):
            s3.client().delete_object(Bucket=s3.bucket, Key=key)
        return
    for suffix in ("", ".journal", ".bak", ".lock"):
        if os.path.exists(state + suffix):
            os.unlink(state + suffix)


def apply(emu, *extra, timeout=300):
    p = subprocess.run([RUNNER, "apply", "--repo", repo, "--parallelism", "4", "--max-deletes", "1000",
                        *extra], capture_output=True, text=True, env=env(emu), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def converge(emu):
    """Plain re-runs until one succeeds (a kill can leave work for two); on S3
    a killed run's lock is broken by its id first."""
    for _ in range(4):
        rc, out, err = apply(emu)
        lock = re.search(r"lock id ([0-9a-f]{32})", err)
        if rc == 3 and s3 and lock:
            subprocess.run([RUNNER, "state", "unlock", lock.group(1)], env=env(emu), capture_output=True)
            continue
        if rc == 0:
            return rc, out, err
    return rc, out, err


def verify(emu, suffix, what):
    live = [t for t in emu.control("tasks") if not t.get("Deleted")]
    by_url = {}
    for t in live:
        by_url.setdefault(t["S3Url"], []).append(t)
    ok_count = len(live) == N and all(len(v) == 1 for v in by_url.values())
    ok_target = all(t["Target"][0].endswith(suffix) for t in live)
    s = read_state()
    state_ids = sorted(r["taskId"] for r in s["tasks"].values())
    live_ids = sorted(t["TaskId"] for t in live)
    check(ok_count and ok_target and state_ids == live_ids,
          f"{what}: exactly one task per manifest, and the state's ids are the service's",
          f"live={len(live)} dup={[k for k, v in by_url.items() if len(v) > 1]} "
          f"target_ok={ok_target} state={len(state_ids)} same_ids={state_ids == live_ids}")
    cfgs = [c["TaskConfigurationId"] for c in emu.control("configurations")]
    cid = s.get("configurations", {}).get("push", {}).get("taskConfigurationId")
    using = {t.get("TaskConfigurationId") for t in live if t["S3Url"] in
             {f"s3://fw/{i:02d}.json" for i in range(1, N, 2)}}
    others = {t.get("TaskConfigurationId") for t in live if t["S3Url"] in
              {f"s3://fw/{i:02d}.json" for i in range(0, N, 2)}}
    check(cfgs == [cid] and using == {cid} and others == {None} and s.get("retired") == [],
          f"{what}: one configuration, every task that refers to it on it, no retired one left",
          f"configs={cfgs} recorded={cid} using={using} others={others} retired={s.get('retired')}")
    return s


def reset(emu):
    emu.control("reset", {})
    remove_state()


try:
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    write_fleet("")
    rng = random.Random(20261128)
    resumed_total = 0
    with Emulator("--tick", "0", "--latency-ms", "40", "--seed", "5") as emu:
        # a full run takes N / 4 * 40 ms = 240 ms and more; kill somewhere in it
        for trial in range(TRIALS):
            reset(emu)
            p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--parallelism", "4"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(emu))
            time.sleep(rng.uniform(0.0, 0.4))
            p.send_signal(signal.SIGKILL)
            p.wait()
            rc, out, err = converge(emu)
            resumed_total += out.count("resumed") and int(out.split(" resumed;")[0].rsplit(" ", 1)[-1]) if " resumed;" in out else 0
            check(rc == 0, f"trial {trial}: the re-run succeeds", out + err)
            verify(emu, "", f"kill trial {trial}")
        print(f"{TRIALS} kill trials; the re-runs resumed {resumed_total} interrupted calls")
        check(resumed_total > 0, "some kills landed between an intent and its result (resume exercised)")

        # kills during a run of replaces (delete, then create, for every manifest)
        for trial in range(5):
            reset(emu)
            subprocess.run(["git", "-C", repo, "checkout", "-q", "HEAD~0"], check=True)
            rc, out, err = apply(emu)
            check(rc == 0, "baseline apply", out + err)
            write_fleet(f"-v{trial}")
            p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--parallelism", "4", "--max-deletes", "1000"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(emu))
            time.sleep(rng.uniform(0.05, 0.5))
            p.send_signal(signal.SIGKILL)
            p.wait()
            rc, out, err = converge(emu)
            check(rc == 0, f"replace trial {trial}: the re-run succeeds", out + err)
            verify(emu, f"-v{trial}", f"replace kill trial {trial}")
            write_fleet("")

        # kills during a configuration replace (create the new one, move 12 tasks, delete the old);
        # the tasks keep running, so the replace moves every one of them (an ended task keeps the
        # configuration it ran with)
        emu.control("outcomes", {"never": True})
        mid_cascade = 0
        for trial in range(5):
            reset(emu)
            rc, out, err = apply(emu)
            check(rc == 0, "baseline apply", out + err)
            write_fleet("", rate=20 + trial)
            made = len(emu.mutations(ops={"CreateOtaTaskConfiguration"}))
            p = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--parallelism", "4"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(emu))
            # trials 0 and 1 from the new configuration's create on (inside the cascade however
            # slow the machine: under ASan the run may not reach it in a fixed time); the rest
            # anywhere
            deadline = time.time() + 30
            while trial < 2 and p.poll() is None and time.time() < deadline and \
                    len(emu.mutations(ops={"CreateOtaTaskConfiguration"})) == made:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.02, 0.3) if trial >= 2 else rng.uniform(0.0, 0.05))
            p.send_signal(signal.SIGKILL)
            p.wait()
            plan = subprocess.run([RUNNER, "plan", "--repo", repo, "--output", "json"], capture_output=True,
                                  text=True, env=env(emu)).stdout
            kinds = {(a["kind"], a["resource"]) for a in json.loads(plan)["actions"]} if plan else set()
            # killed after the new configuration, before the cascade's end
            mid_cascade += ("replace", "OtaTaskConfiguration") not in kinds and \
                ("create", "OtaTaskConfiguration") not in kinds and len(kinds) > 0
            rc, out, err = converge(emu)
            check(rc == 0, f"configuration trial {trial}: the re-run succeeds", out + err)
            verify(emu, "", f"configuration kill trial {trial}")
            write_fleet("")
        print(f"5 configuration trials; {mid_cascade} killed between the new configuration and the old one's delete")
        check(mid_cascade > 0, "some kills landed inside the cascade")

    with Emulator("--tick", "0", "--drop-rate", "0.4", "--seed", "11") as emu:
        reset(emu)  # a new emulator is a new endpoint: a new state
        rc, out, err = apply(emu, "--max-attempts", "10")
        drops = [e for e in emu.log() if e["fault"] == "drop"]
        check(rc == 0 and len(drops) >= 5, "lost responses: the apply succeeds", f"drops={len(drops)} {out}{err}")
        verify(emu, "", "lost responses")

    # (retries wait as botocore's do, up to 2^(n-1) s before retry n: a storm
    # of one answer in four keeps the unluckiest call's chain short)
    with Emulator("--tick", "0", "--throttle-rate", "0.25", "--seed", "13") as emu:
        remove_state()
        rc, out, err = apply(emu, "--max-attempts", "10")
        throttled = [e for e in emu.log() if e["status"] == 429]
        check(rc == 0 and len(throttled) >= 5, "a throttling storm (25%): the apply succeeds",
              f"throttled={len(throttled)} {out}{err}")
        verify(emu, "", "throttling storm")
finally:
    shutil.rmtree(tmp)
    if s3:
        s3.stop()

finish()
