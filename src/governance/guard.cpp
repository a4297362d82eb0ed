#include "governance/guard.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/text.h"
#include "governance/governed.h"

namespace canopy::governance {
namespace {

using nlohmann::json;

// Table functions a reader may call: they generate values and read nothing.
const std::set<std::string> kAllowedTableFunctions = {"range", "generate_series", "unnest"};

// Scalar and aggregate functions refused by name (prefixes end in '_' or '*').
bool RefusedFunction(const std::string& name) {
  static const std::vector<std::string> prefixes = {"read_",
                                                    "duckdb_",
                                                    "pragma_",
                                                    "parquet_",
                                                    "glob",
                                                    "sniff_",
                                                    "iceberg_",
                                                    "delta_",
                                                    "sqlite_",
                                                    "postgres_",
                                                    "mysql_",
                                                    "icu_",
                                                    "pg_",
                                                    "canopy_",
                                                    "txid_",
                                                    "has_",
                                                    "json_execute",
                                                    "current_query",
                                                    "current_connection",
                                                    "current_transaction"};
  static const std::set<std::string> names = {
      "query", "query_table", "getenv", "current_setting", "getvariable", "error", "which_secret",
      "load_extension", "install_extension", "sql_auto_complete", "json_deserialize_sql",
      "json_serialize_plan", "checkpoint", "force_checkpoint", "enable_profiling", "enable_profile",
      "disable_profile", "import_database", "export_database", "current_schemas",
      "current_database", "current_catalog", "current_schema", "in_search_path", "format_type",
      "get_block_size", "col_description", "obj_description", "shobj_description", "version",
      "platform", "make_timestamp_ns",
      // a column's statistics, from the file, not
      // the rows a filter lets through
      "stats"};
  if (names.count(name) != 0) return true;
  for (const auto& prefix : prefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// Names of the engine's own catalogs and settings: never a table a reader may name,
// not even as a CTE of their own (a CTE by that name is one scoping slip away from
// the real one).
bool EngineCatalogName(const std::string& name) {
  static const std::vector<std::string> prefixes = {"pg_", "sqlite_", "duckdb_",
                                                    "information_schema"};
  for (const auto& prefix : prefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// Whether a CTE name could also be read as a file path by DuckDB's replacement
// scans ('/x/y.parquet', 'data.csv', '~/f', 's3://b/k'): only plain names are allowed.
bool PathLikeName(const std::string& name) {
  return name.find_first_of("/\\.:~*?[]{}$") != std::string::npos;
}

// node[key] when it is a string, else "" (keys like "type" hold objects in some nodes).
std::string Str(const json& node, const char* key) {
  auto it = node.find(key);
  return it != node.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The names a table reference may bind to at one point of the tree, as DuckDB binds
// them. DuckDB's CTE scoping (checked against the engine in guard cases):
//   - the body of a query with a WITH sees every CTE of that WITH;
//   - the body of CTE i sees CTEs 0..i-1 of the same WITH (never itself, never later
//     ones, RECURSIVE or MATERIALIZED or not), plus what the enclosing query sees;
//   - a RECURSIVE CTE whose body is a UNION [ALL] sees itself in the recursive (right)
//     side only; its anchor (left) side resolves the name as the enclosing scope does;
//   - subqueries see what the query around them sees.
// A name visible nowhere is not a CTE here, and is refused unless it is a port.
using Scope = std::vector<std::string>;

class Walker {
 public:
  // `model`: the SQL is a build model's, whose tables are the product's relations.
  Walker(const std::set<std::string>& known_ports, const std::vector<std::string>& hint_ports,
         bool model)
      : known_(known_ports), hints_(hint_ports), model_(model) {}

  void Walk(const json& node, const Scope& scope) {
    if (!refusal_.empty()) return;
    if (node.is_array()) {
      for (const auto& child : node) Walk(child, scope);
      return;
    }
    if (!node.is_object()) return;
    // Where this node starts in the text (unset locations are the largest uint64).
    if (auto at = node.find("query_location");
        at != node.end() && at->is_number_unsigned() && at->get<uint64_t>() < (uint64_t{1} << 40)) {
      location_ = static_cast<int64_t>(at->get<uint64_t>());
    }

    // A WITH clause: its CTEs, each in the scope of the ones before it, then the rest of
    // the node in the scope of all of them.
    Scope inner = scope;
    bool has_ctes = false;
    if (auto cte = node.find("cte_map"); cte != node.end() && cte->is_object()) {
      auto map = cte->find("map");
      if (map != cte->end() && map->is_array()) {
        for (const auto& entry : *map) {
          const std::string name = ToLower(Str(entry, "key"));
          if (!CteName(name)) return;
          if (auto value = entry.find("value"); value != entry.end()) Walk(*value, inner);
          inner.push_back(name);
          has_ctes = true;
        }
      }
    }
    const Scope& here = has_ctes ? inner : scope;

    const std::string type = Str(node, "type");
    const std::string klass = Str(node, "class");
    if (type == "BASE_TABLE") {
      Table(node, here);
    } else if (type == "TABLE_FUNCTION") {
      static const json kEmpty = json::object();
      auto found = node.find("function");
      const json& function = found != node.end() && found->is_object() ? *found : kEmpty;
      const std::string name = ToLower(Str(function, "function_name"));
      if (kAllowedTableFunctions.count(name) == 0) {
        Refuse(
            "table function " + name + "() is not allowed: " +
            (model_ ? "a model reads its declared inputs only" : "queries read output ports only"));
      }
    } else if (type == "SHOW_REF") {
      Refuse("DESCRIBE/SUMMARIZE/SHOW are not allowed in a governed query");
    } else if (klass == "FUNCTION") {
      const std::string name = ToLower(Str(node, "function_name"));
      // Refused by name whatever schema or catalog qualifies it.
      if (RefusedFunction(name)) {
        Refuse("function " + name + "() is not allowed in a governed " +
               (model_ ? "model" : "query"));
      }
    } else if (klass == "PARAMETER") {
      Refuse("query parameters are not supported");
    }
    if (auto at = node.find("at_clause"); at != node.end() && !at->is_null()) {
      Refuse("AT (time travel) clauses are not allowed");
    }

    if (type == "RECURSIVE_CTE_NODE") {
      const std::string self = ToLower(Str(node, "cte_name"));
      Scope recursive = here;
      recursive.push_back(self);
      for (const auto& [key, child] : node.items()) {
        if (key == "cte_map" || !child.is_structured()) continue;
        Walk(child, key == "right" ? recursive : here);
      }
      return;
    }
    for (const auto& [key, child] : node.items()) {
      if (key == "cte_map" || !child.is_structured()) continue;
      Walk(child, here);
    }
  }

  const std::string& refusal() const { return refusal_; }
  int64_t refusal_offset() const { return refusal_offset_; }
  const std::set<std::string>& ports() const { return ports_; }

 private:
  void Refuse(const std::string& reason) {
    if (!refusal_.empty()) return;
    refusal_ = reason;
    refusal_offset_ = location_;
  }

  bool CteName(const std::string& name) {
    if (EngineCatalogName(name)) {
      Refuse("'" + name + "' names the engine's catalog; a CTE may not be called that");
      return false;
    }
    if (PathLikeName(name)) {
      Refuse("the CTE name '" + name +
             "' looks like a file path; name CTEs with letters, digits and '_'");
      return false;
    }
    return true;
  }

  void Table(const json& node, const Scope& scope) {
    const std::string catalog = ToLower(Str(node, "catalog_name"));
    const std::string schema = ToLower(Str(node, "schema_name"));
    const std::string table = ToLower(Str(node, "table_name"));
    if (!catalog.empty()) {
      Refuse("'" + catalog + "." + schema + "." + table +
             "': catalogs cannot be named; write domain.port");
      return;
    }
    if (EngineCatalogName(schema) || EngineCatalogName(table)) {
      Refuse("'" + (schema.empty() ? table : schema + "." + table) +
             "' is the engine's catalog, not an output port");
      return;
    }
    if (schema.empty()) {
      if (std::find(scope.begin(), scope.end(), table) != scope.end()) return;  // a CTE
      Refuse(model_ ? "'" + table +
                          "' is not an input, a model before this one or a CTE in scope here; "
                          "declare what the product reads under inputs in its product.yaml"
                    : "'" + table + "' is not an output port or a CTE in scope here; name " +
                          "ports as domain.port (canopy products lists them)");
      return;
    }
    const std::string name = schema + "." + table;
    if (model_) {
      Refuse("'" + name +
             "': a model reads its inputs by their names; declare the port under inputs in "
             "its product.yaml");
      return;
    }
    if (known_.count(name) == 0) {
      std::string hint = DidYouMean(name, hints_);
      Refuse("'" + name + "' is not an output port" + (hint.empty() ? "" : "; " + hint));
      return;
    }
    ports_.insert(name);
  }

  const std::set<std::string>& known_;
  const std::vector<std::string>& hints_;
  bool model_;
  std::set<std::string> ports_;
  std::string refusal_;
  int64_t location_ = -1;
  int64_t refusal_offset_ = -1;
};

// Wraps the string arguments of the string-distance functions in the length cap (see
// kDistanceArgumentBytes): their cost is quadratic inside one uninterruptible call.
void CapDistanceArguments(json& node) {
  static const std::set<std::string> kQuadratic = {"levenshtein", "editdist3",
                                                   "damerau_levenshtein", "jaro_similarity",
                                                   "jaro_winkler_similarity"};
  if (node.is_array()) {
    for (auto& child : node) CapDistanceArguments(child);
    return;
  }
  if (!node.is_object()) return;
  for (auto& [key, child] : node.items()) {
    if (child.is_structured()) CapDistanceArguments(child);
  }
  if (Str(node, "class") != "FUNCTION" ||
      kQuadratic.count(ToLower(Str(node, "function_name"))) == 0) {
    return;
  }
  auto children = node.find("children");
  if (children == node.end() || !children->is_array()) return;
  for (size_t i = 0; i < children->size() && i < 2; ++i) {
    json cap = node;  // a function node of the same shape
    cap["function_name"] = Functions().cap;
    cap["schema"] = "";
    cap["catalog"] = "";
    cap["alias"] = "";
    cap["is_operator"] = false;
    cap["distinct"] = false;
    cap["filter"] = nullptr;
    cap["children"] = json::array({(*children)[i]});
    (*children)[i] = std::move(cap);
  }
}

GuardVerdict Check(engine::Connection& parser, const std::string& sql,
                   const std::set<std::string>& known_ports, const Scope& relations, bool model) {
  const std::vector<std::string> hints(known_ports.begin(), known_ports.end());
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
  Walker walker(known_ports, hints, model);
  walker.Walk(statements[0], relations);
  if (!walker.refusal().empty()) {
    verdict.reason = walker.refusal();
    verdict.offset = walker.refusal_offset();
    return verdict;
  }
  // Run what was checked: DuckDB's own rendering of the parse tree, not the text.
  json single = tree;
  CapDistanceArguments(single["statements"][0]);
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

}  // namespace

GuardVerdict Guard(engine::Connection& parser, const std::string& sql,
                   const std::set<std::string>& known_ports) {
  return Check(parser, sql, known_ports, Scope{}, false);
}

GuardVerdict GuardModel(engine::Connection& parser, const std::string& sql,
                        const std::vector<std::string>& relations) {
  Scope scope;
  for (const auto& name : relations) scope.push_back(ToLower(name));
  return Check(parser, sql, {}, scope, true);
}

}  // namespace canopy::governance
