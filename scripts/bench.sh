#!/usr/bin/env bash
# Benchmark matrix for sse-status: release builds, then for each N (held streams) and heartbeat a
# fresh server and one `loadgen` run (connect N, settle, idle window, broadcasts one at a time),
# plus `GET /` under wrk and the release wasm size. Writes bench/results.md.
#
#   scripts/bench.sh              # N = 1000 10000 19500, heartbeat 5000 and 1000 ms
#   scripts/bench.sh 1000         # a subset of N
#   HEARTBEATS=5000 BROADCASTS=50 IDLE_SECS=20 scripts/bench.sh 19500
#   SKIP_BUILD=1 SKIP_WRK=1 scripts/bench.sh 1000
#   ALWAYS_QUIET=1 ...            # also wait for a quiet machine before runs with N <= 2000
#   NO_WAIT=1 ...                 # never wait for a quiet machine (notes say how busy it was)
#   MODES="fresh reused" SERVERS="direct hyper" (the defaults): every N × heartbeat row is run
#     for each connection mode — `fresh` (the stream is a new connection's first request) and
#     `reused` (the stream follows GET / and GET /healthz on the same keep-alive connection, as in
#     a browser) — and each server path — `direct` (the default) and `hyper` (--no-fast-path).
#   BEFORE_BIN=/path/to/older/sse-status SERVERS="before direct" ...: an older build of the
#     server (label *before*, default flags) in the same run, for an A/B against the floor.
#
# Every process it starts is stopped by its PID; every wait is bounded. Exits 1 if any run
# failed its correctness check (all N connected, every client got every broadcast).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

NS=("$@")
[ ${#NS[@]} -eq 0 ] && NS=(1000 10000 19500)
read -r -a HBS <<<"${HEARTBEATS:-5000 1000}"
read -r -a MODES <<<"${MODES:-fresh reused}"
read -r -a SERVERS <<<"${SERVERS:-direct hyper}"
REUSE_PATHS=/,/healthz
BROADCASTS=${BROADCASTS:-20}
IDLE_SECS=${IDLE_SECS:-15}
TOKEN=bench
OUT=bench/results.md
WORK=target/bench
SERVER=$WORK/sse-status     # copies of target/release/{sse-status,loadgen} made after the build
LOADGEN=$WORK/loadgen

say() { printf '\033[1;34m[bench]\033[0m %s\n' "$*" >&2; }
for n in "${NS[@]}" "${HBS[@]}" "$BROADCASTS" "$IDLE_SECS"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "not a number: $n" >&2; exit 2; }
done
mkdir -p bench "$WORK"

# Busy share (%) of all cores over 2 s, from /proc/stat.
cpu_busy_pct() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 2
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local total=0 idle i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  idle=$(( b[4] - a[4] + b[5] - a[5] ))
  [ "$total" -gt 0 ] && echo $(( 100 * (total - idle) / total )) || echo 0
}

# Runs above 2,000 streams share the 2 cores with anything else: never with a Playwright run,
# whose timing tests would flake (and whose load would skew these figures). Also wait (bounded)
# for other work (builds) to finish, and note it if the machine stays busy.
BUSY_NOTE=""
wait_for_quiet() {
  local i busy=0
  BUSY_NOTE=""
  if [ -n "${NO_WAIT:-}" ]; then
    # Run now; say how busy the machine was (figures other than memory are then disturbed).
    busy=$(cpu_busy_pct)
    [ "$busy" -ge 15 ] && BUSY_NOTE="NO_WAIT: other processes used $busy % of the CPU just before this run"
    return 0
  fi
  for i in $(seq 1 90); do
    if pgrep -f "playwright test" >/dev/null; then
      [ "$i" -eq 1 ] && say "a Playwright run is active; waiting (up to 15 min)"
      sleep 8
      continue
    fi
    busy=$(cpu_busy_pct)
    [ "$busy" -lt 15 ] && return 0
    [ "$i" -eq 1 ] && say "the machine is busy ($busy % CPU); waiting (up to 15 min)"
    sleep 8
  done
  if pgrep -f "playwright test" >/dev/null; then
    say "Playwright still running after 15 min; giving up"
    exit 3
  fi
  BUSY_NOTE="other processes used $busy % of the CPU just before this run"
  say "still busy after 15 min ($busy %); running anyway"
}

BUILD_START=$(date +%s)
if [ -z "${SKIP_BUILD:-}" ]; then
  wait_for_quiet   # the release build rewrites target/site, which a running Playwright serves
  say "building release (cargo leptos build --release --project sse-status; loadgen, floor)"
  cargo leptos build --release --project sse-status
  cargo build --release -p loadgen --bin loadgen --bin floor
fi
[ -x target/release/sse-status ] && [ -x target/release/loadgen ] || { echo "missing target/release/sse-status or loadgen" >&2; exit 2; }
# The source the binaries were built from (others may commit while the matrix runs).
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' + uncommitted changes in src/ or Cargo.toml')"
# Other builds share target/: run private copies, and size the wasm right away.
cp target/release/sse-status "$SERVER"
cp target/release/loadgen "$LOADGEN"
[ -n "${BEFORE_BIN:-}" ] && cp "$BEFORE_BIN" "$WORK/sse-status-before"
WASM=target/site/pkg/sse-status.wasm
if [ -f "$WASM" ]; then
  raw=$(stat -c %s "$WASM")
  gz=$(gzip -9c "$WASM" | wc -c)
  WASM_SECTION="| file | raw | gzip -9 |
|---|---:|---:|
| \`$WASM\` | $raw B ($(( raw / 1024 )) KiB) | $gz B ($(( gz / 1024 )) KiB) |"
  if [ -z "${SKIP_BUILD:-}" ] && [ "$(stat -c %Y "$WASM")" -lt "$BUILD_START" ]; then
    WASM_SECTION+="

**Not from this build** (older than it): another build wrote target/site meanwhile."
  fi
else
  WASM_SECTION="$WASM not found (no release build)."
fi

free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 12000 ))   # below the ephemeral range (32768+)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2; return 1
}

SPID=""
stop_server() {
  [ -n "$SPID" ] || return 0
  kill -TERM "$SPID" 2>/dev/null || true
  local i
  for i in $(seq 1 150); do
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=""
}
trap stop_server EXIT

# start_server PORT HEARTBEAT_MS LOG [FLAGS...]: a fresh release server with the hard open-files
# limit.
start_server() {
  local port=$1 hb=$2 log=$3 i
  shift 3
  (
    ulimit -n "$(ulimit -Hn)"
    exec env LEPTOS_OUTPUT_NAME=sse-status LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
      RUST_LOG=warn "${SERVER_BIN:-$SERVER}" --addr "127.0.0.1:$port" --heartbeat-ms "$hb" \
      --publish-token "$TOKEN" "$@"
  ) >"$log" 2>&1 &
  SPID=$!
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$SPID" 2>/dev/null || { echo "server exited:" >&2; cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "server did not listen on $port within 10 s" >&2
  return 1
}

RAW="$WORK/results.jsonl"
: >"$RAW"
# The kernel's floor (one loopback write to a waiting reader, nothing else), measured before
# the first row and after every row: this machine's speed drifts by ±15 % over minutes, so
# each row is compared with the mean of the floors measured just before and just after it.
FLOORS="$WORK/floors.txt"
: >"$FLOORS"
# Sets FLOOR_LINE (floor's summary line) and FLOOR_NOW (its µs per write).
FLOOR_LINE="floor not run (target/release/floor missing)"
FLOOR_NOW=""
measure_floor() {
  say "floor: 9,000 connections"
  FLOOR_LINE=$( (ulimit -n "$(ulimit -Hn)"; timeout 120 "$WORK/floor" --connections 9000) 2>&1 | tail -n 1 || true)
  FLOOR_NOW=$(sed -n 's/.*writer CPU \([0-9.]*\) us\/write.*/\1/p' <<<"$FLOOR_LINE")
}
[ -x target/release/floor ] && cp target/release/floor "$WORK/floor"
LAST_FLOOR=""
if [ -x "$WORK/floor" ]; then
  wait_for_quiet
  measure_floor
  LAST_FLOOR=$FLOOR_NOW
fi
NOTES=""
failed=0
for hb in "${HBS[@]}"; do
  for n in "${NS[@]}"; do
    for srv in "${SERVERS[@]}"; do
      for mode in "${MODES[@]}"; do
        SERVER_BIN=$SERVER
        case "$srv" in
          direct) flags=();;
          hyper) flags=(--no-fast-path);;
          before) flags=(); SERVER_BIN=$WORK/sse-status-before
                  [ -x "$SERVER_BIN" ] || { echo "SERVERS has before: set BEFORE_BIN" >&2; exit 2; };;
          *) echo "unknown server path $srv" >&2; exit 2;;
        esac
        case "$mode" in fresh) reuse=();; reused) reuse=(--reuse "$REUSE_PATHS");; *) echo "unknown mode $mode" >&2; exit 2;; esac
        row="N=$n, heartbeat $hb ms, $srv, $mode"
        tag="n$n-hb$hb-$srv-$mode"
        BUSY_NOTE=""
        if [ "$n" -gt 2000 ] || [ -n "${ALWAYS_QUIET:-}" ]; then wait_for_quiet; fi
        port=$(free_port)
        log="$WORK/server-$tag.log"
        start_server "$port" "$hb" "$log" "${flags[@]}"
        say "$row (server pid $SPID, port $port)"
        rc=0
        "$LOADGEN" --url "http://127.0.0.1:$port" --connections "$n" --server-pid "$SPID" \
          --publish-token "$TOKEN" --broadcasts "$BROADCASTS" --idle-secs "$IDLE_SECS" \
          "${reuse[@]}" --label "$srv" --json >>"$RAW" 2>"$WORK/loadgen-$tag.log" || rc=$?
        tail -n 12 "$WORK/loadgen-$tag.log" >&2
        if pgrep -f "playwright test" >/dev/null; then
          NOTES+="- $row: a Playwright run was active at the end of this run: its figures are disturbed.\n"
        fi
        [ -n "$BUSY_NOTE" ] && NOTES+="- $row: $BUSY_NOTE.\n"
        kill -0 "$SPID" 2>/dev/null || NOTES+="- $row: **the server process was gone at the end of the run**.\n"
        stop_server
        if [ "$rc" -ne 0 ]; then
          failed=1
          NOTES+="- $row: loadgen exited $rc (see the row).\n"
        fi
        if [ -n "$LAST_FLOOR" ]; then
          measure_floor
          echo "$LAST_FLOOR $FLOOR_NOW" >>"$FLOORS"
          LAST_FLOOR=$FLOOR_NOW
        fi
        warns=$(grep -cE 'WARN|ERROR|panicked' "$log" || true)
        if [ "$warns" -gt 0 ]; then
          NOTES+="- $row: the server logged $warns warning/error lines, first: \`$(grep -m1 -E 'WARN|ERROR|panicked' "$log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200)\`\n"
        fi
      done
    done
  done
done

# The run's floor (for rows without a pair around them): the one measured after the last row.
FLOOR_US=$LAST_FLOOR

WRK_SECTION="wrk not run (SKIP_WRK set)."
if [ -z "${SKIP_WRK:-}" ]; then
  if ! command -v wrk >/dev/null; then
    say "installing wrk (apt-get)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; } || true
  fi
  if command -v wrk >/dev/null; then
    port=$(free_port)
    start_server "$port" 5000 "$WORK/server-wrk.log"
    say "wrk -t2 -c64 -d10s GET / (server pid $SPID)"
    wrk_out=$(timeout 60 wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$port/" 2>&1 || true)
    stop_server
    WRK_SECTION="\`wrk -t2 -c64 -d10s --latency http://127.0.0.1:PORT/\` against a fresh release server
(the server-rendered dashboard; wrk and the server share the 2 cores):

\`\`\`
$wrk_out
\`\`\`"
  else
    WRK_SECTION="wrk is not installed and could not be installed; not measured."
  fi
fi


model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
{
  echo "# sse-status benchmark results"
  echo
  echo "Written by \`scripts/bench.sh\`; only figures measured in this run."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) cores, $model, $mem, kernel $(uname -r)"
  echo "- command: \`scripts/bench.sh${*:+ $*}\` (HEARTBEATS=\"${HBS[*]}\" BROADCASTS=$BROADCASTS IDLE_SECS=$IDLE_SECS)"
  echo "- release build: \`cargo leptos build --release --project sse-status\`, \`cargo build --release -p loadgen --bin loadgen --bin floor\` (binaries copied to $WORK/ and run from there)"
  echo "- server: \`sse-status --addr 127.0.0.1:PORT --heartbeat-ms H --publish-token $TOKEN\` (label *direct*) or the same with \`--no-fast-path\` (label *hyper*: every stream through hyper and axum), RUST_LOG=warn, ulimit -n $(ulimit -Hn), a fresh process per row"
  echo "- load: \`loadgen --url http://127.0.0.1:PORT --connections N --server-pid PID --publish-token $TOKEN --broadcasts $BROADCASTS --idle-secs $IDLE_SECS --json\`, plus \`--reuse $REUSE_PATHS\` for the *reused* rows (each connection first fetches those paths, keep-alive, then asks for /events: the path a browser takes) (one tokio current-thread runtime, 128 handshakes in flight, source addresses 127.0.0.2, .3, ... 5,000 connections each)"
  echo "- built from: $COMMIT"
  echo
  echo "## Held connections and fan-out"
  echo
  "$LOADGEN" --table-from "$RAW"
  echo
  echo "Targets: RSS ≤ 4 KiB per held stream on **both** connection paths; all connected within 3 s."
  echo
  echo "### Against the kernel floor (measured in this run)"
  echo
  echo "\`floor --connections 9000\`: $FLOOR_LINE"
  echo
  if [ -n "$FLOOR_US" ]; then
    python3 - "$RAW" "$FLOOR_US" "$(nproc)" "$FLOORS" <<'PY'
import json, sys
raw, floor_end, cores, floors_file = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# Per row: the floors measured just before and just after it (else the one at the end).
adjacent = []
for line in open(floors_file):
    parts = [float(x) for x in line.split() if x]
    adjacent.append(parts)
print("| server | connection | N | heartbeat | floor (before / after the row) | CPU / event (bound 1.10 × floor) | × floor | broadcast p99 (bound 1.5 × N × floor ÷ cores) | idle CPU (bound 1.2 × pings/s × floor) |")
print("|:---|:---|---:|---:|---:|---:|---:|---:|---:|")
def cell(v, bound, unit, digits=2):
    if v is None:
        return "n/a"
    ok = "met" if v <= bound else "**not met**"
    return f"{v:.{digits}f} {unit} ≤ {bound:.{digits}f} {unit}: {ok}"
row = -1
for line in open(raw):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    row += 1
    pair = adjacent[row] if row < len(adjacent) and len(adjacent[row]) == 2 else None
    floor = sum(pair) / 2 if pair else floor_end
    floor_cell = f"{pair[0]:.2f} / {pair[1]:.2f} µs" if pair else f"{floor_end:.2f} µs (end)"
    n, hb = r["connections"], r.get("heartbeat_ms") or 0
    cpu = r.get("server_us_per_event")
    p99 = (r.get("latency_us") or {}).get("p99")
    idle = r.get("idle_server_cpu_pct")
    p99_bound = 1.5 * n * floor / cores / 1000.0
    idle_bound = 1.2 * (n / (hb / 1000.0) if hb else 0) * floor / 1e6 * 100
    conn = "fresh" if not r.get("reuse") else "reused"
    print(f"| {r.get('label') or ''} | {conn} | {n} | {hb} ms | {floor_cell} | {cell(cpu, 1.10 * floor, 'µs')} | {(cpu / floor if cpu else 0):.3f} "
          f"| {cell(p99 / 1000.0 if p99 is not None else None, p99_bound, 'ms', 1)} "
          f"| {cell(idle, idle_bound, '%')} |")
PY
  fi
  echo
  echo "Columns: *all held in* = first connect until the last \`connected\` event; *server RSS / conn*"
  echo "= (VmRSS after connect and 2 s settle − VmRSS before) / N; *idle CPU* = server CPU time over the"
  echo "idle window ÷ its wall time (% of one core; heartbeats only); *server µs / ping* = that CPU time"
  echo "÷ pings delivered in the window; *server µs / event* = server CPU time during the broadcast"
  echo "phase ÷ events delivered in it (N × broadcasts + pings); latency = receipt time − the"
  echo "publish timestamp, over every client × broadcast, one broadcast in flight at a time;"
  echo "*loadgen µs / event* = loadgen's own CPU (getrusage) in the broadcast phase ÷ events it received."
  echo "Server CPU comes from /proc/PID/task/*/schedstat (ns), VmRSS from /proc/PID/status."
  if [ -n "$NOTES" ]; then
    echo
    echo "Notes:"
    printf '%b' "$NOTES"
  fi
  echo
  echo "<details><summary>raw loadgen reports (JSON lines)</summary>"
  echo
  echo '```'
  cat "$RAW"
  echo '```'
  echo
  echo "</details>"
  echo
  echo "## GET / (wrk)"
  echo
  echo "$WRK_SECTION"
  echo
  echo "## Release wasm size"
  echo
  echo "$WASM_SECTION"
} >"$OUT"
say "wrote $OUT"
exit "$failed"
