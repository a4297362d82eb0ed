#include "pgwire/catalog_view.h"

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"

namespace canopy::pgwire {

namespace {

// What PostgreSQL clients name and DuckDB's pg_catalog lacks: functions answered with
// what is true of Canopy (no owners but the mesh, no indexes, policies, publications or
// inheritance), and empty tables. They live in a schema of their own, first on the
// search path, and hidden from pg_namespace and pg_class as from information_schema.
constexpr const char* kCompletions = R"sql(
CREATE SCHEMA pg_canopy;
CREATE MACRO pg_canopy.pg_get_userbyid(role) AS 'canopy';
CREATE MACRO pg_canopy.pg_get_expr(expression, relation) AS NULL,
             (expression, relation, pretty) AS NULL;
CREATE MACRO pg_canopy.pg_get_indexdef(index_oid, column_no, pretty) AS NULL;
CREATE MACRO pg_canopy.pg_get_constraintdef(constraint_oid, pretty) AS NULL;
CREATE MACRO pg_canopy.pg_relation_is_publishable(relation) AS false;
CREATE MACRO pg_canopy.pg_get_statisticsobjdef_columns(statistics) AS NULL;
CREATE MACRO pg_canopy.array_upper(list, dimension) AS len(list);
CREATE TABLE pg_canopy.pg_policy (oid INTEGER, polname VARCHAR, polrelid INTEGER,
  polcmd VARCHAR, polpermissive BOOLEAN, polroles INTEGER[], polqual VARCHAR,
  polwithcheck VARCHAR);
CREATE TABLE pg_canopy.pg_statistic_ext (oid INTEGER, stxrelid INTEGER,
  stxnamespace INTEGER, stxname VARCHAR, stxkind VARCHAR[], stxstattarget INTEGER);
CREATE TABLE pg_canopy.pg_publication (oid INTEGER, pubname VARCHAR, puballtables BOOLEAN);
CREATE TABLE pg_canopy.pg_publication_namespace (oid INTEGER, pnpubid INTEGER,
  pnnspid INTEGER);
CREATE TABLE pg_canopy.pg_publication_rel (oid INTEGER, prpubid INTEGER, prrelid INTEGER,
  prqual VARCHAR, prattrs SMALLINT[]);
CREATE TABLE pg_canopy.pg_inherits (inhrelid INTEGER, inhparent INTEGER, inhseqno INTEGER,
  inhdetachpending BOOLEAN);
CREATE TABLE pg_canopy.pg_collation (oid INTEGER, collname VARCHAR, collnamespace INTEGER);
CREATE TABLE pg_canopy.pg_roles (oid INTEGER, rolname VARCHAR);
CREATE VIEW pg_canopy.pg_namespace AS
  SELECT * FROM pg_catalog.pg_namespace WHERE nspname NOT IN ('main', 'pg_canopy');
CREATE VIEW pg_canopy.pg_class AS
  SELECT c.*, false AS relrowsecurity, false AS relforcerowsecurity, 0 AS reltoastrelid,
         0 AS reloftype, 'd' AS relreplident, false AS relispartition,
         NULL::VARCHAR AS relpartbound
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace IN (SELECT oid FROM pg_canopy.pg_namespace);
CREATE VIEW pg_canopy.is_schemata AS
  SELECT * REPLACE ('canopy' AS catalog_name) FROM information_schema.schemata
  WHERE schema_name NOT IN ('main', 'pg_canopy');
CREATE VIEW pg_canopy.is_tables AS
  SELECT * REPLACE ('canopy' AS table_catalog) FROM information_schema.tables
  WHERE table_schema NOT IN ('main', 'pg_canopy');
CREATE VIEW pg_canopy.is_columns AS
  SELECT * REPLACE ('canopy' AS table_catalog) FROM information_schema.columns
  WHERE table_schema NOT IN ('main', 'pg_canopy');
SET search_path = 'pg_canopy,main';
)sql";

// The first word of `sql`, past blanks, comments and opening parentheses, in lower case.
std::string FirstWord(const std::string& sql) {
  size_t at = 0;
  while (at < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[at])) != 0 || sql[at] == '(') {
      ++at;
    } else if (sql.compare(at, 2, "--") == 0) {
      at = sql.find('\n', at);
      if (at == std::string::npos) return "";
    } else if (sql.compare(at, 2, "/*") == 0) {
      at = sql.find("*/", at);
      if (at == std::string::npos) return "";
      at += 2;
    } else {
      break;
    }
  }
  std::string word;
  while (at < sql.size() && std::isalpha(static_cast<unsigned char>(sql[at])) != 0) {
    word += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[at++])));
  }
  return word;
}

}  // namespace

struct CatalogView::State {
  engine::Database database{[] {
    engine::DatabaseOptions options = engine::WithoutFileAccess();
    options.config["threads"] = "1";
    options.config["memory_limit"] = "256MB";
    return options;
  }()};
  engine::Connection connection{database};
  int64_t generation = 0;
};

CatalogView::CatalogView(const spec::Mesh& mesh, catalog::CatalogStore& catalog,
                         const governance::Principal& principal)
    : state_(std::make_unique<State>()) {
  state_->generation = catalog.Generation();
  state_->connection.Execute(kCompletions);
  // One statement at a time, each prepared alone: a port whose published names or types
  // do not make a table (or try to make more) is left out, and nobody else's view fails.
  auto run = [&](const std::string& statement) {
    try {
      state_->connection.Prepare(statement).Execute();
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  std::set<std::string> schemas;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      if (!governance::CanDiscover(principal, product)) continue;
      const auto live = catalog.Live(domain.name, product.name);
      if (!live) continue;  // never published: nothing to read yet
      if (schemas.insert(domain.name).second) run("CREATE SCHEMA " + SqlIdentifier(domain.name));
      for (const auto& port : live->ports) {
        const std::string table = SqlIdentifier(domain.name) + "." + SqlIdentifier(port.name);
        std::vector<std::string> columns;
        for (const auto& column : port.columns) {
          columns.push_back(SqlIdentifier(column.name) + " " + column.type +
                            (column.required ? " NOT NULL" : ""));
        }
        if (columns.empty() || !run("CREATE TABLE " + table + " (" + Join(columns, ", ") + ")")) {
          continue;
        }
        if (!port.description.empty()) {
          run("COMMENT ON TABLE " + table + " IS " + SqlString(port.description));
        }
        for (const auto& column : port.columns) {
          if (column.description.empty()) continue;
          run("COMMENT ON COLUMN " + table + "." + SqlIdentifier(column.name) + " IS " +
              SqlString(column.description));
        }
      }
    }
  }
  state_->connection.Execute("SET lock_configuration = true");
}

CatalogView::~CatalogView() = default;

int64_t CatalogView::generation() const {
  return state_->generation;
}

bool CatalogView::AsksAboutCatalog(const spec::Mesh& mesh, const governance::Principal& principal,
                                   const std::string& sql) {
  // A linear scan (a regular expression here recursed as deep as the statement was long).
  const std::string lower = ToLower(sql);
  const size_t n = lower.size();
  auto word_char = [&](size_t at) {
    return at < n && (std::isalnum(static_cast<unsigned char>(lower[at])) != 0 || lower[at] == '_');
  };
  auto next_non_blank = [&](size_t at) {
    while (at < n && std::isspace(static_cast<unsigned char>(lower[at])) != 0) ++at;
    return at;
  };
  bool mentions = false;
  const size_t schema = lower.find("information_schema");
  for (size_t at = schema; at != std::string::npos && !mentions;
       at = lower.find("information_schema", at + 1)) {
    const size_t after = next_non_blank(at + 18);
    mentions = (at == 0 || !word_char(at - 1)) && after < n && lower[after] == '.';
  }
  for (size_t at = lower.find("pg_"); at != std::string::npos && !mentions;
       at = lower.find("pg_", at + 3)) {
    if (at > 0 && (word_char(at - 1) || lower[at - 1] == '.' || lower[at - 1] == '"')) continue;
    size_t end = at + 3;
    while (end < n &&
           (std::islower(static_cast<unsigned char>(lower[end])) != 0 || lower[end] == '_')) {
      ++end;
    }
    if (end == at + 3 || word_char(end)) continue;  // "pg_" alone, or part of a longer name
    const size_t after = next_non_blank(end);
    if (lower.compare(at, end - at, "pg_catalog") == 0) {
      mentions = after < n && lower[after] == '.';
    } else {
      mentions = after >= n || lower[after] != '(';  // a relation, not a function
    }
  }
  if (!mentions) return false;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      if (!governance::CanDiscover(principal, product)) continue;
      for (const auto& port : product.outputs) {
        if (lower.find(ToLower(domain.name + "." + port.name)) != std::string::npos) return false;
      }
    }
  }
  return true;
}

std::string CatalogView::Rewrite(const std::string& sql) {
  struct Rule {
    std::regex pattern;
    const char* replacement;
  };
  static const std::vector<Rule> rules = [] {
    const auto icase = std::regex::ECMAScript | std::regex::icase;
    std::vector<Rule> list;
    list.push_back(
        {std::regex(R"(OPERATOR\s*\(\s*pg_catalog\s*\.\s*([^\s)]+)\s*\))", icase), "$1"});
    list.push_back({std::regex(R"(COLLATE\s+pg_catalog\s*\.\s*"?default"?)", icase), ""});
    list.push_back({std::regex(R"(::\s*pg_catalog\s*\.)", icase), "::"});
    list.push_back(
        {std::regex(
             R"(::\s*(regclass|regtype|regnamespace|regproc|regprocedure|regrole|regoper)\b)",
             icase),
         "::VARCHAR"});
    list.push_back({std::regex(R"(::\s*int2\s*\[\])", icase), "::SMALLINT[]"});
    list.push_back({std::regex(R"(\bpg_catalog\s*\.\s*)", icase), ""});
    list.push_back({std::regex(R"(\binformation_schema\s*\.\s*(schemata|tables|columns)\b)", icase),
                    "pg_canopy.is_$1"});
    // PostgreSQL names a function's column after its alias; DuckDB wants it said.
    list.push_back(
        {std::regex(
             R"((generate_series\((?:[^()]|\([^()]*\))*\))\s+(?!AS\b)([A-Za-z_]\w*)\b(?!\s*[(.]))",
             icase),
         "$1 AS $2($2)"});
    return list;
  }();
  std::string out = sql;
  for (const Rule& rule : rules) out = std::regex_replace(out, rule.pattern, rule.replacement);
  return out;
}

int64_t CatalogView::Run(const std::string& sql, governance::ResultSink& sink, int timeout_ms,
                         const std::shared_ptr<std::atomic<bool>>& cancel) {
  if (sql.size() > kMaxQuestionBytes) {
    throw Error(ErrorCode::kInvalidInput, "a question about the catalog may be " +
                                              std::to_string(kMaxQuestionBytes / 1024) +
                                              " KiB long at most");
  }
  const std::string word = FirstWord(sql);
  if (word != "select" && word != "with" && word != "values" && word != "table") {
    throw Error(ErrorCode::kInvalidInput,
                "only queries are answered about the catalog, not '" + word + "'");
  }
  engine::Connection& db = state_->connection;
  const std::string rewritten = Rewrite(sql);
  engine::Prepared prepared = db.Prepare(rewritten);
  // The first word can hide behind what DuckDB reads as a comment (they nest); what it
  // parsed cannot.
  if (!prepared.IsQuery()) {
    throw Error(ErrorCode::kInvalidInput, "only queries are answered about the catalog");
  }
  std::vector<governance::ResultColumn> columns;
  std::vector<std::string> projection;
  bool plain = true;
  for (int c = 0; c < prepared.ColumnCount(); ++c) {
    columns.push_back({prepared.ColumnName(c), prepared.TypeName(c), false});
    const std::string ref = "#" + std::to_string(c + 1);
    const bool readable = prepared.Type(c) != engine::ColumnType::kOther;
    plain = plain && readable;
    projection.push_back(readable ? ref : "CAST(" + ref + " AS VARCHAR)");
    if (!readable) columns.back().type = "VARCHAR";
  }
  // Within the mesh's time limit, and stopped by a cancel, as a governed query.
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  bool stopped = false;
  std::thread watchdog([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::unique_lock<std::mutex> lock(mutex);
    while (!finished.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; })) {
      if (std::chrono::steady_clock::now() >= deadline || (cancel && cancel->load())) {
        stopped = true;
        db.Interrupt();
        return;
      }
    }
  });
  auto stop_watching = [&] {
    {
      const std::lock_guard<std::mutex> lock(mutex);
      done = true;
    }
    finished.notify_all();
    watchdog.join();
  };
  int64_t rows = 0;
  try {
    engine::Result result =
        plain ? prepared.Execute()
              : db.Query("SELECT " + Join(projection, ", ") + " FROM (" + rewritten + ")");
    sink.Begin(columns);
    std::vector<governance::Value> values(columns.size());
    while (result.NextChunk()) {
      for (int64_t row = 0; row < result.ChunkRows(); ++row) {
        if (rows == kMaxRows) {
          throw Error(ErrorCode::kFailed, "a question about the catalog may answer " +
                                              std::to_string(kMaxRows) + " rows at most");
        }
        for (int c = 0; c < result.ColumnCount(); ++c) {
          values[static_cast<size_t>(c)] = governance::ReadValue(result, c, row);
        }
        sink.Row(values);
        ++rows;
      }
    }
  } catch (const Error&) {
    stop_watching();
    if (stopped) {
      throw Error(ErrorCode::kFailed, cancel && cancel->load()
                                          ? "the query was cancelled"
                                          : "the query ran longer than the limit");
    }
    throw;
  }
  stop_watching();
  return rows;
}

}  // namespace canopy::pgwire
