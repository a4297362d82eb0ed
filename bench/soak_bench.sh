#!/usr/bin/env bash
# The soak benchmark (issue 14): `canopy serve` on the example mesh under 64 connections
# for DURATION seconds (default 300) of mixed work — catalog reads, searches, governed
# queries over REST and over the PostgreSQL wire, access requests and their decisions —
# while a domain runner (`canopy build --force sales`, a separate process on the same
# catalog) publishes new versions every 30 s. It prints errors (must be 0), the server's
# RSS every 10 s, and counts the audit entries the run must have written against those
# the catalog holds (a lost entry shows as a difference), then `audit --verify`.
#
#   bench/soak_bench.sh [SCALE=1] [DURATION=300]
#
# Environment: CANOPY (default build/canopy), BENCH_DIR (kept if given), PORT (first of
# two, default 18481), CONNECTIONS (64), BUILD_EVERY (30).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCALE=${1:-1}
DURATION=${2:-300}
CANOPY=$(realpath "${CANOPY:-$here/build/canopy}")
PORT=${PORT:-18481}
PG_PORT=$((PORT + 1))
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || {
  echo "soak_bench: Debian's python3-psycopg2 is needed (scripts/setup --test)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "soak_bench: sqlite3 is needed (scripts/setup --test)" >&2; exit 2; }

if [[ -n ${BENCH_DIR:-} ]]; then
  mkdir -p "$BENCH_DIR"; work=$(realpath "$BENCH_DIR"); cleanup() { :; }
else
  work=$(mktemp -d); cleanup() { rm -rf "$work"; }
fi
server_pid=""
stop_server() {
  if [[ -n $server_pid ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
trap 'stop_server; cleanup' EXIT

mesh=$work/mesh
[[ -f $mesh/mesh.yaml ]] || "$CANOPY" example "$mesh" --scale "$SCALE" >/dev/null
(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" build >"$work/build.log" 2>&1) ||
  { echo "$(basename "$0"): canopy build failed (a kept BENCH_DIR from an older canopy may need \`canopy catalog upgrade\`):" >&2; tail -5 "$work/build.log" >&2; exit 1; }
tokens=""
for user in alice bob dana zoe; do
  tokens+="$user=$(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" token create "$user" 2>/dev/null),"
done

(cd "$mesh" && exec env -u CANOPY_CATALOG "$CANOPY" serve --listen "127.0.0.1:$PORT" \
  --pg-listen "127.0.0.1:$PG_PORT" 2>"$work/serve.log") &
server_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "soak benchmark: scale $SCALE, ${DURATION}s, ${CONNECTIONS:-64} connections, a sales build every ${BUILD_EVERY:-30}s, $(nproc) cores"
status=0
/usr/bin/python3 "$here/bench/soak_bench.py" "$mesh" "$CANOPY" "$PORT" "$PG_PORT" "$server_pid" \
  "$tokens" "$DURATION" "${CONNECTIONS:-64}" "${BUILD_EVERY:-30}" || status=$?
stop_server
echo "audit chain after the run:"
(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" audit --verify) || status=1
exit "$status"
