#!/usr/bin/env bash
# Every case of tests/data/bad through the real binary: exit 1, and the expected
# diagnostic (file:line:col, field, message) on stderr. Also: a file can hold
# several problems, and all of them are reported.
source "$(dirname "$0")/lib.sh"

cases=("$OTR_SOURCE_DIR"/tests/data/bad/*.yaml)
[ ${#cases[@]} -ge 30 ] || { bad "expected at least 30 cases, found ${#cases[@]}"; }

for case in "${cases[@]}"; do
  name=$(basename "$case")
  header=$(head -1 "$case")
  spec=${header#\# expect: }
  pos=${spec%% *}
  rest=${spec#* }
  field=${rest%% | *}
  msg=${rest#* | }
  msg=${msg% \[schema: skip\]}

  repo="$WORK/$name"
  new_repo "$repo"
  mkdir -p "$repo/manifests"
  cp "$case" "$repo/manifests/$name"
  commit_all "$repo" "$name"

  set +e
  (cd "$repo" && "$OTA_RUNNER" validate >"$WORK/out" 2>"$WORK/err")
  rc=$?
  set -e
  want="manifests/$name"
  [ "$pos" != "-" ] && want="$want:$pos"
  want="$want: error: "
  [ "$field" != "-" ] && want="$want$field: "
  if [ $rc -ne 1 ]; then
    bad "$name: exit $rc, want 1"; cat "$WORK/err" >&2
  elif ! grep -qF -- "$want" "$WORK/err" || ! grep -F -- "$want" "$WORK/err" | grep -qF -- "$msg"; then
    bad "$name: want a line starting '$want' containing '$msg', got:"; cat "$WORK/err" >&2
  elif ! grep -q "^invalid: " "$WORK/out"; then
    bad "$name: no summary line on stdout"; cat "$WORK/out" >&2
  else
    ok
  fi
done

# All problems of all files, in file order, and the summary counts them.
repo="$WORK/many"
new_repo "$repo"
mkdir -p "$repo/manifests/a"
cp "$OTR_SOURCE_DIR/tests/data/bad/01-ota-type-typo.yaml" "$repo/manifests/b.yaml"
cp "$OTR_SOURCE_DIR/tests/data/bad/07-protocol-mqtt.yaml" "$repo/manifests/a/c.yaml"
cp "$OTR_SOURCE_DIR/manifests/energy/smart-plug.yaml" "$repo/manifests/ok.yaml"
printf '%s\n' 'apiVersion: ota-runner/v1' 'kind: OtaTask' 'metadata: {name: bad}' \
  'spec: {S3Url: x, OtaType: ONE_TIME}' > "$repo/manifests/dup.yaml"
commit_all "$repo" many
set +e
"$OTA_RUNNER" validate --repo "$repo" >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
check "several files: exit 1" test $rc -eq 1
check "several files: errors in path order" diff -u - "$WORK/err" <<'EXPECTED'
manifests/a/c.yaml:9:13: error: spec.Protocol: must be HTTP, got "MQTT"
manifests/b.yaml:5:9: error: metadata.name: duplicate name "bad": also defined at manifests/a/c.yaml:5:9; names must be unique among the OtaTask manifests
manifests/b.yaml:8:12: error: spec.OtaType: must be ONE_TIME or CONTINUOUS, got "ONETIME"; did you mean ONE_TIME?
manifests/dup.yaml:3:18: error: metadata.name: duplicate name "bad": also defined at manifests/a/c.yaml:5:9; names must be unique among the OtaTask manifests
EXPECTED
check "several files: summary" grep -qE '^invalid: 4 errors in 3 of 4 files \(4 manifests\) at [0-9a-f]{12}, path manifests$' "$WORK/out"

finish
