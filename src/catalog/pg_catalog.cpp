#include "catalog/pg_catalog.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <set>
#include <thread>
#include <utility>

#include "catalog/pg_handle.h"
#include "catalog/store_util.h"
#include "core/error.h"
#include "core/fault.h"
#include "core/hash.h"
#include "core/text.h"

namespace canopy::catalog {

namespace {

using pg::Connection;
using pg::Result;
using pg::Transaction;

// The advisory-lock namespace of Canopy ("cano"); the second key is a hash of the
// catalog's schema and what is locked, so catalogs in other schemas never collide.
constexpr const char* kLockKey = "1668181615, hashtext(current_schema() || ':' || $1)";

// Version 1: the whole catalog, as in the SQLite store. Published versions and what
// hangs off them are immutable; a product points at its live version.
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
  id              BIGSERIAL PRIMARY KEY,
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
  live_version_id BIGINT,
  UNIQUE (domain, name)
);
CREATE TABLE product_tags (
  product_id BIGINT NOT NULL REFERENCES products(id),
  position   INTEGER NOT NULL,
  tag        TEXT NOT NULL,
  PRIMARY KEY (product_id, position)
);
CREATE TABLE versions (
  id            BIGSERIAL PRIMARY KEY,
  product_id    BIGINT NOT NULL REFERENCES products(id),
  version       TEXT NOT NULL,
  build_id      TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,
  published_at  TEXT NOT NULL,
  manifest_path TEXT NOT NULL,
  duration_ms   BIGINT NOT NULL,
  UNIQUE (product_id, build_id)
);
ALTER TABLE products ADD FOREIGN KEY (live_version_id) REFERENCES versions(id);
CREATE TABLE ports (
  id          BIGSERIAL PRIMARY KEY,
  version_id  BIGINT NOT NULL REFERENCES versions(id),
  position    INTEGER NOT NULL,
  name        TEXT NOT NULL,
  sql_name    TEXT NOT NULL,
  description TEXT NOT NULL,
  path        TEXT NOT NULL,
  row_count   BIGINT NOT NULL,
  byte_count  BIGINT NOT NULL,
  checksum    TEXT NOT NULL,
  UNIQUE (version_id, name)
);
CREATE TABLE columns (
  port_id        BIGINT NOT NULL REFERENCES ports(id),
  position       INTEGER NOT NULL,
  name           TEXT NOT NULL,
  type           TEXT NOT NULL,
  classification TEXT NOT NULL,
  required       BOOLEAN NOT NULL,
  is_unique      BOOLEAN NOT NULL,
  primary_key    BOOLEAN NOT NULL,
  description    TEXT NOT NULL,
  PRIMARY KEY (port_id, position),
  UNIQUE (port_id, name)
);
CREATE TABLE quality_results (
  version_id  BIGINT NOT NULL REFERENCES versions(id),
  position    INTEGER NOT NULL,
  port        TEXT NOT NULL,
  column_name TEXT NOT NULL,
  rule        TEXT NOT NULL,
  severity    TEXT NOT NULL,
  passed      BOOLEAN NOT NULL,
  observed    TEXT NOT NULL,
  threshold   TEXT NOT NULL,
  message     TEXT NOT NULL,
  PRIMARY KEY (version_id, position)
);
CREATE TABLE lineage_edges (
  version_id BIGINT NOT NULL REFERENCES versions(id),
  source     TEXT NOT NULL,
  target     TEXT NOT NULL,
  PRIMARY KEY (version_id, source, target)
);
CREATE INDEX lineage_edges_by_source ON lineage_edges(source);
CREATE TABLE input_versions (
  version_id BIGINT NOT NULL REFERENCES versions(id),
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
  row_count     BIGINT NOT NULL,
  duration_ms   BIGINT NOT NULL,
  checks_passed INTEGER NOT NULL,
  checks_total  INTEGER NOT NULL,
  PRIMARY KEY (build_id, domain, product)
);
CREATE FUNCTION canopy_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'published % are immutable', TG_ARGV[0]; END $$;
CREATE TRIGGER versions_are_immutable BEFORE UPDATE ON versions
  FOR EACH ROW EXECUTE FUNCTION canopy_immutable('versions');
CREATE TRIGGER ports_are_immutable BEFORE UPDATE ON ports
  FOR EACH ROW EXECUTE FUNCTION canopy_immutable('ports');
CREATE TRIGGER columns_are_immutable BEFORE UPDATE ON columns
  FOR EACH ROW EXECUTE FUNCTION canopy_immutable('columns');

-- One row per product, rebuilt whenever its spec or live version changes: the text of
-- each field, and the weighted document the GIN index serves.
CREATE TEXT SEARCH CONFIGURATION canopy_search (COPY = simple);
DO $$
DECLARE home text;
BEGIN
  BEGIN
    CREATE EXTENSION IF NOT EXISTS unaccent;
  EXCEPTION WHEN OTHERS THEN NULL;  -- not installed or not allowed: accents then count
  END;
  SELECT extnamespace::regnamespace::text INTO home FROM pg_extension WHERE extname = 'unaccent';
  IF home IS NOT NULL THEN
    EXECUTE format('ALTER TEXT SEARCH CONFIGURATION canopy_search ALTER MAPPING FOR '
                   'asciiword, word, numword, asciihword, hword, numhword, hword_part, '
                   'hword_asciipart, hword_numpart WITH %s.unaccent, simple', home);
  END IF;
END $$;
CREATE TABLE search_documents (
  product_id  BIGINT PRIMARY KEY REFERENCES products(id),
  name        TEXT NOT NULL,
  tags        TEXT NOT NULL,
  description TEXT NOT NULL,
  ports       TEXT NOT NULL,
  columns     TEXT NOT NULL,
  document    TSVECTOR NOT NULL
);
CREATE INDEX search_documents_document ON search_documents USING GIN (document);
)sql";

// Version 2: governance — runtime grants, access requests, the audit log, secrets.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE access_requests (
  id          BIGSERIAL PRIMARY KEY,
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
CREATE TABLE grants (
  id          BIGSERIAL PRIMARY KEY,
  domain      TEXT NOT NULL,
  product     TEXT NOT NULL,
  grantee     TEXT NOT NULL,
  granted_by  TEXT NOT NULL,
  granted_at  TEXT NOT NULL,
  request_id  BIGINT REFERENCES access_requests(id),
  UNIQUE (domain, product, grantee)
);
CREATE TABLE audit_log (
  seq        BIGINT PRIMARY KEY,
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
)sql";

// Version 3: API tokens (hashes only).
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE api_tokens (
  id           BIGSERIAL PRIMARY KEY,
  username     TEXT NOT NULL,
  secret_hash  TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  revoked_at   TEXT NOT NULL DEFAULT ''
);
)sql";

// Statement triggers that move the generation on every write to `tables`, in the
// writer's transaction, and tell listening servers.
std::string GenerationTriggers(std::initializer_list<const char*> tables) {
  std::string sql;
  for (const char* table : tables) {
    sql += std::string("CREATE TRIGGER generation_") + table +
           " AFTER INSERT OR UPDATE OR DELETE ON " + table +
           " FOR EACH STATEMENT EXECUTE FUNCTION canopy_bump_generation();\n";
  }
  return sql;
}

// Version 4: the generation counter.
std::string SchemaV4() {
  return R"sql(
CREATE TABLE catalog_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
INSERT INTO catalog_generation (id, n) VALUES (1, 0);
CREATE FUNCTION canopy_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE catalog_generation SET n = n + 1 WHERE id = 1;
  PERFORM pg_notify('canopy_catalog', current_schema());
  RETURN NULL;
END $$;
)sql" + GenerationTriggers({"domains", "domain_owners", "products", "product_tags", "versions",
                            "ports", "columns", "quality_results", "lineage_edges",
                            "input_versions", "builds", "build_targets", "product_runs", "grants",
                            "access_requests", "secrets", "api_tokens", "search_documents"});
}

// Version 5: column-level lineage, OpenLineage events, and who holds which product's
// build lock (the lock itself is an advisory lock).
std::string SchemaV5() {
  return R"sql(
CREATE TABLE column_lineage (
  version_id    BIGINT NOT NULL REFERENCES versions(id),
  target        TEXT NOT NULL,
  column_name   TEXT NOT NULL,
  source        TEXT NOT NULL,
  source_column TEXT NOT NULL,
  type          TEXT NOT NULL,
  subtype       TEXT NOT NULL,
  dataset       BOOLEAN NOT NULL,
  PRIMARY KEY (version_id, target, column_name, source, source_column, type, subtype)
);
CREATE INDEX column_lineage_by_source ON column_lineage(source, source_column);
CREATE TABLE port_lineage (
  version_id BIGINT NOT NULL REFERENCES versions(id),
  target     TEXT NOT NULL,
  analysed   BOOLEAN NOT NULL,
  reason     TEXT NOT NULL,
  PRIMARY KEY (version_id, target)
);
CREATE TRIGGER column_lineage_is_immutable BEFORE UPDATE ON column_lineage
  FOR EACH ROW EXECUTE FUNCTION canopy_immutable('lineage');
CREATE TABLE openlineage_events (
  seq      BIGSERIAL PRIMARY KEY,
  build_id TEXT NOT NULL,
  event    TEXT NOT NULL
);
CREATE TABLE build_locks (
  product TEXT PRIMARY KEY,
  holder  TEXT NOT NULL,
  since   TEXT NOT NULL
);
)sql" + GenerationTriggers({"column_lineage", "port_lineage", "openlineage_events"});
}

// Version 6: the spec last synced (as in the SQLite store), and the generation moved
// once per transaction instead of once per statement: every statement updating the one
// row left a version of it that each later update in the transaction walked past, so a
// large sync took time quadratic in its statements (77 s for 10,000 products).
// Search ranks within search_documents alone (the domain kept beside the name, so the
// tie order needs no join with products), and a document's column part is stripped of
// positions: a column word counts once, at weight D, which made ranking 7,880 matches
// 2.6 times faster (bench/search_bench).
constexpr const char* kSchemaV6 = R"sql(
ALTER TABLE search_documents ADD COLUMN IF NOT EXISTS domain TEXT NOT NULL DEFAULT '';
UPDATE search_documents s SET domain = p.domain FROM products p WHERE p.id = s.product_id;
CREATE OR REPLACE FUNCTION canopy_search_document(name TEXT, tags TEXT, description TEXT, ports TEXT,
                                       columns TEXT) RETURNS tsvector LANGUAGE sql STABLE AS $$
  SELECT setweight(to_tsvector('canopy_search', name), 'A') ||
         setweight(to_tsvector('canopy_search', tags), 'B') ||
         setweight(to_tsvector('canopy_search', description), 'C') ||
         setweight(to_tsvector('canopy_search', ports), 'C') ||
         strip(to_tsvector('canopy_search', columns))
$$;
UPDATE search_documents
  SET document = canopy_search_document(name, tags, description, ports, columns);
CREATE TABLE spec_sync (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  fingerprint TEXT NOT NULL,
  products    BIGINT NOT NULL
);
CREATE OR REPLACE FUNCTION canopy_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('canopy.generation_xact', true) IS DISTINCT FROM txid_current()::text THEN
    PERFORM set_config('canopy.generation_xact', txid_current()::text, true);
    UPDATE catalog_generation SET n = n + 1 WHERE id = 1;
    PERFORM pg_notify('canopy_catalog', current_schema());
  END IF;
  RETURN NULL;
END $$;
)sql";

// Version 7: tokens expire (empty: never, as every token made before).
constexpr const char* kSchemaV7 = R"sql(
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
)sql";

// Version 8: tokens have a SCRAM-SHA-256 verifier (empty for those made before).
constexpr const char* kSchemaV8 = R"sql(
ALTER TABLE api_tokens ADD COLUMN scram TEXT NOT NULL DEFAULT '';
)sql";

struct PgMigration {
  int version;
  std::string sql;
};

const std::vector<PgMigration>& Migrations() {
  static const std::vector<PgMigration> migrations = {
      {1, kSchemaV1},  {2, kSchemaV2}, {3, kSchemaV3}, {4, SchemaV4()},
      {5, SchemaV5()}, {6, kSchemaV6}, {7, kSchemaV7}, {8, kSchemaV8}};
  return migrations;
}

int SchemaVersion(Connection& db) {
  if (db.Query("SELECT to_regclass('schema_migrations') IS NOT NULL").Text(0, 0) != "t") return 0;
  return static_cast<int>(
      db.Query("SELECT coalesce(max(version), 0) FROM schema_migrations").Int(0, 0));
}

// Brings the schema to the latest migration, each in its own transaction, under an
// advisory lock so that processes starting at once migrate it once. Returns the
// version found (0: a new catalog).
int Migrate(Connection& db, Upgrade upgrade) {
  const int latest = Migrations().back().version;
  const std::string lock = std::string("SELECT pg_advisory_lock(") + kLockKey + ")";
  const std::string unlock = std::string("SELECT pg_advisory_unlock(") + kLockKey + ")";
  const auto check = [&](int found) {
    if (found > latest) {
      throw Error(
          ErrorCode::kFailed,
          "catalog schema version " + std::to_string(found) + " is newer than this canopy supports",
          db.display() + " was written by a newer canopy (this one knows up to version " +
              std::to_string(latest) + "); upgrade canopy to use it");
    }
    if (found > 0 && found < latest && upgrade == Upgrade::kRefuse) {
      throw OlderSchemaError(db.display(), found, latest);
    }
  };
  const int seen = Doing("read the schema version", [&] { return SchemaVersion(db); });
  if (seen == latest) return seen;
  if (seen > latest) check(seen);
  db.Query(lock.c_str(), {"migrate"});
  int found = 0;
  try {
    // Read again under the lock: another process may have been half-way through.
    found = Doing("read the schema version", [&] { return SchemaVersion(db); });
    check(found);
    for (const PgMigration& migration : Migrations()) {
      Doing("apply migration " + std::to_string(migration.version) + " to " + db.display(), [&] {
        Transaction transaction(db, Transaction::Mode::kWrite);
        db.Execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
        if (!db.Query("SELECT 1 FROM schema_migrations WHERE version = $1", {migration.version})
                 .Empty()) {
          return;
        }
        db.Execute(migration.sql);
        db.Query(
            "INSERT INTO schema_migrations (version, applied_at) "
            "VALUES ($1, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))",
            {migration.version});
        if (migration.version == 2) {
          db.Query("INSERT INTO secrets (name, value) VALUES ('mask_salt', $1)", {RandomHex(16)});
        }
        transaction.Commit();
      });
    }
  } catch (...) {
    db.Query(unlock.c_str(), {"migrate"});
    throw;
  }
  db.Query(unlock.c_str(), {"migrate"});
  return found;
}

// A write transaction: takes the catalog's write lock first, so writers queue instead
// of deadlocking on the rows and the generation they both touch.
class WriteTransaction {
 public:
  explicit WriteTransaction(Connection& db) : db_(db), transaction_(db, Transaction::Mode::kWrite) {
    static const std::string lock = std::string("SELECT pg_advisory_xact_lock(") + kLockKey + ")";
    db_.Query(lock.c_str(), {"write"});
  }
  void Commit() { transaction_.Commit(); }

 private:
  Connection& db_;
  Transaction transaction_;
};

// --- writes ---

void EnsureDomain(Connection& db, const std::string& domain) {
  db.Query("INSERT INTO domains (name) VALUES ($1) ON CONFLICT DO NOTHING", {domain});
}

std::optional<int64_t> ProductId(Connection& db, const std::string& domain,
                                 const std::string& product) {
  Result r = db.Query("SELECT id FROM products WHERE domain = $1 AND name = $2", {domain, product});
  if (r.Empty()) return std::nullopt;
  return r.Int(0, 0);
}

void RefreshSearch(Connection& db, int64_t product_id) {
  db.Query(R"sql(
    INSERT INTO search_documents (product_id, domain, name, tags, description, ports, columns,
                                  document)
    SELECT id, domain, name, tags, description, ports, columns,
           canopy_search_document(name, tags, description, ports, columns)
    FROM (
      SELECT p.id, p.domain, p.name,
        coalesce((SELECT string_agg(tag, ' ' ORDER BY position) FROM product_tags
                  WHERE product_id = p.id), '') AS tags,
        trim(both E'\n' FROM p.purpose || E'\n' || p.usage || E'\n' || p.limitations)
          AS description,
        coalesce((SELECT string_agg(name || ': ' || description, E'\n' ORDER BY position)
                  FROM ports WHERE version_id = p.live_version_id), '') AS ports,
        coalesce((SELECT string_agg(c.name || ': ' || c.description, E'\n'
                                    ORDER BY o.position, c.position)
                  FROM columns c JOIN ports o ON o.id = c.port_id
                  WHERE o.version_id = p.live_version_id), '') AS columns
      FROM products p WHERE p.id = $1) AS f
    ON CONFLICT (product_id) DO UPDATE SET
      domain = excluded.domain, name = excluded.name, tags = excluded.tags,
      description = excluded.description,
      ports = excluded.ports, columns = excluded.columns, document = excluded.document)sql",
           {product_id});
}

void UpsertDomain(Connection& db, const DomainRecord& domain) {
  db.Query(
      "INSERT INTO domains (name, description) VALUES ($1, $2) "
      "ON CONFLICT (name) DO UPDATE SET description = excluded.description",
      {domain.name, domain.description});
  db.Query("DELETE FROM domain_owners WHERE domain = $1", {domain.name});
  for (size_t i = 0; i < domain.owners.size(); ++i) {
    db.Query("INSERT INTO domain_owners (domain, position, owner) VALUES ($1, $2, $3)",
             {domain.name, i, domain.owners[i]});
  }
}

int64_t UpsertProduct(Connection& db, const ProductRecord& p) {
  EnsureDomain(db, p.domain);
  const int64_t id = db.Query(R"sql(
    INSERT INTO products (domain, name, version, status, type, owner, visibility,
                          purpose, usage, limitations)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (domain, name) DO UPDATE SET
      version = excluded.version, status = excluded.status, type = excluded.type,
      owner = excluded.owner, visibility = excluded.visibility, purpose = excluded.purpose,
      usage = excluded.usage, limitations = excluded.limitations
    RETURNING id)sql",
                              {p.domain, p.name, p.version, p.status, p.type, p.owner, p.visibility,
                               p.purpose, p.usage, p.limitations})
                         .Int(0, 0);
  db.Query("DELETE FROM product_tags WHERE product_id = $1", {id});
  for (size_t i = 0; i < p.tags.size(); ++i) {
    db.Query("INSERT INTO product_tags (product_id, position, tag) VALUES ($1, $2, $3)",
             {id, i, p.tags[i]});
  }
  return id;
}

// Inserts a version and everything that hangs off it; returns its id.
// Appends `entry` to the chain inside the caller's transaction, under the audit lock
// (taken here, held to the end of the transaction), linked to the head as read under it.
AuditEntry InsertAudit(Connection& db, const AuditSeal& seal, const AuditEntry& entry) {
  static const std::string lock = std::string("SELECT pg_advisory_xact_lock(") + kLockKey + ")";
  db.Query(lock.c_str(), {"audit"});
  AuditEntry stored = entry;
  Result last = db.Query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
  stored.seq = last.Empty() ? 1 : last.Int(0, 0) + 1;
  stored.prev_hash = last.Empty() ? std::string(64, '0') : last.Text(0, 1);
  stored.hash = seal.Hash(stored);
  db.Query(R"sql(
    INSERT INTO audit_log (seq, at, principal, action, target, outcome, details, prev_hash, hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))sql",
           {stored.seq, stored.at, stored.principal, stored.action, stored.target, stored.outcome,
            stored.details, stored.prev_hash, stored.hash});
  fault::Hit(fault::Point::kAuditAppend);
  return stored;
}

int64_t InsertVersion(Connection& db, int64_t product_id, const PublishedVersion& v) {
  const int64_t version_id = db.Query(R"sql(
    INSERT INTO versions (product_id, version, build_id, fingerprint, published_at,
                          manifest_path, duration_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id)sql",
                                      {product_id, v.version, v.build_id, v.fingerprint,
                                       v.published_at, v.manifest_path, v.duration_ms})
                                 .Int(0, 0);
  for (size_t i = 0; i < v.ports.size(); ++i) {
    const PortRecord& p = v.ports[i];
    const int64_t port_id = db.Query(R"sql(
      INSERT INTO ports (version_id, position, name, sql_name, description, path, row_count,
                         byte_count, checksum)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id)sql",
                                     {version_id, i, p.name, p.sql_name, p.description, p.path,
                                      p.rows, p.bytes, p.checksum})
                                .Int(0, 0);
    for (size_t j = 0; j < p.columns.size(); ++j) {
      const ColumnRecord& c = p.columns[j];
      db.Query(R"sql(
        INSERT INTO columns (port_id, position, name, type, classification, required, is_unique,
                             primary_key, description)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))sql",
               {port_id, j, c.name, c.type, c.classification, c.required, c.unique, c.primary_key,
                c.description});
    }
  }
  for (size_t i = 0; i < v.quality.size(); ++i) {
    const QualityResult& q = v.quality[i];
    db.Query(R"sql(
      INSERT INTO quality_results (version_id, position, port, column_name, rule, severity,
                                   passed, observed, threshold, message)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))sql",
             {version_id, i, q.port, q.column, q.rule, q.severity, q.passed, q.observed,
              q.threshold, q.message});
  }
  for (const LineageEdge& edge : v.lineage) {
    db.Query(
        "INSERT INTO lineage_edges (version_id, source, target) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        {version_id, edge.from, edge.to});
  }
  for (const ColumnLineageEdge& e : v.column_lineage) {
    db.Query(
        R"sql(
      INSERT INTO column_lineage (version_id, target, column_name, source, source_column, type,
                                  subtype, dataset)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING)sql",
        {version_id, e.target, e.column, e.source, e.source_column, e.type, e.subtype, e.dataset});
  }
  for (const PortLineage& p : v.port_lineage) {
    db.Query(
        "INSERT INTO port_lineage (version_id, target, analysed, reason) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        {version_id, p.target, p.analysed, p.reason});
  }
  for (const auto& [upstream, build_id] : v.input_versions) {
    db.Query("INSERT INTO input_versions (version_id, upstream, build_id) VALUES ($1, $2, $3)",
             {version_id, upstream, build_id});
  }
  return version_id;
}

// --- reads ---

constexpr const char* kSummarySelect = R"sql(
  SELECT p.id, p.domain, p.name, p.version, p.status, p.type, p.owner, p.visibility,
         p.purpose, p.usage, p.limitations, v.build_id, v.version, v.published_at,
         coalesce((SELECT string_agg(tag, E'\x1f' ORDER BY position) FROM product_tags
                   WHERE product_id = p.id), '')
  FROM products p LEFT JOIN versions v ON v.id = p.live_version_id)sql";

std::vector<std::string> SplitUnits(const std::string& text) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  for (size_t at = text.find('\x1f'); at != std::string::npos; at = text.find('\x1f', start)) {
    parts.push_back(text.substr(start, at - start));
    start = at + 1;
  }
  parts.push_back(text.substr(start));
  return parts;
}

ProductSummary ReadSummary(const Result& r, int row) {
  ProductSummary s;
  ProductRecord& p = s.product;
  p.domain = r.Text(row, 1);
  p.name = r.Text(row, 2);
  p.version = r.Text(row, 3);
  p.status = r.Text(row, 4);
  p.type = r.Text(row, 5);
  p.owner = r.Text(row, 6);
  p.visibility = r.Text(row, 7);
  p.purpose = r.Text(row, 8);
  p.usage = r.Text(row, 9);
  p.limitations = r.Text(row, 10);
  if (!r.IsNull(row, 11)) {
    s.build_id = r.Text(row, 11);
    s.live_version = r.Text(row, 12);
    s.published_at = r.Text(row, 13);
  }
  p.tags = SplitUnits(r.Text(row, 14));
  return s;
}

std::vector<PortRecord> ReadPorts(Connection& db, int64_t version_id) {
  std::vector<PortRecord> ports;
  Result select = db.Query(R"sql(
    SELECT id, name, sql_name, description, path, row_count, byte_count, checksum
    FROM ports WHERE version_id = $1 ORDER BY position)sql",
                           {version_id});
  Result columns = db.Query(R"sql(
    SELECT c.port_id, c.name, c.type, c.classification, c.required, c.is_unique, c.primary_key,
           c.description
    FROM columns c JOIN ports o ON o.id = c.port_id
    WHERE o.version_id = $1 ORDER BY o.position, c.position)sql",
                            {version_id});
  int next = 0;
  for (int i = 0; i < select.Rows(); ++i) {
    PortRecord& p = ports.emplace_back();
    const int64_t id = select.Int(i, 0);
    p.name = select.Text(i, 1);
    p.sql_name = select.Text(i, 2);
    p.description = select.Text(i, 3);
    p.path = select.Text(i, 4);
    p.rows = select.Int(i, 5);
    p.bytes = select.Int(i, 6);
    p.checksum = select.Text(i, 7);
    for (; next < columns.Rows() && columns.Int(next, 0) == id; ++next) {
      p.columns.push_back({columns.Text(next, 1), columns.Text(next, 2), columns.Text(next, 3),
                           columns.Bool(next, 4), columns.Bool(next, 5), columns.Bool(next, 6),
                           columns.Text(next, 7)});
    }
  }
  return ports;
}

std::vector<QualityResult> ReadQuality(Connection& db, int64_t version_id) {
  std::vector<QualityResult> results;
  Result r = db.Query(R"sql(
    SELECT port, column_name, rule, severity, passed, observed, threshold, message
    FROM quality_results WHERE version_id = $1 ORDER BY position)sql",
                      {version_id});
  for (int i = 0; i < r.Rows(); ++i) {
    results.push_back({r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Bool(i, 4),
                       r.Text(i, 5), r.Text(i, 6), r.Text(i, 7)});
  }
  return results;
}

std::map<std::string, std::string> ReadInputs(Connection& db, int64_t version_id) {
  std::map<std::string, std::string> inputs;
  Result r =
      db.Query("SELECT upstream, build_id FROM input_versions WHERE version_id = $1", {version_id});
  for (int i = 0; i < r.Rows(); ++i) inputs[r.Text(i, 0)] = r.Text(i, 1);
  return inputs;
}

std::optional<LiveVersion> ReadLive(Connection& db, const std::string& domain,
                                    const std::string& product) {
  Result r = db.Query(R"sql(
    SELECT v.id, v.version, v.build_id, v.fingerprint, v.published_at, v.manifest_path
    FROM products p JOIN versions v ON v.id = p.live_version_id
    WHERE p.domain = $1 AND p.name = $2)sql",
                      {domain, product});
  if (r.Empty()) return std::nullopt;
  const int64_t version_id = r.Int(0, 0);
  LiveVersion live;
  live.version = r.Text(0, 1);
  live.build_id = r.Text(0, 2);
  live.fingerprint = r.Text(0, 3);
  live.published_at = r.Text(0, 4);
  live.manifest_path = r.Text(0, 5);
  live.ports = ReadPorts(db, version_id);
  live.quality = ReadQuality(db, version_id);
  live.input_versions = ReadInputs(db, version_id);
  return live;
}

// The words as tsquery text: each a quoted lexeme (words hold only letters, digits
// and non-ASCII bytes, so nothing in them is syntax), joined by `op`; the last a
// prefix.
std::string TsQuery(const std::vector<std::string>& words, const char* op) {
  std::string query;
  for (const std::string& w : words)
    query += (query.empty() ? "'" : std::string(op) + "'") + w + "'";
  return query + ":*";
}

std::string Lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

// Up to 12 words of `body` around the first that matches, the matching words marked
// [word] and cuts marked …, as the SQLite store's snippets read. A word matches when
// one of its runs of letters and digits is a query word, or begins with the last one.
std::string Snippet(const std::string& body, const std::vector<std::string>& words) {
  constexpr size_t kWords = 12;
  std::vector<std::string> tokens;
  for (size_t at = 0; at < body.size();) {
    const size_t end = std::min(body.find(' ', at), body.size());
    tokens.push_back(body.substr(at, end - at));
    at = end + 1;
  }
  std::vector<std::string> wanted;
  for (const std::string& w : words) wanted.push_back(Lower(w));
  size_t first = tokens.size();
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::string marked;
    bool hit = false;
    const std::string& token = tokens[t];
    for (size_t i = 0; i < token.size();) {
      const std::vector<std::string> run = SearchWords(token.substr(i));
      if (run.empty()) {
        marked += token.substr(i);
        break;
      }
      const size_t start = token.find(run[0], i);
      marked += token.substr(i, start - i);
      const std::string lower = Lower(run[0]);
      bool match = false;
      for (size_t w = 0; w < wanted.size(); ++w) {
        match |= lower == wanted[w] || (w + 1 == wanted.size() && lower.rfind(wanted[w], 0) == 0);
      }
      marked += match ? "[" + run[0] + "]" : run[0];
      hit |= match;
      i = start + run[0].size();
    }
    tokens[t] = marked;
    if (hit && first == tokens.size()) first = t;
  }
  const size_t begin = first == tokens.size() || first < 2 ? 0 : first - 2;
  const size_t end = std::min(tokens.size(), begin + kWords);
  std::string out = begin > 0 ? "…" : "";
  for (size_t t = begin; t < end; ++t) out += (t > begin ? " " : "") + tokens[t];
  if (end < tokens.size()) out += "…";
  return out;
}

constexpr const char* kTokenById =
    "SELECT id, username, secret_hash, created_at, revoked_at, expires_at, scram"
    " FROM api_tokens WHERE id = $1";
constexpr const char* kTokensInOrder =
    "SELECT id, username, secret_hash, created_at, revoked_at, expires_at, scram"
    " FROM api_tokens ORDER BY id";

TokenRecord ReadToken(const Result& r, int row) {
  return {r.Int(row, 0),  r.Text(row, 1), r.Text(row, 2), r.Text(row, 3),
          r.Text(row, 4), r.Text(row, 5), r.Text(row, 6)};
}

constexpr const char* kRequestSelect =
    "SELECT id, domain, product, requester, purpose, status, created_at, decided_by, "
    "decided_at, note FROM access_requests";

AccessRequest ReadRequest(const Result& r, int row) {
  return {r.Int(row, 0),  r.Text(row, 1), r.Text(row, 2), r.Text(row, 3), r.Text(row, 4),
          r.Text(row, 5), r.Text(row, 6), r.Text(row, 7), r.Text(row, 8), r.Text(row, 9)};
}

int64_t InsertGrant(Connection& db, const GrantRecord& grant) {
  if (!db.Query("SELECT 1 FROM grants WHERE domain = $1 AND product = $2 AND grantee = $3",
                {grant.domain, grant.product, grant.grantee})
           .Empty()) {
    throw Error(ErrorCode::kConflict,
                grant.grantee + " already holds a grant on " + grant.domain + "." + grant.product);
  }
  if (grant.request_id) {
    return db
        .Query(R"sql(
      INSERT INTO grants (domain, product, grantee, granted_by, granted_at, request_id)
      VALUES ($1, $2, $3, $4, $5, $6) RETURNING id)sql",
               {grant.domain, grant.product, grant.grantee, grant.granted_by, grant.granted_at,
                *grant.request_id})
        .Int(0, 0);
  }
  return db
      .Query(R"sql(
    INSERT INTO grants (domain, product, grantee, granted_by, granted_at)
    VALUES ($1, $2, $3, $4, $5) RETURNING id)sql",
             {grant.domain, grant.product, grant.grantee, grant.granted_by, grant.granted_at})
      .Int(0, 0);
}

AuditEntry ReadAuditEntry(const Result& r, int row) {
  return {r.Int(row, 0),  r.Text(row, 1), r.Text(row, 2), r.Text(row, 3), r.Text(row, 4),
          r.Text(row, 5), r.Text(row, 6), r.Text(row, 7), r.Text(row, 8)};
}

class PgProductLock final : public ProductLock {
 public:
  PgProductLock(Connection& db, std::string key) : db_(db), key_(std::move(key)) {}
  ~PgProductLock() override {
    try {
      static const std::string unlock = std::string("SELECT pg_advisory_unlock(") + kLockKey + ")";
      db_.Query(unlock.c_str(), {key_});
    } catch (const Error&) {
      // The connection is gone, and the lock with it.
    }
  }
  PgProductLock(const PgProductLock&) = delete;
  PgProductLock& operator=(const PgProductLock&) = delete;

 private:
  Connection& db_;
  std::string key_;
};

}  // namespace

PgCatalog::PgCatalog(const std::string& url, const std::string& seal_folder, Upgrade upgrade)
    : url_(url) {
  db_ = std::make_unique<Connection>(url);
  const int schema_was = Migrate(*db_, upgrade);
  opened_at_version_ = schema_was;
  // The seal's files sit where a SQLite catalog's would, beside <storage>/catalog.db:
  // the same key, and a checkpoint of this database and schema's own.
  Result where = db_->Query("SELECT current_database(), current_schema()");
  std::string name = "pg-" + where.Text(0, 0) + "." + where.Text(0, 1);
  for (char& c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '_' && c != '.') {
      c = '_';
    }
  }
  seal_ =
      std::make_unique<AuditSeal>(seal_folder.empty() ? std::string() : seal_folder + "/catalog.db",
                                  "audit." + name + ".checkpoint");
  const bool empty_log = db_->Query("SELECT 1 FROM audit_log LIMIT 1").Empty();
  if (!seal_->has_key() && empty_log) {
    seal_->MakeKey(0, std::string(64, '0'));
  } else if (schema_was == 0) {
    seal_->Start();
  }
}

PgCatalog::~PgCatalog() = default;

void PgCatalog::SyncSpec(const std::vector<DomainRecord>& domains,
                         const std::vector<ProductRecord>& products) {
  Doing("sync the spec", [&] {
    // Unchanged since the last sync, and no product added since by a publish: nothing
    // to write (see the SQLite store).
    const std::string fingerprint = SpecFingerprint(domains, products);
    Result synced = db_->Query(
        "SELECT fingerprint, products, (SELECT count(*) FROM products) "
        "FROM spec_sync WHERE id = 1");
    if (!synced.Empty() && synced.Text(0, 0) == fingerprint &&
        synced.Int(0, 1) == synced.Int(0, 2)) {
      return;
    }
    WriteTransaction transaction(*db_);
    for (const DomainRecord& domain : domains) UpsertDomain(*db_, domain);
    std::set<int64_t> in_spec;
    for (const ProductRecord& product : products) {
      const int64_t id = UpsertProduct(*db_, product);
      in_spec.insert(id);
      RefreshSearch(*db_, id);
    }
    Result all = db_->Query("SELECT id FROM products WHERE status <> 'retired'");
    for (int i = 0; i < all.Rows(); ++i) {
      if (in_spec.count(all.Int(i, 0)) == 0) {
        db_->Query("UPDATE products SET status = 'retired' WHERE id = $1", {all.Int(i, 0)});
      }
    }
    db_->Query(
        "INSERT INTO spec_sync (id, fingerprint, products) "
        "VALUES (1, $1, (SELECT count(*) FROM products)) "
        "ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, "
        "products = excluded.products",
        {fingerprint});
    transaction.Commit();
  });
}

void PgCatalog::BeginBuild(const BuildRecord& build) {
  Doing("begin build " + build.id, [&] {
    WriteTransaction transaction(*db_);
    if (!db_->Query("SELECT 1 FROM builds WHERE id = $1", {build.id}).Empty()) {
      throw Error(ErrorCode::kConflict, "build " + build.id + " exists already");
    }
    db_->Query("INSERT INTO builds (id, started_at, finished_at, status) VALUES ($1, $2, $3, $4)",
               {build.id, build.started_at, build.finished_at, build.status});
    for (size_t i = 0; i < build.targets.size(); ++i) {
      db_->Query("INSERT INTO build_targets (build_id, position, target) VALUES ($1, $2, $3)",
                 {build.id, i, build.targets[i]});
    }
    transaction.Commit();
  });
}

void PgCatalog::FinishBuild(const std::string& build_id, const std::string& status,
                            const std::string& finished_at) {
  Doing("finish build " + build_id, [&] {
    WriteTransaction transaction(*db_);
    if (db_->Query("UPDATE builds SET status = $1, finished_at = $2 WHERE id = $3",
                   {status, finished_at, build_id})
            .Changed() == 0) {
      throw Error(ErrorCode::kNotFound, "no build " + build_id);
    }
    transaction.Commit();
  });
}

void PgCatalog::RecordRun(const ProductRun& r) {
  Doing("record the run of " + r.domain + "." + r.product + " in build " + r.build_id, [&] {
    WriteTransaction transaction(*db_);
    if (db_->Query("SELECT 1 FROM builds WHERE id = $1", {r.build_id}).Empty()) {
      throw Error(ErrorCode::kNotFound, "no build " + r.build_id);
    }
    db_->Query(R"sql(
      INSERT INTO product_runs (build_id, domain, product, status, message, row_count,
                                duration_ms, checks_passed, checks_total)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
      ON CONFLICT (build_id, domain, product) DO UPDATE SET
        status = excluded.status, message = excluded.message, row_count = excluded.row_count,
        duration_ms = excluded.duration_ms, checks_passed = excluded.checks_passed,
        checks_total = excluded.checks_total)sql",
               {r.build_id, r.domain, r.product, r.status, r.message, r.rows, r.duration_ms,
                r.checks_passed, r.checks_total});
    transaction.Commit();
  });
}

std::vector<ProductRun> PgCatalog::Runs(const std::string& build_id) {
  return Doing("read the runs of build " + build_id, [&] {
    std::vector<ProductRun> runs;
    Result r = db_->Query(R"sql(
      SELECT domain, product, status, message, row_count, duration_ms, checks_passed,
             checks_total
      FROM product_runs WHERE build_id = $1 ORDER BY domain COLLATE "C", product COLLATE "C")sql",
                          {build_id});
    for (int i = 0; i < r.Rows(); ++i) {
      runs.push_back({build_id, r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Int(i, 4),
                      r.Int(i, 5), static_cast<int>(r.Int(i, 6)), static_cast<int>(r.Int(i, 7))});
    }
    return runs;
  });
}

void PgCatalog::Publish(const PublishedVersion& v, const std::vector<AuditEntry>& audit) {
  const std::string name = v.domain + "." + v.product;
  if (!audit.empty() && !seal_->has_key()) throw MissingAuditKey(*seal_);
  Doing("publish " + name + " build " + v.build_id, [&] {
    WriteTransaction transaction(*db_);
    EnsureDomain(*db_, v.domain);
    db_->Query(
        "INSERT INTO products (domain, name, version, status) VALUES ($1, $2, $3, 'active') "
        "ON CONFLICT DO NOTHING",
        {v.domain, v.product, v.version});
    const int64_t product_id = *ProductId(*db_, v.domain, v.product);
    if (!db_->Query("SELECT 1 FROM versions WHERE product_id = $1 AND build_id = $2",
                    {product_id, v.build_id})
             .Empty()) {
      throw Error(ErrorCode::kConflict, name + " build " + v.build_id + " is published already");
    }
    const int64_t version_id = InsertVersion(*db_, product_id, v);
    db_->Query("UPDATE products SET live_version_id = $1 WHERE id = $2", {version_id, product_id});
    RefreshSearch(*db_, product_id);
    // The write lock first, then the audit lock: no transaction takes them the other way.
    std::optional<AuditEntry> head;
    for (const auto& entry : audit) head = InsertAudit(*db_, *seal_, entry);
    fault::Hit(fault::Point::kCatalogPublish);
    transaction.Commit();
    if (head) AdvanceCheckpoint(*head);
  });
}

std::optional<LiveVersion> PgCatalog::Live(const std::string& domain, const std::string& product) {
  return Doing("read the live version of " + domain + "." + product, [&] {
    Transaction snapshot(*db_, Transaction::Mode::kSnapshot);
    auto live = ReadLive(*db_, domain, product);
    snapshot.Commit();
    return live;
  });
}

std::vector<ProductSummary> PgCatalog::ListProducts() {
  return Doing("list the products", [&] {
    std::vector<ProductSummary> summaries;
    static const std::string sql =
        std::string(kSummarySelect) + " ORDER BY p.domain COLLATE \"C\", p.name COLLATE \"C\"";
    Result r = db_->Query(sql.c_str());
    for (int i = 0; i < r.Rows(); ++i) summaries.push_back(ReadSummary(r, i));
    return summaries;
  });
}

std::optional<ProductDetail> PgCatalog::GetProduct(const std::string& domain,
                                                   const std::string& product) {
  return Doing("read " + domain + "." + product, [&]() -> std::optional<ProductDetail> {
    Transaction snapshot(*db_, Transaction::Mode::kSnapshot);
    static const std::string sql =
        std::string(kSummarySelect) + " WHERE p.domain = $1 AND p.name = $2";
    Result r = db_->Query(sql.c_str(), {domain, product});
    if (r.Empty()) return std::nullopt;
    ProductDetail detail;
    detail.summary = ReadSummary(r, 0);
    detail.live = ReadLive(*db_, domain, product);
    Result history = db_->Query(
        "SELECT version, build_id, published_at FROM versions "
        "WHERE product_id = $1 ORDER BY id DESC",
        {r.Int(0, 0)});
    for (int i = 0; i < history.Rows(); ++i) {
      detail.version_history.push_back(
          {history.Text(i, 0), history.Text(i, 1), history.Text(i, 2)});
    }
    snapshot.Commit();
    return detail;
  });
}

std::vector<SearchHit> PgCatalog::Search(const std::string& text, int limit) {
  std::vector<std::string> words;
  for (std::string& word : SearchWords(text)) {
    if (ValidUtf8(word)) words.push_back(std::move(word));  // PostgreSQL refuses other bytes
  }
  if (words.empty() || limit <= 0) return {};
  return Doing("search", [&] {
    // $1 every word (what finds a product), $2 any word (which field matched best and
    // what the snippet marks). Field weights as in the SQLite store: name 10, tags 5,
    // descriptions and ports 2, columns 1 (A, B, C, D). The best $3 are ranked within
    // search_documents alone; only they are looked at again for the field that matched:
    // by weight in the stored document, and for C (descriptions or ports) in the text.
    Result r = db_->Query(R"sql(
      WITH q AS (SELECT to_tsquery('canopy_search', $1) AS every,
                        to_tsquery('canopy_search', $2) AS anyword),
      best AS (
        SELECT s.product_id, s.domain, s.name,
               ts_rank('{0.1, 0.2, 0.5, 1.0}', s.document, q.every) AS score
        FROM search_documents s, q WHERE s.document @@ q.every
        ORDER BY score DESC, s.domain, s.name LIMIT $3)
      SELECT b.domain, b.name, b.score, f.field,
             CASE f.field WHEN 0 THEN d.name WHEN 1 THEN d.tags WHEN 2 THEN d.description
                          WHEN 3 THEN d.ports ELSE d.columns END
      FROM best b JOIN search_documents d ON d.product_id = b.product_id, q,
        LATERAL (SELECT CASE
          WHEN ts_filter(d.document, '{a}') @@ q.anyword THEN 0
          WHEN ts_filter(d.document, '{b}') @@ q.anyword THEN 1
          WHEN ts_filter(d.document, '{c}') @@ q.anyword THEN
            CASE WHEN to_tsvector('canopy_search', d.description) @@ q.anyword THEN 2 ELSE 3 END
          ELSE 4 END AS field) AS f
      ORDER BY b.score DESC, b.domain, b.name)sql",
                          {TsQuery(words, " & "), TsQuery(words, " | "), limit});
    std::vector<SearchHit> hits;
    for (int i = 0; i < r.Rows(); ++i) {
      const auto field = static_cast<size_t>(r.Int(i, 3));
      hits.push_back({r.Text(i, 0), r.Text(i, 1), r.Double(i, 2), kSearchFields[field],
                      Snippet(OneLine(r.Text(i, 4)), words)});
    }
    return hits;
  });
}

LiveLineage PgCatalog::ColumnLineage() {
  return Doing("read the column lineage", [&] {
    Transaction snapshot(*db_, Transaction::Mode::kSnapshot);
    LiveLineage out;
    Result edges = db_->Query(R"sql(
      SELECT l.target, l.column_name, l.source, l.source_column, l.type, l.subtype, l.dataset
      FROM column_lineage l JOIN products p ON p.live_version_id = l.version_id
      ORDER BY l.target COLLATE "C", l.column_name COLLATE "C", l.source COLLATE "C",
               l.source_column COLLATE "C", l.type COLLATE "C", l.subtype COLLATE "C")sql");
    for (int i = 0; i < edges.Rows(); ++i) {
      out.edges.push_back({edges.Text(i, 0), edges.Text(i, 1), edges.Text(i, 2), edges.Text(i, 3),
                           edges.Text(i, 4), edges.Text(i, 5), edges.Bool(i, 6)});
    }
    Result ports = db_->Query(R"sql(
      SELECT l.target, l.analysed, l.reason
      FROM port_lineage l JOIN products p ON p.live_version_id = l.version_id
      ORDER BY l.target COLLATE "C")sql");
    for (int i = 0; i < ports.Rows(); ++i) {
      out.ports.push_back({ports.Text(i, 0), ports.Bool(i, 1), ports.Text(i, 2)});
    }
    snapshot.Commit();
    return out;
  });
}

void PgCatalog::RecordLineageEvent(const std::string& build_id, const std::string& event) {
  Doing("record an OpenLineage event of build " + build_id, [&] {
    WriteTransaction transaction(*db_);
    db_->Query("INSERT INTO openlineage_events (build_id, event) VALUES ($1, $2)",
               {build_id, event});
    fault::Hit(fault::Point::kLineageRecord);
    transaction.Commit();
  });
}

std::vector<std::string> PgCatalog::LineageEvents() {
  return Doing("read the OpenLineage events", [&] {
    std::vector<std::string> events;
    Result r = db_->Query("SELECT event FROM openlineage_events ORDER BY seq");
    for (int i = 0; i < r.Rows(); ++i) events.push_back(r.Text(i, 0));
    return events;
  });
}

std::vector<std::string> PgCatalog::ReferencedPaths() {
  return Doing("list the referenced paths", [&] {
    std::vector<std::string> paths;
    Result r = db_->Query(R"sql(
      SELECT path FROM (SELECT path FROM ports WHERE path <> ''
                        UNION SELECT manifest_path FROM versions WHERE manifest_path <> '') AS u
      ORDER BY path COLLATE "C")sql");
    for (int i = 0; i < r.Rows(); ++i) paths.push_back(r.Text(i, 0));
    return paths;
  });
}

int64_t PgCatalog::AddGrant(const GrantRecord& grant) {
  return Doing("grant " + grant.domain + "." + grant.product + " to " + grant.grantee, [&] {
    WriteTransaction transaction(*db_);
    const int64_t id = InsertGrant(*db_, grant);
    transaction.Commit();
    return id;
  });
}

bool PgCatalog::RevokeGrant(const std::string& domain, const std::string& product,
                            const std::string& grantee) {
  return Doing("revoke " + domain + "." + product + " from " + grantee, [&] {
    WriteTransaction transaction(*db_);
    const bool removed =
        db_->Query("DELETE FROM grants WHERE domain = $1 AND product = $2 AND grantee = $3",
                   {domain, product, grantee})
            .Changed() > 0;
    transaction.Commit();
    return removed;
  });
}

std::vector<GrantRecord> PgCatalog::Grants() {
  return Doing("read the grants", [&] {
    std::vector<GrantRecord> grants;
    Result r = db_->Query(R"sql(
      SELECT id, domain, product, grantee, granted_by, granted_at, request_id
      FROM grants ORDER BY domain COLLATE "C", product COLLATE "C", grantee COLLATE "C")sql");
    for (int i = 0; i < r.Rows(); ++i) {
      GrantRecord g{r.Int(i, 0),  r.Text(i, 1), r.Text(i, 2), r.Text(i, 3),
                    r.Text(i, 4), r.Text(i, 5), std::nullopt};
      if (!r.IsNull(i, 6)) g.request_id = r.Int(i, 6);
      grants.push_back(std::move(g));
    }
    return grants;
  });
}

int64_t PgCatalog::CreateAccessRequest(const AccessRequest& r) {
  return Doing("record an access request", [&] {
    WriteTransaction transaction(*db_);
    Result pending = db_->Query(R"sql(
      SELECT id FROM access_requests
      WHERE domain = $1 AND product = $2 AND requester = $3 AND status = 'pending')sql",
                                {r.domain, r.product, r.requester});
    if (!pending.Empty()) {
      throw Error(ErrorCode::kConflict, r.requester + " already asked for " + r.domain + "." +
                                            r.product + " (request " +
                                            std::to_string(pending.Int(0, 0)) + " is pending)");
    }
    const int64_t id = db_->Query(R"sql(
      INSERT INTO access_requests (domain, product, requester, purpose, status, created_at)
      VALUES ($1, $2, $3, $4, 'pending', $5) RETURNING id)sql",
                                  {r.domain, r.product, r.requester, r.purpose, r.created_at})
                           .Int(0, 0);
    transaction.Commit();
    return id;
  });
}

std::optional<AccessRequest> PgCatalog::GetAccessRequest(int64_t id) {
  return Doing("read access request " + std::to_string(id), [&]() -> std::optional<AccessRequest> {
    static const std::string sql = std::string(kRequestSelect) + " WHERE id = $1";
    Result r = db_->Query(sql.c_str(), {id});
    if (r.Empty()) return std::nullopt;
    return ReadRequest(r, 0);
  });
}

std::vector<AccessRequest> PgCatalog::AccessRequests() {
  return Doing("read the access requests", [&] {
    std::vector<AccessRequest> requests;
    static const std::string sql = std::string(kRequestSelect) + " ORDER BY id DESC";
    Result r = db_->Query(sql.c_str());
    for (int i = 0; i < r.Rows(); ++i) requests.push_back(ReadRequest(r, i));
    return requests;
  });
}

void PgCatalog::DecideAccessRequest(int64_t id, bool approve, const std::string& decided_by,
                                    const std::string& decided_at, const std::string& note) {
  Doing("decide access request " + std::to_string(id), [&] {
    WriteTransaction transaction(*db_);
    static const std::string sql = std::string(kRequestSelect) + " WHERE id = $1";
    Result r = db_->Query(sql.c_str(), {id});
    if (r.Empty()) {
      throw Error(ErrorCode::kNotFound, "no access request " + std::to_string(id),
                  "canopy access list shows the requests");
    }
    const AccessRequest request = ReadRequest(r, 0);
    if (request.status != "pending") {
      throw Error(ErrorCode::kConflict, "access request " + std::to_string(id) + " was " +
                                            request.status + " already by " + request.decided_by);
    }
    db_->Query(R"sql(
      UPDATE access_requests SET status = $1, decided_by = $2, decided_at = $3, note = $4
      WHERE id = $5)sql",
               {approve ? "approved" : "denied", decided_by, decided_at, note, id});
    if (approve && db_->Query("SELECT 1 FROM grants WHERE domain = $1 AND product = $2 AND "
                              "grantee = $3",
                              {request.domain, request.product, request.requester})
                       .Empty()) {
      InsertGrant(*db_, {0, request.domain, request.product, request.requester, decided_by,
                         decided_at, id});
    }
    transaction.Commit();
  });
}

void PgCatalog::SealAudit() {
  if (seal_->has_key()) {
    throw Error(ErrorCode::kConflict,
                "the audit log is sealed already (key " + seal_->key_path() + ")");
  }
  Result last = db_->Query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
  if (last.Empty()) {
    seal_->MakeKey(0, std::string(64, '0'));
  } else {
    seal_->MakeKey(last.Int(0, 0), last.Text(0, 1));
  }
}

AuditEntry PgCatalog::AppendAudit(const AuditEntry& entry) {
  if (!seal_->has_key()) throw MissingAuditKey(*seal_);
  return Doing("append to the audit log", [&] {
    // Appends queue on their own lock (not the catalog's write lock: a query's audit
    // entry never waits for a publish), so every process extends one chain.
    Transaction transaction(*db_, Transaction::Mode::kWrite);
    AuditEntry stored = InsertAudit(*db_, *seal_, entry);
    transaction.Commit();
    AdvanceCheckpoint(stored);
    return stored;
  });
}

void PgCatalog::AdvanceCheckpoint(const AuditEntry& head) {
  fault::Hit(fault::Point::kAuditCommitted);
  seal_->Advance(head.seq, head.hash, [this](int64_t seq) {
    Result at = db_->Query("SELECT hash FROM audit_log WHERE seq = $1", {seq});
    return at.Empty() ? std::string() : at.Text(0, 0);
  });
}

std::vector<AuditEntry> PgCatalog::Audit(int64_t after, int limit) {
  return Doing("read the audit log", [&] {
    std::vector<AuditEntry> entries;
    Result r = db_->Query(R"sql(
      SELECT seq, at, principal, action, target, outcome, details, prev_hash, hash
      FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2)sql",
                          {after, limit});
    for (int i = 0; i < r.Rows(); ++i) entries.push_back(ReadAuditEntry(r, i));
    return entries;
  });
}

std::string PgCatalog::MaskSalt() {
  return Doing("read the mask salt", [&] {
    Result r = db_->Query("SELECT value FROM secrets WHERE name = 'mask_salt'");
    if (r.Empty()) throw Error(ErrorCode::kInternal, "the catalog has no mask salt");
    return r.Text(0, 0);
  });
}

int64_t PgCatalog::CreateToken(const std::string& user, const std::string& secret_hash,
                               const std::string& created_at, const std::string& expires_at) {
  return Doing("create a token for " + user, [&] {
    WriteTransaction transaction(*db_);
    const int64_t id =
        db_->Query(
               "INSERT INTO api_tokens (username, secret_hash, created_at, expires_at) "
               "VALUES ($1, $2, $3, $4) RETURNING id",
               {user, secret_hash, created_at, expires_at})
            .Int(0, 0);
    transaction.Commit();
    return id;
  });
}

std::optional<TokenRecord> PgCatalog::GetToken(int64_t id) {
  return Doing("read a token", [&]() -> std::optional<TokenRecord> {
    Result r = db_->Query(kTokenById, {id});
    if (r.Empty()) return std::nullopt;
    return ReadToken(r, 0);
  });
}

std::vector<TokenRecord> PgCatalog::Tokens() {
  return Doing("read the tokens", [&] {
    std::vector<TokenRecord> tokens;
    Result r = db_->Query(kTokensInOrder);
    for (int i = 0; i < r.Rows(); ++i) tokens.push_back(ReadToken(r, i));
    return tokens;
  });
}

void PgCatalog::SetTokenScram(int64_t id, const std::string& verifier) {
  Doing("keep the verifier of token " + std::to_string(id), [&] {
    WriteTransaction transaction(*db_);
    db_->Query("UPDATE api_tokens SET scram = $1 WHERE id = $2", {verifier, id});
    transaction.Commit();
    return 0;
  });
}

bool PgCatalog::RevokeToken(int64_t id, const std::string& revoked_at) {
  return Doing("revoke token " + std::to_string(id), [&] {
    WriteTransaction transaction(*db_);
    const bool revoked =
        db_->Query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = ''",
                   {revoked_at, id})
            .Changed() > 0;
    transaction.Commit();
    return revoked;
  });
}

int64_t PgCatalog::Generation() {
  return Doing("read the catalog's generation", [&] {
    Result r = db_->Query("SELECT n FROM catalog_generation WHERE id = 1");
    return r.Empty() ? int64_t{0} : r.Int(0, 0);
  });
}

namespace {

// The generation, followed on a connection of its own by a thread that waits for the
// triggers' notifications. The catalog is read again on each one, and at least every
// kMaxLagMs, so a lost notification (a dropped connection) costs that much at most;
// while the connection is down Current() says so and servers ask the catalog instead.
class PgGenerationWatch final : public GenerationWatch {
 public:
  explicit PgGenerationWatch(const std::string& url) : db_(url) {
    Listen();
    thread_ = std::thread([this] { Run(); });
  }
  ~PgGenerationWatch() override {
    stop_ = true;
    thread_.join();
  }
  PgGenerationWatch(const PgGenerationWatch&) = delete;
  PgGenerationWatch& operator=(const PgGenerationWatch&) = delete;

  // Also nullopt when the last read is older than twice the promised lag: a connection
  // that died without a reset (a partition) blocks its reads, and must not make a
  // server trust an old generation meanwhile.
  std::optional<int64_t> Current() const override {
    if (!following_.load()) return std::nullopt;
    const auto age = std::chrono::steady_clock::now().time_since_epoch().count() - read_at_.load();
    if (age > std::chrono::nanoseconds(std::chrono::milliseconds(2 * kMaxLagMs)).count()) {
      return std::nullopt;
    }
    return generation_.load();
  }

 private:
  // LISTEN first, then read: a write committed in between is then both read and
  // notified, never missed.
  void Listen() {
    db_.Execute("LISTEN canopy_catalog");
    Read();
  }
  void Read() {
    Result r = db_.Query("SELECT n FROM catalog_generation WHERE id = 1");
    generation_ = r.Empty() ? 0 : r.Int(0, 0);
    read_at_ = std::chrono::steady_clock::now().time_since_epoch().count();
    following_ = true;
  }
  void Run() {
    using Clock = std::chrono::steady_clock;
    auto last_read = Clock::now();
    while (!stop_) {
      try {
        if (!following_) {
          std::this_thread::sleep_for(std::chrono::milliseconds(kMaxLagMs));
          if (stop_) break;
          PQreset(db_.handle());  // may fail again: then the next round retries
          Listen();
          last_read = Clock::now();
          continue;
        }
        pollfd wait{db_.Socket(), POLLIN, 0};
        ::poll(&wait, 1, 50);  // also how soon a stop is seen
        const int notified = db_.DrainNotifications();
        if (notified < 0) throw Error(ErrorCode::kFailed, "the watch's connection broke");
        if (notified > 0 || Clock::now() - last_read >= std::chrono::milliseconds(kMaxLagMs)) {
          Read();
          last_read = Clock::now();
        }
      } catch (const Error&) {
        following_ = false;
      }
    }
  }

  Connection db_;
  std::atomic<int64_t> generation_{0};
  std::atomic<int64_t> read_at_{0};  // steady clock ticks of the last good read
  std::atomic<bool> following_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<GenerationWatch> PgCatalog::WatchGeneration() {
  return Doing("watch the catalog's generation",
               [&] { return std::make_unique<PgGenerationWatch>(url_); });
}

std::unique_ptr<ProductLock> PgCatalog::LockProduct(const std::string& domain,
                                                    const std::string& product,
                                                    const std::string& holder,
                                                    std::string& held_by) {
  const std::string name = domain + "." + product;
  return Doing("lock " + name, [&]() -> std::unique_ptr<ProductLock> {
    static const std::string try_lock =
        std::string("SELECT pg_try_advisory_lock(") + kLockKey + ")";
    if (db_->Query(try_lock.c_str(), {name}).Text(0, 0) != "t") {
      Result who = db_->Query("SELECT holder, since FROM build_locks WHERE product = $1", {name});
      held_by = who.Empty() ? "another runner" : who.Text(0, 0) + " since " + who.Text(0, 1);
      return nullptr;
    }
    auto lock = std::make_unique<PgProductLock>(*db_, name);
    db_->Query(
        "INSERT INTO build_locks (product, holder, since) VALUES ($1, $2, "
        "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) "
        "ON CONFLICT (product) DO UPDATE SET holder = excluded.holder, since = excluded.since",
        {name, holder});
    return lock;
  });
}

CatalogInfo PgCatalog::Info() {
  return Doing("read the catalog's counts", [&] {
    CatalogInfo info;
    info.store = "postgresql";
    info.location = db_->display();
    info.schema_version = SchemaVersion(*db_);
    info.opened_at_version = opened_at_version_;
    Result r = db_->Query(R"sql(
      SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM products),
             (SELECT count(*) FROM versions), (SELECT count(*) FROM builds),
             (SELECT count(*) FROM grants), (SELECT count(*) FROM access_requests),
             (SELECT count(*) FROM api_tokens), (SELECT count(*) FROM audit_log),
             (SELECT count(*) FROM openlineage_events))sql");
    const char* kinds[] = {"domains", "products",      "versions",
                           "builds",  "grants",        "access requests",
                           "tokens",  "audit entries", "lineage events"};
    for (int i = 0; i < 9; ++i) info.counts.emplace_back(kinds[i], r.Int(0, i));
    return info;
  });
}

CatalogDump PgCatalog::Dump() {
  throw Error(ErrorCode::kUsage, "a PostgreSQL catalog cannot be migrated from yet",
              "canopy catalog migrate copies a SQLite catalog into PostgreSQL");
}

void PgCatalog::Load(const CatalogDump& dump) {
  Doing("load the catalog into " + db_->display(), [&] {
    WriteTransaction transaction(*db_);
    Result used = db_->Query(R"sql(
      SELECT (SELECT count(*) FROM versions) + (SELECT count(*) FROM grants) +
             (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM audit_log) +
             (SELECT count(*) FROM access_requests) + (SELECT count(*) FROM builds))sql");
    if (used.Int(0, 0) != 0) {
      throw Error(ErrorCode::kConflict, "the catalog " + db_->display() + " is not empty",
                  "migrate into a new, empty database (or schema)");
    }
    for (const DomainRecord& domain : dump.domains) UpsertDomain(*db_, domain);
    std::map<std::string, int64_t> product_ids;
    for (const ProductRecord& product : dump.products) {
      product_ids[product.domain + "." + product.name] = UpsertProduct(*db_, product);
    }
    for (const BuildRecord& build : dump.builds) {
      db_->Query("INSERT INTO builds (id, started_at, finished_at, status) VALUES ($1, $2, $3, $4)",
                 {build.id, build.started_at, build.finished_at, build.status});
      for (size_t i = 0; i < build.targets.size(); ++i) {
        db_->Query("INSERT INTO build_targets (build_id, position, target) VALUES ($1, $2, $3)",
                   {build.id, i, build.targets[i]});
      }
    }
    for (const ProductRun& r : dump.runs) {
      db_->Query(R"sql(
        INSERT INTO product_runs (build_id, domain, product, status, message, row_count,
                                  duration_ms, checks_passed, checks_total)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))sql",
                 {r.build_id, r.domain, r.product, r.status, r.message, r.rows, r.duration_ms,
                  r.checks_passed, r.checks_total});
    }
    for (const PublishedVersion& v : dump.versions) {
      const std::string name = v.domain + "." + v.product;
      if (product_ids.count(name) == 0) {
        EnsureDomain(*db_, v.domain);
        ProductRecord product;
        product.domain = v.domain;
        product.name = v.product;
        product.version = v.version;
        product.status = "active";
        product_ids[name] = UpsertProduct(*db_, product);
      }
      const int64_t version_id = InsertVersion(*db_, product_ids[name], v);
      if (auto live = dump.live.find(name); live != dump.live.end() && live->second == v.build_id) {
        db_->Query("UPDATE products SET live_version_id = $1 WHERE id = $2",
                   {version_id, product_ids[name]});
      }
    }
    for (const auto& [name, id] : product_ids) RefreshSearch(*db_, id);
    for (const AccessRequest& r : dump.requests) {
      db_->Query(R"sql(
        INSERT INTO access_requests (id, domain, product, requester, purpose, status, created_at,
                                     decided_by, decided_at, note)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))sql",
                 {r.id, r.domain, r.product, r.requester, r.purpose, r.status, r.created_at,
                  r.decided_by, r.decided_at, r.note});
    }
    for (const GrantRecord& g : dump.grants) {
      if (g.request_id) {
        db_->Query(
            R"sql(
          INSERT INTO grants (id, domain, product, grantee, granted_by, granted_at, request_id)
          VALUES ($1, $2, $3, $4, $5, $6, $7))sql",
            {g.id, g.domain, g.product, g.grantee, g.granted_by, g.granted_at, *g.request_id});
      } else {
        db_->Query(R"sql(
          INSERT INTO grants (id, domain, product, grantee, granted_by, granted_at)
          VALUES ($1, $2, $3, $4, $5, $6))sql",
                   {g.id, g.domain, g.product, g.grantee, g.granted_by, g.granted_at});
      }
    }
    for (const TokenRecord& t : dump.tokens) {
      db_->Query(R"sql(
        INSERT INTO api_tokens (id, username, secret_hash, created_at, revoked_at, expires_at,
                                scram)
        VALUES ($1, $2, $3, $4, $5, $6, $7))sql",
                 {t.id, t.user, t.secret_hash, t.created_at, t.revoked_at, t.expires_at, t.scram});
    }
    for (const AuditEntry& e : dump.audit) {
      db_->Query(R"sql(
        INSERT INTO audit_log (seq, at, principal, action, target, outcome, details, prev_hash,
                               hash)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9))sql",
                 {e.seq, e.at, e.principal, e.action, e.target, e.outcome, e.details, e.prev_hash,
                  e.hash});
    }
    for (const auto& [build_id, event] : dump.lineage_events) {
      db_->Query("INSERT INTO openlineage_events (build_id, event) VALUES ($1, $2)",
                 {build_id, event});
    }
    if (!dump.mask_salt.empty()) {
      db_->Query("UPDATE secrets SET value = $1 WHERE name = 'mask_salt'", {dump.mask_salt});
    }
    // The copied ids were given, not drawn: the sequences continue after them.
    db_->Execute(R"sql(
      SELECT setval(pg_get_serial_sequence('access_requests', 'id'),
                    coalesce((SELECT max(id) FROM access_requests), 0) + 1, false);
      SELECT setval(pg_get_serial_sequence('grants', 'id'),
                    coalesce((SELECT max(id) FROM grants), 0) + 1, false);
      SELECT setval(pg_get_serial_sequence('api_tokens', 'id'),
                    coalesce((SELECT max(id) FROM api_tokens), 0) + 1, false);)sql");
    transaction.Commit();
    // The copied chain's head becomes the checkpoint, with the source's unkeyed prefix.
    if (!dump.audit.empty()) {
      seal_->Adopt({dump.audit.back().seq, dump.audit.back().hash, dump.audit_keyed_after});
    }
  });
}

}  // namespace canopy::catalog
