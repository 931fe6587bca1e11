#!/usr/bin/env python3
"""A repository over smart HTTP behind basic authentication (git's own
http-backend on loopback, as a forge serves it), read with a token:

- no token: refused, and the error says what to set;
- OTA_RUNNER_GIT_TOKEN: read;
- OTA_RUNNER_GIT_TOKEN_FILE (a systemd credential or a mounted secret: the
  token in a file, its trailing newline cut): read;
- a wrong token: refused after one try, and the token is never printed;
- a token file that is missing or empty: a clear error naming the variable.
"""
import base64
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, program, sample_fleet  # noqa: E402

RUNNER = program("OTA_RUNNER")
BACKEND = "/usr/lib/git-core/git-http-backend"
if not os.path.exists(BACKEND):
    print(f"SKIP: {BACKEND} is not installed (Debian's git package has it)")
    sys.exit(77)
TOKEN = "glpat-s3cr3t-t0ken-for-the-test"
tmp = tempfile.mkdtemp(prefix="otr-git-http-")
sample_fleet(os.path.join(tmp, "src"))
subprocess.run(["git", "clone", "-q", "--bare", os.path.join(tmp, "src"), os.path.join(tmp, "srv", "fleet.git")],
               check=True)
asked = []


class Handler(http.server.BaseHTTPRequestHandler):
    """git http-backend as a CGI, behind basic authentication."""

    def log_message(self, fmt, *args):
        pass

    def serve(self):
        auth = self.headers.get("Authorization", "")
        asked.append(auth)
        if auth != "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="fleet"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"GIT_PROJECT_ROOT": os.path.join(tmp, "srv"), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
               "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": "x-access-token",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "PATH": os.environ["PATH"]}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run([BACKEND], input=body, capture_output=True, env=env).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    do_GET = do_POST = serve


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/fleet.git"


def validate(**env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("OTA_RUNNER_GIT")}
    e.update(env)
    cache = tempfile.mkdtemp(dir=tmp)
    p = subprocess.run([RUNNER, "validate", "--repo", url, "--cache-dir", cache], capture_output=True, text=True,
                       env=e, timeout=120)
    return p.returncode, p.stdout + p.stderr


try:
    rc, out = validate()
    check(rc == 1 and "OTA_RUNNER_GIT_TOKEN" in out, "no token: refused, and the error names OTA_RUNNER_GIT_TOKEN",
          out)
    rc, out = validate(OTA_RUNNER_GIT_TOKEN=TOKEN)
    check(rc == 0 and out.startswith("valid: "), "OTA_RUNNER_GIT_TOKEN: the repository is read", out)
    token_file = os.path.join(tmp, "git-token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    rc, out = validate(OTA_RUNNER_GIT_TOKEN_FILE=token_file)
    check(rc == 0 and out.startswith("valid: "), "OTA_RUNNER_GIT_TOKEN_FILE: the token read from a file", out)
    n = len(asked)
    rc, out = validate(OTA_RUNNER_GIT_TOKEN="wrong-" + TOKEN)
    check(rc == 1 and TOKEN not in out and "wrong-" not in out and len(asked) - n <= 3,
          "a wrong token: refused after one try, and never printed", f"{len(asked) - n} requests\n{out}")
    rc, out = validate(OTA_RUNNER_GIT_TOKEN_FILE=os.path.join(tmp, "no-such-file"))
    check(rc == 1 and "OTA_RUNNER_GIT_TOKEN_FILE" in out and "no-such-file" in out,
          "a missing token file: an error naming the variable and the file", out)
    open(token_file, "w").close()
    rc, out = validate(OTA_RUNNER_GIT_TOKEN_FILE=token_file)
    check(rc == 1 and "OTA_RUNNER_GIT_TOKEN_FILE" in out and "is empty" in out, "an empty token file: an error", out)
finally:
    server.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
finish()
