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

Tags in place (item 4): TagResource and UntagResource, never a replace.

Endpoints (item 10): every partition's, as botocore's endpoint rules give it.

Drift (item 7): judged on what the service says, both sides normalised.

The service's behaviours (item 8): an asynchronous delete, schedule times
checked, a StartTime waited for, abort criteria that cancel, unknown members
ignored (and none sent); rollout rates, maintenance windows, EndTime
behaviours and timeouts; an ended task refuses an update, and ota-runner
sends it none.
"""
import base64
import hashlib
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


def generation_token(token, g):
    """The formula of docs/manifests.md, written again here (hashlib, base64)."""
    digest = hashlib.sha256(b"ota-runner/v1/generation\0" + token.encode() + b"\0" + str(g).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


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
    check(tokens[2] == generation_token(tokens[0], 1),
          "the revert's token is the documented formula for generation 1", f"{tokens} {generation_token(tokens[0], 1)}")
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
    check(err.count("a token used before; not recorded; sent again") == 3
          and ("not found" in err or "DELETION_IN_PROGRESS" in err),
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


def write_tagged(tags, description=None):
    os.makedirs(os.path.dirname(MANIFEST), exist_ok=True)
    with open(MANIFEST, "w") as f:
        f.write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: door}\n"
                f"spec:\n  S3Url: s3://fw/door.json\n  OtaType: ONE_TIME\n  Target: [{ARN}t1]\n"
                + (f"  Description: {description}\n" if description else "")
                + (f"  Tags: {json.dumps(tags)}\n" if tags is not None else ""))
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", repo, "commit", "-q", "--allow-empty", "-m", "tags"], check=True, env=GIT_ENV)


def user_tags(emu, task_id):
    return {k: v for k, v in tags_of(emu, task_id).items() if not k.startswith("ota-runner:")}


def test_tags_in_place():
    """A tag edit changes the tags of the running task in place (issue 30,
    item 4): TagResource for keys added or changed, UntagResource for keys
    removed, never a replace (which would cancel the task's devices); with
    another field, UpdateOtaTask too; a tag changed by hand is drift that
    --refresh full puts back the same way."""
    lose_state()
    with Emulator("--tick", "0", "--outcomes", '{"never": true}') as emu:  # running: an update is taken
        write_tagged({"team": "a", "tier": "x"})
        rc, out, err = run(emu, "apply")
        first = recorded()
        write_tagged({"team": "b", "new": "y"})
        rc, out, err = run(emu, "plan")
        check(rc == 0 and "~   update  door" in out and "replace" not in out.split("Plan:")[0],
              "a tag edit is planned as an update", out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "apply")
        ops = [e["op"] for e in emu.mutations(n)]
        check(rc == 0 and ops == ["TagResource", "UntagResource"] and recorded() == first
              and user_tags(emu, first) == {"team": "b", "new": "y"}
              and tags_of(emu, first).get("ota-runner:address") == "OtaTask/door",
              "the tags change in place: TagResource, UntagResource; the same task runs on",
              f"{ops} {tags_of(emu, first)}\n{out}{err}")
        write_tagged({"team": "b", "new": "y"}, description="Door firmware")
        n = len(emu.log())
        rc, out, err = run(emu, "apply")
        ops = [e["op"] for e in emu.mutations(n)]
        check(rc == 0 and ops == ["UpdateOtaTask"], "a Description edit alone: UpdateOtaTask only", f"{ops}")
        write_tagged(None, description="Door firmware 2")
        n = len(emu.log())
        rc, out, err = run(emu, "apply")
        ops = [e["op"] for e in emu.mutations(n)]
        check(rc == 0 and ops == ["UpdateOtaTask", "UntagResource"] and user_tags(emu, first) == {}
              and recorded() == first, "Tags removed with a Description edit: UpdateOtaTask, then UntagResource",
              f"{ops} {tags_of(emu, first)}\n{out}{err}")
        write_tagged({"team": "c"}, description="Door firmware 2")
        rc, out, err = run(emu, "apply")
        arn = next(t["TaskArn"] for t in emu.control("tasks") if t["TaskId"] == first)
        aws(emu, "tag-resource", "--resource-arn", arn, "--tags", "team=hand,extra=z")
        rc, out, err = run(emu, "plan", "--refresh", "full", "--detailed-exitcode")
        check(rc == 2 and "~   update  door" in out and "drift" in out, "a tag changed by hand is drift, mended in place",
              out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "apply", "--refresh", "full")
        ops = [e["op"] for e in emu.mutations(n)]
        check(rc == 0 and ops == ["TagResource", "UntagResource"] and user_tags(emu, first) == {"team": "c"}
              and recorded() == first, "the drift is put back in place", f"{ops} {tags_of(emu, first)}\n{out}{err}")
        no_unknown_members(emu, "tags")
        lst = aws(emu, "list-tags-for-resource", "--resource-arn", arn)
        check(lst.get("tags", {}).get("team") == "c", "ListTagsForResource answers as the model says", json.dumps(lst))


def botocore_endpoint(region, fips):
    """Where botocore sends a call (its endpoint rules, not the legacy
    endpoint_url), caught before anything is sent."""
    import botocore.session
    from botocore.config import Config
    c = botocore.session.get_session().create_client(
        "iot-managed-integrations", region_name=region, aws_access_key_id="a", aws_secret_access_key="b",
        config=Config(use_fips_endpoint=fips, retries={"max_attempts": 1}))
    seen = {}

    def stop(request, **kw):
        seen["url"] = request.url
        raise InterruptedError

    c.meta.events.register("before-send", stop)
    try:
        c.list_ota_tasks()
    except InterruptedError:
        pass
    return seen["url"].split("/ota-tasks")[0]


def test_endpoints():
    """The endpoint of every partition is botocore's (issue 30, item 10), FIPS
    too; FIPS with a custom endpoint is refused, as the rules say."""
    driver = program("OTR_OTA_DRIVER")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for region in ("us-east-1", "eu-west-1", "cn-north-1", "cn-northwest-1", "us-gov-west-1", "us-iso-east-1",
                   "us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", "eusc-de-east-1", "xx-future-1"):
        for fips in (False, True):
            p = subprocess.run([driver, "--region", region, "endpoint"], capture_output=True, text=True,
                               env={**env, **({"AWS_USE_FIPS_ENDPOINT": "true"} if fips else {})})
            want = botocore_endpoint(region, fips)
            check(p.returncode == 0 and p.stdout.strip() == want, f"endpoint of {region}{' (FIPS)' if fips else ''}",
                  f"ota-runner {p.stdout.strip()} {p.stderr}; botocore {want}")
    p = subprocess.run([driver, "--endpoint-url", "http://127.0.0.1:1", "endpoint"], capture_output=True, text=True,
                       env={**env, "AWS_USE_FIPS_ENDPOINT": "true"})
    check(p.returncode != 0 and "FIPS and a custom endpoint are not supported" in p.stderr,
          "FIPS with a custom endpoint is refused", p.stderr)


def test_normalised_answers():
    """Drift is judged on what the service says, both sides written one way
    (issue 30, item 7): a GetOtaTask that writes times with milliseconds,
    lists Target in another order and leaves Tags out is no drift; a field
    changed by hand still is; and a rebuild reads the tags it left out."""
    lose_state()
    with Emulator("--tick", "0", "--outcomes", '{"never": true}') as emu:  # running: an update is taken
        with open(MANIFEST, "w") as f:
            f.write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: door}\n"
                    f"spec:\n  S3Url: s3://fw/door.json\n  OtaType: ONE_TIME\n"
                    f"  Target: [{ARN}b1, {ARN}a2, {ARN}c3]\n  Tags: {{team: doors}}\n"
                    "  OtaSchedulingConfig:\n    EndBehavior: STOP_ROLLOUT\n"
                    '    StartTime: "2026-12-01T02:00"\n    EndTime: "2026-12-02T02:00:00Z"\n')
        subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
        subprocess.run(["git", "-C", repo, "commit", "-q", "-m", "scheduled"], check=True, env=GIT_ENV)
        rc, out, err = run(emu, "apply")
        check(rc == 0, "a scheduled task with three things is made", out + err)
        emu.control("faults", {"normalize": True})
        got = aws(emu, "get-ota-task", "--identifier", recorded())
        check("Tags" not in got and got["OtaSchedulingConfig"]["StartTime"] == "2026-12-01T02:00:00.000Z"
              and got["Target"][0].endswith("c3"), "the emulator answers as a service may", json.dumps(got))
        rc, out, err = run(emu, "plan", "--refresh", "full", "--detailed-exitcode")
        check(rc == 0 and "drift" not in out, "times, order and an omitted field are not drift", out + err)
        aws(emu, "update-ota-task", "--identifier", recorded(), "--description", "by hand")
        rc, out, err = run(emu, "plan", "--refresh", "full", "--detailed-exitcode")
        check(rc == 2 and "drift" in out and "Description" in out, "a field changed by hand still is", out + err)
        made = recorded()
        lose_state()
        n = len(emu.log())
        rc, out, err = run(emu, "state", "rebuild")
        asked = [e["op"] for e in emu.log()[n:] if e["op"] == "ListTagsForResource"]
        check(rc == 0 and recorded() == made and asked == ["ListTagsForResource"],
              "a get without Tags: rebuild reads them with ListTagsForResource, and adopts the task",
              f"{asked}\n{out}{err}")


def no_unknown_members(emu, what):
    """The emulator ignores members the model does not know, as a service
    does, and logs them: ota-runner must send none."""
    bad = [e for e in emu.log() if e.get("unknown")]
    check(not bad, f"{what}: every member sent is the model's", json.dumps(bad[:3]))


def test_service_behaviours():
    """The emulator is no kinder than the service (issue 30, item 8): a delete
    is asynchronous (the task is got and listed as DELETION_IN_PROGRESS for a
    while), and ota-runner takes that for gone; a schedule time the service
    cannot read is refused; an unknown member is ignored, not refused."""
    lose_state()
    with Emulator("--tick", "0", "--deletion-seconds", "600") as emu:
        write_task("t7")
        rc, out, err = run(emu, "apply")
        gone = recorded()
        aws(emu, "delete-ota-task", "--identifier", gone)
        got = aws(emu, "get-ota-task", "--identifier", gone)
        listed = aws(emu, "list-ota-tasks")["Tasks"]
        check(got["Status"] == "DELETION_IN_PROGRESS" and any(t["TaskId"] == gone and t["Status"] ==
                                                              "DELETION_IN_PROGRESS" for t in listed),
              "a deleted task is got and listed as DELETION_IN_PROGRESS", json.dumps(got))
        rc, out, err = run(emu, "plan", "--detailed-exitcode")
        check(rc == 2 and "no longer exists in the service" in out, "DELETION_IN_PROGRESS is gone to a plan", out + err)
        rc, out, err = run(emu, "apply")
        check(rc == 0 and recorded() != gone and live(emu, recorded()), "and the task is made again", out + err)
        p = subprocess.run(["aws", "iot-managed-integrations", "create-ota-task", "--s3-url", "s3://fw/x.json",
                            "--ota-type", "ONE_TIME", "--ota-scheduling-config", '{"StartTime": "tomorrow"}',
                            "--endpoint-url", emu.url], env=aws_env(), capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and "ValidationException" in p.stderr and "date-time" in p.stderr,
              "a schedule time the service cannot read is refused", p.stderr)
        later = aws(emu, "create-ota-task", "--s3-url", "s3://fw/later.json", "--ota-type", "ONE_TIME",
                    "--target", ARN + "l1", "--ota-scheduling-config", '{"StartTime": "2031-01-01T00:00"}')
        got = aws(emu, "get-ota-task", "--identifier", later["TaskId"])
        check(got["Status"] == "SCHEDULED" and got["TaskProcessingDetails"]["numberOfQueuedThings"] == 1,
              "a task waits for its schedule's StartTime (SCHEDULED)", json.dumps(got))
        cfg = aws(emu, "create-ota-task-configuration", "--name", "abort", "--push-config", json.dumps(
            {"AbortConfig": {"AbortConfigCriteriaList": [{"Action": "CANCEL", "FailureType": "FAILED",
                                                          "MinNumberOfExecutedThings": 2,
                                                          "ThresholdPercentage": 50}]}}))
        emu.control("outcomes", {"share": 0})
        doomed = aws(emu, "create-ota-task", "--s3-url", "s3://fw/bad.json", "--ota-type", "ONE_TIME",
                     "--task-configuration-id", cfg["TaskConfigurationId"],
                     "--target", *[ARN + f"d{i}" for i in range(5)])
        got = aws(emu, "get-ota-task", "--identifier", doomed["TaskId"])
        d = got["TaskProcessingDetails"]
        check(got["Status"] == "CANCELED" and d["NumberOfFailedThings"] == 2 and d["NumberOfCanceledThings"] == 3,
              "the configuration's abort criteria cancel the rest (2 failed of 2: 100% >= 50%)", json.dumps(got))
        emu.control("outcomes", {})
        no_unknown_members(emu, "service behaviours")


def counts(emu, task_id):
    got = aws(emu, "get-ota-task", "--identifier", task_id)
    d = got["TaskProcessingDetails"]
    return got["Status"], d["numberOfSucceededThings"], d["numberOfQueuedThings"], d["NumberOfCanceledThings"]


def config(emu, name, push):
    return aws(emu, "create-ota-task-configuration", "--name", name, "--push-config",
               json.dumps(push))["TaskConfigurationId"]


def task(emu, n, *more):
    return aws(emu, "create-ota-task", "--s3-url", "s3://fw/s.json", "--ota-type", "ONE_TIME",
               "--target", *[ARN + f"s{i}" for i in range(n)], *more)["TaskId"]


def at(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_schedules():
    """The service's schedule (issue 30, item 8, --service-lifecycle): things
    notified no faster than MaximumPerMinute or an exponential rate; only
    inside a maintenance window; EndTime's STOP_ROLLOUT, CANCEL and
    FORCE_CANCEL; InProgressTimeoutInMinutes. Each on the emulator's virtual
    clock, read as the AWS CLI reads it."""
    import datetime
    with Emulator("--tick", "0", "--virtual-clock", "--service-lifecycle") as emu:
        advance = lambda s: emu.control("clock", {"advance": s})["now"]
        now = datetime.datetime.fromtimestamp(advance(0), datetime.timezone.utc)
        capped = task(emu, 5, "--task-configuration-id", config(emu, "cap2", {"RolloutConfig": {"MaximumPerMinute": 2}}))
        exp = task(emu, 8, "--task-configuration-id", config(emu, "exp", {"RolloutConfig": {"ExponentialRolloutRate": {
            "BaseRatePerMinute": 1, "IncrementFactor": 2, "RateIncreaseCriteria": {"numberOfNotifiedThings": 2}}}}))
        window = now + datetime.timedelta(minutes=20)
        windowed = task(emu, 3, "--ota-scheduling-config", json.dumps({"MaintenanceWindows": [
            {"StartTime": f"cron({window.minute} {window.hour} * * ? *)", "DurationInMinutes": 10}]}))
        one = config(emu, "one", {"RolloutConfig": {"MaximumPerMinute": 1}})
        end = at(now + datetime.timedelta(seconds=150))
        stopped = task(emu, 5, "--task-configuration-id", one, "--ota-scheduling-config",
                       json.dumps({"EndTime": end, "EndBehavior": "STOP_ROLLOUT"}))
        cancelled = task(emu, 5, "--task-configuration-id", one, "--ota-scheduling-config",
                         json.dumps({"EndTime": end, "EndBehavior": "CANCEL"}))
        emu.control("outcomes", {"never": True})
        forced = task(emu, 2, "--ota-scheduling-config", json.dumps({"EndTime": end, "EndBehavior": "FORCE_CANCEL"}))
        timing = task(emu, 2, "--task-configuration-id", config(emu, "t1", {"TimeoutConfig": {"InProgressTimeoutInMinutes": 1}}))
        emu.control("outcomes", {})
        check(counts(emu, capped)[:3] == ("IN_PROGRESS", 2, 3), "MaximumPerMinute 2: two things in the first minute",
              str(counts(emu, capped)))
        check(counts(emu, exp)[1] == 1, "an exponential rate starts at BaseRatePerMinute", str(counts(emu, exp)))
        check(counts(emu, windowed)[:3] == ("IN_PROGRESS", 0, 3), "no thing is notified outside the window",
              str(counts(emu, windowed)))
        seen = []
        for _ in range(3):
            advance(60)
            seen.append(counts(emu, exp)[1])
        check(seen == [2, 4, 8], "the rate doubles after each two things notified: 1, 2, 4, 8", str(seen))
        check(counts(emu, capped)[:2] == ("COMPLETED", 5), "and the capped task ends in its third minute",
              str(counts(emu, capped)))
        got = aws(emu, "get-ota-task", "--identifier", timing)
        check(got["Status"] == "COMPLETED" and got["TaskProcessingDetails"]["numberOfTimedOutThings"] == 2,
              "things that never answer time out after InProgressTimeoutInMinutes", json.dumps(got))
        check(counts(emu, stopped) == ("COMPLETED", 3, 0, 0), "STOP_ROLLOUT: no thing notified past the EndTime",
              str(counts(emu, stopped)))
        rows = aws(emu, "list-ota-task-executions", "--identifier", stopped)["ExecutionSummaries"]
        check(len(rows) == 3, "and the things never notified have no execution", json.dumps(rows))
        check(counts(emu, cancelled) == ("CANCELED", 3, 0, 2), "CANCEL: the things not notified are cancelled",
              str(counts(emu, cancelled)))
        got = aws(emu, "get-ota-task", "--identifier", forced)
        check(got["Status"] == "CANCELED" and got["TaskProcessingDetails"]["NumberOfCanceledThings"] == 2,
              "FORCE_CANCEL: the things in progress are cancelled too", json.dumps(got))
        advance(20 * 60)
        check(counts(emu, windowed)[:3] == ("COMPLETED", 3, 0), "inside the window, the things are notified",
              str(counts(emu, windowed)))
        p = subprocess.run(["aws", "iot-managed-integrations", "create-ota-task", "--s3-url", "s3://fw/x.json",
                            "--ota-type", "ONE_TIME", "--ota-scheduling-config",
                            json.dumps({"MaintenanceWindows": [{"StartTime": "at night", "DurationInMinutes": 5}]}),
                            "--endpoint-url", emu.url], env=aws_env(), capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and "ValidationException" in p.stderr and "cron" in p.stderr,
              "a window the service cannot read is refused", p.stderr)


def test_ended_update():
    """An ended task takes no update (issue 30, item 8): the emulator refuses
    one as a service does, and ota-runner's plan sends none: it notes the
    fields that stay, and still changes the tags in place."""
    lose_state()
    with Emulator("--tick", "0", "--service-lifecycle") as emu:
        write_tagged({"team": "a"})
        rc, out, err = run(emu, "apply")
        done = recorded()
        check(rc == 0 and aws(emu, "get-ota-task", "--identifier", done)["Status"] == "COMPLETED",
              "a task that completed", out + err)
        p = subprocess.run(["aws", "iot-managed-integrations", "update-ota-task", "--identifier", done,
                            "--description", "later", "--endpoint-url", emu.url], env=aws_env(),
                           capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and "ValidationException" in p.stderr and "COMPLETED" in p.stderr,
              "the emulator refuses to update an ended task", p.stderr)
        write_tagged({"team": "a"}, description="Edited after it ended")
        rc, out, err = run(emu, "plan", "--detailed-exitcode")
        check(rc == 0 and "has ended (COMPLETED)" in out and "Description stays" in out,
              "the plan sends no update to an ended task, and says why", out + err)
        n = len(emu.log())
        rc, out, err = run(emu, "apply")
        check(rc == 0 and not emu.mutations(n), "apply sends nothing", out + err)
        write_tagged({"team": "b"}, description="Edited after it ended")
        rc, out, err = run(emu, "apply")
        ops = [e["op"] for e in emu.mutations(n)]
        check(rc == 0 and ops == ["TagResource"] and user_tags(emu, done) == {"team": "b"} and recorded() == done,
              "its tags still change in place", f"{ops}\n{out}{err}")
        no_unknown_members(emu, "ended update")


def test_retry_waits():
    """Retries wait as botocore's standard mode does (issue 30, item 5): the
    first retry a draw in [0, 1 s], the second in [0, 2 s]; and a throttle
    that says x-amz-retry-after: 1500 is retried after 1.5 s, not sooner."""
    lose_state()
    with Emulator("--tick", "0") as emu:
        write_task("t5")
        emu.control("faults", {"throttle_rate": 1.0, "seed": 3})
        # the waits are random draws: three runs, so that "not all tiny" (a wait over 100 ms
        # among six) fails by chance once in millions, not once in two hundred
        runs = []
        for _ in range(3):
            rc, out, err = run(emu, "plan", "-v", "--max-attempts", "3")
            runs.append((rc, [int(w) for w in re.findall(r"retrying in (\d+) ms", err)], err))
        check(all(rc == 1 and len(w) == 2 and 0 <= w[0] <= 1000 and 0 <= w[1] <= 2000 for rc, w, _ in runs)
              and max(max(w) for _, w, _ in runs) > 100, "a throttled listing waits [0, 1 s], then [0, 2 s]",
              f"{[w for _, w, _ in runs]}\n{runs[-1][2][-600:]}")
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
        no_unknown_members(emu, "tokens")
    test_error_forms()
    test_tags_in_place()
    test_endpoints()
    test_normalised_answers()
    test_service_behaviours()
    test_schedules()
    test_ended_update()
    test_retry_waits()
    finish()


main()
