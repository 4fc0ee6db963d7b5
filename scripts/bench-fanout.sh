#!/usr/bin/env bash
# Fan-out latency, the shape of Electric's ds-bench ("Durable Streams"): ONE publisher publishing
# FANOUT_RATE events per second (default 50) for FANOUT_SECS (default 20, after WARMUP_SECS = 1 s
# of warm-up events that count for loss but not for latency), each event stamped with its send
# time (Unix µs); N subscribers hold `/events` streams on loopback; every (subscriber, event)
# receipt is one send→receipt latency sample. Per row: p50 / p90 / p99 / p99.9 / max in ms, the
# sample count, missing and duplicate receipts (a row with any fails: exit status 1).
#
# Each row is a fresh server (SERVER_BIN, default target/release/sse-status; this script does NOT
# build it) on a free 127.0.0.1 port, then one `loadgen --fanout-rate` run, then the server is
# stopped. BEFORE_BIN=/path/to/other/sse-status runs every row against that binary too, right
# after the same row against SERVER_BIN (A B A B ...), so both see the same machine.
#
#   scripts/bench-fanout.sh                      # subscribers 1 and 1000
#   scripts/bench-fanout.sh 1 100 10000          # other rows
#   BEFORE_BIN=/work/before/target/release/sse-status ROUNDS=3 scripts/bench-fanout.sh
#   SERVER_BIN=... FANOUT_RATE=50 FANOUT_SECS=20 WARMUP_SECS=1 HEARTBEAT_MS=300000 THREADS=1 ...
#   SKIP_BUILD=1 ...                             # use the loadgen already built
#
# Builds loadgen (unless SKIP_BUILD=1) with `cargo build --release -p loadgen --bin loadgen` in
# ${CARGO_TARGET_DIR:-target}. The heartbeat is long (HEARTBEAT_MS, default 300 s) so pings stay
# out of the measured phase. Up to 5,000 subscribers connect from 127.0.0.1 (--no-bind); more use
# loadgen's source addresses 127.0.0.2, .3, ... (5,000 each). Raw output (each row's JSON line
# and loadgen's summary) is appended to bench/fanout-<commit>.txt; the summary table goes to
# stdout (and the raw file). Every process it starts is stopped by its PID; every wait is
# bounded; load targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ROWS=("$@")
[ ${#ROWS[@]} -eq 0 ] && ROWS=(1 1000)
FANOUT_RATE=${FANOUT_RATE:-50}
FANOUT_SECS=${FANOUT_SECS:-20}
WARMUP_SECS=${WARMUP_SECS:-1}
HEARTBEAT_MS=${HEARTBEAT_MS:-300000}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-1}
SERVER_BIN=${SERVER_BIN:-target/release/sse-status}
for v in "${ROWS[@]}" "$HEARTBEAT_MS" "$THREADS" "$ROUNDS"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "not a number: $v" >&2; exit 2; }
done
for v in "$FANOUT_RATE" "$FANOUT_SECS" "$WARMUP_SECS"; do
  [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "not a number: $v" >&2; exit 2; }
done
WORK=target/bench-fanout
mkdir -p "$WORK" bench
say() { printf '\033[1;34m[fanout]\033[0m %s\n' "$*" >&2; }

# The servers are not built here (their build is slow and may be mid-change): they must exist.
for b in "$SERVER_BIN" ${BEFORE_BIN:+"$BEFORE_BIN"}; do
  if [ ! -x "$b" ]; then
    echo "missing server binary $b: this script does not build the server; build it" >&2
    echo "(cargo build --release -p sse-status --features app-server --bin sse-status) or set SERVER_BIN" >&2
    exit 2
  fi
done
if [ -z "${SKIP_BUILD:-}" ]; then
  say "building loadgen (release) in ${CARGO_TARGET_DIR:-target}"
  cargo build --release -p loadgen --bin loadgen
fi
LOADGEN_BIN=${CARGO_TARGET_DIR:-target}/release/loadgen
[ -x "$LOADGEN_BIN" ] || { echo "missing $LOADGEN_BIN (build it, or unset SKIP_BUILD)" >&2; exit 2; }
# Private copies: other builds may rewrite the target directories while this runs.
cp "$LOADGEN_BIN" "$WORK/loadgen"
cp "$SERVER_BIN" "$WORK/sse-status-current"
SERVERS=(current)
if [ -n "${BEFORE_BIN:-}" ]; then
  cp "$BEFORE_BIN" "$WORK/sse-status-before"
  SERVERS=(current before)
fi
LOADGEN=$WORK/loadgen
COMMIT=$(git rev-parse --short HEAD)
DIRTY=""
git diff --quiet HEAD -- src Cargo.toml tools/loadgen || DIRTY=" (+ uncommitted changes in src/, Cargo.toml or tools/loadgen)"
RAW=bench/fanout-$COMMIT.txt
# Long enough for connecting, the warm-up, the publishing and the drain; loadgen ends by itself.
TIMEOUT_SECS=$(awk -v s="$FANOUT_SECS" -v w="$WARMUP_SECS" 'BEGIN { t = s + w; print int(t) + (t > int(t)) + 90 }')

# A fresh publish token per run (loadgen reads it from the environment).
TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export LOADGEN_PUBLISH_TOKEN=$TOKEN

SPID="" LPID=""
stop_pid() {
  local p=$1 i
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() { stop_pid "$LPID"; LPID=""; stop_pid "$SPID"; SPID=""; }
trap cleanup EXIT

free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 12000 ))   # below the ephemeral range (32768+)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2; return 1
}

# start_server BIN PORT LOG N: a fresh server with the hard open-files limit, up once /healthz
# answers (within 15 s).
start_server() {
  local bin=$1 port=$2 log=$3 n=$4 extra=() deadline
  [ "$n" -gt 19500 ] && extra=(--max-connections "$n")
  (
    ulimit -n "$(ulimit -Hn)"
    exec env LEPTOS_OUTPUT_NAME=sse-status LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
      RUST_LOG=warn "$bin" --addr "127.0.0.1:$port" --heartbeat-ms "$HEARTBEAT_MS" \
      --publish-token "$TOKEN" "${extra[@]}"
  ) >"$log" 2>&1 &
  SPID=$!
  deadline=$(( SECONDS + 15 ))
  while [ "$SECONDS" -lt "$deadline" ]; do
    curl -sf -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    kill -0 "$SPID" 2>/dev/null || { echo "server exited:" >&2; cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "server did not answer /healthz on $port within 15 s" >&2
  return 1
}

# run_loadgen PORT N LABEL OUT LOG: one fan-out run, stopped by its PID if it overruns its own
# --timeout-secs by 30 s; returns its exit status (124 when stopped).
run_loadgen() {
  local port=$1 n=$2 label=$3 out=$4 log=$5 bind=() i rc=0
  [ "$n" -le 5000 ] && bind=(--no-bind)
  (
    ulimit -n "$(ulimit -Hn)"
    exec "$LOADGEN" --url "http://127.0.0.1:$port" --connections "$n" --server-pid "$SPID" \
      --fanout-rate "$FANOUT_RATE" --fanout-secs "$FANOUT_SECS" --fanout-warmup-secs "$WARMUP_SECS" \
      --idle-secs 0 --settle-ms 1000 --threads "$THREADS" --timeout-secs "$TIMEOUT_SECS" \
      "${bind[@]}" --label "$label" --json
  ) >"$out" 2>"$log" &
  LPID=$!
  for i in $(seq 1 $(( (TIMEOUT_SECS + 30) * 10 ))); do
    kill -0 "$LPID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$LPID" 2>/dev/null; then
    say "loadgen still running $(( TIMEOUT_SECS + 30 )) s after its start: stopping it"
    stop_pid "$LPID"
    rc=124
  else
    wait "$LPID" || rc=$?
  fi
  LPID=""
  return "$rc"
}

CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
  echo "## $(date -u '+%Y-%m-%d %H:%M:%S UTC'): scripts/bench-fanout.sh ${ROWS[*]}"
  echo "commit $COMMIT$DIRTY; $(nproc) cores, $CPU_MODEL, kernel $(uname -r)"
  echo "rate $FANOUT_RATE events/s, $FANOUT_SECS s measured after $WARMUP_SECS s of warm-up" \
    "(excluded from the latency figures); heartbeat $HEARTBEAT_MS ms; loadgen threads $THREADS;" \
    "rounds $ROUNDS"
  echo "current = $SERVER_BIN${BEFORE_BIN:+; before = $BEFORE_BIN}"
  echo
} >>"$RAW"

RESULTS=()
failed=0
for round in $(seq 1 "$ROUNDS"); do
  for n in "${ROWS[@]}"; do
    for srv in "${SERVERS[@]}"; do
      tag="r$round-n$n-$srv"
      port=$(free_port)
      log="$WORK/server-$tag.log"
      load=$(cut -d' ' -f1-3 /proc/loadavg)
      start_server "$WORK/sse-status-$srv" "$port" "$log" "$n"
      say "round $round, $n subscribers, $srv (server pid $SPID, port $port; load $load)"
      rc=0
      run_loadgen "$port" "$n" "$srv" "$WORK/$tag.json" "$WORK/loadgen-$tag.log" || rc=$?
      alive=$(kill -0 "$SPID" 2>/dev/null && echo yes || echo "NO (it exited during the run)")
      stop_pid "$SPID"
      SPID=""
      warns=$(grep -cE 'WARN|ERROR|panicked' "$log" || true)
      summary=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/loadgen-$tag.log" | grep -v ' INFO ' || true)
      printf '%s\n' "$summary" | grep -E '^(fan-out|result)' >&2 || true
      {
        echo "### round $round: $n subscribers, $srv; loadgen exit $rc; load before $load;" \
          "server alive at the end: $alive; server warning lines: $warns"
        cat "$WORK/$tag.json"
        printf '%s\n\n' "$summary"
      } >>"$RAW"
      [ "$rc" -eq 0 ] || failed=1
      [ -s "$WORK/$tag.json" ] && RESULTS+=("$WORK/$tag.json")
    done
  done
done

if [ ${#RESULTS[@]} -gt 0 ]; then
  python3 - "${RESULTS[@]}" <<'PY' | tee -a "$RAW"
import json, statistics, sys
rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        line = f.readline().strip()
    if line:
        rows.append(json.loads(line))
def cell(v, fmt):
    return "n/a" if v is None else format(v, fmt)
print("| server | subscribers | events | rate /s | samples | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | missing | duplicate | server µs / event | result |")
print("|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|")
for r in rows:
    p = r.get("fanout_phase") or {}
    l = p.get("latency") or {}
    verdict = "PASS" if r.get("ok") else "**FAIL**: " + "; ".join(r.get("problems", []))
    print(f"| {r.get('label') or ''} | {r['connections']} | {p.get('accepted', 0)} "
          f"| {cell(p.get('achieved_rate'), '.2f')} | {l.get('samples', 0)} "
          f"| {cell(l.get('p50_ms'), '.3f')} | {cell(l.get('p90_ms'), '.3f')} | {cell(l.get('p99_ms'), '.3f')} "
          f"| {cell(l.get('p999_ms'), '.3f')} | {cell(l.get('max_ms'), '.3f')} "
          f"| {p.get('missing', 'n/a')} | {p.get('duplicates', 'n/a')} "
          f"| {cell(p.get('server_us_per_event'), '.2f')} | {verdict} |")
# Several rounds: the median of each figure per server and row.
groups = {}
for r in rows:
    l = (r.get("fanout_phase") or {}).get("latency")
    if l:
        groups.setdefault((r.get("label") or "", r["connections"]), []).append(l)
if any(len(g) > 1 for g in groups.values()):
    print()
    print("| server | subscribers | runs | median p50 ms | median p90 ms | median p99 ms | median p99.9 ms | median max ms |")
    print("|:---|---:|---:|---:|---:|---:|---:|---:|")
    for (label, n), ls in groups.items():
        med = lambda k: statistics.median(x[k] for x in ls)
        print(f"| {label} | {n} | {len(ls)} | {med('p50_ms'):.3f} | {med('p90_ms'):.3f} | {med('p99_ms'):.3f} "
              f"| {med('p999_ms'):.3f} | {med('max_ms'):.3f} |")
PY
  echo >>"$RAW"
fi
say "raw results appended to $RAW (loadgen logs: $WORK/)"
exit "$failed"
