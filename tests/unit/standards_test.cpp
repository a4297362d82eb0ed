// The open standards: ODCS and ODPS exports validated by the standards' own JSON
// schemas (through the shared validate-json tool), and every ODCS example imported
// into a mesh, validated, exported again and compared with the original.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "cli_support.h"
#include "core/error.h"
#include "scaffold/scaffold.h"
#include "spec/loader.h"
#include "spec/odcs.h"
#include "spec/validate.h"
#include "standards/standards.h"
#include "support/build_paths.h"
#include "support/test_store.h"

namespace fs = std::filesystem;

namespace canopy::standards {
namespace {

const std::string kDesign = std::string(canopy::test::kTestDir) + "/specs/base/design";
const std::vector<std::string> kDesignClassifications = {"public", "internal", "confidential",
                                                         "pii"};

fs::path TempDir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("canopy-standards-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string Read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void Write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out << text;
}

// A copy of tests/specs/base/design at `dir`, with `extra` classifications allowed.
fs::path CopyDesign(const fs::path& dir, const std::vector<std::string>& extra = {}) {
  fs::copy(kDesign, dir, fs::copy_options::recursive);
  if (!extra.empty()) {
    std::string mesh = Read(dir / "mesh.yaml");
    const std::string list = "classifications: [public, internal, confidential, pii";
    const auto at = mesh.find(list);
    EXPECT_NE(at, std::string::npos) << "mesh.yaml of the design mesh changed";
    std::string added;
    for (const auto& name : extra) added += ", " + name;
    if (at != std::string::npos) mesh.insert(at + list.size(), added);
    Write(dir / "mesh.yaml", mesh);
  }
  return dir;
}

// Loads and validates a mesh; every error fails the test.
spec::Mesh LoadValid(const fs::path& root) {
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(root.string(), diagnostics);
  spec::ValidateMesh(mesh, diagnostics);
  for (const auto& item : diagnostics.items()) {
    if (item.severity == Severity::kError) ADD_FAILURE() << item.Format();
  }
  return mesh;
}

// Runs the shared validator; returns its exit code, and its output in `output`.
int ValidateJson(const std::string& kind, const std::vector<fs::path>& files, std::string& output) {
  const fs::path log = fs::temp_directory_path() /
                       ("canopy-standards-validate-" + std::to_string(::getpid()) + ".log");
  std::string command = "'" + test::ValidateJsonTool().string() + "' " + kind;
  for (const auto& file : files) command += " '" + file.string() + "'";
  command += " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  output = Read(log);
  fs::remove(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The rest of the test still runs without ../shared; the test is reported skipped.
void ExpectValid(const std::string& kind, const std::vector<fs::path>& files) {
  ASSERT_FALSE(files.empty());
  if (!test::HaveShared()) GTEST_SKIP() << test::MissingStandards();
  std::string output;
  EXPECT_EQ(ValidateJson(kind, files, output), 0) << output;
  EXPECT_NE(output.find(std::to_string(files.size()) + " valid, 0 invalid"), std::string::npos)
      << output;
}

spec::OdcsDocument LoadOdcs(const fs::path& file) {
  Diagnostics diagnostics;
  auto doc = spec::LoadOdcsDocument(file.string(), file.filename().string(), diagnostics);
  for (const auto& item : diagnostics.items()) {
    if (item.severity == Severity::kError) ADD_FAILURE() << item.Format();
  }
  return doc;
}

spec::OdcsDocument LoadOdcsText(const fs::path& dir, const std::string& name,
                                const std::string& text) {
  Write(dir / name, text);
  return LoadOdcs(dir / name);
}

const spec::ExtraField* FindExtra(const std::vector<spec::ExtraField>& extras,
                                  const std::string& key) {
  for (const auto& extra : extras) {
    if (extra.key == key) return &extra;
  }
  return nullptr;
}

std::string RuleName(const spec::QualityRule& rule) {
  return std::string(spec::ToString(rule.metric)) + "/" +
         (rule.op ? spec::ToString(*rule.op) : "-") + " " + rule.query;
}

void ExpectSameRules(const std::vector<spec::QualityRule>& original,
                     const std::vector<spec::QualityRule>& exported, const std::string& where) {
  ASSERT_EQ(original.size(), exported.size()) << where;
  for (size_t i = 0; i < original.size(); ++i) {
    const auto& a = original[i];
    const auto& b = exported[i];
    const std::string at = where + " rule " + std::to_string(i) + " (" + RuleName(a) + ")";
    EXPECT_EQ(a.type, b.type) << at;
    EXPECT_EQ(a.metric, b.metric) << at;
    EXPECT_EQ(a.op, b.op) << at;
    EXPECT_EQ(a.value, b.value) << at;
    EXPECT_EQ(a.value_high, b.value_high) << at;
    EXPECT_EQ(a.unit, b.unit) << at;
    EXPECT_EQ(a.severity, b.severity) << at;
    EXPECT_EQ(a.query, b.query) << at;
    EXPECT_EQ(a.description, b.description) << at;
    EXPECT_EQ(std::set<std::string>(a.valid_values.begin(), a.valid_values.end()),
              std::set<std::string>(b.valid_values.begin(), b.valid_values.end()))
        << at;
    EXPECT_EQ(a.valid_values_has_null, b.valid_values_has_null) << at;
    EXPECT_EQ(a.pattern, b.pattern) << at;
    EXPECT_EQ(a.properties, b.properties) << at;
  }
}

// The parts of a contract that must survive import → export: schema objects and their
// properties (names, types, required/unique/primaryKey), classification and quality.
void ExpectSameSchema(const spec::OdcsDocument& original, const spec::OdcsDocument& exported,
                      const std::string& default_classification) {
  ASSERT_EQ(original.schema.size(), exported.schema.size());
  for (size_t i = 0; i < original.schema.size(); ++i) {
    const auto& a = original.schema[i];
    const auto& b = exported.schema[i];
    EXPECT_EQ(a.object_name, b.object_name);
    EXPECT_EQ(a.description, b.description) << a.object_name;
    ASSERT_EQ(a.properties.size(), b.properties.size()) << a.object_name;
    for (size_t j = 0; j < a.properties.size(); ++j) {
      const auto& p = a.properties[j];
      const auto& q = b.properties[j];
      const std::string at = a.object_name + "." + p.name;
      EXPECT_EQ(p.name, q.name) << at;
      EXPECT_EQ(p.physical_type, q.physical_type) << at;
      EXPECT_EQ(p.logical_type, q.logical_type) << at;
      EXPECT_EQ(p.required, q.required) << at;
      EXPECT_EQ(p.unique, q.unique) << at;
      EXPECT_EQ(p.primary_key, q.primary_key) << at;
      if (p.primary_key && p.primary_key_position > 0) {
        EXPECT_EQ(p.primary_key_position, q.primary_key_position) << at;
      }
      // A column the contract leaves unclassified is governed by the mesh default, and the
      // export says so.
      EXPECT_EQ(p.classification_given ? p.classification : default_classification,
                q.classification)
          << at;
      EXPECT_EQ(p.description, q.description) << at;
      EXPECT_EQ(p.tags, q.tags) << at;
      ExpectSameRules(p.quality, q.quality, at);
      // Every ODCS key Canopy keeps without reading comes back.
      for (const auto& extra : p.extra) {
        const auto* back = FindExtra(q.extra, extra.key);
        ASSERT_NE(back, nullptr) << at << " lost " << extra.key;
        EXPECT_EQ(YAML::Dump(YAML::Load(extra.yaml)), YAML::Dump(YAML::Load(back->yaml)))
            << at << "." << extra.key;
      }
    }
    ExpectSameRules(a.quality, b.quality, a.object_name);
  }
}

// --- ids ------------------------------------------------------------------------

TEST(StandardsIds, StableUuidShapedAndDistinct) {
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  const std::string id = OdcsContractId("sales", "orders");
  EXPECT_TRUE(std::regex_match(id, uuid)) << id;
  EXPECT_EQ(id, OdcsContractId("sales", "orders"));
  EXPECT_TRUE(std::regex_match(OdpsProductId("sales", "orders"), uuid));
  std::set<std::string> ids = {
      id, OdcsContractId("sales", "order"), OdcsContractId("sale", "sorders"),
      OdcsContractId("finance", "orders"), OdpsProductId("sales", "orders")};
  EXPECT_EQ(ids.size(), 5u);
}

// --- ODCS export ----------------------------------------------------------------

class StandardsOdcsExport : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir("odcs-export"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StandardsOdcsExport, DesignProductsAreValidContracts) {
  spec::Mesh mesh = LoadValid(kDesign);
  std::vector<fs::path> files;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      files.push_back(dir_ / (product.Address() + ".odcs.yaml"));
      Write(files.back(), ExportOdcs(mesh, product, std::nullopt));
    }
  }
  EXPECT_EQ(files.size(), 3u);
  ExpectValid("odcs", files);
}

TEST_F(StandardsOdcsExport, CarriesTheContractInOdcsVocabulary) {
  spec::Mesh mesh = LoadValid(kDesign);
  const spec::Product* orders = mesh.FindProduct("sales", "orders");
  ASSERT_NE(orders, nullptr);
  const std::string text = ExportOdcs(mesh, *orders, std::nullopt);
  auto doc = LoadOdcsText(dir_, "orders.odcs.yaml", text);
  EXPECT_EQ(doc.api_version, "v3.1.0");
  EXPECT_EQ(doc.id, OdcsContractId("sales", "orders"));
  EXPECT_EQ(doc.version, "1.2.0");
  EXPECT_EQ(doc.status, "active");
  EXPECT_EQ(doc.domain, "sales");
  EXPECT_EQ(doc.data_product, "orders");
  EXPECT_EQ(doc.description.usage, "Join with crm.customers");
  EXPECT_EQ(doc.tags, std::vector<std::string>{"revenue"});
  ASSERT_EQ(doc.schema.size(), 1u);
  const auto& object = doc.schema[0];
  EXPECT_EQ(object.object_name, "orders");
  const auto* physical_name = FindExtra(object.extra, "physicalName");
  ASSERT_NE(physical_name, nullptr);
  EXPECT_EQ(physical_name->yaml, "sales.orders");
  ASSERT_EQ(object.properties.size(), 4u);
  const auto& order_id = object.properties[0];
  EXPECT_EQ(order_id.physical_type, "BIGINT");
  EXPECT_EQ(order_id.logical_type, spec::LogicalType::kInteger);
  EXPECT_TRUE(order_id.required && order_id.unique && order_id.primary_key);
  EXPECT_EQ(order_id.primary_key_position, 1);
  EXPECT_EQ(object.properties[1].classification, "pii");
  EXPECT_EQ(object.properties[2].classification, "internal");  // the mesh default
  // Quality rules come back as Canopy reads them.
  ExpectSameRules(orders->outputs[0].contract.properties[3].quality, object.properties[3].quality,
                  "amount");
  ExpectSameRules(orders->outputs[0].contract.quality, object.quality, "orders");
  ASSERT_EQ(doc.sla.size(), 1u);
  EXPECT_EQ(doc.sla[0].property, "frequency");
  EXPECT_EQ(doc.sla[0].value, "1");
  EXPECT_EQ(doc.sla[0].unit, "d");
  // The owner is on the team.
  const auto* team = FindExtra(doc.extra, "team");
  ASSERT_NE(team, nullptr);
  EXPECT_NE(team->yaml.find("username: alice"), std::string::npos) << team->yaml;
  // Stable: the same product exports the same text.
  EXPECT_EQ(text, ExportOdcs(mesh, *orders, std::nullopt));
}

TEST_F(StandardsOdcsExport, PublishedTypesReplaceTheContractsWhenLive) {
  spec::Mesh mesh = LoadValid(kDesign);
  const spec::Product* orders = mesh.FindProduct("sales", "orders");
  ASSERT_NE(orders, nullptr);
  catalog::LiveVersion live;
  live.version = "1.2.0";
  live.build_id = "b-20250101-0001";
  live.published_at = "2025-01-01T00:00:00Z";
  catalog::PortRecord port;
  port.name = "orders";
  port.sql_name = "sales.orders";
  for (const auto& [name, type] :
       std::vector<std::pair<std::string, std::string>>{{"order_id", "BIGINT"},
                                                        {"email", "VARCHAR"},
                                                        {"region", "VARCHAR"},
                                                        {"amount", "DECIMAL(12,2)"}}) {
    catalog::ColumnRecord column;
    column.name = name;
    column.type = type;
    port.columns.push_back(column);
  }
  live.ports.push_back(port);
  const fs::path file = dir_ / "live.odcs.yaml";
  Write(file, ExportOdcs(mesh, *orders, live));
  ExpectValid("odcs", {file});
  auto doc = LoadOdcs(file);
  ASSERT_EQ(doc.schema.size(), 1u);
  ASSERT_EQ(doc.schema[0].properties.size(), 4u);
  EXPECT_EQ(doc.schema[0].properties[1].physical_type, "VARCHAR");
  EXPECT_EQ(doc.schema[0].properties[3].physical_type, "DECIMAL(12,2)");
  EXPECT_EQ(doc.schema[0].properties[3].logical_type, spec::LogicalType::kNumber);
  EXPECT_NE(Read(file).find("b-20250101-0001"), std::string::npos);

  // Without a live version the contract's types stand, and the ones it lacks stay out.
  auto spec_only = LoadOdcsText(dir_, "spec.odcs.yaml", ExportOdcs(mesh, *orders, std::nullopt));
  EXPECT_EQ(spec_only.schema[0].properties[3].physical_type, "");
  EXPECT_EQ(spec_only.schema[0].properties[0].physical_type, "BIGINT");
}

TEST_F(StandardsOdcsExport, EveryStatusMapsToOdcs) {
  spec::Mesh mesh = LoadValid(kDesign);
  spec::Product product = *mesh.FindProduct("crm", "customers");
  std::vector<fs::path> files;
  for (auto status : {spec::ProductStatus::kDraft, spec::ProductStatus::kActive,
                      spec::ProductStatus::kDeprecated, spec::ProductStatus::kRetired}) {
    product.status = status;
    files.push_back(dir_ / (std::string(spec::ToString(status)) + ".odcs.yaml"));
    Write(files.back(), ExportOdcs(mesh, product, std::nullopt));
    EXPECT_EQ(LoadOdcs(files.back()).status, spec::ToString(status));
  }
  ExpectValid("odcs", files);
}

// Kept ODCS keys come back where ODCS allows them; keys it does not allow there become
// customProperties so the document stays valid; document-level keys of a contract file
// are carried on; quality rules ODCS cannot say literally are said equivalently.
TEST_F(StandardsOdcsExport, KeptKeysAreReEmittedAndTheDocumentStaysValid) {
  const fs::path root = CopyDesign(dir_ / "mesh");
  Write(root / "domains/sales/contracts/returns.odcs.yaml", R"(apiVersion: v3.1.0
kind: DataContract
id: 11111111-2222-3333-4444-555555555555
version: 2.0.0
status: active
servers:
  - { server: warehouse, type: postgres, host: db, port: 5432, database: dw, schema: sales }
support:
  - { channel: "#returns", tool: slack }
team:
  name: returns-team
  members:
    - { username: dana, role: Data Steward }
customProperties:
  - { property: costCentre, value: 42 }
schema:
  - name: returns
    businessName: Returned order lines
    dataGranularityDescription: one row per returned line
    xCanopyTest: kept
    properties:
      - name: return_id
        physicalType: BIGINT
        logicalType: integer
        businessName: Return identifier
        criticalDataElement: true
        xRank: 3
        required: true
        quality:
          - { metric: duplicateValues, mustBeBetween: [0, 0], dimension: uniqueness }
          - { metric: nullValues, mustBe: 0, unit: percent, xOwner: dana }
      - name: reason
        logicalType: string
        examples: ["damaged", "late"]
        quality:
          - { metric: missingValues, mustBeLessThan: 10, unit: percent, arguments: { missingValues: [null, "", "n/a"] } }
          - { metric: invalidValues, mustBe: 0, arguments: { pattern: "^[a-z]+$" } }
          - { type: text, description: Reasons come from the returns form. }
    quality:
      - { type: sql, query: "select count(*) from {object}", mustBeGreaterOrEqualTo: 1, severity: warning, name: some_rows }
slaProperties:
  - { property: latency, value: 4, unit: h, driver: operational, xWeird: 1 }
)");
  Write(root / "domains/sales/products/returns.yaml", R"(apiVersion: canopy/v1
kind: DataProduct
name: returns
version: 2.0.0
owner: alice
transform:
  - { name: returns, sql: "select 1 as return_id, 'late' as reason" }
outputs:
  - { name: returns, contract_file: contracts/returns.odcs.yaml }
)");
  spec::Mesh mesh = LoadValid(root);
  const spec::Product* product = mesh.FindProduct("sales", "returns");
  ASSERT_NE(product, nullptr);
  const fs::path file = dir_ / "returns.odcs.yaml";
  Write(file, ExportOdcs(mesh, *product, std::nullopt));
  ExpectValid("odcs", {file});
  const std::string text = Read(file);
  auto doc = LoadOdcs(file);
  ASSERT_EQ(doc.schema.size(), 1u);
  const auto& object = doc.schema[0];
  EXPECT_NE(FindExtra(object.extra, "businessName"), nullptr);
  EXPECT_NE(FindExtra(object.extra, "dataGranularityDescription"), nullptr);
  ASSERT_NE(FindExtra(object.extra, "customProperties"), nullptr);
  EXPECT_NE(FindExtra(object.extra, "customProperties")->yaml.find("xCanopyTest"),
            std::string::npos);
  const auto& id = object.properties[0];
  EXPECT_NE(FindExtra(id.extra, "businessName"), nullptr);
  EXPECT_NE(FindExtra(id.extra, "criticalDataElement"), nullptr);
  ASSERT_NE(FindExtra(id.extra, "customProperties"), nullptr);
  EXPECT_NE(FindExtra(id.extra, "customProperties")->yaml.find("xRank"), std::string::npos);
  // mustBeBetween [0, 0] has equal bounds, which ODCS forbids: it is mustBe 0.
  ASSERT_EQ(id.quality.size(), 2u);
  EXPECT_EQ(id.quality[0].op, spec::QualityOperator::kMustBe);
  EXPECT_EQ(id.quality[0].value, 0);
  EXPECT_NE(FindExtra(id.quality[0].extra, "dimension"), nullptr);
  EXPECT_EQ(id.quality[1].unit, spec::QualityUnit::kPercent);
  const auto& reason = object.properties[1];
  ExpectSameRules(product->outputs[0].contract.properties[1].quality, reason.quality, "reason");
  EXPECT_TRUE(reason.quality[0].valid_values_has_null);
  EXPECT_EQ(reason.quality[2].type, spec::QualityType::kText);
  ExpectSameRules(product->outputs[0].contract.quality, object.quality, "returns");
  EXPECT_EQ(object.quality[0].name, "some_rows");
  // Examples stay strings.
  EXPECT_NE(text.find("examples: [damaged, late]"), std::string::npos) << text;
  // Document-level keys of the contract file: kept; the file's team joins Canopy's.
  EXPECT_NE(FindExtra(doc.extra, "servers"), nullptr);
  EXPECT_NE(FindExtra(doc.extra, "support"), nullptr);
  const auto* team = FindExtra(doc.extra, "team");
  ASSERT_NE(team, nullptr);
  EXPECT_NE(team->yaml.find("alice"), std::string::npos);
  EXPECT_NE(team->yaml.find("dana"), std::string::npos);
  const auto* custom = FindExtra(doc.extra, "customProperties");
  ASSERT_NE(custom, nullptr);
  EXPECT_NE(custom->yaml.find("costCentre"), std::string::npos);
  EXPECT_NE(custom->yaml.find("canopyAddress"), std::string::npos);
  // The id is Canopy's, not the file's.
  EXPECT_EQ(doc.id, OdcsContractId("sales", "returns"));
  ASSERT_EQ(doc.sla.size(), 1u);
  EXPECT_EQ(doc.sla[0].property, "latency");
  EXPECT_NE(FindExtra(doc.sla[0].extra, "driver"), nullptr);
}

// --- ODPS export ----------------------------------------------------------------

class StandardsOdpsExport : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir("odps-export"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StandardsOdpsExport, DesignProductsAreValidProducts) {
  spec::Mesh mesh = LoadValid(kDesign);
  std::vector<fs::path> files;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      files.push_back(dir_ / (product.Address() + ".odps.yaml"));
      Write(files.back(), ExportOdps(mesh, product, std::nullopt));
    }
  }
  EXPECT_EQ(files.size(), 3u);
  ExpectValid("odps", files);
}

TEST_F(StandardsOdpsExport, PortsNameTheContractIds) {
  spec::Mesh mesh = LoadValid(kDesign);
  const spec::Product* revenue = mesh.FindProduct("finance", "revenue");
  ASSERT_NE(revenue, nullptr);
  catalog::LiveVersion live;
  live.version = "0.1.0";
  live.build_id = "b-2";
  live.input_versions["sales.orders"] = "b-1";
  const std::string text = ExportOdps(mesh, *revenue, live);
  Write(dir_ / "revenue.odps.yaml", text);
  ExpectValid("odps", {dir_ / "revenue.odps.yaml"});
  YAML::Node doc = YAML::Load(text);
  EXPECT_EQ(doc["apiVersion"].as<std::string>(), "v1.0.0");
  EXPECT_EQ(doc["id"].as<std::string>(), OdpsProductId("finance", "revenue"));
  EXPECT_EQ(doc["status"].as<std::string>(), "active");
  EXPECT_EQ(doc["domain"].as<std::string>(), "finance");
  EXPECT_EQ(doc["version"].as<std::string>(), "0.1.0");
  ASSERT_EQ(doc["inputPorts"].size(), 1u);
  EXPECT_EQ(doc["inputPorts"][0]["name"].as<std::string>(), "orders");
  EXPECT_EQ(doc["inputPorts"][0]["version"].as<std::string>(), "1.2.0");
  EXPECT_EQ(doc["inputPorts"][0]["contractId"].as<std::string>(),
            OdcsContractId("sales", "orders"));
  EXPECT_NE(YAML::Dump(doc["inputPorts"][0]["customProperties"]).find("b-1"), std::string::npos);
  ASSERT_EQ(doc["outputPorts"].size(), 1u);
  EXPECT_EQ(doc["outputPorts"][0]["name"].as<std::string>(), "revenue");
  EXPECT_EQ(doc["outputPorts"][0]["contractId"].as<std::string>(),
            OdcsContractId("finance", "revenue"));
  EXPECT_EQ(doc["outputPorts"][0]["inputContracts"][0]["id"].as<std::string>(),
            OdcsContractId("sales", "orders"));
  EXPECT_EQ(doc["team"]["members"][0]["username"].as<std::string>(), "fay");
  EXPECT_EQ(doc["team"]["members"][0]["role"].as<std::string>(), "owner");

  // The contract id an ODPS output port names is the id of the product's ODCS export.
  auto contract = LoadOdcsText(dir_, "revenue.odcs.yaml", ExportOdcs(mesh, *revenue, live));
  EXPECT_EQ(contract.id, doc["outputPorts"][0]["contractId"].as<std::string>());

  // File inputs have no contract: they are listed, not made input ports.
  const spec::Product* orders = mesh.FindProduct("sales", "orders");
  YAML::Node orders_doc = YAML::Load(ExportOdps(mesh, *orders, std::nullopt));
  ASSERT_EQ(orders_doc["inputPorts"].size(), 1u);
  EXPECT_EQ(orders_doc["inputPorts"][0]["contractId"].as<std::string>(),
            OdcsContractId("crm", "customers"));
  EXPECT_NE(YAML::Dump(orders_doc["customProperties"]).find("data/orders.csv"), std::string::npos);
}

// --- the acme example -------------------------------------------------------------

class StandardsAcme : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    canopy::test::ShareCatalogInSuite();
    dir_ = new fs::path(TempDir("acme"));
    scaffold::WriteExampleMesh((*dir_ / "mesh").string(), 0.001, false);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static fs::path* dir_;
};
fs::path* StandardsAcme::dir_ = nullptr;

TEST_F(StandardsAcme, EveryProductExportsValidOdcsAndOdps) {
  spec::Mesh mesh = LoadValid(*dir_ / "mesh");
  std::vector<fs::path> odcs;
  std::vector<fs::path> odps;
  std::set<std::string> ids;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      odcs.push_back(*dir_ / "out" / (product.Address() + ".odcs.yaml"));
      Write(odcs.back(), ExportOdcs(mesh, product, std::nullopt));
      odps.push_back(*dir_ / "out" / (product.Address() + ".odps.yaml"));
      Write(odps.back(), ExportOdps(mesh, product, std::nullopt));
      auto doc = LoadOdcs(odcs.back());
      ids.insert(doc.id);
      // Every port is a schema object, every column a property.
      ASSERT_EQ(doc.schema.size(), product.outputs.size()) << product.Address();
      for (size_t i = 0; i < product.outputs.size(); ++i) {
        EXPECT_EQ(doc.schema[i].properties.size(), product.outputs[i].contract.properties.size());
        ExpectSameRules(product.outputs[i].contract.quality, doc.schema[i].quality,
                        product.Address());
      }
    }
  }
  EXPECT_GE(odcs.size(), 8u);
  EXPECT_EQ(ids.size(), odcs.size());
  ExpectValid("odcs", odcs);
  ExpectValid("odps", odps);
}

// --- ODCS import ------------------------------------------------------------------

std::vector<std::string> ExampleFiles() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(test::StandardsDir() / "odcs", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 10 && name.substr(name.size() - 10) == ".odcs.yaml") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Classifications an ODCS document uses that the design mesh does not list.
std::vector<std::string> MissingClassifications(const spec::OdcsDocument& doc) {
  std::set<std::string> missing;
  for (const auto& object : doc.schema) {
    for (const auto& property : object.properties) {
      if (property.classification_given &&
          std::find(kDesignClassifications.begin(), kDesignClassifications.end(),
                    property.classification) == kDesignClassifications.end()) {
        missing.insert(property.classification);
      }
    }
  }
  return {missing.begin(), missing.end()};
}

void WriteImport(const fs::path& root, const std::string& domain, const ImportResult& result) {
  for (const auto& [file, text] : result.files) Write(root / "domains" / domain / file, text);
}

TEST(StandardsImport, TheExamplesAreThere) {
  if (!test::HaveShared()) GTEST_SKIP() << test::MissingStandards();
  EXPECT_GE(ExampleFiles().size(), 8u);
}

// Without ../shared there are no examples to instantiate it with.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StandardsRoundTrip);

class StandardsRoundTrip : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = GetParam();
    for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) != 0 ? c : '_';
    dir_ = TempDir("roundtrip-" + name);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// import → validate → export → the schema, classifications and quality rules are the
// original's, and both the export and the draft's ODPS document are valid.
TEST_P(StandardsRoundTrip, ImportsValidatesAndExportsTheSameContract) {
  if (!test::HaveShared()) GTEST_SKIP() << test::MissingStandards();
  const fs::path source = test::StandardsDir() / "odcs" / GetParam();
  const spec::OdcsDocument original = LoadOdcs(source);
  const fs::path root = CopyDesign(dir_ / "mesh", MissingClassifications(original));
  spec::Mesh before = LoadValid(root);
  const ImportResult result = ImportOdcs(before, source.string(), "sales", "");
  ASSERT_FALSE(result.product_name.empty());
  ASSERT_EQ(result.files.size(), 2u);
  EXPECT_EQ(result.files[0].first, "products/" + result.product_name + ".yaml");
  EXPECT_EQ(result.files[1].first, "contracts/" + result.product_name + ".odcs.yaml");
  EXPECT_EQ(result.files[1].second, Read(source)) << "the contract is kept as given";
  EXPECT_FALSE(result.next_steps.empty());
  WriteImport(root, "sales", result);

  spec::Mesh mesh = LoadValid(root);
  const spec::Product* product = mesh.FindProduct("sales", result.product_name);
  ASSERT_NE(product, nullptr);
  EXPECT_EQ(product->status, spec::ProductStatus::kDraft);
  EXPECT_TRUE(product->transform.empty());
  EXPECT_TRUE(product->inputs.empty());
  ASSERT_EQ(product->outputs.size(), original.schema.size());
  for (size_t i = 0; i < product->outputs.size(); ++i) {
    EXPECT_TRUE(spec::IsSqlName(product->outputs[i].name));
    EXPECT_EQ(product->outputs[i].contract.object_name, original.schema[i].object_name);
    EXPECT_TRUE(product->outputs[i].from.empty());
  }

  const fs::path odcs = dir_ / "export.odcs.yaml";
  const fs::path odps = dir_ / "export.odps.yaml";
  Write(odcs, ExportOdcs(mesh, *product, std::nullopt));
  Write(odps, ExportOdps(mesh, *product, std::nullopt));
  ExpectValid("odcs", {odcs});
  ExpectValid("odps", {odps});
  const spec::OdcsDocument exported = LoadOdcs(odcs);
  ExpectSameSchema(original, exported, mesh.governance.default_classification);
  EXPECT_EQ(exported.version, original.version);
  EXPECT_EQ(exported.status, "draft");
  if (!original.schema.empty()) {
    // The SLA every port carries comes back once.
    EXPECT_EQ(exported.sla.size(), original.sla.size());
  }
}

INSTANTIATE_TEST_SUITE_P(StandardsExamples, StandardsRoundTrip, ::testing::ValuesIn(ExampleFiles()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (char& c : name) {
                             if (std::isalnum(static_cast<unsigned char>(c)) == 0) c = '_';
                           }
                           return name;
                         });

class StandardsImportTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir("import"); }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string Example(const std::string& name) {
    return (test::StandardsDir() / "odcs" / name).string();
  }
  fs::path dir_;
};

TEST_F(StandardsImportTest, NamesTheProductAndPortsFromTheDocument) {
  if (!test::HaveShared()) GTEST_SKIP() << test::MissingStandards();
  const fs::path root = CopyDesign(dir_ / "mesh", {"restricted"});
  spec::Mesh mesh = LoadValid(root);
  // full-example has no name, and dataProduct "my quantum".
  auto result = ImportOdcs(mesh, Example("full-example.odcs.yaml"), "finance", "");
  EXPECT_EQ(result.product_name, "my_quantum");
  YAML::Node product = YAML::Load(result.files[0].second);
  EXPECT_EQ(product["name"].as<std::string>(), "my_quantum");
  EXPECT_EQ(product["status"].as<std::string>(), "draft");
  EXPECT_EQ(product["version"].as<std::string>(), "1.1.0");
  EXPECT_EQ(product["owner"].as<std::string>(), "fay");  // finance's owner
  EXPECT_FALSE(product["transform"]);
  EXPECT_FALSE(product["inputs"]);
  ASSERT_EQ(product["outputs"].size(), 2u);
  EXPECT_EQ(product["outputs"][0]["name"].as<std::string>(), "tbl");
  EXPECT_EQ(product["outputs"][0]["contract_file"].as<std::string>(),
            "contracts/my_quantum.odcs.yaml");
  EXPECT_EQ(product["outputs"][0]["contract_object"].as<std::string>(), "tbl");
  EXPECT_EQ(product["outputs"][1]["name"].as<std::string>(), "receivers");
  EXPECT_EQ(product["description"]["usage"].as<std::string>(), "Predict sales over time");

  // Object names that are no SQL names become port names that are.
  auto air = ImportOdcs(mesh, Example("column-accuracy.odcs.yaml"), "finance", "");
  EXPECT_EQ(air.product_name, "my_table");
  YAML::Node air_product = YAML::Load(air.files[0].second);
  EXPECT_EQ(air_product["outputs"][0]["name"].as<std::string>(), "air_quality");
  EXPECT_EQ(air_product["outputs"][0]["contract_object"].as<std::string>(), "Air_Quality");
  bool told = false;
  for (const auto& step : air.next_steps)
    told = told || step.find("air_quality") != std::string::npos;
  EXPECT_TRUE(told);

  // A given name is used as it is.
  EXPECT_EQ(
      ImportOdcs(mesh, Example("table-column.odcs.yaml"), "finance", "receivers_v2").product_name,
      "receivers_v2");
}

TEST_F(StandardsImportTest, ReportsClassificationsTheMeshLacksWithoutChangingThem) {
  if (!test::HaveShared()) GTEST_SKIP() << test::MissingStandards();
  const fs::path root = CopyDesign(dir_ / "mesh");
  spec::Mesh mesh = LoadValid(root);
  auto result = ImportOdcs(mesh, Example("full-example.odcs.yaml"), "sales", "");
  std::string steps;
  for (const auto& step : result.next_steps) steps += step + "\n";
  EXPECT_NE(steps.find("Add classification 'restricted' to governance.classifications"),
            std::string::npos)
      << steps;
  EXPECT_NE(steps.find("tbl.rcvr_id"), std::string::npos) << steps;
  EXPECT_NE(steps.find("inputs"), std::string::npos) << steps;
  EXPECT_NE(steps.find("Add a transform"), std::string::npos) << steps;
  EXPECT_NE(steps.find("owner"), std::string::npos) << steps;
  // The contract is written as given, so the mesh does not validate until it allows them.
  EXPECT_EQ(result.files[1].second, Read(Example("full-example.odcs.yaml")));
  EXPECT_EQ(Read(root / "mesh.yaml"), Read(fs::path(kDesign) / "mesh.yaml"));
  WriteImport(root, "sales", result);
  Diagnostics diagnostics;
  spec::Mesh after = spec::LoadMesh(root.string(), diagnostics);
  spec::ValidateMesh(after, diagnostics);
  int restricted = 0;
  for (const auto& item : diagnostics.items()) {
    if (item.severity == Severity::kError &&
        item.message.find("'restricted'") != std::string::npos) {
      ++restricted;
    }
  }
  EXPECT_EQ(restricted, 3);  // tbl.rcvr_id, receivers.id and receivers.receiver_name
  EXPECT_EQ(diagnostics.ErrorCount(), restricted);

  // An example that uses the mesh's classifications only has nothing to add.
  auto plain = ImportOdcs(mesh, Example("table-column.odcs.yaml"), "sales", "");
  for (const auto& step : plain.next_steps) {
    EXPECT_EQ(step.find("Add classification"), std::string::npos) << step;
  }
}

TEST_F(StandardsImportTest, PortNamesTakenInTheDomainAreNotReused) {
  if (!test::HaveShared()) GTEST_SKIP() << test::MissingStandards();
  const fs::path root = CopyDesign(dir_ / "mesh");
  spec::Mesh mesh = LoadValid(root);
  auto first = ImportOdcs(mesh, Example("table-column.odcs.yaml"), "sales", "first");
  WriteImport(root, "sales", first);
  mesh = LoadValid(root);
  auto second = ImportOdcs(mesh, Example("table-column.odcs.yaml"), "sales", "second");
  EXPECT_EQ(YAML::Load(second.files[0].second)["outputs"][0]["name"].as<std::string>(),
            "second_tbl");
  WriteImport(root, "sales", second);
  mesh = LoadValid(root);
  EXPECT_NE(mesh.FindPort("sales", "tbl").first, nullptr);
  EXPECT_NE(mesh.FindPort("sales", "second_tbl").first, nullptr);
}

TEST_F(StandardsImportTest, RefusesWhatItCannotImport) {
  if (!test::HaveShared()) GTEST_SKIP() << test::MissingStandards();
  const fs::path root = CopyDesign(dir_ / "mesh");
  spec::Mesh mesh = LoadValid(root);
  auto code_of = [&](const std::string& file, const std::string& domain,
                     const std::string& name) -> int {
    try {
      ImportOdcs(mesh, file, domain, name);
    } catch (const Error& e) {
      return static_cast<int>(e.code());
    }
    return -1;
  };
  const auto code = [](ErrorCode value) { return static_cast<int>(value); };
  const std::string good = Example("table-column.odcs.yaml");
  EXPECT_EQ(code_of(good, "sales", "orders"), code(ErrorCode::kConflict));
  EXPECT_EQ(code_of(good, "salse", ""), code(ErrorCode::kNotFound));
  EXPECT_EQ(code_of(good, "sales", "My Table"), code(ErrorCode::kUsage));
  EXPECT_EQ(code_of((dir_ / "missing.odcs.yaml").string(), "sales", ""),
            code(ErrorCode::kNotFound));
  // A file left where the product would go is not overwritten.
  Write(root / "domains/sales/contracts/my_table.odcs.yaml", "kept");
  EXPECT_EQ(code_of(good, "sales", ""), code(ErrorCode::kConflict));
  EXPECT_EQ(code_of(good, "sales", "other"), -1);

  // A document that does not load: every problem, with its file:line:col.
  const fs::path broken = dir_ / "broken.odcs.yaml";
  Write(broken, R"(apiVersion: v3.1.0
kind: DataContract
id: x
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: a
        logicalType: strnig
        quality:
          - { metric: nullValue, mustBe: 0 }
)");
  try {
    ImportOdcs(mesh, broken.string(), "sales", "");
    FAIL() << "a broken contract must not import";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    const std::string message = e.what();
    EXPECT_NE(message.find(broken.string() + ":10:"), std::string::npos) << message;
    EXPECT_NE(message.find("error: unknown logicalType 'strnig'"), std::string::npos) << message;
    EXPECT_NE(message.find(broken.string() + ":12:"), std::string::npos) << message;
    EXPECT_NE(message.find("nullValue"), std::string::npos) << message;
  }
  Write(broken, "kind: DataContract\nschema: [ { name: t\n");
  EXPECT_EQ(code_of(broken.string(), "sales", ""), code(ErrorCode::kInvalidInput));
}

}  // namespace
}  // namespace canopy::standards
