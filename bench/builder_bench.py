"""The measuring half of bench/builder_bench.sh: the builder's block previews.

    builder_bench.py HTTP_PORT TOKEN ROUNDS SQL_OUT

For each block of a flow over the example (sales.orders joined to customers.customers,
filtered, a derived column, aggregated by region), ROUNDS previews through
POST /api/v1/builder/preview as bob (a sales member without the pii clearance): the
whole round trip (median, p95) and the server's own time. Each block's SQL is written
to SQL_OUT (one per line) for the raw DuckDB comparison the shell script runs.
"""
import http.client
import json
import sys
import time

port, token, rounds, sql_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
FLOW = {"product": {"name": "bench"}, "blocks": [
    {"id": "orders", "type": "source", "port": "sales.orders"},
    {"id": "customers", "type": "source", "port": "customers.customers"},
    {"id": "joined", "type": "join", "inputs": ["orders", "customers"],
     "on": [{"left": "customer_id", "right": "customer_id"}]},
    {"id": "kept", "type": "filter", "input": "joined",
     "where": {"group": "and", "conditions": [
         {"column": "order_status", "op": "!=", "value": "cancelled"}]}},
    {"id": "loud", "type": "derive", "input": "kept", "name": "email_upper",
     "expression": "upper(email)"},
    {"id": "by_region", "type": "aggregate", "input": "loud", "group_by": ["region"],
     "measures": [{"function": "sum", "column": "net_amount", "as": "net_sales"},
                  {"function": "count", "as": "orders"}]},
]}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


conn = http.client.HTTPConnection("127.0.0.1", int(port))
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
statements = []
print("  %-10s %-22s %8s %10s %10s %12s %8s"
      % ("block", "asked", "rows", "median ms", "p95 ms", "server ms", "columns"))
for block, profile in [(b["id"], p) for b in FLOW["blocks"] for p in (False, True)]:
    # As the builder asks: the first 50 rows and their count when a block is previewed;
    # the profile alone ({"limit": 0}) when its tab is opened.
    body = json.dumps({"flow": FLOW, "block": block, "limit": 0 if profile else 50,
                       "profile": profile})
    times, server = [], []
    answer = None
    for i in range(rounds + 2):
        start = time.perf_counter()
        conn.request("POST", "/api/v1/builder/preview", body, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit("preview of %s answered %d: %s" % (block, response.status, data[:300]))
        if i >= 2:  # the first two warm up (a sandbox is opened for bob's ports)
            times.append((time.perf_counter() - start) * 1000)
            answer = json.loads(data)
            server.append(answer["duration_ms"])
    if profile:
        statements.append(answer["sql"].replace("\n", " "))
    print("  %-10s %-22s %8d %10.1f %10.1f %12.1f %8d" % (block, "profile alone" if profile
                                                         else "rows and count", answer["row_count"],
                                                         percentile(times, 50),
                                                  percentile(times, 95), percentile(server, 50),
                                                  len(answer["columns"])))
with open(sql_out, "w") as out:
    for sql in statements:
        out.write(sql + "\n")
