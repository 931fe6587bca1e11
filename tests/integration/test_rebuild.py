#!/usr/bin/env python3
"""A lost state is rebuilt from the service, and never makes a second copy of
a running fleet.

- what ota-runner creates carries ota-runner:address and ota-runner:revision
  (checked in the service), and a manifest's own tags are kept beside them;
- the emulator forgets ClientTokens after --token-ttl (the oracle: a create
  with an expired token makes a second task);
- a 100-task fleet with a configuration half of it uses and a staged rollout
  two waves in: its state is deleted after every token expired; the next
  plan adopts every task, the configuration (by its content) and the
  rollout with both waves, and shows no create; the next apply makes no
  call, and the state's ids are the service's; the rollout goes on from its
  newest wave (no canary again);
- state rebuild: the same, saved; refused on a state that records anything;
  a second task tagged with the same address is reported and the newest
  recorded; a task not made by ota-runner, and one tagged for a name this
  commit has no manifest of (another fleet's), are left alone, so --prune
  cannot delete them.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program  # noqa: E402
from harness import Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
N = 100
TTL = 3
tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def fleet():
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    write(os.path.join(repo, "manifests", "push.yaml"),
          "apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata: {name: push}\n"
          "spec:\n  Name: Push\n  PushConfig:\n    RolloutConfig:\n      ExponentialRolloutRate:\n"
          "        {BaseRatePerMinute: 10, IncrementFactor: 2.5}\n")
    for i in range(N):
        ref = "  TaskConfigurationRef: push\n" if i % 2 else ""
        write(os.path.join(repo, "manifests", "tasks", f"t{i:03d}.yaml"),
              f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {{name: task-{i:03d}}}\n"
              f"spec:\n  S3Url: s3://fw/{i:03d}.json\n  OtaType: ONE_TIME\n  Target: [{ARN}t{i:03d}]\n"
              f"  Tags: {{team: t{i % 3}}}\n" + ref)
    write(os.path.join(repo, "manifests", "rollout.yaml"),
          "apiVersion: ota-runner/v1\nkind: OtaRollout\nmetadata: {name: fw-3-0-0}\n"
          "spec:\n  task: {S3Url: s3://fw/3.json, OtaType: ONE_TIME, TaskConfigurationRef: push}\n"
          "  gate: {minSucceededPercent: 50, maxFailedPercent: 50, minFinished: 1, soak: 0s}\n"
          "  waves:\n"
          f"    - {{name: canary, Target: [{ARN}c1]}}\n"
          f"    - {{name: early, Target: [{ARN}e1, {ARN}e2]}}\n"
          "    - {name: everyone, OtaTargetQueryString: 'thingType:Thermostat'}\n"
          "  holdAfter: early\n")
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", repo, "commit", "-qm", "fleet"], check=True, env=GIT_ENV)


def run(emu, *args):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state),
                       cwd=repo, timeout=300)
    return p.returncode, p.stdout, p.stderr


def lose_state():
    for suffix in ("", ".journal", ".bak", ".lock"):
        if os.path.exists(state + suffix):
            os.unlink(state + suffix)


def same_ids(emu):
    s = json.load(open(state))
    live = emu.live_tasks()
    recorded = sorted(r["taskId"] for r in s["tasks"].values())
    waves = [w["taskId"] for w in s["rollouts"]["fw-3-0-0"]["progress"]["waves"]]
    return (len(live) == N + 2 and recorded + sorted(waves) == sorted([t["TaskId"] for t in live
                                                                       if t["S3Url"] != "s3://fw/3.json"])
            + sorted(t["TaskId"] for t in live if t["S3Url"] == "s3://fw/3.json")), s


fleet()
with Emulator("--tick", "0.05", "--token-ttl", str(TTL)) as emu:
    # ---- the first applies: every task, the configuration, two waves
    rc, out, err = run(emu, "apply", "--parallelism", "16")
    check(rc == 0 and f"{N + 2} created" in out, "first apply", out[-400:] + err)
    t0 = [t for t in emu.live_tasks() if t["S3Url"] == "s3://fw/000.json"][0]
    check(t0.get("Tags") == {"team": "t0", "ota-runner:address": "OtaTask/task-000", "ota-runner:revision": "1"},
          "a created task carries its manifest's address and revision beside its own tags", json.dumps(t0.get("Tags")))
    time.sleep(1)
    rc, out, err = run(emu, "apply")
    check(rc == 0 and "starts wave early" in out, "the canary passed: the next apply starts wave early", out + err)
    before = len(emu.mutations())
    ids_before = sorted(t["TaskId"] for t in emu.live_tasks())

    # ---- the oracle: after --token-ttl, the service no longer knows a token
    time.sleep(TTL + 0.5)
    with Emulator("--tick", "0", "--token-ttl", "1") as other:
        other_state = os.path.join(tmp, "other.json")
        env = runner_env(other.url, other_state)
        subprocess.run([RUNNER, "apply", "--target", "task-000"], env=env, cwd=repo, capture_output=True)
        os.unlink(other_state)
        time.sleep(1.5)
        subprocess.run([RUNNER, "apply", "--target", "task-000", "--refresh", "none", "--no-adopt"], env=env, cwd=repo,
                       capture_output=True)
        check(len(other.live_tasks()) == 2, "the oracle: with the token expired and no state, a blind "
              "apply (--refresh none) makes a second copy", str(len(other.live_tasks())))

    # ---- the state is lost: the next plan adopts, the next apply makes no call
    lose_state()
    rc, out, err = run(emu, "plan", "--detailed-exitcode")
    adopted = [l for l in out.splitlines() if "note: adopted " in l]
    check(rc == 0 and len(adopted) == N + 2 and "Plan: " not in out and "No changes." in out
          and f"No changes. {N + 2} adopted from the service (the state recorded nothing);" in out
          and "note: adopted OtaTaskConfiguration/push: configuration" in out
          and "note: adopted OtaRollout/fw-3-0-0: rollout" in out and "with its waves' tasks" in out,
          f"a lost state: plan adopts all {N + 2} (tasks by their tag, the configuration by its content, the "
          "rollout with its waves) and plans no create", out[-1500:] + err)
    rc, out, err = run(emu, "plan", "--output", "json")
    check(rc == 0 and json.loads(out)["summary"]["adopted"] == N + 2, "plan JSON: summary.adopted", out[-300:])
    check(not os.path.exists(state), "plan writes nothing")
    rc, md, err = run(emu, "plan", "--output", "markdown")
    check(rc == 0 and md.count("> adopted ") + md.count("\n> ") >= 20 and "more notes</summary>" in md
          and md.count("<details>") == md.count("</details>"),
          "in markdown the first 20 notes are shown and the rest folded in a <details> block", md[-1500:])
    rc, out, err = run(emu, "apply")
    ok, s = same_ids(emu)
    check(rc == 0 and len(emu.mutations()) == before and ok and sorted(t["TaskId"] for t in emu.live_tasks()) == ids_before,
          "the next apply makes no call, and the state's ids are the service's", out[-800:] + err)
    waves = [w["name"] for w in s["rollouts"]["fw-3-0-0"]["progress"]["waves"]]
    check(waves == ["canary", "early"] and s["rollouts"]["fw-3-0-0"]["progress"]["waves"][0].get("passedAt"),
          "the rollout's record has both waves, the canary passed", json.dumps(s["rollouts"]["fw-3-0-0"]["progress"]))
    rc, out, err = run(emu, "apply")
    check(rc == 0 and len(emu.mutations()) == before, "and the run after it neither (holdAfter early holds)",
          out[-600:] + err)

    # ---- state rebuild: refused on a state that records anything
    rc, out, err = run(emu, "state", "rebuild")
    check(rc == 1 and "is for a state that is lost" in err and len(emu.mutations()) == before,
          "state rebuild refuses a state that records resources", err)

    # ---- a copy tagged with the same address, and a task not ota-runner's
    env = runner_env(emu.url, state)
    cid = json.load(open(state))["configurations"]["push"]["taskConfigurationId"]
    copy = {"S3Url": "s3://fw/007.json", "OtaType": "ONE_TIME", "Target": [f"{ARN}t007"], "TaskConfigurationId": cid,
            "Tags": {"team": "t1", "ota-runner:address": "OtaTask/task-007", "ota-runner:revision": "1"}}
    foreign = {"S3Url": "s3://other/x.json", "OtaType": "ONE_TIME", "Target": [f"{ARN}x"]}
    others = {"S3Url": "s3://other/y.json", "OtaType": "ONE_TIME", "Target": [f"{ARN}y"],
              "Tags": {"ota-runner:address": "OtaTask/another-fleets", "ota-runner:revision": "1"}}
    made = []
    for body in (copy, foreign, others):
        p = subprocess.run(["aws", "iot-managed-integrations", "create-ota-task", "--cli-input-json",
                            json.dumps(body), "--endpoint-url", emu.url, "--output", "json"],
                           capture_output=True, text=True, env={**env, "AWS_PAGER": "", "AWS_DEFAULT_REGION": "us-east-1"})
        made.append(json.loads(p.stdout)["TaskId"] if p.returncode == 0 else None)
    check(all(made), "two tasks made by hand with the AWS CLI", str(made))
    lose_state()
    rc, out, err = run(emu, "state", "rebuild")
    s = json.load(open(state)) if os.path.exists(state) else {"tasks": {}}
    check(rc == 0 and "rebuilt from the service" in out and s["tasks"].get("task-007", {}).get("taskId") == made[0]
          and "is tagged so too and is not recorded" in out
          and made[1] not in [r["taskId"] for r in s["tasks"].values()] and len(s["tasks"]) == N,
          "state rebuild: the newest of two tasks tagged task-007 recorded, the other reported; the foreign task "
          "left alone", out[-1200:] + err)
    check(f"OtaTask/another-fleets: 1 task tagged with it ({made[2]}), and no manifest of that name here: not "
          "adopted" in out
          and made[2] not in [r["taskId"] for r in s["tasks"].values()],
          "a task tagged for a name with no manifest here (another fleet's) is not adopted", out[-1500:])
    rc, out, err = run(emu, "plan", "--detailed-exitcode", "--prune")
    check(rc == 0 and made[2] in [t["TaskId"] for t in emu.live_tasks()], "so --prune cannot delete it", out[-300:])
    rc, out, err = run(emu, "plan", "--detailed-exitcode")
    check(rc == 0, "after the rebuild: no change",
          "\n".join(line for line in out.splitlines() if "note:" not in line) + err)
finish()
