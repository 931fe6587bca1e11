#!/usr/bin/env python3
"""Retry modes against a service at its rate limit (issue 16): the emulator
answers 429 to what passes --rate-limit requests a second per operation.

- standard mode retries its way through the throttling; adaptive mode
  follows it: far fewer throttled attempts, no failed action, every task
  created once;
- the mode comes from --retry-mode, AWS_RETRY_MODE or the profile's
  retry_mode (in that order), and a wrong one is refused naming where it
  came from.
Speed at the limit is measured by ci/bench, not here.
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
N = 240
tmp = tempfile.mkdtemp(prefix="otr-retry-")
repo = os.path.join(tmp, "fleet")
os.makedirs(os.path.join(repo, "manifests"))
subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
for i in range(N):
    with open(os.path.join(repo, "manifests", f"t{i:03d}.yaml"), "w") as f:
        f.write(f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {{name: t{i:03d}}}\n"
                f"spec: {{S3Url: s3://fw/{i}.json, OtaType: ONE_TIME, Target: [arn:x:{i}]}}\n")
subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
subprocess.run(["git", "-C", repo, "commit", "-qm", "fleet"], check=True, env=GIT_ENV)


def run(emu, state, *args, **extra):
    env = runner_env(emu.url, state, AWS_CONFIG_FILE=os.path.join(tmp, "config"), **extra)
    p = subprocess.run([RUNNER, *args, "--repo", repo], capture_output=True, text=True, env=env, timeout=600)
    return p.returncode, p.stdout, p.stderr


def creates(emu):
    log = [e for e in emu.log() if e["op"] == "CreateOtaTask"]
    return log, sum(1 for e in log if e.get("fault") == "rate-limit")


results = {}
for mode in ("standard", "adaptive"):
    with Emulator("--tick", "0", "--latency-ms", "20", "--rate-limit", "40") as emu:
        state = os.path.join(tmp, f"{mode}.json")
        rc, out, err = run(emu, state, "apply", "--parallelism", "32", "--max-attempts", "10",
                           "--refresh", "none", "--no-adopt", "--retry-mode", mode, "--output", "json")
        log, throttled = creates(emu)
        summary = json.loads(out)["summary"] if out.strip() else {}
        live = {t["TaskId"] for t in emu.control("tasks")}
        results[mode] = (len(log), throttled, summary.get("failed"))
        print(f"{mode}: {len(log)} attempts for {N} creates, {throttled} throttled, "
              f"{summary.get('failed')} failed, {summary.get('elapsedMs')} ms")
        if mode == "adaptive":
            check(rc == 0 and summary.get("created") == N and summary.get("failed") == 0 and len(live) == N,
                  "adaptive: every task created once, none failed", out + err)
            # (ci/bench holds it to 5% at 1,000 creates; a sanitized build here is slower to settle)
            check(throttled <= 0.2 * len(log), f"adaptive: at most 20% of attempts throttled ({throttled} of {len(log)})")
check(results["adaptive"][1] * 3 < results["standard"][1],
      f"adaptive is throttled far less than standard ({results['adaptive'][1]} vs {results['standard'][1]})")

# ---- where the mode comes from
with Emulator("--tick", "0", "--rate-limit", "5") as emu:
    def adaptive_said(n, *args, **extra):
        few = [a for i in range(15) for a in ("--target", f"t{i:03d}")]
        rc, out, err = run(emu, os.path.join(tmp, f"where-{n}.json"), "-v", "apply", "--refresh", "none", "--no-adopt",
                           "--max-attempts", "10", *few, *args, **extra)
        return rc == 0, "adaptive: throttled at" in err
    check(adaptive_said(1, **{"AWS_RETRY_MODE": "adaptive"}) == (True, True), "AWS_RETRY_MODE=adaptive")
    with open(os.path.join(tmp, "config"), "w") as f:
        f.write("[default]\nretry_mode = adaptive\n")
    check(adaptive_said(2) == (True, True), "the profile's retry_mode = adaptive")
    check(adaptive_said(3, "--retry-mode", "standard") == (True, False), "--retry-mode wins over the profile")
    rc, out, err = run(emu, os.path.join(tmp, "where-4.json"), "plan", **{"AWS_RETRY_MODE": "fast"})
    check(rc == 1 and 'retry mode "fast" (from --retry-mode, AWS_RETRY_MODE or the profile\'s retry_mode): '
          "use standard or adaptive" in err, "a wrong retry mode is refused", err)
finish()
