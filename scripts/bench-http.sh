#!/usr/bin/env bash
# `GET /` throughput, side by side in one run: wrk (-t2 -c64, keep-alive, loopback) against
#   1. this app under serve() (the default: the lean loop, anonymous renders shared for 1 s),
#   2. the same with --no-page-cache (every request rendered),
#   3. the same router under plain axum::serve (--axum-serve),
#   4. --axum-serve --no-page-cache (an equally heavy page, both rendering every request),
#   5. examples/embed: a start-axum Leptos app embedding the library, under axum::serve,
# each ROUNDS times, alternating, on a fresh server per run. Prints a table and writes the raw
# wrk output to bench/http-<commit>.txt.
#
#   scripts/bench-http.sh             # release builds first (app and example)
#   SKIP_BUILD=1 DURATION=10s ROUNDS=3 scripts/bench-http.sh
#   BEFORE_BIN=path/to/old/sse-status BEFORE_SITE=path/to/its/site ...  # adds a "before" row
#
# Every process it starts is stopped by its PID; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WORK=target/bench-http
mkdir -p "$WORK" bench
say() { printf '\033[1;34m[bench-http]\033[0m %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing wrk (apt-get)"
  $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
if [ -z "${SKIP_BUILD:-}" ]; then
  say "building release: cargo leptos build --release --project sse-status / --project embed"
  cargo leptos build --release --project sse-status
  cargo leptos build --release --project embed
fi
cp target/release/sse-status "$WORK/sse-status"
cp target/release/embed "$WORK/embed"
commit=$(git rev-parse --short HEAD)
RAW=bench/http-$commit.txt
: >"$RAW"

PID=""
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap stop EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name port
  local name=$1 port=$2 i
  case $name in
    before)
      LEPTOS_OUTPUT_NAME=sse-status LEPTOS_SITE_ROOT="$BEFORE_SITE" LEPTOS_SITE_PKG_DIR=pkg RUST_LOG=warn \
        "$BEFORE_BIN" --addr "127.0.0.1:$port" --heartbeat-ms 5000 >"$WORK/$name.log" 2>&1 &
      ;;
    embed)
      LEPTOS_OUTPUT_NAME=embed LEPTOS_SITE_ROOT=target/site-embed LEPTOS_SITE_PKG_DIR=pkg \
        LEPTOS_SITE_ADDR=127.0.0.1:$port "$WORK/embed" >"$WORK/$name.log" 2>&1 &
      ;;
    *)
      local flags=()
      case $name in
        serve-nocache) flags=(--no-page-cache) ;;
        axum) flags=(--axum-serve) ;;
        axum-nocache) flags=(--axum-serve --no-page-cache) ;;
      esac
      LEPTOS_OUTPUT_NAME=sse-status LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg RUST_LOG=warn \
        "$WORK/sse-status" --addr "127.0.0.1:$port" --heartbeat-ms 5000 "${flags[@]}" \
        >"$WORK/$name.log" 2>&1 &
      ;;
  esac
  PID=$!
  for i in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/"; then return 0; fi
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; return 1; }
    sleep 0.1
  done
  echo "$name did not answer within 10 s" >&2
  return 1
}

NAMES=(serve serve-nocache axum axum-nocache embed)
[ -n "${BEFORE_BIN:-}" ] && NAMES=(before "${NAMES[@]}")
declare -A RPS
for round in $(seq 1 "$ROUNDS"); do
  for name in "${NAMES[@]}"; do
    port=$(free_port)
    start "$name" "$port"
    bytes=$(curl -s "http://127.0.0.1:$port/" | wc -c)
    out=$(wrk -t2 -c64 -d"$DURATION" --latency "http://127.0.0.1:$port/")
    stop
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    p99=$(awk '$1=="99%"{print $2}' <<<"$out")
    RPS[$name]="${RPS[$name]:-} $rps"
    say "round $round $name: $rps requests/s, p99 $p99, page $bytes bytes"
    { echo "### round $round: $name (page $bytes bytes)"; echo "$out"; echo; } >>"$RAW"
    sleep 1
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
  echo
  echo "| server | page | requests/s (median of $ROUNDS) | runs |"
  echo "|---|---|---:|---|"
  for name in "${NAMES[@]}"; do
    echo "| $name | $(case $name in embed) echo 'examples/embed' ;; before) echo "dashboard, $BEFORE_BIN" ;; *) echo dashboard ;; esac) | $(median <<<"${RPS[$name]}") | ${RPS[$name]} |"
  done
  echo
  echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/'); commit $commit; wrk -t2 -c64 -d$DURATION"
} | tee -a "$RAW"
