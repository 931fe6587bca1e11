#!/usr/bin/env python3
"""Hostile service answers, from a test server: each gives a clear error, no
crash, and the state stays correct (loadable, and nothing recorded that did
not happen).

A body over the size cap, invalid JSON, JSON of the wrong shape (TaskId a
number, Tasks not a list), a 201 without TaskId, an endless NextToken loop,
a slow drip of bytes past the request timeout, a reset connection, and a
redirect to another host (not followed).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import SRC, check, finish, program  # noqa: E402

RUNNER = program("OTA_RUNNER")

mode = {"name": "ok"}
other_hits = []


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()  # headers and body go in two writes: without this, each waits for an ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        m = mode["name"]
        if self.path.startswith("/ota-task-configurations"):
            # configurations answer well, unless they are the subject
            if m == "items-not-list":
                return self.reply(200, b'{"Items": {"TaskConfigurationId": "x"}}')
            if m == "config-invalid-json":
                return self.reply(200, b'{"Items": [')
            return self.reply(200, b'{"Items": []}')
        listing = self.command == "GET" and self.path.startswith("/ota-tasks") and self.path.count("/") == 1
        if m == "too-large":
            body = b'{"Tasks": [' + b'{"TaskId": "a"},' * 600000 + b'{"TaskId": "b"}]}'
            return self.reply(200, body)
        if m == "invalid-json":
            return self.reply(200 if listing else 201, b'{"Tasks": [')
        if m == "taskid-number":
            return self.reply(201, b'{"TaskId": 12345, "TaskArn": "arn"}')
        if m == "tasks-not-list":
            return self.reply(200, b'{"Tasks": "many"}')
        if m == "no-taskid":
            return self.reply(201, b'{"TaskArn": "arn:aws:iotmanagedintegrations:us-east-1:1:ota-task/x"}')
        if m == "token-loop":
            return self.reply(200, b'{"Tasks": [{"TaskId": "t1"}], "NextToken": "same"}')
        if m == "token-cycle" and listing:  # A, B, A, B, ...: never back to back
            nxt = b"B" if "NextToken=A" in self.path else b"A"
            return self.reply(200, b'{"Tasks": [], "NextToken": "' + nxt + b'"}')
        if m == "token-reuse" and listing:  # A, B, A again, then the end: botocore reads it
            mode["pages"] = mode.get("pages", 0) + 1
            nxt = {1: b'"A"', 2: b'"B"', 3: b'"A"'}.get(mode["pages"], b'""')
            return self.reply(200, b'{"Tasks": [], "NextToken": ' + nxt + b'}')
        if m == "long-token" and listing:  # the model allows 65,535 characters
            if "NextToken=" in self.path:
                return self.reply(200, b'{"Tasks": [{"TaskId": "t9", "TaskArn": "", "Status": ""}]}')
            return self.reply(200, b'{"Tasks": [], "NextToken": "' + b"x/+=" * 4000 + b'"}')
        if m == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
            return
        if m == "reset":
            # linger 0, and every reference closed, so the kernel sends a RST
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
            return
        if m == "redirect":
            return self.reply(307, b"", {"Location": f"http://127.0.0.2:{other_port}{self.path}"})
        return self.reply(200, b'{"Tasks": []}')

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class Other(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        other_hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "14")
        self.end_headers()
        self.wfile.write(b'{"Tasks": []}\n')

    do_POST = do_GET


srv = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
srv.daemon_threads = True
threading.Thread(target=srv.serve_forever, daemon=True).start()
try:
    other = ThreadingHTTPServer(("127.0.0.2", 0), Other)
    other_port = other.server_address[1]
    threading.Thread(target=other.serve_forever, daemon=True).start()
except OSError:
    other = None
    other_port = 9

tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")
genv = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e"}
subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
os.makedirs(os.path.join(repo, "manifests"))
shutil.copy(os.path.join(SRC, "manifests", "energy", "smart-plug.yaml"), os.path.join(repo, "manifests"))
subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=genv)
subprocess.run(["git", "-C", repo, "commit", "-qm", "x"], check=True, env=genv)


def run(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "OTA_RUNNER_STATE": state,
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{srv.server_address[1]}"})
    if os.environ.get("V"):
        args = ("-v",) + tuple(args)
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=env, timeout=int(os.environ.get("T", "120")))
    return p.returncode, p.stdout, p.stderr


def state_ok():
    """The state loads (plan --refresh none runs) and records no task."""
    if not os.path.exists(state):
        return True
    s = json.load(open(state))
    return s["tasks"] == {}


cases_all = [
    # mode, command, expected message
    ("too-large", ["plan", "--repo", repo], "ResponseTooLarge: the answer is larger than 8 MiB; refused"),
    ("invalid-json", ["plan", "--repo", repo], "ListOtaTasks: the answer is not a JSON object"),
    ("tasks-not-list", ["plan", "--repo", repo], "ListOtaTasks: Tasks in the answer is not a list"),
    ("token-loop", ["plan", "--repo", repo], "the service sent the same NextToken twice"),
    ("token-cycle", ["plan", "--repo", repo], "ListOtaTasks: more than 10000 pages (0 items); stopping"),
    ("items-not-list", ["plan", "--repo", repo], "ListOtaTaskConfigurations: Items in the answer is not a list"),
    ("config-invalid-json", ["plan", "--repo", repo], "ListOtaTaskConfigurations: the answer is not a JSON object"),
    ("invalid-json", ["apply", "--repo", repo, "--refresh", "none", "--no-adopt"], "CreateOtaTask: the answer is not a JSON object"),
    ("taskid-number", ["apply", "--repo", repo, "--refresh", "none", "--no-adopt"], "CreateOtaTask: TaskId in the answer is not a valid string"),
    ("no-taskid", ["apply", "--repo", repo, "--refresh", "none", "--no-adopt"], "CreateOtaTask: the answer has no TaskId"),
    ("drip", ["plan", "--repo", repo, "--request-timeout", "1", "--max-attempts", "2"], "RequestTimeout"),
    ("reset", ["plan", "--repo", repo, "--max-attempts", "2"], "ConnectionError"),
    ("redirect", ["plan", "--repo", repo], "HTTP 307"),
]
cases = [c for c in cases_all if not os.environ.get("ONLY") or c[0] == os.environ["ONLY"]]
try:
    for m, args, want in cases:
        mode["name"] = m
        t0 = time.time()
        rc, out, err = run(*args)
        if os.environ.get("V"):
            print(err, file=sys.stderr)
        check(rc == 1 and want in err and "Segmentation" not in err, f"{m}: exit 1 with '{want}'",
              f"rc={rc}\n{out}\n{err[-800:]}")
        check(state_ok(), f"{m}: the state stays correct")
        mode["name"] = "ok"
        rc, out, err = run("plan", "--repo", repo, "--refresh", "none", "--no-adopt")
        check(rc == 0, f"{m}: the state still loads", err)
    check(other_hits == [], "the redirect to another host was not followed", str(other_hits))
    # answers the model allows: a token seen before but not back to back, a
    # 16,000-character token, empty optional strings (issue 30, items 3, 11)
    for m in ("token-reuse", "long-token"):
        mode.clear()
        mode["name"] = m
        rc, out, err = run("plan", "--repo", repo)
        check(rc == 0 and "Plan:" in out, f"{m}: the listing is read", f"rc={rc}\n{out}\n{err[-800:]}")
        check(m != "token-reuse" or mode.get("pages") == 4, f"{m}: every page was asked for", str(mode))
finally:
    srv.shutdown()
    if other:
        other.shutdown()
    shutil.rmtree(tmp)

finish()
