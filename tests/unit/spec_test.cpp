#include <gtest/gtest.h>

#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"

namespace canopy::spec {
namespace {

const std::string kDesignMesh = std::string(canopy::test::kTestDir) + "/specs/base/design";

class DesignMeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mesh_ = LoadMesh(kDesignMesh, diagnostics_);
    ValidateMesh(mesh_, diagnostics_);
  }
  Diagnostics diagnostics_;
  Mesh mesh_;
};

TEST_F(DesignMeshTest, LoadsWithoutProblems) {
  for (const auto& d : diagnostics_.items()) ADD_FAILURE() << d.Format();
  EXPECT_EQ(mesh_.name, "acme");
  ASSERT_EQ(mesh_.domains.size(), 3u);
  EXPECT_EQ(mesh_.domains[0].name, "crm");  // domains are read in folder order
  EXPECT_EQ(mesh_.domains[0].folder, "domains/crm");
}

TEST_F(DesignMeshTest, ReadsPrincipalsAndGovernance) {
  const User* alice = mesh_.FindUser("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->groups, std::vector<std::string>{"sales-team"});
  EXPECT_EQ(alice->attributes.at("region"), "EU");
  EXPECT_EQ(alice->clearances, std::vector<std::string>{"pii"});
  EXPECT_EQ(alice->location.ToString(), "mesh.yaml:9:7");
  ASSERT_NE(mesh_.FindGroup("platform"), nullptr);
  EXPECT_TRUE(mesh_.FindGroup("platform")->admin);
  EXPECT_FALSE(mesh_.FindGroup("analysts")->admin);
  ASSERT_EQ(mesh_.principals.domains.size(), 1u);
  EXPECT_EQ(mesh_.principals.domains[0].clearances, std::vector<std::string>{"confidential"});
  ASSERT_EQ(mesh_.governance.masks.size(), 1u);
  EXPECT_EQ(mesh_.governance.masks[0].method, MaskMethod::kHash);
  ASSERT_EQ(mesh_.governance.rules.size(), 1u);
  EXPECT_EQ(mesh_.governance.rules[0].name, "product-has-owner");
  // No limits in the file: the safe defaults apply.
  EXPECT_EQ(mesh_.limits.query.max_rows, 1'000'000);
  EXPECT_GT(mesh_.limits.query.timeout_ms, 0);
}

TEST_F(DesignMeshTest, ReadsAProductWithItsInputsModelsAndPorts) {
  const Product* orders = mesh_.FindProduct("sales", "orders");
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->Address(), "sales.orders");
  EXPECT_EQ(orders->version.ToString(), "1.2.0");
  EXPECT_EQ(orders->status, ProductStatus::kActive);
  EXPECT_EQ(orders->type, ProductType::kSourceAligned);
  EXPECT_EQ(orders->visibility, Visibility::kInternal);
  EXPECT_EQ(orders->owner, "alice");
  EXPECT_EQ(orders->description.purpose, "One row per order line, cleansed");
  EXPECT_EQ(orders->file, "domains/sales/products/orders.yaml");

  ASSERT_EQ(orders->grants.size(), 2u);
  EXPECT_EQ(orders->grants[0].ToString(), "domain:finance");
  EXPECT_EQ(orders->grants[1].ToString(), "group:analysts");

  ASSERT_EQ(orders->inputs.size(), 2u);
  EXPECT_EQ(*orders->inputs[0].file, "data/orders.csv");
  EXPECT_EQ(orders->inputs[0].format, FileFormat::kCsv);
  ASSERT_TRUE(orders->inputs[1].product.has_value());
  EXPECT_EQ(orders->inputs[1].product->ToString(), "crm.customers");

  ASSERT_EQ(orders->transform.size(), 2u);
  EXPECT_EQ(orders->transform[0].sql, "select * from raw_orders where order_id is not null");
  EXPECT_NE(orders->transform[1].sql.find("join customers"), std::string::npos);
  EXPECT_EQ(orders->transform[1].sql_location.ToString(), "domains/sales/sql/orders.sql:1:1");

  ASSERT_EQ(orders->outputs.size(), 1u);
  const OutputPort& port = orders->outputs[0];
  EXPECT_EQ(port.from, "orders");
  ASSERT_EQ(port.contract.properties.size(), 4u);
  const Property& id = port.contract.properties[0];
  EXPECT_EQ(id.physical_type, "BIGINT");
  EXPECT_EQ(id.logical_type, LogicalType::kInteger);
  EXPECT_TRUE(id.required && id.unique && id.primary_key);
  EXPECT_EQ(id.classification, "internal");  // the mesh default
  EXPECT_FALSE(id.classification_given);
  EXPECT_EQ(port.contract.properties[1].classification, "pii");
  ASSERT_EQ(port.contract.properties[3].quality.size(), 1u);
  EXPECT_EQ(port.contract.properties[3].quality[0].metric, QualityMetric::kNullValues);
  EXPECT_EQ(*port.contract.properties[3].quality[0].op, QualityOperator::kMustBe);

  ASSERT_EQ(port.contract.quality.size(), 2u);
  EXPECT_EQ(port.contract.quality[0].metric, QualityMetric::kRowCount);
  EXPECT_EQ(*port.contract.quality[0].op, QualityOperator::kMustBeGreaterThan);
  EXPECT_EQ(port.contract.quality[1].type, QualityType::kSql);
  EXPECT_EQ(port.contract.quality[1].query, "select count(*) from {object} where amount < 0");
  ASSERT_EQ(port.sla.size(), 1u);
  EXPECT_EQ(port.sla[0].property, "frequency");
  EXPECT_EQ(port.sla[0].value, "1");
  EXPECT_EQ(port.sla[0].unit, "d");

  ASSERT_EQ(orders->row_filters.size(), 1u);
  EXPECT_EQ(orders->row_filters[0].where, "region = principal_attr('region')");
  EXPECT_EQ(orders->row_filters[0].exempt[0].ToString(), "group:analysts");
}

TEST_F(DesignMeshTest, DefaultsFromToTheModelNamedLikeThePort) {
  const Product* customers = mesh_.FindProduct("crm", "customers");
  ASSERT_NE(customers, nullptr);
  EXPECT_EQ(customers->outputs[0].from, "customers");
  EXPECT_EQ(customers->status, ProductStatus::kActive);  // the default
  auto [product, port] = mesh_.FindPort("crm", "customers");
  EXPECT_EQ(product, customers);
  ASSERT_NE(port, nullptr);
  EXPECT_EQ(mesh_.FindPort("crm", "nope").first, nullptr);
}

TEST(Names, FollowTheIdentifierRules) {
  EXPECT_TRUE(IsSqlName("orders"));
  EXPECT_TRUE(IsSqlName("_stg_2"));
  EXPECT_FALSE(IsSqlName("Orders"));
  EXPECT_FALSE(IsSqlName("2orders"));
  EXPECT_FALSE(IsSqlName("order-lines"));
  EXPECT_FALSE(IsSqlName(""));
  EXPECT_FALSE(IsSqlName(std::string(64, 'a')));
  EXPECT_TRUE(IsPrincipalName("dana.smith"));
  EXPECT_TRUE(IsPrincipalName("sales-team"));
  EXPECT_FALSE(IsPrincipalName("-x"));
  EXPECT_FALSE(IsPrincipalName("Dana"));
}

}  // namespace
}  // namespace canopy::spec
