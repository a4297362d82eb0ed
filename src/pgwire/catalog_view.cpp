#include "pgwire/catalog_view.h"

#include <algorithm>
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
#include "pgwire/types.h"

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
CREATE TABLE pg_canopy.pg_range (rngtypid INTEGER, rngsubtype INTEGER, rngmultitypid INTEGER,
  rngcollation INTEGER, rngsubopc INTEGER, rngcanonical INTEGER, rngsubdiff INTEGER);
CREATE TABLE pg_canopy.pg_enum (enumtypid INTEGER, enumsortorder FLOAT,
  enumlabel VARCHAR);
CREATE TABLE pg_canopy.pg_type (oid INTEGER, typname VARCHAR, typnamespace INTEGER,
  typowner INTEGER, typlen SMALLINT, typbyval BOOLEAN, typtype VARCHAR, typcategory VARCHAR,
  typispreferred BOOLEAN, typisdefined BOOLEAN, typdelim VARCHAR, typrelid INTEGER,
  typelem INTEGER, typarray INTEGER, typinput VARCHAR, typoutput INTEGER, typreceive INTEGER,
  typsend INTEGER, typalign VARCHAR, typstorage VARCHAR, typnotnull BOOLEAN,
  typbasetype INTEGER, typtypmod INTEGER, typndims INTEGER, typcollation INTEGER,
  typdefault VARCHAR);
INSERT INTO pg_canopy.pg_type
  SELECT oid, name, 11, 10, len, len > 0 AND len <= 8, 'b', category, false, true, ',', 0, 0, 0,
         name || 'in', 0, 0, 0,
         CASE WHEN len = 2 THEN 's' WHEN len = 4 THEN 'i' WHEN len = 8 THEN 'd' ELSE 'i' END,
         CASE WHEN len > 0 THEN 'p' ELSE 'x' END, false, 0, -1, 0, 0, NULL
  FROM (VALUES (16, 'bool', 1, 'B'), (17, 'bytea', -1, 'U'), (19, 'name', 64, 'S'),
               (20, 'int8', 8, 'N'), (21, 'int2', 2, 'N'), (23, 'int4', 4, 'N'),
               (25, 'text', -1, 'S'), (26, 'oid', 4, 'N'), (114, 'json', -1, 'U'),
               (700, 'float4', 4, 'N'), (701, 'float8', 8, 'N'), (705, 'unknown', -2, 'X'),
               (1042, 'bpchar', -1, 'S'), (1043, 'varchar', -1, 'S'), (1082, 'date', 4, 'D'),
               (1083, 'time', 8, 'D'), (1114, 'timestamp', 8, 'D'),
               (1184, 'timestamptz', 8, 'D'), (1186, 'interval', 16, 'T'),
               (1700, 'numeric', -1, 'N'), (2950, 'uuid', 16, 'U'), (3802, 'jsonb', -1, 'U'))
       AS t(oid, name, len, category);
-- Each column's type as the wire sends it (PostgreSQL's OIDs and typmods, where DuckDB's
-- pg_attribute has its own type ids), filled once the tables are made.
CREATE TABLE pg_canopy.attribute_types (relid BIGINT, num BIGINT, typid INTEGER,
  typmod INTEGER);
CREATE VIEW pg_canopy.pg_attribute AS
  SELECT a.* REPLACE (coalesce(t.typid, 25) AS atttypid, coalesce(t.typmod, -1) AS atttypmod)
  FROM pg_catalog.pg_attribute a
  LEFT JOIN pg_canopy.attribute_types t ON a.attrelid = t.relid AND a.attnum = t.num;
CREATE MACRO pg_canopy.format_type(type_oid, typemod) AS
  CASE type_oid
    WHEN 16 THEN 'boolean' WHEN 17 THEN 'bytea' WHEN 20 THEN 'bigint'
    WHEN 21 THEN 'smallint' WHEN 23 THEN 'integer' WHEN 25 THEN 'text' WHEN 114 THEN 'json'
    WHEN 700 THEN 'real' WHEN 701 THEN 'double precision'
    WHEN 1043 THEN 'character varying' WHEN 1082 THEN 'date'
    WHEN 1083 THEN 'time without time zone' WHEN 1114 THEN 'timestamp without time zone'
    WHEN 1184 THEN 'timestamp with time zone' WHEN 1186 THEN 'interval'
    WHEN 1700 THEN 'numeric' || CASE WHEN typemod >= 4 THEN
      '(' || ((typemod - 4) >> 16) || ',' || ((typemod - 4) & 65535) || ')' ELSE '' END
    WHEN 2950 THEN 'uuid' WHEN 3802 THEN 'jsonb'
    ELSE (SELECT first(typname) FROM pg_canopy.pg_type t WHERE t.oid = type_oid)
  END;
CREATE MACRO pg_canopy.pg_get_function_result(function_oid) AS NULL;
CREATE MACRO pg_canopy.pg_get_function_arguments(function_oid) AS NULL;
-- PostgreSQL's set-returning array expansion, as JDBC's key and index queries use it
-- (there are no keys or indexes: never called on a row).
CREATE MACRO pg_canopy._pg_expandarray(list) AS
  {'x': NULL::INTEGER, 'n': NULL::INTEGER};
CREATE VIEW pg_canopy.pg_settings AS
  SELECT * FROM pg_catalog.pg_settings
  UNION ALL
  SELECT name, setting, name, vartype
  FROM (VALUES ('max_index_keys', '32', 'integer'), ('max_identifier_length', '63', 'integer'),
               ('server_version_num', '150000', 'integer'),
               ('standard_conforming_strings', 'on', 'bool'))
       AS t(name, setting, vartype);
CREATE VIEW pg_canopy.pg_namespace AS
  SELECT * FROM pg_catalog.pg_namespace WHERE nspname NOT IN ('main', 'pg_canopy')
  UNION ALL
  SELECT 11, 'pg_catalog', 10, NULL;  -- where PostgreSQL's types live
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
  // PostgreSQL's type of every column made, as RowDescription says it.
  std::vector<std::string> types;
  for (engine::Result r = state_->connection.Query(
           "SELECT table_oid, column_index, data_type "
           "FROM duckdb_columns() WHERE schema_name NOT IN ('main', 'pg_canopy')");
       r.NextChunk();) {
    for (int64_t row = 0; row < r.ChunkRows(); ++row) {
      const std::string name = r.Text(2, row);
      const PgType type = PgTypeOf(name);  // numeric(p,s)'s modifier as RowDescription's
      types.push_back("(" + std::to_string(r.Int(0, row)) + ", " + std::to_string(r.Int(1, row)) +
                      ", " + std::to_string(type.oid) + ", " + std::to_string(type.modifier) + ")");
    }
  }
  if (!types.empty()) {
    state_->connection.Execute("INSERT INTO pg_canopy.attribute_types VALUES " + Join(types, ", "));
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

namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// `sql` with each run of whitespace outside string literals, quoted names and comments
// made one character: '\n' when the run holds a line break (a line comment may end there),
// else ' '. What the rewriting rules below match is then never longer than a few
// characters, however the question is spaced.
std::string CollapseWhitespace(const std::string& sql) {
  const size_t n = sql.size();
  std::string out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    const char c = sql[i];
    size_t end = i + 1;  // the end of what is copied as it is
    if (c == '\'' || c == '"') {
      // E'…' takes backslash escapes; in the others a doubled quote is one.
      const bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i < 2 || !IsWordChar(sql[i - 2]));
      while (end < n) {
        if (escapes && sql[end] == '\\') {
          end += 2;
        } else if (sql[end] == c) {
          if (end + 1 < n && sql[end + 1] == c) {
            end += 2;
          } else {
            ++end;
            break;
          }
        } else {
          ++end;
        }
      }
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      end = sql.find('\n', i);
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      end = sql.find("*/", i + 2);
      if (end != std::string::npos) end += 2;
    } else if (c == '$' && i + 1 < n && sql[i + 1] == '$') {
      end = sql.find("$$", i + 2);
      if (end != std::string::npos) end += 2;
    } else if (IsSpace(c)) {
      bool line_break = false;
      end = i;
      for (; end < n && IsSpace(sql[end]); ++end) {
        if (sql[end] == '\n') line_break = true;
      }
      out += line_break ? '\n' : ' ';
      i = end;
      continue;
    }
    end = std::min(end, n);
    out.append(sql, i, end - i);
    i = end;
  }
  return out;
}

// PostgreSQL names a function's one column after the function's alias; DuckDB wants it
// said: `generate_series(…) s` becomes `generate_series(…) AS s(s)` — unless the alias is
// AS, a keyword that may follow a FROM item, or the start of a call or a qualified name.
// Scanned by hand: a regular expression over the arguments recursed once per character.
std::string AliasGenerateSeries(const std::string& sql) {
  static const std::set<std::string> kNotAliases = {
      "as",      "where",       "join",       "left",   "right",   "inner", "full",    "cross",
      "natural", "on",          "using",      "group",  "order",   "limit", "offset",  "union",
      "except",  "intersect",   "having",     "window", "qualify", "with",  "lateral", "fetch",
      "for",     "tablesample", "positional", "anti",   "semi",    "asof"};
  static const std::string kCall = "generate_series(";
  const std::string lower = ToLower(sql);
  const size_t n = sql.size();
  std::string out;
  size_t copied = 0;
  size_t at = 0;
  while ((at = lower.find(kCall, at)) != std::string::npos) {
    const size_t call = at;
    at += kCall.size();
    if (call > 0 && IsWordChar(sql[call - 1])) continue;
    size_t close = at;
    for (int depth = 1; close < n && depth > 0; ++close) {
      if (sql[close] == '(') ++depth;
      if (sql[close] == ')') --depth;
    }
    at = close;
    size_t name = close;
    while (name < n && IsSpace(sql[name])) ++name;
    if (name == close || name == n) continue;
    if (std::isalpha(static_cast<unsigned char>(sql[name])) == 0 && sql[name] != '_') continue;
    size_t name_end = name + 1;
    while (name_end < n && IsWordChar(sql[name_end])) ++name_end;
    size_t next = name_end;
    while (next < n && IsSpace(sql[next])) ++next;
    if (next < n && (sql[next] == '(' || sql[next] == '.')) continue;
    const std::string alias = sql.substr(name, name_end - name);
    if (kNotAliases.count(ToLower(alias)) != 0) continue;
    out.append(sql, copied, close - copied);
    out += " AS " + alias + "(" + alias + ")";
    copied = name_end;
    at = name_end;
  }
  out.append(sql, copied, std::string::npos);
  return out;
}

}  // namespace

std::string CatalogView::Rewrite(const std::string& sql) {
  struct Rule {
    std::regex pattern;
    const char* replacement;
  };
  // std::regex matches by recursion, a level per character a quantifier takes: every
  // quantifier here meets at most one whitespace character (after CollapseWhitespace) or
  // is bounded, so a question of any allowed size leaves the stack alone.
  static const std::vector<Rule> rules = [] {
    const auto icase = std::regex::ECMAScript | std::regex::icase;
    std::vector<Rule> list;
    list.push_back(
        {std::regex(R"(OPERATOR\s*\(\s*pg_catalog\s*\.\s*([^\s)]{1,16})\s*\))", icase), "$1"});
    list.push_back({std::regex(R"(COLLATE\s+pg_catalog\s*\.\s*"?default"?)", icase), ""});
    list.push_back({std::regex(R"(::\s*pg_catalog\s*\.)", icase), "::"});
    list.push_back(
        {std::regex(
             R"(::\s*(regclass|regtype|regnamespace|regproc|regprocedure|regrole|regoper)\b)",
             icase),
         "::VARCHAR"});
    list.push_back({std::regex(R"(::\s*int2\s*\[\])", icase), "::SMALLINT[]"});
    list.push_back({std::regex(R"(\bpg_catalog\s*\.\s*)", icase), ""});
    list.push_back(
        {std::regex(R"(\binformation_schema\s*\.\s*_pg_expandarray\b)", icase), "_pg_expandarray"});
    list.push_back({std::regex(R"(\binformation_schema\s*\.\s*(schemata|tables|columns)\b)", icase),
                    "pg_canopy.is_$1"});
    return list;
  }();
  std::string out = CollapseWhitespace(sql);
  for (const Rule& rule : rules) out = std::regex_replace(out, rule.pattern, rule.replacement);
  return AliasGenerateSeries(out);
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
