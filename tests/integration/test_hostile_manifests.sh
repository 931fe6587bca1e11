#!/usr/bin/env bash
# Hostile manifests through the real binary, each within bounded time and
# memory (ulimit -v and a timeout; under ASan, which reserves terabytes of
# address space, only the timeout): every case ends with exit 1 and a
# diagnostic naming the file (and line where there is one); a BOM and CRLF
# line ends are accepted.
source "$(dirname "$0")/lib.sh"

limited() { # limited OUT ERR CMD...: run with limits, print the exit code
  local out=$1 err=$2; shift 2
  set +e
  if [ -n "${OTR_SANITIZED:-}" ]; then
    timeout 120 "$@" >"$out" 2>"$err"
  else
    (ulimit -v 1048576; timeout 60 "$@") >"$out" 2>"$err"
  fi
  echo $?
  set -e
}

HDR='apiVersion: ota-runner/v1
kind: OtaTask
metadata: {name: hostile}
spec:
  S3Url: s3://b/k
  OtaType: ONE_TIME'

# case NAME WANT_RC GREP_PATTERN: the file(s) are in $WORK/NAME/manifests already
case_run() {
  local name=$1 want=$2 pattern=$3
  local repo="$WORK/$name"
  commit_all "$repo" "$name" >/dev/null 2>&1 || true
  local rc
  rc=$(limited "$WORK/out" "$WORK/err" "$OTA_RUNNER" validate --repo "$repo")
  if [ "$rc" != "$want" ]; then
    bad "$name: exit $rc, want $want"; head -c 600 "$WORK/err" >&2; echo >&2
  elif [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$WORK/err"; then
    bad "$name: no diagnostic matching '$pattern'"; head -c 600 "$WORK/err" >&2; echo >&2
  else
    ok
  fi
}

mk() { new_repo "$WORK/$1"; mkdir -p "$WORK/$1/manifests"; }

mk alias-bomb
python3 - "$WORK/alias-bomb/manifests/bomb.yaml" "$HDR" <<'PY'
import sys
lines = ["x0: &x0 [a, a, a, a, a, a, a, a, a, a]"]
for i in range(1, 10):
    lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i-1}"] * 10) + "]")
doc = "\n".join(lines) + "\n" + sys.argv[2] + "\n  Target: *x9\n  Tags: {t: *x9}\n"
open(sys.argv[1], "w").write(doc)
PY
case_run alias-bomb 1 '^manifests/bomb.yaml:[0-9]+:[0-9]+: error: '

mk nested
python3 -c "import sys; open(sys.argv[1],'w').write(sys.argv[2] + '\n  Target: ' + '['*20000 + ']'*20000 + '\n')" \
  "$WORK/nested/manifests/n.yaml" "$HDR"
case_run nested 1 '^manifests/n.yaml:7:[0-9]+: error: nesting deeper than 64 levels$'

mk two-mib
python3 -c "import sys; open(sys.argv[1],'w').write(sys.argv[2] + '\n' + '#' * (2 << 20) + '\n')" \
  "$WORK/two-mib/manifests/big.yaml" "$HDR"
case_run two-mib 1 '^manifests/big.yaml: error: file is [0-9]+ bytes; a manifest file may be at most 1048576 bytes$'

mk bad-utf8
printf '%s\n  Description: caf\xc3\x28\n' "$HDR" > "$WORK/bad-utf8/manifests/u.yaml"
case_run bad-utf8 1 '^manifests/u.yaml:7:[0-9]+: error: yaml: invalid'

mk nul
printf '%s\n  Description: a\0b\n' "$HDR" > "$WORK/nul/manifests/z.yaml"
case_run nul 1 '^manifests/z.yaml:7:[0-9]+: error: yaml: control characters are not allowed'

mk bom
{ printf '\xef\xbb\xbf'; printf '%s\n' "$HDR"; } > "$WORK/bom/manifests/bom.yaml"
case_run bom 0 ''

mk crlf
printf '%s\n' "$HDR" | sed 's/$/\r/' > "$WORK/crlf/manifests/crlf.yaml"
case_run crlf 0 ''

mk tabs
printf '%s\n\tTarget: [a]\n' "$HDR" > "$WORK/tabs/manifests/t.yaml"
case_run tabs 1 '^manifests/t.yaml:7:1: error: yaml: found a tab character'

mk long-line
python3 -c "import sys; open(sys.argv[1],'w').write(sys.argv[2] + '\n  Description: ' + 'x' * 1000000 + '\n')" \
  "$WORK/long-line/manifests/l.yaml" "$HDR"
case_run long-line 1 '^manifests/l.yaml:7:16: error: spec.Description: must be 1 to 256 characters, got 1000000$'

mk many-keys
python3 -c "import sys; open(sys.argv[1],'w').write(sys.argv[2] + '\n' + ''.join('%x: 1\n' % i for i in range(100000)))" \
  "$WORK/many-keys/manifests/k.yaml" "$HDR"
case_run many-keys 1 '^manifests/k.yaml:1:1: error: 99980 more unknown fields in this mapping not shown$'

mk many-manifests
python3 - "$WORK/many-manifests/manifests" <<'PY'
import sys
n = 0
f = 0
while n <= 100000:
    with open(f"{sys.argv[1]}/part{f:02d}.yaml", "w") as out:
        for _ in range(8000):
            if n > 100000:
                break
            out.write("{apiVersion: ota-runner/v1, kind: OtaTask, metadata: {name: m%d}, "
                      "spec: {S3Url: x, OtaType: ONE_TIME}}\n---\n" % n)
            n += 1
    f += 1
PY
case_run many-manifests 1 'error: more than 100000 manifests; split the fleet'

mk binary-tag
printf '%s\n  Description: !!binary aGVsbG8=\n' "$HDR" > "$WORK/binary-tag/manifests/b.yaml"
case_run binary-tag 1 '^manifests/b.yaml:7:16: error: YAML tags are not supported'

mk custom-tag
printf '%s\n  Description: !custom x\n' "$HDR" > "$WORK/custom-tag/manifests/c.yaml"
case_run custom-tag 1 '^manifests/c.yaml:7:16: error: YAML tags are not supported \(found !custom\)'

mk scalar
echo 'just a scalar' > "$WORK/scalar/manifests/s.yaml"
case_run scalar 1 '^manifests/s.yaml:1:1: error: a manifest must be a mapping'

mk empty
: > "$WORK/empty/manifests/e.yaml"
case_run empty 1 '^manifests/e.yaml: error: file holds no manifest'

mk symlink
printf '%s\n' "$HDR" > "$WORK/symlink/manifests/real.yaml"
ln -s real.yaml "$WORK/symlink/manifests/link.yaml"
case_run symlink 1 '^manifests/link.yaml: error: symbolic link under --path manifests is not followed'

mk submodule
new_repo "$WORK/other"
git -C "$WORK/other" commit -q --allow-empty -m x
printf '%s\n' "$HDR" > "$WORK/submodule/manifests/real.yaml"
git -C "$WORK/submodule" -c protocol.file.allow=always submodule add -q "$WORK/other" manifests/sub >/dev/null 2>&1
case_run submodule 1 '^manifests/sub: error: submodule under --path manifests is not followed'

# 300 files, hostile and not, with a symbolic link among them: read on one
# thread and on four, the same output, the same exit code, byte for byte.
mk many
python3 - "$WORK/many/manifests" "$HDR" <<'PY'
import os, sys
d, hdr = sys.argv[1], sys.argv[2]
for i in range(300):
    kind = i % 6
    text = {0: hdr.replace("name: hostile", f"name: ok{i}"),
            1: hdr.replace("name: hostile", f"name: dup{i % 4}"),  # dup1 and dup3, 25 each
            2: hdr.replace("ONE_TIME", "SOMETIMES").replace("name: hostile", f"name: bad{i}"),
            3: "",
            4: hdr.replace("name: hostile", f"name: ref{i}") + "\n  TaskConfigurationRef: nowhere",
            5: "---\n" + hdr.replace("name: hostile", f"name: a{i}") + "\n---\n"
               + hdr.replace("name: hostile", f"name: b{i}")}[kind]
    open(os.path.join(d, f"m{i:03d}.yaml"), "w").write(text + "\n" if text else "")
PY
ln -s m000.yaml "$WORK/many/manifests/m150-link.yaml"
commit_all "$WORK/many" many >/dev/null 2>&1
rc1=$(OTA_RUNNER_THREADS=1 limited "$WORK/out1" "$WORK/err1" "$OTA_RUNNER" validate --repo "$WORK/many")
rc4=$(OTA_RUNNER_THREADS=4 limited "$WORK/out4" "$WORK/err4" "$OTA_RUNNER" validate --repo "$WORK/many")
if [ "$rc1" != 1 ] || [ "$rc4" != 1 ]; then
  bad "many: exit $rc1 on one thread and $rc4 on four, want 1"
elif ! cmp -s "$WORK/err1" "$WORK/err4" || ! cmp -s "$WORK/out1" "$WORK/out4"; then
  bad "many: one thread and four disagree"; diff "$WORK/err1" "$WORK/err4" | head -20 >&2
elif ! grep -q '^manifests/m150-link.yaml: error: symbolic link' "$WORK/err4" ||
     ! grep -q 'duplicate name "dup1"' "$WORK/err4" ||
     [ "$(grep -c 'error: ' "$WORK/err4")" != 199 ]; then
  bad "many: the problems are not all there"; head -c 600 "$WORK/err4" >&2
else
  ok
fi

# a tree with two entries of one name (git fsck: duplicateEntries), made by hand: refused whole,
# never read as two manifests of one file (issue 29)
new_repo "$WORK/dup"
mkdir -p "$WORK/dup/manifests"
printf 'apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: a}\nspec: {S3Url: s3://b/k, OtaType: ONE_TIME}\n' \
  > "$WORK/dup/manifests/a.yaml"
commit_all "$WORK/dup" one >/dev/null
python3 - "$WORK/dup" <<'PY'
import subprocess, sys
git = lambda *a, data=None: subprocess.run(["git", "-C", sys.argv[1], *a], input=data, capture_output=True,
                                           check=True).stdout.strip()
blob = bytes.fromhex(git("rev-parse", "HEAD:manifests/a.yaml").decode())
tree = git("hash-object", "-t", "tree", "--literally", "-w", "--stdin",
           data=b"100644 a.yaml\0" + blob + b"100644 a.yaml\0" + blob).decode()
root = git("mktree", data=f"040000 tree {tree}\tmanifests\n".encode()).decode()
commit = git("commit-tree", root, "-p", "HEAD", "-m", "two entries of one name").decode()
git("update-ref", "refs/heads/main", commit)
PY
set +e
"$OTA_RUNNER" validate --repo "$WORK/dup" >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
check "a tree with two entries of one name: exit 1" test $rc -eq 1
check "a tree with two entries of one name: said" grep -q "holds manifests/a.yaml twice .*duplicateEntries" "$WORK/err"

# a file name that is not UTF-8: refused, and the JSON that says so is JSON (issue 29)
new_repo "$WORK/latin1"
mkdir -p "$WORK/latin1/manifests"
python3 -c 'import sys, os; open(os.path.join(sys.argv[1].encode(), b"manifests", b"caf\xe9.yaml"), "w").write("apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {name: a}\nspec: {S3Url: s3://b/k, OtaType: ONE_TIME}\n")' "$WORK/latin1"
commit_all "$WORK/latin1" latin1 >/dev/null
set +e
"$OTA_RUNNER" validate --repo "$WORK/latin1" --output json >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
check "a file name that is not UTF-8: exit 1" test $rc -eq 1
check "a file name that is not UTF-8: said" grep -q "has a name that is not UTF-8" "$WORK/out" "$WORK/err"
check "a file name that is not UTF-8: the JSON parses" python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$WORK/out"

finish
