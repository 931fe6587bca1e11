"""Starting and talking to the emulator from the tests (Python standard library)."""
import json
import os
import signal
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ACCESS_KEY_ID = "AKIDOTAEMULATOR"
SECRET_ACCESS_KEY = "ota-emulator-secret-key"


# The calls that change something in the service, and those on tasks only.
TASK_MUTATING = ("CreateOtaTask", "UpdateOtaTask", "DeleteOtaTask", "TagResource", "UntagResource")
MUTATING = TASK_MUTATING + ("CreateOtaTaskConfiguration", "DeleteOtaTaskConfiguration")


def runner_env(url, state, **extra):
    """The environment ota-runner runs in against the emulator at url: the
    emulator's keys and no other AWS_ or GITHUB_ variable, no colour, the
    state at state; extra on top (a value None removes the variable)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    e.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
              "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
              "AWS_ENDPOINT_URL": url, "NO_COLOR": "1", "OTA_RUNNER_STATE": state})
    e.update(extra)
    return {k: v for k, v in e.items() if v is not None}


class Emulator:
    def __init__(self, *args, state=None, log=None):
        cmd = [sys.executable, os.path.join(HERE, "emulator.py"), "--port", "0"] + list(args)
        if state:
            cmd += ["--state", state]
        if log:
            cmd += ["--log", log]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line.split(" ", 2)[2]

    def control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_emulator/" + path, data=data,
                                     method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def log(self):
        return self.control("log")

    def mutations(self, since=0, ops=None):
        """The mutating calls of the request log from entry since on (ops: only
        these operations; default every mutating one)."""
        ops = ops or MUTATING
        return [e for e in self.log()[since:] if e["op"] in ops]

    def events(self):
        """The ground truth: every create, update and delete that took effect."""
        return self.control("events")

    def live_tasks(self):
        return [t for t in self.control("tasks") if not t.get("Deleted")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return None
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def aws_env(secret=SECRET_ACCESS_KEY):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "3",
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    return env


class MotoS3:
    """A real S3 implementation (moto's server) on a free loopback port, with
    a bucket; self.env(state_key) points ota-runner's state at it."""

    def __init__(self, bucket="ota-state"):
        from moto.server import ThreadedMotoServer
        import logging
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.bucket = bucket
        self.client().create_bucket(Bucket=bucket)

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)

    def keys(self, prefix=""):
        out = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def get(self, key):
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def stop(self):
        self.server.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
