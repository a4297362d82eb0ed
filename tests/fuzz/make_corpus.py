#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ from the repository's test
cases and examples. Run from anywhere; it replaces the corpus folders it writes (the
regression cases in tests/fuzz/regressions/ are never touched). Kept so the seeds can
be regenerated when the cases change; its output is committed."""
import hashlib
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fuzz" / "corpus"


def write(target, name, data):
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    digest = hashlib.sha1(data).hexdigest()[:8]
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", name)[:60]
    (folder / f"{safe}-{digest}").write_bytes(data)


def reset(target):
    folder = OUT / target
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()


# --- spec: the mesh, domain, product and dashboard files of the tests and examples ---
def spec():
    reset("spec")
    for base in ["tests/governance/mesh", "tests/specs/base", "examples/acme", "examples/init"]:
        for path in sorted((ROOT / base).rglob("*.yaml")):
            if path.name.endswith(".odcs.yaml"):
                continue
            write("spec", f"{base.split('/')[-1]}-{path.name}", path.read_text())
    # Whole files the spec cases write.
    for test in sorted((ROOT / "tests/specs").glob("*.test")):
        text = test.read_text()
        for n, m in enumerate(re.finditer(r"^=== write (\S+)\n(.*?)(?=^=== |\Z)", text, re.S | re.M)):
            if m.group(1).endswith((".yaml", ".yml")):
                write("spec", f"{test.stem}-{n}", m.group(2))


# --- guard: the SQL of the governance and lineage cases ---
def guard():
    reset("guard")
    seen = set()
    for test in sorted((ROOT / "tests/governance").glob("*.test")):
        lines = test.read_text().split("\n")
        i = 0
        while i < len(lines):
            if re.match(r"^(query|refused|denied|failed|empty) \S+$", lines[i]):
                j = i + 1
                sql = []
                while j < len(lines) and lines[j] != "----":
                    sql.append(lines[j])
                    j += 1
                text = "\n".join(sql).strip()
                if text and text not in seen:
                    seen.add(text)
                    write("guard", test.stem, text)
                i = j
            i += 1
    for test in sorted((ROOT / "tests/lineage").glob("*.test")):
        for m in re.finditer(r"^sql:\n(.*?)\nexpect:", test.read_text(), re.S | re.M):
            text = m.group(1).strip()
            if text and text not in seen:
                seen.add(text)
                write("guard", "lineage-" + test.stem, text)


# --- odcs: the ODCS documents of the shared standards and the tests ---
def odcs():
    reset("odcs")
    paths = sorted((ROOT.parent / "shared/standards/odcs").glob("*.odcs.yaml"))
    paths += sorted((ROOT / "tests").rglob("*.odcs.yaml"))
    paths += sorted((ROOT / "examples").rglob("*.odcs.yaml"))
    for path in paths:
        if "fuzz" in path.parts:
            continue
        data = path.read_bytes()
        if len(data) <= 16384:
            write("odcs", path.name, data)


# --- api: requests, each with and without a valid token ---
API = [
    ("GET /api/v1/health", ""),
    ("GET /api/v1/me", ""),
    ("GET /api/v1/openapi.json", ""),
    ("GET /api/v1/domains", ""),
    ("GET /api/v1/domains/sales", ""),
    ("GET /api/v1/domains/sales/products", ""),
    ("GET /api/v1/products", ""),
    ("GET /api/v1/products?domain=sales&q=orders", ""),
    ("GET /api/v1/products/sales/orders", ""),
    ("GET /api/v1/products/crm/customers/sample", ""),
    ("GET /api/v1/products/sales/orders/versions", ""),
    ("GET /api/v1/search?q=customer", ""),
    ("GET /api/v1/lineage/sales/orders", ""),
    ("GET /api/v1/lineage/sales/orders?column=amount&direction=down", ""),
    ("POST /api/v1/query", '{"sql":"select count(*) from sales.orders"}'),
    ("POST /api/v1/query", '{"sql":"select * from read_csv(\'/etc/passwd\')"}'),
    ("POST /api/v1/query", '{"sql":"select 1", "limit": 5}'),
    ("GET /api/v1/access-requests", ""),
    ("POST /api/v1/access-requests", '{"port":"hr.salaries","reason":"audit"}'),
    ("POST /api/v1/access-requests/1/approve", '{"comment":"ok"}'),
    ("POST /api/v1/access-requests/1/deny", "{}"),
    ("GET /api/v1/grants", ""),
    ("POST /api/v1/grants", '{"port":"crm.customers","principal":"user:zoe"}'),
    ("DELETE /api/v1/grants", '{"port":"crm.customers","principal":"user:zoe"}'),
    ("GET /api/v1/governance", ""),
    ("GET /api/v1/audit?limit=3", ""),
    ("GET /api/v1/dashboards", ""),
    ("GET /api/v1/dashboards/sales/overview", ""),
    ("POST /api/v1/dashboards/sales/overview/charts/total", '{"filters":{"region":"EU"}}'),
    ("GET /api/v1/builder/sources", ""),
    ("GET /api/v1/builder/vocabulary", ""),
    ("POST /api/v1/builder/preview",
     '{"flow":{"blocks":[{"id":"a","kind":"source","port":"sales.orders"}]},"block":"a"}'),
    ("PUT /api/v1/domains/sales/products/fuzzed",
     '{"yaml":"apiVersion: canopy/v1\\nkind: Product\\nname: fuzzed\\n"}'),
    ("PUT /api/v1/domains/sales/dashboards/board",
     '{"yaml":"apiVersion: canopy/v1\\nkind: Dashboard\\nname: board\\n"}'),
    ("POST /api/v1/domains/sales/products", '{"odcs":"apiVersion: v3.1.0\\nkind: DataContract\\n"}'),
]


def api():
    reset("api")
    for n, (line, body) in enumerate(API):
        for auth in ["@token", ""]:
            write("api", f"{n:02d}-{'token' if auth else 'none'}", f"{line}\n{auth}\n{body}")
    write("api", "bad-scheme", "GET /api/v1/me\nBasic abc\n")
    write("api", "forged", "GET /api/v1/me\nBearer cnp_1_" + "0" * 64 + "\n")


# --- pgwire: a client's bytes (startup packet, then typed messages) ---
def startup(params):
    body = struct.pack(">I", 196608)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack(">I", len(body) + 4) + body


def msg(kind, body):
    return kind.encode() + struct.pack(">I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def parse(name, sql, types):
    return msg("P", cstr(name) + cstr(sql) + struct.pack(">h", len(types))
               + b"".join(struct.pack(">I", t) for t in types))


def bind(portal, stmt, formats, values, results=()):
    body = cstr(portal) + cstr(stmt) + struct.pack(">h", len(formats))
    body += b"".join(struct.pack(">h", f) for f in formats)
    body += struct.pack(">h", len(values))
    for v in values:
        body += struct.pack(">i", -1) if v is None else struct.pack(">i", len(v)) + v
    body += struct.pack(">h", len(results)) + b"".join(struct.pack(">h", f) for f in results)
    return msg("B", body)


def pgwire():
    reset("pgwire")
    hello = startup({"user": "dana", "database": "canopy", "application_name": "psql"})
    sync = msg("S", b"")
    write("pgwire", "startup", hello)
    write("pgwire", "ssl", struct.pack(">II", 8, 80877103))
    write("pgwire", "cancel", struct.pack(">IIII", 16, 80877102, 42, 7))
    write("pgwire", "password", hello + msg("p", cstr("cnp_1_secret")))
    # SCRAM-SHA-256 as libpq signs in: SASLInitialResponse, then the client-final message
    # (the nonce is the fuzz target's: the client's then "fuzznonce").
    first = b"n,,n=,r=clientnonce"
    write("pgwire", "scram", hello
          + msg("p", cstr("SCRAM-SHA-256") + struct.pack(">i", len(first)) + first)
          + msg("p", b"c=biws,r=clientnoncefuzznonce,p=" + b"A" * 43 + b"="))
    for n, q in enumerate(["select 1", "select 1; select 2;", "select ';' as a; -- c;\nselect $$;$$",
                           "/* a; /* b; */ */ select 1", "select e'\\';' ; select \"a;b\"", "  ;; ",
                           "BEGIN; select * from sales.orders; COMMIT"]):
        write("pgwire", f"query-{n}", hello + msg("Q", cstr(q)))
    ext = [
        ("select $1::int + $2", [23, 0], [0], [b"41", b"1"]),
        ("select $1", [25], [0], [b"it's"]),
        ("select $1, $2, $3", [16, 20, 701], [1], [b"\x01", struct.pack(">q", -5), struct.pack(">d", 1.5)]),
        ("select $1", [1700], [1], [struct.pack(">hhhh", 2, 1, 0, 2) + struct.pack(">hh", 12, 3400)]),
        ("select $1", [1082], [1], [struct.pack(">i", -730000)]),
        ("select $1", [1114], [1], [struct.pack(">q", 1234567890123)]),
        ("select $1", [2950], [1], [bytes(range(16))]),
        ("select $1", [17], [0], [b"\\x6869"]),
        ("select $1", [1186], [1], [struct.pack(">qii", 1000000, 2, 3)]),
        ("select $1, $2", [1043, 1700], [0, 0], [b"caf\xc3\xa9", b"-12.5e3"]),
        ("select $1", [0], [0], [None]),
        ("select $1 -- $2\n, '$3'", [], [], [b"x"]),
    ]
    for n, (sql, types, formats, values) in enumerate(ext):
        data = hello + parse("s", sql, types) + bind("", "s", formats, values, [1])
        data += msg("D", b"P" + cstr("")) + msg("E", cstr("") + struct.pack(">i", 10))
        data += msg("C", b"S" + cstr("s")) + sync
        write("pgwire", f"extended-{n}", data)


if __name__ == "__main__":
    spec()
    guard()
    odcs()
    api()
    pgwire()
    for target in sorted(OUT.iterdir()):
        print(target.name, len(list(target.iterdir())))
