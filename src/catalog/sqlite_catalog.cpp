#include "catalog/sqlite_catalog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <set>
#include <utility>

#include "catalog/pg_catalog.h"
#include "catalog/sqlite_handle.h"
#include "catalog/store_util.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fault.h"
#include "core/hash.h"

namespace canopy::catalog {

namespace {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;

// Version 1: the whole catalog. Published versions and what hangs off them are
// immutable; a product points at its live version.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE domains (
  name        TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE domain_owners (
  domain   TEXT NOT NULL REFERENCES domains(name),
  position INTEGER NOT NULL,
  owner    TEXT NOT NULL,
  PRIMARY KEY (domain, position)
);
CREATE TABLE products (
  id              INTEGER PRIMARY KEY,
  domain          TEXT NOT NULL REFERENCES domains(name),
  name            TEXT NOT NULL,
  version         TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL DEFAULT '',
  type            TEXT NOT NULL DEFAULT '',
  owner           TEXT NOT NULL DEFAULT '',
  visibility      TEXT NOT NULL DEFAULT '',
  purpose         TEXT NOT NULL DEFAULT '',
  usage           TEXT NOT NULL DEFAULT '',
  limitations     TEXT NOT NULL DEFAULT '',
  live_version_id INTEGER REFERENCES versions(id),
  UNIQUE (domain, name)
);
CREATE TABLE product_tags (
  product_id INTEGER NOT NULL REFERENCES products(id),
  position   INTEGER NOT NULL,
  tag        TEXT NOT NULL,
  PRIMARY KEY (product_id, position)
);
CREATE TABLE versions (
  id            INTEGER PRIMARY KEY,
  product_id    INTEGER NOT NULL REFERENCES products(id),
  version       TEXT NOT NULL,
  build_id      TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,
  published_at  TEXT NOT NULL,
  manifest_path TEXT NOT NULL,
  duration_ms   INTEGER NOT NULL,
  UNIQUE (product_id, build_id)
);
CREATE TABLE ports (
  id          INTEGER PRIMARY KEY,
  version_id  INTEGER NOT NULL REFERENCES versions(id),
  position    INTEGER NOT NULL,
  name        TEXT NOT NULL,
  sql_name    TEXT NOT NULL,
  description TEXT NOT NULL,
  path        TEXT NOT NULL,
  row_count   INTEGER NOT NULL,
  byte_count  INTEGER NOT NULL,
  checksum    TEXT NOT NULL,
  UNIQUE (version_id, name)
);
CREATE TABLE columns (
  port_id        INTEGER NOT NULL REFERENCES ports(id),
  position       INTEGER NOT NULL,
  name           TEXT NOT NULL,
  type           TEXT NOT NULL,
  classification TEXT NOT NULL,
  required       INTEGER NOT NULL,
  is_unique      INTEGER NOT NULL,
  primary_key    INTEGER NOT NULL,
  description    TEXT NOT NULL,
  PRIMARY KEY (port_id, position),
  UNIQUE (port_id, name)
);
CREATE TABLE quality_results (
  version_id  INTEGER NOT NULL REFERENCES versions(id),
  position    INTEGER NOT NULL,
  port        TEXT NOT NULL,
  column_name TEXT NOT NULL,
  rule        TEXT NOT NULL,
  severity    TEXT NOT NULL,
  passed      INTEGER NOT NULL,
  observed    TEXT NOT NULL,
  threshold   TEXT NOT NULL,
  message     TEXT NOT NULL,
  PRIMARY KEY (version_id, position)
);
CREATE TABLE lineage_edges (
  version_id INTEGER NOT NULL REFERENCES versions(id),
  source     TEXT NOT NULL,
  target     TEXT NOT NULL,
  PRIMARY KEY (version_id, source, target)
);
CREATE INDEX lineage_edges_by_source ON lineage_edges(source);
CREATE TABLE input_versions (
  version_id INTEGER NOT NULL REFERENCES versions(id),
  upstream   TEXT NOT NULL,
  build_id   TEXT NOT NULL,
  PRIMARY KEY (version_id, upstream)
);
CREATE TABLE builds (
  id          TEXT PRIMARY KEY,
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL
);
CREATE TABLE build_targets (
  build_id TEXT NOT NULL REFERENCES builds(id),
  position INTEGER NOT NULL,
  target   TEXT NOT NULL,
  PRIMARY KEY (build_id, position)
);
CREATE TABLE product_runs (
  build_id      TEXT NOT NULL REFERENCES builds(id),
  domain        TEXT NOT NULL,
  product       TEXT NOT NULL,
  status        TEXT NOT NULL,
  message       TEXT NOT NULL,
  row_count     INTEGER NOT NULL,
  duration_ms   INTEGER NOT NULL,
  checks_passed INTEGER NOT NULL,
  checks_total  INTEGER NOT NULL,
  PRIMARY KEY (build_id, domain, product)
);
CREATE TRIGGER versions_are_immutable BEFORE UPDATE ON versions
  BEGIN SELECT RAISE(ABORT, 'published versions are immutable'); END;
CREATE TRIGGER ports_are_immutable BEFORE UPDATE ON ports
  BEGIN SELECT RAISE(ABORT, 'published ports are immutable'); END;
CREATE TRIGGER columns_are_immutable BEFORE UPDATE ON columns
  BEGIN SELECT RAISE(ABORT, 'published columns are immutable'); END;

-- One row per product (rowid = products.id), rebuilt from the tables above
-- whenever the product's spec or live version changes.
CREATE VIRTUAL TABLE search_index USING fts5(
  name, tags, description, ports, columns,
  tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
)sql";

// --- migrations ---

int SchemaVersion(Connection& db) {
  Statement exists(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  if (!exists.Bind("schema_migrations").Step()) return 0;
  Statement max(db, "SELECT coalesce(max(version), 0) FROM schema_migrations");
  max.Step();
  return static_cast<int>(max.Int(0));
}

// Applies one migration; the caller holds the write transaction.
void Apply(Connection& db, const Migration& migration) {
  db.Execute(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
  Statement applied(db, "SELECT 1 FROM schema_migrations WHERE version = ?");
  if (applied.Bind(migration.version).Step()) return;
  db.Execute(migration.sql.c_str());
  Statement(db,
            "INSERT INTO schema_migrations (version, applied_at) "
            "VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))")
      .Bind(migration.version)
      .Run();
}

void CheckSchemaVersion(const std::string& path, int on_disk, int latest, Upgrade upgrade) {
  if (on_disk > latest) {
    throw Error(
        ErrorCode::kFailed,
        "catalog schema version " + std::to_string(on_disk) + " is newer than this canopy supports",
        path + " was written by a newer canopy (this one knows up to version " +
            std::to_string(latest) + "); upgrade canopy to use it");
  }
  if (on_disk > 0 && on_disk < latest && upgrade == Upgrade::kRefuse) {
    throw OlderSchemaError(path, on_disk, latest);
  }
}

// Brings the file's schema to the latest migration; returns the version it had (0: a
// new catalog). The version is read again, and every missing migration applied, inside
// one write transaction: processes opening a new file at once never see it half-migrated.
int Migrate(Connection& db, const std::string& path, const std::vector<Migration>& migrations,
            Upgrade upgrade) {
  for (size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version <= migrations[i - 1].version) {
      throw Error(ErrorCode::kInternal, "catalog migrations are not in increasing order");
    }
  }
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  const int seen = Doing("read the schema version of " + path, [&] { return SchemaVersion(db); });
  if (seen == latest) return seen;
  if (seen > latest) CheckSchemaVersion(path, seen, latest, upgrade);
  return Doing("migrate " + path, [&] {
    Transaction transaction(db, Transaction::Mode::kWrite);
    const int on_disk = SchemaVersion(db);
    CheckSchemaVersion(path, on_disk, latest, upgrade);
    for (const Migration& migration : migrations) {
      if (migration.version <= on_disk) continue;
      Doing("apply migration " + std::to_string(migration.version) + " to " + path,
            [&] { Apply(db, migration); });
    }
    transaction.Commit();
    return on_disk;
  });
}

// --- writes ---

void EnsureDomain(Connection& db, const std::string& domain) {
  Statement(db, "INSERT INTO domains (name) VALUES (?) ON CONFLICT DO NOTHING").Bind(domain).Run();
}

std::optional<int64_t> ProductId(Connection& db, const std::string& domain,
                                 const std::string& product) {
  Statement select(db, "SELECT id FROM products WHERE domain = ? AND name = ?");
  if (!select.Bind(domain, product).Step()) return std::nullopt;
  return select.Int(0);
}

// Rebuilds the product's search row from its spec and its live version.
void RefreshSearch(Connection& db, int64_t product_id) {
  Statement(db, "DELETE FROM search_index WHERE rowid = ?").Bind(product_id).Run();
  Statement(db, R"sql(
    INSERT INTO search_index (rowid, name, tags, description, ports, columns)
    SELECT p.id, p.name,
      (SELECT group_concat(tag, ' ') FROM product_tags WHERE product_id = p.id),
      trim(p.purpose || char(10) || p.usage || char(10) || p.limitations, char(10)),
      (SELECT group_concat(name || ': ' || description, char(10))
         FROM ports WHERE version_id = p.live_version_id),
      (SELECT group_concat(c.name || ': ' || c.description, char(10))
         FROM columns c JOIN ports o ON o.id = c.port_id
        WHERE o.version_id = p.live_version_id)
    FROM products p WHERE p.id = ?)sql")
      .Bind(product_id)
      .Run();
}

void UpsertDomain(Connection& db, const DomainRecord& domain) {
  Statement(db,
            "INSERT INTO domains (name, description) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET description = excluded.description")
      .Bind(domain.name, domain.description)
      .Run();
  Statement(db, "DELETE FROM domain_owners WHERE domain = ?").Bind(domain.name).Run();
  Statement insert(db, "INSERT INTO domain_owners (domain, position, owner) VALUES (?, ?, ?)");
  for (size_t i = 0; i < domain.owners.size(); ++i) {
    insert.Bind(domain.name, i, domain.owners[i]).Run();
  }
}

int64_t UpsertProduct(Connection& db, const ProductRecord& p) {
  EnsureDomain(db, p.domain);
  Statement(db, R"sql(
    INSERT INTO products (domain, name, version, status, type, owner, visibility,
                          purpose, usage, limitations)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (domain, name) DO UPDATE SET
      version = excluded.version, status = excluded.status, type = excluded.type,
      owner = excluded.owner, visibility = excluded.visibility, purpose = excluded.purpose,
      usage = excluded.usage, limitations = excluded.limitations)sql")
      .Bind(p.domain, p.name, p.version, p.status, p.type, p.owner, p.visibility, p.purpose,
            p.usage, p.limitations)
      .Run();
  const int64_t id = *ProductId(db, p.domain, p.name);
  Statement(db, "DELETE FROM product_tags WHERE product_id = ?").Bind(id).Run();
  Statement insert(db, "INSERT INTO product_tags (product_id, position, tag) VALUES (?, ?, ?)");
  for (size_t i = 0; i < p.tags.size(); ++i) insert.Bind(id, i, p.tags[i]).Run();
  return id;
}

void InsertPorts(Connection& db, int64_t version_id, const std::vector<PortRecord>& ports) {
  Statement port_insert(db, R"sql(
    INSERT INTO ports (version_id, position, name, sql_name, description, path, row_count,
                       byte_count, checksum)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?))sql");
  Statement column_insert(db, R"sql(
    INSERT INTO columns (port_id, position, name, type, classification, required, is_unique,
                         primary_key, description)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?))sql");
  for (size_t i = 0; i < ports.size(); ++i) {
    const PortRecord& p = ports[i];
    port_insert
        .Bind(version_id, i, p.name, p.sql_name, p.description, p.path, p.rows, p.bytes, p.checksum)
        .Run();
    const int64_t port_id = sqlite3_last_insert_rowid(db.handle());
    for (size_t j = 0; j < p.columns.size(); ++j) {
      const ColumnRecord& c = p.columns[j];
      column_insert
          .Bind(port_id, j, c.name, c.type, c.classification, c.required, c.unique, c.primary_key,
                c.description)
          .Run();
    }
  }
}

// Appends `entry` to the chain inside the caller's write transaction: it links to the
// head as read in that transaction, which the write lock keeps from moving.
AuditEntry InsertAudit(Connection& db, const AuditSeal& seal, const AuditEntry& entry) {
  AuditEntry stored = entry;
  Statement last(db, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
  if (last.Step()) {
    stored.seq = last.Int(0) + 1;
    stored.prev_hash = last.Text(1);
  } else {
    stored.seq = 1;
    stored.prev_hash = std::string(64, '0');
  }
  stored.hash = seal.Hash(stored);
  Statement(db, R"sql(
    INSERT INTO audit_log (seq, at, principal, action, target, outcome, details, prev_hash, hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?))sql")
      .Bind(stored.seq, stored.at, stored.principal, stored.action, stored.target, stored.outcome,
            stored.details, stored.prev_hash, stored.hash)
      .Run();
  fault::Hit(fault::Point::kAuditAppend);
  return stored;
}

void InsertVersionDetails(Connection& db, int64_t version_id, const PublishedVersion& v) {
  InsertPorts(db, version_id, v.ports);
  Statement quality(db, R"sql(
    INSERT INTO quality_results (version_id, position, port, column_name, rule, severity,
                                 passed, observed, threshold, message)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?))sql");
  for (size_t i = 0; i < v.quality.size(); ++i) {
    const QualityResult& q = v.quality[i];
    quality
        .Bind(version_id, i, q.port, q.column, q.rule, q.severity, q.passed, q.observed,
              q.threshold, q.message)
        .Run();
  }
  Statement lineage(db,
                    "INSERT INTO lineage_edges (version_id, source, target) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING");
  for (const LineageEdge& edge : v.lineage) lineage.Bind(version_id, edge.from, edge.to).Run();
  Statement columns(db, R"sql(
    INSERT INTO column_lineage (version_id, target, column_name, source, source_column, type,
                                subtype, dataset)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING)sql");
  for (const ColumnLineageEdge& e : v.column_lineage) {
    columns
        .Bind(version_id, e.target, e.column, e.source, e.source_column, e.type, e.subtype,
              e.dataset)
        .Run();
  }
  Statement ports(db,
                  "INSERT INTO port_lineage (version_id, target, analysed, reason) "
                  "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING");
  for (const PortLineage& p : v.port_lineage) {
    ports.Bind(version_id, p.target, p.analysed, p.reason).Run();
  }
  Statement inputs(db,
                   "INSERT INTO input_versions (version_id, upstream, build_id) VALUES (?, ?, ?)");
  for (const auto& [upstream, build_id] : v.input_versions) {
    inputs.Bind(version_id, upstream, build_id).Run();
  }
}

// --- reads ---

// The columns ReadSummary expects, in order; the rest of the query follows.
constexpr const char* kSummarySelect = R"sql(
  SELECT p.id, p.domain, p.name, p.version, p.status, p.type, p.owner, p.visibility,
         p.purpose, p.usage, p.limitations, v.build_id, v.version, v.published_at
  FROM products p LEFT JOIN versions v ON v.id = p.live_version_id)sql";

ProductSummary ReadSummary(Connection& db, const Statement& row) {
  ProductSummary s;
  ProductRecord& p = s.product;
  p.domain = row.Text(1);
  p.name = row.Text(2);
  p.version = row.Text(3);
  p.status = row.Text(4);
  p.type = row.Text(5);
  p.owner = row.Text(6);
  p.visibility = row.Text(7);
  p.purpose = row.Text(8);
  p.usage = row.Text(9);
  p.limitations = row.Text(10);
  if (!row.IsNull(11)) {
    s.build_id = row.Text(11);
    s.live_version = row.Text(12);
    s.published_at = row.Text(13);
  }
  Statement tags(db, "SELECT tag FROM product_tags WHERE product_id = ? ORDER BY position");
  tags.Bind(row.Int(0));
  while (tags.Step()) p.tags.push_back(tags.Text(0));
  return s;
}

std::vector<PortRecord> ReadPorts(Connection& db, int64_t version_id) {
  std::vector<PortRecord> ports;
  Statement select(db, R"sql(
    SELECT id, name, sql_name, description, path, row_count, byte_count, checksum
    FROM ports WHERE version_id = ? ORDER BY position)sql");
  Statement columns(db, R"sql(
    SELECT name, type, classification, required, is_unique, primary_key, description
    FROM columns WHERE port_id = ? ORDER BY position)sql");
  select.Bind(version_id);
  while (select.Step()) {
    PortRecord& p = ports.emplace_back();
    p.name = select.Text(1);
    p.sql_name = select.Text(2);
    p.description = select.Text(3);
    p.path = select.Text(4);
    p.rows = select.Int(5);
    p.bytes = select.Int(6);
    p.checksum = select.Text(7);
    columns.Bind(select.Int(0));
    while (columns.Step()) {
      p.columns.push_back({columns.Text(0), columns.Text(1), columns.Text(2), columns.Bool(3),
                           columns.Bool(4), columns.Bool(5), columns.Text(6)});
    }
  }
  return ports;
}

std::vector<QualityResult> ReadQuality(Connection& db, int64_t version_id) {
  std::vector<QualityResult> results;
  Statement select(db, R"sql(
    SELECT port, column_name, rule, severity, passed, observed, threshold, message
    FROM quality_results WHERE version_id = ? ORDER BY position)sql");
  select.Bind(version_id);
  while (select.Step()) {
    results.push_back({select.Text(0), select.Text(1), select.Text(2), select.Text(3),
                       select.Bool(4), select.Text(5), select.Text(6), select.Text(7)});
  }
  return results;
}

std::optional<LiveVersion> ReadLive(Connection& db, const std::string& domain,
                                    const std::string& product) {
  Statement select(db, R"sql(
    SELECT v.id, v.version, v.build_id, v.fingerprint, v.published_at, v.manifest_path
    FROM products p JOIN versions v ON v.id = p.live_version_id
    WHERE p.domain = ? AND p.name = ?)sql");
  if (!select.Bind(domain, product).Step()) return std::nullopt;
  const int64_t version_id = select.Int(0);
  LiveVersion live;
  live.version = select.Text(1);
  live.build_id = select.Text(2);
  live.fingerprint = select.Text(3);
  live.published_at = select.Text(4);
  live.manifest_path = select.Text(5);
  live.ports = ReadPorts(db, version_id);
  live.quality = ReadQuality(db, version_id);
  Statement inputs(db, "SELECT upstream, build_id FROM input_versions WHERE version_id = ?");
  inputs.Bind(version_id);
  while (inputs.Step()) live.input_versions[inputs.Text(0)] = inputs.Text(1);
  return live;
}

// --- search ---

// The user's words as an FTS5 query: each word a quoted string, so quotes and
// operators (OR, NEAR, *, ^, :) in it are plain text; all words required, the last
// one a prefix so results follow typing. Empty without words.
std::string MatchExpression(const std::string& text) {
  std::string match;
  for (const std::string& w : SearchWords(text)) match += (match.empty() ? "\"" : " \"") + w + "\"";
  if (!match.empty()) match += "*";
  return match;
}

// Version 2: governance — runtime grants, access requests, the audit log, secrets.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE grants (
  id          INTEGER PRIMARY KEY,
  domain      TEXT NOT NULL,
  product     TEXT NOT NULL,
  grantee     TEXT NOT NULL,
  granted_by  TEXT NOT NULL,
  granted_at  TEXT NOT NULL,
  request_id  INTEGER REFERENCES access_requests(id),
  UNIQUE (domain, product, grantee)
);
CREATE TABLE access_requests (
  id          INTEGER PRIMARY KEY,
  domain      TEXT NOT NULL,
  product     TEXT NOT NULL,
  requester   TEXT NOT NULL,
  purpose     TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
  created_at  TEXT NOT NULL,
  decided_by  TEXT NOT NULL DEFAULT '',
  decided_at  TEXT NOT NULL DEFAULT '',
  note        TEXT NOT NULL DEFAULT ''
);
CREATE TABLE audit_log (
  seq        INTEGER PRIMARY KEY,
  at         TEXT NOT NULL,
  principal  TEXT NOT NULL,
  action     TEXT NOT NULL,
  target     TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  details    TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
CREATE TABLE secrets (
  name   TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);
INSERT INTO secrets (name, value) VALUES ('mask_salt', lower(hex(randomblob(16))));
)sql";

// Version 3: API tokens (hashes only).
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE api_tokens (
  id           INTEGER PRIMARY KEY,
  user         TEXT NOT NULL,
  secret_hash  TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  revoked_at   TEXT NOT NULL DEFAULT ''
);
)sql";

// Triggers that move the catalog's generation (CatalogStore::Generation) on every write
// to `tables`. Every table but the audit log (appended to by every read) and the
// migrations' bookkeeping has them; a migration that adds a table adds its triggers
// too (a unit test checks that every table has them). The full-text index is written
// only together with products.
std::string GenerationTriggers(std::initializer_list<const char*> tables) {
  std::string sql;
  for (const char* table : tables) {
    for (const char* event : {"INSERT", "UPDATE", "DELETE"}) {
      sql += std::string("CREATE TRIGGER generation_") + table + "_" + event + " AFTER " + event +
             " ON " + table + " BEGIN UPDATE catalog_generation SET n = n + 1 WHERE id = 1; END;\n";
    }
  }
  return sql;
}

// Version 4: the generation counter, kept by triggers so that no write path, in this
// process or another, can forget it.
std::string SchemaV4() {
  return "CREATE TABLE catalog_generation (id INTEGER PRIMARY KEY CHECK (id = 1), "
         "n INTEGER NOT NULL);\n"
         "INSERT INTO catalog_generation (id, n) VALUES (1, 0);\n" +
         GenerationTriggers({"domains", "domain_owners", "products", "product_tags", "versions",
                             "ports", "columns", "quality_results", "lineage_edges",
                             "input_versions", "builds", "build_targets", "product_runs", "grants",
                             "access_requests", "secrets", "api_tokens"});
}

// Version 5: column-level lineage of published versions (immutable like them), and
// the OpenLineage RunEvents builds emit.
constexpr const char* kSchemaV5Tables = R"sql(
CREATE TABLE column_lineage (
  version_id    INTEGER NOT NULL REFERENCES versions(id),
  target        TEXT NOT NULL,
  column_name   TEXT NOT NULL,
  source        TEXT NOT NULL,
  source_column TEXT NOT NULL,
  type          TEXT NOT NULL,
  subtype       TEXT NOT NULL,
  dataset       INTEGER NOT NULL,
  PRIMARY KEY (version_id, target, column_name, source, source_column, type, subtype)
);
CREATE INDEX column_lineage_by_source ON column_lineage(source, source_column);
CREATE TABLE port_lineage (
  version_id INTEGER NOT NULL REFERENCES versions(id),
  target     TEXT NOT NULL,
  analysed   INTEGER NOT NULL,
  reason     TEXT NOT NULL,
  PRIMARY KEY (version_id, target)
);
CREATE TRIGGER column_lineage_is_immutable BEFORE UPDATE ON column_lineage
  BEGIN SELECT RAISE(ABORT, 'published lineage is immutable'); END;
CREATE TABLE openlineage_events (
  seq      INTEGER PRIMARY KEY,
  build_id TEXT NOT NULL,
  event    TEXT NOT NULL
);
)sql";

std::string SchemaV5() {
  return kSchemaV5Tables +
         GenerationTriggers({"column_lineage", "port_lineage", "openlineage_events"});
}

// Version 6: the spec last synced, so that a command whose spec is the catalog's
// already writes nothing (no write lock, no new generation for every server).
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE spec_sync (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  fingerprint TEXT NOT NULL,
  products    INTEGER NOT NULL
);
)sql";

// Version 7: tokens expire (empty: never, as every token made before).
constexpr const char* kSchemaV7 = R"sql(
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
)sql";

// Version 8: tokens have a SCRAM-SHA-256 verifier (empty for those made before).
constexpr const char* kSchemaV8 = R"sql(
ALTER TABLE api_tokens ADD COLUMN scram TEXT NOT NULL DEFAULT '';
)sql";

constexpr const char* kTokenById =
    "SELECT id, user, secret_hash, created_at, revoked_at, expires_at, scram FROM api_tokens"
    " WHERE id = ?";
constexpr const char* kTokensInOrder =
    "SELECT id, user, secret_hash, created_at, revoked_at, expires_at, scram FROM api_tokens"
    " ORDER BY id";

TokenRecord ReadToken(const Statement& row) {
  return {row.Int(0), row.Text(1), row.Text(2), row.Text(3), row.Text(4), row.Text(5), row.Text(6)};
}

AccessRequest ReadRequest(const Statement& row) {
  AccessRequest r;
  r.id = row.Int(0);
  r.domain = row.Text(1);
  r.product = row.Text(2);
  r.requester = row.Text(3);
  r.purpose = row.Text(4);
  r.status = row.Text(5);
  r.created_at = row.Text(6);
  r.decided_by = row.Text(7);
  r.decided_at = row.Text(8);
  r.note = row.Text(9);
  return r;
}

constexpr const char* kRequestSelect =
    "SELECT id, domain, product, requester, purpose, status, created_at, decided_by, "
    "decided_at, note FROM access_requests";

int64_t InsertGrant(Connection& db, const GrantRecord& grant) {
  Statement exists(db, "SELECT 1 FROM grants WHERE domain = ? AND product = ? AND grantee = ?");
  if (exists.Bind(grant.domain, grant.product, grant.grantee).Step()) {
    throw Error(ErrorCode::kConflict,
                grant.grantee + " already holds a grant on " + grant.domain + "." + grant.product);
  }
  if (grant.request_id) {
    Statement(db, R"sql(
      INSERT INTO grants (domain, product, grantee, granted_by, granted_at, request_id)
      VALUES (?, ?, ?, ?, ?, ?))sql")
        .Bind(grant.domain, grant.product, grant.grantee, grant.granted_by, grant.granted_at,
              *grant.request_id)
        .Run();
  } else {
    Statement(db, R"sql(
      INSERT INTO grants (domain, product, grantee, granted_by, granted_at)
      VALUES (?, ?, ?, ?, ?))sql")
        .Bind(grant.domain, grant.product, grant.grantee, grant.granted_by, grant.granted_at)
        .Run();
  }
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db.handle()));
}

}  // namespace

std::string AuditEntryBytes(const AuditEntry& entry) {
  std::string bytes;
  for (const std::string& part :
       {entry.prev_hash, std::to_string(entry.seq), entry.at, entry.principal, entry.action,
        entry.target, entry.outcome, entry.details}) {
    bytes += std::to_string(part.size()) + ":" + part;
  }
  return bytes;
}

std::string AuditEntryHash(const AuditEntry& entry) {
  return Sha256Hex(AuditEntryBytes(entry));
}

const std::vector<Migration>& SqliteMigrations() {
  static const std::vector<Migration> migrations = {
      {1, kSchemaV1},  {2, kSchemaV2}, {3, kSchemaV3}, {4, SchemaV4()},
      {5, SchemaV5()}, {6, kSchemaV6}, {7, kSchemaV7}, {8, kSchemaV8}};
  return migrations;
}

SqliteCatalog::SqliteCatalog(const std::string& path, const std::vector<Migration>& migrations,
                             Upgrade upgrade) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  if (error) {
    throw Error(ErrorCode::kFailed,
                "cannot create the folder of the catalog " + path + ": " + error.message());
  }
  path_ = path;
  db_ = std::make_unique<Connection>(path);
  const int schema_was = Migrate(*db_, path, migrations, upgrade);
  opened_at_version_ = schema_was;
  seal_ = std::make_unique<AuditSeal>(path);
  const bool empty_log = !Statement(*db_, "SELECT 1 FROM audit_log LIMIT 1").Step();
  if (!seal_->has_key() && empty_log) {
    // A new log is keyed from its first entry. A log with entries and no key is either
    // from before keys (`canopy audit --seal`) or lost its key: never made up here.
    seal_->MakeKey(0, std::string(64, '0'));
  } else if (schema_was == 0) {
    seal_->Start();  // a new catalog under a key kept elsewhere
  }
}

SqliteCatalog::~SqliteCatalog() = default;

void SqliteCatalog::SyncSpec(const std::vector<DomainRecord>& domains,
                             const std::vector<ProductRecord>& products) {
  Doing("sync the spec", [&] {
    // Unchanged since the last sync, and no product added since by a publish: nothing
    // to write. (The product count covers a publish of a product not in the spec.)
    const std::string fingerprint = SpecFingerprint(domains, products);
    {
      Statement synced(*db_,
                       "SELECT fingerprint, products, (SELECT count(*) FROM products) "
                       "FROM spec_sync WHERE id = 1");
      if (synced.Step() && synced.Text(0) == fingerprint && synced.Int(1) == synced.Int(2)) {
        return;
      }
    }
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    for (const DomainRecord& domain : domains) UpsertDomain(*db_, domain);
    std::set<int64_t> in_spec;
    for (const ProductRecord& product : products) {
      const int64_t id = UpsertProduct(*db_, product);
      in_spec.insert(id);
      RefreshSearch(*db_, id);
    }
    std::vector<int64_t> gone;
    Statement all(*db_, "SELECT id FROM products WHERE status <> 'retired'");
    while (all.Step()) {
      if (in_spec.count(all.Int(0)) == 0) gone.push_back(all.Int(0));
    }
    Statement retire(*db_, "UPDATE products SET status = 'retired' WHERE id = ?");
    for (const int64_t id : gone) retire.Bind(id).Run();
    Statement(*db_,
              "INSERT INTO spec_sync (id, fingerprint, products) "
              "VALUES (1, ?, (SELECT count(*) FROM products)) "
              "ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, "
              "products = excluded.products")
        .Bind(fingerprint)
        .Run();
    transaction.Commit();
  });
}

void SqliteCatalog::BeginBuild(const BuildRecord& build) {
  Doing("begin build " + build.id, [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    Statement exists(*db_, "SELECT 1 FROM builds WHERE id = ?");
    if (exists.Bind(build.id).Step()) {
      throw Error(ErrorCode::kConflict, "build " + build.id + " exists already");
    }
    Statement(*db_, "INSERT INTO builds (id, started_at, finished_at, status) VALUES (?, ?, ?, ?)")
        .Bind(build.id, build.started_at, build.finished_at, build.status)
        .Run();
    Statement target(*db_,
                     "INSERT INTO build_targets (build_id, position, target) VALUES (?, ?, ?)");
    for (size_t i = 0; i < build.targets.size(); ++i) {
      target.Bind(build.id, i, build.targets[i]).Run();
    }
    transaction.Commit();
  });
}

void SqliteCatalog::FinishBuild(const std::string& build_id, const std::string& status,
                                const std::string& finished_at) {
  Doing("finish build " + build_id, [&] {
    Statement(*db_, "UPDATE builds SET status = ?, finished_at = ? WHERE id = ?")
        .Bind(status, finished_at, build_id)
        .Run();
    if (db_->Changes() == 0) throw Error(ErrorCode::kNotFound, "no build " + build_id);
  });
}

void SqliteCatalog::RecordRun(const ProductRun& r) {
  Doing("record the run of " + r.domain + "." + r.product + " in build " + r.build_id, [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    Statement build(*db_, "SELECT 1 FROM builds WHERE id = ?");
    if (!build.Bind(r.build_id).Step()) throw Error(ErrorCode::kNotFound, "no build " + r.build_id);
    Statement(*db_, R"sql(
      INSERT INTO product_runs (build_id, domain, product, status, message, row_count,
                                duration_ms, checks_passed, checks_total)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (build_id, domain, product) DO UPDATE SET
        status = excluded.status, message = excluded.message, row_count = excluded.row_count,
        duration_ms = excluded.duration_ms, checks_passed = excluded.checks_passed,
        checks_total = excluded.checks_total)sql")
        .Bind(r.build_id, r.domain, r.product, r.status, r.message, r.rows, r.duration_ms,
              r.checks_passed, r.checks_total)
        .Run();
    transaction.Commit();
  });
}

std::vector<ProductRun> SqliteCatalog::Runs(const std::string& build_id) {
  return Doing("read the runs of build " + build_id, [&] {
    std::vector<ProductRun> runs;
    Statement select(*db_, R"sql(
      SELECT domain, product, status, message, row_count, duration_ms, checks_passed,
             checks_total
      FROM product_runs WHERE build_id = ? ORDER BY domain, product)sql");
    select.Bind(build_id);
    while (select.Step()) {
      runs.push_back({build_id, select.Text(0), select.Text(1), select.Text(2), select.Text(3),
                      select.Int(4), select.Int(5), static_cast<int>(select.Int(6)),
                      static_cast<int>(select.Int(7))});
    }
    return runs;
  });
}

void SqliteCatalog::Publish(const PublishedVersion& v, const std::vector<AuditEntry>& audit) {
  const std::string name = v.domain + "." + v.product;
  if (!audit.empty() && !seal_->has_key()) throw MissingAuditKey(*seal_);
  Doing("publish " + name + " build " + v.build_id, [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    EnsureDomain(*db_, v.domain);
    Statement(*db_,
              "INSERT INTO products (domain, name, version, status) VALUES (?, ?, ?, 'active') "
              "ON CONFLICT DO NOTHING")
        .Bind(v.domain, v.product, v.version)
        .Run();
    const int64_t product_id = *ProductId(*db_, v.domain, v.product);
    Statement exists(*db_, "SELECT 1 FROM versions WHERE product_id = ? AND build_id = ?");
    if (exists.Bind(product_id, v.build_id).Step()) {
      throw Error(ErrorCode::kConflict, name + " build " + v.build_id + " is published already");
    }
    Statement(*db_, R"sql(
      INSERT INTO versions (product_id, version, build_id, fingerprint, published_at,
                            manifest_path, duration_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?))sql")
        .Bind(product_id, v.version, v.build_id, v.fingerprint, v.published_at, v.manifest_path,
              v.duration_ms)
        .Run();
    const int64_t version_id = sqlite3_last_insert_rowid(db_->handle());
    InsertVersionDetails(*db_, version_id, v);
    Statement(*db_, "UPDATE products SET live_version_id = ? WHERE id = ?")
        .Bind(version_id, product_id)
        .Run();
    RefreshSearch(*db_, product_id);
    std::optional<AuditEntry> head;
    for (const auto& entry : audit) head = InsertAudit(*db_, *seal_, entry);
    fault::Hit(fault::Point::kCatalogPublish);
    transaction.Commit();
    if (head) AdvanceCheckpoint(*head);
  });
}

std::optional<LiveVersion> SqliteCatalog::Live(const std::string& domain,
                                               const std::string& product) {
  return Doing("read the live version of " + domain + "." + product, [&] {
    Transaction snapshot(*db_, Transaction::Mode::kRead);
    auto live = ReadLive(*db_, domain, product);
    snapshot.Commit();
    return live;
  });
}

std::vector<ProductSummary> SqliteCatalog::ListProducts() {
  return Doing("list the products", [&] {
    Transaction snapshot(*db_, Transaction::Mode::kRead);
    std::vector<ProductSummary> summaries;
    Statement select(*db_, (std::string(kSummarySelect) + " ORDER BY p.domain, p.name").c_str());
    while (select.Step()) summaries.push_back(ReadSummary(*db_, select));
    snapshot.Commit();
    return summaries;
  });
}

std::optional<ProductDetail> SqliteCatalog::GetProduct(const std::string& domain,
                                                       const std::string& product) {
  return Doing("read " + domain + "." + product, [&]() -> std::optional<ProductDetail> {
    Transaction snapshot(*db_, Transaction::Mode::kRead);
    Statement select(*db_,
                     (std::string(kSummarySelect) + " WHERE p.domain = ? AND p.name = ?").c_str());
    if (!select.Bind(domain, product).Step()) return std::nullopt;
    ProductDetail detail;
    detail.summary = ReadSummary(*db_, select);
    detail.live = ReadLive(*db_, domain, product);
    Statement history(*db_,
                      "SELECT version, build_id, published_at FROM versions "
                      "WHERE product_id = ? ORDER BY id DESC");
    history.Bind(select.Int(0));
    while (history.Step()) {
      detail.version_history.push_back({history.Text(0), history.Text(1), history.Text(2)});
    }
    snapshot.Commit();
    return detail;
  });
}

std::vector<SearchHit> SqliteCatalog::Search(const std::string& text, int limit) {
  const std::string match = MatchExpression(text);
  if (match.empty() || limit <= 0) return {};
  return Doing("search", [&] {
    // Column 2 is the weighted score; 3–7 score each field alone; 8–12 its snippet.
    Statement select(*db_, R"sql(
      SELECT p.domain, p.name,
        bm25(search_index, 10.0, 5.0, 2.0, 2.0, 1.0),
        bm25(search_index, 10.0, 0, 0, 0, 0), bm25(search_index, 0, 5.0, 0, 0, 0),
        bm25(search_index, 0, 0, 2.0, 0, 0), bm25(search_index, 0, 0, 0, 2.0, 0),
        bm25(search_index, 0, 0, 0, 0, 1.0),
        snippet(search_index, 0, '[', ']', '…', 12), snippet(search_index, 1, '[', ']', '…', 12),
        snippet(search_index, 2, '[', ']', '…', 12), snippet(search_index, 3, '[', ']', '…', 12),
        snippet(search_index, 4, '[', ']', '…', 12)
      FROM search_index JOIN products p ON p.id = search_index.rowid
      WHERE search_index MATCH ?
      ORDER BY 3, p.domain, p.name
      LIMIT ?)sql");
    select.Bind(match, limit);
    std::vector<SearchHit> hits;
    while (select.Step()) {
      // bm25 is negative, lower is better; the best field is the one scoring lowest.
      int best = 0;
      for (int field = 1; field < static_cast<int>(std::size(kSearchFields)); ++field) {
        if (select.Double(3 + field) < select.Double(3 + best)) best = field;
      }
      hits.push_back({select.Text(0), select.Text(1), -select.Double(2), kSearchFields[best],
                      OneLine(select.Text(8 + best))});
    }
    return hits;
  });
}

LiveLineage SqliteCatalog::ColumnLineage() {
  return Doing("read the column lineage", [&] {
    Transaction snapshot(*db_, Transaction::Mode::kRead);
    LiveLineage out;
    Statement edges(*db_, R"sql(
      SELECT l.target, l.column_name, l.source, l.source_column, l.type, l.subtype, l.dataset
      FROM column_lineage l JOIN products p ON p.live_version_id = l.version_id
      ORDER BY 1, 2, 3, 4, 5, 6)sql");
    while (edges.Step()) {
      out.edges.push_back({edges.Text(0), edges.Text(1), edges.Text(2), edges.Text(3),
                           edges.Text(4), edges.Text(5), edges.Bool(6)});
    }
    Statement ports(*db_, R"sql(
      SELECT l.target, l.analysed, l.reason
      FROM port_lineage l JOIN products p ON p.live_version_id = l.version_id
      ORDER BY 1)sql");
    while (ports.Step()) out.ports.push_back({ports.Text(0), ports.Bool(1), ports.Text(2)});
    snapshot.Commit();
    return out;
  });
}

void SqliteCatalog::RecordLineageEvent(const std::string& build_id, const std::string& event) {
  Doing("record an OpenLineage event of build " + build_id, [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    Statement(*db_, "INSERT INTO openlineage_events (build_id, event) VALUES (?, ?)")
        .Bind(build_id, event)
        .Run();
    fault::Hit(fault::Point::kLineageRecord);
    transaction.Commit();
  });
}

std::vector<std::string> SqliteCatalog::LineageEvents() {
  return Doing("read the OpenLineage events", [&] {
    std::vector<std::string> events;
    Statement select(*db_, "SELECT event FROM openlineage_events ORDER BY seq");
    while (select.Step()) events.push_back(select.Text(0));
    return events;
  });
}

std::vector<std::string> SqliteCatalog::ReferencedPaths() {
  return Doing("list the referenced paths", [&] {
    std::vector<std::string> paths;
    Statement select(*db_, R"sql(
      SELECT path FROM ports WHERE path <> ''
      UNION SELECT manifest_path FROM versions WHERE manifest_path <> ''
      ORDER BY 1)sql");
    while (select.Step()) paths.push_back(select.Text(0));
    return paths;
  });
}

bool IsPostgresUrl(const std::string& location) {
  return location.rfind("postgres://", 0) == 0 || location.rfind("postgresql://", 0) == 0;
}

std::unique_ptr<CatalogStore> OpenCatalog(const std::string& location,
                                          const std::string& seal_folder, Upgrade upgrade) {
  if (location.empty()) throw Error(ErrorCode::kFailed, "no catalog location given");
  if (IsPostgresUrl(location)) return std::make_unique<PgCatalog>(location, seal_folder, upgrade);
  return std::make_unique<SqliteCatalog>(location, SqliteMigrations(), upgrade);
}

Error OlderSchemaError(const std::string& where, int found, int latest) {
  return Error(ErrorCode::kFailed,
               "the catalog " + where + " has schema version " + std::to_string(found) +
                   ", older than this canopy's " + std::to_string(latest),
               "stop the servers and runners that use it, back it up, then run `canopy catalog "
               "upgrade` (it applies migrations " +
                   std::to_string(found + 1) + " to " + std::to_string(latest) + " in order)");
}

int64_t SqliteCatalog::AddGrant(const GrantRecord& grant) {
  return Doing("grant " + grant.domain + "." + grant.product + " to " + grant.grantee, [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    const int64_t id = InsertGrant(*db_, grant);
    transaction.Commit();
    return id;
  });
}

bool SqliteCatalog::RevokeGrant(const std::string& domain, const std::string& product,
                                const std::string& grantee) {
  return Doing("revoke " + domain + "." + product + " from " + grantee, [&] {
    Statement(*db_, "DELETE FROM grants WHERE domain = ? AND product = ? AND grantee = ?")
        .Bind(domain, product, grantee)
        .Run();
    return db_->Changes() > 0;
  });
}

std::vector<GrantRecord> SqliteCatalog::Grants() {
  return Doing("read the grants", [&] {
    std::vector<GrantRecord> grants;
    Statement select(*db_, R"sql(
      SELECT id, domain, product, grantee, granted_by, granted_at, request_id
      FROM grants ORDER BY domain, product, grantee)sql");
    while (select.Step()) {
      GrantRecord g;
      g.id = select.Int(0);
      g.domain = select.Text(1);
      g.product = select.Text(2);
      g.grantee = select.Text(3);
      g.granted_by = select.Text(4);
      g.granted_at = select.Text(5);
      if (!select.IsNull(6)) g.request_id = select.Int(6);
      grants.push_back(std::move(g));
    }
    return grants;
  });
}

int64_t SqliteCatalog::CreateAccessRequest(const AccessRequest& r) {
  return Doing("record an access request", [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    Statement pending(*db_, R"sql(
      SELECT id FROM access_requests
      WHERE domain = ? AND product = ? AND requester = ? AND status = 'pending')sql");
    if (pending.Bind(r.domain, r.product, r.requester).Step()) {
      throw Error(ErrorCode::kConflict, r.requester + " already asked for " + r.domain + "." +
                                            r.product + " (request " +
                                            std::to_string(pending.Int(0)) + " is pending)");
    }
    Statement(*db_, R"sql(
      INSERT INTO access_requests (domain, product, requester, purpose, status, created_at)
      VALUES (?, ?, ?, ?, 'pending', ?))sql")
        .Bind(r.domain, r.product, r.requester, r.purpose, r.created_at)
        .Run();
    const auto id = static_cast<int64_t>(sqlite3_last_insert_rowid(db_->handle()));
    transaction.Commit();
    return id;
  });
}

std::optional<AccessRequest> SqliteCatalog::GetAccessRequest(int64_t id) {
  return Doing("read access request " + std::to_string(id), [&]() -> std::optional<AccessRequest> {
    Statement select(*db_, (std::string(kRequestSelect) + " WHERE id = ?").c_str());
    if (!select.Bind(id).Step()) return std::nullopt;
    return ReadRequest(select);
  });
}

std::vector<AccessRequest> SqliteCatalog::AccessRequests() {
  return Doing("read the access requests", [&] {
    std::vector<AccessRequest> requests;
    Statement select(*db_, (std::string(kRequestSelect) + " ORDER BY id DESC").c_str());
    while (select.Step()) requests.push_back(ReadRequest(select));
    return requests;
  });
}

void SqliteCatalog::DecideAccessRequest(int64_t id, bool approve, const std::string& decided_by,
                                        const std::string& decided_at, const std::string& note) {
  Doing("decide access request " + std::to_string(id), [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    Statement select(*db_, (std::string(kRequestSelect) + " WHERE id = ?").c_str());
    if (!select.Bind(id).Step()) {
      throw Error(ErrorCode::kNotFound, "no access request " + std::to_string(id),
                  "canopy access list shows the requests");
    }
    const AccessRequest request = ReadRequest(select);
    if (request.status != "pending") {
      throw Error(ErrorCode::kConflict, "access request " + std::to_string(id) + " was " +
                                            request.status + " already by " + request.decided_by);
    }
    Statement(*db_, R"sql(
      UPDATE access_requests SET status = ?, decided_by = ?, decided_at = ?, note = ?
      WHERE id = ?)sql")
        .Bind(std::string(approve ? "approved" : "denied"), decided_by, decided_at, note, id)
        .Run();
    if (approve) {
      Statement held(*db_, "SELECT 1 FROM grants WHERE domain = ? AND product = ? AND grantee = ?");
      if (!held.Bind(request.domain, request.product, request.requester).Step()) {
        InsertGrant(*db_, {0, request.domain, request.product, request.requester, decided_by,
                           decided_at, id});
      }
    }
    transaction.Commit();
  });
}

void SqliteCatalog::SealAudit() {
  if (seal_->has_key()) {
    throw Error(ErrorCode::kConflict,
                "the audit log is sealed already (key " + seal_->key_path() + ")");
  }
  Statement last(*db_, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
  if (last.Step()) {
    seal_->MakeKey(last.Int(0), last.Text(1));
  } else {
    seal_->MakeKey(0, std::string(64, '0'));
  }
}

AuditEntry SqliteCatalog::AppendAudit(const AuditEntry& entry) {
  if (!seal_->has_key()) throw MissingAuditKey(*seal_);
  return Doing("append to the audit log", [&] {
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    AuditEntry stored = InsertAudit(*db_, *seal_, entry);
    transaction.Commit();
    AdvanceCheckpoint(stored);
    return stored;
  });
}

void SqliteCatalog::AdvanceCheckpoint(const AuditEntry& head) {
  fault::Hit(fault::Point::kAuditCommitted);
  seal_->Advance(head.seq, head.hash, [this](int64_t seq) {
    Statement at(*db_, "SELECT hash FROM audit_log WHERE seq = ?");
    return at.Bind(seq).Step() ? at.Text(0) : std::string();
  });
}

std::vector<AuditEntry> SqliteCatalog::Audit(int64_t after, int limit) {
  return Doing("read the audit log", [&] {
    std::vector<AuditEntry> entries;
    Statement select(*db_, R"sql(
      SELECT seq, at, principal, action, target, outcome, details, prev_hash, hash
      FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?)sql");
    select.Bind(after, limit);
    while (select.Step()) {
      entries.push_back({select.Int(0), select.Text(1), select.Text(2), select.Text(3),
                         select.Text(4), select.Text(5), select.Text(6), select.Text(7),
                         select.Text(8)});
    }
    return entries;
  });
}

std::string SqliteCatalog::MaskSalt() {
  return Doing("read the mask salt", [&] {
    Statement select(*db_, "SELECT value FROM secrets WHERE name = 'mask_salt'");
    if (!select.Step()) throw Error(ErrorCode::kInternal, "the catalog has no mask salt");
    return select.Text(0);
  });
}

int64_t SqliteCatalog::Generation() {
  return Doing("read the catalog's generation", [&] {
    Statement select(*db_, "SELECT n FROM catalog_generation WHERE id = 1");
    return select.Step() ? select.Int(0) : int64_t{0};
  });
}

int64_t SqliteCatalog::CreateToken(const std::string& user, const std::string& secret_hash,
                                   const std::string& created_at, const std::string& expires_at) {
  return Doing("create a token for " + user, [&] {
    Statement(*db_,
              "INSERT INTO api_tokens (user, secret_hash, created_at, expires_at) "
              "VALUES (?, ?, ?, ?)")
        .Bind(user, secret_hash, created_at, expires_at)
        .Run();
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_->handle()));
  });
}

std::optional<TokenRecord> SqliteCatalog::GetToken(int64_t id) {
  return Doing("read a token", [&]() -> std::optional<TokenRecord> {
    Statement select(*db_, kTokenById);
    if (!select.Bind(id).Step()) return std::nullopt;
    return ReadToken(select);
  });
}

std::vector<TokenRecord> SqliteCatalog::Tokens() {
  return Doing("read the tokens", [&] {
    std::vector<TokenRecord> tokens;
    Statement select(*db_, kTokensInOrder);
    while (select.Step()) tokens.push_back(ReadToken(select));
    return tokens;
  });
}

void SqliteCatalog::SetTokenScram(int64_t id, const std::string& verifier) {
  Doing("keep the verifier of token " + std::to_string(id), [&] {
    Statement(*db_, "UPDATE api_tokens SET scram = ? WHERE id = ?").Bind(verifier, id).Run();
    return 0;
  });
}

bool SqliteCatalog::RevokeToken(int64_t id, const std::string& revoked_at) {
  return Doing("revoke token " + std::to_string(id), [&] {
    Statement(*db_, "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = ''")
        .Bind(revoked_at, id)
        .Run();
    return db_->Changes() > 0;
  });
}

namespace {

// A flock on a file that says who holds it (a product's build lock).
class FileProductLock final : public ProductLock {
 public:
  explicit FileProductLock(int fd) : fd_(fd) {}
  ~FileProductLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileProductLock(const FileProductLock&) = delete;
  FileProductLock& operator=(const FileProductLock&) = delete;

 private:
  int fd_;
};

// The build locks of in-memory catalogs, which only this process sees.
class MemoryProductLock final : public ProductLock {
 public:
  explicit MemoryProductLock(std::string name) : name_(std::move(name)) {}
  ~MemoryProductLock() override {
    const std::lock_guard<std::mutex> guard(Mutex());
    Held().erase(name_);
  }
  MemoryProductLock(const MemoryProductLock&) = delete;
  MemoryProductLock& operator=(const MemoryProductLock&) = delete;
  static std::mutex& Mutex() {
    static std::mutex mutex;
    return mutex;
  }
  static std::map<std::string, std::string>& Held() {
    static std::map<std::string, std::string> held;
    return held;
  }

 private:
  std::string name_;
};

}  // namespace

std::unique_ptr<ProductLock> SqliteCatalog::LockProduct(const std::string& domain,
                                                        const std::string& product,
                                                        const std::string& holder,
                                                        std::string& held_by) {
  const std::string name = domain + "." + product;
  if (path_.empty() || path_ == ":memory:") {
    const std::lock_guard<std::mutex> guard(MemoryProductLock::Mutex());
    auto [at, added] = MemoryProductLock::Held().emplace(name, holder);
    if (!added) {
      held_by = at->second;
      return nullptr;
    }
    return std::make_unique<MemoryProductLock>(name);
  }
  const std::filesystem::path folder = std::filesystem::path(path_).parent_path() / "locks";
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  const std::string file = (folder / (name + ".lock")).string();
  const int fd = ::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error(ErrorCode::kFailed,
                "cannot open the build lock " + file + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    std::ifstream in(file);
    std::getline(in, held_by);
    if (held_by.empty()) held_by = "another build";
    return nullptr;
  }
  const std::string text = holder + " since " + NowIso8601() + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    // The lock holds; only who holds it could not be written down.
  }
  return std::make_unique<FileProductLock>(fd);
}

CatalogInfo SqliteCatalog::Info() {
  return Doing("read the catalog's counts", [&] {
    CatalogInfo info;
    info.store = "sqlite";
    info.location = path_;
    info.schema_version = SchemaVersion(*db_);
    info.opened_at_version = opened_at_version_;
    Statement counts(*db_, R"sql(
      SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM products),
             (SELECT count(*) FROM versions), (SELECT count(*) FROM builds),
             (SELECT count(*) FROM grants), (SELECT count(*) FROM access_requests),
             (SELECT count(*) FROM api_tokens), (SELECT count(*) FROM audit_log),
             (SELECT count(*) FROM openlineage_events))sql");
    counts.Step();
    const char* kinds[] = {"domains", "products",      "versions",
                           "builds",  "grants",        "access requests",
                           "tokens",  "audit entries", "lineage events"};
    for (int i = 0; i < 9; ++i) info.counts.emplace_back(kinds[i], counts.Int(i));
    return info;
  });
}

CatalogDump SqliteCatalog::Dump() {
  return Doing("read the whole catalog", [&] {
    Transaction snapshot(*db_, Transaction::Mode::kRead);
    CatalogDump dump;
    Statement domains(*db_, "SELECT name, description FROM domains ORDER BY name");
    Statement owners(*db_, "SELECT owner FROM domain_owners WHERE domain = ? ORDER BY position");
    while (domains.Step()) {
      DomainRecord& d = dump.domains.emplace_back();
      d.name = domains.Text(0);
      d.description = domains.Text(1);
      owners.Bind(d.name);
      while (owners.Step()) d.owners.push_back(owners.Text(0));
    }
    Statement products(*db_, (std::string(kSummarySelect) + " ORDER BY p.id").c_str());
    while (products.Step()) {
      ProductSummary s = ReadSummary(*db_, products);
      if (s.build_id) dump.live[s.product.domain + "." + s.product.name] = *s.build_id;
      dump.products.push_back(std::move(s.product));
    }
    Statement versions(*db_, R"sql(
      SELECT v.id, p.domain, p.name, v.version, v.build_id, v.fingerprint, v.published_at,
             v.manifest_path, v.duration_ms
      FROM versions v JOIN products p ON p.id = v.product_id ORDER BY v.id)sql");
    Statement edges(*db_, "SELECT source, target FROM lineage_edges WHERE version_id = ?");
    Statement columns(*db_, R"sql(
      SELECT target, column_name, source, source_column, type, subtype, dataset
      FROM column_lineage WHERE version_id = ?)sql");
    Statement ports(*db_, "SELECT target, analysed, reason FROM port_lineage WHERE version_id = ?");
    Statement inputs(*db_, "SELECT upstream, build_id FROM input_versions WHERE version_id = ?");
    while (versions.Step()) {
      PublishedVersion& v = dump.versions.emplace_back();
      const int64_t id = versions.Int(0);
      v.domain = versions.Text(1);
      v.product = versions.Text(2);
      v.version = versions.Text(3);
      v.build_id = versions.Text(4);
      v.fingerprint = versions.Text(5);
      v.published_at = versions.Text(6);
      v.manifest_path = versions.Text(7);
      v.duration_ms = versions.Int(8);
      v.ports = ReadPorts(*db_, id);
      v.quality = ReadQuality(*db_, id);
      edges.Bind(id);
      while (edges.Step()) v.lineage.push_back({edges.Text(0), edges.Text(1)});
      columns.Bind(id);
      while (columns.Step()) {
        v.column_lineage.push_back({columns.Text(0), columns.Text(1), columns.Text(2),
                                    columns.Text(3), columns.Text(4), columns.Text(5),
                                    columns.Bool(6)});
      }
      ports.Bind(id);
      while (ports.Step()) v.port_lineage.push_back({ports.Text(0), ports.Bool(1), ports.Text(2)});
      inputs.Bind(id);
      while (inputs.Step()) v.input_versions[inputs.Text(0)] = inputs.Text(1);
    }
    Statement builds(*db_, "SELECT id, started_at, finished_at, status FROM builds ORDER BY rowid");
    Statement targets(*db_,
                      "SELECT target FROM build_targets WHERE build_id = ? ORDER BY position");
    while (builds.Step()) {
      BuildRecord& b = dump.builds.emplace_back();
      b = {builds.Text(0), builds.Text(1), builds.Text(2), builds.Text(3), {}};
      targets.Bind(b.id);
      while (targets.Step()) b.targets.push_back(targets.Text(0));
      for (ProductRun& run : Runs(b.id)) dump.runs.push_back(std::move(run));
    }
    dump.requests = AccessRequests();
    std::reverse(dump.requests.begin(), dump.requests.end());
    dump.grants = Grants();
    dump.tokens = Tokens();
    dump.audit = Audit(0, std::numeric_limits<int>::max());
    Statement events(*db_, "SELECT build_id, event FROM openlineage_events ORDER BY seq");
    while (events.Step()) dump.lineage_events.emplace_back(events.Text(0), events.Text(1));
    dump.mask_salt = MaskSalt();
    snapshot.Commit();
    AuditCheckpoint checkpoint;
    if (seal_->Read(checkpoint) == AuditSeal::Checkpoint::kValid) {
      dump.audit_keyed_after = checkpoint.keyed_after;
    }
    return dump;
  });
}

void SqliteCatalog::Load(const CatalogDump&) {
  throw Error(ErrorCode::kUsage, "catalogs are migrated into PostgreSQL, not into SQLite",
              "canopy catalog migrate --to postgresql://user@host/database");
}

}  // namespace canopy::catalog
