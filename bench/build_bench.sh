#!/usr/bin/env bash
# The build benchmark (DESIGN §10): Canopy's full build of the example mesh against raw
# DuckDB running the same SQL and writing the same Parquet (bench/raw_build), in one run.
#
#   bench/build_bench.sh [SCALE=10] [REPS=3]
#
# Environment:
#   CANOPY     the canopy binary      (default: build-bench/canopy)
#   RAW_BUILD  the raw_build binary   (default: build-bench/bench/raw_build)
#   BENCH_DIR  work folder, kept afterwards (default: a new temporary folder, removed at the end)
#   BENCH_IDLE_WAIT  before each timed run, wait up to this many seconds for the machine to
#              be idle (under 10% CPU busy over 2 s); 0 disables (default: 300)
#
# Each of the REPS rounds times, one after the other:
#   raw     raw_build MESH BENCH_DIR/raw     (fresh output folder)
#   canopy  canopy build --force             (after rm -rf MESH/.canopy: full build + publish)
# Then a no-change `canopy build` (no --force) is timed 5 times. Every run counts: none
# is dropped as warm-up. Wall clock from date +%s.%N; peak RSS and CPU time from GNU time -v;
# the CPU time other processes used during each run from /proc/stat, so a run disturbed by
# other work on the machine shows as such.
set -euo pipefail

SCALE=${1:-10}
REPS=${2:-3}
NOCHANGE_REPS=5
IDLE_WAIT=${BENCH_IDLE_WAIT:-300}
TCK=$(getconf CLK_TCK)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CANOPY=${CANOPY:-$here/build-bench/canopy}
RAW_BUILD=${RAW_BUILD:-$here/build-bench/bench/raw_build}
for bin in "$CANOPY" "$RAW_BUILD"; do
  if [[ ! -x $bin ]]; then
    echo "error: $bin not found; build it first:" >&2
    echo "  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2" >&2
    exit 2
  fi
done
CANOPY=$(realpath "$CANOPY")
RAW_BUILD=$(realpath "$RAW_BUILD")
if [[ ! -x /usr/bin/time ]]; then
  echo "error: /usr/bin/time (GNU time) is needed for peak RSS: apt-get install time" >&2
  exit 2
fi
if ! [[ $REPS =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bench/build_bench.sh [SCALE=10] [REPS=3]" >&2
  exit 2
fi

if [[ -n ${BENCH_DIR:-} ]]; then
  mkdir -p "$BENCH_DIR"
  BENCH_DIR=$(realpath "$BENCH_DIR")
  cleanup() { :; }
else
  BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/canopy-bench.XXXXXX")
  cleanup() { rm -rf "$BENCH_DIR"; }
fi
trap cleanup EXIT
MESH=$BENCH_DIR/mesh
RAW_OUT=$BENCH_DIR/raw
LOGS=$BENCH_DIR/logs
mkdir -p "$LOGS"

# CPU time (jiffies) the whole machine has spent busy since boot.
busy_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# Waits (up to IDLE_WAIT s) until the machine is under 10% busy over 2 s.
wait_idle() {
  local waited=0 before after
  ((IDLE_WAIT > 0)) || return 0
  while ((waited < IDLE_WAIT)); do
    before=$(busy_jiffies)
    sleep 2
    after=$(busy_jiffies)
    if awk -v d=$((after - before)) -v t="$TCK" -v n="$(nproc)" 'BEGIN {exit !(d / t / 2 / n < 0.10)}'; then
      return 0
    fi
    waited=$((waited + 2))
  done
  echo "  (machine still busy after ${IDLE_WAIT} s; running anyway)"
}

# run NAME CMD...: runs CMD from MESH, appends "wall_s rss_kb cpu_s others_cpu_s" to
# LOGS/NAME.times, keeps its stdout/stderr in LOGS/NAME.last.{out,err}. Fails the
# benchmark if CMD fails.
run() {
  local name=$1
  shift
  local start end rss cpu busy0 busy1 others
  # Write back what earlier runs left dirty (raw_build does not fsync), so that it is not
  # charged to this run.
  sync
  wait_idle
  busy0=$(busy_jiffies)
  start=$(date +%s.%N)
  if ! (cd "$MESH" && /usr/bin/time -v -o "$LOGS/$name.time" "$@" \
        >"$LOGS/$name.last.out" 2>"$LOGS/$name.last.err"); then
    echo "error: $name failed: $*" >&2
    cat "$LOGS/$name.last.err" "$LOGS/$name.last.out" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  busy1=$(busy_jiffies)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$LOGS/$name.time")
  cpu=$(awk -F': ' '/User time|System time/ {t += $2} END {printf "%.2f", t}' "$LOGS/$name.time")
  others=$(awk -v d=$((busy1 - busy0)) -v t="$TCK" -v c="$cpu" 'BEGIN {o = d / t - c; printf "%.1f", (o < 0) ? 0 : o}')
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}') $rss $cpu $others" >>"$LOGS/$name.times"
}

# stats FILE COLUMN: "median min max" of a column of numbers.
stats() {
  awk -v c="$2" '{print $c}' "$1" | sort -g | awk '
    { v[NR] = $1 }
    END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%s %s %s\n", m, v[1], v[NR]
    }'
}

echo "== machine"
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
echo "cpu: $cpu, $(nproc) cores (nproc), $mem RAM, kernel $(uname -r)"
echo "filesystem of $BENCH_DIR: $(df -T "$BENCH_DIR" | awk 'NR == 2 {print $2 " on " $1}')"
echo "idle wait before each run: ${IDLE_WAIT} s at most"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"
echo "canopy: $CANOPY ($("$CANOPY" --version 2>&1 | head -n 1))"
echo

echo "== data: canopy example --scale $SCALE"
gen_start=$(date +%s.%N)
"$CANOPY" example "$MESH" --scale "$SCALE" --force >"$LOGS/example.out" 2>&1
gen_end=$(date +%s.%N)
awk -v a="$gen_start" -v b="$gen_end" 'BEGIN {printf "generated in %.1f s\n", b - a}'
(cd "$MESH" && find domains -path '*/data/*' -type f ! -name '*.md' -printf '%s %p\n' | sort -k2 |
  awk '{printf "  %-45s %10.1f MB\n", $2, $1 / 1e6; t += $1} END {printf "  %-45s %10.1f MB\n", "total sources", t / 1e6}')
echo

echo "== $REPS rounds: raw_build, then canopy build --force (cold store)"
for ((i = 1; i <= REPS; i++)); do
  rm -rf "$RAW_OUT"
  run raw "$RAW_BUILD" "$MESH" "$RAW_OUT"
  rm -rf "$MESH/.canopy"
  run canopy "$CANOPY" build --force
  read -r raw_s _ raw_cpu raw_others <<<"$(tail -n 1 "$LOGS/raw.times")"
  read -r can_s _ can_cpu can_others <<<"$(tail -n 1 "$LOGS/canopy.times")"
  # A round is disturbed when, during either run, other processes used more than 5% of
  # the machine's CPU capacity.
  quiet=$(awk -v rs="$raw_s" -v ro="$raw_others" -v cs="$can_s" -v co="$can_others" -v n="$(nproc)" \
    'BEGIN {print (ro <= 0.05 * rs * n && co <= 0.05 * cs * n) ? "quiet" : "DISTURBED"}')
  echo "$raw_s $can_s $quiet" >>"$LOGS/rounds"
  printf "  round %d: raw %6.2f s (CPU %5.1f s; others %4.1f s)   canopy %6.2f s (CPU %5.1f s; others %4.1f s)  %s\n" \
    "$i" "$raw_s" "$raw_cpu" "$raw_others" "$can_s" "$can_cpu" "$can_others" "$quiet"
done
echo

echo "== no-change canopy build (no --force), $NOCHANGE_REPS times"
for ((i = 1; i <= NOCHANGE_REPS; i++)); do
  run nochange "$CANOPY" build
done
if ! grep -q " 0 published, " "$LOGS/nochange.last.out"; then
  echo "warning: the no-change build published something:" >&2
  cat "$LOGS/nochange.last.out" >&2
fi
echo "  times (s): $(cut -d' ' -f1 "$LOGS/nochange.times" | tr '\n' ' ')"
echo

echo "== per product, last round"
echo "-- raw_build"
cat "$LOGS/raw.last.out"
echo "-- canopy build --force"
cat "$LOGS/canopy.last.out"
echo

echo "== same work on both sides: rows per port (raw Parquet, Canopy's Parquet, Canopy's manifest)"
compare_ok=yes
"$RAW_BUILD" --compare "$MESH" "$RAW_OUT" || compare_ok=no
raw_bytes=$(du -sb "$RAW_OUT" | cut -f1)
canopy_bytes=$(find "$MESH/.canopy/products" -name '*.parquet' -printf '%s\n' | awk '{t += $1} END {print t + 0}')
awk -v r="$raw_bytes" -v c="$canopy_bytes" \
  'BEGIN {printf "Parquet written: raw %.1f MB, canopy %.1f MB\n", r / 1e6, c / 1e6}'
echo

read -r raw_med raw_min raw_max <<<"$(stats "$LOGS/raw.times" 1)"
read -r can_med can_min can_max <<<"$(stats "$LOGS/canopy.times" 1)"
read -r nc_med nc_min nc_max <<<"$(stats "$LOGS/nochange.times" 1)"
read -r raw_rss_med _ raw_rss_max <<<"$(stats "$LOGS/raw.times" 2)"
read -r can_rss_med _ can_rss_max <<<"$(stats "$LOGS/canopy.times" 2)"
read -r nc_rss_med _ nc_rss_max <<<"$(stats "$LOGS/nochange.times" 2)"
read -r raw_cpu_med _ _ <<<"$(stats "$LOGS/raw.times" 3)"
read -r can_cpu_med _ _ <<<"$(stats "$LOGS/canopy.times" 3)"
read -r nc_cpu_med _ _ <<<"$(stats "$LOGS/nochange.times" 3)"
ratio_med=$(awk -v a="$can_med" -v b="$raw_med" 'BEGIN {printf "%.2f", a / b}')
ratio_min=$(awk -v a="$can_min" -v b="$raw_min" 'BEGIN {printf "%.2f", a / b}')
verdict() { awk -v x="$1" -v goal="$2" 'BEGIN {print (x <= goal) ? "meets" : "MISSES"}'; }
mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

echo "== results: scale $SCALE, $REPS rounds, $(nproc) cores, $cpu"
printf "%-30s %9s %9s %9s %12s %13s %13s\n" "run (wall clock)" "median s" "min s" "max s" \
  "CPU s (med)" "peak RSS med" "peak RSS max"
printf "%-30s %9.2f %9.2f %9.2f %12.2f %10s MB %10s MB\n" "raw DuckDB (raw_build)" \
  "$raw_med" "$raw_min" "$raw_max" "$raw_cpu_med" "$(mb "$raw_rss_med")" "$(mb "$raw_rss_max")"
printf "%-30s %9.2f %9.2f %9.2f %12.2f %10s MB %10s MB\n" "canopy build --force (cold)" \
  "$can_med" "$can_min" "$can_max" "$can_cpu_med" "$(mb "$can_rss_med")" "$(mb "$can_rss_max")"
printf "%-30s %9.3f %9.3f %9.3f %12.2f %10s MB %10s MB\n" "canopy build, no change (x$NOCHANGE_REPS)" \
  "$nc_med" "$nc_min" "$nc_max" "$nc_cpu_med" "$(mb "$nc_rss_med")" "$(mb "$nc_rss_max")"
echo
echo "canopy / raw, median: $ratio_med   ($(verdict "$ratio_med" 1.15) the goal of at most 1.15)"
echo "canopy / raw, min:    $ratio_min   ($(verdict "$ratio_min" 1.15) the goal of at most 1.15)"
echo "no-change build, median: ${nc_med} s   ($(verdict "$nc_med" 1.0) the goal of under 1 s)"
quiet_rounds=$(grep -c ' quiet$' "$LOGS/rounds" || true)
if ((quiet_rounds > 0 && quiet_rounds < REPS)); then
  grep ' quiet$' "$LOGS/rounds" | cut -d' ' -f1 >"$LOGS/quiet.raw"
  grep ' quiet$' "$LOGS/rounds" | cut -d' ' -f2 >"$LOGS/quiet.canopy"
  read -r q_raw q_raw_min _ <<<"$(stats "$LOGS/quiet.raw" 1)"
  read -r q_can q_can_min _ <<<"$(stats "$LOGS/quiet.canopy" 1)"
  echo "only the $quiet_rounds undisturbed round(s): raw median $q_raw s (min $q_raw_min), canopy median $q_can s (min $q_can_min), ratio median $(awk -v a="$q_can" -v b="$q_raw" 'BEGIN {printf "%.2f", a / b}'), min $(awk -v a="$q_can_min" -v b="$q_raw_min" 'BEGIN {printf "%.2f", a / b}')"
fi
echo "rounds undisturbed by other processes: $quiet_rounds of $REPS"
echo "CPU time (user + sys) canopy / raw, median: $(awk -v a="$can_cpu_med" -v b="$raw_cpu_med" 'BEGIN {printf "%.2f", a / b}')"
others_max=$(cat "$LOGS/raw.times" "$LOGS/canopy.times" | awk '$4 > m {m = $4} END {printf "%.1f", m + 0}')
echo "CPU time other processes used during a timed run: at most ${others_max} s (0 on a quiet machine)"
echo "row counts equal on both sides: $compare_ok"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $compare_ok != yes ]]; then exit 1; fi
