#!/usr/bin/env python3
"""apply --metrics-file and --pushgateway (issue 25), with the real tools
from Debian's packages (promtool from prometheus, prometheus-pushgateway):

- the file passes promtool check metrics; it says what the run did: the
  resources by kind, the planned changes, a halted rollout and its newest
  wave's devices by status, the requests by operation and status (as many
  CreateOtaTask as the service saw); no device id is a label;
- a failed run: last_run_success 0, and the last success kept from before;
- a push to a real Pushgateway on loopback, read back from its /metrics, with
  job and repository; a failed run's push keeps the last success;
- examples/monitoring: promtool check rules and promtool test rules pass, and
  every query of the Grafana dashboard names a metric ota-runner writes.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, SRC, check, finish, program  # noqa: E402
from harness import Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
for tool in ("promtool", "prometheus-pushgateway"):
    if not shutil.which(tool):
        print(f"SKIP: {tool} is not installed (ci/bootstrap installs Debian's prometheus and "
              "prometheus-pushgateway)")
        sys.exit(77)
ARN = "arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/"
tmp = tempfile.mkdtemp(prefix="otr-metrics-")
repo = os.path.join(tmp, "fleet")
os.makedirs(os.path.join(repo, "manifests"))
with open(os.path.join(repo, "manifests", "fleet.yaml"), "w") as f:
    f.write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: plugs}\n"
            f"spec: {{S3Url: s3://fw/p.json, OtaType: ONE_TIME, Target: [{ARN}plugA]}}\n---\n"
            "apiVersion: ota-runner/v1\nkind: OtaRollout\nmetadata: {name: fw}\nspec:\n"
            "  task: {S3Url: s3://fw/t.json, OtaType: ONE_TIME}\n"
            "  gate: {minFinished: 2, maxFailedPercent: 10, soak: 0s}\n  waves:\n"
            f"    - {{name: canary, Target: [{ARN}canary1, {ARN}canary2]}}\n"
            "    - {name: everyone, OtaTargetQueryString: 'thingType:Thermostat'}\n")
subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
subprocess.run(["git", "-C", repo, "commit", "-qm", "fleet"], check=True, env=GIT_ENV)
state, prom = os.path.join(tmp, "state.json"), os.path.join(tmp, "textfile", "ota-runner.prom")
os.makedirs(os.path.dirname(prom))


def apply(emu, *args):
    p = subprocess.run([RUNNER, "apply", "--repo", repo, *args], capture_output=True, text=True,
                       env=runner_env(emu.url, state), timeout=120)
    return p.returncode, p.stdout, p.stderr


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition text."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


outcomes = {"things": {ARN + "canary2": "FAILED"}}
with Emulator("--tick", "0", "--outcomes", json.dumps(outcomes)) as emu:
    # ---- the file
    apply(emu, "--metrics-file", prom)
    creates = len([e for e in emu.log() if e["op"] == "CreateOtaTask"])
    text = open(prom).read()
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    check(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
          "promtool check metrics: the file is clean", p.stdout + p.stderr + text)
    s = samples(text)
    check(value(s, "ota_runner_aws_requests_total", operation="CreateOtaTask", code="201") == creates == 2
          and value(s, "ota_runner_planned_changes", action="create") == 2
          and value(s, "ota_runner_resources", kind="OtaTask") == 1
          and value(s, "ota_runner_resources", kind="OtaRollout") == 1
          and value(s, "ota_runner_last_run_success") == 1 and value(s, "ota_runner_build_info", version="0.1.0") == 1,
          "the first run: its requests as the service saw them, its plan, the resources recorded", text)
    rc, out, err = apply(emu, "--metrics-file", prom)
    text = open(prom).read()
    s = samples(text)
    first_success = value(s, "ota_runner_last_success_timestamp_seconds")
    check(value(s, "ota_runner_rollout_halted", rollout="fw") == 1
          and value(s, "ota_runner_rollout_wave_devices", rollout="fw", wave="canary", status="failed") == 1
          and value(s, "ota_runner_rollout_wave_devices", rollout="fw", wave="canary", status="succeeded") == 1
          and abs(first_success - time.time()) < 60,
          "the second run: the halted rollout and its canary's devices by status", text)
    check("canary2" not in text and "canary1" not in text and "plugA" not in text,
          "no device id is a label", text)

    # ---- a failed run keeps the last success
    emu.control("faults", {"fail_ops": {"ListOtaTasks": 500}})
    time.sleep(1.1)
    rc, out, err = apply(emu, "--metrics-file", prom, "--max-attempts", "1")
    s = samples(open(prom).read())
    check(rc == 1 and value(s, "ota_runner_last_run_success") == 0
          and value(s, "ota_runner_last_success_timestamp_seconds") == first_success
          and value(s, "ota_runner_aws_requests_total", operation="ListOtaTasks", code="500") == 1,
          "a failed run: success 0, the last success kept, the 500 counted", out + err)
    emu.control("faults", {"fail_ops": {}})

    # ---- a real Pushgateway
    port = free_port()
    gw = subprocess.Popen(["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}",
                           "--persistence.file=" + os.path.join(tmp, "gw.data")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        rc, out, err = apply(emu, "--pushgateway", url + "/")
        read = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
        group = {"job": "ota-runner", "repository": repo + "#manifests", "instance": ""}
        s = samples(read)
        check(rc == 0 and value(s, "ota_runner_rollout_halted", rollout="fw", **group) == 1
              and value(s, "ota_runner_last_run_success", **group) == 1,
              "pushed to a real Pushgateway: read back with job and repository", err + read[-1500:])
        pushed_success = value(s, "ota_runner_last_success_timestamp_seconds", **group)
        emu.control("faults", {"fail_ops": {"ListOtaTasks": 500}})
        time.sleep(1.1)
        rc, out, err = apply(emu, "--pushgateway", url, "--max-attempts", "1")
        s = samples(urllib.request.urlopen(url + "/metrics", timeout=5).read().decode())
        check(rc == 1 and value(s, "ota_runner_last_run_success", **group) == 0
              and value(s, "ota_runner_last_success_timestamp_seconds", **group) == pushed_success,
              "a failed run's push: success 0, the last success pushed before kept",
              err + str(value(s, "ota_runner_last_run_success", **group)) + " " + str(value(s, "ota_runner_last_success_timestamp_seconds", **group)) + " was " + str(pushed_success))
        emu.control("faults", {"fail_ops": {}})
        rc, out, err = apply(emu, "--pushgateway", f"http://127.0.0.1:{free_port()}")
        check(rc == 0 and "warning: the push to the Pushgateway failed" in err,
              "a Pushgateway that is down: a warning, not a failed apply", err)
    finally:
        gw.terminate()
        gw.wait(timeout=10)

# ---- examples/monitoring
mon = os.path.join(SRC, "examples", "monitoring")
p = subprocess.run(["promtool", "check", "rules", "ota-runner-rules.yml"], cwd=mon, capture_output=True, text=True)
check(p.returncode == 0 and "SUCCESS: 3 rules found" in p.stdout, "promtool check rules", p.stdout + p.stderr)
p = subprocess.run(["promtool", "test", "rules", "ota-runner-rules.test.yml"], cwd=mon, capture_output=True,
                   text=True)
check(p.returncode == 0 and "SUCCESS" in p.stdout, "promtool test rules: the alerts fire when they should",
      p.stdout + p.stderr)
written = {name for name, _ in samples(text)}
exprs = [t["expr"] for panel in json.load(open(os.path.join(mon, "ota-runner-dashboard.json")))["panels"]
         for t in panel["targets"]]
rules = open(os.path.join(mon, "ota-runner-rules.yml")).read()
used = set(re.findall(r"\bota_runner_[a-z_]+", " ".join(exprs) + rules))
check(used and used <= written, "the dashboard and the rules ask only for metrics ota-runner writes",
      str(sorted(used - written)))
shutil.rmtree(tmp, ignore_errors=True)
finish()
