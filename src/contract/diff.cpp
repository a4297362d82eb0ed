#include "contract/diff.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/text.h"

namespace canopy::contract {
namespace {

using nlohmann::json;

json RuleJson(const spec::QualityRule& rule, const std::string& column) {
  json out = {{"column", column},
              {"kind", rule.type == spec::QualityType::kSql ? "sql" : spec::ToString(rule.metric)},
              {"query", rule.query},
              {"op", rule.op ? spec::ToString(*rule.op) : ""},
              {"value", rule.value},
              {"high", rule.value_high},
              {"unit", rule.unit == spec::QualityUnit::kPercent ? "percent" : "rows"},
              {"severity", spec::ToString(rule.severity)},
              {"valid_values", rule.valid_values},
              {"pattern", rule.pattern.value_or("")},
              {"properties", rule.properties}};
  return out;
}

// The identity of a rule across versions: what it measures, not its threshold.
std::string RuleKey(const json& rule) {
  return rule["column"].get<std::string>() + "|" + rule["kind"].get<std::string>() + "|" +
         Trim(rule["query"].get<std::string>()) + "|" + rule["unit"].get<std::string>() + "|" +
         rule["properties"].dump();
}

std::string Threshold(const json& rule) {
  const std::string op = rule["op"];
  const double v = rule["value"];
  const double h = rule["high"];
  char buffer[96];
  if (op == "mustBeBetween" || op == "mustNotBeBetween") {
    std::snprintf(buffer, sizeof buffer, "%s [%g, %g]", op.c_str(), v, h);
  } else {
    std::snprintf(buffer, sizeof buffer, "%s %g", op.c_str(), v);
  }
  return buffer;
}

// Whether `next` accepts fewer measurements than `published` (same rule key).
bool Tighter(const json& published, const json& next) {
  const std::string a = published["op"];
  const std::string b = next["op"];
  const double va = published["value"];
  const double vb = next["value"];
  if (a != b) return true;  // a different comparison: treat as a new constraint
  if (a == "mustBeLessThan" || a == "mustBeLessOrEqualTo") return vb < va;
  if (a == "mustBeGreaterThan" || a == "mustBeGreaterOrEqualTo") return vb > va;
  if (a == "mustBeBetween") {
    return vb > va || next["high"].get<double>() < published["high"].get<double>();
  }
  if (a == "mustNotBeBetween") {
    return vb < va || next["high"].get<double>() > published["high"].get<double>();
  }
  return va != vb;  // mustBe / mustNotBe: any change rejects data the old one accepted
}

}  // namespace

std::string Snapshot(const spec::Contract& contract, const std::vector<ActualColumn>& actual) {
  json columns = json::array();
  json rules = json::array();
  for (const auto& property : contract.properties) {
    std::string type = property.physical_type;
    for (const auto& column : actual) {
      if (column.name == property.name) type = column.type;
    }
    columns.push_back({{"name", property.name},
                       {"type", type},
                       {"logical", spec::ToString(property.logical_type)},
                       {"required", property.required || property.primary_key},
                       {"unique", property.unique},
                       {"primary_key", property.primary_key},
                       {"classification", property.classification}});
    for (const auto& rule : property.quality) rules.push_back(RuleJson(rule, property.name));
  }
  for (const auto& rule : contract.quality) rules.push_back(RuleJson(rule, ""));
  return json({{"columns", columns}, {"rules", rules}}).dump();
}

std::vector<ContractChange> DiffSnapshots(const std::string& port, const std::string& published,
                                          const std::string& next) {
  std::vector<ContractChange> changes;
  const json old_doc = json::parse(published, nullptr, false);
  const json new_doc = json::parse(next, nullptr, false);
  if (old_doc.is_discarded() || new_doc.is_discarded()) return changes;
  auto add = [&](const std::string& column, const std::string& kind, bool breaking,
                 const std::string& detail) {
    changes.push_back({port, column, kind, breaking, detail});
  };

  std::map<std::string, json> old_columns;
  std::map<std::string, json> new_columns;
  for (const auto& c : old_doc["columns"]) old_columns[c["name"]] = c;
  for (const auto& c : new_doc["columns"]) new_columns[c["name"]] = c;
  for (const auto& [name, column] : old_columns) {
    auto it = new_columns.find(name);
    if (it == new_columns.end()) {
      add(name, "column removed", true, "consumers reading it will break");
      continue;
    }
    const json& now = it->second;
    const std::string before_type = column["type"];
    const std::string after_type = now["type"];
    if (!before_type.empty() && !after_type.empty() && before_type != after_type) {
      add(name, "type changed", true, before_type + " → " + after_type);
    }
    if (!column["required"].get<bool>() && now["required"].get<bool>()) {
      add(name, "required added", true, "NULLs are no longer allowed");
    } else if (column["required"].get<bool>() && !now["required"].get<bool>()) {
      add(name, "required removed", false, "NULLs may now appear");
    }
    if (!column["unique"].get<bool>() && now["unique"].get<bool>()) {
      add(name, "unique added", true, "duplicates are no longer allowed");
    } else if (column["unique"].get<bool>() && !now["unique"].get<bool>()) {
      add(name, "unique removed", false, "duplicates may now appear");
    }
    if (column["classification"] != now["classification"]) {
      add(name, "classification changed", false,
          column["classification"].get<std::string>() + " → " +
              now["classification"].get<std::string>());
    }
  }
  for (const auto& [name, column] : new_columns) {
    if (old_columns.count(name) == 0)
      add(name, "column added", false, column["type"].get<std::string>());
  }

  std::map<std::string, json> old_rules;
  std::map<std::string, json> new_rules;
  for (const auto& r : old_doc["rules"]) old_rules[RuleKey(r)] = r;
  for (const auto& r : new_doc["rules"]) new_rules[RuleKey(r)] = r;
  for (const auto& [key, rule] : new_rules) {
    const std::string column = rule["column"];
    const std::string what = rule["kind"].get<std::string>();
    auto it = old_rules.find(key);
    const bool enforced = rule["severity"] == "error";
    if (it == old_rules.end()) {
      add(column, "quality rule added", enforced, what + " " + Threshold(rule));
      continue;
    }
    const json& before = it->second;
    if (Tighter(before, rule)) {
      add(column, "quality rule tightened", enforced,
          what + ": " + Threshold(before) + " → " + Threshold(rule));
    } else if (Threshold(before) != Threshold(rule)) {
      add(column, "quality rule loosened", false,
          what + ": " + Threshold(before) + " → " + Threshold(rule));
    }
    std::set<std::string> now_valid;
    for (const auto& v : rule["valid_values"]) now_valid.insert(v.get<std::string>());
    for (const auto& v : before["valid_values"]) {
      if (now_valid.count(v.get<std::string>()) == 0) {
        add(column, "valid value removed", true,
            "'" + v.get<std::string>() + "' is no longer valid");
      }
    }
    std::set<std::string> then_valid;
    for (const auto& v : before["valid_values"]) then_valid.insert(v.get<std::string>());
    for (const auto& v : rule["valid_values"]) {
      if (then_valid.count(v.get<std::string>()) == 0) {
        add(column, "valid value added", false, "'" + v.get<std::string>() + "' is now valid");
      }
    }
    if (before["severity"] != rule["severity"]) {
      const bool now_error = rule["severity"] == "error";
      add(column, now_error ? "rule made an error" : "rule made a warning", now_error,
          what + " " + Threshold(rule));
    }
  }
  for (const auto& [key, rule] : old_rules) {
    if (new_rules.count(key) == 0) {
      add(rule["column"], "quality rule removed", false,
          rule["kind"].get<std::string>() + " " + Threshold(rule));
    }
  }
  return changes;
}

}  // namespace canopy::contract
