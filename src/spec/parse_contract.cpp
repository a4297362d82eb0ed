// Readers for the ODCS v3.1 parts of a spec: schema objects, properties, quality
// rules, SLA properties and whole contract documents.
#include <fstream>
#include <map>
#include <sstream>

#include "core/text.h"
#include "spec/parse.h"

namespace canopy::spec {
namespace {

const std::vector<std::string> kOperatorNames = {
    "mustBe",         "mustNotBe",           "mustBeGreaterThan", "mustBeGreaterOrEqualTo",
    "mustBeLessThan", "mustBeLessOrEqualTo", "mustBeBetween",     "mustNotBeBetween"};

const std::map<std::string, QualityMetric> kMetrics = {
    {"nullValues", QualityMetric::kNullValues},
    {"missingValues", QualityMetric::kMissingValues},
    {"invalidValues", QualityMetric::kInvalidValues},
    {"duplicateValues", QualityMetric::kDuplicateValues},
    {"rowCount", QualityMetric::kRowCount},
};

const std::map<std::string, LogicalType> kLogicalTypes = {
    {"string", LogicalType::kString}, {"integer", LogicalType::kInteger},
    {"number", LogicalType::kNumber}, {"boolean", LogicalType::kBoolean},
    {"date", LogicalType::kDate},     {"timestamp", LogicalType::kTimestamp},
    {"time", LogicalType::kTime},     {"object", LogicalType::kObject},
    {"array", LogicalType::kArray},
};

std::vector<std::string> Keys(const auto& map) {
  std::vector<std::string> keys;
  for (const auto& entry : map) keys.push_back(entry.first);
  return keys;
}

// Reads the one comparison operator of a quality rule into `rule`.
void ReadOperator(MapReader& reader, const YAML::Node& node, QualityRule& rule) {
  const ReadContext& context = reader.context();
  int found = 0;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) continue;
    const std::string& key = entry.first.Scalar();
    bool is_operator = false;
    for (size_t i = 0; i < kOperatorNames.size(); ++i) {
      if (key != kOperatorNames[i]) continue;
      is_operator = true;
      ++found;
      auto op = static_cast<QualityOperator>(i);
      rule.op = op;
      const bool between =
          op == QualityOperator::kMustBeBetween || op == QualityOperator::kMustNotBeBetween;
      if (between) {
        if (!entry.second.IsSequence() || entry.second.size() != 2) {
          context.Error(entry.second,
                        key + " takes two numbers, found " + DescribeNodeType(entry.second),
                        "write it as " + key + ": [low, high]");
          continue;
        }
        auto low = ReadNumber(entry.second[0], context, "the low bound of " + key);
        auto high = ReadNumber(entry.second[1], context, "the high bound of " + key);
        if (low && high) {
          if (*low > *high) {
            context.Error(entry.second, key + " has its low bound above its high bound",
                          "write it as " + key + ": [low, high]");
          }
          rule.value = *low;
          rule.value_high = *high;
        }
      } else if (auto value = ReadNumber(entry.second, context, key)) {
        rule.value = *value;
      }
    }
    // A key that reads like an operator but is none: a typo that would silently drop the check.
    if (!is_operator && key.rfind("must", 0) == 0) {
      std::string hint = DidYouMean(key, kOperatorNames);
      if (hint.empty()) hint = "operators: " + Join(kOperatorNames, ", ");
      context.Error(entry.first, "unknown quality operator '" + key + "'", hint);
      reader.Ignore(key);
      ++found;  // do not also report "no operator"
    }
  }
  if (found > 1) {
    context.Error(node, "a quality rule takes one operator, found " + std::to_string(found),
                  "split it into one rule per operator");
  }
  if (found == 0 && (rule.type == QualityType::kLibrary || rule.type == QualityType::kSql)) {
    context.Error(node, "quality rule has no operator",
                  "add one of " + Join(kOperatorNames, ", ") + " (e.g. mustBe: 0)");
  }
}

QualityRule ParseQualityRule(const YAML::Node& node, const ReadContext& context,
                             bool column_level) {
  std::vector<std::string> known = {"type",        "metric", "rule",     "arguments",   "unit",
                                    "validValues", "query",  "severity", "description", "name"};
  known.insert(known.end(), kOperatorNames.begin(), kOperatorNames.end());
  MapReader reader(node, context, "quality rule", known, UnknownKeys::kKeepAsOdcs);
  reader.SetStandardKeys({"id", "dimension", "method", "businessImpact", "schedule", "scheduler",
                          "customProperties", "authoritativeDefinitions", "tags", "engine",
                          "implementation", "mustBeLessOrEqual", "mustBeGreaterOrEqual"});
  QualityRule rule;
  rule.location = reader.location();
  if (!reader.valid()) return rule;

  const std::string type = reader.String("type", "library");
  if (type == "library") {
    rule.type = QualityType::kLibrary;
  } else if (type == "sql") {
    rule.type = QualityType::kSql;
  } else if (type == "text") {
    rule.type = QualityType::kText;
  } else if (type == "custom") {
    rule.type = QualityType::kCustom;
  } else {
    std::string hint = DidYouMean(type, {"library", "sql", "text", "custom"});
    context.diagnostics->Error(reader.LocationOf("type"),
                               "unknown quality rule type '" + type + "'",
                               hint.empty() ? "use library, sql, text or custom" : hint);
  }
  rule.name = reader.String("name");
  rule.description = reader.String("description");

  // ODCS 3.1 says `metric`; 3.0 said `rule`. Both are read.
  std::string metric = reader.String("metric");
  if (metric.empty()) metric = reader.String("rule");
  const std::string metric_key = reader.Has("metric") ? "metric" : "rule";
  if (rule.type == QualityType::kLibrary) {
    if (metric.empty()) {
      context.diagnostics->Error(
          rule.location, "quality rule needs a 'metric'",
          "use one of " + Join(Keys(kMetrics), ", ") + ", or type: sql with a query");
    } else if (auto it = kMetrics.find(metric); it != kMetrics.end()) {
      rule.metric = it->second;
    } else {
      std::string hint = DidYouMean(metric, Keys(kMetrics));
      if (hint.empty()) hint = "metrics: " + Join(Keys(kMetrics), ", ");
      context.diagnostics->Error(reader.LocationOf(metric_key),
                                 "unknown quality metric '" + metric + "'", hint);
    }
  }

  if (rule.type == QualityType::kSql) {
    rule.query = reader.String("query");
    if (Trim(rule.query).empty()) {
      context.diagnostics->Error(rule.location, "a quality rule of type sql needs a 'query'",
                                 "e.g. query: select count(*) from {object} where amount < 0");
    } else if (!column_level && rule.query.find("{property}") != std::string::npos) {
      context.diagnostics->Error(reader.LocationOf("query"),
                                 "{property} is only known in a rule on a property",
                                 "move the rule under the property's quality, or name the column");
    }
  }

  ReadOperator(reader, node, rule);

  const std::string unit = reader.String("unit", "rows");
  if (unit == "percent") {
    rule.unit = QualityUnit::kPercent;
    if (rule.metric == QualityMetric::kRowCount || rule.type == QualityType::kSql) {
      context.diagnostics->Error(
          reader.LocationOf("unit"),
          "unit: percent does not apply to " +
              std::string(rule.type == QualityType::kSql ? "sql rules" : "rowCount"),
          "remove the unit");
    }
  } else if (unit != "rows") {
    context.diagnostics->Error(reader.LocationOf("unit"), "unknown unit '" + unit + "'",
                               "use rows or percent");
  }

  const std::string severity = reader.String("severity", "error");
  if (severity == "warning" || severity == "warn") {
    rule.severity = RuleSeverity::kWarning;
  } else if (severity != "error") {
    context.diagnostics->Error(reader.LocationOf("severity"), "unknown severity '" + severity + "'",
                               "use error or warning");
  }

  // Valid values and pattern: ODCS 3.1 puts them in `arguments`; 3.0 had validValues beside.
  auto read_valid_values = [&](const YAML::Node& list) {
    if (!list.IsSequence()) {
      context.Error(list, "validValues must be a list, found " + DescribeNodeType(list));
      return;
    }
    for (const auto& value : list) {
      if (value.IsNull()) {
        rule.valid_values_has_null = true;
      } else if (auto text = ReadString(value, context, "each valid value")) {
        rule.valid_values.push_back(*text);
      }
    }
  };
  if (auto values = reader.Get("validValues")) read_valid_values(*values);
  if (auto arguments = reader.Get("arguments")) {
    MapReader args(*arguments, context, "quality rule arguments",
                   {"validValues", "pattern", "missingValues", "properties"},
                   UnknownKeys::kKeepAsOdcs);
    if (auto values = args.Get("validValues")) read_valid_values(*values);
    if (auto values = args.Get("missingValues")) read_valid_values(*values);
    if (args.Has("pattern")) rule.pattern = args.String("pattern");
    rule.properties = args.StringList("properties");
    rule.extra = args.Finish();
  }

  if (rule.metric == QualityMetric::kInvalidValues && rule.valid_values.empty() && !rule.pattern) {
    context.diagnostics->Error(rule.location, "invalidValues needs the values that are valid",
                               "add arguments: { validValues: [a, b] } or arguments: "
                               "{ pattern: '^[A-Z]+$' }");
  }
  if (!column_level) {
    const bool column_metric = rule.metric == QualityMetric::kNullValues ||
                               rule.metric == QualityMetric::kMissingValues ||
                               rule.metric == QualityMetric::kInvalidValues;
    if (column_metric) {
      context.diagnostics->Error(rule.location,
                                 std::string(ToString(rule.metric)) + " checks one column",
                                 "move this rule under the property's quality");
    }
    if (rule.metric == QualityMetric::kDuplicateValues && rule.properties.empty()) {
      context.diagnostics->Error(rule.location,
                                 "duplicateValues on a table needs the columns that must be unique",
                                 "add arguments: { properties: [col_a, col_b] }, or move the rule "
                                 "under one property");
    }
  } else if (rule.metric == QualityMetric::kRowCount) {
    context.diagnostics->Error(rule.location, "rowCount counts the whole table",
                               "move this rule to the contract's quality list");
  }

  auto extra = reader.Finish();
  rule.extra.insert(rule.extra.end(), extra.begin(), extra.end());
  return rule;
}

std::vector<QualityRule> ParseQualityList(const YAML::Node& node, const ReadContext& context,
                                          bool column_level) {
  std::vector<QualityRule> rules;
  if (node.IsNull()) return rules;
  if (!node.IsSequence()) {
    context.Error(node, "quality must be a list of rules, found " + DescribeNodeType(node));
    return rules;
  }
  for (const auto& item : node) rules.push_back(ParseQualityRule(item, context, column_level));
  return rules;
}

Property ParseProperty(const YAML::Node& node, const ReadContext& context) {
  MapReader reader(node, context, "contract property",
                   {"name", "physicalType", "logicalType", "required", "unique", "primaryKey",
                    "primaryKeyPosition", "classification", "description", "tags", "quality"},
                   UnknownKeys::kKeepAsOdcs);
  reader.SetStandardKeys({"id", "physicalName", "logicalTypeOptions", "partitioned",
                          "partitionKeyPosition", "encryptedName", "transformSourceObjects",
                          "transformLogic", "transformDescription", "examples",
                          "criticalDataElement", "businessName", "customProperties",
                          "authoritativeDefinitions", "relationships", "items", "properties"});
  Property property;
  property.location = reader.location();
  if (!reader.valid()) return property;
  property.name = reader.RequiredString("name", "each property names one column");
  property.physical_type = reader.String("physicalType");
  const std::string logical = reader.String("logicalType");
  if (!logical.empty()) {
    if (auto it = kLogicalTypes.find(logical); it != kLogicalTypes.end()) {
      property.logical_type = it->second;
    } else {
      std::string hint = DidYouMean(logical, Keys(kLogicalTypes));
      if (hint.empty()) hint = "logical types: " + Join(Keys(kLogicalTypes), ", ");
      context.diagnostics->Error(reader.LocationOf("logicalType"),
                                 "unknown logicalType '" + logical + "'", hint);
    }
  }
  if (property.physical_type.empty() && logical.empty() && !property.name.empty()) {
    context.diagnostics->Error(property.location, "property '" + property.name + "' has no type",
                               "add logicalType (e.g. string) or physicalType (e.g. VARCHAR)");
  }
  property.required = reader.Bool("required", false);
  property.unique = reader.Bool("unique", false);
  property.primary_key = reader.Bool("primaryKey", false);
  property.primary_key_position =
      static_cast<int>(reader.Integer("primaryKeyPosition").value_or(-1));
  if (reader.Has("classification")) {
    property.classification = reader.String("classification");
    property.classification_given = true;
    property.classification_location = reader.LocationOf("classification");
  }
  property.description = reader.String("description");
  property.tags = reader.StringList("tags");
  if (auto quality = reader.Get("quality")) {
    property.quality = ParseQualityList(*quality, context, /*column_level=*/true);
  }
  property.extra = reader.Finish();
  for (const auto& extra : property.extra) {
    if (extra.key != "customProperties") continue;
    const YAML::Node list = YAML::Load(extra.yaml);
    if (!list.IsSequence()) continue;
    for (const auto& item : list) {
      if (!item.IsMap() || !item["property"] ||
          item["property"].as<std::string>("") != "declassified") {
        continue;
      }
      property.declassified =
          item["value"] && item["value"].IsScalar() ? item["value"].as<std::string>() : "";
      if (Trim(property.declassified).empty()) {
        context.diagnostics->Error(extra.location, "declassified needs a written reason",
                                   "say why the column is less sensitive than its sources, "
                                   "e.g. value: \"a count of customers, no one's address\"");
      }
    }
  }
  return property;
}

}  // namespace

std::vector<SlaProperty> ParseSla(const YAML::Node& node, const ReadContext& context) {
  std::vector<SlaProperty> sla;
  if (node.IsNull()) return sla;
  if (!node.IsSequence()) {
    context.Error(node, "sla must be a list of ODCS slaProperties, found " + DescribeNodeType(node),
                  "e.g. - { property: frequency, value: 1, unit: d }");
    return sla;
  }
  for (const auto& item : node) {
    MapReader reader(item, context, "SLA property", {"property", "value", "unit", "element"},
                     UnknownKeys::kKeepAsOdcs);
    reader.SetStandardKeys({"id", "valueExt", "driver", "description", "scheduler", "schedule"});
    SlaProperty entry;
    entry.location = reader.location();
    if (!reader.valid()) continue;
    entry.property = reader.RequiredString("property", "e.g. property: frequency");
    if (auto value = reader.Get("value")) {
      if (value->IsScalar()) {
        entry.value = value->Scalar();
      } else {
        context.Error(*value,
                      "SLA value must be a single value, found " + DescribeNodeType(*value));
      }
    }
    entry.unit = reader.String("unit");
    entry.element = reader.String("element");
    entry.extra = reader.Finish();
    sla.push_back(std::move(entry));
  }
  return sla;
}

Contract ParseContract(const YAML::Node& node, const ReadContext& context,
                       const std::string& default_object_name) {
  MapReader reader(node, context, "contract", {"name", "description", "properties", "quality"},
                   UnknownKeys::kKeepAsOdcs);
  reader.SetStandardKeys({"id", "physicalName", "physicalType", "businessName", "logicalType",
                          "authoritativeDefinitions", "tags", "dataGranularityDescription",
                          "relationships", "customProperties"});
  Contract contract;
  contract.location = reader.location();
  if (!reader.valid()) return contract;
  contract.object_name = reader.String("name", default_object_name);
  contract.description = reader.String("description");
  auto properties = reader.Get("properties");
  if (!properties || properties->IsNull()) {
    context.diagnostics->Error(contract.location, "contract has no properties",
                               "list the columns the port publishes under 'properties'");
  } else if (!properties->IsSequence()) {
    context.Error(*properties,
                  "properties must be a list of columns, found " + DescribeNodeType(*properties));
  } else {
    for (const auto& item : *properties)
      contract.properties.push_back(ParseProperty(item, context));
  }
  if (auto quality = reader.Get("quality")) {
    contract.quality = ParseQualityList(*quality, context, /*column_level=*/false);
  }
  contract.extra = reader.Finish();
  return contract;
}

OdcsDocument ParseOdcsDocument(const YAML::Node& node, const ReadContext& context) {
  MapReader reader(node, context, "ODCS contract",
                   {"apiVersion", "kind", "id", "name", "version", "status", "domain",
                    "dataProduct", "description", "tags", "schema", "slaProperties"},
                   UnknownKeys::kKeepAsOdcs);
  reader.SetStandardKeys({"tenant", "servers", "team", "roles", "support", "price",
                          "customProperties", "authoritativeDefinitions", "contractCreatedTs",
                          "slaDefaultElement"});
  OdcsDocument doc;
  doc.file = context.file;
  if (!reader.valid()) return doc;
  doc.api_version = reader.String("apiVersion");
  const std::string kind = reader.String("kind");
  if (kind != "DataContract") {
    context.diagnostics->Error(reader.LocationOf("kind"),
                               "an ODCS document has kind: DataContract, found '" + kind + "'");
  }
  doc.id = reader.String("id");
  doc.name = reader.String("name");
  doc.version = reader.String("version");
  doc.status = reader.String("status");
  doc.domain = reader.String("domain");
  doc.data_product = reader.String("dataProduct");
  doc.tags = reader.StringList("tags");
  if (auto description = reader.Get("description")) {
    if (description->IsScalar()) {
      doc.description.purpose = description->Scalar();
    } else {
      MapReader desc(*description, context, "description", {"purpose", "usage", "limitations"},
                     UnknownKeys::kKeepAsOdcs);
      desc.SetStandardKeys({"authoritativeDefinitions", "customProperties"});
      doc.description.purpose = desc.String("purpose");
      doc.description.usage = desc.String("usage");
      doc.description.limitations = desc.String("limitations");
      desc.Finish();
    }
  }
  if (auto schema = reader.Get("schema")) {
    if (schema->IsSequence()) {
      for (const auto& object : *schema) {
        doc.schema.push_back(ParseContract(object, context, ""));
      }
    } else if (!schema->IsNull()) {
      context.Error(*schema,
                    "schema must be a list of objects, found " + DescribeNodeType(*schema));
    }
  }
  if (auto sla = reader.Get("slaProperties")) doc.sla = ParseSla(*sla, context);
  doc.extra = reader.Finish();
  return doc;
}

std::optional<YAML::Node> ParseYamlFile(const std::string& path, const ReadContext& context) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    context.diagnostics->Error({context.file, 0, 0}, "cannot read the file");
    return std::nullopt;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  // YAML is Unicode text; bytes that are not UTF-8 would travel into JSON answers and files.
  if (!ValidUtf8(text)) {
    // The first line that is not (a newline is never inside a UTF-8 sequence).
    int line = 1;
    for (size_t start = 0; start <= text.size(); ++line) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (!ValidUtf8(std::string_view(text).substr(start, end - start))) break;
      start = end + 1;
    }
    context.diagnostics->Error({context.file, line, 0}, "the file is not UTF-8 text",
                               "save it as UTF-8 (YAML files are Unicode text)");
    return std::nullopt;
  }
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    context.diagnostics->Error(context.At(e.mark), "YAML syntax: " + e.msg,
                               "check the indentation and quoting on this line and the one above");
  } catch (const YAML::Exception& e) {
    context.diagnostics->Error({context.file, 0, 0}, std::string("YAML: ") + e.what());
  }
  return std::nullopt;
}

OdcsDocument LoadOdcsDocument(const std::string& path, const std::string& display_file,
                              Diagnostics& diagnostics) {
  ReadContext context{display_file, &diagnostics};
  auto node = ParseYamlFile(path, context);
  if (!node) {
    OdcsDocument doc;
    doc.file = display_file;
    return doc;
  }
  return ParseOdcsDocument(*node, context);
}

}  // namespace canopy::spec
