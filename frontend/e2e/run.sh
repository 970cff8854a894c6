#!/usr/bin/env bash
# frontend/e2e/run.sh: the browser tests. Real headless Chromium (Debian's
# /usr/bin/chromium, driven by playwright-core from npm; no browser
# download) against a real dealroom server built from this tree, on
# 127.0.0.1 and a free port, with a temporary data directory. Screenshots
# of every view land in frontend/e2e/artifacts/.
#
# A second server signs staff in through a real OpenID provider: the
# tests' provider (internal/testenv/oidcop: zitadel/oidc's, with its own
# login page) runs as a process on 127.0.0.1 with the users and client of
# provider.json, and that server's DEALROOM_OIDC_* point at it. That
# server also sends mail, to a real SMTP server: the tests' one
# (internal/testenv/cmd/smtpsink: go-smtp) runs as a process on 127.0.0.1
# and shows the tests what it received (a mailbox over HTTP).
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
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	done
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
log "building the OpenID provider and the SMTP server"
(cd "$root" && go build -o "$tmp/" ./internal/testenv/oidcop/cmd/oidcop ./internal/testenv/cmd/smtpsink)

# wait_line NAME PID FILE SED: waits until the process PID writes a line
# matching the sed expression SED to FILE, and prints what it captured.
wait_line() {
	local name="$1" pid="$2" file="$3" expr="$4" got=""
	for _ in $(seq 1 200); do
		# The file appears once the process has started (its redirection).
		[ -f "$file" ] && got="$(sed -n "$expr" "$file" | head -n 1)"
		[ -n "$got" ] && break
		kill -0 "$pid" 2>/dev/null || {
			cat "$tmp/$name.log" >&2
			die "the $name did not start"
		}
		sleep 0.05
	done
	[ -n "$got" ] || die "the $name printed no address"
	printf '%s' "$got"
}

# The server picks a free port itself (port 0) and prints its URL.
export DEALROOM_JWT_SECRET="e2e-secret-0123456789abcdef0123456789abcdef"
export DEALROOM_RATE_LIMIT=1000
listening='s/^Dealroom is listening on \(http:\/\/[^ ]*\).*/\1/p'
export DEALROOM_DATA_DIR="$tmp/data"
DEALROOM_ADDR=127.0.0.1:0 DEALROOM_LOG_LEVEL=warn "$tmp/dealroom" serve >"$tmp/server.out" 2>"$tmp/server.log" &
pid=$!
pids+=("$pid")
url="$(wait_line server "$pid" "$tmp/server.out" "$listening")"
log "server at $url"

# The server with single sign-on. Its callback URL is registered at the
# provider before it starts, so it gets a port chosen here.
sso_port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
sso_url="http://127.0.0.1:$sso_port"
sed "s|{{PUBLIC_URL}}|$sso_url|g" "$here/provider.json" >"$tmp/provider.json"
"$tmp/oidcop" -options "$(cat "$tmp/provider.json")" >"$tmp/provider.out" 2>"$tmp/provider.log" &
pid=$!
pids+=("$pid")
issuer="$(wait_line provider "$pid" "$tmp/provider.out" 's/^issuer \(http:[^ ]*\)$/\1/p')"
log "OpenID provider at $issuer"
"$tmp/smtpsink" >"$tmp/smtp.out" 2>"$tmp/smtp.log" &
pid=$!
pids+=("$pid")
mailbox="$(wait_line smtp "$pid" "$tmp/smtp.out" 's/^mailbox \(http:[^ ]*\)$/\1/p')"
smtp_url="$(sed -n 's/^smtp \(smtp:[^ ]*\)$/\1/p' "$tmp/smtp.out")"
log "SMTP server at $smtp_url, its mailbox at $mailbox"
# Its sign-in links point at its own address (DEALROOM_PUBLIC_URL); its
# notifications wait a second, not two minutes (11-preferences).
DEALROOM_DATA_DIR="$tmp/sso-data" DEALROOM_ADDR="127.0.0.1:$sso_port" DEALROOM_PUBLIC_URL="$sso_url" DEALROOM_LOG_LEVEL=warn \
	DEALROOM_SMTP_URL="$smtp_url" DEALROOM_MAIL_FROM="Dealroom <rooms@seller.example>" DEALROOM_NOTIFY_DELAY=1s \
	DEALROOM_OIDC_ISSUER="$issuer" DEALROOM_OIDC_CLIENT_ID=dealroom DEALROOM_OIDC_CLIENT_SECRET=e2e-client-secret \
	DEALROOM_OIDC_NAME="Example SSO" DEALROOM_OIDC_ALLOWED_DOMAINS=example.com \
	DEALROOM_OIDC_SCOPES=groups DEALROOM_OIDC_MANAGER_GROUPS=sales-managers \
	"$tmp/dealroom" serve >"$tmp/sso-server.out" 2>"$tmp/sso-server.log" &
pid=$!
pids+=("$pid")
wait_line sso-server "$pid" "$tmp/sso-server.out" "$listening" >/dev/null
log "server with single sign-on and mail at $sso_url"

export DEALROOM_URL="$url"
export DEALROOM_SSO_URL="$sso_url"
export DEALROOM_SSO_ISSUER="$issuer"
export DEALROOM_MAILBOX_URL="$mailbox"
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
	log "single sign-on and mail server log (last lines):"
	tail -n 20 "$tmp/sso-server.log" >&2 || true
fi
log "screenshots in frontend/e2e/artifacts/"
exit "$status"
