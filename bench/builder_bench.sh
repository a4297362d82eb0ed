#!/usr/bin/env bash
# The builder's previews (issue: the stage for business users; goal: a block's preview on
# the scale-1 example under 300 ms median). Each block is asked for twice, as the builder
# asks: its first 50 rows and their count (one or two governed queries), and, when the
# profile tab is opened, the profile alone (one statement over every row: the block
# materialized, nulls, distinct, min, max and the numbers' histograms). Beside them, raw DuckDB
# running one full pass of the same SQL (`select count(*) from (…)`,
# build/bench/query_bench) in the same run.
#
#   bench/builder_bench.sh [SCALE=1] [ROUNDS=20]
#
# Environment: CANOPY (default build/canopy), BENCH_DIR (kept if given), PORT (18391).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCALE=${1:-1}
ROUNDS=${2:-20}
CANOPY=$(realpath "${CANOPY:-$here/build/canopy}")
PORT=${PORT:-18391}
if [[ -n ${BENCH_DIR:-} ]]; then
  mkdir -p "$BENCH_DIR"; work=$(realpath "$BENCH_DIR"); cleanup() { :; }
else
  work=$(mktemp -d); cleanup() { rm -rf "$work"; }
fi
server_pid=""
stop() {
  if [[ -n $server_pid ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  cleanup
}
trap stop EXIT

mesh=$work/mesh
[[ -f $mesh/mesh.yaml ]] || "$CANOPY" example "$mesh" --scale "$SCALE" >/dev/null
(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" build >"$work/build.log" 2>&1) ||
  { echo "$(basename "$0"): canopy build failed (a kept BENCH_DIR from an older canopy may need \`canopy catalog upgrade\`):" >&2; tail -5 "$work/build.log" >&2; exit 1; }
token=$(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" token create bob 2>/dev/null)
(cd "$mesh" && exec env -u CANOPY_CATALOG "$CANOPY" serve --listen "127.0.0.1:$PORT" 2>"$work/serve.log") &
server_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "builder previews: scale $SCALE, $ROUNDS rounds each, $(nproc) cores, as bob, over HTTP on loopback"
/usr/bin/python3 "$here/bench/builder_bench.py" "$PORT" "$token" "$ROUNDS" "$work/previews.sql"
kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
echo "raw DuckDB, one full pass of each block's SQL over the same Parquet (select count(*) from (…)), and Canopy in the process:"
while IFS= read -r sql; do
  "$here/build/bench/query_bench" "$mesh" 7 "select count(*) from ($sql) as block" | sed -n '3p'
done <"$work/previews.sql"
