#!/usr/bin/env python3
"""The credentials chain, each source proven against something real:

- web identity (what GitHub Actions OIDC uses) against moto_server's STS, and
  the service request signed with the temporary credentials STS issued;
- shared config and credentials files with profiles, [profile x] sections,
  aws_session_token, credential_process; --profile skips the environment;
- container credentials (full URI, authorization token or token file) and
  IMDSv2 (token PUT, role, credentials) from small servers started here;
- temporary credentials refreshed before they expire, in the middle of a run;
- nothing found: the error lists what was tried;
- never a secret in the output.
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

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, program  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator  # noqa: E402

DRIVER = program("OTR_OTA_DRIVER")

tmp = tempfile.mkdtemp()


def base_env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.path.join(tmp, "none"),
              "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp, "none"), "AWS_REGION": "us-east-1",
              "HOME": tmp})
    e.update(extra)
    return {k: v for k, v in e.items() if v is not None}


def drive(*args, flags=(), **extra):
    p = subprocess.run([DRIVER, *flags, *args], capture_output=True, text=True,
                       env=base_env(**extra), timeout=120)
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, p.stderr


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def serve(handler_cls):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def creds_json(expires_in=3600, key=ACCESS_KEY_ID, secret=SECRET_ACCESS_KEY, token="CONTAINER-TOKEN-1"):
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    return json.dumps({"AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                       "Expiration": exp, "Code": "Success"}).encode()


try:
    # ---- nothing configured: the error lists what was tried
    rc, _, err = drive("whoami")
    check(rc == 1 and "no AWS credentials found; tried: environment" in err and "web identity" in err
          and "credential_process" in err and "container" in err
          and "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)" in err,
          "nothing found lists the sources", err)

    # ---- environment
    rc, who, err = drive("whoami", AWS_ACCESS_KEY_ID="AKIDENV", AWS_SECRET_ACCESS_KEY="env-secret",
                         AWS_SESSION_TOKEN="env-token")
    check(rc == 0 and who["source"] == "environment" and who["accessKeyId"] == "AKIDENV"
          and who["sessionToken"], "environment", err)

    # ---- files and profiles
    cfg = write("config", "[default]\nregion = us-east-1\n[profile dev]\nregion = us-east-1\n"
                          "[profile proc]\ncredential_process = " + sys.executable + " " +
                write("proc.py", "import json\nprint(json.dumps({'Version': 1, 'AccessKeyId': 'AKIDPROC', "
                                 "'SecretAccessKey': 'proc-secret', 'SessionToken': 'proc-token'}))\n") +
                "\n[profile broken]\ncredential_process = /bin/false\n"
                "[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = cfg-secret\n")
    cred = write("credentials", "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d-secret\n"
                                "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = dev-secret\n"
                                "aws_session_token = dev-token\n")
    files = {"AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": cred}
    rc, who, err = drive("whoami", **files)
    check(rc == 0 and who["accessKeyId"] == "AKIDDEFAULT" and who["source"].startswith("profile default in "),
          "default profile from the credentials file", str(who) + err)
    rc, who, err = drive("whoami", flags=("--profile", "dev"), **files)
    check(rc == 0 and who["accessKeyId"] == "AKIDDEV" and who["sessionToken"], "--profile dev", str(who) + err)
    rc, who, err = drive("whoami", AWS_PROFILE="dev", **files)
    check(rc == 0 and who["accessKeyId"] == "AKIDDEV", "AWS_PROFILE=dev", str(who) + err)
    rc, who, err = drive("whoami", flags=("--profile", "dev"), AWS_ACCESS_KEY_ID="AKIDENV",
                         AWS_SECRET_ACCESS_KEY="x", **files)
    check(rc == 0 and who["accessKeyId"] == "AKIDDEV", "--profile skips the environment", str(who) + err)
    rc, who, err = drive("whoami", AWS_PROFILE="dev", AWS_ACCESS_KEY_ID="AKIDENV", AWS_SECRET_ACCESS_KEY="x", **files)
    check(rc == 0 and who["accessKeyId"] == "AKIDENV", "AWS_PROFILE does not skip the environment", str(who) + err)
    rc, who, err = drive("whoami", flags=("--profile", "proc"), **files)
    check(rc == 0 and who["accessKeyId"] == "AKIDPROC" and who["source"] == "credential_process of profile proc",
          "credential_process", str(who) + err)
    rc, who, err = drive("whoami", flags=("--profile", "broken"), **files)
    check(rc == 1 and "credential_process of profile broken: the command failed" in err, "a failing process", err)
    # a process that never answers, with a child holding its output: stopped after the timeout, its
    # whole process group gone (issue 29)
    pids = os.path.join(tmp, "hang-pids")
    hang = write("hang.sh", f"#!/bin/sh\nsleep 1000 & echo $! >> {pids}\necho $$ >> {pids}\nexec sleep 1000\n")
    os.chmod(hang, 0o755)
    hang_cfg = write("config-hang", f"[default]\ncredential_process = {hang}\n")
    t0 = time.time()
    rc, who, err = drive("whoami", AWS_CONFIG_FILE=hang_cfg, AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, "none"),
                         OTA_RUNNER_CREDENTIAL_PROCESS_TIMEOUT="2")
    took = time.time() - t0
    time.sleep(0.3)
    alive = []
    for pid in open(pids).read().split():
        try:  # a zombie (dead, not yet reaped by whoever adopted it) is not alive
            if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    check(rc == 1 and "no answer after 2 s" in err and took < 10 and not alive,
          "a credential_process that hangs is stopped after its timeout, with its children",
          f"{took:.1f}s alive={alive} {err}")
    for pid in alive:
        os.kill(int(pid), 9)
    rc, who, err = drive("whoami", flags=("--profile", "cfgonly"), **files)
    check(rc == 0 and who["accessKeyId"] == "AKIDCFG", "keys in the config file", str(who) + err)
    rc, who, err = drive("whoami", flags=("--profile", "nosuch"), **files)
    check(rc == 1 and "profile nosuch is in neither" in err, "an unknown profile is an error", err)

    # ---- web identity against moto's STS
    port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        token_file = write("oidc-token", "eyJhbGciOiJSUzI1NiJ9.WEB-IDENTITY-TOKEN-SECRET.sig\n")
        wi = {"AWS_WEB_IDENTITY_TOKEN_FILE": token_file,
              "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/ota-deployer",
              "AWS_ROLE_SESSION_NAME": "github-actions", "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{port}"}
        rc, who, err = drive("whoami", flags=("-v",), **wi)
        check(rc == 0 and who["source"] == "web identity" and who["accessKeyId"].startswith("ASIA")
              and who["sessionToken"] and who["expiration"] > time.time(),
              "web identity through moto's STS", str(who) + err)
        check("WEB-IDENTITY-TOKEN-SECRET" not in err, "the web identity token is not printed", err)
        with Emulator() as emu:
            rc, _, err = drive("--endpoint-url", emu.url, "list", **wi)
            seen = [e for e in emu.log() if e["op"] == "ListOtaTasks"]
            check(rc == 1 and "UnrecognizedClientException" in err and seen and
                  seen[0]["accessKeyId"].startswith("ASIA") and seen[0]["sessionToken"],
                  "the service request is signed with STS's temporary credentials", str(seen) + err)
        class StsDeny(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                        b"<Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>"
                        b"</Error></ErrorResponse>")
                self.send_response(403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        deny, deny_url = serve(StsDeny)
        rc, who, err = drive("whoami", **{**wi, "AWS_ENDPOINT_URL_STS": deny_url})
        deny.shutdown()
        check(rc == 1 and "web identity: STS AssumeRoleWithWebIdentity: HTTP 403 AccessDenied: Not "
              "authorized to perform sts:AssumeRoleWithWebIdentity" in err, "an STS refusal is reported", err)
        rc, who, err = drive("whoami", **{**wi, "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{free_port()}"})
        check(rc == 1 and "web identity: STS AssumeRoleWithWebIdentity: " in err, "STS unreachable is reported", err)
        rc, who, err = drive("whoami", **{**wi, "AWS_WEB_IDENTITY_TOKEN_FILE": os.path.join(tmp, "missing")})
        check(rc == 1 and "cannot read the token file" in err, "a missing token file is reported", err)
        pcfg = write("config-wi", f"[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ota\n"
                                  f"web_identity_token_file = {token_file}\n")
        rc, who, err = drive("whoami", flags=("--profile", "ci"), AWS_CONFIG_FILE=pcfg,
                             AWS_ENDPOINT_URL_STS=f"http://127.0.0.1:{port}")
        check(rc == 0 and who["source"] == "web identity of profile ci" and who["accessKeyId"].startswith("ASIA"),
              "web identity from a profile", str(who) + err)
    finally:
        moto.terminate()
        moto.wait(timeout=10)

    # ---- container credentials
    hits = {"container": 0, "imds": 0, "expires_in": 3600}

    class Container(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.headers.get("Authorization") != "container-auth-token":
                self.send_response(401)
                self.end_headers()
                return
            hits["container"] += 1
            body = creds_json(hits["expires_in"])
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv, url = serve(Container)
    rc, who, err = drive("whoami", AWS_CONTAINER_CREDENTIALS_FULL_URI=url + "/v2/credentials",
                         AWS_CONTAINER_AUTHORIZATION_TOKEN="container-auth-token")
    check(rc == 0 and who["source"] == "container credentials" and who["accessKeyId"] == ACCESS_KEY_ID,
          "container credentials with a token", str(who) + err)
    auth_file = write("container-token", "container-auth-token\n")
    rc, who, err = drive("whoami", AWS_CONTAINER_CREDENTIALS_FULL_URI=url + "/v2/credentials",
                         AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=auth_file)
    check(rc == 0 and who["accessKeyId"] == ACCESS_KEY_ID, "container credentials with a token file", err)
    rc, who, err = drive("whoami", AWS_CONTAINER_CREDENTIALS_FULL_URI=url + "/v2/credentials")
    check(rc == 1 and "HTTP 401" in err, "container endpoint refusing: reported", err)
    rc, who, err = drive("whoami", AWS_CONTAINER_CREDENTIALS_FULL_URI="http://10.0.0.1/creds")
    check(rc == 1 and "plain http is allowed only to loopback" in err, "a non-loopback http URI is refused", err)

    # refresh in the middle of a run: credentials with 2 minutes left are fetched
    # again before each signature (the refresh margin is 5 minutes)
    with Emulator("--tick", "0") as emu:
        hits["container"] = 0
        hits["expires_in"] = 120
        rc, many, err = drive("--endpoint-url", emu.url, "create-many", "6", "refresh",
                              flags=("--parallelism", "1"),
                              AWS_CONTAINER_CREDENTIALS_FULL_URI=url + "/v2/credentials",
                              AWS_CONTAINER_AUTHORIZATION_TOKEN="container-auth-token")
        check(rc == 0 and many["ok"] == 6 and hits["container"] >= 6,
              "expiring credentials are refreshed during the run", f"{many} hits={hits['container']} {err}")
        hits["container"] = 0
        hits["expires_in"] = 3600
        rc, many, err = drive("--endpoint-url", emu.url, "create-many", "6", "fresh",
                              AWS_CONTAINER_CREDENTIALS_FULL_URI=url + "/v2/credentials",
                              AWS_CONTAINER_AUTHORIZATION_TOKEN="container-auth-token")
        check(rc == 0 and hits["container"] == 1, "fresh credentials are fetched once", str(hits))
    srv.shutdown()

    # ---- IMDSv2
    class Imds(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, body=b""):
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self):
            if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.reply(200, b"IMDS-SESSION-TOKEN")
            self.reply(400)

        def do_GET(self):
            if self.headers.get("X-aws-ec2-metadata-token") != "IMDS-SESSION-TOKEN":
                return self.reply(401)  # IMDSv1 is not served
            hits["imds"] += 1
            if self.path == "/latest/meta-data/iam/security-credentials/":
                return self.reply(200, b"ota-instance-role")
            if self.path == "/latest/meta-data/iam/security-credentials/ota-instance-role":
                return self.reply(200, creds_json(key="AKIDIMDS"))
            self.reply(404)

    srv, url = serve(Imds)
    rc, who, err = drive("whoami", AWS_EC2_METADATA_DISABLED=None, AWS_EC2_METADATA_SERVICE_ENDPOINT=url)
    check(rc == 0 and who["accessKeyId"] == "AKIDIMDS" and who["source"] == "EC2 instance metadata (role ota-instance-role)"
          and hits["imds"] == 2, "IMDSv2: token, role, credentials", str(who) + err)
    rc, who, err = drive("whoami", AWS_EC2_METADATA_DISABLED="true", AWS_EC2_METADATA_SERVICE_ENDPOINT=url)
    check(rc == 1 and "disabled by AWS_EC2_METADATA_DISABLED" in err, "IMDS can be disabled", err)
    srv.shutdown()

    # ---- no secret is printed, even with --debug
    with Emulator() as emu:
        rc, _, err = drive("--endpoint-url", emu.url, "list", flags=("--debug",),
                           AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
                           AWS_SESSION_TOKEN="SESSION-TOKEN-SECRET")
        check(rc == 0 and SECRET_ACCESS_KEY not in err and "SESSION-TOKEN-SECRET" not in err,
              "--debug prints no secret", err)
finally:
    shutil.rmtree(tmp)

finish()
