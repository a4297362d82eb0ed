"""The measuring half of bench/soak_bench.sh (which sets up the mesh and the server).

    soak_bench.py MESH CANOPY HTTP_PORT PG_PORT SERVER_PID TOKENS DURATION CONNECTIONS BUILD_EVERY

TOKENS is "user=token,user=token,…". Every connection is its own thread and stays open for
the whole run: three in four speak HTTP (keep-alive), one in four the PostgreSQL wire.
Each operation's answer is checked (status and shape); anything else is an error. The
audit entries the run must have caused are counted as they happen (one per governed query,
access request, decision, wire login and published product) and compared, action by
action, with what the catalog holds afterwards.
"""
import collections
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

import psycopg2

(mesh, canopy, http_port, pg_port, server_pid, tokens_arg, duration, connections,
 build_every) = sys.argv[1:10]
duration = float(duration)
connections = int(connections)
build_every = float(build_every)
tokens = dict(pair.split("=", 1) for pair in tokens_arg.strip(",").split(","))
catalog_path = os.path.join(mesh, ".canopy", "catalog.db")

QUERIES = [
    # (user, sql): governed reads, masked and row-filtered ones included, each audited once.
    # Every build makes the same rows, so each answer must equal the one taken before the
    # run, whatever version is live when it is asked.
    ("dana", "select channel, count(*) as lines, sum(net_amount) as revenue "
             "from sales.order_lines group by channel order by revenue desc"),
    ("bob", "select region, count(*) from customers.customers group by region order by 1"),
    ("alice", "select customer_id, email, region from customers.customers "
              "order by customer_id limit 25"),
    ("bob", "select customer_id, email, region from customers.customers "
            "order by customer_id limit 25"),
    ("zoe", "select sku, category from sales.products order by sku limit 20"),
]
reference = {}       # index in QUERIES -> rows
order_ids = []       # orders that have lines, for the wire lookups
# zoe may have one pending request per product (a second is a 409): each product she may
# ask for belongs to one HTTP connection, which asks for it and has its owner decline.
requestable = []

lock = threading.Lock()
counts = collections.Counter()      # operations done, by kind
expected = collections.Counter()    # audit entries the run must have written, by action
errors = []
latencies = collections.defaultdict(list)
stop = threading.Event()


def error(kind, message):
    with lock:
        if len(errors) < 20:
            errors.append("%s: %s" % (kind, message))
        counts["errors"] += 1


def done(kind, seconds, audit_action=None):
    with lock:
        counts[kind] += 1
        latencies[kind].append(seconds)
        if audit_action:
            expected[audit_action] += 1


class Http:
    def __init__(self, user):
        self.user = user
        self.conn = http.client.HTTPConnection("127.0.0.1", int(http_port), timeout=60)

    def call(self, method, path, body=None, user=None):
        headers = {"Authorization": "Bearer " + tokens[user or self.user]}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def http_worker(index):
    client = Http("dana")
    step = index
    while not stop.is_set():
        step += 1
        kind = ("product", "search", "query", "query", "request")[step % 5]
        if kind == "request" and index >= len(requestable):
            kind = "query"
        start = time.perf_counter()
        try:
            if kind == "product":
                status, body = client.call("GET", "/api/v1/products/sales/orders")
                if status != 200 or json.loads(body).get("name") != "orders":
                    raise RuntimeError("status %d %.200s" % (status, body))
                done(kind, time.perf_counter() - start)
            elif kind == "search":
                status, body = client.call("GET", "/api/v1/search?q=orders")
                if status != 200 or not json.loads(body):
                    raise RuntimeError("status %d %.200s" % (status, body))
                done(kind, time.perf_counter() - start)
            elif kind == "query":
                which = step % len(QUERIES)
                user, sql = QUERIES[which]
                status, body = client.call("POST", "/api/v1/query", {"sql": sql, "limit": 100},
                                           user=user)
                with lock:
                    expected["query"] += 1
                if status != 200 or json.loads(body)["rows"] != reference[which]:
                    raise RuntimeError("%s: status %d %.200s" % (user, status, body))
                done(kind, time.perf_counter() - start)
            else:
                # zoe asks for a product, and its owner declines: two entries.
                product = requestable[index]
                status, body = client.call("POST", "/api/v1/access-requests",
                                           {"product": product, "purpose": "soak %d" % step},
                                           user="zoe")
                if status != 201:
                    raise RuntimeError("request: status %d %.200s" % (status, body))
                with lock:
                    expected["request"] += 1
                request_id = json.loads(body)["id"]
                status, body = client.call("POST", "/api/v1/access-requests/%s/deny" % request_id,
                                           {"note": "soak"}, user="alice")
                if status != 200:
                    raise RuntimeError("deny: status %d %.200s" % (status, body))
                done(kind, time.perf_counter() - start, "deny")
        except Exception as e:  # noqa: BLE001 - every failure is counted and shown
            error(kind, e)
            client = Http("dana")


def wire_worker(index):
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=pg_port, user="dana",
                                password=tokens["dana"], dbname="acme")
        conn.autocommit = True
        with lock:
            expected["pg.login"] += 1
    except Exception as e:  # noqa: BLE001
        error("wire-connect", e)
        return
    step = index
    while not stop.is_set():
        step += 1
        start = time.perf_counter()
        try:
            cur = conn.cursor()
            order_id = order_ids[step % len(order_ids)]
            audited = True
            try:
                if step % 2:
                    cur.execute("select count(*), sum(quantity) from sales.order_lines "
                                "where order_id = %s", (order_id,))
                    rows = cur.fetchall()
                else:
                    cur.execute("select category, count(*) from sales.order_lines "
                                "group by category order by category")
                    rows = cur.fetchall()
            except psycopg2.Error as e:
                # Refused for want of a catalog connection (the server busy): the statement
                # never reached the guard, so it has no audit entry. Still an error.
                audited = "all in use" not in str(e)
                raise
            finally:
                if audited:
                    with lock:
                        expected["query"] += 1
            if step % 2 and rows[0][0] < 1:
                raise RuntimeError("order %d has no lines" % order_id)
            if not step % 2 and not rows:
                raise RuntimeError("no categories")
            cur.close()
            done("wire", time.perf_counter() - start)
        except Exception as e:  # noqa: BLE001
            error("wire", e)
    conn.close()


def builder():
    """The domain runner: a forced build of the sales domain every `build_every` seconds."""
    next_at = time.monotonic() + 5
    while not stop.is_set():
        if stop.wait(max(0.0, next_at - time.monotonic())):
            break
        next_at += build_every
        start = time.perf_counter()
        env = dict(os.environ)
        env.pop("CANOPY_CATALOG", None)
        run = subprocess.run([canopy, "build", "--force", "sales"], cwd=mesh, env=env,
                             capture_output=True, text=True)
        seconds = time.perf_counter() - start
        found = re.search(r"(\d+) published, (\d+) unchanged, (\d+) failed", run.stdout)
        if run.returncode != 0 or not found or found.group(3) != "0":
            error("build", "exit %d: %s" % (run.returncode, (run.stdout + run.stderr)[-300:]))
            continue
        with lock:
            expected["publish"] += int(found.group(1))
            counts["builds"] += 1
            counts["published"] += int(found.group(1))
            latencies["build"].append(seconds)


def rss_kb():
    with open("/proc/%s/status" % server_pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def audit_counts(after_seq):
    db = sqlite3.connect("file:%s?mode=ro" % catalog_path, uri=True, timeout=30)
    try:
        rows = db.execute("select action, count(*) from audit_log where seq > ? group by action",
                          (after_seq,)).fetchall()
        return dict(rows)
    finally:
        db.close()


def last_seq():
    db = sqlite3.connect("file:%s?mode=ro" % catalog_path, uri=True, timeout=30)
    try:
        return db.execute("select coalesce(max(seq), 0) from audit_log").fetchone()[0]
    finally:
        db.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def take_references():
    client = Http("dana")
    for which, (user, sql) in enumerate(QUERIES):
        status, body = client.call("POST", "/api/v1/query", {"sql": sql, "limit": 100}, user=user)
        if status != 200:
            raise SystemExit("soak_bench: %s cannot run %s: %s" % (user, sql, body))
        reference[which] = json.loads(body)["rows"]
    status, body = client.call("POST", "/api/v1/query", {
        "sql": "select order_id from sales.order_lines group by order_id order by order_id "
               "limit 1000", "limit": 1000})
    order_ids.extend(row[0] for row in json.loads(body)["rows"])
    # What zoe may ask for and alice may decide: sales' products that are not private.
    status, body = client.call("GET", "/api/v1/products", user="zoe")
    for product in json.loads(body):
        if product.get("domain") == "sales" and product.get("visibility") != "private":
            requestable.append("%s.%s" % (product["domain"], product["name"]))
    if not order_ids:
        raise SystemExit("soak_bench: no orders with lines")


def main():
    take_references()
    first_seq = last_seq()
    wire = max(1, connections // 4)
    threads = [threading.Thread(target=http_worker, args=(i,)) for i in range(connections - wire)]
    threads += [threading.Thread(target=wire_worker, args=(i,)) for i in range(wire)]
    threads.append(threading.Thread(target=builder))
    start = time.monotonic()
    for t in threads:
        t.start()
    print("  %6s  %9s  %8s  %7s  %6s" % ("t (s)", "RSS (MB)", "ops", "builds", "errors"))
    samples = []
    while time.monotonic() - start < duration:
        time.sleep(min(10, max(0.0, duration - (time.monotonic() - start))))
        rss = rss_kb() / 1024.0
        samples.append(rss)
        with lock:
            ops = sum(v for k, v in counts.items() if k not in ("errors", "builds", "published"))
            print("  %6.0f  %9.1f  %8d  %7d  %6d" % (time.monotonic() - start, rss, ops,
                                                     counts["builds"], counts["errors"]))
        sys.stdout.flush()
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start

    print("operations in %.0f s (%d HTTP and %d wire connections):" % (elapsed, connections - wire,
                                                                    wire))
    for kind in ("product", "search", "query", "request", "wire", "build"):
        values = latencies.get(kind, [])
        if values:
            print("  %-8s %7d   %7.1f/s   median %8.2f ms   p99 %8.2f ms" % (
                kind, len(values), len(values) / elapsed, percentile(values, 50) * 1000,
                percentile(values, 99) * 1000))
    print("  builds %d, products published %d" % (counts["builds"], counts["published"]))
    half = samples[len(samples) // 2:] or samples
    print("RSS: first sample %.1f MB, last %.1f MB, max %.1f MB; second half min %.1f / max %.1f MB"
          % (samples[0], samples[-1], max(samples), min(half), max(half)))
    # Flat or not, as one figure: the least-squares slope of the second half's samples (one
    # every 10 s), in MB a minute. The samples swing by 10-30 MB as queries come and go.
    if len(half) >= 2:
        mean_x = (len(half) - 1) / 2.0
        mean_y = sum(half) / len(half)
        slope = (sum((i - mean_x) * (y - mean_y) for i, y in enumerate(half))
                 / sum((i - mean_x) ** 2 for i in range(len(half))))
        print("RSS trend over the second half: %+.2f MB a minute (least squares, %d samples)"
              % (slope * 6, len(half)))

    actual = audit_counts(first_seq)
    lost = 0
    print("audit entries written during the run, by action (expected from the clients):")
    for action in sorted(set(actual) | set(expected)):
        want = expected.get(action)
        have = actual.get(action, 0)
        note = ""
        if want is not None and want != have:
            note = "   <-- %+d" % (have - want)
            lost += abs(have - want)
        print("  %-14s %8d   %s%s" % (action, have, "-" if want is None else "%d" % want, note))
    print("errors: %d" % counts["errors"])
    for line in errors:
        print("  " + line)
    return 1 if counts["errors"] or lost else 0


if __name__ == "__main__":
    sys.exit(main())
