// The real ODCS examples from the standard must load (issue: contract_file support).
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_support.h"
#include "spec/odcs.h"

namespace fs = std::filesystem;

namespace canopy::spec {
namespace {

const fs::path kOdcs = test::StandardsDir() / "odcs";

OdcsDocument Load(const std::string& name, Diagnostics& diagnostics) {
  return LoadOdcsDocument((kOdcs / name).string(), name, diagnostics);
}

TEST(OdcsExamples, EveryExampleOfTheStandardLoadsWithoutErrors) {
  if (!test::HaveStandards()) GTEST_SKIP() << test::MissingStandards();
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kOdcs)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    Diagnostics diagnostics;
    OdcsDocument doc =
        LoadOdcsDocument(entry.path().string(), entry.path().filename().string(), diagnostics);
    for (const auto& d : diagnostics.items()) ADD_FAILURE() << d.Format();
    EXPECT_FALSE(doc.id.empty()) << entry.path();
  }
  EXPECT_GE(files, 8);
}

TEST(OdcsExamples, FullExampleKeepsSchemaQualitySlaAndExtensions) {
  if (!test::HaveStandards()) GTEST_SKIP() << test::MissingStandards();
  Diagnostics diagnostics;
  OdcsDocument doc = Load("full-example.odcs.yaml", diagnostics);
  EXPECT_EQ(doc.domain, "seller");
  EXPECT_EQ(doc.data_product, "my quantum");
  EXPECT_EQ(doc.description.purpose, "Views built on top of the seller tables.");
  ASSERT_EQ(doc.schema.size(), 2u);
  const Contract& tbl = doc.schema[0];
  EXPECT_EQ(tbl.object_name, "tbl");
  ASSERT_EQ(tbl.properties.size(), 3u);
  EXPECT_EQ(tbl.properties[0].name, "transaction_reference_date");
  EXPECT_EQ(tbl.properties[0].logical_type, LogicalType::kDate);
  EXPECT_EQ(tbl.properties[1].classification, "restricted");
  EXPECT_TRUE(tbl.properties[1].primary_key);
  EXPECT_EQ(tbl.properties[1].physical_type, "varchar(18)");
  ASSERT_EQ(tbl.properties[2].quality.size(), 1u);
  EXPECT_EQ(tbl.properties[2].quality[0].metric, QualityMetric::kNullValues);
  EXPECT_EQ(tbl.properties[2].quality[0].severity, RuleSeverity::kError);
  ASSERT_EQ(tbl.quality.size(), 1u);
  EXPECT_EQ(tbl.quality[0].metric, QualityMetric::kRowCount);
  EXPECT_EQ(tbl.quality[0].value, 1000000);
  EXPECT_EQ(doc.sla.size(), 8u);
  // Keys Canopy does not read are kept for export.
  bool kept_partitioned = false;
  for (const auto& extra : tbl.properties[0].extra) kept_partitioned |= extra.key == "partitioned";
  EXPECT_TRUE(kept_partitioned);
  bool kept_team = false;
  for (const auto& extra : doc.extra) kept_team |= extra.key == "team";
  EXPECT_TRUE(kept_team);
}

TEST(OdcsExamples, ValidityRuleReadsPercentAndValidValuesWithNull) {
  if (!test::HaveStandards()) GTEST_SKIP() << test::MissingStandards();
  Diagnostics diagnostics;
  OdcsDocument doc = Load("column-validity.odcs.yaml", diagnostics);
  ASSERT_EQ(doc.schema.size(), 1u);
  const auto& rule = doc.schema[0].properties[0].quality.at(0);
  EXPECT_EQ(rule.metric, QualityMetric::kInvalidValues);
  EXPECT_EQ(*rule.op, QualityOperator::kMustBeLessOrEqualTo);
  EXPECT_EQ(rule.value, 5);
  EXPECT_EQ(rule.unit, QualityUnit::kPercent);
  EXPECT_EQ(rule.valid_values, (std::vector<std::string>{"", "n/a"}));
  EXPECT_TRUE(rule.valid_values_has_null);
}

TEST(OdcsExamples, SqlRuleKeepsItsQuery) {
  if (!test::HaveStandards()) GTEST_SKIP() << test::MissingStandards();
  Diagnostics diagnostics;
  OdcsDocument doc = Load("column-accuracy.odcs.yaml", diagnostics);
  const auto& rule = doc.schema.at(0).properties.at(0).quality.at(0);
  EXPECT_EQ(rule.type, QualityType::kSql);
  EXPECT_NE(rule.query.find("DataValue <= 0"), std::string::npos);
}

TEST(OdcsDocuments, AMissingFileIsADiagnosticNotACrash) {
  Diagnostics diagnostics;
  OdcsDocument doc = LoadOdcsDocument("/nonexistent/x.yaml", "x.yaml", diagnostics);
  EXPECT_TRUE(diagnostics.HasErrors());
  EXPECT_TRUE(doc.schema.empty());
}

}  // namespace
}  // namespace canopy::spec
