#!/usr/bin/env python3
"""The emulator is a faithful stand-in: the real AWS CLI works against it.

create, get, list (paginated), update and delete OTA tasks with `aws
iot-managed-integrations ... --endpoint-url`; ClientToken idempotency and the
conflict; validation errors; a wrong secret key and a stale timestamp refused
with 403; task status advancing with TaskProcessingDetails; task
configurations; the state file surviving a restart; a dropped connection after
commit leaving exactly one task; SIGTERM stopping it cleanly.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, wait_until  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator, aws_env  # noqa: E402

if not shutil.which("aws"):
    print("SKIP: the aws command is not installed")
    sys.exit(77)


def aws(emu, *args, secret=SECRET_ACCESS_KEY, validate=True):
    """The AWS CLI; validate=False turns off its own checks of the input
    (it checks minimums before sending), so the emulator's are reached."""
    cmd = ["aws", "iot-managed-integrations", *args, "--endpoint-url", emu.url, "--output", "json"]
    env = aws_env(secret)
    if not validate:
        env["AWS_CONFIG_FILE"] = NO_VALIDATION
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, p.stderr


tmp = tempfile.mkdtemp()
state = os.path.join(tmp, "emulator.json")
NO_VALIDATION = os.path.join(tmp, "aws-config")
open(NO_VALIDATION, "w").write("[default]\nparameter_validation = false\n")
try:
    with Emulator("--tick", "1.5", state=state) as emu:
        rc, t1, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/a.json", "--ota-type", "ONE_TIME",
                          "--description", "First task", "--client-token", "tok-1",
                          "--target", "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/t1",
                          "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/t2")
        check(rc == 0 and t1 and t1["TaskId"] and t1["TaskArn"].endswith("/" + t1["TaskId"]), "create", err)
        # read at once: the AWS CLI takes a second a call on a busy machine, and
        # the task's two things end one per tick
        rc, got, err = aws(emu, "get-ota-task", "--identifier", t1["TaskId"])
        check(rc == 0 and got["S3Url"] == "s3://fw/a.json" and got["Description"] == "First task"
              and got["Status"] in ("SCHEDULED", "IN_PROGRESS"), "get", str(got) + err)
        rc, again, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/a.json", "--ota-type", "ONE_TIME",
                             "--description", "First task", "--client-token", "tok-1",
                             "--target", "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/t1",
                             "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/t2")
        check(rc == 0 and again["TaskId"] == t1["TaskId"], "same token, same body: the same task", err)
        rc, _, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/b.json", "--ota-type", "ONE_TIME",
                         "--client-token", "tok-1")
        check(rc != 0 and "ConflictException" in err, "same token, other body: 409 ConflictException", err)
        rc, _, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/a.json", "--ota-type", "WEEKLY")
        check(rc != 0 and "ValidationException" in err and "enum value set" in err, "enum validated", err)
        rc, _, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/a.json", "--ota-type", "ONE_TIME",
                         "--description", "...")
        check(rc != 0 and "ValidationException" in err and "pattern" in err, "pattern validated", err)
        # a Smithy pattern is not anchored: a match anywhere satisfies it (ota-runner's own
        # validation reads patterns whole, a stricter rule of its own)
        rc, dot, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/dot.json", "--ota-type", "ONE_TIME",
                           "--description", "has a dot.")
        check(rc == 0, "a pattern matched anywhere satisfies the model", err)
        rc, _, err = aws(emu, "list-ota-tasks", secret="wrong-secret")
        check(rc != 0 and "InvalidSignatureException" in err, "wrong secret key: 403", err)

        rc, got, err = wait_until(lambda: aws(emu, "get-ota-task", "--identifier", t1["TaskId"]),
                                  lambda r: r[0] != 0 or r[1]["Status"] == "COMPLETED")
        d = got["TaskProcessingDetails"]
        check(got["Status"] == "COMPLETED" and d["numberOfSucceededThings"] == 2, "status advances", str(got))
        rc, ex, err = aws(emu, "list-ota-task-executions", "--identifier", t1["TaskId"])
        check(rc == 0 and [e["TaskExecutionSummary"]["Status"] for e in ex["ExecutionSummaries"]] ==
              ["SUCCEEDED", "SUCCEEDED"], "executions", str(ex) + err)

        rc, _, err = aws(emu, "update-ota-task", "--identifier", t1["TaskId"], "--description", "Renamed")
        rc2, got, _ = aws(emu, "get-ota-task", "--identifier", t1["TaskId"])
        check(rc == 0 and got["Description"] == "Renamed", "update", err)

        ids = {t1["TaskId"], dot["TaskId"]}
        for i in range(4):
            rc, t, err = aws(emu, "create-ota-task", "--s3-url", f"s3://fw/{i}.json", "--ota-type", "CONTINUOUS")
            ids.add(t["TaskId"])
        # the CLI follows NextToken by itself; --page-size makes it take 2 at a time
        rc, lst, err = aws(emu, "list-ota-tasks", "--page-size", "2")
        check(rc == 0 and {t["TaskId"] for t in lst["Tasks"]} == ids, "list, paginated by the CLI", err)
        pages = [e for e in emu.log() if e["op"] == "ListOtaTasks" and e["status"] == 200]
        check(len(pages) >= 3, "three pages requested", str(len(pages)))
        rc, one, err = aws(emu, "list-ota-tasks", "--max-items", "2")
        check(rc == 0 and len(one["Tasks"]) == 2 and one.get("NextToken"), "MaxResults and NextToken", err)

        rc, _, err = aws(emu, "delete-ota-task", "--identifier", t1["TaskId"])
        check(rc == 0, "delete", err)
        # the model's delete is asynchronous: DELETION_IN_PROGRESS for a while, then gone
        rc, got, err = aws(emu, "get-ota-task", "--identifier", t1["TaskId"])
        check(rc == 0 and got["Status"] == "DELETION_IN_PROGRESS", "deleted task: DELETION_IN_PROGRESS", err)
        rc, _, err = wait_until(lambda: aws(emu, "get-ota-task", "--identifier", t1["TaskId"]),
                                lambda r: r[0] != 0)
        check(rc != 0 and "ResourceNotFoundException" in err, "deleted task, after a while: 404", err)
        rc, _, err = aws(emu, "delete-ota-task", "--identifier", t1["TaskId"])
        check(rc != 0 and "ResourceNotFoundException" in err, "delete twice: 404", err)

        rc, c, err = aws(emu, "create-ota-task-configuration", "--name", "canary", "--client-token", "cfg-1",
                         "--push-config", json.dumps({"TimeoutConfig": {"InProgressTimeoutInMinutes": 30}}))
        check(rc == 0 and c["TaskConfigurationId"], "create configuration", err)
        rc, cs, err = aws(emu, "list-ota-task-configurations")
        check(rc == 0 and [x["TaskConfigurationId"] for x in cs["Items"]] == [c["TaskConfigurationId"]],
              "list configurations", err)
        rc, g, err = aws(emu, "get-ota-task-configuration", "--identifier", c["TaskConfigurationId"])
        check(rc == 0 and g["Name"] == "canary", "get configuration", err)
        rc, _, err = aws(emu, "delete-ota-task-configuration", "--identifier", c["TaskConfigurationId"])
        check(rc == 0, "delete configuration", err)
        # every kind of constraint of the model: doubles are type- and range-checked too
        push = {"RolloutConfig": {"ExponentialRolloutRate": {"BaseRatePerMinute": 10, "IncrementFactor": 9.0}}}
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "fast", "--push-config", json.dumps(push))
        check(rc != 0 and "ValidationException" in err and "IncrementFactor" in err and
              "less than or equal to 5" in err, "a double above its max: 400", err)
        push["RolloutConfig"]["ExponentialRolloutRate"]["IncrementFactor"] = 1.0
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "slow", "--push-config", json.dumps(push),
                         validate=False)
        check(rc != 0 and "ValidationException" in err and "greater than or equal to 1.1" in err,
              "a double below its min: 400", err)
        # (the CLI will not send a string for a double at all: the model's check, directly)
        import emulator
        model = emulator.Model(os.path.join(os.path.dirname(emulator.__file__), "model.json"))
        errors = []
        model.validate("ExponentialRolloutRate", {"IncrementFactor": "fast"}, "RolloutRate", errors)
        model.validate("ExponentialRolloutRate", {"IncrementFactor": True}, "RolloutRate", errors)
        model.validate("ExponentialRolloutRate", {"IncrementFactor": 2}, "RolloutRate", errors)
        check(len(errors) == 2 and all("Member must be of type double" in e for e in errors),
              "a double that is not a number is refused; an integer is a number", str(errors))
        push["RolloutConfig"]["ExponentialRolloutRate"] = {"BaseRatePerMinute": 101}
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "rate", "--push-config", json.dumps(push))
        check(rc != 0 and "BaseRatePerMinute" in err and "less than or equal to 100" in err,
              "an integer out of range: 400", err)
        abort = {"AbortConfig": {"AbortConfigCriteriaList": [{"Action": "STOP", "ThresholdPercentage": 150.5}]}}
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "abort", "--push-config", json.dumps(abort))
        check(rc != 0 and "enum value set: [CANCEL]" in err and "ThresholdPercentage" in err,
              "an enum and a double in a list: 400, both named", err)
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "!!!")
        check(rc != 0 and "pattern" in err, "the configuration name's pattern", err)
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "x" * 129)
        check(rc != 0 and "length less than or equal to 128" in err, "the configuration name's length", err)
        rc, _, err = aws(emu, "create-ota-task", "--cli-input-json", json.dumps({"S3Url": "s3://fw/x.json"}),
                         validate=False)
        check(rc != 0 and "ValidationException" in err and "Value null at 'OtaType'" in err,
              "a required member missing: 400", err)
        tags = {f"k{i}": "v" for i in range(51)}
        rc, _, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/x.json", "--ota-type", "ONE_TIME",
                         "--tags", json.dumps(tags), validate=False)
        check(rc != 0 and "ValidationException" in err and "length less than or equal to 50" in err,
              "a map with too many entries: 400", err)
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "", validate=False)
        check(rc != 0 and "ValidationException" in err and "length greater than or equal to 1" in err,
              "the configuration name's minimum length", err)
        rc, ok, err = aws(emu, "create-ota-task-configuration", "--name", "good", "--client-token", "cfg-2",
                          "--push-config", json.dumps({"RolloutConfig": {"ExponentialRolloutRate": {
                              "BaseRatePerMinute": 10, "IncrementFactor": 2.5,
                              "RateIncreaseCriteria": {"numberOfSucceededThings": 50}}}}))
        check(rc == 0 and ok["TaskConfigurationId"], "a valid configuration with a double", err)
        rc, again, err = aws(emu, "create-ota-task-configuration", "--name", "good", "--client-token", "cfg-2",
                             "--push-config", json.dumps({"RolloutConfig": {"ExponentialRolloutRate": {
                                 "BaseRatePerMinute": 10, "IncrementFactor": 2.5,
                                 "RateIncreaseCriteria": {"numberOfSucceededThings": 50}}}}))
        check(rc == 0 and again["TaskConfigurationId"] == ok["TaskConfigurationId"],
              "configuration: same token and body, the same configuration", err)
        rc, _, err = aws(emu, "create-ota-task-configuration", "--name", "other", "--client-token", "cfg-2")
        check(rc != 0 and "ConflictException" in err, "configuration: same token, other body: 409", err)
        # in use: with the fault, the delete is refused while a task refers to it
        cid = ok["TaskConfigurationId"]
        rc, user, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/u.json", "--ota-type", "ONE_TIME",
                            "--task-configuration-id", cid)
        emu.control("faults", {"conflict_in_use": True})
        rc, _, err = aws(emu, "delete-ota-task-configuration", "--identifier", cid)
        check(rc != 0 and "ValidationException" in err and "in use" in err,
              "in use: 400 ValidationException with the fault (the model lists no 409 here)", err)
        emu.control("faults", {"conflict_in_use": False})
        rc, _, err = aws(emu, "delete-ota-task-configuration", "--identifier", cid)
        check(rc == 0, "without the fault the delete goes through", err)
        aws(emu, "delete-ota-task", "--identifier", user["TaskId"])

        # a request signed five minutes and more ago is refused
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from unittest import mock
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6)
        req = AWSRequest(method="GET", url=emu.url + "/ota-tasks")
        with mock.patch("botocore.auth.get_current_datetime", return_value=old):
            SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "iotmanagedintegrations",
                      "us-east-1").add_auth(req)
        try:
            urllib.request.urlopen(urllib.request.Request(req.url, headers=dict(req.headers.items())))
            check(False, "stale timestamp refused")
        except urllib.error.HTTPError as e:
            check(e.code == 403 and e.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException:")
                  and "Signature expired" in json.loads(e.read())["Message"], "stale timestamp: 403")

        # the connection dropped after the task was committed: the CLI retries with the
        # same ClientToken and there is still one task
        emu.control("faults", {"drop_rate": 1.0, "seed": 7})
        rc, _, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/drop.json", "--ota-type", "ONE_TIME",
                         "--client-token", "tok-drop")
        emu.control("faults", {"drop_rate": 0.0})
        rc, _, err = aws(emu, "create-ota-task", "--s3-url", "s3://fw/drop.json", "--ota-type", "ONE_TIME",
                         "--client-token", "tok-drop")
        drops = [e for e in emu.log() if e["fault"] == "drop"]
        tasks = [t for t in emu.control("tasks") if t["S3Url"] == "s3://fw/drop.json"]
        check(rc == 0 and len(drops) >= 1 and len(tasks) == 1, "dropped answers: exactly one task",
              f"drops={len(drops)} tasks={len(tasks)} {err}")
        live = len([t for t in emu.control("tasks") if not t.get("Deleted")])
        check(emu.stop() == 0, "SIGTERM stops it with exit 0")

    # the state file survives a restart
    with Emulator(state=state) as emu:
        rc, lst, err = aws(emu, "list-ota-tasks")
        check(rc == 0 and len(lst["Tasks"]) == live, "state kept across a restart", f"{len(lst['Tasks'])} vs {live}")
finally:
    shutil.rmtree(tmp)

finish()
