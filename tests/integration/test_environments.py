#!/usr/bin/env python3
"""Environments (issue 27): ota-runner.yaml, --env, and `ota-runner envs`.

Two emulators stand for two regions of two accounts (each accepts only its
own account's keys and region), the production state is on S3 (moto), and
the staging state a local file. On them:

- `envs` in every output (text, json, github-matrix, gitlab, names), a label
  selection, and the file's errors at file:line:col;
- `validate --env NAME` reads the shared folder and the environment's own;
  --path A:B and a repeated --path do the same; overlapping paths refused;
- `apply --env all` applies each environment with its own credentials,
  endpoint and state, output grouped under each name and a closing table;
  `plan --env all -o json` is one document;
- one environment failing (its keys refused) does not stop the other: exit
  1, the table says which; options that each environment has its own are
  refused with several;
- SIGTERM to `apply --env all` reaches every unit: exit 143, and the next
  run finishes without a duplicate;
- --verify-commits range counts ota-runner.yaml as part of what it checks;
- promotion: prod's rollout with `after: {env: staging, rollout: fw, passed:
  everyone}` waits (and says for what) until staging's state records the
  wave passed with the same firmware, then starts; another firmware, an
  unknown environment, or its own are not passes.
"""
import json
import os
import yaml
import jsonschema
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, check, finish, program  # noqa: E402
from harness import Emulator, MotoS3  # noqa: E402

RUNNER = program("OTA_RUNNER")
tmp = tempfile.mkdtemp(prefix="otr-envs-")
repo = os.path.join(tmp, "fleet")
subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)

KEYS = {"staging": ("AKIDSTAGING", "staging-secret"), "prod": ("AKIDPROD", "prod-secret")}
creds = os.path.join(tmp, "credentials")
with open(creds, "w") as f:
    for name, (akid, secret) in KEYS.items():
        f.write(f"[{name}]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n")


def task(name, region, thing):
    return (f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {{name: {name}}}\nspec:\n"
            f"  S3Url: s3://fw/{name}.json\n  OtaType: ONE_TIME\n"
            f"  Target: [arn:aws:iotmanagedintegrations:{region}:123456789012:managed-thing/{thing}]\n")


def write(rel, text):
    path = os.path.join(repo, rel)
    if text is None:
        os.unlink(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def commit(msg="edit", allow_empty=False, sign_key=None):
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=GIT_ENV)
    extra = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_key}"] if sign_key else []
    subprocess.run(["git", "-C", repo, *extra, "commit", "-qm", msg, "--allow-empty",
                    *(["-S"] if sign_key else [])], check=True, env=GIT_ENV)
    return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def config(staging_url, prod_url, state_prod):
    return f"""# the fleet's environments
apiVersion: ota-runner/v1
kind: Environments
environments:
  - name: staging
    region: us-east-1
    profile: staging
    paths: [manifests/shared, manifests/staging]
    state: {os.path.join(tmp, 'staging.state.json')}
    endpoint: {staging_url}
    labels: {{stage: pre-production}}
  - name: prod
    region: eu-west-1
    profile: prod
    paths: [manifests/shared, manifests/prod]
    state: {state_prod}
    endpoint: {prod_url}
    labels: {{stage: production}}
"""


ENV = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": "/dev/null",
       "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1"}
for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
          "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "OTA_RUNNER_STATE"):
    ENV.pop(k, None)


def run(*args, env=None):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, cwd=repo, env={**ENV, **(env or {})},
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def creates(emu):
    return [e for e in emu.log() if e["op"] == "CreateOtaTask" and e["status"] in (200, 201)]


def rollout(region, s3="s3://fw/fw-2.json", after=None):
    text = ("apiVersion: ota-runner/v1\nkind: OtaRollout\nmetadata: {name: fw}\nspec:\n"
            f"  task: {{S3Url: {s3}, OtaType: ONE_TIME}}\n"
            "  gate: {minFinished: 1, maxFailedPercent: 50, minSucceededPercent: 50, soak: 0s}\n")
    if after:
        text += f"  after: {after}\n"
    text += "  waves:\n"
    for w in ("canary", "everyone"):
        text += f"    - name: {w}\n      Target: [arn:aws:iotmanagedintegrations:{region}:123456789012:managed-thing/{w}1]\n"
    return text


def live(emu):
    """The addresses of the tasks the emulator holds (not deleted)."""
    return sorted(t.get("Tags", {}).get("ota-runner:address", "?") for t in emu.control("tasks")
                  if not t.get("Deleted"))


with Emulator("--tick", "0", "--region", "us-east-1", "--access-key-id", KEYS["staging"][0],
              "--secret-access-key", KEYS["staging"][1]) as staging, \
        Emulator("--tick", "0", "--region", "eu-west-1", "--access-key-id", KEYS["prod"][0],
                 "--secret-access-key", KEYS["prod"][1]) as prod, MotoS3() as s3:
    ENV["AWS_ENDPOINT_URL_S3"] = s3.url
    prod_state = f"s3://{s3.bucket}/prod/state.json"
    write("ota-runner.yaml", config(staging.url, prod.url, prod_state))
    write("manifests/shared/hub.yaml", task("hub", "us-east-1", "hub1"))
    write("manifests/staging/plug.yaml", task("plug-beta", "us-east-1", "plug1"))
    write("manifests/prod/plug.yaml", task("plug", "eu-west-1", "plug9"))
    write("manifests/prod/lock.yaml", task("lock", "eu-west-1", "lock9"))
    first = commit("fleet")

    # ---- the JSON Schema for editors agrees with ota-runner on the file
    SCHEMA = json.load(open(os.path.join(os.environ.get("OTR_SOURCE_DIR", "."), "manifests", "schema",
                                         "ota-runner-environments.schema.json")))
    good = yaml.safe_load(config(staging.url, prod.url, prod_state))
    check(not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(good)), "the schema accepts the file", "")

    # ---- envs
    rc, out, err = run("envs")
    check(rc == 0 and "staging" in out and "prod" in out and "eu-west-1" in out and
          "manifests/shared:manifests/prod" in out, "envs: a table of the environments", out + err)
    rc, out, err = run("envs", "-o", "json")
    envs = json.loads(out) if rc == 0 else []
    check([e["name"] for e in envs] == ["staging", "prod"] and envs[1]["paths"] == ["manifests/shared", "manifests/prod"]
          and envs[1]["state"] == prod_state and envs[0]["labels"] == {"stage": "pre-production"},
          "envs -o json: every field", out + err)
    rc, out, err = run("envs", "-o", "github-matrix")
    check(rc == 0 and out.count("\n") == 1 and json.loads(out) == {"include": [
        {"env": "staging", "region": "us-east-1"}, {"env": "prod", "region": "eu-west-1"}]},
        "envs -o github-matrix: one line of {include: [...]} for fromJSON", out + err)
    rc, out, err = run("envs", "-o", "gitlab")
    check(rc == 0 and out == "parallel:\n  matrix:\n    - OTA_ENV: staging\n      OTA_REGION: us-east-1\n"
          "    - OTA_ENV: prod\n      OTA_REGION: eu-west-1\n", "envs -o gitlab: a parallel:matrix block", out + err)
    rc, out, err = run("envs", "-o", "names", "--env", "stage=production")
    check(rc == 0 and out == "prod\n", "envs -o names with a label selection", out + err)
    rc, out, err = run("envs", "--env", "stage=nowhere")
    check(rc == 1 and "no environment has those labels" in err and "there are: staging, prod" in err,
          "a selection that picks nothing is an error naming what there is", err)

    # ---- one environment, and paths
    rc, out, err = run("validate", "--env", "staging")
    check(rc == 0 and "2 manifests in 2 files" in out and "manifests/shared:manifests/staging" in out,
          "validate --env staging reads the shared folder and its own", out + err)
    rc, out, err = run("validate", "--path", "manifests/shared:manifests/prod")
    check(rc == 0 and "3 manifests in 3 files" in out, "--path A:B reads both folders", out + err)
    rc, out, err = run("validate", "--path", "manifests/shared", "--path", "manifests/prod")
    check(rc == 0 and "3 manifests in 3 files" in out, "--path given twice reads both folders", out + err)
    rc, out, err = run("validate", "--path", "manifests:manifests/prod")
    check(rc == 1 and "overlap" in err, "overlapping paths are refused (a file would be read twice)", err)
    rc, out, err = run("tokens", "--env", "prod", "-o", "json")
    check(rc == 0 and sorted(t["name"] for t in json.loads(out)) == ["hub", "lock", "plug"]
          if rc == 0 else False, "tokens --env prod: the shared and prod manifests", out + err)

    # ---- all of them
    rc, out, err = run("apply", "--env", "all")
    check(rc == 0 and "== environment staging (us-east-1) ==" in out and "== environment prod (eu-west-1) ==" in out
          and "ENVIRONMENT" in out and out.count(" ok ") == 2, "apply --env all: each under its name, and a table",
          out + err)
    check(live(staging) == ["OtaTask/hub", "OtaTask/plug-beta"], "staging's emulator got staging's tasks", str(live(staging)))
    check(live(prod) == ["OtaTask/hub", "OtaTask/lock", "OtaTask/plug"],
          "prod's emulator (another region, another account's keys) got prod's tasks", str(live(prod)))
    check(os.path.exists(os.path.join(tmp, "staging.state.json")) and "prod/state.json" in s3.keys("prod/"),
          "each environment's own state: a file for staging, S3 for prod", str(s3.keys()))
    rc, out, err = run("plan", "--env", "all", "--detailed-exitcode", "-o", "json")
    doc = json.loads(out) if out.strip().startswith("{") else {}
    units = {e["name"]: e for e in doc.get("environments", [])}
    check(rc == 0 and doc.get("exitCode") == 0 and set(units) == {"staging", "prod"} and
          units["prod"]["output"]["source"]["path"] == "manifests/shared:manifests/prod",
          "plan --env all -o json: one document, each environment's plan in it", out[:1500] + err)
    rc, out, err = run("plan", "--env", "all", "--state", "x.json")
    check(rc == 1 and "--state cannot be given with --env all" in err, "--state with several environments is refused",
          err)
    # on a terminal, a single apply asks first; several cannot ask one by one: refused
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(repo)
        os.execve(RUNNER, [RUNNER, "apply", "--env", "all"], ENV)
    said = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        said += chunk
    _, status = os.waitpid(pid, 0)
    check(os.WEXITSTATUS(status) == 1 and b"without asking each" in said and b"--auto-approve" in said,
          "apply --env all on a terminal without --auto-approve is refused", said.decode(errors="replace"))
    rc, out, err = run("apply", "--env", "all", "plan.out")
    check(rc == 1 and "a plan file is one environment's" in err, "a plan file with several environments is refused",
          err)

    # ---- one fails, the other goes on
    write("manifests/shared/hub.yaml", task("hub", "us-east-1", "hub2"))
    commit("hub to the second hub")
    with open(creds, "w") as f:
        f.write(f"[staging]\naws_access_key_id = {KEYS['staging'][0]}\naws_secret_access_key = {KEYS['staging'][1]}\n"
                f"[prod]\naws_access_key_id = {KEYS['prod'][0]}\naws_secret_access_key = wrong\n")
    before = len(creates(staging))
    rc, out, err = run("apply", "--env", "all", "--allow-cancel")
    table = out[out.rfind("ENVIRONMENT"):]
    check(rc == 1 and "staging" in table and " ok " in table and "failed" in table and
          len(creates(staging)) == before + 1, "prod's keys refused: staging still applied, exit 1, the table says which",
          out + err)
    with open(creds, "w") as f:
        for name, (akid, secret) in KEYS.items():
            f.write(f"[{name}]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n")

    # ---- a signal reaches every unit
    write("manifests/staging/plug.yaml", task("plug-beta", "us-east-1", "plug2"))
    write("manifests/prod/plug.yaml", task("plug", "eu-west-1", "plug8"))
    commit("plugs move")
    for emu in (staging, prod):
        emu.control("faults", {"latency_ms": 1500})
    p = subprocess.Popen([RUNNER, "apply", "--env", "all", "--allow-cancel"], cwd=repo, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    for emu in (staging, prod):
        emu.control("faults", {"latency_ms": 0})
    check(p.returncode == 143 and "stopped" in out, "SIGTERM: every unit stops, exit 143", out + err)
    # Ctrl-C on a terminal signals the whole process group: each unit, in a group of its
    # own, still gets it once (passed on), and finishes its calls instead of stopping at once
    write("manifests/staging/plug.yaml", task("plug-beta", "us-east-1", "plug3"))
    commit("plug-beta moves again")
    for emu in (staging, prod):
        emu.control("faults", {"latency_ms": 1500})
    p = subprocess.Popen([RUNNER, "apply", "--env", "all", "--allow-cancel"], cwd=repo, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(2.0)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    for emu in (staging, prod):
        emu.control("faults", {"latency_ms": 0})
    check(p.returncode == 130 and "second signal" not in out + err and "signal received" in out + err,
          "SIGINT to the process group (a Ctrl-C): each unit gets it once and stops gracefully, exit 130",
          out + err)
    rc, out, err = run("apply", "--env", "all", "--allow-cancel")
    held = {"staging": live(staging), "prod": live(prod)}
    check(rc == 0 and held == {"staging": ["OtaTask/hub", "OtaTask/plug-beta"],
                               "prod": ["OtaTask/hub", "OtaTask/lock", "OtaTask/plug"]},
          "after the stop, the next run finishes each environment, one task per manifest", out + err + json.dumps(held))

    # ---- promotion across environments: prod's rollout waits for staging's
    write("manifests/staging/fw.yaml", rollout("us-east-1"))
    write("manifests/prod/fw.yaml", rollout("eu-west-1", after="{env: staging, rollout: fw, passed: everyone}"))
    commit("firmware 2 to staging, then production")
    rc, out, err = run("plan", "--env", "prod")
    check(rc == 0 and "waits for staging's rollout fw to pass wave everyone: staging records no rollout fw" in out,
          "prod's rollout waits, and says for what (staging has not started it)", out + err)
    passes = []
    for _ in range(6):  # each apply judges a wave and starts the next
        rc, out, err = run("apply", "--env", "staging", "--allow-cancel")
        passes.append(rc)
        p_rc, p_out, p_err = run("plan", "--env", "prod")
        if "starts wave canary" in p_out:
            break
        check("waits for staging's rollout fw to pass wave everyone" in p_out,
              "prod waits while staging's rollout runs", p_out + p_err)
    check(all(r == 0 for r in passes) and "starts wave canary" in p_out and "fw" in p_out,
          "once staging's state records everyone passed, prod's rollout starts", p_out + p_err + str(passes))
    before = live(prod)
    rc, out, err = run("apply", "--env", "prod", "--allow-cancel")
    check(rc == 0 and len(live(prod)) == len(before) + 1, "apply --env prod starts its canary", out + err)
    write("manifests/prod/fw.yaml", rollout("eu-west-1", s3="s3://fw/fw-3.json",
                                            after="{env: staging, rollout: fw, passed: everyone}")
          .replace("metadata: {name: fw}", "metadata: {name: fw, revision: 2}"))
    commit("production alone to firmware 3")
    rc, out, err = run("plan", "--env", "prod")
    check(rc == 0 and "it sends s3://fw/fw-2.json, not s3://fw/fw-3.json" in out,
          "another firmware than staging's passed is not a pass", out + err)
    write("manifests/prod/fw.yaml", rollout("eu-west-1", after="{env: qa, rollout: fw, passed: everyone}"))
    commit("a typo")
    rc, out, err = run("plan", "--env", "prod")
    check(rc == 1 and "spec.after.env names qa, which ota-runner.yaml does not have" in err,
          "an environment ota-runner.yaml does not have is an error, not a wait", out + err)
    write("manifests/prod/fw.yaml", rollout("eu-west-1", after="{env: prod, rollout: fw, passed: everyone}"))
    commit("its own")
    rc, out, err = run("plan", "--env", "prod")
    check(rc == 1 and "names prod, the environment this run is for" in err, "its own environment is an error", err)
    write("manifests/prod/fw.yaml", None)
    write("manifests/staging/fw.yaml", None)
    commit("rollouts done")

    # ---- the file's errors, at file:line:col
    write("ota-runner.yaml", config(staging.url, prod.url, prod_state).replace("region: eu-west-1", "region: europe")
          .replace("name: prod", "name: staging").replace("    labels: {stage: production}",
                                                           "    labels: {stage: production}\n    colour: blue"))
    commit("a broken file")
    broken = yaml.safe_load(open(os.path.join(repo, "ota-runner.yaml")))
    check(len(list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken))) >= 2,
          "the schema refuses the bad region and the unknown field too")
    rc, out, err = run("plan", "--env", "staging")
    said = out + err
    check(rc == 1 and "ota-runner.yaml:12:11: error: name: \"staging\" is named twice (line 5 first)" in said
          and "ota-runner.yaml:13:13: error: region: \"europe\" is not a region" in said
          and "ota-runner.yaml:19:5: error: colour: unknown field" in said
          and said.index(":12:11:") < said.index(":19:5:"),
          "errors in ota-runner.yaml name file:line:col", out + err)

    # ---- ota-runner.yaml is verified with the manifests
    write("ota-runner.yaml", config(staging.url, prod.url, prod_state))
    key = os.path.join(tmp, "key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    allowed = os.path.join(tmp, "allowed")
    with open(allowed, "w") as f:
        f.write("t@e " + " ".join(open(key + ".pub").read().split()[:2]) + "\n")
    signed = commit("signed", sign_key=key)
    rc, out, err = run("apply", "--env", "staging", "--allowed-signers", allowed, "--allow-cancel")
    check(rc == 0, "fixture: a signed commit applied", out + err)
    write("ota-runner.yaml", config(staging.url, prod.url, prod_state).replace("staging.state.json", "elsewhere.json"))
    sneaky = commit("an unsigned change of the state's place")
    commit("signed on top", sign_key=key)
    rc, out, err = run("plan", "--env", "staging", "--allowed-signers", allowed, "--verify-commits", "range")
    check(rc == 1 and f"{sneaky[:12]} changes manifests/shared:manifests/staging" in err,
          "--verify-commits range checks a commit that changes only ota-runner.yaml", err)

finish()
