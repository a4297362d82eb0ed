#!/usr/bin/env bash
# The server load benchmark (issue: self-serve platform): wrk on loopback against
# `canopy serve` on the example mesh — catalog reads (a product card, a search) at 64
# connections, and governed queries at 16 — with the server's peak memory.
#
#   bench/load_bench.sh [SCALE=1] [SECONDS=15]
#
# Environment: CANOPY (default build/canopy), BENCH_DIR (kept if given), PORT (18181).
set -euo pipefail
SCALE=${1:-1}
SECONDS_PER_RUN=${2:-15}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CANOPY=$(realpath "${CANOPY:-$here/build/canopy}")
PORT=${PORT:-18181}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

if [[ -n ${BENCH_DIR:-} ]]; then
  mkdir -p "$BENCH_DIR"; work=$(realpath "$BENCH_DIR"); cleanup() { :; }
else
  work=$(mktemp -d); cleanup() { rm -rf "$work"; }
fi
server_pid=""
stop_server() { [[ -n $server_pid ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; }
trap 'stop_server; cleanup' EXIT

mesh=$work/mesh
if [[ ! -f $mesh/mesh.yaml ]]; then
  "$CANOPY" example "$mesh" --scale "$SCALE" >/dev/null
fi
(cd "$mesh" && "$CANOPY" build >"$work/build.log" 2>&1) ||
  { echo "$(basename "$0"): canopy build failed (a kept BENCH_DIR from an older canopy may need \`canopy catalog upgrade\`):" >&2; tail -5 "$work/build.log" >&2; exit 1; }
token=$(cd "$mesh" && "$CANOPY" token create dana 2>/dev/null)

"$CANOPY" --mesh "$mesh" serve --listen "127.0.0.1:$PORT" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done

cat >"$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat >"$work/query.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"sql":"select channel, count(*) as lines, sum(net_amount) as revenue from sales.order_lines group by channel order by revenue desc","limit":100}'
done = function(summary, latency, requests)
  io.write(string.format("non2xx=%d\n", summary.errors.status))
end
LUA

run() {  # name, connections, path, script
  local out
  out=$(wrk -t2 -c"$2" -d"${SECONDS_PER_RUN}s" --latency -s "$work/$4" "http://127.0.0.1:$PORT$3")
  local rps p50 p99 errors non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Socket errors/ {print $0}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf "%-28s %4s conns  %10s req/s  p50 %8s  p99 %8s  non-2xx %s  %s\n" "$1" "$2" "$rps" "$p50" "$p99" \
    "${non2xx:-0}" "${errors:-no socket errors}"
}

echo "load benchmark: scale $SCALE, ${SECONDS_PER_RUN}s per run, $(nproc) cores, wrk -t2"
run "product card" 64 "/api/v1/products/sales/orders" get.lua
run "search" 64 "/api/v1/search?q=revenue" get.lua
run "governed query (aggregate)" 16 "/api/v1/query" query.lua
rss=$(awk '/VmHWM/ {print $2, $3}' "/proc/$server_pid/status")
echo "server peak RSS (VmHWM): $rss"
stop_server
server_pid=""
echo "requests logged: $(wc -l <"$work/serve.log")"
