// Internal to standards: the keys the ODCS v3.1 JSON schema allows at each level, so
// that kept keys are written only where the schema accepts them.
#pragma once

#include <set>
#include <string>

#include "spec/model.h"

namespace canopy::standards::detail {

inline const std::set<std::string> kTopKeys = {"version",
                                               "kind",
                                               "apiVersion",
                                               "id",
                                               "name",
                                               "tenant",
                                               "tags",
                                               "status",
                                               "servers",
                                               "dataProduct",
                                               "description",
                                               "domain",
                                               "schema",
                                               "support",
                                               "price",
                                               "team",
                                               "roles",
                                               "slaDefaultElement",
                                               "slaProperties",
                                               "authoritativeDefinitions",
                                               "customProperties",
                                               "contractCreatedTs"};

// The keys ODCS allows on every schema element (objects and properties), plus `more`.
inline std::set<std::string> ElementKeys(std::set<std::string> more) {
  more.insert({"id", "name", "physicalType", "description", "businessName",
               "authoritativeDefinitions", "tags", "customProperties"});
  return more;
}

inline const std::set<std::string> kObjectKeys =
    ElementKeys({"logicalType", "physicalName", "dataGranularityDescription", "properties",
                 "relationships", "quality"});

inline const std::set<std::string> kPropertyKeys = ElementKeys({"primaryKey",
                                                                "primaryKeyPosition",
                                                                "logicalType",
                                                                "logicalTypeOptions",
                                                                "physicalName",
                                                                "required",
                                                                "unique",
                                                                "partitioned",
                                                                "partitionKeyPosition",
                                                                "classification",
                                                                "encryptedName",
                                                                "transformSourceObjects",
                                                                "transformLogic",
                                                                "transformDescription",
                                                                "examples",
                                                                "criticalDataElement",
                                                                "relationships",
                                                                "quality",
                                                                "items",
                                                                "properties"});

inline const std::set<std::string> kSlaKeys = {"id",        "property", "value",  "valueExt",
                                               "unit",      "element",  "driver", "description",
                                               "scheduler", "schedule"};

// The keys of a quality rule of `type` (DataQuality and the branch for its type).
inline std::set<std::string> RuleKeys(spec::QualityType type) {
  std::set<std::string> keys = {"id",
                                "authoritativeDefinitions",
                                "businessImpact",
                                "customProperties",
                                "description",
                                "dimension",
                                "method",
                                "name",
                                "schedule",
                                "scheduler",
                                "severity",
                                "tags",
                                "type",
                                "unit"};
  switch (type) {
    case spec::QualityType::kLibrary:
      keys.insert({"metric", "rule", "arguments"});
      break;
    case spec::QualityType::kSql:
      keys.insert("query");
      break;
    case spec::QualityType::kCustom:
      keys.insert({"engine", "implementation"});
      break;
    case spec::QualityType::kText:
      break;
  }
  return keys;
}

}  // namespace canopy::standards::detail
