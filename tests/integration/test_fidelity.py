#!/usr/bin/env python3
"""Fidelity to the real service (issue 30), against the emulator that
answers as the service model says.

ClientTokens after a delete. Within its idempotency window the service
answers a token it has seen with the resource it made then, even one
deleted since (the emulator does so for --token-ttl, a day by default), so:
- a replace followed by a revert sends a token never sent before (the
  manifest's at generation 1, tagged ota-runner:generation), and the task
  recorded is a new, live one;
- a recorded task deleted by hand is made again with a new token (the old
  one is still the record's);
- a lost state after tasks were deleted: the first creates are answered with
  dead tasks; each is spent, never recorded, and the create is sent again
  with the next generation until a new task comes back;
- state rebuild reads ota-runner:generation and spends the generations
  below it, so the next replace does not send one of them;
- the emulator itself hands back the first answer to a token, deleted or not.

Error types (item 6): every form botocore reads (x-amzn-ErrorType bare or
namespaced, with its ':' suffix; __type, code, Code in the body) is read, so a
namespaced ThrottlingException or LimitExceededException is retried.

Retries (item 5): botocore's standard-mode backoff, and x-amz-retry-after.
"""
import json
import re
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program  # noqa: E402
from harness import Emulator, aws_env, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
MANIFEST = os.path.join(repo, "manifests", "door.yaml")


def write_task(target):
    os.makedirs(os.path.dirname(MANIFEST), exist_ok=True)
    with open(MANIFEST, "w") as f:
        f.write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: door}\n"
                f"spec:\n  S3Url: s3://fw/door.json\n  OtaType: ONE_TIME\n  Target: [{ARN}{target}]\n")
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", repo, "commit", "-q", "--allow-empty", "-m", target], check=True, env=GIT_ENV)


def run(emu, *args):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state),
                       cwd=repo, timeout=300)
    return p.returncode, p.stdout, p.stderr


def lose_state():
    for suffix in ("", ".journal", ".bak", ".lock"):
        if os.path.exists(state + suffix):
            os.unlink(state + suffix)


def recorded():
    return json.load(open(state))["tasks"]["door"]["taskId"]


def creates(emu, since=0):
    return [e for e in emu.log()[since:] if e["op"] == "CreateOtaTask"]


def live(emu, task_id):
    return any(t["TaskId"] == task_id for t in emu.live_tasks())


def tags_of(emu, task_id):
    return next(t for t in emu.control("tasks") if t["TaskId"] == task_id).get("Tags", {})


def aws(emu, *args):
    p = subprocess.run(["aws", "iot-managed-integrations", *args, "--endpoint-url", emu.url, "--output", "json"],
                       env=aws_env(), capture_output=True, text=True, timeout=60)
    if p.returncode:
        raise RuntimeError(p.stderr)
    return json.loads(p.stdout) if p.stdout.strip() else None


def test_revert_after_replace(emu):
    write_task("t1")
    rc, out, err = run(emu, "apply")
    first = recorded()
    write_task("t2")  # Target is not updatable: a replace
    rc, out, err = run(emu, "apply")
    check(rc == 0 and not live(emu, first), "a Target edit replaces the task", out + err)
    n = len(emu.log())
    write_task("t1")  # back to the first body: the same manifest token
    rc, out, err = run(emu, "apply")
    tokens = [e["clientToken"] for e in creates(emu)]
    revert = recorded()
    check(rc == 0 and len(tokens) == 3 and len(set(tokens)) == 3,
          "the revert sends a ClientToken never sent before", f"{tokens}\n{out}{err}")
    check(revert != first and live(emu, revert) and tags_of(emu, revert).get("ota-runner:generation") == "1",
          "the revert records a new live task, tagged ota-runner:generation 1",
          f"{first} {revert} {tags_of(emu, revert)}")
    spent = json.load(open(state)).get("spentTokens", [])
    check(tokens[0] in spent and tokens[1] in spent and tokens[2] not in spent,
          "the state lists the tokens of the deleted tasks as spent", json.dumps(spent))
    gets = [e for e in emu.log()[n:] if e["op"] == "GetOtaTask"]
    check(any(e.get("status") == 200 for e in gets), "the task a create answered is read back", json.dumps(gets))
    return revert


def test_deleted_by_hand(emu, gone):
    aws(emu, "delete-ota-task", "--identifier", gone)
    n = len(emu.log())
    rc, out, err = run(emu, "apply")
    made = creates(emu, n)
    now = recorded()
    check(rc == 0 and len(made) == 1 and now != gone and live(emu, now)
          and tags_of(emu, now).get("ota-runner:generation") == "2",
          "a recorded task deleted by hand is made again with the next generation", out + err)
    return now


def test_lost_state(emu, last):
    tokens_before = [e["clientToken"] for e in creates(emu)]
    aws(emu, "delete-ota-task", "--identifier", last)
    lose_state()
    n = len(emu.log())
    rc, out, err = run(emu, "apply")
    made = creates(emu, n)
    now = recorded()
    check(rc == 0 and len(made) == 4 and now not in [t["TaskId"] for t in emu.control("tasks")
                                                     if t.get("Deleted")] and live(emu, now),
          "a lost state: three creates answered with deleted tasks, the fourth makes a live one",
          f"{[e['clientToken'] for e in made]}\n{out}{err}")
    check(err.count("a token used before; not recorded; sent again") == 3 and "not found" in err,
          "each dead answer is said, and not recorded", out + err)
    check([e["clientToken"] for e in made[:3]] == [tokens_before[0]] + tokens_before[2:4]
          and made[3]["clientToken"] not in tokens_before,
          "the creates walk the generations in order", json.dumps(made))
    check(tags_of(emu, now).get("ota-runner:generation") == "3", "the live one is generation 3",
          json.dumps(tags_of(emu, now)))
    return now


def test_rebuild_reads_generation(emu, now):
    lose_state()
    rc, out, err = run(emu, "state", "rebuild")
    spent = json.load(open(state)).get("spentTokens", [])
    check(rc == 0 and recorded() == now and len(spent) == 3,
          "state rebuild adopts the generation-3 task and spends generations 0 to 2", out + err + json.dumps(spent))
    aws(emu, "delete-ota-task", "--identifier", now)
    n = len(emu.log())
    rc, out, err = run(emu, "apply")
    made = creates(emu, n)
    check(rc == 0 and len(made) == 1 and "token used before" not in err and live(emu, recorded())
          and tags_of(emu, recorded()).get("ota-runner:generation") == "4",
          "after the rebuild, the task deleted by hand is made again at generation 4 at once",
          out + err)


def test_emulator_hands_back_deleted(emu):
    body = ["--s3-url", "s3://fw/x.json", "--ota-type", "ONE_TIME", "--target", ARN + "x"]
    a = aws(emu, "create-ota-task", *body, "--client-token", "fidelity-token-1")
    aws(emu, "delete-ota-task", "--identifier", a["TaskId"])
    b = aws(emu, "create-ota-task", *body, "--client-token", "fidelity-token-1")
    check(a["TaskId"] == b["TaskId"] and not live(emu, b["TaskId"]),
          "the emulator answers a used token with its first task, deleted since", json.dumps([a, b]))


def test_error_forms():
    """Every form of a restJson1 error type is read (issue 30, item 6): in
    each form, a ThrottlingException and a 410 LimitExceededException are
    named and retried (two attempts where one is allowed a retry), and a
    ResourceNotFoundException still means gone."""
    for form in ("header", "header-namespaced", "__type", "code", "Code"):
        lose_state()
        with Emulator("--tick", "0") as emu:
            write_task("t1")
            rc, out, err = run(emu, "apply")
            emu.control("faults", {"throttle_rate": 1.0, "error_forms": [form]})
            rc, out, err = run(emu, "plan", "--max-attempts", "2")
            check(rc == 1 and "HTTP 429 ThrottlingException" in err and "(after 2 attempts)" in err,
                  f"errors sent as {form}: a ThrottlingException is named and retried", err)
            emu.control("faults", {"throttle_rate": 0, "limit_rate": 1.0})
            write_task("t2")
            rc, out, err = run(emu, "apply", "--max-attempts", "2")
            check(rc == 1 and "HTTP 410 LimitExceededException" in err and "(after 2 attempts)" in err,
                  f"errors sent as {form}: a LimitExceededException is named and retried", err)
            emu.control("faults", {"limit_rate": 0})
            aws(emu, "delete-ota-task", "--identifier", recorded())
            rc, out, err = run(emu, "plan", "--refresh", "full")
            check(rc == 0 and "no longer exists in the service" in out,
                  f"errors sent as {form}: ResourceNotFoundException means gone", out + err)


def test_retry_waits():
    """Retries wait as botocore's standard mode does (issue 30, item 5): the
    first retry a draw in [0, 1 s], the second in [0, 2 s]; and a throttle
    that says x-amz-retry-after: 1500 is retried after 1.5 s, not sooner."""
    lose_state()
    with Emulator("--tick", "0") as emu:
        write_task("t5")
        emu.control("faults", {"throttle_rate": 1.0, "seed": 3})
        rc, out, err = run(emu, "plan", "-v", "--max-attempts", "3")
        waits = [int(w) for w in re.findall(r"retrying in (\d+) ms", err)]
        check(rc == 1 and len(waits) == 2 and 0 <= waits[0] <= 1000 and 0 <= waits[1] <= 2000
              and max(waits) > 100, "a throttled listing waits [0, 1 s], then [0, 2 s]", f"{waits}\n{err[-600:]}")
        emu.control("faults", {"throttle_rate": 1.0, "retry_after_ms": 1500})
        rc, out, err = run(emu, "plan", "-v", "--max-attempts", "2")
        waits = [int(w) for w in re.findall(r"retrying in (\d+) ms", err)]
        check(waits == [1500], "x-amz-retry-after: 1500 is waited for", f"{waits}\n{err[-600:]}")
        emu.control("faults", {"throttle_rate": 1.0, "retry_after_ms": 60000})
        rc, out, err = run(emu, "plan", "-v", "--max-attempts", "2")
        waits = [int(w) for w in re.findall(r"retrying in (\d+) ms", err)]
        check(len(waits) == 1 and 5000 <= waits[0] <= 6000,
              "x-amz-retry-after: 60000 is cut to 5 s past the backoff", f"{waits}")


def main():
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    with Emulator("--tick", "0") as emu:
        revert = test_revert_after_replace(emu)
        again = test_deleted_by_hand(emu, revert)
        now = test_lost_state(emu, again)
        test_rebuild_reads_generation(emu, now)
        test_emulator_hands_back_deleted(emu)
    test_error_forms()
    test_retry_waits()
    finish()


main()
