#!/usr/bin/env bash
# API throughput: `GET /api/bookings` (a doctor's list) requests/s and latency percentiles, the
# release `bedside serve` pinned to core 0 (SQLite, the default), `wrk` pinned to core 1.
# Usage: bench/api-throughput.sh [seconds] [connections]   (needs: wrk, curl, jq-free)
# Records nothing by itself: copy the printed summary into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
bin=target/release/bedside
[ -x "$bin" ] || cargo build --release --bin bedside
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
BEDSIDE_ADMIN_USERNAME=admin BEDSIDE_ADMIN_PASSWORD='bench admin password' \
  taskset -c 0 "$bin" serve --data-dir "$dir" --http "127.0.0.1:$port" --udp-port $((port + 1)) \
  --workers 1 >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
login() { curl -sf "$base/api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$1\",\"password\":\"$2\"}" | json "['access_token']"; }
admin=$(login admin 'bench admin password')
curl -sf "$base/api/users" -H "authorization: Bearer $admin" -H 'content-type: application/json' \
  -d '{"username":"doc","display_name":"Dr Bench","password":"bench doctor password","role":"doctor"}' >/dev/null
robot=$(curl -sf "$base/api/robots" -H "authorization: Bearer $admin" -H 'content-type: application/json' \
  -d '{"name":"R1","ward":"W","description":""}' | json "['robot']['id']")
doc=$(login doc 'bench doctor password')
# 50 bookings, one a day, so the list has something to return.
for d in $(seq 1 50); do
  s=$(date -u -d "+$d day" +%Y-%m-%dT10:00:00Z); e=$(date -u -d "+$d day" +%Y-%m-%dT11:00:00Z)
  curl -sf "$base/api/bookings" -H "authorization: Bearer $doc" -H 'content-type: application/json' \
    -d "{\"robot_id\":\"$robot\",\"starts_at\":\"$s\",\"ends_at\":\"$e\"}" >/dev/null
done

echo "GET /api/bookings (50 bookings), $conns connections, $secs s, server on core 0, wrk on core 1"
taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $doc" "$base/api/bookings"
