"""The measuring half of bench/pgwire_bench.sh (which sets up both servers).

    pgwire_bench.py ROUNDS HTTP_PORT CANOPY_PG_PORT TOKEN POSTGRES_URL SERVER_PID COLUMNS DURATION
"""
import http.client
import json
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.parse

import psycopg2

rounds, http_port, pg_port, token, pg_url, server_pid, columns, duration = sys.argv[1:9]
rounds = int(rounds)
duration = float(duration)
SMALL = "select count(*), sum(quantity) from sales.order_lines where order_id = 4242"
# Every order line: a million at scale 1 (run the script at scale 1 for this figure; at
# scale 10 it is ten million). Not a LIMIT: in DuckDB a LIMIT over a parallel scan gathers
# its rows before the first goes out (about 250 MB for a million of them).
STREAM = "select %s from sales.order_lines" % columns
GROUP_BY = ("select category, count(*) as lines, sum(quantity) as units, "
            "sum(quantity * unit_price) as revenue from sales.order_lines "
            "group by category order by category")
# What 32 connections run, in turn: a lookup, a parameterised filter, an aggregate, a
# question about the catalog (as tools ask), a read through a server-side cursor.
MIX = [
    ("lookup", SMALL, None),
    ("filter", "select count(*) from sales.order_lines where category = %s and quantity > %s",
     ("books", 2)),
    ("aggregate", "select order_date, sum(quantity) from sales.order_lines "
     "where order_id between 1000 and 20000 group by order_date order by 1", None),
    ("catalog", "select table_schema, table_name from information_schema.tables order by 1, 2",
     None),
    ("cursor", "select order_line_id, sku from sales.order_lines where order_id < 3000", None),
]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def report(name, seconds):
    ms = [s * 1000 for s in seconds]
    print("  %-34s median %8.3f ms   p99 %8.3f ms   (%d rounds)"
          % (name, percentile(ms, 50), percentile(ms, 99), len(ms)))


def canopy_conn():
    return psycopg2.connect(host="127.0.0.1", port=pg_port, user="dana", password=token,
                            dbname="acme")


def postgres_conn():
    parts = urllib.parse.urlparse(pg_url)
    return psycopg2.connect(host=parts.hostname, port=parts.port, user=parts.username,
                            password=parts.password, dbname=parts.path.lstrip("/"))


def wire_latency(conn):
    conn.autocommit = True
    cur = conn.cursor()
    times = []
    for i in range(rounds + 20):
        start = time.perf_counter()
        cur.execute(SMALL)
        cur.fetchall()
        if i >= 20:  # the first 20 warm up
            times.append(time.perf_counter() - start)
    return times


def rest_latency():
    conn = http.client.HTTPConnection("127.0.0.1", int(http_port))
    body = json.dumps({"sql": SMALL})
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    times = []
    for i in range(rounds + 20):
        start = time.perf_counter()
        conn.request("POST", "/api/v1/query", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit("REST answered %d" % response.status)
        if i >= 20:
            times.append(time.perf_counter() - start)
    return times


def rss_kb(field, pid=None):
    with open("/proc/%s/status" % (pid or server_pid)) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def stream(conn, pid, named=False):
    """Rows per second of one read of STREAM, the RSS at most meanwhile of the process `pid`
    that answers it, and the client's page faults. Both servers are sampled the same way, so
    the sampling thread costs the client the same on each side. `named`: through a named
    (server-side) cursor, psycopg2's way of streaming a result too large to hold, 10,000 rows
    a FETCH, in a transaction as it must be; else a client-side cursor, libpq holding the
    whole result before the first row is handed over."""
    conn.autocommit = not named
    cur = conn.cursor(name="stream") if named else conn.cursor()
    samples = []
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            samples.append(rss_kb("VmRSS", pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    cur.execute(STREAM)
    rows = 0
    while True:
        batch = cur.fetchmany(10000)
        if not batch:
            break
        rows += len(batch)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    done.set()
    sampler.join()
    if named:
        cur.close()
        conn.rollback()
    conn.close()
    return rows, rows / seconds, max(samples + [0]) // 1024, faults


def streams(rounds, named=False):
    """Canopy and PostgreSQL in turn, `rounds` times each (a fresh connection each time,
    so neither side is favoured by what the machine was doing at one moment; which goes
    first alternates), after one stream from each that is not counted (the client's first
    result grows its heap)."""
    before = rss_kb("VmRSS") // 1024
    canopy, postgres, peak, postgres_peak, faults = [], [], 0, 0, []
    def run_canopy(counted):
        nonlocal peak, rows
        rows, rate, rss, faulted = stream(canopy_conn(), server_pid, named)
        if counted:
            canopy.append(rate)
            faults.append(faulted)
        peak = max(peak, rss)

    def run_postgres(counted):
        nonlocal postgres_peak
        conn = postgres_conn()
        conn.autocommit = True
        backend = conn.cursor()
        backend.execute("select pg_backend_pid()")
        _, rate, rss, faulted = stream(conn, backend.fetchone()[0], named)
        if counted:
            postgres.append(rate)
            faults.append(faulted)
        postgres_peak = max(postgres_peak, rss)

    rows = 0
    # Each server goes first in every other round: neither always follows the other's stream
    # (its teardown, its audit write) nor always has the machine to itself.
    for n, counted in enumerate([False] + [True] * rounds):
        for run in ((run_canopy, run_postgres) if n % 2 == 0 else (run_postgres, run_canopy)):
            run(counted)
    for name, rates in (("Canopy, PostgreSQL wire", canopy), ("PostgreSQL 15", postgres)):
        print("  %-34s %9d rows: median %9.0f rows/s, best %9.0f (%d runs)"
              % (name, rows, percentile(rates, 50), max(rates), rounds))
    print("  Canopy / PostgreSQL (medians): %.2f; Canopy's server RSS %d MB before, at most %d MB "
          "during; PostgreSQL's backend at most %d MB; the client's page faults per stream: "
          "median %d"
          % (percentile(canopy, 50) / percentile(postgres, 50), before, peak, postgres_peak,
             percentile(faults, 50)))


def timed(conn, sql, reps):
    conn.autocommit = True
    cur = conn.cursor()
    times = []
    rows = 0
    for _ in range(reps + 1):
        start = time.perf_counter()
        cur.execute(sql)
        rows = len(cur.fetchall())
        times.append(time.perf_counter() - start)
    return times[1:], rows  # the first warms up


def concurrent(connections, seconds):
    counts = {name: 0 for name, _, _ in MIX}
    latencies = []
    errors = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(index):
        try:
            conn = canopy_conn()
        except Exception as e:  # noqa: BLE001 - every failure counts
            with lock:
                errors.append("connect: %s" % e)
            return
        turn = index
        while time.perf_counter() < stop_at:
            name, sql, params = MIX[turn % len(MIX)]
            turn += 1
            start = time.perf_counter()
            try:
                if name == "cursor":
                    cur = conn.cursor(name="c%d" % turn)
                    cur.itersize = 2000
                    cur.execute(sql)
                    for _ in cur:
                        pass
                    cur.close()
                    conn.commit()
                else:
                    cur = conn.cursor()
                    cur.execute(sql, params)
                    cur.fetchall()
                    conn.commit()
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append("%s: %s" % (name, e))
                conn.rollback()
                continue
            with lock:
                counts[name] += 1
                latencies.append(time.perf_counter() - start)
        conn.close()

    before = rss_kb("VmRSS")
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    ms = [s * 1000 for s in latencies] or [0]
    print("  %d connections, %.0f s: %d statements (%.0f/s), median %.1f ms, p99 %.1f ms, "
          "%d errors; server RSS %d MB before, %d MB after"
          % (connections, elapsed, total, total / elapsed, percentile(ms, 50),
             percentile(ms, 99), len(errors), before // 1024, rss_kb("VmRSS") // 1024))
    print("  per kind: " + ", ".join("%s %d" % (k, v) for k, v in counts.items()))
    for e in errors[:5]:
        print("  error: " + e)


# PARTS (environment) runs only the sections named, e.g. PARTS=2 for the streams alone;
# STREAMS sets how many streams each server answers in section 2 (default 5).
parts = os.environ.get("PARTS", "1234")
stream_rounds = int(os.environ.get("STREAMS", "5"))
if "1" in parts:
    print("1. a small query's round trip: " + SMALL)
    report("Canopy, PostgreSQL wire", wire_latency(canopy_conn()))
    report("PostgreSQL 15, its own wire", wire_latency(postgres_conn()))
    report("Canopy, REST (POST /api/v1/query)", rest_latency())
if "2" in parts:
    # libpq keeps the whole result (about 250 MB here) until it is cleared. Whether the
    # client's glibc then gives that memory back to the system, and faults it in again for
    # the next result, depends on what else the client's heap holds; it decides how fast the
    # client reads. Both ways are measured, each in a process of its own: glibc's defaults
    # as they fall out in this script (it gives the memory back), and a client keeping its
    # heap (MALLOC_TRIM_THRESHOLD_), where the client is no longer the slower side.
    print("2. streaming 10 columns of every order line to psycopg2 (a client-side cursor)")
    for label, extra in (("giving its heap back after each result (glibc's defaults, here)", {}),
                         ("keeping its heap (MALLOC_TRIM_THRESHOLD_=4294967296)",
                          {"MALLOC_TRIM_THRESHOLD_": "4294967296"})):
        print(" the client " + label)
        sys.stdout.flush()
        subprocess.run([sys.executable, __file__] + sys.argv[1:], check=True,
                       env=dict(os.environ, PARTS="S", **extra))
    print("2b. the same rows through a named (server-side) cursor, 10,000 rows a FETCH")
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__] + sys.argv[1:], check=True,
                   env=dict(os.environ, PARTS="N"))
if "S" in parts:
    streams(stream_rounds)
if "N" in parts:
    streams(stream_rounds, named=True)
if "3" in parts:
    print("3. a group-by over every order line: " + GROUP_BY)
    for name, conn in (("Canopy, PostgreSQL wire", canopy_conn()),
                       ("PostgreSQL 15", postgres_conn())):
        times, rows = timed(conn, GROUP_BY, 5)
        ms = [t * 1000 for t in times]
        print("  %-34s median %9.1f ms   min %9.1f ms   (%d groups, 5 runs)"
              % (name, percentile(ms, 50), min(ms), rows))
if "4" in parts:
    print("4. 32 connections at once, a mix of statements")
    concurrent(32, duration)
