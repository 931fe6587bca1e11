#!/usr/bin/env python3
"""No secret reaches any output: the secret access key, the session token and
the web identity token are searched for in stdout, stderr, the state file, the
journal, the lock file, the backup and a saved plan, after every command at
every verbosity (quiet, -v, --debug), against the emulator (which accepts the
fake key pair) and against moto's STS (web identity). And no core dump holds
them: ota-runner killed by SIGQUIT leaves none where a control process does.
"""
import glob
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish, program, sample_fleet  # noqa: E402
from harness import Emulator  # noqa: E402

RUNNER = program("OTA_RUNNER")

KEY_ID = "AKIDSECRETSTEST"
SECRET = "FAKE-SECRET-KEY-d41d8cd98f00b204e9800998ecf8427e"
TOKEN = "FAKE-SESSION-TOKEN-0f343b0931126a20f133d67c2b018a3b"
WEB_TOKEN = "FAKE-WEB-IDENTITY-eyJhbGciOiJSUzI1NiJ9.c2VjcmV0"
NEEDLES = [SECRET, TOKEN, WEB_TOKEN]

tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
state = os.path.join(tmp, "state.json")
written = []


def scan(label, text):
    for n in NEEDLES:
        check(n not in text, f"{label}: no secret", f"found {n[:16]}...")


def run(emu_url, *args, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "OTA_RUNNER_STATE": state,
                "AWS_ENDPOINT_URL": emu_url})
    env.update(extra or {})
    env = {k: v for k, v in env.items() if v is not None}
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, env=env, cwd=tmp, timeout=120)
    return p.returncode, p.stdout + p.stderr


sample_fleet(repo)
plan_file = os.path.join(tmp, "saved-plan.json")

try:
    with Emulator("--tick", "0", "--access-key-id", KEY_ID, "--secret-access-key", SECRET) as emu:
        commands = [
            ["validate", "--repo", repo], ["tokens", "--repo", repo], ["version"],
            ["plan", "--repo", repo], ["plan", "--repo", repo, "--output", "json"],
            ["plan", "--repo", repo, "--out", plan_file], ["apply", "--repo", repo],
            ["plan", "--repo", repo, "--refresh", "full", "--output", "markdown"],
            ["status"], ["status", "--output", "json"], ["state", "list"], ["state", "show", "hub-7-0-0"],
            ["apply", "--repo", repo, "--prune", "--output", "json"],
            ["state", "rm", "hub-7-0-0"], ["apply", "--repo", repo],
        ]
        for verbosity in ([], ["-v"], ["--debug"]):
            for cmd in commands:
                rc, out = run(emu.url, *verbosity, *cmd)
                check(rc in (0, 1), f"{' '.join(verbosity + cmd)} ran", out[-300:])
                scan(" ".join(verbosity + cmd), out)
        rc, out = run(emu.url, "--debug", "status")
        check("X-Amz-Security-Token: <redacted>" in out and "Signature=<redacted>" in out,
              "--debug shows where the secrets would be, redacted", out[:500])
        check(KEY_ID in out, "the access key id (not a secret) is shown to help", out[:300])

    # a password in a URL (issue 29): the endpoint's is never used, stored or printed; a
    # repository URL's is never stored or printed
    URL_SECRET = "URL-PASSWORD-5f4dcc3b5aa765d61d8327deb882cf99"
    NEEDLES.append(URL_SECRET)
    url_state = os.path.join(tmp, "url-state.json")
    with Emulator("--tick", "0", "--access-key-id", KEY_ID, "--secret-access-key", SECRET) as emu:
        with_secret = emu.url.replace("http://", f"http://user:{URL_SECRET}@")
        rc, out = run(with_secret, "apply", "--repo", repo, extra={"OTA_RUNNER_STATE": url_state})
        check(rc == 0, "an endpoint with a user name and password works (they are dropped)", out[-300:])
        scan("apply with a password in the endpoint", out)
        scan("its state file", open(url_state).read())
        rc, out = run(with_secret.replace("127.0.0.1", "localhost"), "plan", "--repo", repo,
                      extra={"OTA_RUNNER_STATE": url_state})
        check(rc == 1 and "was made for" in out, "another endpoint: refused", out[-300:])
        scan("the 'state was made for' error", out)
        rc, out = run(f"http://user:{URL_SECRET}@example.com", "plan", "--repo", repo,
                      extra={"OTA_RUNNER_STATE": os.path.join(tmp, "none.json")})
        check(rc == 1 and "plain http is allowed only to loopback" in out, "http to another host: refused", out)
        scan("the 'plain http only to loopback' error", out)
        for args in (["validate", "--output", "json"], ["plan", "--output", "json"], ["apply"]):
            rc, out = run(emu.url, *args, "--repo", f"http://git:{URL_SECRET}@127.0.0.1:9/fleet.git",
                          extra={"OTA_RUNNER_STATE": os.path.join(tmp, "none.json")})
            check(rc == 1 and "127.0.0.1:9/fleet.git" in out, f"{args[0]}: an unreachable repository URL is named",
                  out[-300:])
            scan(f"{args[0]} with a password in --repo", out)

    # everything the runs wrote is searched too
    for path in glob.glob(os.path.join(tmp, "state.json*")) + [plan_file]:
        scan(os.path.basename(path), open(path, errors="replace").read())
    check(os.path.exists(state + ".bak") and os.path.exists(plan_file), "the files searched exist")

    # web identity: the token file's content never appears (STS answers through moto);
    # a new emulator is a new endpoint, so a new state
    for path in glob.glob(os.path.join(tmp, "state.json*")):
        os.unlink(path)
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    p = port.getsockname()[1]
    port.close()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(p)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        tokf = os.path.join(tmp, "web-token")
        open(tokf, "w").write(WEB_TOKEN)
        with Emulator("--tick", "0") as emu:
            wi = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
                  "AWS_WEB_IDENTITY_TOKEN_FILE": tokf, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/x",
                  "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{p}"}
            for verbosity in ([], ["-v"], ["--debug"]):
                rc, out = run(emu.url, *verbosity, "plan", "--repo", repo, extra=wi)
                check(rc == 1 and "UnrecognizedClientException" in out, "web identity run reached the service", out[-300:])
                scan(" ".join(verbosity) + " plan (web identity)", out)
    finally:
        moto.terminate()
        moto.wait(timeout=10)

    # no core dump holds the keys: SIGQUIT (whose default is to dump core) while
    # ota-runner waits for its credential_process, next to a control process
    # that does leave a core on this machine
    def killed_with_sigquit(cmd, where, env=None, ready=None):
        """Runs cmd in where with no limit on core size, waits until the file
        ready has content (or 0.2 s), sends SIGQUIT; the exit status and the
        core files left. (Not through sh: it starts background jobs with
        SIGQUIT ignored.)"""
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        try:
            proc = subprocess.Popen(cmd, cwd=where, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, unlimited))
        except subprocess.SubprocessError:
            return None, []  # the hard limit forbids core files here
        time.sleep(0.2)
        for _ in range(300):
            if not ready or (os.path.exists(ready) and os.path.getsize(ready)):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGQUIT)
        rc = proc.wait(timeout=60)
        return rc, [f for f in os.listdir(where) if f.startswith("core")]

    control_dir, runner_dir = os.path.join(tmp, "control"), os.path.join(tmp, "runner")
    os.mkdir(control_dir)
    os.mkdir(runner_dir)
    rc, cores = killed_with_sigquit(["sleep", "30"], control_dir)
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if not cores:
        print(f"SKIP core dump check: a control process leaves no core here (core_pattern {pattern!r}, "
              f"exit {rc})")
    else:
        pidfile = os.path.join(tmp, "credential-process.pid")
        helper = os.path.join(tmp, "slow-credentials.sh")
        open(helper, "w").write(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 30\n")
        os.chmod(helper, 0o755)
        config = os.path.join(tmp, "aws-config")
        open(config, "w").write(f"[default]\ncredential_process = {helper}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp, "none"),
                    "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "OTA_RUNNER_STATE": state,
                    "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
        rc, cores = killed_with_sigquit([RUNNER, "plan", "--repo", repo, "--refresh", "list"], runner_dir, env,
                                        ready=pidfile)
        check(rc == -signal.SIGQUIT and os.path.exists(pidfile), "ota-runner was killed by SIGQUIT while it waited for "
              "its credentials", f"exit {rc}")
        check(cores == [], "no core file from ota-runner (it is not dumpable)", str(cores))
        if os.path.exists(pidfile):
            try:
                os.kill(int(open(pidfile).read()), 9)
            except (ProcessLookupError, ValueError):
                pass

    for path in glob.glob(os.path.join(tmp, "state.json*")):
        scan(os.path.basename(path), open(path, errors="replace").read())
finally:
    shutil.rmtree(tmp)

finish()
