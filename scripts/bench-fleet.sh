#!/usr/bin/env bash
# Fleet benchmark: publish→deliver latency (p50/p99) and sustained publishes per second with N
# held streams, for the embedded log (one process), the Redis Streams log on one process, and the
# Redis log with the same N spread over two instances (publishes to one of them, every event
# through Redis and both followers).
#
#   scripts/bench-fleet.sh                  # N=10000, 50 timed broadcasts, 10 s sustained
#   N=2000 SUSTAIN_SECS=5 scripts/bench-fleet.sh
#   SKIP_BUILD=1 scripts/bench-fleet.sh
#
# Needs redis-server (scripts/setup.sh installs it). Every process it starts is stopped by its
# PID. Raw reports (one JSON line per run) go to bench/fleet-<commit>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

N=${N:-10000}
BROADCASTS=${BROADCASTS:-50}
SUSTAIN_SECS=${SUSTAIN_SECS:-10}
SUSTAIN_CONCURRENCY=${SUSTAIN_CONCURRENCY:-8}
TOKEN=bench
WORK=target/bench-fleet
COMMIT=$(git rev-parse --short HEAD)
OUT=bench/fleet-$COMMIT.jsonl
say() { printf '\033[1;34m[bench-fleet]\033[0m %s\n' "$*" >&2; }
command -v redis-server >/dev/null || { echo "redis-server not found: run ./scripts/setup.sh" >&2; exit 2; }

if [ -z "${SKIP_BUILD:-}" ]; then
  say "building release (sse-status, loadgen)"
  cargo build --release --features app-server --bin sse-status
  cargo build --release -p loadgen --bin loadgen
fi
mkdir -p "$WORK" bench
cp target/release/sse-status target/release/loadgen "$WORK/"
: >"$OUT"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # url
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/readyz")" = 200 ] && return 0
    sleep 0.05
  done
  echo "$1 not ready" >&2; exit 1
}
start_server() { # port [extra args...]
  local port=$1; shift
  RUST_LOG=warn LEPTOS_SITE_ROOT=target/site LEPTOS_OUTPUT_NAME=sse-status \
    "$WORK/sse-status" --addr "127.0.0.1:$port" --publish-token "$TOKEN" --heartbeat-ms 5000 \
    --replay-capacity 1024 "$@" >"$WORK/server-$port.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$port"
}
loadgen() { # label publish-url server-pid [extra args...]
  local label=$1 url=$2 pid=$3; shift 3
  say "run: $label"
  "$WORK/loadgen" --url "$url" -n "$N" --server-pid "$pid" --publish-token "$TOKEN" \
    --broadcasts "$BROADCASTS" --idle-secs 0 --sustain-secs "$SUSTAIN_SECS" \
    --sustain-concurrency "$SUSTAIN_CONCURRENCY" --timeout-secs 300 --json --label "$label" "$@" >>"$OUT" || say "run failed: $label"
}

# 1. Embedded log, one process holds all N.
PA=$(free_port)
start_server "$PA"
loadgen "embedded log, 1 instance, $N streams" "http://127.0.0.1:$PA" "${PIDS[-1]}"
cleanup

start_redis() {
  RP=$(free_port)
  RDIR=$(mktemp -d)
  redis-server --port "$RP" --bind 127.0.0.1 --dir "$RDIR" --save '' --appendonly yes >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

# 2. Redis Streams log, one instance holds all N: the cost of the Redis hop alone.
start_redis
PA=$(free_port)
start_server "$PA" --redis-url "redis://127.0.0.1:$RP/0"
loadgen "redis log, 1 instance, $N streams" "http://127.0.0.1:$PA" "${PIDS[-1]}"
cleanup
rm -rf "$RDIR"

# 3. Redis Streams log, two instances, N/2 streams each; publishes go to the first. Server RSS
# and CPU columns are the first instance's (it holds half the streams).
start_redis
PA=$(free_port); PB=$(free_port)
start_server "$PA" --redis-url "redis://127.0.0.1:$RP/0"
PID_A=${PIDS[-1]}
start_server "$PB" --redis-url "redis://127.0.0.1:$RP/0"
loadgen "redis log, 2 instances, $N streams" "http://127.0.0.1:$PA" "$PID_A" \
  --stream-url "http://127.0.0.1:$PA" --stream-url "http://127.0.0.1:$PB"
cleanup
rm -rf "$RDIR"

say "raw reports: $OUT"
"$WORK/loadgen" --table-from "$OUT"
