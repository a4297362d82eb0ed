// The no-code builder: flows read and refused with clear messages, compiled into the SQL
// and YAML a person would write (FlowTest); and its endpoints through Api::Handle —
// previews through the governed path, saves by members only, validated, audited, and
// the saved product built like any other (ApiBuilderTest).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "build/check_mesh.h"
#include "build/runner.h"
#include "builder/flow.h"
#include "catalog/catalog.h"
#include "core/diagnostics.h"
#include "core/error.h"
#include "governance/tokens.h"
#include "server/api.h"
#include "server/builder_api.h"
#include "server/server_util.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"
#include "support/test_store.h"
#include "unit/api_fixture.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace canopy;

namespace {

// orders (sales.orders) → filter → aggregate by region → output.
json SalesFlow(const std::string& name = "big_orders") {
  return {
      {"version", 1},
      {"product", {{"name", name}, {"purpose", "Large orders per region"}}},
      {"blocks",
       json::array(
           {{{"id", "orders"}, {"type", "source"}, {"port", "sales.orders"}},
            {{"id", "large"},
             {"type", "filter"},
             {"input", "orders"},
             {"where",
              {{"group", "and"},
               {"conditions",
                json::array({{{"column", "amount"}, {"op", ">="}, {"value", 20}},
                             {{"group", "or"},
                              {"conditions",
                               json::array({{{"column", "region"}, {"op", "="}, {"value", "EU"}},
                                            {{"column", "region"}, {"op", "is null"}}})}}})}}}},
            {{"id", "by_region"},
             {"type", "aggregate"},
             {"input", "large"},
             {"group_by", {"region"}},
             {"measures", json::array({{{"function", "sum"}, {"column", "amount"}, {"as", "total"}},
                                       {{"function", "count"}, {"as", "orders"}}})}},
            {{"id", "out"},
             {"type", "output"},
             {"input", "by_region"},
             {"name", name},
             {"description", "Large orders per region"},
             {"columns",
              {{"region", {{"description", "Region of the order"}}},
               {"total", {{"description", "Sum of the amounts"}}},
               {"orders", {{"description", "How many orders"}}}}},
             {"quality", json::array({{{"metric", "rowCount"}, {"value", 0}}})}}})}};
}

std::string ParseError(const json& flow) {
  try {
    builder::ParseFlow(flow.dump());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(FlowTest, CompilesEachStepIntoReadableSql) {
  const builder::Flow flow = builder::ParseFlow(SalesFlow().dump());
  EXPECT_EQ(
      builder::BlockSql(flow, *flow.Find("large")),
      "select *\nfrom orders\nwhere amount >= 20\n  and (region = 'EU'\n    or region is null)");
  EXPECT_EQ(builder::BlockSql(flow, *flow.Find("by_region")),
            "select region,\n       sum(amount) as total,\n       count(*) as orders\nfrom large\n"
            "group by region");
  EXPECT_EQ(builder::PreviewSql(flow, "large"),
            "with orders as (\nselect * from sales.orders\n)\nselect *\nfrom orders\n"
            "where amount >= 20\n  and (region = 'EU'\n    or region is null)");
}

TEST(FlowTest, EveryBlockTypeCompiles) {
  json flow = {
      {"product", {{"name", "p"}}},
      {"blocks",
       json::array(
           {{{"id", "a"}, {"type", "source"}, {"port", "sales.orders"}},
            {{"id", "b"}, {"type", "source"}, {"port", "crm.customers"}},
            {{"id", "j"},
             {"type", "join"},
             {"inputs", {"a", "b"}},
             {"how", "left"},
             {"on", json::array({{{"left", "customer_id"}, {"right", "id"}}})}},
            {{"id", "s"},
             {"type", "select"},
             {"input", "j"},
             {"columns", json::array({{{"column", "order_id"}},
                                      {{"column", "email"}, {"as", "mail"}},
                                      {{"column", "select"}, {"as", "Odd Name"}}})}},
            {{"id", "d"},
             {"type", "derive"},
             {"input", "s"},
             {"name", "loud"},
             {"expression", "upper(mail) || '!'"}},
            {{"id", "u"}, {"type", "union"}, {"inputs", {"d", "d"}}},
            {{"id", "o"},
             {"type", "sort"},
             {"input", "u"},
             {"by", json::array({{{"column", "order_id"}, {"descending", true}}})},
             {"limit", 5}},
            {{"id", "x"}, {"type", "distinct"}, {"input", "o"}, {"keys", {"order_id"}}},
            {{"id", "f"},
             {"type", "filter"},
             {"input", "x"},
             {"where",
              {{"group", "and"},
               {"conditions",
                json::array({{{"column", "mail"}, {"op", "contains"}, {"value", "@"}},
                             {{"column", "order_id"}, {"op", "in"}, {"values", {1, 2}}},
                             {{"column", "order_id"}, {"op", "between"}, {"values", {1, 9}}}})}}}},
            {{"id", "out"}, {"type", "output"}, {"input", "a"}, {"name", "raw"}},
            {{"id", "out2"}, {"type", "output"}, {"input", "f"}, {"name", "p"}}})}};
  const builder::Flow parsed = builder::ParseFlow(flow.dump());
  auto sql = [&](const char* id) { return builder::BlockSql(parsed, *parsed.Find(id)); };
  EXPECT_EQ(sql("j"), "select l.*, r.*\nfrom a as l\nleft join b as r\n  on l.customer_id = r.id");
  EXPECT_EQ(sql("s"),
            "select order_id,\n       email as mail,\n       \"select\" as \"Odd Name\"\nfrom j");
  EXPECT_EQ(sql("d"), "select *, (upper(mail) || '!') as loud\nfrom s");
  EXPECT_EQ(sql("u"), "select * from d\nunion all by name\nselect * from d");
  EXPECT_EQ(sql("o"), "select *\nfrom u\norder by order_id desc\nlimit 5");
  EXPECT_EQ(sql("x"), "select distinct on (order_id) *\nfrom o\norder by order_id");
  EXPECT_EQ(sql("f"),
            "select *\nfrom x\nwhere contains(mail, '@')\n  and order_id in (1, 2)\n"
            "  and order_id between 1 and 9");
  // An output straight from a source gets a model of its own; the others publish theirs.
  const builder::Plan plan = builder::PlanProduct(parsed);
  ASSERT_EQ(plan.ports.size(), 2u);
  EXPECT_EQ(plan.ports[0].from, "raw");
  EXPECT_EQ(plan.ports[1].from, "f");
  EXPECT_EQ(plan.inputs.size(), 2u);
}

TEST(FlowTest, WrittenFilesAreAProductAndItsModels) {
  const builder::Flow flow = builder::ParseFlow(SalesFlow().dump());
  std::map<std::string, std::vector<builder::BoundColumn>> bound = {
      {"big_orders",
       {{"region", "VARCHAR", "internal", {}},
        {"total", "DECIMAL(38,2)", "", {}},
        {"orders", "BIGINT", "", {}}}}};
  auto files = builder::Compile(flow, "sales", "ben", bound);
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"products/big_orders.yaml", "sql/big_orders/large.sql",
                                             "sql/big_orders/by_region.sql",
                                             "products/big_orders.flow.json"}));
  const std::string& yaml = files[0].content;
  for (const char* expected :
       {"kind: DataProduct", "name: big_orders", "owner: ben", "status: draft",
        "product: sales.orders", "sql_file: sql/big_orders/by_region.sql", "from: by_region",
        "logicalType: number", "description: Region of the order", "mustBeGreaterThan: 0"}) {
    EXPECT_NE(yaml.find(expected), std::string::npos) << expected << "\n" << yaml;
  }
  EXPECT_EQ(files[1].content.rfind("-- filter (block large", 0), 0u) << files[1].content;
  EXPECT_EQ(json::parse(files.back().content), json::parse(flow.text));
}

TEST(FlowTest, BadFlowsAreRefusedNamingTheBlockAndTheFix) {
  auto with = [](const std::function<void(json&)>& change) {
    json flow = SalesFlow();
    change(flow);
    return ParseError(flow);
  };
  EXPECT_EQ(ParseError(json::array()), "the flow is not a JSON object");
  EXPECT_NE(with([](json& f) {
              f["blocks"][1]["type"] = "pivot";
            }).find("block 'large': unknown block type 'pivot'"),
            std::string::npos);
  EXPECT_NE(with([](json& f) {
              f["blocks"][1]["input"] = "nowhere";
            }).find("block 'large': its input 'nowhere' is not a block of the flow"),
            std::string::npos);
  EXPECT_NE(with([](json& f) {
              f["blocks"][0] = {{"id", "orders"},
                                {"type", "filter"},
                                {"input", "by_region"},
                                {"where", {{"group", "and"}}}};
            }).find("cycle"),
            std::string::npos);
  EXPECT_NE(with([](json& f) {
              f["blocks"][1]["where"]["conditions"][0]["op"] = "~";
            }).find("unknown operator '~'"),
            std::string::npos);
  EXPECT_NE(with([](json& f) {
              f["blocks"][2]["measures"][0]["function"] = "string_agg";
            }).find("unknown measure 'string_agg'"),
            std::string::npos);
  EXPECT_NE(with([](json& f) { f["blocks"].erase(3); }).find("the flow has no output block"),
            std::string::npos);
  EXPECT_NE(with([](json& f) { f["product"]["name"] = "Big Orders"; }).find("is not a SQL name"),
            std::string::npos);
  EXPECT_NE(with([](json& f) { f["blocks"][1]["id"] = "../x"; }).find("an id is a SQL name"),
            std::string::npos);
  EXPECT_NE(with([](json& f) {
              f["blocks"][0]["port"] = "sales.orders; drop table x";
            }).find("'port' must be a port's SQL name"),
            std::string::npos);
  // A value is a literal, quoted: it cannot end the string.
  EXPECT_EQ(with([](json& f) {
              f["blocks"][1]["where"]["conditions"][0] = {
                  {"column", "region"}, {"op", "="}, {"value", "x' or 1=1 --"}};
            }),
            "");
}

TEST(FlowTest, AnExpressionStaysOneExpression) {
  for (const char* bad : {"1) as x, (select 2", "email; select 1", "email -- the rest", "a /* b */",
                          "(email", "email)", "'open", "$$x$$"}) {
    json flow = SalesFlow();
    const json derive = {
        {"id", "d"}, {"type", "derive"}, {"input", "large"}, {"name", "x"}, {"expression", bad}};
    flow["blocks"].insert(flow["blocks"].begin() + 2, derive);
    flow["blocks"][3]["input"] = "d";
    const std::string error = ParseError(flow);
    EXPECT_EQ(error.rfind("block 'd': ", 0), 0u) << bad << ": " << error;
  }
  json ok = SalesFlow();
  const json derive = {{"id", "d"},
                       {"type", "derive"},
                       {"input", "large"},
                       {"name", "x"},
                       {"expression", "coalesce(region, '(none)')"}};
  ok["blocks"].insert(ok["blocks"].begin() + 2, derive);
  ok["blocks"][3]["input"] = "d";
  EXPECT_EQ(ParseError(ok), "");
}

class ApiBuilderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    canopy::test::MakeGovernanceMeshApi(env_, "canopy-builder-", [](const fs::path& mesh) {
      // A product of sales written by hand whose SQL the blocks express.
      std::ofstream(mesh / "domains/sales/products/region_totals.yaml")
          << "apiVersion: canopy/v1\nkind: DataProduct\nname: region_totals\nversion: 1.0.0\n"
             "owner: alice\ndescription: Orders per region, written by hand\n"
             "visibility: internal\n"
             "inputs:\n  - { name: orders, product: sales.orders }\n"
             "transform:\n  - { name: totals, sql_file: sql/region_totals.sql }\n"
             "outputs:\n  - name: totals\n    contract:\n      properties:\n"
             "        - { name: region, physicalType: VARCHAR, description: The region }\n"
             "        - { name: n_orders, physicalType: BIGINT, required: true }\n"
             "        - { name: amount, physicalType: \"DECIMAL(38,2)\" }\n";
      fs::create_directories(mesh / "domains/sales/sql");
      std::ofstream(mesh / "domains/sales/sql/region_totals.sql")
          << "select region, count(*) as n_orders, sum(amount) as amount\nfrom orders\n"
             "where amount > 0\ngroup by region\n";
    });
    if (!env_) return;
    dir_ = &env_->dir;
    catalog_ = env_->catalog.get();
    tokens_ = &env_->tokens;
  }
  static void TearDownTestSuite() { env_.reset(); }
  void SetUp() override { ASSERT_NE(env_, nullptr) << "the suite's mesh could not be made"; }

  static server::HttpResponse Call(const std::string& method, const std::string& path,
                                   const std::string& user, const json& body) {
    return env_->Call(method, path, user, body.dump());
  }
  static json Json(const server::HttpResponse& response) { return json::parse(response.body); }
  static fs::path Sales() { return *dir_ / "mesh/domains/sales"; }
  static json LastAudit(const std::string& action) {
    auto entries = catalog_->Audit(0, 100000);
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
      if (it->action == action) {
        return {{"principal", it->principal}, {"target", it->target}, {"outcome", it->outcome}};
      }
    }
    return nullptr;
  }

  static std::unique_ptr<canopy::test::GovernanceMeshApi> env_;
  static fs::path* dir_;
  static catalog::CatalogStore* catalog_;
  static std::map<std::string, std::string>* tokens_;
};

std::unique_ptr<canopy::test::GovernanceMeshApi> ApiBuilderTest::env_;
fs::path* ApiBuilderTest::dir_ = nullptr;
catalog::CatalogStore* ApiBuilderTest::catalog_ = nullptr;
std::map<std::string, std::string>* ApiBuilderTest::tokens_ = nullptr;

TEST_F(ApiBuilderTest, APreviewIsGovernedAsAQueryWouldBe) {
  // crm.customers joined to sales.orders: ben (sales, no pii clearance) sees e-mails
  // hashed and only his region's customers; alice (pii) sees them clear.
  json flow = {{"product", {{"name", "p"}}},
               {"blocks",
                json::array({{{"id", "o"}, {"type", "source"}, {"port", "sales.orders"}},
                             {{"id", "c"}, {"type", "source"}, {"port", "crm.customers"}},
                             {{"id", "j"},
                              {"type", "join"},
                              {"inputs", {"o", "c"}},
                              {"on", json::array({{{"left", "customer_id"}, {"right", "id"}}})}},
                             {{"id", "out"}, {"type", "output"}, {"input", "j"}, {"name", "p"}}})}};
  auto ben = Call("POST", "/api/v1/builder/preview", "ben", {{"flow", flow}, {"block", "j"}});
  ASSERT_EQ(ben.status, 200) << ben.body;
  const json b = Json(ben);
  EXPECT_NE(b["masked"].dump().find("crm.customers.email"), std::string::npos);
  EXPECT_NE(b["filtered"].dump().find("crm.customers"), std::string::npos);
  size_t email = 0;
  for (size_t i = 0; i < b["columns"].size(); ++i) {
    if (b["columns"][i]["name"] == "email") email = i;
  }
  ASSERT_GT(email, 0u);
  ASSERT_GT(b["rows"].size(), 0u);
  for (const auto& row : b["rows"]) {
    if (row[email].is_string()) {
      EXPECT_EQ(row[email].get<std::string>().find('@'), std::string::npos) << row;
    }
  }
  EXPECT_EQ(b["row_count"].get<int64_t>(), static_cast<int64_t>(b["rows"].size()));
  // The profile counts every row, and gives numbers a histogram.
  bool histogram = false;
  for (const auto& column : b["profile"]) {
    if (column["column"] == "amount") {
      histogram = column["histogram"].is_array() && column["histogram"].size() == 10;
      int64_t sum = 0;
      for (const auto& bin : column["histogram"]) sum += bin["count"].get<int64_t>();
      EXPECT_EQ(sum, b["row_count"].get<int64_t>() - column["nulls"].get<int64_t>());
    }
  }
  EXPECT_TRUE(histogram) << b["profile"];
  // The profile is governed as the rows are: ben's e-mails are hashed in it too.
  for (const auto& column : b["profile"]) {
    if (column["column"] != "email") continue;
    EXPECT_TRUE(column["masked"].get<bool>());
    EXPECT_EQ(column["min"].get<std::string>().find('@'), std::string::npos) << column;
    EXPECT_EQ(column["max"].get<std::string>().find('@'), std::string::npos) << column;
  }
  // The profile alone, as the profile tab asks for it ({"limit": 0}): the same columns and
  // figures, and no rows.
  const json alone = Json(Call("POST", "/api/v1/builder/preview", "ben",
                               {{"flow", flow}, {"block", "j"}, {"limit", 0}}));
  EXPECT_EQ(alone["rows"].size(), 0u);
  EXPECT_EQ(alone["columns"], b["columns"]);
  EXPECT_EQ(alone["row_count"], b["row_count"]);
  EXPECT_EQ(alone["profile"], b["profile"]);
  EXPECT_TRUE(alone["profile_sample"].is_null()) << "a small block is profiled whole";

  // dana, an analyst, is exempt from the row filter: she counts more rows than ben.
  const json d =
      Json(Call("POST", "/api/v1/builder/preview", "dana", {{"flow", flow}, {"block", "j"}}));
  EXPECT_GT(d["row_count"].get<int64_t>(), b["row_count"].get<int64_t>());
  const json a =
      Json(Call("POST", "/api/v1/builder/preview", "alice", {{"flow", flow}, {"block", "j"}}));
  bool clear = false;
  for (const auto& row : a["rows"]) {
    clear = clear || (row[email].is_string() &&
                      row[email].get<std::string>().find('@') != std::string::npos);
  }
  EXPECT_TRUE(clear);

  // zoe may read neither: the preview is denied as her query would be.
  auto zoe = Call("POST", "/api/v1/builder/preview", "zoe", {{"flow", flow}, {"block", "j"}});
  EXPECT_EQ(zoe.status, 403) << zoe.body;
}

TEST_F(ApiBuilderTest, OnlyMembersSaveAndEveryAttemptIsAudited) {
  auto dana =
      Call("POST", "/api/v1/domains/sales/products", "dana", {{"flow", SalesFlow("by_dana")}});
  EXPECT_EQ(dana.status, 403) << dana.body;
  EXPECT_NE(Json(dana)["error"]["hint"].get<std::string>().find("alice"), std::string::npos);
  EXPECT_FALSE(fs::exists(Sales() / "products/by_dana.yaml"));
  EXPECT_EQ(LastAudit("product.save"),
            json({{"principal", "user:dana"}, {"target", "sales.?"}, {"outcome", "denied"}}));
  auto unknown = Call("POST", "/api/v1/domains/nowhere/products", "ben", {{"flow", SalesFlow()}});
  EXPECT_EQ(unknown.status, 404);
}

TEST_F(ApiBuilderTest, ADryRunShowsTheFilesAndWritesNothing) {
  auto response = Call("POST", "/api/v1/domains/sales/products", "ben",
                       {{"flow", SalesFlow("dry")}, {"dry_run", true}});
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = Json(response);
  ASSERT_EQ(body["files"].size(), 4u);
  EXPECT_EQ(body["files"][0]["path"], "domains/sales/products/dry.yaml");
  EXPECT_TRUE(body["files"][0]["previous"].is_null());
  EXPECT_NE(body["files"][0]["content"].get<std::string>().find("owner: ben"), std::string::npos);
  EXPECT_FALSE(fs::exists(Sales() / "products/dry.yaml"));
  EXPECT_FALSE(fs::exists(Sales() / "sql/dry"));
}

TEST_F(ApiBuilderTest, ASavedFlowIsAProductThatValidatesAndBuilds) {
  auto saved = Call("POST", "/api/v1/domains/sales/products", "ben", {{"flow", SalesFlow()}});
  ASSERT_EQ(saved.status, 201) << saved.body;
  EXPECT_EQ(LastAudit("product.save"),
            json({{"principal", "user:ben"}, {"target", "sales.big_orders"}, {"outcome", "ok"}}));
  // The server answers from the new mesh at once.
  auto card = Call("GET", "/api/v1/products/sales/big_orders", "ben", nullptr);
  ASSERT_EQ(card.status, 200) << card.body;
  EXPECT_EQ(Json(card)["status"], "draft");
  // Saving the same name again is a conflict; PUT replaces it.
  EXPECT_EQ(Call("POST", "/api/v1/domains/sales/products", "ben", {{"flow", SalesFlow()}}).status,
            409);
  json changed = SalesFlow();
  changed["product"]["purpose"] = "Large orders per region, changed";
  auto put = Call("PUT", "/api/v1/domains/sales/products/big_orders", "alice", {{"flow", changed}});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_NE(Json(put)["files"][0]["previous"].get<std::string>().find("owner: ben"),
            std::string::npos);
  // The builder opens it again.
  auto open = Call("GET", "/api/v1/domains/sales/products/big_orders/flow", "ben", nullptr);
  ASSERT_EQ(open.status, 200) << open.body;
  EXPECT_EQ(Json(open)["flow"]["product"]["purpose"], "Large orders per region, changed");
  EXPECT_FALSE(Json(open)["read_only"].get<bool>());

  // The files on disk validate as `canopy validate` would, and build.
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh((*dir_ / "mesh").string(), diagnostics);
  build::CheckMesh(mesh, diagnostics);
  EXPECT_FALSE(diagnostics.HasErrors());
  auto storage = build::NewLocalStorage();
  build::BuildOptions options;
  options.targets = {"sales.big_orders"};
  auto report = build::RunBuild(mesh, *catalog_, *storage, options, nullptr);
  EXPECT_TRUE(report.ok());
  auto live = catalog_->Live("sales", "big_orders");
  ASSERT_TRUE(live.has_value());
}

TEST_F(ApiBuilderTest, AHandWrittenProductOpensReadOnly) {
  auto open = Call("GET", "/api/v1/domains/sales/products/orders/flow", "ben", nullptr);
  ASSERT_EQ(open.status, 200) << open.body;
  const json body = Json(open);
  EXPECT_TRUE(body["flow"].is_null());
  EXPECT_TRUE(body["read_only"].get<bool>());
  EXPECT_NE(body["reason"].get<std::string>().find(
                "written by hand, and the builder cannot draw it: input raw: reader options have "
                "no block"),
            std::string::npos)
      << body["reason"];
  EXPECT_EQ(body["models"].size(), 1u);
  json flow = SalesFlow("orders");
  auto put = Call("PUT", "/api/v1/domains/sales/products/orders", "ben", {{"flow", flow}});
  EXPECT_EQ(put.status, 409) << put.body;
  EXPECT_NE(Json(put)["error"]["message"].get<std::string>().find("written by hand"),
            std::string::npos);
  // crm.customers has a row filter; its owner is told so.
  auto customers = Call("GET", "/api/v1/domains/crm/products/customers/flow", "carl", nullptr);
  ASSERT_EQ(customers.status, 200) << customers.body;
  EXPECT_NE(Json(customers)["reason"].get<std::string>().find("a row filter policy has no block"),
            std::string::npos)
      << customers.body;
}

TEST_F(ApiBuilderTest, AHandWrittenProductWithinTheBlocksOpensEditable) {
  auto open = Call("GET", "/api/v1/domains/sales/products/region_totals/flow", "ben", nullptr);
  ASSERT_EQ(open.status, 200) << open.body;
  const json body = Json(open);
  EXPECT_FALSE(body["read_only"].get<bool>());
  EXPECT_TRUE(body["converted"].get<bool>());
  EXPECT_NE(body["note"].get<std::string>().find("rewrites its files"), std::string::npos);
  std::vector<std::string> types;
  for (const auto& block : body["flow"]["blocks"])
    types.push_back(block["type"].get<std::string>());
  EXPECT_EQ(types, (std::vector<std::string>{"source", "filter", "aggregate", "output"}));
  // Someone outside sales is not shown its SQL, nor a flow of it.
  auto dana = Call("GET", "/api/v1/domains/sales/products/region_totals/flow", "dana", nullptr);
  ASSERT_EQ(dana.status, 200) << dana.body;
  EXPECT_TRUE(Json(dana)["flow"].is_null());
  EXPECT_TRUE(Json(dana)["read_only"].get<bool>());
  EXPECT_NE(Json(dana)["reason"].get<std::string>().find("only members"), std::string::npos);
}

TEST_F(ApiBuilderTest, SavingAConvertedProductRewritesItsFilesAndRemovesTheUnusedSql) {
  const fs::path sql = Sales() / "sql/region_totals.sql";
  const json flow = Json(
      Call("GET", "/api/v1/domains/sales/products/region_totals/flow", "ben", nullptr))["flow"];
  ASSERT_TRUE(flow.is_object());
  const std::string path = "/api/v1/domains/sales/products/region_totals";
  EXPECT_EQ(Call("PUT", path, "dana", {{"flow", flow}}).status, 403);
  auto dry = Call("PUT", path, "ben", {{"flow", flow}, {"dry_run", true}});
  ASSERT_EQ(dry.status, 200) << dry.body;
  bool listed = false;
  const json listing = Json(dry);
  for (const auto& file : listing["files"]) {
    if (file["path"] == "domains/sales/sql/region_totals.sql") {
      listed = file.value("removed", false) && file["previous"].is_string();
    }
  }
  EXPECT_TRUE(listed) << dry.body;
  EXPECT_TRUE(fs::exists(sql));
  EXPECT_FALSE(fs::exists(Sales() / "products/region_totals.flow.json"));

  auto saved = Call("PUT", path, "ben", {{"flow", flow}});
  ASSERT_EQ(saved.status, 200) << saved.body;
  EXPECT_FALSE(fs::exists(sql));
  EXPECT_TRUE(fs::exists(Sales() / "products/region_totals.flow.json"));
  EXPECT_TRUE(fs::exists(Sales() / "sql/region_totals/totals.sql"));
  // It opens as a builder product now, and validates and builds.
  auto open = Call("GET", "/api/v1/domains/sales/products/region_totals/flow", "ben", nullptr);
  EXPECT_FALSE(Json(open).contains("converted")) << open.body;
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh((*dir_ / "mesh").string(), diagnostics);
  build::CheckMesh(mesh, diagnostics);
  EXPECT_FALSE(diagnostics.HasErrors());
  auto storage = build::NewLocalStorage();
  build::BuildOptions options;
  options.targets = {"sales.region_totals"};
  EXPECT_TRUE(build::RunBuild(mesh, *catalog_, *storage, options, nullptr).ok());
}

TEST(ApplyFilesTest, AFileRemovedIsPutBackWhenTheMeshDoesNotValidate) {
  const fs::path root = fs::temp_directory_path() / ("canopy-apply-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", root, fs::copy_options::recursive);
  const fs::path removed = root / "domains/sales/data/orders.csv";
  const auto before = server::ReadText(removed);
  const auto applied = server::ApplyFiles(
      root.string(), {{root / "domains/sales/products/broken.yaml", "kind: DataProduct\n"}}, {},
      {removed});
  EXPECT_FALSE(applied.mesh.has_value());
  EXPECT_EQ(server::ReadText(removed), before);
  EXPECT_FALSE(fs::exists(root / "domains/sales/products/broken.yaml"));
  fs::remove_all(root);
}

TEST_F(ApiBuilderTest, AnInvalidFlowIsRefusedWithAClearMessageAndNothingWritten) {
  json flow = SalesFlow("broken");
  flow["blocks"][2]["measures"][0]["function"] = "explode";
  auto response = Call("POST", "/api/v1/domains/sales/products", "ben", {{"flow", flow}});
  EXPECT_EQ(response.status, 400);
  EXPECT_NE(Json(response)["error"]["message"].get<std::string>().find(
                "block 'by_region': unknown measure"),
            std::string::npos);
  EXPECT_EQ(LastAudit("product.save")["outcome"], "invalid");
  EXPECT_FALSE(fs::exists(Sales() / "products/broken.yaml"));

  // A flow that reads fine but makes an invalid mesh (a port named like one the domain
  // already publishes) is written, judged, and taken back.
  json clash = SalesFlow("clash");
  clash["blocks"][3]["name"] = "orders";
  auto invalid = Call("POST", "/api/v1/domains/sales/products", "ben", {{"flow", clash}});
  EXPECT_EQ(invalid.status, 400) << invalid.body;
  EXPECT_FALSE(Json(invalid)["error"]["diagnostics"].empty());
  EXPECT_FALSE(fs::exists(Sales() / "products/clash.yaml"));
  EXPECT_FALSE(fs::exists(Sales() / "products/clash.flow.json"));
  EXPECT_FALSE(fs::exists(Sales() / "sql/clash"));
}

TEST_F(ApiBuilderTest, ADerivedColumnInheritsItsSourcesClassification) {
  // alice (pii) derives upper(email) from crm.customers: the port's column comes out pii,
  // and a count of e-mails carries no classification of its own (the owner's call).
  json flow = {
      {"product", {{"name", "mails"}}},
      {"blocks",
       json::array({{{"id", "c"}, {"type", "source"}, {"port", "crm.customers"}},
                    {{"id", "d"},
                     {"type", "derive"},
                     {"input", "c"},
                     {"name", "loud"},
                     {"expression", "upper(email)"}},
                    {{"id", "s"},
                     {"type", "select"},
                     {"input", "d"},
                     {"columns", json::array({{{"column", "loud"}}, {{"column", "segment"}}})}},
                    {{"id", "out"}, {"type", "output"}, {"input", "s"}, {"name", "mails"}}})}};
  auto response =
      Call("POST", "/api/v1/domains/sales/products", "alice", {{"flow", flow}, {"dry_run", true}});
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = Json(response);
  const json& columns = body["columns"]["mails"];
  ASSERT_EQ(columns.size(), 2u);
  EXPECT_EQ(columns[0]["name"], "loud");
  EXPECT_EQ(columns[0]["classification"], "pii");
  EXPECT_EQ(columns[0]["sources"], json::array({"crm.customers.email"}));
  EXPECT_NE(body["files"][0]["content"].get<std::string>().find("classification: pii"),
            std::string::npos);
  // The build reads as domain:sales, which has no grant on crm.customers: said before saving.
  EXPECT_NE(body["warnings"].dump().find("domain:sales, which may not read crm.customers"),
            std::string::npos)
      << body["warnings"];
}

}  // namespace

namespace {

TEST_F(ApiBuilderTest, ABuildFromTheApiStreamsItsProgressAndPublishes) {
  ASSERT_EQ(Call("POST", "/api/v1/domains/sales/products", "ben", {{"flow", SalesFlow("from_ui")}})
                .status,
            201);
  auto denied = Call("POST", "/api/v1/builds", "dana", {{"targets", {"sales.from_ui"}}});
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(LastAudit("build"),
            json({{"principal", "user:dana"}, {"target", "sales.from_ui"}, {"outcome", "denied"}}));
  EXPECT_EQ(Call("POST", "/api/v1/builds", "ben", {{"targets", {"sales.nothing"}}}).status, 404);

  auto response = Call("POST", "/api/v1/builds", "ben", {{"targets", {"sales.from_ui"}}});
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.content_type, "application/x-ndjson");
  std::vector<json> events;
  std::istringstream lines(response.body);
  for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line));
  ASSERT_GE(events.size(), 3u) << response.body;
  EXPECT_EQ(events.front()["event"], "planned");
  bool stepped = false;
  json finished;
  for (const auto& e : events) {
    stepped = stepped || (e["event"] == "step" && e["product"] == "sales.from_ui");
    if (e["event"] == "finished" && e["product"] == "sales.from_ui") finished = e;
  }
  EXPECT_TRUE(stepped);
  ASSERT_TRUE(finished.is_object()) << response.body;
  EXPECT_EQ(finished["status"], "published") << finished;
  EXPECT_GT(finished["checks_total"].get<int>(), 0);
  EXPECT_EQ(events.back()["event"], "done");
  EXPECT_TRUE(events.back()["ok"].get<bool>()) << events.back();
  // Live in the marketplace: the card has a build now.
  auto card = Json(Call("GET", "/api/v1/products/sales/from_ui", "ben", nullptr));
  EXPECT_FALSE(card["build_id"].is_null()) << card;
}

}  // namespace

namespace {

TEST_F(ApiBuilderTest, APreviewJudgesOnlyTheBlockAndWhatItReads) {
  // No output yet, no product name, and an unfinished block elsewhere in the drawing.
  json flow = {
      {"blocks", json::array({{{"id", "o"}, {"type", "source"}, {"port", "sales.orders"}},
                              {{"id", "half"}, {"type", "filter"}, {"input", "o"}},
                              {{"id", "big"},
                               {"type", "filter"},
                               {"input", "o"},
                               {"where", {{"column", "amount"}, {"op", ">"}, {"value", 100}}}}})}};
  auto response =
      Call("POST", "/api/v1/builder/preview", "ben", {{"flow", flow}, {"block", "big"}});
  ASSERT_EQ(response.status, 200) << response.body;
  const json answer = Json(response);
  for (const auto& row : answer["rows"]) EXPECT_GT(std::stod(row[2].get<std::string>()), 100.0);
  // Without the profile: the same rows and count, no profile.
  auto quick = Call("POST", "/api/v1/builder/preview", "ben",
                    {{"flow", flow}, {"block", "big"}, {"profile", false}, {"limit", 1}});
  ASSERT_EQ(quick.status, 200) << quick.body;
  EXPECT_TRUE(Json(quick)["profile"].is_null());
  EXPECT_EQ(Json(quick)["row_count"], Json(response)["row_count"]);
  EXPECT_EQ(Json(quick)["rows"].size(), 1u);
  // The unfinished block itself is refused, naming it.
  auto half = Call("POST", "/api/v1/builder/preview", "ben", {{"flow", flow}, {"block", "half"}});
  EXPECT_EQ(half.status, 400);
  EXPECT_NE(Json(half)["error"]["message"].get<std::string>().find("block 'half'"),
            std::string::npos);
}

TEST_F(ApiBuilderTest, ALargeBlockIsProfiledFromItsFirstRowsWithItsCountAndNullsExact) {
  // 60,000 rows in one of the domain's files: n = 1..60000, `gap` empty in every tenth row.
  const fs::path file = Sales() / "data/many.csv";
  {
    std::ofstream out(file);
    out << "n,gap\n";
    for (int n = 1; n <= 60000; ++n) out << n << "," << (n % 10 == 0 ? "" : "7") << "\n";
  }
  const json flow = {
      {"blocks", json::array({{{"id", "many"}, {"type", "source"}, {"file", "data/many.csv"}}})}};
  auto response = Call("POST", "/api/v1/builder/preview", "ben",
                       {{"flow", flow}, {"block", "many"}, {"domain", "sales"}, {"limit", 0}});
  fs::remove(file);
  ASSERT_EQ(response.status, 200) << response.body;
  const json answer = Json(response);
  EXPECT_EQ(answer["row_count"], 60000);
  EXPECT_EQ(answer["profile_sample"], 50000) << "the figures say what they are from";
  for (const auto& column : answer["profile"]) {
    if (column["column"] == "gap") {
      EXPECT_EQ(column["nulls"], 6000) << "nulls are counted over every row";
    }
    if (column["column"] != "n") continue;
    EXPECT_EQ(column["nulls"], 0);
    // Distinct values, bounds and histogram from 50,000 of the rows: an approximate count
    // near 50,000 (60,000 over every row), bounds inside [1, 60000], bins summing to 50,000.
    const auto distinct = column["distinct"].get<int64_t>();
    EXPECT_GT(distinct, 45000) << column;
    EXPECT_LT(distinct, 55000) << column;
    EXPECT_GE(std::stoll(column["min"].get<std::string>()), 1);
    EXPECT_LE(std::stoll(column["max"].get<std::string>()), 60000);
    int64_t binned = 0;
    for (const auto& bin : column["histogram"]) binned += bin["count"].get<int64_t>();
    EXPECT_EQ(binned, 50000) << column;
  }
}

TEST_F(ApiBuilderTest, AWrongNameInAnExpressionIsBadInputNotAServerFailure) {
  json flow = {{"blocks", json::array({{{"id", "o"}, {"type", "source"}, {"port", "sales.orders"}},
                                       {{"id", "d"},
                                        {"type", "derive"},
                                        {"input", "o"},
                                        {"name", "x"},
                                        {"expression", "upper(no_such_column)"}}})}};
  auto preview = Call("POST", "/api/v1/builder/preview", "ben", {{"flow", flow}, {"block", "d"}});
  EXPECT_EQ(preview.status, 400) << preview.body;
  EXPECT_NE(Json(preview)["error"]["message"].get<std::string>().find("no_such_column"),
            std::string::npos);
  auto query =
      Call("POST", "/api/v1/query", "ben", {{"sql", "select no_such_column from sales.orders"}});
  EXPECT_EQ(query.status, 400) << query.body;
}

TEST_F(ApiBuilderTest, TheVocabularyNamesTheMeshsClassificationsInOrder) {
  const json v = Json(Call("GET", "/api/v1/builder/vocabulary", "ben", nullptr));
  EXPECT_EQ(v["classifications"], json::array({"public", "internal", "confidential", "pii"}));
  EXPECT_EQ(v["measures"][0], "count");
  const json sources = Json(Call("GET", "/api/v1/builder/sources", "ben", nullptr))["sources"];
  bool masked_email = false;
  for (const auto& source : sources) {
    if (source["port"] != "crm.customers") continue;
    for (const auto& column : source["columns"]) {
      if (column["name"] == "email") masked_email = column["masked"].get<bool>();
    }
  }
  EXPECT_TRUE(masked_email) << sources;
}

}  // namespace

// --- files uploaded into a domain's folder, as sources -----------------------------------

namespace {

server::HttpResponse Upload(const test::GovernanceMeshApi& env, const std::string& user,
                            const std::string& domain, const std::string& name,
                            const std::string& bytes, bool replace = false) {
  server::HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/domains/" + domain + "/uploads";
  request.query["name"] = name;
  if (replace) request.query["replace"] = "true";
  request.body = bytes;
  request.authorization = "Bearer " + env.tokens.at(user);
  return env.api->Handle(request);
}

json TargetsFlow(const std::string& name) {
  return {{"product", {{"name", name}, {"purpose", "Regions above their target"}}},
          {"blocks",
           json::array({{{"id", "targets"}, {"type", "source"}, {"file", "data/targets.csv"}},
                        {{"id", "high"},
                         {"type", "filter"},
                         {"input", "targets"},
                         {"where",
                          {{"group", "and"},
                           {"conditions",
                            json::array({{{"column", "target"}, {"op", ">"}, {"value", 150}}})}}}},
                        {{"id", "out"}, {"type", "output"}, {"input", "high"}, {"name", name}}})}};
}

bool StagedLeftovers(const fs::path& data) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data, ec)) {
    if (entry.path().filename().string().rfind(".upload-", 0) == 0) return true;
  }
  return false;
}

}  // namespace

TEST_F(ApiBuilderTest, AMemberUploadsAFileThatBecomesASourceAPreviewAndAnInput) {
  auto uploaded = Upload(*env_, "ben", "sales", "targets.csv", "region,target\nEU,100\nUS,200\n");
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  const json u = Json(uploaded);
  EXPECT_EQ(u["file"], "data/targets.csv");
  EXPECT_EQ(u["format"], "csv");
  EXPECT_EQ(u["rows"], 2);
  ASSERT_EQ(u["columns"].size(), 2u);
  EXPECT_EQ(u["columns"][1]["name"], "target");
  EXPECT_TRUE(fs::exists(Sales() / "data/targets.csv"));
  EXPECT_EQ(
      LastAudit("upload"),
      json({{"principal", "user:ben"}, {"target", "sales/data/targets.csv"}, {"outcome", "ok"}}));

  // Listed for the domain's members, and in the builder's palette.
  auto listed = Call("GET", "/api/v1/domains/sales/uploads", "ben", nullptr);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_NE(listed.body.find("data/targets.csv"), std::string::npos);
  const json files = Json(listed);
  for (const auto& file : files["files"]) {
    if (file["file"] == "data/targets.csv") {
      EXPECT_EQ(file["modified"].get<std::string>().size(), 20u) << file;  // …T…Z
      EXPECT_EQ(file["rows"], 2);
    }
  }
  const json sources = Json(Call("GET", "/api/v1/builder/sources", "ben", nullptr));
  bool in_palette = false;
  for (const auto& file : sources["files"]) {
    in_palette = in_palette || (file["domain"] == "sales" && file["file"] == "data/targets.csv" &&
                                file["columns"].size() == 2);
  }
  EXPECT_TRUE(in_palette) << sources["files"];
  // Not for others: dana is no member of sales.
  EXPECT_EQ(Call("GET", "/api/v1/domains/sales/uploads", "dana", nullptr).status, 403);
  const json dana_sources = Json(Call("GET", "/api/v1/builder/sources", "dana", nullptr));
  EXPECT_EQ(dana_sources["files"].dump().find("targets.csv"), std::string::npos);

  // A source block reads it in a preview, governed as the member's query.
  const json flow = TargetsFlow("high_targets");
  auto preview = Call("POST", "/api/v1/builder/preview", "ben",
                      {{"flow", flow}, {"block", "high"}, {"domain", "sales"}});
  ASSERT_EQ(preview.status, 200) << preview.body;
  EXPECT_EQ(Json(preview)["rows"], json::parse(R"([["US",200]])"));
  EXPECT_EQ(LastAudit("query")["principal"], "user:ben");
  auto outsider = Call("POST", "/api/v1/builder/preview", "dana",
                       {{"flow", flow}, {"block", "high"}, {"domain", "sales"}});
  EXPECT_EQ(outsider.status, 403) << outsider.body;
  auto nowhere =
      Call("POST", "/api/v1/builder/preview", "ben", {{"flow", flow}, {"block", "high"}});
  EXPECT_EQ(nowhere.status, 400) << nowhere.body;
  // The file is the builder's to read for members, never a table of the query API.
  auto direct =
      Call("POST", "/api/v1/query", "ben", {{"sql", "select * from canopy_files.targets_csv"}});
  EXPECT_EQ(direct.status, 400) << direct.body;

  // Saved, the file is the product's input, as a person would have written it; it builds.
  auto saved = Call("POST", "/api/v1/domains/sales/products", "ben", {{"flow", flow}});
  ASSERT_EQ(saved.status, 201) << saved.body;
  const auto yaml = server::ReadText(Sales() / "products/high_targets.yaml");
  ASSERT_TRUE(yaml.has_value());
  EXPECT_NE(yaml->find("file: data/targets.csv"), std::string::npos) << *yaml;
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh((*dir_ / "mesh").string(), diagnostics);
  build::CheckMesh(mesh, diagnostics);
  EXPECT_FALSE(diagnostics.HasErrors());
  auto storage = build::NewLocalStorage();
  build::BuildOptions options;
  options.targets = {"sales.high_targets"};
  auto report = build::RunBuild(mesh, *catalog_, *storage, options, nullptr);
  ASSERT_TRUE(report.ok());
  auto live = catalog_->Live("sales", "high_targets");
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->ports.at(0).rows, 1);
}

TEST_F(ApiBuilderTest, AnUploadIsRefusedWithItsReasonAndLeavesNothingBehind) {
  const fs::path data = Sales() / "data";
  // Not a member.
  auto dana = Upload(*env_, "dana", "sales", "mine.csv", "a\n1\n");
  EXPECT_EQ(dana.status, 403) << dana.body;
  EXPECT_EQ(
      LastAudit("upload"),
      json({{"principal", "user:dana"}, {"target", "sales/data/mine.csv"}, {"outcome", "denied"}}));
  EXPECT_FALSE(fs::exists(data / "mine.csv"));
  // Names that are not a domain file's: a path, capitals, another extension.
  for (const std::string name : {"../escape.csv", "sub/x.csv", "Targets.CSV", "x.txt", "x", ""}) {
    auto bad = Upload(*env_, "ben", "sales", name, "a\n1\n");
    EXPECT_EQ(bad.status, 400) << name << ": " << bad.body;
    EXPECT_NE(Json(bad)["error"]["hint"].get<std::string>().find("lowercase"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(Sales() / "escape.csv"));
  // The content must be what the name says.
  auto parquet = Upload(*env_, "ben", "sales", "p.csv", std::string("PAR1xxxxxxxxPAR1"));
  EXPECT_EQ(parquet.status, 400);
  EXPECT_NE(Json(parquet)["error"]["hint"].get<std::string>().find("p.parquet"), std::string::npos);
  auto json_named_csv = Upload(*env_, "ben", "sales", "j.csv", R"([{"a": 1}])");
  EXPECT_EQ(json_named_csv.status, 400) << json_named_csv.body;
  auto binary = Upload(*env_, "ben", "sales", "b.csv", std::string("a\0b\n", 4));
  EXPECT_EQ(binary.status, 400) << binary.body;
  auto empty = Upload(*env_, "ben", "sales", "e.csv", "");
  EXPECT_EQ(empty.status, 400) << empty.body;
  // A file that does not read is not kept (the engine's message says why).
  auto broken = Upload(*env_, "ben", "sales", "broken.json", R"({"a": )");
  EXPECT_EQ(broken.status, 400) << broken.body;
  EXPECT_NE(Json(broken)["error"]["message"].get<std::string>().find("cannot read broken.json"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(data / "broken.json"));
  EXPECT_FALSE(StagedLeftovers(data));
  // Too large for the server's limit.
  env_->api->set_max_upload_bytes(8);
  auto large = Upload(*env_, "ben", "sales", "large.csv", "a\n123456789\n");
  env_->api->set_max_upload_bytes(size_t{64} << 20);
  EXPECT_EQ(large.status, 413) << large.body;
  // A second upload of a name replaces only when asked, whole.
  ASSERT_EQ(Upload(*env_, "ben", "sales", "twice.json", R"([{"a": 1}])").status, 201);
  auto again = Upload(*env_, "ben", "sales", "twice.json", R"([{"a": 2}, {"a": 3}])");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_NE(Json(again)["error"]["hint"].get<std::string>().find("replace=true"),
            std::string::npos);
  auto replaced = Upload(*env_, "ben", "sales", "twice.json", R"([{"a": 2}, {"a": 3}])", true);
  ASSERT_EQ(replaced.status, 201) << replaced.body;
  EXPECT_TRUE(Json(replaced)["replaced"].get<bool>());
  EXPECT_EQ(Json(replaced)["rows"], 2);
  EXPECT_FALSE(StagedLeftovers(data));
}
