#!/usr/bin/env bash
# `ota-runner tokens` against the independent Python implementation, on the
# sample fleet and on one manifest written in six YAML styles; a new token
# after an edit or a revision bump, the same token after a reformat; a fleet
# of 5,000 answers from its pack exactly as from its work tree.
source "$(dirname "$0")/lib.sh"

compare() { # compare REPO FILES...: binary's tokens == Python's, by name
  "$OTA_RUNNER" tokens --repo "$1" --output json > "$WORK/bin.json"
  (cd "$1" && python3 "$OTR_SOURCE_DIR/tests/tools/tokens.py" "${@:2}") > "$WORK/py.json"
  python3 - "$WORK/bin.json" "$WORK/py.json" <<'PY'
import json, sys
b = {(d["kind"], d["name"]): d for d in json.load(open(sys.argv[1]))}
p = {(d["kind"], d["name"]): d for d in json.load(open(sys.argv[2]))}
assert set(b) == set(p), (sorted(b), sorted(p))
for n in b:
    assert b[n]["clientToken"] == p[n]["clientToken"], (n, b[n], p[n])
    assert b[n]["specDigest"] == p[n]["specDigest"], (n, b[n], p[n])
    assert len(b[n]["clientToken"]) == 43
    calls = {"calls"} if n[0] == "OtaRollout" else set()
    assert set(b[n]) == {"name", "kind", "address", "file", "line", "clientToken", "specDigest"} | calls, b[n]
    assert b[n].get("calls") == p[n].get("calls"), (n, b[n].get("calls"), p[n].get("calls"))
PY
}

token_of() { "$OTA_RUNNER" tokens --repo "$1" --output json | python3 -c "import json,sys; print({d['name']: d['clientToken'] for d in json.load(sys.stdin)}['$2'])"; }

repo="$WORK/fleet"
new_repo "$repo"
cp -r "$OTR_SOURCE_DIR/manifests" "$repo/manifests"
commit_all "$repo" fleet
check "sample fleet: tokens equal Python's" compare "$repo" $(cd "$repo" && find manifests -name '*.y*ml' | sort)

"$OTA_RUNNER" tokens --repo "$repo" > "$WORK/text"
check "text output has a header" grep -q '^NAME  *CLIENT TOKEN  *FILE$' "$WORK/text"
check "text output: name, token, file:line" grep -qE '^thermostat-2-4-1 +[A-Za-z0-9_-]{43}  manifests/hvac/thermostat.yaml:3$' "$WORK/text"

# Task configurations, their doubles written five ways (one digest), and a task
# that refers to one: the binary and Python agree on every token.
r="$WORK/doubles"
new_repo "$r"; mkdir -p "$r/manifests"; cp "$OTR_SOURCE_DIR/tests/data/tokens/doubles.yaml" "$r/manifests/"
commit_all "$r" doubles
check "doubles written five ways, and a reference: tokens equal Python's" compare "$r" manifests/doubles.yaml
check "doubles written five ways: one spec digest" test "$("$OTA_RUNNER" tokens --repo "$r" --output json | python3 -c "
import json, sys
print(len({d['specDigest'] for d in json.load(sys.stdin) if d['name'].startswith('doubles-') and d['name'] not in ('doubles-care', 'doubles-user')}))")" -eq 1

# The same manifest in six styles, one repository each: one token.
tokens=()
for f in "$OTR_SOURCE_DIR"/tests/data/tokens/styles/*.yaml; do
  r="$WORK/style-$(basename "$f" .yaml)"
  new_repo "$r"; mkdir -p "$r/manifests"; cp "$f" "$r/manifests/"
  commit_all "$r" style
  check "$(basename "$f"): tokens equal Python's" compare "$r" "manifests/$(basename "$f")"
  tokens+=("$(token_of "$r" style-check)")
done
check "six styles, one token" test "$(printf '%s\n' "${tokens[@]}" | sort -u | wc -l)" -eq 1

# The same manifests split across files instead of one multi-document file.
r="$WORK/split"
new_repo "$r"; mkdir -p "$r/manifests/x"
python3 - "$OTR_SOURCE_DIR/tests/data/tokens/styles/multi-doc.yaml" "$r/manifests" <<'PY'
import sys
text = open(sys.argv[1]).read().replace("\n...\n", "\n")
first, second = text.split("\n---\n")
open(sys.argv[2] + "/x/one.yaml", "w").write(first + "\n")
open(sys.argv[2] + "/two.yml", "w").write(second)
PY
commit_all "$r" split
check "split across files: same token" test "$(token_of "$r" style-check)" = "${tokens[0]}"

# Reformat: same token. Edit or revision bump: new token, and Python agrees.
before=$(token_of "$repo" smart-plug-5-1-0)
f="$repo/manifests/energy/smart-plug.yaml"
python3 - "$f" <<'PY'
import sys
p = sys.argv[1]
t = open(p).read()
t = t.replace("  S3Url: s3://acme-fw-jobs/smart-plug/5.1.0/job-document.json\n  OtaType: ONE_TIME\n",
              "  OtaType: 'ONE_TIME'   # reordered and quoted\n  S3Url: \"s3://acme-fw-jobs/smart-plug/5.1.0/job-document.json\"\n")
open(p, "w").write(t)
PY
commit_all "$repo" reformat
check "reformat keeps the token" test "$(token_of "$repo" smart-plug-5-1-0)" = "$before"
sed -i 's/plug0001/plug0002/' "$f"; commit_all "$repo" edit
edited=$(token_of "$repo" smart-plug-5-1-0)
check "an edit changes the token" test "$edited" != "$before"
sed -i 's/  name: smart-plug-5-1-0/  name: smart-plug-5-1-0\n  revision: 2/' "$f"; commit_all "$repo" bump
bumped=$(token_of "$repo" smart-plug-5-1-0)
check "a revision bump changes the token" test "$bumped" != "$edited" -a "$bumped" != "$before"
check "after edits: tokens equal Python's" compare "$repo" $(cd "$repo" && find manifests -name '*.y*ml' | sort)

# A large fleet (read in pack order, see runner/source/source.c) answers in path
# order, exactly as its working tree (read in path order) does: tokens, and
# validate's problems once some files are broken.
large="$WORK/large"
new_repo "$large"
python3 - <<'PY' | git -C "$large" -c fastimport.unpackLimit=1 fast-import --quiet
import sys
n = 5000
out = [b"commit refs/heads/main\ncommitter T <t@example.com> 0 +0000\ndata 5\nlarge\n"]
for k in range(n):
    i = (k * 7919) % n  # the stream (and so the pack) far from path order
    text = (f"apiVersion: ota-runner/v1\nkind: OtaTask\nmetadata: {{name: m{i:05d}}}\n"
            f"spec: {{S3Url: 's3://b/{i}.json', OtaType: ONE_TIME}}\n").encode()
    out.append(f"M 100644 inline manifests/g{i % 50:02d}/m{i:05d}.yaml\ndata {len(text)}\n".encode() + text + b"\n")
sys.stdout.buffer.write(b"".join(out))
PY
git -C "$large" reset -q --hard
"$OTA_RUNNER" tokens --repo "$large" --output json > "$WORK/large-commit.json"
"$OTA_RUNNER" tokens --repo "$large" --worktree --output json > "$WORK/large-worktree.json"
check "5,000 manifests: the same tokens, in the same order, from the pack as from the work tree" \
  cmp -s "$WORK/large-commit.json" "$WORK/large-worktree.json"
check "5,000 manifests: listed in path order" python3 -c "
import json, sys
files = [d['file'] for d in json.load(open('$WORK/large-commit.json'))]
sys.exit(not (len(files) == 5000 and files == sorted(files)))"
sed -i 's/name: m04321/name: m00007/' "$large/manifests/g21/m04321.yaml"
sed -i 's/OtaType: ONE_TIME/OtaType: NEVER/' "$large/manifests/g13/m00013.yaml"
commit_all "$large" broken
set +e
"$OTA_RUNNER" validate --repo "$large" > "$WORK/large-commit.txt" 2>&1
"$OTA_RUNNER" validate --repo "$large" --worktree > "$WORK/large-worktree.txt" 2>&1
set -e
check "5,000 manifests: validate reports the same problems in the same order" \
  cmp -s <(sed '$d' "$WORK/large-commit.txt") <(sed '$d' "$WORK/large-worktree.txt")
check "5,000 manifests: the duplicate is reported where it comes second in path order" \
  grep -q '^manifests/g21/m04321.yaml:3:.*duplicate name "m00007": also defined at manifests/g07/m00007.yaml:3:' \
  "$WORK/large-commit.txt"
check "5,000 manifests: problems in path order" test \
  "$(grep -n 'm00013.yaml' "$WORK/large-commit.txt" | cut -d: -f1)" -lt \
  "$(grep -n 'm04321.yaml' "$WORK/large-commit.txt" | cut -d: -f1)"

# Invalid manifests: no tokens, exit 1.
sed -i 's/OtaType: .ONE_TIME./OtaType: NEVER/' "$f"; commit_all "$repo" break
set +e; "$OTA_RUNNER" tokens --repo "$repo" >"$WORK/out" 2>"$WORK/err"; rc=$?; set -e
check "tokens refuses invalid manifests" test $rc -eq 1 -a ! -s "$WORK/out"
check "tokens says why" grep -q "spec.OtaType: must be ONE_TIME or CONTINUOUS" "$WORK/err"

finish
