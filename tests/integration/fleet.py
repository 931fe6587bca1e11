"""A fleet repository, its state and an emulator of its own, for the tests
that edit manifests commit by commit and run ota-runner between the edits
(test_safety.py, tests/chaos/)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV  # noqa: E402
from harness import Emulator, runner_env  # noqa: E402

ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
CONFIG = ("apiVersion: ota-runner/v1\nkind: OtaTaskConfiguration\nmetadata: {{name: {name}}}\n"
          "spec:\n  Name: {title}\n  PushConfig:\n    RolloutConfig:\n      ExponentialRolloutRate:\n"
          "        {{BaseRatePerMinute: {rate}, IncrementFactor: 2.5}}\n")


def task(name, s3="s3://fw/a.json", targets=("t1",), ref=None, description=None, revision=1, query=None):
    """An OtaTask manifest's text."""
    lines = ["apiVersion: ota-runner/v1", "kind: OtaTask", f"metadata: {{name: {name}, revision: {revision}}}",
             "spec:", f"  S3Url: {s3}", "  OtaType: ONE_TIME"]
    if targets:
        lines.append("  Target: [" + ", ".join(ARN + t for t in targets) + "]")
    if query:
        lines.append(f"  OtaTargetQueryString: {json.dumps(query)}")
    if ref:
        lines.append(f"  TaskConfigurationRef: {ref}")
    if description:
        lines.append(f"  Description: {description}")
    return "\n".join(lines) + "\n"


def config(name="push", rate=10, title="Push"):
    return CONFIG.format(name=name, rate=rate, title=title)


def rollout(name="fw", waves=("w1", "w2", "w3"), s3="s3://fw/r.json", revision=1, hold=None, ref=None,
            gate="{minFinished: 1, maxFailedPercent: 50, minSucceededPercent: 50, soak: 0s}", paused=False):
    """An OtaRollout manifest: each wave targets one thing named after it."""
    lines = ["apiVersion: ota-runner/v1", "kind: OtaRollout", f"metadata: {{name: {name}, revision: {revision}}}",
             "spec:", "  task:", f"    S3Url: {s3}", "    OtaType: ONE_TIME"]
    if ref:
        lines.append(f"    TaskConfigurationRef: {ref}")
    lines.append(f"  gate: {gate}")
    if hold:
        lines.append(f"  holdAfter: {hold}")
    if paused:
        lines.append("  paused: true")
    lines.append("  waves:")
    for w in waves:
        lines += [f"    - name: {w}", f"      Target: [{ARN}{name}-{w}]"]
    return "\n".join(lines) + "\n"


class Fleet:
    """A git repository of manifests, a state, and an emulator (emu_args)."""

    def __init__(self, runner, name, *emu_args, files=None, state=None, emulator=None):
        self.runner = runner
        self.dir = tempfile.mkdtemp(prefix=f"otr-{name}-")
        self.repo = os.path.join(self.dir, "fleet")
        self.state = state or os.path.join(self.dir, "state.json")
        os.makedirs(os.path.join(self.repo, "manifests"))
        subprocess.run(["git", "init", "-q", "-b", "main", self.repo], check=True)
        self.emu = emulator or Emulator(*emu_args)
        self.own_emu = emulator is None
        self.extra_env = {}
        if files:
            self.commit(files, "fleet")

    def write(self, name, text):
        path = os.path.join(self.repo, "manifests", name)
        if text is None:
            if os.path.exists(path):
                os.unlink(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def commit(self, files, msg="edit"):
        """files: {name: text, or None to remove}; returns the new commit id."""
        for name, text in files.items():
            self.write(name, text)
        subprocess.run(["git", "-C", self.repo, "add", "-A"], check=True, env=GIT_ENV)
        subprocess.run(["git", "-C", self.repo, "commit", "-qm", msg, "--allow-empty"], check=True, env=GIT_ENV)
        return self.head()

    def head(self):
        return subprocess.run(["git", "-C", self.repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()

    def env(self, **extra):
        return runner_env(self.emu.url, self.state, **{**self.extra_env, **extra})

    def popen(self, *args, **extra):
        return subprocess.Popen([self.runner, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(**extra), cwd=self.repo)

    def run(self, *args, timeout=300, **extra):
        p = subprocess.run([self.runner, *args], capture_output=True, text=True, env=self.env(**extra),
                           cwd=self.repo, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def plan_json(self, *args):
        rc, out, err = self.run("plan", "--output", "json", *args)
        return rc, (json.loads(out) if out.strip().startswith("{") else None), err

    def read_state(self):
        if self.state.startswith("s3://") or not os.path.exists(self.state):
            return None
        with open(self.state) as f:
            return json.load(f)

    def lose_state(self):
        for suffix in ("", ".journal", ".bak", ".lock"):
            if os.path.exists(self.state + suffix):
                os.unlink(self.state + suffix)

    def creates(self, op="CreateOtaTask"):
        return [e for e in self.emu.log() if e["op"] == op and e["status"] in (200, 201)]

    def stop(self):
        if self.own_emu:
            self.emu.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def service(emu):
    """A boto3 client of the emulator (for what a person does by hand: a task
    made outside ota-runner, a forged tag)."""
    import boto3
    from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY
    return boto3.client("iot-managed-integrations", endpoint_url=emu.url, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
