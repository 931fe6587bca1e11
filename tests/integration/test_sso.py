#!/usr/bin/env python3
"""IAM Identity Center (SSO) profiles (issue 27): the token `aws sso login`
cached under ~/.aws/sso/cache (SHA-1 of the session's name, or of a legacy
profile's start URL), exchanged at the portal's GetRoleCredentials (a
stand-in on loopback, which checks the bearer token, account and role); the
emulator accepts only the role's keys, so a plan that succeeds used them.

- a profile with sso_session ([sso-session NAME]) and a legacy one with
  sso_start_url: both work;
- no cached token, an expired one, a token the portal refuses: errors that
  name `aws sso login`; a profile missing sso_role_name: says what it needs.
"""
import datetime
import hashlib
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, program, sample_fleet  # noqa: E402
from harness import Emulator  # noqa: E402

RUNNER = program("OTA_RUNNER")
TOKEN, START = "sso-access-token-1", "https://acme.awsapps.com/start"
asked = []


class Portal(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        asked.append({"path": u.path, **q, "token": self.headers.get("x-amz-sso_bearer_token")})
        ok = (u.path == "/federation/credentials" and q == {"account_id": "111122223333", "role_name": "Deployer"}
              and self.headers.get("x-amz-sso_bearer_token") == TOKEN)
        body = json.dumps({"roleCredentials": {
            "accessKeyId": "ASIASSOROLE", "secretAccessKey": "sso-role-secret", "sessionToken": "sso-session",
            "expiration": 4102444800000}} if ok else {"message": "Session token not found or invalid"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


tmp = tempfile.mkdtemp(prefix="otr-sso-")
home = os.path.join(tmp, "home")
cache = os.path.join(home, ".aws", "sso", "cache")
os.makedirs(cache)
repo = os.path.join(tmp, "fleet")
sample_fleet(repo)
with open(os.path.join(tmp, "allow.json"), "w") as f:
    json.dump({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, f)
with open(os.path.join(tmp, "principals.json"), "w") as f:
    json.dump({"deployer": {"accessKeyId": "ASIASSOROLE", "secretAccessKey": "sso-role-secret",
                            "policies": [os.path.join(tmp, "allow.json")]}}, f)
config = os.path.join(tmp, "config")
with open(config, "w") as f:
    f.write(f"""[profile dev]
sso_session = acme
sso_account_id = 111122223333
sso_role_name = Deployer
region = us-east-1

[sso-session acme]
sso_start_url = {START}
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile legacy]
sso_start_url = {START}
sso_region = us-east-1
sso_account_id = 111122223333
sso_role_name = Deployer

[profile half]
sso_session = acme
sso_account_id = 111122223333
""")


def cached(key, token=TOKEN, hours=8):
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
    name = hashlib.sha1(key.encode()).hexdigest() + ".json"
    with open(os.path.join(cache, name), "w") as f:
        json.dump({"accessToken": token, "expiresAt": until.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
                   "startUrl": START}, f)
    return os.path.join(cache, name)


portal = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Portal)
threading.Thread(target=portal.serve_forever, daemon=True).start()
with Emulator("--tick", "0", "--principals", os.path.join(tmp, "principals.json")) as emu:
    def plan(profile):
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        e.update({"HOME": home, "AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                  "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": emu.url,
                  "AWS_ENDPOINT_URL_SSO": f"http://127.0.0.1:{portal.server_address[1]}"})
        p = subprocess.run([RUNNER, "plan", "--repo", repo, "--profile", profile, "--state",
                            os.path.join(tmp, "state.json")], capture_output=True, text=True, env=e, timeout=60)
        return p.returncode, p.stdout + p.stderr

    rc, out = plan("dev")
    check(rc == 1 and "no IAM Identity Center token cached for acme" in out and "aws sso login --profile dev" in out,
          "no cached token: the error names aws sso login", out)
    session_file = cached("acme")
    rc, out = plan("dev")
    check(rc == 0 and asked and asked[-1]["token"] == TOKEN and all(e.get("principal") == "deployer" for e in emu.log()),
          "an sso_session profile: the role's credentials from GetRoleCredentials, used for the service",
          json.dumps(asked) + out)
    cached(START)
    rc, out = plan("legacy")
    check(rc == 0, "a legacy profile with sso_start_url: its token cached by the start URL", out)
    cached("acme", hours=-1)
    rc, out = plan("dev")
    check(rc == 1 and "the IAM Identity Center token expired at" in out and "aws sso login" in out,
          "an expired token: the error names aws sso login", out)
    cached("acme", token="stale-token")
    rc, out = plan("dev")
    check(rc == 1 and "GetRoleCredentials: HTTP 401" in out and "aws sso login" in out
          and "stale-token" not in out, "a token the portal refuses: HTTP 401, aws sso login, never the token", out)
    rc, out = plan("half")
    check(rc == 1 and "needs sso_account_id, sso_role_name" in out, "a profile missing sso_role_name", out)
portal.shutdown()
finish()
