#!/usr/bin/env python3
"""Profiles that assume a role (issue 27): role_arn with source_profile
(chained) or credential_source, external_id, duration_seconds,
role_session_name, as the AWS CLI resolves them.

A stand-in for STS on loopback checks each AssumeRole's SigV4 signature
against the credentials it must be signed with (the source profile's keys,
or the role before it in the chain, with its session token) and answers
with a role's credentials; the emulator then accepts only the last role's
keys, so a plan that succeeds used them.

- a chain base -> role-a -> role-b: two AssumeRole calls, in order, each
  signed by the one before, with role-a's external id, duration and session
  name; the service called with role-b's keys;
- credential_source = Environment;
- refused with a clear error: a loop of source profiles, a missing source
  profile, both source_profile and credential_source, an STS refusal;
- --role-arn (and an environment's `role:` in ota-runner.yaml): the role
  assumed with what the chain or the profile gives (role-b over the keys of
  the environment, and over the profile base).
"""
import hashlib
import hmac
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
import emulator as em  # noqa: E402
from checks import check, finish, program, sample_fleet  # noqa: E402
from harness import Emulator  # noqa: E402

RUNNER = program("OTA_RUNNER")
ACCOUNT = "arn:aws:iam::123456789012:role/"
KEYS = {"AKIDBASE": "base-secret", "ASIAROLEA": "role-a-secret", "ASIAROLEB": "role-b-secret"}
ROLES = {ACCOUNT + "a": ("ASIAROLEA", "token-a"), ACCOUNT + "b": ("ASIAROLEB", "token-b")}
calls = []


class STS(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, xml):
        body = xml.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        m = em.AUTH_RX.match(self.headers.get("Authorization", ""))
        akid, date, region, service, signed, sig = m.groups() if m else ("", "", "", "", "", "")
        names = signed.split(";")
        cr = em.canonical_request("POST", self.path, "", self.headers, names,
                                  hashlib.sha256(body).hexdigest())
        amz_date = self.headers.get("X-Amz-Date", "")
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/{service}/aws4_request",
                         hashlib.sha256(cr.encode()).hexdigest()])
        want = hmac.new(em.signing_key(KEYS.get(akid, "?"), date, region, service), sts.encode(),
                        hashlib.sha256).hexdigest() if akid in KEYS else ""
        calls.append({**form, "signedBy": akid, "valid": bool(m) and hmac.compare_digest(want, sig)
                      and service == "sts", "token": self.headers.get("X-Amz-Security-Token")})
        role = form.get("RoleArn")
        if role not in ROLES or not calls[-1]["valid"]:
            return self.reply(403, "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not authorized to "
                                   "assume " + str(role) + "</Message></Error></ErrorResponse>")
        key, token = ROLES[role]
        self.reply(200, "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                        f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{KEYS[key]}</SecretAccessKey>"
                        f"<SessionToken>{token}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
                        "</Credentials></AssumeRoleResult></AssumeRoleResponse>")


tmp = tempfile.mkdtemp(prefix="otr-assume-")
repo = os.path.join(tmp, "fleet")
sample_fleet(repo)
with open(os.path.join(tmp, "allow.json"), "w") as f:
    json.dump({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, f)
with open(os.path.join(tmp, "principals.json"), "w") as f:
    json.dump({"role-b": {"accessKeyId": "ASIAROLEB", "secretAccessKey": KEYS["ASIAROLEB"],
                          "policies": [os.path.join(tmp, "allow.json")]},
               "base": {"accessKeyId": "ASIAROLEA", "secretAccessKey": KEYS["ASIAROLEA"],
                        "policies": [os.path.join(tmp, "allow.json")]}}, f)
config, credentials = os.path.join(tmp, "config"), os.path.join(tmp, "credentials")
with open(credentials, "w") as f:
    f.write("[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base-secret\n")
with open(config, "w") as f:
    f.write(f"""[profile role-a]
role_arn = {ACCOUNT}a
source_profile = base
external_id = ext-1
duration_seconds = 1800
role_session_name = sess-a

[profile role-b]
role_arn = {ACCOUNT}b
source_profile = role-a
region = us-east-1

[profile loop-x]
role_arn = {ACCOUNT}b
source_profile = loop-y

[profile loop-y]
role_arn = {ACCOUNT}a
source_profile = loop-x

[profile missing]
role_arn = {ACCOUNT}a
source_profile = nope

[profile both]
role_arn = {ACCOUNT}a
source_profile = base
credential_source = Environment

[profile from-env]
role_arn = {ACCOUNT}a
credential_source = Environment

[profile denied]
role_arn = {ACCOUNT}denied
source_profile = base
""")
sts = http.server.ThreadingHTTPServer(("127.0.0.1", 0), STS)
threading.Thread(target=sts.serve_forever, daemon=True).start()

with Emulator("--tick", "0", "--principals", os.path.join(tmp, "principals.json")) as emu:
    def plan(profile, **env):
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        e.update({"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_REGION": "us-east-1",
                  "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": emu.url,
                  "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{sts.server_address[1]}", **env})
        p = subprocess.run([RUNNER, "plan", "--repo", repo, "--profile", profile, "--state",
                            os.path.join(tmp, "state.json")], capture_output=True, text=True, env=e, timeout=60)
        return p.returncode, p.stdout + p.stderr

    rc, out = plan("role-b")
    check(rc == 0 and [(c["RoleArn"], c["signedBy"], c["valid"]) for c in calls] ==
          [(ACCOUNT + "a", "AKIDBASE", True), (ACCOUNT + "b", "ASIAROLEA", True)]
          and calls[0].get("ExternalId") == "ext-1" and calls[0].get("DurationSeconds") == "1800"
          and calls[0].get("RoleSessionName") == "sess-a" and calls[1].get("token") == "token-a"
          and calls[0].get("token") is None,
          "a chain base -> role-a -> role-b: each role assumed with the one before, as configured",
          json.dumps(calls) + out)
    check(all(e.get("principal") == "role-b" for e in emu.log()), "the service was called with role-b's keys",
          json.dumps(emu.log()[:3]))
    calls.clear()
    rc, out = plan("from-env", AWS_ACCESS_KEY_ID="AKIDBASE", AWS_SECRET_ACCESS_KEY="base-secret")
    check(calls and calls[0]["signedBy"] == "AKIDBASE" and calls[0]["valid"],
          "credential_source = Environment: the role assumed with the environment's keys", json.dumps(calls) + out)
    # --role-arn over the chain (the environment's keys), then over a profile
    calls.clear()
    emu_calls = len(emu.log())
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update({"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_REGION": "us-east-1",
              "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": emu.url,
              "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{sts.server_address[1]}",
              "AWS_ACCESS_KEY_ID": "AKIDBASE", "AWS_SECRET_ACCESS_KEY": "base-secret"})
    p = subprocess.run([RUNNER, "plan", "--repo", repo, "--role-arn", ACCOUNT + "b", "--state",
                        os.path.join(tmp, "state.json")], capture_output=True, text=True, env=e, timeout=60)
    check(p.returncode == 0 and [(c["RoleArn"], c["signedBy"], c["valid"]) for c in calls] ==
          [(ACCOUNT + "b", "AKIDBASE", True)] and all(x.get("principal") == "role-b" for x in emu.log()[emu_calls:]),
          "--role-arn: the role assumed with the chain's keys, the service called with the role's",
          json.dumps(calls) + p.stdout + p.stderr)
    with open(os.path.join(repo, "ota-runner.yaml"), "w") as f:
        f.write(f"apiVersion: ota-runner/v1\nkind: Environments\nenvironments:\n  - name: prod\n"
                f"    region: us-east-1\n    profile: base\n    role: {ACCOUNT}b\n    paths: [manifests]\n"
                f"    state: {os.path.join(tmp, 'env-state.json')}\n")
    subprocess.run(["git", "-C", repo, "add", "ota-runner.yaml"], check=True)
    subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "envs"],
                   check=True)
    calls.clear()
    e.pop("AWS_ACCESS_KEY_ID")
    e.pop("AWS_SECRET_ACCESS_KEY")
    p = subprocess.run([RUNNER, "plan", "--repo", repo, "--env", "prod"], capture_output=True, text=True, env=e,
                       timeout=60)
    check(p.returncode == 0 and [(c["RoleArn"], c["signedBy"], c["valid"]) for c in calls] ==
          [(ACCOUNT + "b", "AKIDBASE", True)],
          "an environment's role: assumed with its profile's keys", json.dumps(calls) + p.stdout + p.stderr)
    for profile, want in (("loop-x", "a loop of source profiles: loop-x -> loop-y -> loop-x"),
                          ("missing", "profile nope is in neither"),
                          ("both", "has both source_profile and credential_source"),
                          ("denied", "STS AssumeRole of " + ACCOUNT + "denied: HTTP 403 AccessDenied")):
        rc, out = plan(profile)
        check(rc == 1 and want in out and "base-secret" not in out, f"refused: {profile}", out)
sts.shutdown()
finish()
