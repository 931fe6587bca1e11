#!/usr/bin/env python3
"""apply --notify (issue 25): what a rollout did, told to webhooks as
CloudEvents 1.0, against a receiver on loopback.

- a two-wave rollout driven to its end: wave.started, wave.passed and
  rollout.completed, each once across runs (a run with nothing new sends
  nothing), each a structured CloudEvent (application/cloudevents+json) with
  a stable id, signed with OTA_RUNNER_NOTIFY_SECRET (HMAC-SHA256 over the
  body, checked here as a receiver would);
- a halted rollout: rollout.halted, naming the failed device;
- slack+http(s)://: a Slack message; the webhook's path (its secret) is never
  printed;
- a receiver that fails twice then answers: delivered on the third attempt;
  a receiver that is down: a warning, exit 0, the event kept in the state and
  delivered by the next apply (the same id); --notify-required: exit 1;
- a plain-http URL off loopback is refused.
"""
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program  # noqa: E402
from harness import Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
SECRET = "notify-secret-for-the-test"


class Receiver:
    """A webhook on loopback: records every POST; answers the codes queued in
    fail (then 200)."""

    def __init__(self):
        self.got, self.fail = [], []
        self.hold = 0  # seconds to wait before answering (a run killed meanwhile)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                code = outer.fail.pop(0) if outer.fail else 200
                outer.got.append({"path": self.path, "headers": dict(self.headers), "body": body, "code": code})
                if outer.hold:
                    time.sleep(outer.hold)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def delivered(self, path="/hook"):
        return [json.loads(g["body"]) for g in self.got if g["path"] == path and g["code"] == 200]

    def stop(self):
        self.server.shutdown()


def fleet(name, waves):
    repo = tempfile.mkdtemp(prefix=f"otr-notify-{name}-")
    os.makedirs(os.path.join(repo, "manifests"))
    lines = ["apiVersion: ota-runner/v1", "kind: OtaRollout", "metadata: {name: fw}", "spec:",
             "  task: {S3Url: 's3://fw/2-5-0.json', OtaType: ONE_TIME}",
             "  gate: {minFinished: 1, maxFailedPercent: 10, soak: 0s}", "  waves:"] + waves
    with open(os.path.join(repo, "manifests", "fw.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", repo, "commit", "-qm", "fleet"], check=True, env=GIT_ENV)
    return repo


def apply(emu, repo, *args, **env):
    e = runner_env(emu.url, os.path.join(repo, "state.json"), OTA_RUNNER_NOTIFY_SECRET=SECRET, **env)
    p = subprocess.run([RUNNER, "apply", "--repo", repo, *args], capture_output=True, text=True, env=e, timeout=120)
    return p.returncode, p.stdout, p.stderr


rx = Receiver()
TWO = [f"    - {{name: canary, Target: [{ARN}canary1, {ARN}canary2]}}",
       f"    - {{name: everyone, Target: [{ARN}t1, {ARN}t2, {ARN}t3]}}"]
try:
    # ---- a rollout driven to its end
    repo = fleet("end", TWO)
    hook, slack = rx.url + "/hook", "slack+" + rx.url + "/slack/T0/B0/s3cr3tW3bh00k"
    with Emulator("--tick", "0") as emu:
        outs = []
        for _ in range(4):
            rc, out, err = apply(emu, repo, "--notify", hook, "--notify", slack)
            outs.append((rc, out, err))
        events = rx.delivered()
        types = [e["type"] for e in events]
        check(all(rc == 0 for rc, _, _ in outs) and types == [
            "dev.ota-runner.wave.started", "dev.ota-runner.wave.passed", "dev.ota-runner.wave.started",
            "dev.ota-runner.wave.passed", "dev.ota-runner.rollout.completed"],
              "a rollout driven to its end: started, passed, started, passed, completed; each once over four runs",
              json.dumps(types) + "".join(o + e for _, o, e in outs))
        first = events[0] if events else {}
        check(first.get("specversion") == "1.0" and re.fullmatch(r"[0-9a-f]{32}", first.get("id", ""))
              and first.get("source") == repo + "#manifests" and first.get("subject") == "OtaRollout/fw"
              and first.get("datacontenttype") == "application/json" and first.get("time", "").endswith("Z")
              and first.get("data", {}).get("wave") == "canary" and first["data"].get("taskId")
              and first["data"].get("summary") == "fw (revision 1): wave canary started",
              "a structured CloudEvent: specversion, id, source (repository#path), subject, time, data", json.dumps(first))
        posts = [g for g in rx.got if g["path"] == "/hook"]
        check(all(g["headers"].get("Content-Type") == "application/cloudevents+json" and
                  g["headers"].get("X-Ota-Runner-Signature") ==
                  "sha256=" + hmac.new(SECRET.encode(), g["body"], hashlib.sha256).hexdigest() for g in posts)
              and len({e["id"] for e in events}) == len(events),
              "every body signed (HMAC-SHA256, as a receiver checks it); every id distinct",
              json.dumps([g["headers"] for g in posts])[:600])
        slack_bodies = [json.loads(g["body"]) for g in rx.got if g["path"].startswith("/slack/")]
        check(len(slack_bodies) == 5 and slack_bodies[0] == {
            "text": "ota-runner: fw (revision 1): wave canary started (dev.ota-runner.wave.started)"}
              and not any("s3cr3tW3bh00k" in o + e for _, o, e in outs),
              "slack+: a Slack message per event; the webhook's secret path never printed", json.dumps(slack_bodies))
        state = json.load(open(os.path.join(repo, "state.json")))
        check(not state.get("notifications"), "every event delivered: none waits in the state", json.dumps(state)[:300])

    # ---- a halt names the failed device; a receiver that fails, then one that is down
    repo = fleet("halt", TWO)
    rx.got.clear()
    with Emulator("--tick", "0", "--outcomes", json.dumps({"things": {ARN + "canary2": "FAILED"}})) as emu:
        rx.fail = [500, 502]
        rc, out, err = apply(emu, repo, "--notify", hook)
        tries = [g for g in rx.got if g["path"] == "/hook"]
        check(rc == 0 and [g["code"] for g in tries] == [500, 502, 200] and len({g["body"] for g in tries}) == 1,
              "a receiver that fails twice gets the same event a third time, and takes it", json.dumps(
                  [g["code"] for g in tries]) + err)
        rx.fail = [503] * 3
        rc, out, err = apply(emu, repo, "--notify", hook)
        state = json.load(open(os.path.join(repo, "state.json")))
        pending = [x["event"] for x in state.get("notifications", [])]
        check(rc == 0 and "warning: notification to http://127.0.0.1/...: HTTP 503" in err
              and [e["type"] for e in pending] == ["dev.ota-runner.rollout.halted"],
              "a receiver that is down: a warning, exit 0, the halt kept in the state", out + err)
        halted = pending[0] if pending else {}
        check(halted.get("data", {}).get("reason") == "50% failed of 2 (at most 10%); first failed devices: canary2"
              and halted["data"].get("wave") == "canary" and halted["data"].get("counts", {}).get("failed") == 1,
              "rollout.halted: its wave, its reason naming the failed device, its counts", json.dumps(halted))
        rx.fail = [503] * 3
        rc, out, err = apply(emu, repo, "--notify", hook, "--notify-required")
        check(rc == 1 and "HTTP 503" in err, "--notify-required: an undelivered notification fails the apply", out + err)
        rc, out, err = apply(emu, repo, "--notify", hook)
        got = rx.delivered()
        state = json.load(open(os.path.join(repo, "state.json")))
        check(rc == 0 and [e["type"] for e in got][-1] == "dev.ota-runner.rollout.halted"
              and got[-1]["id"] == halted.get("id") and not state.get("notifications")
              and "Notified: 1 event delivered." in out,
              "the next apply delivers the kept halt, with the same id, and the state lets it go", out + err)

    # ---- drift found: a task changed behind ota-runner's back, put back by apply --refresh full
    repo = tempfile.mkdtemp(prefix="otr-notify-drift-")
    os.makedirs(os.path.join(repo, "manifests"))
    with open(os.path.join(repo, "manifests", "plugs.yaml"), "w") as f:
        f.write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: plugs}\n"
                f"spec: {{S3Url: s3://fw/p.json, OtaType: ONE_TIME, Description: Plugs, Target: [{ARN}p1]}}\n")
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", repo, "commit", "-qm", "fleet"], check=True, env=GIT_ENV)
    with Emulator("--tick", "0", "--outcomes", json.dumps({"never": True})) as emu:
        apply(emu, repo, "--notify", hook)
        task_id = json.load(open(os.path.join(repo, "state.json")))["tasks"]["plugs"]["taskId"]
        subprocess.run(["aws", "iot-managed-integrations", "update-ota-task", "--identifier", task_id,
                        "--description", "Changed by hand", "--endpoint-url", emu.url], check=True, capture_output=True,
                       env={**runner_env(emu.url, "/dev/null"), "AWS_PAGER": "", "AWS_DEFAULT_REGION": "us-east-1"})
        rx.got.clear()
        rc, out, err = apply(emu, repo, "--notify", hook, "--refresh", "full")
        got = rx.delivered()
        check(rc == 0 and [e["type"] for e in got] == ["dev.ota-runner.drift.found"]
              and got[0]["subject"] == "OtaTask/plugs" and got[0]["data"]["fields"] == ["Description"]
              and got[0]["data"]["what"] == "changed",
              "drift found: one event naming the task and the field, when apply puts it back", json.dumps(got) + err)

    # ---- a failed apply
    repo = fleet("failed", TWO)
    with Emulator("--tick", "0") as emu:
        emu.control("faults", {"fail_ops": {"CreateOtaTask": 400}})
        rx.got.clear()
        rc, out, err = apply(emu, repo, "--notify", hook)
        got = rx.delivered()
        check(rc == 1 and [e["type"] for e in got] == ["dev.ota-runner.apply.failed"]
              and got[0]["data"]["failed"] == 1 and "CreateOtaTask" in got[0]["data"]["errors"][0]
              and got[0]["subject"] == repo + "#manifests",
              "a failed apply: apply.failed with the failed count and the first errors", json.dumps(got) + err)

    # ---- killed after sending, before saving: the event is sent once more, then never again
    repo = fleet("kill", TWO)
    with Emulator("--tick", "0") as emu:
        rx.got.clear()
        rx.hold = 3
        e = runner_env(emu.url, os.path.join(repo, "state.json"), OTA_RUNNER_NOTIFY_SECRET=SECRET)
        proc = subprocess.Popen([RUNNER, "apply", "--repo", repo, "--notify", hook], env=e,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if rx.got:
                break
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        rx.hold = 0
        first = [json.loads(g["body"])["id"] for g in rx.got]
        apply(emu, repo, "--notify", hook)
        apply(emu, repo, "--notify", hook)
        ids = [json.loads(g["body"])["id"] for g in rx.got]
        check(len(first) == 1 and ids.count(first[0]) == 2,
              "killed after sending and before saving: the event is sent once more, and no more",
              json.dumps([json.loads(g["body"])["type"] for g in rx.got]))

    # ---- a URL that could be read on the way is refused
    rc, out, err = apply(emu, repo, "--notify", "http://hooks.example.com/x")
    check(rc == 1 and "https only (http only to loopback)" in err, "plain http off loopback is refused", err)
finally:
    rx.stop()
finish()
