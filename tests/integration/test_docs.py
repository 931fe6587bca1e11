#!/usr/bin/env python3
"""The man page and the bash completion cover every command and every option
the binary's --help shows (so they cannot drift apart), the man page has the
sections a user looks for, the completion loads in bash and completes, and
every sample manifest points editors at the JSON Schema.
"""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import SRC, check, finish, program  # noqa: E402

RUNNER = program("OTA_RUNNER")


def help_of(*args):
    return subprocess.run([RUNNER, *args, "--help"], capture_output=True, text=True, check=True).stdout


man = open(os.path.join(SRC, "runner/cli/ota-runner.1")).read()
man_plain = man.replace("\\-", "-")
completion = open(os.path.join(SRC, "runner/cli/ota-runner.bash")).read()
top = help_of()
commands = re.findall(r"^  ([a-z]+) ", top.split("Commands:")[1].split("Global options:")[0], re.M)
check(len(commands) == 11 and commands[0] == "init", "the help lists eleven commands, init first", str(commands))
for cmd in commands:
    check(re.search(r"^\.(B|BR) %s\b" % cmd, man, re.M) is not None, f"man page: command {cmd}")
    check(cmd in completion.split("commands=")[1].split("\n")[0], f"completion: command {cmd}")
    for opt in set(re.findall(r"--([a-z][a-z-]+)", help_of(cmd))):
        check(f"--{opt}" in man_plain, f"man page: {cmd} --{opt}")
        check(f"--{opt}" in completion, f"completion: {cmd} --{opt}")
for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS"):
    check(f".SH {section}" in man, f"man page: section {section}")
for code in ("0", "1", "2", "3"):
    check(f".B {code}\n" in man, f"man page: exit status {code}")
for var in ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "OTA_RUNNER_STATE", "NO_COLOR",
            "AWS_EC2_METADATA_DISABLED", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CA_BUNDLE"):
    check(var in man, f"man page: environment {var}")

# the completion works in bash
script = f"source {os.path.join(SRC, 'runner/cli/ota-runner.bash')}; " \
         "COMP_WORDS=(ota-runner pl); COMP_CWORD=1; _ota_runner; echo ${COMPREPLY[@]}; " \
         "COMP_WORDS=(ota-runner plan --); COMP_CWORD=2; COMPREPLY=(); _ota_runner; echo ${COMPREPLY[@]} | tr ' ' '\\n' | grep -c -- --refresh; " \
         "COMP_WORDS=(ota-runner plan --refresh f); COMP_CWORD=3; _ota_runner; echo ${COMPREPLY[@]}"
out = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout.split("\n")
check(out[:3] == ["plan", "1", "full"], "bash completes commands, options and values", str(out))

# every sample manifest names the schema for editors
for path in sorted(glob.glob(os.path.join(SRC, "manifests/**/*.y*ml"), recursive=True)):
    first = open(path).readline().strip()
    target = first.split("$schema=")[-1]
    check(first.startswith("# yaml-language-server: $schema=") and
          os.path.exists(os.path.join(os.path.dirname(path), target)),
          f"{os.path.relpath(path, SRC)} points at the schema", first)

finish()
