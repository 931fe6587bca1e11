#!/usr/bin/env bash
# A URL is mirrored into the cache and fetched on every run: a git daemon on
# 127.0.0.1 and a file:// URL, each fetched twice with a commit in between.
source "$(dirname "$0")/lib.sh"

upstream="$WORK/srv/fleet.git"
src="$WORK/src"
new_repo "$src"
cp -r "$OTR_SOURCE_DIR/manifests" "$src/manifests"
commit_all "$src" fleet
mkdir -p "$WORK/srv"
git clone -q --bare "$src" "$upstream"
touch "$upstream/git-daemon-export-ok"

# git daemon on a free loopback port
port=""
for try in 1 2 3 4 5 6 7 8; do
  p=$((20000 + (RANDOM % 20000)))
  git daemon --reuseaddr --listen=127.0.0.1 --port=$p --base-path="$WORK/srv" --export-all \
    --pid-file="$WORK/daemon.pid" --detach "$WORK/srv" 2>/dev/null || continue
  for _ in $(seq 50); do
    if git ls-remote "git://127.0.0.1:$p/fleet.git" >/dev/null 2>&1; then port=$p; break; fi
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill "$(cat "$WORK/daemon.pid")" 2>/dev/null || true
done
if [ -z "$port" ]; then echo "SKIP: could not start git daemon on 127.0.0.1"; exit 77; fi
trap 'kill "$(cat "$WORK/daemon.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT

cache="$WORK/cache"
for url in "git://127.0.0.1:$port/fleet.git" "file://$upstream"; do
  "$OTA_RUNNER" validate --repo "$url" --cache-dir "$cache" > "$WORK/out"
  check "$url: first fetch" grep -q "^valid: 8 manifests in 7 files at $(git -C "$upstream" rev-parse HEAD | cut -c1-12)" "$WORK/out"
done
check "two URLs, two cache entries" test "$(find "$cache" -mindepth 1 -maxdepth 1 -type d | wc -l)" -eq 2

git -C "$src" rm -q manifests/hvac/hub.yml
commit_all "$src" "drop hub"
git -C "$src" tag v2
git -C "$src" push -q "$upstream" main v2

for url in "git://127.0.0.1:$port/fleet.git" "file://$upstream"; do
  "$OTA_RUNNER" validate --repo "$url" --cache-dir "$cache" > "$WORK/out"
  check "$url: second fetch sees the new commit" grep -q "^valid: 7 manifests in 6 files at $(git -C "$upstream" rev-parse HEAD | cut -c1-12)" "$WORK/out"
  "$OTA_RUNNER" tokens --repo "$url" --cache-dir "$cache" --ref v2 > "$WORK/out"
  check "$url: a tag fetched" test "$(grep -c 'manifests/' "$WORK/out")" -eq 7
done
check "still two cache entries" test "$(find "$cache" -mindepth 1 -maxdepth 1 -type d | wc -l)" -eq 2

# XDG_CACHE_HOME is the default cache
XDG_CACHE_HOME="$WORK/xdg" "$OTA_RUNNER" validate --repo "file://$upstream" > /dev/null
check "default cache under XDG_CACHE_HOME" test -d "$WORK/xdg/ota-runner"

set +e
"$OTA_RUNNER" validate --repo "git://127.0.0.1:$port/missing.git" --cache-dir "$cache" 2>"$WORK/err"
rc=$?
set -e
check "unreachable repository: exit 1" test $rc -eq 1
check "unreachable repository: names the URL" grep -q "repository git://127.0.0.1:$port/missing.git: " "$WORK/err"

# a user name and password in the URL (issue 29): used to fetch, never shown or stored
secret="URL-PASSWORD-9e107d9d372bb6826bd81d3542a419d6"
"$OTA_RUNNER" validate --repo "git://git:$secret@127.0.0.1:$port/fleet.git" --cache-dir "$cache" --output json \
  > "$WORK/out" 2>&1
check "a URL with a password: read" grep -qE '"valid":[[:space:]]*true' "$WORK/out"
check "a URL with a password: shown without it" grep -qE "\"repo\":[[:space:]]*\"git://127.0.0.1:$port/fleet.git\"" "$WORK/out"
check "a URL with a password: not in the output" bash -c "! grep -q '$secret' '$WORK/out'"

# a file:// URL to a shallow clone: say what it is and what to do; the folder
# itself works
git clone -q --depth 1 "file://$src" "$WORK/shallow"
set +e
"$OTA_RUNNER" validate --repo "file://$WORK/shallow" --cache-dir "$cache" 2>"$WORK/err"
rc=$?
set -e
check "shallow clone by URL: exit 1" test $rc -eq 1
check "shallow clone by URL: says it is shallow and what to do" \
  grep -q "is a shallow clone (made with --depth), which cannot be mirrored; give its folder itself as --repo $WORK/shallow" "$WORK/err"
"$OTA_RUNNER" validate --repo "$WORK/shallow" > "$WORK/out"
check "shallow clone as a folder: read in place" grep -q "^valid: 7 manifests" "$WORK/out"

# a server that takes the connection and never answers (issue 31): the fetch is
# stopped after --fetch-idle-timeout without progress, or --fetch-timeout in all,
# with a clear error, and the cache is usable afterwards
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
' > "$WORK/hang.port" &
hang_pid=$!
for _ in $(seq 50); do [ -s "$WORK/hang.port" ] && break; sleep 0.1; done
hang=$(cat "$WORK/hang.port")
set +e
start=$(date +%s)
"$OTA_RUNNER" validate --repo "http://127.0.0.1:$hang/fleet.git" --cache-dir "$cache" --fetch-idle-timeout 2s \
  2>"$WORK/err"
rc=$?
took=$(( $(date +%s) - start ))
"$OTA_RUNNER" validate --repo "http://127.0.0.1:$hang/fleet.git" --cache-dir "$cache" --fetch-idle-timeout 1m \
  --fetch-timeout 2s 2>"$WORK/err2"
rc2=$?
set -e
kill "$hang_pid" 2>/dev/null || true
check "a server that hangs: exit 1" test $rc -eq 1
check "a server that hangs: stopped after the idle limit, not later" test "$took" -lt 30
check "a server that hangs: says no progress and names the option" \
  grep -q "fetch made no progress for 2s and was stopped .*--fetch-idle-timeout" "$WORK/err"
check "a fetch past --fetch-timeout: exit 1 and says so" \
  bash -c "test $rc2 -eq 1 && grep -q 'fetch took longer than 2s and was stopped (--fetch-timeout' '$WORK/err2'"
"$OTA_RUNNER" validate --repo "git://127.0.0.1:$port/fleet.git" --cache-dir "$cache" > "$WORK/out"
check "the cache still serves a good URL after a stopped fetch" grep -q "^valid: " "$WORK/out"

finish
