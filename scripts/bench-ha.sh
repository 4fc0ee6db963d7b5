#!/usr/bin/env bash
# The cost of durable acknowledgement: publish latency (POST /api/publish → 202, p50/p99) of one
# release instance on Redis found through Sentinel (1 primary + 2 replicas + 3 Sentinels, all on
# loopback), with --redis-min-replicas 0 (XADD only) and 1 (XADD + WAIT 1).
#
#   scripts/bench-ha.sh                 # 2,000 sequential publishes per setting (after 200 warm-up)
#   N=5000 SKIP_BUILD=1 scripts/bench-ha.sh
#
# Needs redis-server and redis-sentinel (scripts/setup.sh installs them). Every process it starts
# is stopped by its PID. Raw results (one JSON line per setting) go to bench/ha-<commit>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

N=${N:-2000}
WARMUP=${WARMUP:-200}
TOKEN=bench
WORK=target/bench-ha
COMMIT=$(git rev-parse --short HEAD)
OUT=bench/ha-$COMMIT.jsonl
say() { printf '\033[1;34m[bench-ha]\033[0m %s\n' "$*" >&2; }
for tool in redis-server redis-sentinel redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool not found: run ./scripts/setup.sh" >&2; exit 2; }
done

if [ -z "${SKIP_BUILD:-}" ]; then
  say "building release (sse-status)"
  cargo build --release --features app-server --bin sse-status
fi
rm -rf "$WORK"
mkdir -p "$WORK" bench
cp target/release/sse-status "$WORK/"
: >"$OUT"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1 primary + 2 replicas.
REDIS_PORTS=()
for i in 0 1 2; do
  port=$(free_port); REDIS_PORTS+=("$port"); mkdir -p "$WORK/redis-$i"
  extra=()
  [ "$i" -gt 0 ] && extra=(--replicaof 127.0.0.1 "${REDIS_PORTS[0]}")
  redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/redis-$i" --save '' \
    --appendonly yes "${extra[@]}" >"$WORK/redis-$i.log" 2>&1 &
  PIDS+=($!)
done
# 3 Sentinels.
SENTINELS=()
for i in 0 1 2; do
  port=$(free_port); SENTINELS+=("127.0.0.1:$port"); mkdir -p "$WORK/sentinel-$i"
  printf 'port %s\nbind 127.0.0.1\ndaemonize no\ndir %s\nsentinel monitor bench 127.0.0.1 %s 2\n' \
    "$port" "$PWD/$WORK/sentinel-$i" "${REDIS_PORTS[0]}" >"$WORK/sentinel-$i/sentinel.conf"
  redis-sentinel "$WORK/sentinel-$i/sentinel.conf" >"$WORK/sentinel-$i.log" 2>&1 &
  PIDS+=($!)
done
say "waiting for 2 replicas in sync and 3 Sentinels that know each other"
for _ in $(seq 1 200); do
  synced=$(redis-cli -p "${REDIS_PORTS[0]}" info replication 2>/dev/null | grep -c '^slave[01]:.*state=online' || true)
  known=$(redis-cli -h 127.0.0.1 -p "${SENTINELS[0]#*:}" sentinel master bench 2>/dev/null \
    | awk 'prev=="num-other-sentinels"{print} {prev=$0}')
  [ "$synced" = 2 ] && [ "$known" = 2 ] && break
  sleep 0.1
done
[ "$synced" = 2 ] && [ "$known" = 2 ] || { echo "Redis + Sentinel did not settle" >&2; exit 1; }
SENTINEL_LIST=$(IFS=,; echo "${SENTINELS[*]}")

for min in 0 1; do
  port=$(free_port)
  RUST_LOG=warn LEPTOS_SITE_ROOT=target/site LEPTOS_OUTPUT_NAME=sse-status \
    "$WORK/sse-status" --addr "127.0.0.1:$port" --publish-token "$TOKEN" \
    --redis-sentinel "$SENTINEL_LIST" --redis-master bench --redis-min-replicas "$min" \
    >"$WORK/server-$min.log" 2>&1 &
  server=$!
  PIDS+=($server)
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && break
    sleep 0.05
  done
  say "min-replicas $min: $WARMUP warm-up + $N timed publishes on one keep-alive connection"
  python3 - "$port" "$TOKEN" "$N" "$WARMUP" "$min" <<'EOF' | tee -a "$OUT"
import http.client, json, sys, time
port, token, n, warm, min_replicas = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
lat = []
for i in range(warm + n):
    body = json.dumps({"event": "update", "data": {"n": i}})
    t = time.perf_counter()
    conn.request("POST", "/api/publish", body, headers)
    resp = conn.getresponse()
    resp.read()
    dt = (time.perf_counter() - t) * 1000
    if resp.status != 202:
        sys.exit(f"publish {i}: {resp.status}")
    if i >= warm:
        lat.append(dt)
lat.sort()
q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 3)
print(json.dumps({"min_replicas": min_replicas, "publishes": n, "p50_ms": q(0.50),
                  "p90_ms": q(0.90), "p99_ms": q(0.99), "max_ms": round(lat[-1], 3),
                  "mean_ms": round(sum(lat) / len(lat), 3)}))
EOF
  kill "$server"; wait "$server" 2>/dev/null || true
  # Proof that the setting did what it says: WAIT calls the primary has served so far.
  say "primary's WAIT calls so far: $(redis-cli -p "${REDIS_PORTS[0]}" info commandstats | grep -o '^cmdstat_wait:calls=[0-9]*' || echo none)"
done
say "raw results: $OUT"
