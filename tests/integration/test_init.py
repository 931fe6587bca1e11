#!/usr/bin/env python3
"""ota-runner init (issue 28): a starting fleet a new user can apply.

- in an empty folder: a git repository, three manifests (a configuration, a
  staged rollout, a one-off task) that validate, the schema (the repository's
  own, byte for byte) their first line points at, a .gitignore with the
  state file, and the next commands;
- committed as it is, plan and apply make the configuration, the task and the
  rollout's canary on the emulator, and the state file lands at the root,
  ignored by git;
- run again, or where the folder exists, it refuses and changes nothing;
- in an existing repository, from a subfolder: written at its root, and an
  existing .gitignore (without a final newline) is added to, not replaced.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emulator"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import GIT_ENV, SRC, check, finish, program  # noqa: E402
from harness import Emulator, runner_env  # noqa: E402

RUNNER = program("OTA_RUNNER")
tmp = tempfile.mkdtemp(prefix="otr-init-")


def run(cwd, *args, env=None):
    p = subprocess.run([RUNNER, *args], capture_output=True, text=True, cwd=cwd, env=env)
    return p.returncode, p.stdout, p.stderr


def git(cwd, *args):
    return subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV})


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        if "/.git" in d + "/":
            continue
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


fleet = os.path.join(tmp, "fleet")
os.makedirs(fleet)
rc, out, err = run(fleet, "init")
files = tree(fleet)
check(rc == 0 and os.path.isdir(os.path.join(fleet, ".git")) and "Initialised a git repository" in out
      and "ota-runner validate --worktree" in out and "ota-runner plan" in out,
      "init in an empty folder: a repository, and the next commands", out + err)
check(sorted(files) == [".gitignore", "manifests/configurations/push.yaml", "manifests/rollouts/firmware-1-0-0.yaml",
                        "manifests/schema/ota-runner-v1.schema.json", "manifests/tasks/hotfix-1-0-1.yaml"],
      "init writes a configuration, a rollout, a task, the schema and .gitignore", str(sorted(files)))
check(files["manifests/schema/ota-runner-v1.schema.json"] ==
      open(os.path.join(SRC, "manifests", "schema", "ota-runner-v1.schema.json"), "rb").read(),
      "the schema written is the repository's own")
check(all(files[f].startswith(b"# yaml-language-server: $schema=../schema/ota-runner-v1.schema.json\n")
          for f in files if f.endswith(".yaml")), "every manifest's first line points editors at the schema")
check(b"ota-runner.state.json*" in files[".gitignore"], ".gitignore keeps the state out", files[".gitignore"].decode())
rc, out, err = run(fleet, "validate", "--worktree")
check(rc == 0 and "3 manifests" in out, "the manifests init writes are valid", out + err)

git(fleet, "add", "-A")
git(fleet, "commit", "-qm", "A fleet")
with Emulator("--tick", "0", "--outcomes", '{"never": true}') as emu:
    env = runner_env(emu.url, "", OTA_RUNNER_STATE=None)
    rc, out, err = run(fleet, "plan", env=env)
    check(rc == 0 and "Plan: 3 to create" in out and
          "Devices: 2 tasks to create send firmware to 3 things by name." in out,
          "a plan of the starting fleet: three to create, its devices counted", out + err)
    rc, out, err = run(os.path.join(fleet, "manifests"), "apply", env=env)
    check(rc == 0 and len([e for e in emu.log() if e["op"] == "CreateOtaTask" and e["status"] == 201]) == 2
          and os.path.exists(os.path.join(fleet, "ota-runner.state.json")),
          "apply makes the task and the rollout's canary; the state at the root", out + err)
    status = git(fleet, "status", "--porcelain").stdout
    check(status == "", "git sees nothing new: the state file is ignored", status)

before = tree(fleet)
rc, out, err = run(fleet, "init")
check(rc == 1 and "already exists" in err and tree(fleet) == before, "init again refuses and changes nothing",
      out + err)

# an existing repository, run from a subfolder; a .gitignore without a final newline
other = os.path.join(tmp, "other")
os.makedirs(os.path.join(other, "docs"))
git(tmp, "init", "-q", other)
with open(os.path.join(other, ".gitignore"), "w") as f:
    f.write("build/")
rc, out, err = run(os.path.join(other, "docs"), "init", "--path", "fleet")
ignore = open(os.path.join(other, ".gitignore")).read()
check(rc == 0 and "Initialised" not in out and os.path.isdir(os.path.join(other, "fleet", "rollouts"))
      and not os.path.exists(os.path.join(other, "docs", "fleet"))
      and ignore.startswith("build/\n") and ignore.endswith("ota-runner.state.json*\n"),
      "init from a subfolder writes at the root, --path honoured, .gitignore added to", out + err + ignore)
rc, out, err = run(other, "validate", "--worktree", "--path", "fleet")
check(rc == 0, "and they validate there too", out + err)

# a repository with no commit yet: said so, with what to do
empty = os.path.join(tmp, "empty")
git(tmp, "init", "-q", empty)
rc, out, err = run(empty, "validate")
check(rc == 1 and "has no commit yet: commit the manifests" in err and "unknown ref" not in err,
      "a repository with no commit: the error says to commit (not 'unknown ref HEAD')", err)

# verification asked for without keys fails closed (issue 31), and an empty
# allowed-signers file (an unset CI secret) is named as such (issue 28)
rc, out, err = run(fleet, "validate", "--verify-commits", "head", env={**os.environ, "OTA_RUNNER_ALLOWED_SIGNERS": ""})
check(rc == 1 and "--verify-commits needs the keys to trust" in err,
      "--verify-commits without an allowed-signers file is an error, not a pass", out + err)
blank = os.path.join(tmp, "allowed_signers")
with open(blank, "w") as f:
    f.write("# written by CI from a secret that was not set\n\n")
for args in (("validate", "--allowed-signers", blank), ("validate", "--allowed-signers", blank,
                                                           "--verify-commits", "range")):
    rc, out, err = run(fleet, *args)
    check(rc == 1 and "lists no keys, so no commit can be trusted" in err and "is not signed" not in err,
          f"an allowed-signers file with no key: {' '.join(args[1:])}", out + err)

finish()
