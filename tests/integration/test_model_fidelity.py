#!/usr/bin/env python3
"""The service model, operation by operation, with botocore as the oracle
(issue 30, "Done when").

ota-runner's requests: a fleet is planned, applied, refreshed, edited in
place (a Description, tags, a configuration replaced), pruned and rebuilt
against the emulator, which logs every request as sent. Each request must be
the one botocore itself would send for the same input: botocore's rest-json
serializer, given the input the emulator read, makes the same method, path
(percent-encoding included), query and JSON body, and botocore's parameter
validator finds the input within the model (required members, types,
lengths, ranges). Every operation ota-runner uses is seen; creates carry the
model's idempotency token; listings page with the paginators' own names.

The emulator's answers: every operation called with botocore (the AWS SDK
for Python) answers with the model's status code, and a body whose every
member (names and casing, types, enum values, required members) the output
shape holds; the paginators page through it; its errors are ones the model
lists for the operation, in every form it sends, as botocore reads them.

ota-runner's parsers: a GetOtaTask and a listing read by ota-runner give what
botocore reads from the same answers.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import parse_qsl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program, sample_fleet  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator, runner_env  # noqa: E402

try:
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from botocore.serialize import create_serializer
    from botocore.validate import ParamValidator
except ImportError:
    print("SKIP: botocore is not installed")
    sys.exit(77)

RUNNER = program("OTA_RUNNER")
DRIVER = program("OTR_OTA_DRIVER")
SESSION = botocore.session.get_session()
try:
    MODEL = SESSION.get_service_model("iot-managed-integrations")
except Exception:  # an older botocore without the service
    print("SKIP: this botocore has no iot-managed-integrations model")
    sys.exit(77)
PAGINATORS = SESSION.get_paginator_model("iot-managed-integrations")
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
# the operations ota-runner calls (ListTagsForResource when a get leaves
# the tags out: the emulator's "normalize" fault)
USED = {"CreateOtaTask", "GetOtaTask", "ListOtaTasks", "UpdateOtaTask", "DeleteOtaTask", "TagResource",
        "UntagResource", "ListTagsForResource", "CreateOtaTaskConfiguration", "GetOtaTaskConfiguration",
        "ListOtaTaskConfigurations", "DeleteOtaTaskConfiguration", "ListOtaTaskExecutions"}

tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")


def git(*args):
    subprocess.run(["git", "-C", repo, *args], check=True, env=GIT_ENV, capture_output=True)


def edit(path, old, new):
    full = os.path.join(repo, path)
    text = open(full).read()
    assert old in text, (path, old)
    open(full, "w").write(text.replace(old, new))


def run(emu, *args):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=runner_env(emu.url, state),
                       cwd=repo, timeout=300)
    return p.returncode, p.stdout, p.stderr


def driver(emu, *args):
    p = subprocess.run([DRIVER, *args], capture_output=True, text=True, env=runner_env(emu.url, state),
                       timeout=120)
    return p.returncode, (json.loads(p.stdout) if p.returncode == 0 else None), p.stderr


def body_of(raw):
    return json.loads(raw) if raw else {}


def same_request(entry):
    """What differs between the request ota-runner sent and botocore's
    serialization of the same input (an empty list: nothing)."""
    op = MODEL.operation_model(entry["op"])
    params = entry["params"]
    report = ParamValidator().validate(params, op.input_shape)
    wrong = [f"input: {report.generate_report()}"] if report.has_errors() else []
    want = create_serializer("rest-json", include_validation=False).serialize_to_request(params, op)
    if want["method"] != entry["method"]:
        wrong.append(f"method {entry['method']}, botocore {want['method']}")
    if want["url_path"] != entry["path"]:
        wrong.append(f"path {entry['path']}, botocore {want['url_path']}")
    sent_query = sorted(parse_qsl(entry["query"], keep_blank_values=True))
    want_query = sorted((k, str(x)) for k, v in want["query_string"].items() for x in (v if isinstance(v, list) else [v]))
    if sent_query != want_query:
        wrong.append(f"query {sent_query}, botocore {want_query}")
    want_body = want["body"].decode() if isinstance(want["body"], bytes) else want["body"]
    if body_of(entry["body"]) != body_of(want_body):
        wrong.append(f"body {entry['body']}, botocore {want_body}")
    if entry["body"] and want["headers"].get("Content-Type") and \
            entry["contentType"] != want["headers"]["Content-Type"]:
        wrong.append(f"Content-Type {entry['contentType']}, botocore {want['headers']['Content-Type']}")
    return wrong


def test_requests():
    """Every request ota-runner sends is botocore's for the same input."""
    sample_fleet(repo, rollouts=True)
    for name in ("extra-a", "extra-b"):  # three configurations: two pages
        with open(os.path.join(repo, "manifests", "configurations", name + ".yaml"), "w") as f:
            f.write(f"apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata: {{name: {name}}}\n"
                    f"spec:\n  Name: {name}\n  PushConfig:\n    RolloutConfig: {{MaximumPerMinute: 5}}\n")
    git("add", "-A")
    git("commit", "-qm", "configurations")
    # the tasks keep running (an ended one takes no update); two items a page
    with Emulator("--tick", "0", "--max-page", "2", "--log-bodies", "--outcomes", json.dumps({"never": True})) as emu:
        steps = [("apply",), ("plan", "--refresh", "full"), ("status",)]
        for args in steps:
            rc, out, err = run(emu, *args)
            check(rc == 0, " ".join(args), out + err)
        edit("manifests/security/door-lock.yaml", "with BLE fixes", "with BLE and NFC fixes")
        edit("manifests/security/door-lock.yaml", "Tags: {team: security}", "Tags: {owner: locks}")
        edit("manifests/configurations/staged-push.yaml", "BaseRatePerMinute: 10", "BaseRatePerMinute: 12")
        os.unlink(os.path.join(repo, "manifests", "energy", "smart-plug.yaml"))
        shutil.rmtree(os.path.join(repo, "manifests", "rollouts"))  # its waves used the old configuration
        git("add", "-A")
        git("commit", "-qm", "edits")
        rc, out, err = run(emu, "apply", "--prune", "--allow-cancel")
        check(rc == 0 and "deleted" in out and "updated" in out, "an edit in place, a replace and a prune", out + err)
        rc, out, err = run(emu, "apply", "--prune")  # the retired configuration goes
        check(rc == 0, "the retired configuration is deleted", out + err)
        for suffix in ("", ".journal", ".bak"):
            if os.path.exists(state + suffix):
                os.unlink(state + suffix)
        emu.control("faults", {"normalize": True})  # gets without Tags
        rc, out, err = run(emu, "state", "rebuild")
        check(rc == 0, "state rebuild", out + err)
        emu.control("faults", {"normalize": False})
        task_id = next(t["TaskId"] for t in emu.live_tasks())
        rc, got, err = driver(emu, "executions", task_id)
        check(rc == 0, "ListOtaTaskExecutions", err)
        log = [e for e in emu.log() if e.get("params") is not None]
        seen = {e["op"] for e in log}
        check(USED <= seen, "every operation ota-runner uses was sent",
              f"not seen: {sorted(USED - seen)}")
        check(seen <= USED, "and no other", f"others: {sorted(seen - USED)}")
        by_op = {}
        for e in log:
            wrong = same_request(e)
            if wrong:
                by_op.setdefault(e["op"], wrong)
            by_op.setdefault(e["op"], [])
        for op, wrong in sorted(by_op.items()):
            check(not wrong, f"{op}: as botocore serializes it", "; ".join(wrong))
        for e in log:
            for m in MODEL.operation_model(e["op"]).idempotent_members:
                check(e["params"].get(m), f"{e['op']}: carries its idempotency token {m}", json.dumps(e["params"]))
        for op in ("ListOtaTasks", "ListOtaTaskConfigurations", "ListOtaTaskExecutions"):
            pg = PAGINATORS.get_paginator(op)
            names = {k for e in log if e["op"] == op for k, _ in parse_qsl(e["query"])}
            paged = [e for e in log if e["op"] == op and pg["input_token"] in dict(parse_qsl(e["query"]))]
            # ota-runner reads one page of executions (the driver's call)
            check(names <= {pg["input_token"], pg["limit_key"]} and (paged or op == "ListOtaTaskExecutions"),
                  f"{op}: pages with the paginator's {pg['input_token']} and {pg['limit_key']}",
                  f"{names}, {len(paged)} later pages")


def conforms(shape, value, where, wrong):
    """Does value (the JSON an answer holds) fit the model's shape? Appends
    what does not to wrong."""
    t = shape.type_name
    kinds = {"structure": dict, "map": dict, "list": list, "string": str, "boolean": bool,
             "integer": int, "long": int, "float": (int, float), "double": (int, float),
             "timestamp": (int, float, str)}
    if not isinstance(value, kinds.get(t, object)) or (t in ("integer", "long") and isinstance(value, bool)):
        wrong.append(f"{where}: {type(value).__name__} where the model has {t}")
        return
    if t == "structure":
        body = {m: s for m, s in shape.members.items() if s.serialization.get("location") is None}
        for k, v in value.items():
            if k not in body:
                wrong.append(f"{where}.{k}: not a member of {shape.name}")
            elif v is not None:
                conforms(body[k], v, f"{where}.{k}", wrong)
        for k in shape.required_members:
            if k in body and k not in value:
                wrong.append(f"{where}.{k}: required, missing")
    elif t == "list":
        for i, v in enumerate(value):
            conforms(shape.member, v, f"{where}[{i}]", wrong)
    elif t == "map":
        for k, v in value.items():
            conforms(shape.value, v, f"{where}.{k}", wrong)
    elif t == "string" and shape.enum and value not in shape.enum:
        wrong.append(f"{where}: {value!r} is not in {shape.name}'s enum")


def botocore_client(emu, validate=True):
    return SESSION.create_client(
        "iot-managed-integrations", region_name="us-east-1", endpoint_url=emu.url,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate))


def test_answers():
    """Every operation of the emulator answers as the model says."""
    with Emulator("--tick", "0", "--max-page", "2", "--service-lifecycle", "--outcomes",
                  json.dumps({"never": True})) as emu:
        c = botocore_client(emu)
        answers = []

        def keep(operation_model, response_dict, **kw):
            answers.append((operation_model.name, response_dict["status_code"], response_dict["body"]))

        c.meta.events.register("before-parse.iot-managed-integrations", keep)
        cfg = c.create_ota_task_configuration(Name="model", PushConfig={"RolloutConfig": {"MaximumPerMinute": 5}},
                                              ClientToken="model-config-1")
        ids = []
        for i in range(5):
            ids.append(c.create_ota_task(S3Url=f"s3://fw/m{i}.json", OtaType="ONE_TIME",
                                         Target=[ARN + f"m{i}-{j}" for j in range(3)],
                                         TaskConfigurationId=cfg["TaskConfigurationId"], Tags={"team": "m"},
                                         ClientToken=f"model-task-{i}"))
        first = ids[0]
        c.get_ota_task(Identifier=first["TaskId"])
        c.update_ota_task(Identifier=first["TaskId"], Description="Updated")
        c.tag_resource(ResourceArn=first["TaskArn"], Tags={"owner": "x"})
        c.list_tags_for_resource(ResourceArn=first["TaskArn"])
        c.untag_resource(ResourceArn=first["TaskArn"], TagKeys=["owner"])
        c.get_ota_task_configuration(Identifier=cfg["TaskConfigurationId"])
        listed = {op: sum(len(p[key]) for p in c.get_paginator(name).paginate(**kw))
                  for op, name, key, kw in (("ListOtaTasks", "list_ota_tasks", "Tasks", {}),
                                            ("ListOtaTaskConfigurations", "list_ota_task_configurations",
                                             "Items", {}),
                                            ("ListOtaTaskExecutions", "list_ota_task_executions",
                                             "ExecutionSummaries", {"Identifier": first["TaskId"]}))}
        check(listed == {"ListOtaTasks": 5, "ListOtaTaskConfigurations": 1, "ListOtaTaskExecutions": 3},
              "botocore's paginators page through every listing, two items a page", json.dumps(listed))
        for i in ids:
            c.delete_ota_task(Identifier=i["TaskId"])
        codes = {}
        for op, status, body in answers:
            om = MODEL.operation_model(op)
            want = om.http.get("responseCode", 200)
            wrong = [] if status == want else [f"status {status}, the model's {want}"]
            if body:
                conforms(om.output_shape, json.loads(body), op, wrong)
            elif om.output_shape is not None and om.output_shape.required_members:
                wrong.append("no body, the output has required members")
            codes.setdefault(op, wrong)
        for op in sorted(MODEL.operation_names):
            if op in codes:
                check(not codes[op], f"{op}: the model's status and members", "; ".join(codes[op]))
        implemented = {op for op in MODEL.operation_names if "Ota" in op} | {"TagResource", "UntagResource",
                                                                               "ListTagsForResource"}
        check(implemented - {"DeleteOtaTaskConfiguration"} <= set(codes),
              "every operation ota-runner may use was answered", f"{sorted(implemented - set(codes))}")
        c.delete_ota_task_configuration(Identifier=cfg["TaskConfigurationId"])
        test_errors(emu)


def error_of(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def test_errors(emu):
    """Errors the model lists for each operation, in every form the emulator
    sends, read by botocore and by ota-runner alike."""
    c = botocore_client(emu, validate=False)
    missing = "ota000000missing"
    calls = {
        "GetOtaTask": lambda: c.get_ota_task(Identifier=missing),
        "UpdateOtaTask": lambda: c.update_ota_task(Identifier=missing, Description="x"),
        "DeleteOtaTask": lambda: c.delete_ota_task(Identifier=missing),
        "ListOtaTaskExecutions": lambda: c.list_ota_task_executions(Identifier=missing),
        "GetOtaTaskConfiguration": lambda: c.get_ota_task_configuration(Identifier="cfg000000missing"),
        "DeleteOtaTaskConfiguration": lambda: c.delete_ota_task_configuration(Identifier="cfg000000missing"),
        "CreateOtaTask": lambda: c.create_ota_task(S3Url="s3://fw/x.json", OtaType="WEEKLY"),
        "CreateOtaTaskConfiguration": lambda: c.create_ota_task_configuration(Name="x" * 300),
        "ListOtaTasks": lambda: c.list_ota_tasks(MaxResults=0),
        "ListOtaTaskConfigurations": lambda: c.list_ota_task_configurations(MaxResults=5000),
    }
    for op, call in calls.items():
        code, status = error_of(call)
        listed = [s.name for s in MODEL.operation_model(op).error_shapes]
        check(code in listed, f"{op}: its error ({code}, {status}) is one the model lists", f"{listed}")
    for form in ("header", "header-namespaced", "__type", "code", "Code"):
        emu.control("faults", {"error_forms": [form]})
        code, status = error_of(calls["GetOtaTask"])
        rc, _, err = driver(emu, "get", missing)
        check(code == "ResourceNotFoundException" and status == 404 and rc != 0 and
              "ResourceNotFoundException" in err, f"an error in the form {form}: botocore and ota-runner read it",
              f"botocore {code} {status}; ota-runner {err.strip()}")
    emu.control("faults", {"error_forms": ["header"]})


def test_parsers():
    """ota-runner's parsers read from the emulator's answers what botocore reads."""
    with Emulator("--tick", "0", "--outcomes", json.dumps({"share": 0.5})) as emu:
        c = botocore_client(emu)
        t = c.create_ota_task(S3Url="s3://fw/p.json", OtaType="ONE_TIME", Description="Parsed",
                              Target=[ARN + f"p{j}" for j in range(4)], Protocol="HTTP",
                              OtaSchedulingConfig={"StartTime": "2026-01-01T00:00:00Z",
                                                   "MaintenanceWindows": [{"StartTime": "cron(0 1 * * ? *)",
                                                                           "DurationInMinutes": 60}]},
                              ClientToken="parse-1")
        want = c.get_ota_task(Identifier=t["TaskId"])
        rc, got, err = driver(emu, "get", t["TaskId"])
        check(rc == 0 and got["TaskId"] == want["TaskId"] and got["Status"] == want["Status"] and
              got["succeeded"] == want["TaskProcessingDetails"]["numberOfSucceededThings"] == 2,
              "GetOtaTask: id, status and counts as botocore reads them", f"{got} {err}")
        fields = got["fields"] if got else {}
        differ = [k for k in ("S3Url", "Description", "Target", "Protocol", "OtaType", "OtaSchedulingConfig")
                  if fields.get(k) != want.get(k)]
        check(not differ, "GetOtaTask: the fields as botocore reads them", f"{differ}: {fields}")
        rc, got, err = driver(emu, "executions", t["TaskId"])
        boto = [x["TaskExecutionSummary"]["Status"] for x in
                c.list_ota_task_executions(Identifier=t["TaskId"])["ExecutionSummaries"]]
        check(rc == 0 and got["Executions"] == boto, "ListOtaTaskExecutions: the statuses botocore reads",
              f"{got} {boto}")


def main():
    try:
        test_requests()
        test_answers()
        test_parsers()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


main()
