#!/usr/bin/env bash
# Private topics benchmark (issue 16): one release sse-status with the authorizer on
# (`--auth-secret`), N streams (default 19,500), stream i subscribed to `bench/<i % TOPICS>`
# (default 100 topics, 195 subscribers each) with its topic's signed access token in the
# `sse_access` cookie. In the same run, against the same held streams:
#   (a) BROADCASTS untargeted publishes (every stream gets each): server CPU per delivered event
#       and per publish;
#   (b) TOPIC_PUBLISHES publishes, each to one topic (publish j → `bench/<j % TOPICS>`): server
#       CPU per delivered event and per publish, so per-publish work can be compared with (a)
#       (100× the deliveries per publish);
#   (b') EMPTY_PUBLISHES publishes to a topic nobody reads: the fixed server CPU of one publish
#       (request, log, encoding) before any delivery, to split (a) and (b) into fixed + per
#       delivered event;
#   (b'') TOPIC_ROUNDS rounds, each publishing one event to EVERY topic (ROUND_CONCURRENCY
#       requests in flight on kept-alive connections), the next round once every stream got its
#       topic's event: one round delivers to all N streams, as one broadcast does, so server
#       CPU per delivered event compares like with like (same deliveries per round, readers
#       busy the same way); (b) instead shows per-publish work ∝ a topic's subscribers;
#   (c) server memory per stream (VmRSS after connecting − before, / streams);
#   (d) PAIRS paired runs (default 5) against the same server: loadgen again, each run PAIR_SIZE
#       broadcasts then at once PAIR_SIZE topic rounds (default 4), nothing else between them.
#       This machine's cost per write drifts by up to a third within minutes, and (a) and (b'')
#       are ~20 s apart: a pair measured within a second sees the same machine. Per pair the
#       ratio topic rounds ÷ broadcast; over all pairs the median and the ratio of the means.
# The heartbeat is long (HEARTBEAT_MS, default 300 s) so no ping lands in the measured phases
# (loadgen counts any that do as delivered events in both).
#
#   scripts/bench-topics.sh
#   SKIP_BUILD=1 BIN_DIR=/some/target/release scripts/bench-topics.sh   # prebuilt binaries
#   N=19500 TOPICS=100 BROADCASTS=20 TOPIC_PUBLISHES=2000 EMPTY_PUBLISHES=500 TOPIC_ROUNDS=20 \
#     ROUND_CONCURRENCY=8 GAP_MS=5 PAIRS=5 PAIR_SIZE=4 ...
#   RUN=2 ...       # raw results to bench/topics-<commit>-run2.jsonl (several runs of one commit)
#   PROFILE=1 ...   # also `perf stat` + `perf record` of the server in each phase (perturbs the
#                   # figures of that run: use it for where the time goes, not for the row)
#
# Builds (unless SKIP_BUILD=1) the server binary alone (no wasm: streams need none) and loadgen,
# in ${CARGO_TARGET_DIR:-target}. Raw results: bench/topics-<commit>[-run<RUN>].jsonl (the loadgen
# report, one JSON line; one per pair and the pairs' summary; then one line with what this script
# measured); loadgen's summary and the server log stay in target/bench-topics/. Every process it
# starts is stopped by its PID; every wait is bounded; load targets 127.0.0.0/8 only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

N=${N:-19500}
TOPICS=${TOPICS:-100}
BROADCASTS=${BROADCASTS:-20}
TOPIC_PUBLISHES=${TOPIC_PUBLISHES:-2000}
EMPTY_PUBLISHES=${EMPTY_PUBLISHES:-500}
TOPIC_ROUNDS=${TOPIC_ROUNDS:-20}
ROUND_CONCURRENCY=${ROUND_CONCURRENCY:-8}
GAP_MS=${GAP_MS:-5}
HEARTBEAT_MS=${HEARTBEAT_MS:-300000}
TIMEOUT_SECS=${TIMEOUT_SECS:-600}
PAIRS=${PAIRS:-5}
PAIR_SIZE=${PAIR_SIZE:-4}
for v in "$N" "$TOPICS" "$BROADCASTS" "$TOPIC_PUBLISHES" "$EMPTY_PUBLISHES" "$TOPIC_ROUNDS" \
  "$ROUND_CONCURRENCY" "$GAP_MS" "$HEARTBEAT_MS" "$TIMEOUT_SECS" "$PAIRS" "$PAIR_SIZE"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "not a number: $v" >&2; exit 2; }
done
[[ "${RUN:-}" =~ ^[A-Za-z0-9_]*$ ]] || { echo "RUN: letters, digits and _ only: $RUN" >&2; exit 2; }
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
WORK=target/bench-topics
mkdir -p "$WORK" bench
say() { printf '\033[1;34m[topics]\033[0m %s\n' "$*" >&2; }

if [ -z "${SKIP_BUILD:-}" ]; then
  say "building release (sse-status --features app-server; loadgen) in ${CARGO_TARGET_DIR:-target}"
  cargo build --release -p sse-status --features app-server --bin sse-status
  cargo build --release -p loadgen --bin loadgen
fi
for b in sse-status loadgen; do
  [ -x "$BIN_DIR/$b" ] || { echo "missing $BIN_DIR/$b (build it, or set BIN_DIR)" >&2; exit 2; }
done
# Private copies: other builds may rewrite the target directory while this runs.
cp "$BIN_DIR/sse-status" "$WORK/sse-status"
cp "$BIN_DIR/loadgen" "$WORK/loadgen"
SERVER=$WORK/sse-status
LOADGEN=$WORK/loadgen
COMMIT="$(git rev-parse --short HEAD)"
DIRTY=false
git diff --quiet HEAD -- src Cargo.toml tools/loadgen || DIRTY=true
RAW=bench/topics-$COMMIT${RUN:+-run$RUN}${PROFILE:+-profile}.jsonl
: >"$RAW"

# Fresh secrets per run, passed through the environment (never on a command line).
SSE_AUTH_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
SSE_PUBLISH_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export SSE_AUTH_SECRET SSE_PUBLISH_TOKEN
export LOADGEN_ACCESS_SECRET=$SSE_AUTH_SECRET LOADGEN_PUBLISH_TOKEN=$SSE_PUBLISH_TOKEN

SPID="" LPID="" PERF_PIDS=()
stop_pid() {
  local p=$1 i
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
stop_perf() {
  local p i
  for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PERF_PIDS[@]}"; do
    for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$p"
  done
  PERF_PIDS=()
}
cleanup() { stop_perf; stop_pid "$LPID"; LPID=""; stop_pid "$SPID"; SPID=""; }
trap cleanup EXIT

free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 12000 ))   # below the ephemeral range (32768+)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2; return 1
}

# Busy share (%) of all cores over 2 s, from /proc/stat.
cpu_busy_pct() {
  local a b total=0 idle i
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 2
  read -r -a b < <(grep '^cpu ' /proc/stat)
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  idle=$(( b[4] - a[4] + b[5] - a[5] ))
  [ "$total" -gt 0 ] && echo $(( 100 * (total - idle) / total )) || echo 0
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

LOAD_BEFORE=$(loadavg)
BUSY_BEFORE=$(cpu_busy_pct)
say "machine: $(nproc) cores, $(uname -r); load $LOAD_BEFORE; other processes busy $BUSY_BEFORE % just before"

PORT=$(free_port)
(
  ulimit -n "$(ulimit -Hn)"
  exec env LEPTOS_OUTPUT_NAME=sse-status LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
    RUST_LOG=warn "$SERVER" --addr "127.0.0.1:$PORT" --heartbeat-ms "$HEARTBEAT_MS" \
    --max-connections "$N"
) >"$WORK/server.log" 2>&1 &
SPID=$!
for i in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$SPID" 2>/dev/null || { echo "server exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  [ "$i" -eq 100 ] && { echo "server did not listen on $PORT within 10 s" >&2; exit 1; }
  sleep 0.1
done
say "server pid $SPID on 127.0.0.1:$PORT (authorizer on, heartbeat $HEARTBEAT_MS ms)"

# The authorizer is on: a stream asking for a topic without a token is refused.
NO_TOKEN=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$PORT/events?topic=bench/0" || true)
say "a topic stream without a token: HTTP $NO_TOKEN (want 401)"

# One loadgen run against this server: the settings every run shares, then its own.
run_loadgen() {
  ulimit -n "$(ulimit -Hn)"
  exec "$LOADGEN" --url "http://127.0.0.1:$PORT" --connections "$N" --server-pid "$SPID" \
    --topics "$TOPICS" --round-concurrency "$ROUND_CONCURRENCY" --broadcast-gap-ms "$GAP_MS" \
    --idle-secs 0 --timeout-secs "$TIMEOUT_SECS" --json "$@"
}
# The server's own count of open streams.
open_streams() { curl -s -m 5 "http://127.0.0.1:$PORT/metrics" | awk '/^sse_connections_open / {print $2}' || true; }

(
  run_loadgen --broadcasts "$BROADCASTS" --topic-publishes "$TOPIC_PUBLISHES" \
    --empty-publishes "$EMPTY_PUBLISHES" --topic-rounds "$TOPIC_ROUNDS" --settle-ms 2000 \
    --label "topics: $N streams over $TOPICS topics, authorizer on"
) >"$WORK/loadgen.json" 2>"$WORK/loadgen.log" &
LPID=$!

# PROFILE=1: follow loadgen's phases in its log; perf on the server for each.
profile_phases() {
  local marks=("broadcasting" "publishing to one topic at a time" "publishing to a topic nobody reads"
    "publishing rounds to every topic")
  local names=(broadcast topic empty rounds) k i
  for k in 0 1 2 3; do
    for i in $(seq 1 $(( TIMEOUT_SECS * 50 ))); do
      grep -q "${marks[$k]}" "$WORK/loadgen.log" 2>/dev/null && break
      kill -0 "$LPID" 2>/dev/null || { stop_perf; return 0; }
      sleep 0.02
    done
    stop_perf
    say "perf: ${names[$k]} phase"
    perf stat -e task-clock,context-switches,cpu-migrations -p "$SPID" \
      -o "$WORK/perf-stat-${names[$k]}.txt" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
    perf record -q -F 999 -g -p "$SPID" -o "$WORK/perf-${names[$k]}.data" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
  done
}

# Once every stream is held: the server's own count of one topic's subscribers.
PRESENCE=""
for i in $(seq 1 $(( TIMEOUT_SECS * 10 ))); do
  grep -q "connect phase over" "$WORK/loadgen.log" 2>/dev/null && break
  kill -0 "$LPID" 2>/dev/null || break
  sleep 0.1
done
if grep -q "connect phase over" "$WORK/loadgen.log" 2>/dev/null; then
  PRESENCE=$(curl -s -m 5 -H "Authorization: Bearer $SSE_PUBLISH_TOKEN" \
    "http://127.0.0.1:$PORT/api/presence?topic=bench/7" || true)
  say "presence of bench/7: $PRESENCE"
fi

[ -n "${PROFILE:-}" ] && profile_phases
# loadgen ends by its own --timeout-secs; this bound is only a backstop.
for i in $(seq 1 $(( (TIMEOUT_SECS + 60) * 10 ))); do
  kill -0 "$LPID" 2>/dev/null || break
  sleep 0.1
done
rc=0
if kill -0 "$LPID" 2>/dev/null; then
  say "loadgen still running after $(( TIMEOUT_SECS + 60 )) s: stopping it"
  stop_pid "$LPID"
  rc=124
else
  wait "$LPID" || rc=$?
fi
LPID=""
stop_perf

# (d) Paired runs: broadcasts and topic rounds back to back, PAIRS times, same server.
PAIR_FILES=()
if [ "$rc" -eq 0 ] && [ "$PAIRS" -gt 0 ]; then
  for p in $(seq 1 "$PAIRS"); do
    # The previous run's streams are gone first (the server counts them out), bounded.
    for i in $(seq 1 300); do [ "$(open_streams)" = "0" ] && break; sleep 0.1; done
    say "pair $p of $PAIRS: $PAIR_SIZE broadcasts, then $PAIR_SIZE topic rounds"
    (
      run_loadgen --broadcasts "$PAIR_SIZE" --topic-publishes 0 --empty-publishes 0 \
        --topic-rounds "$PAIR_SIZE" --settle-ms 1000 \
        --label "topics pair $p: $N streams over $TOPICS topics"
    ) >"$WORK/pair-$p.json" 2>"$WORK/pair-$p.log" &
    LPID=$!
    prc=0
    wait "$LPID" || prc=$?
    LPID=""
    if [ "$prc" -ne 0 ]; then
      say "pair $p: loadgen exited $prc"
      sed 's/\x1b\[[0-9;]*m//g' "$WORK/pair-$p.log" | grep -v ' INFO ' >&2 || true
      rc=$prc
      break
    fi
    PAIR_FILES+=("$WORK/pair-$p.json")
  done
fi
PAIRS_LINE=null
if [ "${#PAIR_FILES[@]}" -gt 0 ]; then
  PAIRS_LINE=$(python3 - "${PAIR_FILES[@]}" <<'PY'
import json, statistics, sys
pairs = []
for path in sys.argv[1:]:
    r = json.loads(open(path).readline())
    b, t = r.get("server_us_per_event"), (r.get("round_phase") or {}).get("server_us_per_event")
    complete = r.get("ok") and r.get("missing") == 0 and (r.get("round_phase") or {}).get("missing") == 0
    pairs.append({"broadcast_us": b, "rounds_us": t, "ratio": t / b if b and t else None, "all_delivered": bool(complete)})
measured = [p for p in pairs if p["ratio"] is not None]
ratios = [p["ratio"] for p in measured]
out = {"part": "pairs", "pairs": pairs,
       "median_ratio": statistics.median(ratios) if ratios else None,
       "ratio_of_means": (sum(p["rounds_us"] for p in measured) / sum(p["broadcast_us"] for p in measured)) if measured else None}
for i, p in enumerate(pairs, 1):
    if p["ratio"] is None:
        print(f"pair {i}: no server CPU figures", file=sys.stderr)
        continue
    print(f"pair {i}: server CPU per delivered event {p['rounds_us']:.2f} µs topic rounds vs {p['broadcast_us']:.2f} µs broadcast "
          f"(ratio {p['ratio']:.3f}; every event delivered: {p['all_delivered']})", file=sys.stderr)
if ratios:
    print(f"pairs: median ratio {out['median_ratio']:.3f}, ratio of the means {out['ratio_of_means']:.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} pairs)", file=sys.stderr)
print(json.dumps(out))
PY
  ) || PAIRS_LINE=null
fi

SERVER_ALIVE=$(kill -0 "$SPID" 2>/dev/null && echo true || echo false)
OPEN=$(open_streams)
stop_pid "$SPID"
SPID=""
LOAD_AFTER=$(loadavg)
WARNS=$(grep -cE 'WARN|ERROR|panicked' "$WORK/server.log" || true)

cat "$WORK/loadgen.json" >>"$RAW"
for f in "${PAIR_FILES[@]}"; do cat "$f" >>"$RAW"; done
[ "$PAIRS_LINE" = null ] || printf '%s\n' "$PAIRS_LINE" >>"$RAW"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
printf '{"part":"topics-script","commit":"%s","uncommitted_changes":%s,"nproc":%s,"kernel":"%s","cpu_model":"%s","streams":%s,"topics":%s,"topic_rounds":%s,"round_concurrency":%s,"heartbeat_ms":%s,"gap_ms":%s,"no_token_status":"%s","presence_bench_7":%s,"loadavg_before":"%s","busy_pct_before":%s,"loadavg_after":"%s","server_alive_at_end":%s,"server_open_streams_at_end":"%s","server_warn_lines":%s,"loadgen_rc":%s}\n' \
  "$COMMIT" "$DIRTY" "$(nproc)" "$(uname -r)" "$CPU_MODEL" "$N" "$TOPICS" "$TOPIC_ROUNDS" "$ROUND_CONCURRENCY" "$HEARTBEAT_MS" "$GAP_MS" \
  "$NO_TOKEN" "${PRESENCE:-null}" "$LOAD_BEFORE" "$BUSY_BEFORE" "$LOAD_AFTER" "$SERVER_ALIVE" "$OPEN" \
  "$WARNS" "$rc" >>"$RAW"

sed 's/\x1b\[[0-9;]*m//g' "$WORK/loadgen.log" | grep -v ' INFO ' >&2 || true
say "load before $LOAD_BEFORE, after $LOAD_AFTER; server warnings: $WARNS"
say "raw results: $RAW (loadgen log: $WORK/loadgen.log)"
exit "$rc"
