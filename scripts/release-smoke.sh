#!/usr/bin/env bash
# The release browser bundle (target/site, as scripts/wasm-size.sh or `cargo leptos build
# --release` left it: opt-level z, LTO, wasm-opt, panic=abort) hydrating against a real server's
# HTML in a real Chromium: end2end/release/smoke.mjs. The server is SERVER_BIN (default
# target/release/sse-status). The test command passes the debug server that its other steps
# built: views keep their types in every profile (Cargo.toml: disable-erase-components), so the
# HTML is the same and a second, release build of the server (9 minutes cold) proves nothing
# more. The server is started on a free loopback port and stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

server=${SERVER_BIN:-target/release/sse-status}
[ -x "$server" ] && [ -f target/site/pkg/sse-status.wasm ] || {
  echo "release smoke: build first ($server missing? cargo leptos build --release; or scripts/wasm-size.sh and SERVER_BIN=target/debug/sse-status)" >&2
  exit 1
}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=release-smoke-$$
log=$(mktemp)
LEPTOS_OUTPUT_NAME=sse-status LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg RUST_LOG=warn \
  "$server" --addr "127.0.0.1:$port" --heartbeat-ms 1000 --publish-token "$token" \
  >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
(cd end2end && node release/smoke.mjs "http://127.0.0.1:$port/" "$token") || { cat "$log" >&2; exit 1; }
