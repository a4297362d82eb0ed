// A product as an ODCS v3.1 data contract (`canopy export odcs D.P`).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "spec/loader.h"
#include "spec/odcs.h"
#include "standards/odcs_keys.h"
#include "standards/standards.h"
#include "standards/yaml_json.h"

namespace canopy::standards {

using detail::Json;

std::string OdcsContractId(const std::string& domain, const std::string& product) {
  return detail::UuidFromText("canopy:odcs:" + domain + "." + product);
}

namespace {

// A number as JSON: an integer when it is one (so 0 reads back as 0, not 0.0).
Json NumberJson(double value) {
  if (std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 9.0e15) {
    return static_cast<int64_t>(value);
  }
  return value;
}

// ODCS logical type for a DuckDB type, when the contract names none.
std::string LogicalFromPhysical(const std::string& physical) {
  const std::string type = ToLower(Trim(physical));
  if (type.empty()) return {};
  auto starts = [&](const char* prefix) { return type.rfind(prefix, 0) == 0; };
  if (type.back() == ']' || starts("list") || starts("array")) return "array";
  if (starts("struct") || starts("map") || starts("union") || type == "json") return "object";
  if (starts("timestamp") || starts("datetime")) return "timestamp";
  if (starts("date")) return "date";
  if (starts("time")) return "time";
  if (starts("bool") || type == "logical") return "boolean";
  for (const char* name : {"tinyint", "smallint", "integer", "int", "bigint", "hugeint", "utinyint",
                           "usmallint", "uinteger", "ubigint", "uhugeint", "int1", "int2", "int4",
                           "int8", "long", "short", "signed"}) {
    if (type == name) return "integer";
  }
  for (const char* prefix : {"decimal", "numeric", "double", "float", "real"}) {
    if (starts(prefix)) return "number";
  }
  for (const char* prefix : {"varchar", "char", "bpchar", "text", "string", "uuid", "enum"}) {
    if (starts(prefix)) return "string";
  }
  return {};
}

// Kept keys go where the ODCS schema allows them: on `target` when `allowed` lists the key
// and Canopy has not set it, else into `fallback` (quality arguments), else into
// `target`.customProperties when `custom_properties`, else they are left out.
void AddExtras(Json& target, const std::vector<spec::ExtraField>& extras,
               const std::set<std::string>& allowed, bool custom_properties,
               Json* fallback = nullptr) {
  for (const auto& extra : extras) {
    Json value = detail::ExtraToJson(extra);
    if (extra.key == "customProperties" && value.is_array()) {
      if (!target.contains("customProperties")) target["customProperties"] = Json::array();
      auto& list = target["customProperties"];
      for (auto& item : value) {
        if (std::find(list.begin(), list.end(), item) == list.end())
          list.push_back(std::move(item));
      }
      continue;
    }
    if (target.contains(extra.key) && target[extra.key] == value) continue;  // says the same
    if (allowed.count(extra.key) != 0 && !target.contains(extra.key)) {
      target[extra.key] = std::move(value);
    } else if (fallback != nullptr) {
      (*fallback)[extra.key] = std::move(value);
    } else if (custom_properties) {
      if (!target.contains("customProperties")) target["customProperties"] = Json::array();
      target["customProperties"].push_back({{"property", extra.key}, {"value", value}});
    }
  }
}

Json RuleJson(const spec::QualityRule& rule) {
  Json out = Json::object();
  const bool library = rule.type == spec::QualityType::kLibrary;
  const bool sql = rule.type == spec::QualityType::kSql;
  if (!rule.name.empty()) out["name"] = rule.name;
  switch (rule.type) {
    case spec::QualityType::kLibrary:
      out["metric"] = spec::ToString(rule.metric);
      break;
    case spec::QualityType::kSql:
      out["type"] = "sql";
      out["query"] = rule.query;
      break;
    case spec::QualityType::kText:
      out["type"] = "text";
      break;
    case spec::QualityType::kCustom:
      out["type"] = "custom";
      break;
  }
  if (!rule.description.empty()) out["description"] = rule.description;
  if ((library || sql) && rule.op) {
    auto op = *rule.op;
    const bool between = op == spec::QualityOperator::kMustBeBetween ||
                         op == spec::QualityOperator::kMustNotBeBetween;
    if (between && rule.value == rule.value_high) {
      // ODCS wants two different bounds; [x, x] means (not) equal to x.
      op = op == spec::QualityOperator::kMustBeBetween ? spec::QualityOperator::kMustBe
                                                       : spec::QualityOperator::kMustNotBe;
      out[spec::ToString(op)] = NumberJson(rule.value);
    } else if (between) {
      out[spec::ToString(op)] = Json::array({NumberJson(rule.value), NumberJson(rule.value_high)});
    } else {
      out[spec::ToString(op)] = NumberJson(rule.value);
    }
  }
  if (library || sql) out["unit"] = rule.unit == spec::QualityUnit::kPercent ? "percent" : "rows";
  out["severity"] = spec::ToString(rule.severity);
  Json arguments = Json::object();
  if (!rule.valid_values.empty() || rule.valid_values_has_null) {
    Json values = Json::array();
    for (const auto& value : rule.valid_values) values.push_back(value);
    if (rule.valid_values_has_null) values.push_back(nullptr);
    arguments[rule.metric == spec::QualityMetric::kMissingValues ? "missingValues"
                                                                 : "validValues"] = values;
  }
  if (rule.pattern) arguments["pattern"] = *rule.pattern;
  if (!rule.properties.empty()) arguments["properties"] = rule.properties;
  // spec keeps the unknown keys of a rule and of its arguments in one list: a key ODCS
  // allows on a rule stays there, any other one goes back to the arguments.
  AddExtras(out, rule.extra, detail::RuleKeys(rule.type), /*custom_properties=*/!library,
            library ? &arguments : nullptr);
  if (library && !arguments.empty()) out["arguments"] = arguments;
  return out;
}

Json QualityJson(const std::vector<spec::QualityRule>& rules) {
  Json out = Json::array();
  for (const auto& rule : rules) out.push_back(RuleJson(rule));
  return out;
}

const catalog::ColumnRecord* LiveColumn(const std::optional<catalog::LiveVersion>& live,
                                        const std::string& port, const std::string& column) {
  if (!live) return nullptr;
  for (const auto& record : live->ports) {
    if (record.name != port) continue;
    for (const auto& candidate : record.columns) {
      if (candidate.name == column) return &candidate;
    }
    for (const auto& candidate : record.columns) {
      if (ToLower(candidate.name) == ToLower(column)) return &candidate;
    }
  }
  return nullptr;
}

Json PropertyJson(const spec::Property& property, const std::string& port,
                  const std::optional<catalog::LiveVersion>& live, int primary_key_position) {
  Json out = Json::object();
  out["name"] = property.name;
  std::string physical = property.physical_type;
  if (const auto* column = LiveColumn(live, port, property.name)) physical = column->type;
  if (!physical.empty()) out["physicalType"] = physical;
  std::string logical = spec::ToString(property.logical_type);
  if (logical.empty()) logical = LogicalFromPhysical(physical);
  if (!logical.empty()) out["logicalType"] = logical;
  out["required"] = property.required;
  if (property.unique) out["unique"] = true;
  if (property.primary_key) {
    out["primaryKey"] = true;
    out["primaryKeyPosition"] = primary_key_position;
  }
  if (!property.classification.empty()) out["classification"] = property.classification;
  if (!property.description.empty()) out["description"] = property.description;
  if (!property.tags.empty()) out["tags"] = property.tags;
  AddExtras(out, property.extra, detail::kPropertyKeys, /*custom_properties=*/true);
  if (!property.quality.empty()) out["quality"] = QualityJson(property.quality);
  return out;
}

Json ObjectJson(const spec::OutputPort& port, const std::string& domain,
                const std::optional<catalog::LiveVersion>& live) {
  const spec::Contract& contract = port.contract;
  Json out = Json::object();
  out["name"] = contract.object_name.empty() ? port.name : contract.object_name;
  out["physicalName"] = domain + "." + port.name;
  out["physicalType"] = "table";
  const std::string description =
      contract.description.empty() ? port.description : contract.description;
  if (!description.empty()) out["description"] = description;
  AddExtras(out, contract.extra, detail::kObjectKeys, /*custom_properties=*/true);
  // Primary key positions: as given, else the order of the key columns.
  std::set<int> taken;
  for (const auto& property : contract.properties) {
    if (property.primary_key && property.primary_key_position > 0) {
      taken.insert(property.primary_key_position);
    }
  }
  int next = 1;
  Json properties = Json::array();
  for (const auto& property : contract.properties) {
    int position = property.primary_key_position;
    if (property.primary_key && position <= 0) {
      while (taken.count(next) != 0) ++next;
      position = next;
      taken.insert(next);
    }
    properties.push_back(PropertyJson(property, port.name, live, position));
  }
  out["properties"] = properties;
  if (!contract.quality.empty()) out["quality"] = QualityJson(contract.quality);
  return out;
}

Json SlaJson(const spec::SlaProperty& sla, const std::string& default_element) {
  Json out = Json::object();
  out["property"] = sla.property;
  out["value"] = detail::ScalarToJson(sla.value);
  if (!sla.unit.empty()) out["unit"] = sla.unit;
  if (!sla.element.empty()) {
    out["element"] = sla.element;
  } else if (!default_element.empty()) {
    out["element"] = default_element;
  }
  // Entries are closed objects in ODCS: keys it does not know have nowhere to go.
  AddExtras(out, sla.extra, detail::kSlaKeys, /*custom_properties=*/false);
  return out;
}

// The ports' SLAs as one list: once when every port has the same, else per port with
// `element` naming its object.
Json SlaPropertiesJson(const spec::Product& product) {
  bool same = true;
  for (const auto& port : product.outputs) {
    if (port.sla.size() != product.outputs.front().sla.size()) same = false;
  }
  if (same && !product.outputs.empty()) {
    const auto& first = product.outputs.front().sla;
    for (const auto& port : product.outputs) {
      for (size_t i = 0; i < first.size() && same; ++i) {
        same = SlaJson(port.sla[i], "") == SlaJson(first[i], "");
      }
    }
  }
  Json out = Json::array();
  for (const auto& port : product.outputs) {
    const std::string object =
        port.contract.object_name.empty() ? port.name : port.contract.object_name;
    for (const auto& sla : port.sla) {
      Json entry = SlaJson(sla, same ? "" : object);
      if (std::find(out.begin(), out.end(), entry) == out.end()) out.push_back(entry);
    }
    if (same) break;
  }
  return out;
}

// The document-level keys of the contract files the product's ports name, first file first.
std::vector<spec::ExtraField> ContractFileExtras(const spec::Mesh& mesh,
                                                 const spec::Product& product) {
  std::vector<spec::ExtraField> extras;
  const spec::Domain* domain = mesh.FindDomain(product.domain);
  if (domain == nullptr || mesh.root.empty()) return extras;
  const std::string folder = (std::filesystem::path(mesh.root) / domain->folder).string();
  std::set<std::string> files;
  for (const auto& port : product.outputs) {
    if (!port.contract.contract_file) continue;
    auto resolved = spec::ResolveInside(folder, *port.contract.contract_file);
    if (resolved.status != spec::PathStatus::kInside) continue;
    if (!files.insert(resolved.absolute).second) continue;
    Diagnostics ignored;
    auto doc = spec::LoadOdcsDocument(resolved.absolute, *port.contract.contract_file, ignored);
    for (auto& extra : doc.extra) {
      const bool seen = std::any_of(extras.begin(), extras.end(), [&](const auto& kept) {
        return kept.key == extra.key && kept.key != "customProperties";
      });
      if (!seen) extras.push_back(std::move(extra));
    }
  }
  return extras;
}

}  // namespace

std::string ExportOdcs(const spec::Mesh& mesh, const spec::Product& product,
                       const std::optional<catalog::LiveVersion>& live) {
  Json doc = Json::object();
  doc["apiVersion"] = "v3.1.0";
  doc["kind"] = "DataContract";
  doc["id"] = OdcsContractId(product.domain, product.name);
  doc["name"] = product.name;
  doc["version"] = product.version.ToString();
  // Canopy's statuses are ODCS's own words.
  doc["status"] = spec::ToString(product.status);
  doc["domain"] = product.domain;
  doc["dataProduct"] = product.name;
  Json description = Json::object();
  if (!product.description.purpose.empty()) description["purpose"] = product.description.purpose;
  if (!product.description.usage.empty()) description["usage"] = product.description.usage;
  if (!product.description.limitations.empty()) {
    description["limitations"] = product.description.limitations;
  }
  if (!description.empty()) doc["description"] = description;
  if (!product.tags.empty()) doc["tags"] = product.tags;

  Json schema = Json::array();
  for (const auto& port : product.outputs) schema.push_back(ObjectJson(port, product.domain, live));
  doc["schema"] = schema;
  Json sla = SlaPropertiesJson(product);
  if (!sla.empty()) doc["slaProperties"] = sla;

  const auto file_extras = ContractFileExtras(mesh, product);
  doc["team"] = detail::TeamJson(mesh, product, file_extras);
  std::vector<spec::ExtraField> kept;
  for (const auto& extra : file_extras) {
    if (extra.key != "team") kept.push_back(extra);  // merged into Canopy's team above
  }
  AddExtras(doc, kept, detail::kTopKeys, /*custom_properties=*/true);

  Json custom = Json::array();
  custom.push_back({{"property", "canopyAddress"}, {"value", product.Address()}});
  custom.push_back({{"property", "canopyType"}, {"value", spec::ToString(product.type)}});
  custom.push_back(
      {{"property", "canopyVisibility"}, {"value", spec::ToString(product.visibility)}});
  if (live) {
    custom.push_back({{"property", "canopyBuildId"}, {"value", live->build_id}});
    custom.push_back({{"property", "canopyPublishedVersion"}, {"value", live->version}});
    custom.push_back({{"property", "canopyPublishedAt"}, {"value", live->published_at}});
  }
  if (!doc.contains("customProperties")) doc["customProperties"] = Json::array();
  for (auto& item : custom) {
    auto& list = doc["customProperties"];
    if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(std::move(item));
  }
  return detail::ToYaml(doc,
                        "ODCS v3.1 data contract of " + product.Address() + ", exported by Canopy");
}

}  // namespace canopy::standards
