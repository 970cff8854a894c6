#!/usr/bin/env bash
# frontend/e2e/run.sh: the browser tests. Real headless Chromium (Debian's
# /usr/bin/chromium, driven by playwright-core from npm; no browser
# download) against a real dealroom server built from this tree, on
# 127.0.0.1 and a free port, with a temporary data directory. Screenshots
# of every view land in frontend/e2e/artifacts/.
#
#   frontend/e2e/run.sh                       # every test
#   frontend/e2e/run.sh tests/04-live.test.mjs # some files (relative to frontend/e2e)
#
# Environment: DEALROOM_SKIP_INSTALL=1 installs nothing (fails instead);
# CHROMIUM_PATH overrides /usr/bin/chromium; DEALROOM_E2E_BIN tests that
# server binary instead of building one from this tree.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'frontend/e2e/run.sh: %s\n' "$*" >&2
	exit 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@" || die "need root for: $*"
	else
		die "need root for: $* (not root and no sudo)"
	fi
}

# Tools: Chromium from Debian, Node and npm, Go.
if [ ! -x "$chromium" ]; then
	[ -z "${DEALROOM_SKIP_INSTALL:-}" ] || die "missing $chromium (DEALROOM_SKIP_INSTALL is set)"
	command -v apt-get >/dev/null 2>&1 || die "missing $chromium, and no apt-get to install it with"
	log "installing chromium"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	[ -x "$chromium" ] || die "chromium installed, but $chromium is still missing"
fi
command -v node >/dev/null 2>&1 || die "node is not on PATH"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
command -v go >/dev/null 2>&1 || die "go is not on PATH"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
log "npm ci (frontend/e2e)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dealroom-e2e.XXXXXX")"
server_pid=""
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${DEALROOM_E2E_BIN:-}" ]; then
	log "using the server binary $DEALROOM_E2E_BIN"
	cp "$DEALROOM_E2E_BIN" "$tmp/dealroom"
else
	log "building the server"
	(cd "$root" && go build -o "$tmp/dealroom" ./cmd/dealroom)
fi

# The server picks a free port itself (port 0) and prints its URL.
export DEALROOM_JWT_SECRET="e2e-secret-0123456789abcdef0123456789abcdef"
export DEALROOM_DATA_DIR="$tmp/data"
export DEALROOM_RATE_LIMIT=1000
DEALROOM_ADDR=127.0.0.1:0 DEALROOM_LOG_LEVEL=warn "$tmp/dealroom" serve >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 200); do
	url="$(sed -n 's/^Dealroom is listening on \(http:\/\/[^ ]*\).*/\1/p' "$tmp/server.out" | head -n 1)"
	[ -n "$url" ] && break
	kill -0 "$server_pid" 2>/dev/null || {
		cat "$tmp/server.log" >&2
		die "the server did not start"
	}
	sleep 0.05
done
[ -n "$url" ] || die "the server printed no URL"
log "server at $url"

export DEALROOM_URL="$url"
export DEALROOM_BIN="$tmp/dealroom"
export DEALROOM_ARTIFACTS="$here/artifacts"
export CHROMIUM_PATH="$chromium"
rm -rf "$DEALROOM_ARTIFACTS"
mkdir -p "$DEALROOM_ARTIFACTS"

cd "$here"
if [ "$#" -gt 0 ]; then
	files=("$@")
else
	files=(tests/*.test.mjs)
fi
status=0
node --test --test-concurrency=1 --test-reporter=spec "${files[@]}" || status=$?
if [ "$status" -ne 0 ]; then
	log "server log (last lines):"
	tail -n 40 "$tmp/server.log" >&2 || true
fi
log "screenshots in frontend/e2e/artifacts/"
exit "$status"
