#include "pgwire/catalog_view.h"

#include <cctype>
#include <regex>
#include <set>
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
  engine::Database database{engine::WithoutFileAccess()};
  engine::Connection connection{database};
  int64_t generation = 0;
};

CatalogView::CatalogView(const spec::Mesh& mesh, catalog::CatalogStore& catalog,
                         const governance::Principal& principal)
    : state_(std::make_unique<State>()) {
  state_->generation = catalog.Generation();
  std::string ddl = kCompletions;
  std::set<std::string> schemas;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      if (!governance::CanDiscover(principal, product)) continue;
      const auto live = catalog.Live(domain.name, product.name);
      if (!live) continue;  // never published: nothing to read yet
      if (schemas.insert(domain.name).second)
        ddl += "CREATE SCHEMA " + SqlIdentifier(domain.name) + ";\n";
      for (const auto& port : live->ports) {
        const std::string table = SqlIdentifier(domain.name) + "." + SqlIdentifier(port.name);
        std::vector<std::string> columns;
        for (const auto& column : port.columns) {
          columns.push_back(SqlIdentifier(column.name) + " " + column.type +
                            (column.required ? " NOT NULL" : ""));
        }
        if (columns.empty()) continue;
        ddl += "CREATE TABLE " + table + " (" + Join(columns, ", ") + ");\n";
        if (!port.description.empty()) {
          ddl += "COMMENT ON TABLE " + table + " IS " + SqlString(port.description) + ";\n";
        }
        for (const auto& column : port.columns) {
          if (column.description.empty()) continue;
          ddl += "COMMENT ON COLUMN " + table + "." + SqlIdentifier(column.name) + " IS " +
                 SqlString(column.description) + ";\n";
        }
      }
    }
  }
  state_->connection.Execute(ddl);
  state_->connection.Execute("SET lock_configuration = true");
}

CatalogView::~CatalogView() = default;

int64_t CatalogView::generation() const {
  return state_->generation;
}

bool CatalogView::AsksAboutCatalog(const spec::Mesh& mesh, const governance::Principal& principal,
                                   const std::string& sql) {
  const std::string lower = ToLower(sql);
  static const std::regex catalog_names(
      R"((^|[^a-z0-9_])(pg_catalog|information_schema)\s*\.|(^|[^a-z0-9_."])pg_[a-z_]+\s*($|[^a-z0-9_(]))");
  if (!std::regex_search(lower, catalog_names)) return false;
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

int64_t CatalogView::Run(const std::string& sql, governance::ResultSink& sink) {
  const std::string word = FirstWord(sql);
  if (word != "select" && word != "with" && word != "values" && word != "table") {
    throw Error(ErrorCode::kInvalidInput,
                "only queries are answered about the catalog, not '" + word + "'");
  }
  engine::Connection& db = state_->connection;
  engine::Prepared prepared = db.Prepare(Rewrite(sql));
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
  engine::Result result =
      plain ? prepared.Execute()
            : db.Query("SELECT " + Join(projection, ", ") + " FROM (" + Rewrite(sql) + ")");
  sink.Begin(columns);
  int64_t rows = 0;
  std::vector<governance::Value> values(columns.size());
  while (result.NextChunk()) {
    for (int64_t row = 0; row < result.ChunkRows(); ++row) {
      for (int c = 0; c < result.ColumnCount(); ++c) {
        values[static_cast<size_t>(c)] = governance::ReadValue(result, c, row);
      }
      sink.Row(values);
      ++rows;
    }
  }
  return rows;
}

}  // namespace canopy::pgwire
