"""psycopg2 (Debian's python3-psycopg2) against `canopy serve --pg-listen`.

    psycopg2_client.py PORT USER TOKEN OTHER_TOKEN

Prints one line per check, "ok <what>" or "FAIL <what>: <why>", and exits 1 when any
failed. psycopg2 sends parameters bound on the client side, over the simple query
protocol, inside the transaction it opens itself (BEGIN).
"""
import sys

import psycopg2
import psycopg2.errors

port, user, token, other_token = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
failed = []


def check(what, condition, why=""):
    print(("ok " if condition else "FAIL ") + what + ("" if condition else ": " + why))
    if not condition:
        failed.append(what)


def connect(password):
    return psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password,
                            dbname="govtest", connect_timeout=10)


conn = connect(token)
cur = conn.cursor()
cur.execute("select id, email, region from crm.customers where region = %s order by id", ("EU",))
rows = cur.fetchall()
check("a parameterised query", [r[0] for r in rows] == [1, 3], repr(rows))
check("masked values keep their place", all(r[1].startswith("h_") for r in rows), repr(rows))
check("no source value", all("@" not in r[1] for r in rows), repr(rows))
check("types: integers come as int", all(isinstance(r[0], int) for r in rows), repr(rows))
check("the description names the columns",
      [d.name for d in cur.description] == ["id", "email", "region"], repr(cur.description))

cur.execute("select count(*) from crm.customers where id in %s", ((1, 2, 3),))
check("a tuple parameter", cur.fetchone()[0] == 3)

cur.execute("select %s::varchar as quoted", ("it's; select 1 --",))
check("a quote in a parameter stays a value", cur.fetchone()[0] == "it's; select 1 --")

try:
    cur.execute("select * from hr.salaries")
    check("a private port is refused", False, "it answered")
except psycopg2.Error as e:
    check("a private port is refused", e.pgcode in ("42P01", "42501"), repr(e.pgcode))
conn.rollback()
cur.execute("select 1")
check("the connection goes on after an error", cur.fetchone()[0] == 1)
conn.close()

# A server-side cursor (DECLARE … CURSOR, then FETCH FORWARD n) over a million rows,
# each with a masked value: read in steps, never held whole by either side.
conn = connect(token)
cur = conn.cursor(name="big")
cur.itersize = 5000
cur.execute("select t.n, c.email from range(1000000) t(n) "
            "join crm.customers c on c.id = t.n % 6 + 1")
count, total, masked = 0, 0, True
for n, email in cur:
    count += 1
    total += n
    masked = masked and (email is None or email.startswith("h_"))
check("a server-side cursor reads 1 M rows", count == 1000000, str(count))
check("every row once", total == 999999 * 1000000 // 2, str(total))
check("masked in every row", masked)
cur.close()
cur = conn.cursor(name="few")
cur.execute("select id from crm.customers order by id")
check("a cursor fetches what is asked", [r[0] for r in cur.fetchmany(4)] == [1, 2, 3, 4])
check("and then the rest", [r[0] for r in cur.fetchall()] == [5, 6])
cur.close()
cur = conn.cursor()
cur.execute("select count(*) from (select * from range(1000001))")
check("a count over more rows than the limit is whole", cur.fetchone()[0] == 1000001)
cur.execute("select * from range(1000001)")
check("a result past the limit is cut at it", len(cur.fetchall()) == 1000000)
check("and says so", any("cut at 1000000 rows" in n for n in conn.notices), repr(conn.notices))
conn.commit()
try:
    conn.cursor(name="denied").execute("select * from hr.salaries")
    check("a cursor over a private port is refused", False, "it was declared")
except psycopg2.Error as e:
    check("a cursor over a private port is refused", e.pgcode in ("42P01", "42501"), repr(e.pgcode))
conn.rollback()
conn.close()

# A cancel from another thread (a CancelRequest on a connection of its own, with the
# session's secret key) stops a long statement well before the 10 s limit.
import threading  # noqa: E402
import time  # noqa: E402

conn = connect(token)
cur = conn.cursor()
timer = threading.Timer(0.5, conn.cancel)
started = time.monotonic()
timer.start()
try:
    cur.execute("with recursive t(n) as (select 1 union all select n + 1 from t "
                "where n < 1000000000) select count(*) from t")
    check("a cancelled query stops", False, "it finished")
except psycopg2.errors.QueryCanceled as e:
    elapsed = time.monotonic() - started
    check("a cancelled query stops with 57014", e.pgcode == "57014", repr(e.pgcode))
    check("the cancel, not the time limit, stopped it", elapsed < 5, "%.1f s" % elapsed)
    check("it says it was cancelled", "cancelled" in str(e), str(e))
timer.cancel()
conn.rollback()
cur.execute("select 2")
check("the connection goes on after a cancel", cur.fetchone()[0] == 2)
conn.close()

try:
    connect(other_token)
    check("another user's token is refused", False, "it connected")
except psycopg2.OperationalError as e:
    check("another user's token is refused", "password authentication failed" in str(e), str(e))

sys.exit(1 if failed else 0)
