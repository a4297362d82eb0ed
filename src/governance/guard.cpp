#include "governance/guard.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/text.h"

namespace canopy::governance {
namespace {

using nlohmann::json;

// Table functions a reader may call: they generate values and read nothing.
const std::set<std::string> kAllowedTableFunctions = {"range", "generate_series", "unnest"};

// Scalar and aggregate functions refused by name (prefixes end in '_' or '*').
bool RefusedFunction(const std::string& name) {
  static const std::vector<std::string> prefixes = {"read_",   "duckdb_",   "pragma_",  "parquet_",
                                                    "glob",    "sniff_",    "iceberg_", "delta_",
                                                    "sqlite_", "postgres_", "mysql_",   "icu_"};
  static const std::set<std::string> names = {"query",
                                              "query_table",
                                              "getenv",
                                              "current_setting",
                                              "getvariable",
                                              "error",
                                              "which_secret",
                                              "load_extension",
                                              "install_extension",
                                              "sql_auto_complete",
                                              "json_execute_serialized_sql",
                                              "json_deserialize_sql",
                                              "checkpoint",
                                              "force_checkpoint",
                                              "enable_profiling",
                                              "import_database",
                                              "export_database",
                                              "current_schemas",
                                              "current_database",
                                              "current_catalog",
                                              "current_schema",
                                              "version",
                                              "platform",
                                              "pg_get_viewdef",
                                              "has_table_privilege",
                                              "make_timestamp_ns"};
  if (names.count(name) != 0) return true;
  for (const auto& prefix : prefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// node[key] when it is a string, else "" (keys like "type" hold objects in some nodes).
std::string Str(const json& node, const char* key) {
  auto it = node.find(key);
  return it != node.end() && it->is_string() ? it->get<std::string>() : std::string();
}

class Walker {
 public:
  explicit Walker(const std::set<std::string>& known_ports) : known_(known_ports) {}

  void Walk(const json& node, std::vector<std::set<std::string>>& scopes) {
    if (!refusal_.empty()) return;
    if (node.is_array()) {
      for (const auto& child : node) Walk(child, scopes);
      return;
    }
    if (!node.is_object()) return;

    bool pushed = false;
    if (auto cte = node.find("cte_map"); cte != node.end() && cte->is_object()) {
      std::set<std::string> names;
      for (const auto& entry :
           cte->contains("map") && (*cte)["map"].is_array() ? (*cte)["map"] : json::array()) {
        names.insert(ToLower(Str(entry, "key")));
      }
      scopes.push_back(names);
      pushed = true;
    }

    const std::string type = Str(node, "type");
    const std::string klass = Str(node, "class");
    if (type == "BASE_TABLE") {
      Table(node, scopes);
    } else if (type == "TABLE_FUNCTION") {
      static const json kEmpty = json::object();
      auto found = node.find("function");
      const json& function = found != node.end() && found->is_object() ? *found : kEmpty;
      const std::string name = ToLower(Str(function, "function_name"));
      if (kAllowedTableFunctions.count(name) == 0) {
        Refuse("table function " + name + "() is not allowed: queries read output ports only");
      }
    } else if (type == "SHOW_REF") {
      Refuse("DESCRIBE/SUMMARIZE/SHOW are not allowed in a governed query");
    } else if (klass == "FUNCTION") {
      const std::string name = ToLower(Str(node, "function_name"));
      // Refused by name whatever schema or catalog qualifies it.
      if (RefusedFunction(name)) {
        Refuse("function " + name + "() is not allowed in a governed query");
      }
    } else if (klass == "PARAMETER") {
      Refuse("query parameters are not supported");
    }
    if (auto at = node.find("at_clause"); at != node.end() && !at->is_null()) {
      Refuse("AT (time travel) clauses are not allowed");
    }

    for (const auto& [key, child] : node.items()) {
      if (child.is_structured()) Walk(child, scopes);
    }
    if (pushed) scopes.pop_back();
  }

  const std::string& refusal() const { return refusal_; }
  const std::set<std::string>& ports() const { return ports_; }

 private:
  void Refuse(const std::string& reason) {
    if (refusal_.empty()) refusal_ = reason;
  }

  void Table(const json& node, const std::vector<std::set<std::string>>& scopes) {
    const std::string catalog = ToLower(Str(node, "catalog_name"));
    const std::string schema = ToLower(Str(node, "schema_name"));
    const std::string table = ToLower(Str(node, "table_name"));
    if (!catalog.empty()) {
      Refuse("'" + catalog + "." + schema + "." + table +
             "': catalogs cannot be named; write domain.port");
      return;
    }
    if (schema.empty()) {
      for (const auto& scope : scopes) {
        if (scope.count(table) != 0) return;  // a CTE in scope
      }
      Refuse("'" + table + "' is not an output port; name ports as domain.port " +
             "(canopy products lists them)");
      return;
    }
    const std::string name = schema + "." + table;
    if (known_.count(name) == 0) {
      std::vector<std::string> names(known_.begin(), known_.end());
      std::string hint = DidYouMean(name, names);
      Refuse("'" + name + "' is not an output port" + (hint.empty() ? "" : "; " + hint));
      return;
    }
    ports_.insert(name);
  }

  const std::set<std::string>& known_;
  std::set<std::string> ports_;
  std::string refusal_;
};

}  // namespace

GuardVerdict Guard(engine::Connection& parser, const std::string& sql,
                   const std::set<std::string>& known_ports) {
  GuardVerdict verdict;
  if (Trim(sql).empty()) {
    verdict.reason = "the query is empty";
    return verdict;
  }
  std::string serialized;
  try {
    serialized =
        parser.QueryValue("SELECT json_serialize_sql(" + SqlString(sql) + ")").value_or("");
  } catch (const Error& e) {
    verdict.reason = std::string("cannot parse the query: ") + e.what();
    return verdict;
  }
  json tree = json::parse(serialized, nullptr, false);
  if (tree.is_discarded() || !tree.is_object()) {
    verdict.reason = "cannot parse the query";
    return verdict;
  }
  if (tree.value("error", false)) {
    const std::string message = Str(tree, "error_message");
    verdict.reason = message.find("Only SELECT statements") != std::string::npos
                         ? "only a single SELECT query is allowed (no COPY, ATTACH, PRAGMA, SET, "
                           "INSTALL, LOAD, CREATE, INSERT, DESCRIBE, SUMMARIZE, PIVOT …)"
                         : "cannot parse the query: " + message;
    return verdict;
  }
  const json& statements = tree["statements"];
  if (!statements.is_array() || statements.size() != 1) {
    verdict.reason = "exactly one statement is allowed, found " +
                     std::to_string(statements.is_array() ? statements.size() : 0);
    return verdict;
  }
  Walker walker(known_ports);
  std::vector<std::set<std::string>> scopes;
  walker.Walk(statements[0], scopes);
  if (!walker.refusal().empty()) {
    verdict.reason = walker.refusal();
    return verdict;
  }
  // Run what was checked: DuckDB's own rendering of the parse tree, not the text.
  json single = tree;
  try {
    verdict.normalized_sql =
        parser.QueryValue("SELECT json_deserialize_sql(" + SqlString(single.dump()) + ")")
            .value_or("");
  } catch (const Error& e) {
    verdict.reason = std::string("cannot re-render the query: ") + e.what();
    return verdict;
  }
  if (verdict.normalized_sql.empty()) {
    verdict.reason = "cannot re-render the query";
    return verdict;
  }
  verdict.allowed = true;
  verdict.ports.assign(walker.ports().begin(), walker.ports().end());
  return verdict;
}

}  // namespace canopy::governance
