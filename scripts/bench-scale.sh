#!/usr/bin/env bash
# Scale benchmarks on this one box (issue 11), against release builds and a real Redis:
#
#   1. 78,000 streams: 4 sse-status processes sharing one port (--reuse-port, SO_REUSEPORT),
#      publishes fanned out to all of them through one Redis Streams log, the load spread over 4
#      loadgen processes (19,500 each; one process may hold ~19,900 sockets here). Reports
#      memory per stream (sum of the 4 servers' VmRSS), connect time, one broadcast's p50/p99
#      to all 78,000 (20 broadcasts, published by this script), and idle CPU.
#   2. A reconnect storm: 19,500 streams on one instance + Redis, the instance stopped with
#      SIGTERM (drain: every stream gets `draining` with a jittered hint) and its successor
#      started on the same port: time until 99 % / 100 % are back, refusals, resyncs, replays,
#      and whether every stream got every event published during the storm.
#
#   scripts/bench-scale.sh                 # both
#   PARTS=storm scripts/bench-scale.sh     # one of: scale storm
#   SCALE_N=19500 INSTANCES=4 STORM_N=19500 SKIP_BUILD=1 ...
#   SERVER_BIN=/path/to/older/sse-status SKIP_BUILD=1 ...   # another build (an A/B's *before*)
#
# Raw results: bench/scale-<commit>.jsonl (loadgen reports, one JSON line each, plus one line
# per part with what this script measured). Every process it starts is stopped by its PID;
# every wait is bounded; load targets 127.0.0.0/8 only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

read -r -a PARTS <<<"${PARTS:-scale storm}"
INSTANCES=${INSTANCES:-4}
PER_LOADGEN=${SCALE_N:-19500}
LOADGENS=${LOADGENS:-4}
STORM_N=${STORM_N:-19500}
BROADCASTS=${BROADCASTS:-20}
IDLE_SECS=${IDLE_SECS:-20}
TOKEN=bench
WORK=target/bench-scale
mkdir -p "$WORK" bench
say() { printf '\033[1;34m[scale]\033[0m %s\n' "$*" >&2; }
command -v redis-server >/dev/null || { echo "redis-server missing: run scripts/setup.sh" >&2; exit 2; }

if [ -z "${SKIP_BUILD:-}" ]; then
  say "building release (cargo leptos build --release --project sse-status; loadgen)"
  cargo leptos build --release --project sse-status
  cargo build --release -p loadgen --bin loadgen
fi
cp "${SERVER_BIN:-target/release/sse-status}" "$WORK/sse-status"
cp target/release/loadgen "$WORK/loadgen"
SERVER=$WORK/sse-status
LOADGEN=$WORK/loadgen
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo '+dirty')"
RAW=bench/scale-${COMMIT%+dirty}${SERVER_BIN:+-other-build}.jsonl
: >"$RAW"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap cleanup EXIT

free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}
wait_port() {
  local i
  for i in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1" >&2; return 1
}
# The sum over PIDs of VmRSS (KiB) and of CPU time (ns, schedstat of every thread).
rss_kib() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status") )); done; echo "$t"; }
cpu_ns() { local t=0 p f; for p in "$@"; do for f in /proc/"$p"/task/*/schedstat; do t=$(( t + $(cut -d' ' -f1 "$f") )); done; done; echo "$t"; }

start_redis() {
  REDIS_DIR=$(mktemp -d "$WORK/redis.XXXX")
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --save '' --appendonly yes \
    >"$REDIS_DIR/redis.log" 2>&1 &
  PIDS+=($!)
  wait_port "$REDIS_PORT"
}

# start_instance PORT LOG [FLAGS...] -> sets LAST_PID
start_instance() {
  local port=$1 log=$2
  shift 2
  (
    ulimit -n "$(ulimit -Hn)"
    exec env LEPTOS_OUTPUT_NAME=sse-status LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
      RUST_LOG=warn "$SERVER" --addr "127.0.0.1:$port" --publish-token "$TOKEN" \
      --redis-url "redis://127.0.0.1:$REDIS_PORT/0" "$@"
  ) >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

scale() {
  local total=$(( PER_LOADGEN * LOADGENS )) port i
  say "scale: $total streams over $INSTANCES instances on one port, $LOADGENS loadgens"
  start_redis
  port=$(free_port)
  local spids=()
  for i in $(seq 1 "$INSTANCES"); do
    start_instance "$port" "$WORK/scale-server-$i.log" --reuse-port --heartbeat-ms 5000
    spids+=("$LAST_PID")
  done
  wait_port "$port"
  sleep 1
  local rss0 t0 lpids=() k
  rss0=$(rss_kib "${spids[@]}")
  t0=$(date +%s%N)
  for k in $(seq 0 $(( LOADGENS - 1 ))); do
    (
      ulimit -n "$(ulimit -Hn)"
      # Refused streams (an instance full under the uneven SO_REUSEPORT spread) retry and land
      # on another instance, as a browser's would.
      exec "$LOADGEN" --url "http://127.0.0.1:$port" --connections "$PER_LOADGEN" \
        --bind-from "127.0.$(( k + 1 )).2" --observe --reconnect --broadcasts "$BROADCASTS" \
        --idle-secs 0 --settle-ms 0 --timeout-secs 300 --broadcast-timeout-ms 20000 \
        --label "scale loadgen $k" --json
    ) >"$WORK/scale-loadgen-$k.json" 2>"$WORK/scale-loadgen-$k.log" &
    lpids+=($!)
    PIDS+=($!)
  done
  # All held: every loadgen finished its connect phase.
  for i in $(seq 1 1200); do
    local done_n=0
    for k in $(seq 0 $(( LOADGENS - 1 ))); do
      grep -q "connect phase over" "$WORK/scale-loadgen-$k.log" 2>/dev/null && done_n=$(( done_n + 1 ))
    done
    [ "$done_n" -eq "$LOADGENS" ] && break
    sleep 0.1
  done
  local t1 connect_s
  t1=$(date +%s%N)
  connect_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}')
  local open_total=0 per_instance=""
  sleep 2
  for p in "${spids[@]}"; do :; done
  local rss1 per_stream
  rss1=$(rss_kib "${spids[@]}")
  per_stream=$(awk -v a="$rss0" -v b="$rss1" -v n="$total" 'BEGIN {printf "%.2f", (b - a) / n}')
  # Streams per instance, from each instance's own /metrics (one request to each would need
  # its own port: read the fleet gauge through the shared port instead).
  local fleet
  fleet=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^sse_fleet_connections_open / {print $2}')
  say "all held in ${connect_s} s; fleet gauge $fleet; RSS ${per_stream} KiB/stream"
  say "idle window ${IDLE_SECS} s"
  local c0 c1 idle_pct
  c0=$(cpu_ns "${spids[@]}")
  sleep "$IDLE_SECS"
  c1=$(cpu_ns "${spids[@]}")
  idle_pct=$(awk -v a="$c0" -v b="$c1" -v s="$IDLE_SECS" 'BEGIN {printf "%.2f", 100 * (b - a) / 1e9 / s}')
  say "idle CPU ${idle_pct} % of one core (all instances)"
  say "publishing $BROADCASTS broadcasts, one every 2 s"
  local b
  for b in $(seq 0 $(( BROADCASTS - 1 ))); do
    curl -s -o /dev/null -w '%{http_code} ' -X POST -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' \
      -d "{\"event\":\"bench\",\"data\":{\"t\":$(date +%s%N),\"i\":$b}}" \
      "http://127.0.0.1:$port/api/publish" >&2
    sleep 2
  done
  echo >&2
  local rc=0
  for p in "${lpids[@]}"; do wait "$p" || rc=1; done
  for k in $(seq 0 $(( LOADGENS - 1 ))); do cat "$WORK/scale-loadgen-$k.json" >>"$RAW"; tail -n 8 "$WORK/scale-loadgen-$k.log" >&2; done
  printf '{"part":"scale","streams":%s,"instances":%s,"loadgens":%s,"all_held_secs":%s,"rss_before_kib":%s,"rss_after_kib":%s,"rss_per_stream_kib":%s,"fleet_gauge":"%s","idle_secs":%s,"idle_cpu_pct_all_instances":%s,"broadcasts":%s,"loadgens_ok":%s}\n' \
    "$total" "$INSTANCES" "$LOADGENS" "$connect_s" "$rss0" "$rss1" "$per_stream" "$fleet" "$IDLE_SECS" "$idle_pct" "$BROADCASTS" "$([ $rc -eq 0 ] && echo true || echo false)" >>"$RAW"
  cleanup
  return $rc
}

storm() {
  say "storm: $STORM_N streams, SIGTERM, successor on the same port"
  start_redis
  local port
  port=$(free_port)
  start_instance "$port" "$WORK/storm-a.log" --heartbeat-ms 5000
  local a=$LAST_PID
  wait_port "$port"
  (
    ulimit -n "$(ulimit -Hn)"
    exec "$LOADGEN" --url "http://127.0.0.1:$port" --connections "$STORM_N" \
      --publish-token "$TOKEN" --broadcasts "$BROADCASTS" --idle-secs 0 --settle-ms 1000 \
      --storm-secs 60 --storm-interval-ms 100 --timeout-secs 180 --label storm --json
  ) >"$WORK/storm-loadgen.json" 2>"$WORK/storm-loadgen.log" &
  local l=$!
  PIDS+=("$l")
  local i
  for i in $(seq 1 600); do grep -q "waiting for the storm" "$WORK/storm-loadgen.log" && break; sleep 0.1; done
  local t_term
  t_term=$(date +%s%N)
  kill -TERM "$a"
  wait "$a" || true
  local t_exit
  t_exit=$(date +%s%N)
  start_instance "$port" "$WORK/storm-b.log" --heartbeat-ms 5000
  local rc=0
  wait "$l" || rc=$?
  cat "$WORK/storm-loadgen.json" >>"$RAW"
  tail -n 10 "$WORK/storm-loadgen.log" >&2
  printf '{"part":"storm","streams":%s,"old_instance_exit_secs_after_sigterm":%s,"loadgen_rc":%s}\n' \
    "$STORM_N" "$(awk -v a="$t_term" -v b="$t_exit" 'BEGIN {printf "%.2f", (b - a) / 1e9}')" "$rc" >>"$RAW"
  cleanup
  return $rc
}

status=0
for part in "${PARTS[@]}"; do
  case "$part" in
    scale) scale || status=1 ;;
    storm) storm || status=1 ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
say "raw results: $RAW"
exit "$status"
