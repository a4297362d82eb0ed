// Products written by hand, read back as builder flows: each model's SELECT mapped onto
// the blocks that compute it, refused with the model and the construct named when no
// block holds it, and checked by round trip — the original models and the flow's
// compiled ones give the same rows on the same data (FromSqlTest).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "builder/flow.h"
#include "builder/from_sql.h"
#include "core/diagnostics.h"
#include "engine/engine.h"
#include "spec/loader.h"
#include "spec/model.h"
#include "support/build_paths.h"

using nlohmann::json;
using namespace canopy;

namespace {

spec::Product Product(const std::vector<std::pair<std::string, std::string>>& models,
                      const std::string& from = "") {
  spec::Product product;
  product.domain = "sales";
  product.name = "hand";
  product.description.purpose = "written by hand";
  for (const char* port : {"orders", "customers"}) {
    spec::ProductInput input;
    input.name = port;
    input.product = spec::PortRef{"sales", port, {}};
    product.inputs.push_back(input);
  }
  for (const auto& [name, sql] : models) {
    spec::Model model;
    model.name = name;
    model.sql = sql;
    product.transform.push_back(model);
  }
  spec::OutputPort port;
  port.name = "hand";
  port.from = from.empty() ? models.back().first : from;
  spec::Property id;
  id.name = "region";
  id.required = true;
  id.description = "the region";
  port.contract.properties.push_back(id);
  product.outputs.push_back(port);
  return product;
}

class FromSqlTest : public ::testing::Test {
 protected:
  FromSqlTest() : parsing_(engine::WithoutFileAccess()), parser_(parsing_), data_(database_) {
    builder::MakeSample(data_, "orders",
                        {{"order_id", "BIGINT"},
                         {"customer_id", "BIGINT"},
                         {"amount", "DECIMAL(10,2)"},
                         {"region", "VARCHAR"}});
    builder::MakeSample(data_, "customers",
                        {{"id", "BIGINT"}, {"name", "VARCHAR"}, {"region", "VARCHAR"}});
  }

  builder::Flow Convert(const spec::Product& product) {
    const auto conversion = builder::FlowFromProduct(product, parser_);
    EXPECT_TRUE(conversion.flow.has_value()) << conversion.reason;
    if (!conversion.flow) return {};
    EXPECT_EQ(builder::CompareRoundTrip(product, *conversion.flow, data_), "");
    return *conversion.flow;
  }

  std::string Refused(const std::string& sql) {
    const auto conversion = builder::FlowFromProduct(Product({{"m", sql}}), parser_);
    EXPECT_FALSE(conversion.flow.has_value()) << sql;
    return conversion.reason;
  }

  static std::vector<std::string> TypesOf(const builder::Flow& flow) {
    std::vector<std::string> out;
    for (const auto& block : flow.blocks) out.push_back(builder::ToString(block.type));
    return out;
  }

  engine::Database parsing_;
  engine::Connection parser_;
  engine::Database database_;
  engine::Connection data_;
};

using Types = std::vector<std::string>;

TEST_F(FromSqlTest, AFilterThenAnAggregate) {
  const auto flow = Convert(Product(
      {{"totals",
        "select region, sum(amount) as total, count(*) as n, count(distinct customer_id) as "
        "buyers\nfrom orders\nwhere (amount > 1 and region like 'a%') or region is null\n"
        "group by region"}}));
  EXPECT_EQ(TypesOf(flow), (Types{"source", "source", "filter", "aggregate", "output"}));
  const builder::Block* filter = flow.Find("totals_filter");
  ASSERT_NE(filter, nullptr);
  EXPECT_EQ(filter->where.group, "or");
  ASSERT_EQ(filter->where.conditions.size(), 2u);
  EXPECT_EQ(filter->where.conditions[0].conditions[1].op, "starts_with");
  const builder::Block* aggregate = flow.Find("totals");
  ASSERT_NE(aggregate, nullptr);
  EXPECT_EQ(aggregate->group_by, std::vector<std::string>{"region"});
  ASSERT_EQ(aggregate->measures.size(), 3u);
  EXPECT_EQ(aggregate->measures[2].function, "count_distinct");
  const builder::Block* output = flow.Find("out_hand");
  ASSERT_NE(output, nullptr);
  EXPECT_EQ(output->port_name, "hand");
  EXPECT_TRUE(output->column_info.at("region").required);
  EXPECT_EQ(output->column_info.at("region").description, "the region");
  EXPECT_EQ(flow.name, "hand");
  EXPECT_EQ(json::parse(flow.text)["product"]["purpose"], "written by hand");
}

TEST_F(FromSqlTest, AJoinThenAColumnList) {
  const auto flow = Convert(
      Product({{"joined",
                "select o.order_id, c.name as customer from orders o left join customers as c on "
                "o.customer_id = c.id"}}));
  EXPECT_EQ(TypesOf(flow), (Types{"source", "source", "join", "select", "output"}));
  const builder::Block* join = flow.Find("joined_join");
  ASSERT_NE(join, nullptr);
  EXPECT_EQ(join->how, "left");
  EXPECT_EQ(join->inputs, (std::vector<std::string>{"orders", "customers"}));
  ASSERT_EQ(join->on.size(), 1u);
  EXPECT_EQ(join->on[0].left, "customer_id");
  EXPECT_EQ(join->on[0].right, "id");
}

TEST_F(FromSqlTest, ADerivedColumnKeepsItsExpression) {
  const auto flow = Convert(
      Product({{"d", "select *, amount * 2 + coalesce(customer_id, 0) as score from orders"}}));
  EXPECT_EQ(TypesOf(flow), (Types{"source", "source", "derive", "output"}));
  const builder::Block* derive = flow.Find("d");
  ASSERT_NE(derive, nullptr);
  EXPECT_EQ(derive->name, "score");
  EXPECT_NE(derive->expression.find("COALESCE(customer_id, 0)"), std::string::npos)
      << derive->expression;
}

TEST_F(FromSqlTest, AColumnListRenamesAndComputes) {
  const auto flow = Convert(Product(
      {{"s", "select order_id as id, region, cast(amount as bigint) as amount from orders"}}));
  EXPECT_EQ(TypesOf(flow), (Types{"source", "source", "derive", "select", "output"}));
  const builder::Block* select = flow.Find("s");
  ASSERT_NE(select, nullptr);
  ASSERT_EQ(select->columns.size(), 3u);
  EXPECT_EQ(select->columns[0].as, "id");
  EXPECT_EQ(select->columns[2].column, "amount_new");
  EXPECT_EQ(select->columns[2].as, "amount");
}

TEST_F(FromSqlTest, AnOrderAndALimitAreASort) {
  const auto flow = Convert(
      Product({{"top", "select distinct * from orders order by amount desc, order_id limit 3"}}));
  EXPECT_EQ(TypesOf(flow), (Types{"source", "source", "distinct", "sort", "output"}));
  const builder::Block* sort = flow.Find("top");
  ASSERT_NE(sort, nullptr);
  ASSERT_EQ(sort->order.size(), 2u);
  EXPECT_TRUE(sort->order[0].descending);
  EXPECT_EQ(sort->limit, 3);
}

TEST_F(FromSqlTest, ModelsChainAndUnionsByName) {
  const auto flow =
      Convert(Product({{"eu", "select * from orders where region = 'a'"},
                       {"rest", "select * from orders where region != 'a'"},
                       {"every", "select * from eu union all by name select * from rest"}}));
  EXPECT_EQ(TypesOf(flow), (Types{"source", "source", "filter", "filter", "union", "output"}));
  EXPECT_EQ(flow.Find("every")->inputs, (std::vector<std::string>{"eu", "rest"}));
}

TEST_F(FromSqlTest, AFileInputIsAFileSource) {
  spec::Product product = Product({{"m", "select * from raw where amount >= 2.5"}});
  spec::ProductInput file;
  file.name = "raw";
  file.file = "data/orders.csv";
  product.inputs = {file};
  const auto conversion = builder::FlowFromProduct(product, parser_);
  ASSERT_TRUE(conversion.flow) << conversion.reason;
  const builder::Block* source = conversion.flow->Find("raw");
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->file, "data/orders.csv");
  EXPECT_EQ(builder::PlanProduct(*conversion.flow).inputs[0].file, "data/orders.csv");
  data_.Execute("create table raw as select * from orders");
  EXPECT_EQ(builder::CompareRoundTrip(product, *conversion.flow, data_), "");
  // A file read with options the blocks do not hold stays as it is.
  product.inputs[0].options["delim"] = "';'";
  EXPECT_EQ(builder::FlowFromProduct(product, parser_).reason,
            "input raw: reader options have no block");
}

TEST_F(FromSqlTest, WhatNoBlockHoldsIsRefusedWithItsReason) {
  EXPECT_EQ(Refused("select *, row_number() over (order by order_id) as rn from orders"),
            "model m: a window function (row_number) has no block");
  EXPECT_EQ(Refused("select * from orders where customer_id in (select id from customers)"),
            "model m: a subquery has no block");
  EXPECT_EQ(Refused("with big as (select * from orders) select * from big"),
            "model m: a common table expression (with …) has no block");
  EXPECT_EQ(Refused("select region, count(*) as n from orders group by region having count(*) > 1"),
            "model m: having has no block");
  EXPECT_EQ(Refused("select * from (select * from orders) t"), "model m: a subquery has no block");
  EXPECT_EQ(Refused("select region, count(*) as n from orders group by all"),
            "model m: group by all has no block: name the group-by columns");
  EXPECT_EQ(Refused("select * from orders where amount > customer_id"),
            "model m: a condition comparing anything but a column with a value has no block");
  EXPECT_EQ(Refused("select * from orders where region like 'a_b'"),
            "model m: the pattern 'a_b' of a like has no block (only 'x%', '%x' or '%x%')");
  EXPECT_EQ(Refused("select region, string_agg(region) as r from orders group by region"),
            "model m: the aggregate string_agg() has no block (measures: count, count_distinct, "
            "sum, avg, min, max, median)");
  spec::Product filtered = Product({{"m", "select * from orders"}});
  filtered.row_filters.push_back({"hand", "region = 'EU'", {}, {}});
  EXPECT_EQ(builder::FlowFromProduct(filtered, parser_).reason, "a row filter policy has no block");
  spec::Product checked = Product({{"m", "select * from orders where amount > 1"}});
  spec::QualityRule rule;
  rule.type = spec::QualityType::kSql;
  checked.outputs[0].contract.quality.push_back(rule);
  EXPECT_EQ(builder::FlowFromProduct(checked, parser_).reason,
            "port hand: a quality rule of type sql has no place in the output block");
}

TEST_F(FromSqlTest, ARoundTripThatDiffersIsCaught) {
  // The builder's join keeps one column of keys named alike: the SQL's right-hand key is
  // null where nothing matches, the blocks' is not.
  data_.Execute(
      "create table l as select * from (values (1, 'x'), (9, 'y')) v(k, a);"
      "create table r as select * from (values (1, 'z')) v(k, b)");
  spec::Product product = Product({{"m", "select l.a, r.k from l left join r on l.k = r.k"}});
  product.inputs[0].name = "l";
  product.inputs[1].name = "r";
  const auto conversion = builder::FlowFromProduct(product, parser_);
  ASSERT_TRUE(conversion.flow) << conversion.reason;
  EXPECT_EQ(builder::CompareRoundTrip(product, *conversion.flow, data_),
            "port hand: the blocks give other rows than the SQL");
}

TEST_F(FromSqlTest, TheGovernanceMeshsProductsConvertOrSayWhyNot) {
  Diagnostics diagnostics;
  const spec::Mesh mesh =
      spec::LoadMesh((std::string(canopy::test::kTestDir) + "/governance/mesh"), diagnostics);
  ASSERT_FALSE(diagnostics.HasErrors());
  std::map<std::string, std::string> reasons;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      reasons[product.Address()] = builder::FlowFromProduct(product, parser_).reason;
    }
  }
  EXPECT_EQ(reasons["sales.orders"], "input raw: reader options have no block");
  EXPECT_EQ(reasons["crm.customers"], "a row filter policy has no block");
  EXPECT_EQ(reasons["finance.exposure"], "standing access grants have no block");
  EXPECT_EQ(reasons["hr.salaries"], "");  // a file, a cast and a column list
}

}  // namespace
