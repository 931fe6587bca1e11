# Helpers for the integration tests (sourced). They drive the real binary, $OTA_RUNNER.
set -euo pipefail

: "${OTA_RUNNER:?set OTA_RUNNER to the ota-runner binary (ctest does)}"
: "${OTR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

export GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=test@example.com
export GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=test@example.com
export GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/otr-it-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# check DESCRIPTION COMMAND...: the command must succeed.
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

# new_repo DIR: an empty repository with a main branch.
new_repo() { git init -q -b main "$1"; }

# commit_all DIR MESSAGE
commit_all() { git -C "$1" add -A && git -C "$1" commit -qm "$2"; }

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
