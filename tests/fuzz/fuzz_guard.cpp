// Fuzz target: the SQL guard (governance::Guard and GuardModel) on the bytes as SQL.
//
// A crash of the guard is a finding, and so is an acceptance of a statement that reads
// outside its grants. For every accepted statement the oracle checks, independently of
// the guard's own walk, DuckDB's parse (json_serialize_sql) of the SQL that would run
// (verdict.normalized_sql):
//  - it is one statement;
//  - every table it names is a known port (and among verdict.ports) or, unqualified, a
//    CTE named somewhere in it (for GuardModel: one of the product's relations);
//  - it calls no table function but range/generate_series/unnest, and none of the
//    functions that read files, run SQL or reveal the engine (read_*, glob, query,
//    getenv, current_setting, duckdb_*, pragma_* …) — judged on the parse tree, so a
//    name inside a string literal is not a call;
//  - the guard, asked again about normalized_sql, accepts it with the same ports.
// Every port in verdict.ports must be one of the known ports.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"
#include "fuzz/fuzz_support.h"
#include "governance/governed.h"
#include "governance/guard.h"

using namespace canopy;
using nlohmann::json;

namespace {

// The ports of tests/governance/mesh, and a product's relations for GuardModel.
const std::set<std::string> kPorts = {"crm.customers", "finance.exposure", "hr.salaries",
                                      "sales.orders"};
const std::vector<std::string> kRelations = {"raw", "orders", "customers"};

engine::Connection& Parser() {
  static auto* database = new engine::Database();
  static auto* connection = new engine::Connection(*database);
  return *connection;
}

std::string Str(const json& node, const char* key) {
  auto it = node.find(key);
  return it != node.end() && it->is_string() ? ToLower(it->get<std::string>()) : std::string();
}

bool Forbidden(const std::string& name) {
  static const std::set<std::string> names = {"query",
                                              "query_table",
                                              "getenv",
                                              "current_setting",
                                              "getvariable",
                                              "load_extension",
                                              "install_extension",
                                              "json_deserialize_sql",
                                              "json_execute_serialized_sql",
                                              "glob",
                                              "current_query",
                                              "version",
                                              "platform"};
  static const std::vector<std::string> prefixes = {"read_",     "duckdb_",  "pragma_",
                                                    "parquet_",  "sniff_",   "sqlite_",
                                                    "postgres_", "iceberg_", "delta_"};
  if (names.count(name) != 0) return true;
  for (const auto& prefix : prefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

struct Seen {
  std::set<std::string> ctes;
  std::vector<const json*> tables;
  std::vector<std::string> functions;
  std::vector<std::string> table_functions;
};

void Collect(const json& node, Seen& seen) {
  if (node.is_array()) {
    for (const auto& child : node) Collect(child, seen);
    return;
  }
  if (!node.is_object()) return;
  if (auto cte = node.find("cte_map"); cte != node.end() && cte->is_object()) {
    if (auto map = cte->find("map"); map != cte->end() && map->is_array()) {
      for (const auto& entry : *map) seen.ctes.insert(Str(entry, "key"));
    }
  }
  const std::string type = Str(node, "type");
  if (type == "recursive_cte_node") seen.ctes.insert(Str(node, "cte_name"));
  if (type == "base_table") seen.tables.push_back(&node);
  if (type == "table_function") {
    auto function = node.find("function");
    if (function != node.end() && function->is_object()) {
      seen.table_functions.push_back(Str(*function, "function_name"));
    }
  }
  if (Str(node, "class") == "function") seen.functions.push_back(Str(node, "function_name"));
  for (const auto& [key, child] : node.items()) {
    if (child.is_structured()) Collect(child, seen);
  }
}

// The independent check of what an accepted statement would run.
void CheckAccepted(const std::string& sql, const governance::GuardVerdict& verdict, bool model) {
  const std::string what = std::string(model ? "GuardModel" : "Guard") + " accepted «" + sql +
                           "» as «" + verdict.normalized_sql + "»: ";
  for (const auto& port : verdict.ports) {
    fuzz::Check(!model && kPorts.count(port) != 0, what + "it reads " + port);
  }
  std::string serialized;
  try {
    serialized =
        Parser()
            .QueryValue("SELECT json_serialize_sql(" + SqlString(verdict.normalized_sql) + ")")
            .value_or("");
  } catch (const Error& e) {
    fuzz::Finding(what + "DuckDB cannot parse what would run: " + e.what());
  }
  const json tree = json::parse(serialized, nullptr, false);
  fuzz::Check(tree.is_object() && !tree.value("error", false),
              what + "DuckDB cannot parse what would run: " + serialized);
  const auto statements = tree.find("statements");
  fuzz::Check(statements != tree.end() && statements->is_array() && statements->size() == 1,
              what + "not one statement");
  Seen seen;
  Collect(*statements, seen);
  const std::string cap = ToLower(governance::Functions().cap);
  for (const auto& name : seen.functions) {
    fuzz::Check(name == cap || !Forbidden(name), what + "it calls " + name + "()");
  }
  for (const auto& name : seen.table_functions) {
    fuzz::Check(name == "range" || name == "generate_series" || name == "unnest",
                what + "it calls the table function " + name + "()");
  }
  const std::set<std::string> ports(verdict.ports.begin(), verdict.ports.end());
  for (const json* table : seen.tables) {
    const std::string catalog = Str(*table, "catalog_name");
    const std::string schema = Str(*table, "schema_name");
    const std::string name = Str(*table, "table_name");
    fuzz::Check(catalog.empty(), what + "it names the catalog " + catalog);
    if (schema.empty()) {
      const bool relation =
          model && std::find(kRelations.begin(), kRelations.end(), name) != kRelations.end();
      fuzz::Check(relation || seen.ctes.count(name) != 0,
                  what + "it reads " + name + ", neither a CTE nor a relation");
    } else {
      fuzz::Check(!model && ports.count(schema + "." + name) != 0,
                  what + "it reads " + schema + "." + name + ", not among its ports");
    }
  }
}

void Judge(const std::string& sql, bool model) {
  auto guard = [&](const std::string& text) {
    return model ? governance::GuardModel(Parser(), text, kRelations)
                 : governance::Guard(Parser(), text, kPorts);
  };
  governance::GuardVerdict verdict;
  try {
    verdict = guard(sql);
  } catch (const Error& e) {
    fuzz::CheckError(e, "Guard");
    return;
  }
  if (!verdict.allowed) {
    fuzz::Check(!verdict.reason.empty(), "a refusal without a reason");
    return;
  }
  CheckAccepted(sql, verdict, model);
  // Asked again about what runs: the same answer. (A string-distance function's
  // argument comes back wrapped in the length cap, a canopy_ function the guard refuses
  // from a reader: that difference is by design.)
  const auto again = guard(verdict.normalized_sql);
  if (!again.allowed &&
      again.reason.find(ToLower(governance::Functions().cap)) != std::string::npos) {
    return;
  }
  fuzz::Check(again.allowed, "the guard accepted «" + sql + "» but refuses what runs, «" +
                                 verdict.normalized_sql + "»: " + again.reason);
  fuzz::Check(again.ports == verdict.ports,
              "the guard names other ports for what runs: «" + verdict.normalized_sql + "»");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;  // longer statements teach nothing more, and parse slowly
  const std::string sql(reinterpret_cast<const char*>(data), size);
  Judge(sql, false);
  Judge(sql, true);
  return 0;
}
