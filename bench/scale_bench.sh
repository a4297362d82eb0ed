#!/usr/bin/env bash
# The shared-catalog benchmark (issue 11: the catalog on PostgreSQL shared by many
# servers). In one run, on loopback:
#   a. the example mesh built with its catalog on PostgreSQL (and on SQLite, for comparison);
#   b. TWO `canopy serve` on the same PostgreSQL catalog, wrk at CONNS connections against
#      each at once (a product card, then a search), against ONE server on SQLite at
#      2×CONNS; requests/s, p50, p99, non-2xx and socket errors, per server and combined;
#   c. governed queries (the aggregate of load_bench.sh) at QUERY_CONNS connections in
#      all, split over the two servers, on both stores;
#   d. two domains built by two runners at once (`canopy build --domain`) against the same
#      two domains built by one, on PostgreSQL; wall clock.
#
#   bench/scale_bench.sh [SCALE=1] [SECONDS=10]
#
# Without CANOPY_TEST_PG (a postgresql:// URL of a server to use) it runs itself under
# scripts/with-postgres, which starts a throwaway PostgreSQL and removes it at the end.
# Each store gets a fresh, empty catalog: a new schema on PostgreSQL, a new file on SQLite.
#
# Environment: CANOPY (default build/canopy), BENCH_DIR (work folder, kept if given),
# PORT (first of three ports, default 18281), CONNS (per PostgreSQL server, 32),
# QUERY_CONNS (16), BUILD_ROUNDS (rounds of step d, 1), SERVE_ARGS (extra arguments of every
# `canopy serve`, e.g. "--threads 8").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${CANOPY_TEST_PG:-} ]]; then
  exec "$here/scripts/with-postgres" "$here/bench/scale_bench.sh" "$@"
fi

SCALE=${1:-1}
SECONDS_PER_RUN=${2:-10}
CANOPY=$(realpath "${CANOPY:-$here/build/canopy}")
PORT=${PORT:-18281}
CONNS=${CONNS:-32}
QUERY_CONNS=${QUERY_CONNS:-16}
BUILD_ROUNDS=${BUILD_ROUNDS:-1}
for tool in wrk psql curl; do
  command -v "$tool" >/dev/null || { echo "scale_bench: $tool is needed (scripts/setup --test)" >&2; exit 2; }
done

if [[ -n ${BENCH_DIR:-} ]]; then
  mkdir -p "$BENCH_DIR"; work=$(realpath "$BENCH_DIR"); keep=1
else
  work=$(mktemp -d /tmp/canopy-scale.XXXXXX); keep=0
fi
mkdir -p "$work/logs"

# --- clean-up: every server this script started, also on failure or interrupt ---

servers=()  # pids
stop_servers() {
  local pid
  for pid in "${servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  servers=()
}
# Pids of what runs while we wait for it (wrk, step d's builds), should we be stopped
# meanwhile; emptied once waited for, so no reused pid is ever signalled.
loaders=()
builders=()
cleanup() {
  local pid
  for pid in "${loaders[@]}" "${builders[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  stop_servers
  ((keep)) || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# A new, empty catalog on PostgreSQL: a schema of its own, named in the URL's search_path
# (as tests/support/test_store.h UseFreshPostgresCatalog does).
fresh_pg_catalog() {
  local schema="scale_$1_$$"
  psql -X -q -v ON_ERROR_STOP=1 "$CANOPY_TEST_PG" -c "CREATE SCHEMA $schema" >/dev/null
  local sep='?'
  [[ $CANOPY_TEST_PG == *\?* ]] && sep='&'
  echo "${CANOPY_TEST_PG}${sep}options=-csearch_path%3D${schema}"
}

# The command prefix that gives canopy catalog $1 ("" = the mesh's own SQLite file).
# `env` execs canopy, so a background job's $! is canopy itself, which a TERM stops.
with_catalog() {
  if [[ -n $1 ]]; then with=(env "CANOPY_CATALOG=$1"); else with=(env -u CANOPY_CATALOG); fi
}

# Runs canopy on mesh $1 with catalog $2.
canopy_on() {
  local mesh=$1 catalog=$2 with
  shift 2
  with_catalog "$catalog"
  "${with[@]}" "$CANOPY" --mesh "$mesh" "$@"
}

# Starts canopy in the background on mesh $1 with catalog $2, output to file $3.
canopy_bg() {
  local mesh=$1 catalog=$2 log=$3 with
  shift 3
  with_catalog "$catalog"
  "${with[@]}" "$CANOPY" --mesh "$mesh" "$@" >"$log" 2>&1 &
}

# Starts a server on mesh $1, catalog $2, port $3 and waits until it answers.
start_server() {
  local mesh=$1 catalog=$2 port=$3
  # shellcheck disable=SC2086  # SERVE_ARGS: extra words for canopy serve, split on purpose
  canopy_bg "$mesh" "$catalog" "$work/logs/serve-$port.log" serve --listen "127.0.0.1:$port" ${SERVE_ARGS:-}
  servers+=($!)
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "scale_bench: the server on port $port did not start:"; tail -5 "$work/logs/serve-$port.log" >&2
  exit 1
}

# --- wrk ---

# wrk scripts: the token, and a done() that writes the run's counts and 1000 latency
# quantiles (µs) to $WRK_OUT — wrk 4.1 does not expose its histogram to Lua, and two
# wrk runs' percentiles cannot be combined; 1000 evenly spaced quantiles, weighted by
# each run's requests, can (to within 0.1% of rank).
write_wrk_scripts() {
  local token=$1 done_fn
  done_fn=$(cat <<'LUA'
done = function(summary, latency, requests)
  local out = io.open(os.getenv("WRK_OUT"), "w")
  local e = summary.errors
  out:write(string.format("summary %d %d %d %d %d %d %d %d %d\n", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
  for i = 0, 999 do out:write(string.format("q %d\n", latency:percentile((i + 0.5) / 10))) end
  out:close()
end
LUA
)
  cat >"$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
$done_fn
LUA
  cat >"$work/query.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"sql":"select channel, count(*) as lines, sum(net_amount) as revenue from sales.order_lines group by channel order by revenue desc","limit":100}'
$done_fn
LUA
}

# Runs wrk in the background: output file $1, connections $2, port $3, path $4, script $5.
# One wrk thread per 32 connections (at least one), as load_bench.sh's -t2 for 64.
wrk_start() {
  local threads=$((($2 + 31) / 32))
  WRK_OUT=$1 wrk -t"$threads" -c"$2" -d"${SECONDS_PER_RUN}s" --timeout 10s -s "$work/$5" \
    "http://127.0.0.1:$3$4" >"$1.wrk" 2>&1 &
  loaders+=($!)
}

# Waits for wrk $1 that writes to $2; says what went wrong when it failed.
wait_wrk() {
  wait "$1" && [[ -s $2 ]] && return 0
  say "scale_bench: wrk failed:"; cat "$2.wrk" >&2
  exit 1
}

# One result line from the wrk dumps given (one: that run; several: run at the same
# time, so requests/s add up and the latencies merge).
report() {
  local label=$1 conns=$2
  shift 2
  awk -v label="$label" -v conns="$conns" '
    FNR == 1 { file++ }
    $1 == "summary" {
      req[file] = $2; rps += $2 / ($3 / 1e6); conn += $4; rd += $5; wr += $6; to += $7; non2xx += $8
      p50 = $9; p99 = $10; total += $2
    }
    $1 == "q" { n++; value[n] = $2; run[n] = file }
    END {
      if (file > 1) {  # merge: each quantile stands for a thousandth of its run
        for (i = 1; i <= n; i++) w[i] = req[run[i]] / 1000
        for (i = 2; i <= n; i++) {  # insertion sort by value (2000 points)
          v = value[i]; x = w[i]
          for (j = i - 1; j >= 1 && value[j] > v; j--) { value[j + 1] = value[j]; w[j + 1] = w[j] }
          value[j + 1] = v; w[j + 1] = x
        }
        p50 = ""; p99 = ""; sum = 0
        for (i = 1; i <= n; i++) {
          sum += w[i]
          if (p50 == "" && sum >= 0.50 * total) p50 = value[i]
          if (p99 == "" && sum >= 0.99 * total) p99 = value[i]
        }
      }
      printf "%-34s %5d %10.0f %9.2f %9.2f %8d   connect %d read %d write %d timeout %d\n",
        label, conns, rps, p50 / 1000, p99 / 1000, non2xx, conn, rd, wr, to
    }' "$@"
}

header() {
  printf "%-34s %5s %10s %9s %9s %8s   %s\n" "$1" "conns" "req/s" "p50 ms" "p99 ms" "non-2xx" \
    "socket errors"
}

# Two PostgreSQL servers at once: name $1, per-server connections $2, path $3, script $4.
load_two() {
  local name=$1 conns=$2 path=$3 script=$4 a="$work/logs/$1-pg-a" b="$work/logs/$1-pg-b"
  wrk_start "$a" "$conns" "$PORT" "$path" "$script"
  local wa=$!
  wrk_start "$b" "$conns" "$((PORT + 1))" "$path" "$script"
  local wb=$!
  wait_wrk "$wa" "$a" && wait_wrk "$wb" "$b"
  loaders=()
  report "$name: PostgreSQL server 1" "$conns" "$a"
  report "$name: PostgreSQL server 2" "$conns" "$b"
  report "$name: PostgreSQL 2 servers" "$((2 * conns))" "$a" "$b"
}

# One SQLite server: name $1, connections $2, path $3, script $4.
load_one() {
  local out="$work/logs/$1-sqlite"
  wrk_start "$out" "$2" "$((PORT + 2))" "$3" "$4"
  wait_wrk $! "$out"
  loaders=()
  report "$1: SQLite 1 server" "$2" "$out"
}

# --- a. the example mesh, built on each store ---

echo "scale benchmark: scale $SCALE, ${SECONDS_PER_RUN}s per wrk run, $(nproc) cores, loopback"
echo "canopy: $CANOPY"
"$CANOPY" example "$work/mesh-pg" --scale "$SCALE" >/dev/null
# A copy for SQLite: one storage root per catalog, since a build removes the version
# folders its own catalog does not know.
cp -a "$work/mesh-pg" "$work/mesh-sqlite"
pg_catalog=$(fresh_pg_catalog serve)
echo "PostgreSQL catalog: ${pg_catalog/:*@/://…@}"

timed_build() {  # label, mesh, catalog, build arguments…
  local label=$1 mesh=$2 catalog=$3 start
  shift 3
  start=$(now)
  canopy_on "$mesh" "$catalog" build "$@" >"$work/logs/build-$label.log" 2>&1 || {
    say "scale_bench: canopy build ($label) failed:"; tail -20 "$work/logs/build-$label.log" >&2
    exit 1
  }
  printf "  %-56s %7s s\n" "$label" "$(elapsed "$start" "$(now)")"
}
echo
echo "a. full build of the example mesh (wall clock)"
timed_build "build, catalog on PostgreSQL" "$work/mesh-pg" "$pg_catalog"
timed_build "build, catalog on SQLite" "$work/mesh-sqlite" ""

# --- b. catalog reads: two servers on PostgreSQL, one on SQLite ---

pg_token=$(canopy_on "$work/mesh-pg" "$pg_catalog" token create dana 2>/dev/null)
sqlite_token=$(canopy_on "$work/mesh-sqlite" "" token create dana 2>/dev/null)

start_server "$work/mesh-pg" "$pg_catalog" "$PORT"
start_server "$work/mesh-pg" "$pg_catalog" "$((PORT + 1))"
start_server "$work/mesh-sqlite" "" "$((PORT + 2))"

# Warm-up, not reported: 2 s of each endpoint on each server, so that the runs measure
# servers that have been up a while (catalog connections used, answers kept).
for target in "$PORT $pg_token" "$((PORT + 1)) $pg_token" "$((PORT + 2)) $sqlite_token"; do
  read -r port token <<<"$target"
  for path in /api/v1/products/sales/orders "/api/v1/search?q=revenue"; do
    wrk -t1 -c8 -d2s -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path" >/dev/null
  done
done

echo
echo "b. catalog reads (after a 2 s warm-up of each endpoint on each server): PostgreSQL with 2 servers at $CONNS connections each (at once), SQLite with 1 at $((2 * CONNS))"
header "run"
write_wrk_scripts "$pg_token"
load_two "product card" "$CONNS" "/api/v1/products/sales/orders" get.lua
write_wrk_scripts "$sqlite_token"
load_one "product card" "$((2 * CONNS))" "/api/v1/products/sales/orders" get.lua
write_wrk_scripts "$pg_token"
load_two "search" "$CONNS" "/api/v1/search?q=revenue" get.lua
write_wrk_scripts "$sqlite_token"
load_one "search" "$((2 * CONNS))" "/api/v1/search?q=revenue" get.lua

# --- c. governed queries, split over the two servers ---

echo
echo "c. governed queries (aggregate): $QUERY_CONNS connections in all; PostgreSQL split over 2 servers"
header "run"
write_wrk_scripts "$pg_token"
load_two "query" "$((QUERY_CONNS / 2))" "/api/v1/query" query.lua
write_wrk_scripts "$sqlite_token"
load_one "query" "$QUERY_CONNS" "/api/v1/query" query.lua

for pid in "${servers[@]}"; do
  printf "  server pid %s peak RSS %s\n" "$pid" "$(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")"
done
stop_servers
# What the servers logged answering (a cross-check of wrk's counts).
answered() { cat "$@" | grep -c ' /api/v1/\(products\|search\|query\)' || true; }
echo "  requests the servers logged: PostgreSQL $(answered "$work/logs/serve-$PORT.log" \
  "$work/logs/serve-$((PORT + 1)).log"), SQLite $(answered "$work/logs/serve-$((PORT + 2)).log")"

# --- d. two domain runners at once against one runner, on PostgreSQL ---

# logistics reads sales (delivery_performance reads sales.orders): the logistics runner
# reads sales' published version while the sales runner publishes a new one.
upstream=sales
downstream=logistics
echo
echo "d. domain runners on PostgreSQL: --domain $upstream and --domain $downstream at once, against both in one build (wall clock)"
if ! "$CANOPY" build --help 2>/dev/null | grep -q -- '--domain'; then
  echo "  skipped: this canopy's build has no --domain option yet"
  exit 0
fi
# The upstream published once by its own runner (step a published it too; unchanged, so
# this only checks), so the downstream runner has a version to read.
timed_build "--domain $upstream (no change)" "$work/mesh-pg" "$pg_catalog" --domain "$upstream"

# Both runners started together; each one's wall clock taken when it ends (wait -n).
concurrent_round() {
  local round=$1 start pid rc took both
  local -A seconds=() status=() domain_of=()
  start=$(now)
  for domain in "$upstream" "$downstream"; do
    canopy_bg "$work/mesh-pg" "$pg_catalog" "$work/logs/d$round-$domain.log" \
      build --domain "$domain" --force
    builders+=($!)
    domain_of[$!]=$domain
  done
  local -a pending=("${builders[@]}")
  while ((${#pending[@]} > 0)); do
    rc=0
    wait -n -p pid "${pending[@]}" || rc=$?
    took=$(elapsed "$start" "$(now)")
    seconds[${domain_of[$pid]}]=$took
    status[${domain_of[$pid]}]=$rc
    mapfile -t pending < <(printf '%s\n' "${pending[@]}" | grep -vx "$pid")
  done
  both=$took
  builders=()
  for domain in "$upstream" "$downstream"; do
    if [[ ${status[$domain]} != 0 ]]; then
      say "scale_bench: canopy build --domain $domain failed (exit ${status[$domain]}):"
      tail -20 "$work/logs/d$round-$domain.log" >&2
      exit 1
    fi
  done
  printf "  %-56s %7s s  (--domain %s %s s, --domain %s %s s)\n" "round $round: 2 runners at once" \
    "$both" "$upstream" "${seconds[$upstream]}" "$downstream" "${seconds[$downstream]}"
}
for round in $(seq "$BUILD_ROUNDS"); do
  concurrent_round "$round"
  timed_build "round $round: 1 runner, --domain $upstream --domain $downstream" "$work/mesh-pg" \
    "$pg_catalog" --domain "$upstream" --domain "$downstream" --force
done
echo "  (both on this one machine: the two runners share its $(nproc) cores; each builds with one worker per core)"
