#!/usr/bin/env bash
# PostgreSQL's wire protocol, Canopy against a real PostgreSQL 15 holding the same rows,
# with the same client (Debian's psycopg2), in one run on loopback:
#   1. a small query's round trip (median, p99): Canopy's wire, PostgreSQL's wire (with
#      an index on the column the query filters on), Canopy's REST API;
#   2. streaming a 10-column result of every row of sales.order_lines (1 M rows at
#      scale 1, 10 M at 10) to psycopg2: rows per second, and the Canopy server's memory —
#      through a client-side cursor (libpq holds the whole result; measured with the client
#      giving its heap back after each result and keeping it), and (2b) through a named,
#      server-side cursor, 10,000 rows a FETCH;
#   3. an analytical query, a group-by over every order line (10 M at scale 10): Canopy's
#      wire, PostgreSQL, and raw DuckDB over the same Parquet (build/bench/query_bench);
#   4. 32 connections at once for 60 s (DURATION), each running a mix of queries:
#      throughput, latency, errors (must be 0).
#
#   bench/pgwire_bench.sh [SCALE=1] [ROUNDS=500]
#
# PARTS=2 runs only the streams (any of the digits 1-4 picks sections); STREAMS=9 sets how
# many streams each server answers (default 5).
#
# Without CANOPY_TEST_PG it runs itself under scripts/with-postgres (a throwaway server,
# removed at the end). Environment: CANOPY (default build/canopy), BENCH_DIR (kept if
# given), PORT (first of two, default 18381).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${CANOPY_TEST_PG:-} ]]; then
  exec "$here/scripts/with-postgres" "$here/bench/pgwire_bench.sh" "$@"
fi
SCALE=${1:-1}
ROUNDS=${2:-500}
CANOPY=$(realpath "${CANOPY:-$here/build/canopy}")
PORT=${PORT:-18381}
PG_PORT=$((PORT + 1))
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || {
  echo "pgwire_bench: Debian's python3-psycopg2 is needed (scripts/setup --test)" >&2; exit 2; }

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
# Rows enough to export every order line for PostgreSQL (the example's limit is 1 M).
sed -i 's/rows: 1000000,/rows: 20000000,/' "$mesh/mesh.yaml"
(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" build >"$work/build.log" 2>&1) ||
  { echo "$(basename "$0"): canopy build failed (a kept BENCH_DIR from an older canopy may need \`canopy catalog upgrade\`):" >&2; tail -5 "$work/build.log" >&2; exit 1; }
token=$(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" token create dana 2>/dev/null)

# The same rows in PostgreSQL, as dana reads them (masks applied), through CSV.
columns="order_line_id, order_id, line_number, order_date, customer_id, product_id, sku, category, quantity, unit_price"
(cd "$mesh" && env -u CANOPY_CATALOG "$CANOPY" query --as dana --format csv --output "$work/order_lines.csv" \
  "select $columns from sales.order_lines" >/dev/null 2>&1)
psql -X -q -v ON_ERROR_STOP=1 "$CANOPY_TEST_PG" <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS sales CASCADE;
CREATE SCHEMA sales;
CREATE TABLE sales.order_lines (order_line_id BIGINT, order_id BIGINT, line_number INTEGER,
  order_date DATE, customer_id BIGINT, product_id INTEGER, sku TEXT, category TEXT,
  quantity INTEGER, unit_price NUMERIC(10,2));
\copy sales.order_lines FROM '$work/order_lines.csv' WITH (FORMAT csv, HEADER true)
CREATE INDEX ON sales.order_lines (order_id);  -- as a PostgreSQL user would have it
ANALYZE sales.order_lines;
SQL

(cd "$mesh" && exec env -u CANOPY_CATALOG "$CANOPY" serve --listen "127.0.0.1:$PORT" \
  --pg-listen "127.0.0.1:$PG_PORT" 2>"$work/serve.log") &
server_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "pgwire benchmark: scale $SCALE, $ROUNDS rounds, $(nproc) cores, loopback, client psycopg2 $(/usr/bin/python3 -c 'import psycopg2; print(psycopg2.__version__.split()[0])')"
/usr/bin/python3 "$here/bench/pgwire_bench.py" "$ROUNDS" "$PORT" "$PG_PORT" "$token" "$CANOPY_TEST_PG" \
  "$server_pid" "$columns" "${DURATION:-60}"
stop_server
if [[ ${PARTS:-1234} == *3* ]]; then
  echo "3c. raw DuckDB over the same Parquet files, and Canopy in the process (build/bench/query_bench)"
  "$here/build/bench/query_bench" "$mesh" 5 \
    "select category, count(*) as lines, sum(quantity) as units, sum(quantity * unit_price) as revenue from sales.order_lines group by category order by category" |
    sed -n '3p'
fi
if [[ ${PARTS:-1234} == *1* ]]; then
  echo "1d. the small query in the process (no wire, no HTTP)"
  "$here/build/bench/query_bench" "$mesh" 200 \
    "select count(*), sum(quantity) from sales.order_lines where order_id = 4242" | sed -n '3p'
fi

