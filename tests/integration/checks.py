"""What every Python integration test shares: the source tree, the program
under test (or a skip), the sample fleet as a git repository, counted checks
and the closing line ("N passed, N failed") that CTest's log shows."""
import os
import shutil
import subprocess
import sys

SRC = os.environ.get("OTR_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

passed = 0
failed = 0

# git's identity for the commits the tests make, and no system configuration
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_NOSYSTEM": "1"}


# One task whose target is numbered (% n): each commit of the signature
# tests changes it, so each changes a manifest (test_signatures, test_openpgp).
PLUG_MANIFEST = """apiVersion: ota-runner/v1
kind: OtaTask
metadata: {name: plug}
spec:
  S3Url: s3://fw/plug.json
  OtaType: ONE_TIME
  Target: [arn:aws:iotmanagedintegrations:us-east-1:123456789012:managed-thing/plug%d]
"""


def write_raw_commit(repo, data, branch, env):
    """A commit object written byte for byte (git hash-object --literally: git
    will not make a forged or re-signed one), and branch pointed at it."""
    p = subprocess.run(["git", "hash-object", "--literally", "-t", "commit", "-w", "--stdin"], cwd=repo,
                       input=data, capture_output=True, env=env)
    oid = p.stdout.decode().strip()
    subprocess.run(["git", "update-ref", f"refs/heads/{branch}", oid], cwd=repo, env=env, check=True)
    return oid


def program(var):
    """The program ctest names in the environment variable var; without it the
    test is skipped (exit 77, which CTest reports as skipped)."""
    path = os.environ.get(var)
    if not path:
        print(f"SKIP: {var} is not set (run under ctest)")
        sys.exit(77)
    return path


def sample_fleet(repo, rollouts=False):
    """A new git repository at repo holding the project's sample manifests,
    committed; the staged rollout (manifests/rollouts, which test_rollouts.py
    covers) only when asked, so the tests of tasks and configurations count
    only those."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    shutil.copytree(os.path.join(SRC, "manifests"), os.path.join(repo, "manifests"))
    if not rollouts:
        shutil.rmtree(os.path.join(repo, "manifests", "rollouts"))
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", repo, "commit", "-qm", "x"], check=True, env=env)


def mermaid(md):
    """The Mermaid flowcharts of a markdown text, parsed: a list of (nodes
    {id: (label, class)}, edges [(from, to)]); ValueError on a line that is
    not a node, an edge, a classDef or the header, or an edge between nodes
    it does not define."""
    import re
    charts = []
    for block in re.findall(r"```mermaid\n(.*?)```", md, re.S):
        lines = block.strip("\n").split("\n")
        if lines[0] != "flowchart LR":
            raise ValueError(f"not a flowchart: {lines[0]!r}")
        nodes, edges, classes = {}, [], set()
        for line in lines[1:]:
            m = re.fullmatch(r'  (w\d+)\["([^"]*)"\]:::(\w+)', line)
            e = re.fullmatch(r"  (w\d+) --> (w\d+)", line)
            c = re.fullmatch(r"  classDef (\w+) [\w:#,.-]+", line)
            if m:
                nodes[m.group(1)] = (m.group(2), m.group(3))
            elif e:
                edges.append((e.group(1), e.group(2)))
            elif c:
                classes.add(c.group(1))
            else:
                raise ValueError(f"not Mermaid: {line!r}")
        for a, b in edges:
            if a not in nodes or b not in nodes:
                raise ValueError(f"an edge to an undefined node: {a} --> {b}")
        for label, cls in nodes.values():
            if cls not in classes:
                raise ValueError(f"an undefined class {cls}")
        charts.append((nodes, edges))
    return charts


def wait_until(probe, ok=bool, timeout=60.0, step=0.05):
    """Calls probe() until ok(its result) holds or timeout seconds pass, and
    returns the last result: a wait on what can be observed, not a sleep
    that is too short on a slow machine and too long on a fast one."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if ok(result) or time.monotonic() >= deadline:
            return result
        time.sleep(step)


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}\n{detail}", file=sys.stderr)


def finish():
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
