"""The measuring half of bench/pgwire_bench.sh (which sets up both servers).

    pgwire_bench.py ROUNDS HTTP_PORT CANOPY_PG_PORT TOKEN POSTGRES_URL SERVER_PID COLUMNS
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

import psycopg2

rounds, http_port, pg_port, token, pg_url, server_pid, columns = sys.argv[1:8]
rounds = int(rounds)
SMALL = "select count(*), sum(quantity) from sales.order_lines where order_id = 4242"
STREAM = "select %s from sales.order_lines" % columns


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


def rss_kb(field):
    with open("/proc/%s/status" % server_pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def stream(conn, name, watch_server):
    conn.autocommit = True
    cur = conn.cursor()
    samples = []
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            samples.append(rss_kb("VmRSS"))

    sampler = threading.Thread(target=sample)
    if watch_server:
        before = rss_kb("VmRSS")
        sampler.start()
    start = time.perf_counter()
    cur.execute(STREAM)
    rows = 0
    while True:
        batch = cur.fetchmany(10000)
        if not batch:
            break
        rows += len(batch)
    seconds = time.perf_counter() - start
    done.set()
    line = "  %-34s %9d rows in %6.2f s = %9.0f rows/s" % (name, rows, seconds, rows / seconds)
    if watch_server:
        sampler.join()
        line += "; server RSS %d MB before, at most %d MB during" % (
            before // 1024, max(samples + [before]) // 1024)
    print(line)


print("1. a small query's round trip: " + SMALL)
report("Canopy, PostgreSQL wire", wire_latency(canopy_conn()))
report("PostgreSQL 15, its own wire", wire_latency(postgres_conn()))
report("Canopy, REST (POST /api/v1/query)", rest_latency())
print("2. streaming 10 columns of every order line to psycopg2 (a client-side cursor)")
stream(canopy_conn(), "Canopy, PostgreSQL wire", True)
stream(postgres_conn(), "PostgreSQL 15", False)
