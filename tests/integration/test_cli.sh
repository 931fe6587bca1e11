#!/usr/bin/env bash
# The command line as a user meets it: help for every command, version, unknown
# commands and options (one line, a hint, exit 1), output formats, and the
# source options (--repo, --ref, --path, --worktree).
source "$(dirname "$0")/lib.sh"

run() { # run EXPECTED_RC CMD...: output in $WORK/out and $WORK/err
  local want=$1; shift
  set +e
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  set -e
  if [ $rc -ne "$want" ]; then
    bad "'$*' exited $rc, want $want"; cat "$WORK/err" >&2; return 1
  fi
  ok
}

# --- help and version
run 0 "$OTA_RUNNER" --help
check "--help lists the commands" grep -q '^  validate ' "$WORK/out"
check "--help lists tokens" grep -q '^  tokens ' "$WORK/out"
check "--help names the exit codes" grep -q 'Exit codes' "$WORK/out"
for cmd in validate tokens version; do
  run 0 "$OTA_RUNNER" "$cmd" --help
  check "$cmd --help has a usage line" grep -q "^Usage: ota-runner $cmd" "$WORK/out"
done
run 0 "$OTA_RUNNER" validate -h
check "validate --help documents --repo" grep -q -- '--repo PATH|URL' "$WORK/out"
check "validate --help lists its output formats" grep -q 'Output formats (--output): text json github' "$WORK/out"
run 0 "$OTA_RUNNER" version
for lib in '^ota-runner [0-9]' '^libgit2 [0-9]' '^libcurl [0-9]' '^OpenSSL [0-9]' '^libyaml [0-9]' '^cJSON [0-9]'; do
  check "version shows $lib" grep -q "$lib" "$WORK/out"
done

# --- usage errors: one line, a hint, exit 1
run 1 "$OTA_RUNNER" valdate
check "unknown command: one line with a hint" diff -u - "$WORK/err" <<'EOF2'
ota-runner: unknown command 'valdate'; did you mean validate? (see 'ota-runner --help')
EOF2
run 1 "$OTA_RUNNER" plna
check "two letters swapped: did you mean" diff -u - "$WORK/err" <<'EOF2'
ota-runner: unknown command 'plna'; did you mean plan? (see 'ota-runner --help')
EOF2
run 1 "$OTA_RUNNER" validate --rpo x
check "unknown option: did you mean" diff -u - "$WORK/err" <<'EOF2'
ota-runner validate: unknown option --rpo; did you mean --repo? (see 'ota-runner validate --help')
EOF2
run 1 "$OTA_RUNNER" validate --repo
check "missing value" grep -qx "ota-runner validate: option --repo needs a value (see 'ota-runner validate --help')" "$WORK/err"
run 1 "$OTA_RUNNER" tokens --output github
check "output not offered by the command" grep -q -- "--output github is not available here" "$WORK/err"
run 1 "$OTA_RUNNER" version --repo x
check "option of another command" grep -q "unknown option --repo" "$WORK/err"
run 1 "$OTA_RUNNER" validate extra-arg
check "unexpected argument" grep -q "unexpected argument 'extra-arg'" "$WORK/err"
run 1 "$OTA_RUNNER"
check "no command prints the help" grep -q '^Usage: ota-runner' "$WORK/out"

# --- a repository with the sample manifests
repo="$WORK/fleet"
new_repo "$repo"
cp -r "$OTR_SOURCE_DIR/manifests" "$repo/manifests"
commit_all "$repo" "sample fleet"
head=$(git -C "$repo" rev-parse HEAD)

run 0 "$OTA_RUNNER" validate --repo "$repo"
check "valid summary names the commit" grep -qx "valid: 8 manifests in 7 files at ${head:0:12}, path manifests" "$WORK/out"
check "nothing on stderr when valid" test ! -s "$WORK/err"

# libcurl is opened by the first request only: validate and a plan that asks
# the service nothing start without it (and its 28 libraries); version opens it
loaded_curl() { grep -q 'file=libcurl\.so' "$WORK/err"; }
LD_DEBUG=files run 0 "$OTA_RUNNER" validate --repo "$repo"
check "validate does not load libcurl" sh -c "! grep -q 'file=libcurl\.so' '$WORK/err'"
LD_DEBUG=files OTA_RUNNER_STATE="$WORK/lazy-state.json" AWS_REGION=us-east-1 \
  run 0 "$OTA_RUNNER" plan --repo "$repo" --refresh none --no-adopt
check "plan --refresh none does not load libcurl" sh -c "! grep -q 'file=libcurl\.so' '$WORK/err'"
LD_DEBUG=files run 0 "$OTA_RUNNER" version
check "version loads libcurl when it asks for its version" loaded_curl
check "and shows it" grep -q '^libcurl [0-9]' "$WORK/out"

(cd "$repo/manifests/hvac" && run 0 "$OTA_RUNNER" validate)
check "found from a folder inside the repository" grep -q "^valid: 8 manifests" "$WORK/out"

run 0 "$OTA_RUNNER" validate --repo "$repo" --output json
check "validate json" python3 -c "
import json,sys; d=json.load(open('$WORK/out'))
assert d['formatVersion']==1 and d['valid'] is True and d['commit']=='$head', d
assert d['files']==7 and d['manifests']==8 and d['errors']==0 and d['diagnostics']==[], d"

# an uncommitted edit is not seen, unless --worktree
sed -i 's/OtaType: ONE_TIME/OtaType: WEEKLY/' "$repo/manifests/energy/smart-plug.yaml"
run 0 "$OTA_RUNNER" validate --repo "$repo"
run 1 "$OTA_RUNNER" validate --repo "$repo" --worktree
check "--worktree reads the edit" grep -q '^manifests/energy/smart-plug.yaml:9:12: error: spec.OtaType: must be ONE_TIME or CONTINUOUS, got "WEEKLY"$' "$WORK/err"
check "--worktree summary" grep -q "^invalid: 1 error in 1 of 7 files (8 manifests) at ${head:0:12}+worktree, path manifests$" "$WORK/out"
run 1 "$OTA_RUNNER" validate --repo "$repo" --worktree --output github
check "github annotations" grep -qx '::error file=manifests/energy/smart-plug.yaml,line=9,col=12,title=ota-runner validate::spec.OtaType: must be ONE_TIME or CONTINUOUS, got "WEEKLY"' "$WORK/out"
run 1 "$OTA_RUNNER" validate --repo "$repo" --worktree --output json
check "json diagnostics" python3 -c "
import json; d=json.load(open('$WORK/out'))
assert d['valid'] is False and d['errors']==1, d
x=d['diagnostics'][0]
assert (x['file'],x['line'],x['column'],x['field'],x['severity'])==('manifests/energy/smart-plug.yaml',9,12,'spec.OtaType','error'), x"
git -C "$repo" checkout -q -- .

# --ref and --path
git -C "$repo" tag v1
git -C "$repo" rm -q manifests/hvac/hub.yml
git -C "$repo" commit -qm "drop hub"
run 0 "$OTA_RUNNER" validate --repo "$repo" --ref v1
check "--ref v1 sees the old commit" grep -q "^valid: 8 manifests in 7 files at ${head:0:12}" "$WORK/out"
run 0 "$OTA_RUNNER" validate --repo "$repo"
check "HEAD sees the new commit" grep -q "^valid: 7 manifests in 6 files" "$WORK/out"
run 0 "$OTA_RUNNER" validate --repo "$repo" --path manifests/security
check "--path narrows" grep -q "^valid: 3 manifests in 2 files" "$WORK/out"
run 1 "$OTA_RUNNER" validate --repo "$repo" --path rollouts
check "--path absent names the commit" grep -qE "^ota-runner: error: --path rollouts does not exist in commit [0-9a-f]{12}$" "$WORK/err"
run 1 "$OTA_RUNNER" validate --repo "$repo" --ref nope
check "unknown ref" grep -q "unknown ref nope in" "$WORK/err"
run 1 "$OTA_RUNNER" validate --repo "$WORK"
check "not a repository" grep -q "is not a git repository" "$WORK/err"

# NO_COLOR is honoured and colour never reaches a pipe
check "no escape codes in output" sh -c "! grep -q \$'\\033' '$WORK/err' '$WORK/out'"

finish
