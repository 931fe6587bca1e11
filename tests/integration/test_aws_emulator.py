#!/usr/bin/env python3
"""ota-runner's AWS layer (runner/aws + runner/ota, through tests/tools/ota_driver)
against the emulator: every operation, idempotency and the conflict, pagination
past one page, a 50% throttling storm, a service that always fails (the retry
quota stops it), dropped answers, --max-rps, -v and --debug without secrets.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, program, wait_until  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator  # noqa: E402

DRIVER = program("OTR_OTA_DRIVER")


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
              "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
              "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    e.update(extra)
    return e


def drive(emu, *args, flags=(), **extra):
    p = subprocess.run([DRIVER, "--endpoint-url", emu.url, "--region", "us-east-1", *flags, *args],
                       capture_output=True, text=True, env=env(**extra), timeout=300)
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, p.stderr


SPEC = json.dumps({"S3Url": "s3://fw/a.json", "OtaType": "ONE_TIME", "Description": "A task",
                   "Target": ["arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/x1"]})

with Emulator("--tick", "0.2", "--max-page", "100") as emu:
    rc, c1, err = drive(emu, "create", "thermostat", "tok-a", SPEC)
    check(rc == 0 and c1["status"] == 201 and c1["TaskId"], "create", err)
    rc, c2, err = drive(emu, "create", "thermostat", "tok-a", SPEC)
    check(rc == 0 and c2["TaskId"] == c1["TaskId"], "same ClientToken and body: the same task", err)
    rc, _, err = drive(emu, "create", "thermostat", "tok-a", json.dumps({"S3Url": "s3://other", "OtaType": "ONE_TIME"}))
    check(rc == 1 and "CreateOtaTask (thermostat): HTTP 409 ConflictException: ClientToken was already used" in err,
          "conflict names the operation, the manifest, the status, the type and the message", err)
    rc, _, err = drive(emu, "create", "bad", "tok-b", json.dumps({"S3Url": "s3://x", "OtaType": "WEEKLY"}))
    check(rc == 1 and "HTTP 400 ValidationException" in err and "(after" not in err,
          "a 400 is not retried", err)
    log = emu.log()
    check(len([e for e in log if e["op"] == "CreateOtaTask" and e["status"] == 400]) == 1,
          "one request for the 400")

    rc, g, err = wait_until(lambda: drive(emu, "get", c1["TaskId"]),
                            lambda r: r[0] != 0 or r[1]["Status"] == "COMPLETED")
    check(rc == 0 and g["Status"] == "COMPLETED" and g["succeeded"] == 1 and g["fields"]["S3Url"] == "s3://fw/a.json",
          "get with TaskProcessingDetails", str(g) + err)
    rc, ex, err = drive(emu, "executions", c1["TaskId"])
    check(rc == 0 and ex["Executions"] == ["SUCCEEDED"], "executions", str(ex) + err)
    rc, up, err = drive(emu, "update", c1["TaskId"], "Renamed task")
    check(rc == 0 and up["status"] == 204, "update: 204", err)
    rc, g, err = drive(emu, "get", c1["TaskId"])
    check(g["fields"]["Description"] == "Renamed task", "update applied")

    rc, many, err = drive(emu, "create-many", "130", "page", flags=("--parallelism", "16"))
    check(rc == 0 and many["ok"] == 130, "130 creates in parallel", str(many) + err)
    rc, lst, err = drive(emu, "list")
    check(rc == 0 and len(lst["Tasks"]) == 131, "list follows NextToken past one page",
          f"{len(lst['Tasks']) if lst else None} {err}")
    pages = [e for e in emu.log() if e["op"] == "ListOtaTasks"]
    check(len(pages) == 2, "two pages of 100 (the emulator's --max-page)", str(len(pages)))

    rc, d, err = drive(emu, "delete", c1["TaskId"])
    check(rc == 0 and d["status"] == 200, "delete: 200", err)
    rc, _, err = drive(emu, "get", c1["TaskId"])
    check(rc == 0 and _["Status"] == "DELETION_IN_PROGRESS",
          "get after delete: DELETION_IN_PROGRESS (the model's delete is asynchronous)", err)
    rc, _, err = wait_until(lambda: drive(emu, "get", c1["TaskId"]), lambda r: r[0] != 0)
    check(rc == 1 and "GetOtaTask (" + c1["TaskId"] + "): HTTP 404 ResourceNotFoundException" in err,
          "get after delete, after a while: 404", err)

    rc, cfg, err = drive(emu, "create-config", "canary", "cfg-tok")
    cid = cfg and cfg.get("TaskConfigurationId")
    check(rc == 0 and cid, "create configuration", err)
    rc, g, err = drive(emu, "get-config", cid)
    check(rc == 0 and g["Configuration"]["Name"] == "canary", "get configuration", err)
    rc, l, err = drive(emu, "list-configs")
    check(rc == 0 and [i["TaskConfigurationId"] for i in l["Items"]] == [cid], "list configurations", err)
    rc, d, err = drive(emu, "delete-config", cid)
    check(rc == 0 and d["status"] == 204, "delete configuration: 204", err)

    rc, _, err = drive(emu, "list", AWS_SECRET_ACCESS_KEY="not-the-secret")
    check(rc == 1 and "HTTP 403 InvalidSignatureException" in err, "wrong secret: 403, not retried", err)

    # -v and --debug: request lines and headers, never the secret, the token or the signature
    rc, _, err = drive(emu, "get", "nosuchtask", flags=("--debug",), AWS_SESSION_TOKEN="TOKEN-SHOULD-NOT-LEAK")
    check("-> GET /ota-tasks/nosuchtask" in err and "<- 404 GetOtaTask" in err, "--debug logs the request and answer", err)
    check("Signature=<redacted>" in err and "X-Amz-Security-Token: <redacted>" in err, "--debug redacts", err)
    check(SECRET_ACCESS_KEY not in err and "TOKEN-SHOULD-NOT-LEAK" not in err, "no secret in --debug", err)
    sig_shown = [l for l in err.splitlines() if "Signature=" in l and "<redacted>" not in l]
    check(not sig_shown, "no signature in --debug", "\n".join(sig_shown))

with Emulator("--tick", "0", "--throttle-rate", "0.5", "--seed", "42") as emu:
    rc, many, err = drive(emu, "create-many", "60", "storm", flags=("--max-attempts", "12"))
    log = emu.log()
    throttled = [e for e in log if e["status"] == 429]
    tasks = [t for t in emu.control("tasks")]
    check(rc == 0 and many["ok"] == 60 and many["failed"] == 0, "a 50% throttling storm: every call succeeds",
          str(many) + err)
    check(len(throttled) >= 30 and len(tasks) == 60, "the storm happened and no task twice",
          f"throttled={len(throttled)} tasks={len(tasks)}")

with Emulator("--tick", "0", "--drop-rate", "0.5", "--seed", "3") as emu:
    rc, many, err = drive(emu, "create-many", "40", "drop", flags=("--max-attempts", "10"))
    drops = [e for e in emu.log() if e["fault"] == "drop"]
    tasks = emu.control("tasks")
    check(rc == 0 and many["ok"] == 40 and len(drops) >= 10 and len(tasks) == 40,
          "lost answers: retried with the same ClientToken, exactly one task each",
          f"{many} drops={len(drops)} tasks={len(tasks)} {err[-500:]}")

with Emulator("--tick", "0", "--error-rate", "1.0") as emu:
    rc, many, err = drive(emu, "create-many", "200", "down", flags=("--max-attempts", "5", "--parallelism", "4"))
    requests = [e for e in emu.log() if e["op"] == "CreateOtaTask"]
    check(rc == 1 and many["failed"] == 200, "a service that always fails: every call fails", str(many)[:300])
    # 500 / 5 = 100 retries at most, then the quota stops them
    check(len(requests) <= 200 + 100 and many["retryQuota"] < 5, "the retry quota bounds the requests",
          f"requests={len(requests)} quota={many['retryQuota']}")
    check(any("HTTP 500 InternalServerException" in e and "retry quota exhausted" in e for e in many["errors"]),
          "the error says the quota stopped the retries", many["errors"][-1])

with Emulator("--tick", "0") as emu:
    rc, many, err = drive(emu, "create-many", "25", "rate", flags=("--max-rps", "10", "--parallelism", "8"))
    times = sorted(e["time"] for e in emu.log() if e["op"] == "CreateOtaTask")
    # a burst of 10, then 10 per second: 25 calls take at least 1.5 s (a lower bound: never flaky)
    check(rc == 0 and times[-1] - times[0] >= 1.4, "--max-rps spaces the calls",
          f"{times[-1] - times[0]:.2f} s")

# ---- the emulator answers in one write (headers and body together), with
# TCP_NODELAY: two writes meet the client's delayed ACK and hold each answer
# back ~40 ms, which a benchmark would charge to ota-runner
import emulator  # noqa: E402


class Recorder:
    def __init__(self):
        self.writes = []

    def write(self, data):
        self.writes.append(bytes(data))

    def flush(self):
        pass


class FakeServer:
    class cfg:
        verbose = False

    class faults:
        @staticmethod
        def next_error_form():
            return "header"


h = emulator.Handler.__new__(emulator.Handler)
h.wfile, h.server, h.request_version, h.command = Recorder(), FakeServer(), "HTTP/1.1", "GET"
h.requestline, h.client_address, h.close_connection = "GET / HTTP/1.1", ("127.0.0.1", 1), False
h.send_json(200, {"TaskId": "x"})
h.send_error_shape(emulator.ServiceError(429, "ThrottlingException", "Rate exceeded"))
check(len(h.wfile.writes) == 2 and all(w.rstrip().endswith(b"}") and b"\r\n\r\n" in w for w in h.wfile.writes),
      "the emulator sends each answer (headers and body) in one write", repr(h.wfile.writes))
import socket  # noqa: E402

listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname())
conn, _ = listener.accept()
k = emulator.Handler.__new__(emulator.Handler)
k.request, k.server = conn, FakeServer()
k.setup()
check(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, "the emulator sets TCP_NODELAY on each connection")
for sock in (conn, client, listener):
    sock.close()

finish()
