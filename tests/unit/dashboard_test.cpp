// Dashboards as data products: the kind: Dashboard file read and checked (DashboardSpecTest),
// and its endpoints through Api::Handle — each viewer's tiles run as that viewer, a tile
// they may not read says how to ask, saves by members only (ApiDashboardTest).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "build/check_mesh.h"
#include "build/runner.h"
#include "catalog/catalog.h"
#include "core/diagnostics.h"
#include "governance/tokens.h"
#include "server/api.h"
#include "server/builder_api.h"
#include "server/dashboard_api.h"
#include "spec/chart_sql.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"
#include "support/test_store.h"
#include "unit/api_fixture.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace canopy;

namespace {

// Over the governance test mesh: crm.customers (email pii, row filter by region) joined
// to sales.orders (public).
const char* kDashboard = R"(apiVersion: canopy/v1
kind: Dashboard
name: overview
owner: alice
description: Orders and their customers
layout: { columns: 2 }
filters:
  - { name: region, column: region, label: Region }
charts:
  - name: by_customer
    title: Amount per customer
    sql: |
      select c.email, o.region, sum(o.amount) as amount
      from sales.orders o join crm.customers c on c.id = o.customer_id
      group by c.email, o.region order by amount desc
    vegaLite: { mark: bar, encoding: { x: { field: email, type: nominal }, y: { field: amount, type: quantitative } } }
  - name: totals
    title: Orders per region
    sql: "select region, count(*) as orders from sales.orders group by region order by region"
    position: { x: 1, y: 0 }
)";

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

class DashboardSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("canopy-dash-spec-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", dir_,
             fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The diagnostics of the mesh with `text` as domains/sales/dashboards/<file>.
  std::string Check(const std::string& text, const std::string& file = "overview.yaml") {
    Write(dir_ / "domains/sales/dashboards" / file, text);
    Diagnostics diagnostics;
    spec::Mesh mesh = spec::LoadMesh(dir_.string(), diagnostics);
    build::CheckMesh(mesh, diagnostics);
    std::string out;
    for (const auto& d : diagnostics.items()) {
      if (d.severity == Severity::kError) out += d.Format("") + "\n";
    }
    return out;
  }
  fs::path dir_;
};

TEST_F(DashboardSpecTest, AValidDashboardLoadsWithItsCharts) {
  Write(dir_ / "domains/sales/dashboards/overview.yaml", kDashboard);
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(dir_.string(), diagnostics);
  build::CheckMesh(mesh, diagnostics);
  ASSERT_FALSE(diagnostics.HasErrors()) << Check(kDashboard);
  const spec::Dashboard* dashboard = mesh.FindDashboard("sales", "overview");
  ASSERT_NE(dashboard, nullptr);
  EXPECT_EQ(dashboard->owner, "alice");
  ASSERT_EQ(dashboard->charts.size(), 2u);
  EXPECT_EQ(dashboard->charts[1].x, 1);
  EXPECT_NE(dashboard->charts[0].vega_lite.find("mark: bar"), std::string::npos);
  EXPECT_EQ(server::ChartPorts(mesh, dashboard->charts[0]),
            (std::vector<std::string>{"crm.customers", "sales.orders"}));
  // Exported, it reads back the same.
  const std::string exported = server::DashboardYaml(*dashboard);
  EXPECT_EQ(Check(exported), "");
}

TEST_F(DashboardSpecTest, MistakesAreErrorsAtTheirLine) {
  std::string text = kDashboard;
  EXPECT_NE(Check(text + "colour: blue\n")
                .find("domains/sales/dashboards/overview.yaml:21:1: error: unknown key 'colour' in "
                      "dashboard"),
            std::string::npos)
      << Check(text + "colour: blue\n");
  // A chart's query the guard refuses: named at the query's line.
  std::string refused = text;
  refused.replace(refused.find("\"select region") + 1, 0,
                  "select * from read_csv('/etc/passwd') union all ");
  EXPECT_NE(Check(refused).find("overview.yaml:19:10: error: chart 'totals' of sales.overview: the "
                                "query would be refused"),
            std::string::npos)
      << Check(refused);
  std::string unknown_port = text;
  unknown_port.replace(unknown_port.find("from sales.orders group"), 17, "from sales.ordres");
  EXPECT_NE(Check(unknown_port).find("chart 'totals'"), std::string::npos) << Check(unknown_port);
  std::string wide = text;
  wide.replace(wide.find("{ x: 1, y: 0 }"), 14, "{ x: 1, y: 0, width: 2 }");
  EXPECT_NE(Check(wide).find("reaches past the layout's 2 column(s)"), std::string::npos)
      << Check(wide);
  EXPECT_NE(Check(text, "other.yaml").find("dashboard 'overview' is in the file other.yaml"),
            std::string::npos);
  std::string clash = text;
  clash.replace(clash.find("name: overview"), 14, "name: orders");
  EXPECT_NE(Check(clash, "orders.yaml").find("has the name of a product of sales"),
            std::string::npos)
      << Check(clash, "orders.yaml");
  // Bytes that are not UTF-8 are refused at their line, before anything reads them.
  std::string bytes = text;
  bytes.replace(bytes.find("Amount per customer"), 6, "Amount\xff");
  EXPECT_NE(Check(bytes).find("overview.yaml:11: error: the file is not UTF-8 text"),
            std::string::npos)
      << Check(bytes);
  std::string no_owner = text;
  no_owner.replace(no_owner.find("owner: alice"), 12, "owner: nobody");
  EXPECT_NE(Check(no_owner).find("nobody"), std::string::npos);
}

class ApiDashboardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    canopy::test::MakeGovernanceMeshApi(env_, "canopy-dash-", [](const fs::path& mesh) {
      Write(mesh / "domains/sales/dashboards/overview.yaml", kDashboard);
    });
    if (!env_) return;
    dir_ = &env_->dir;
    catalog_ = env_->catalog.get();
  }
  static void TearDownTestSuite() { env_.reset(); }
  void SetUp() override { ASSERT_NE(env_, nullptr) << "the suite's mesh could not be made"; }
  static server::HttpResponse Call(const std::string& method, const std::string& path,
                                   const std::string& user, const std::string& body = "") {
    return env_->Call(method, path, user, body);
  }
  static json Json(const server::HttpResponse& response) { return json::parse(response.body); }
  static json Column(const json& result, const std::string& name) {
    json out = json::array();
    size_t index = 0;
    for (; index < result["columns"].size(); ++index) {
      if (result["columns"][index]["name"] == name) break;
    }
    for (const auto& row : result["rows"]) out.push_back(row.at(index));
    return out;
  }

  static std::unique_ptr<canopy::test::GovernanceMeshApi> env_;
  static fs::path* dir_;
  static catalog::CatalogStore* catalog_;
};

std::unique_ptr<canopy::test::GovernanceMeshApi> ApiDashboardTest::env_;
fs::path* ApiDashboardTest::dir_ = nullptr;
catalog::CatalogStore* ApiDashboardTest::catalog_ = nullptr;

TEST_F(ApiDashboardTest, ListedWithThePortsItReads) {
  auto list = Json(Call("GET", "/api/v1/dashboards", "zoe"));
  ASSERT_EQ(list.size(), 1u) << list;
  EXPECT_EQ(list[0]["name"], "overview");
  EXPECT_EQ(list[0]["ports"], json::array({"crm.customers", "sales.orders"}));
  // And in the lineage of the ports it reads.
  auto lineage = Json(Call("GET", "/api/v1/lineage/sales/orders", "dana"));
  EXPECT_NE(
      lineage["edges"].dump().find(R"({"from":"sales.orders","to":"dashboard:sales.overview"})"),
      std::string::npos)
      << lineage["edges"];
}

TEST_F(ApiDashboardTest, EachViewerSeesTheTilesThroughTheirOwnGrantsAndMasks) {
  const std::string tile = "/api/v1/dashboards/sales/overview/charts/by_customer";
  // dana (analyst, no pii clearance): e-mails hashed.
  auto dana = Call("POST", tile, "dana");
  ASSERT_EQ(dana.status, 200) << dana.body;
  const json d = Json(dana);
  ASSERT_FALSE(d["rows"].empty());
  for (const auto& email : Column(d, "email")) {
    if (email.is_string()) {
      EXPECT_EQ(email.get<std::string>().find('@'), std::string::npos) << email;
    }
  }
  // alice (pii clearance, owner of sales): clear, and only her region's customers.
  const json a = Json(Call("POST", tile, "alice"));
  bool clear = false;
  for (const auto& email : Column(a, "email")) {
    clear |= email.is_string() && email.get<std::string>().find('@') != std::string::npos;
  }
  EXPECT_TRUE(clear) << a;
  for (const auto& region : Column(a, "region")) EXPECT_EQ(region, "EU");
  // zoe: the dashboard says which tile she may not read, why, and how to ask; the tile
  // itself is refused as her query would be.
  const json z = Json(Call("GET", "/api/v1/dashboards/sales/overview", "zoe"));
  EXPECT_FALSE(z["charts"][0]["access"]["can_read"].get<bool>());
  EXPECT_EQ(z["charts"][0]["access"]["port"], "crm.customers");
  ASSERT_EQ(z["charts"][0]["access"]["denied"].size(), 1u);  // sales.orders is public
  EXPECT_NE(
      z["charts"][0]["access"]["hint"].get<std::string>().find("request access to crm.customers"),
      std::string::npos);
  EXPECT_TRUE(z["charts"][1]["access"]["can_read"].get<bool>());  // sales.orders is public
  auto denied = Call("POST", tile, "zoe");
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(Call("POST", "/api/v1/dashboards/sales/overview/charts/totals", "zoe").status, 200);
}

TEST_F(ApiDashboardTest, AViewersFilterNarrowsTheChartsThatHaveItsColumn) {
  const json all = Json(Call("POST", "/api/v1/dashboards/sales/overview/charts/totals", "dana"));
  const json eu = Json(Call("POST", "/api/v1/dashboards/sales/overview/charts/totals", "dana",
                            R"({"filters": {"region": "EU"}})"));
  EXPECT_GT(all["rows"].size(), 1u);
  ASSERT_EQ(eu["rows"].size(), 1u) << eu;
  EXPECT_EQ(eu["rows"][0][0], "EU");
  // A value is a literal: it cannot change the statement.
  const json odd = Json(Call("POST", "/api/v1/dashboards/sales/overview/charts/totals", "dana",
                             R"({"filters": {"region": "EU' or '1'='1"}})"));
  EXPECT_TRUE(odd["rows"].empty()) << odd;
}

TEST_F(ApiDashboardTest, MembersSaveDashboardsOthersAreRefused) {
  const std::string body =
      json(
          {{"owner", "ben"},
           {"description", "Saved from the console"},
           {"charts",
            json::array(
                {{{"name", "amounts"},
                  {"title", "Amounts"},
                  {"sql", "select region, sum(amount) as amount from sales.orders group by region"},
                  {"vegaLite", {{"mark", "bar"}}}}})}})
          .dump();
  auto dana = Call("PUT", "/api/v1/domains/sales/dashboards/mine", "dana", body);
  EXPECT_EQ(dana.status, 403) << dana.body;
  EXPECT_FALSE(fs::exists(*dir_ / "mesh/domains/sales/dashboards/mine.yaml"));
  auto ben = Call("PUT", "/api/v1/domains/sales/dashboards/mine", "ben", body);
  ASSERT_EQ(ben.status, 201) << ben.body;
  json create = json::parse(body);
  create["create"] = true;
  EXPECT_EQ(Call("PUT", "/api/v1/domains/sales/dashboards/mine", "ben", create.dump()).status, 409);
  EXPECT_TRUE(fs::exists(*dir_ / "mesh/domains/sales/dashboards/mine.yaml"));
  auto shown = Json(Call("GET", "/api/v1/dashboards/sales/mine", "dana"));
  EXPECT_EQ(shown["charts"][0]["vegaLite"]["mark"], "bar");
  EXPECT_FALSE(shown["can_edit"].get<bool>());
  // A chart the guard refuses is not saved, and the file is put back.
  json bad = json::parse(body);
  bad["charts"][0]["sql"] = "select * from read_csv('/etc/passwd')";
  auto refused = Call("PUT", "/api/v1/domains/sales/dashboards/mine", "ben", bad.dump());
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("the query would be refused"), std::string::npos);
  auto again = Json(Call("GET", "/api/v1/dashboards/sales/mine", "dana"));
  EXPECT_EQ(again["charts"][0]["sql"],
            "select region, sum(amount) as amount from sales.orders group by region");
}

TEST(ChartSql, FiltersGoWhereTheChartPutsThem) {
  const std::string sql =
      "select region, amount from sales.orders [[ where region = {{region}} ]] "
      "order by amount desc limit 1";
  std::set<std::string> named;
  EXPECT_EQ(spec::ExpandChartSql(sql, {{"region", "'EU'"}}, &named),
            "select region, amount from sales.orders  where region = 'EU'  "
            "order by amount desc limit 1");
  EXPECT_EQ(named, std::set<std::string>{"region"});
  // No value: the optional part goes.
  EXPECT_EQ(spec::ExpandChartSql(sql, {}),
            "select region, amount from sales.orders  order by amount desc limit 1");
  // A part naming two filters stays only when both have a value.
  const std::string two = "select 1 [[ where a = {{ a }} and b = {{b}} ]]";
  EXPECT_EQ(spec::ExpandChartSql(two, {{"a", "1"}}), "select 1 ");
  EXPECT_EQ(spec::ExpandChartSql(two, {{"a", "1"}, {"b", "2"}}),
            "select 1  where a = 1 and b = 2 ");
  // SQL naming no filter is left as it is, nested lists and all.
  EXPECT_EQ(spec::ExpandChartSql("select [[1, 2]] as l", {}), "select [[1, 2]] as l");
  // Mistakes.
  for (const std::string bad :
       {"select {{region}}", "select 1 [[ where a = {{a}}", "select 1 [[ where a = {{a ]]",
        "select 1 [[ [[ {{a}} ]] ]]", "select 1 ]] {{a}}", "select 1 [[ {{}} ]]"}) {
    EXPECT_THROW(spec::ExpandChartSql(bad, {}), Error) << bad;
  }
}

TEST_F(ApiDashboardTest, AFilterTheChartPlacesNarrowsItBeforeItsLimit) {
  // The largest order, in the region picked when one is: the filter is inside the SQL, so
  // it applies before `limit 1` (filtering the result would keep only the overall largest).
  json body = {
      {"owner", "ben"},
      {"filters", json::array({{{"name", "region"}, {"column", "region"}, {"label", "Region"}}})},
      {"charts", json::array({{{"name", "largest"},
                               {"title", "The largest order"},
                               {"sql",
                                "select region, amount from sales.orders\n"
                                "[[ where region = {{region}} ]]\n"
                                "order by amount desc, region limit 1"}}})}};
  auto saved = Call("PUT", "/api/v1/domains/sales/dashboards/largest", "ben", body.dump());
  ASSERT_EQ(saved.status, 201) << saved.body;
  // It reads sales.orders, whatever the filter: its ports and its lineage edge say so.
  const json shown = Json(Call("GET", "/api/v1/dashboards/sales/largest", "dana"));
  EXPECT_EQ(shown["charts"][0]["ports"], json::array({"sales.orders"})) << shown;
  const std::string tile = "/api/v1/dashboards/sales/largest/charts/largest";
  const json overall = Json(Call("POST", tile, "dana"));
  ASSERT_EQ(overall["rows"].size(), 1u) << overall;
  const std::string top_region = overall["rows"][0][0].get<std::string>();
  // Another region that has orders.
  const json totals = Json(Call("POST", "/api/v1/dashboards/sales/overview/charts/totals", "dana"));
  std::string other;
  for (const auto& row : totals["rows"]) {
    if (row[0].is_string() && row[0].get<std::string>() != top_region) other = row[0];
  }
  ASSERT_FALSE(other.empty()) << totals;
  const json narrowed =
      Json(Call("POST", tile, "dana", json({{"filters", {{"region", other}}}}).dump()));
  ASSERT_EQ(narrowed["rows"].size(), 1u) << narrowed;
  EXPECT_EQ(narrowed["rows"][0][0], other);
  // A value is a literal here too.
  const json odd =
      Json(Call("POST", tile, "dana", json({{"filters", {{"region", "EU' or '1'='1"}}}}).dump()));
  EXPECT_TRUE(odd["rows"].empty()) << odd;
  // A chart naming a filter the dashboard lacks is not saved.
  body["charts"][0]["sql"] = "select region from sales.orders [[ where region = {{country}} ]]";
  auto refused = Call("PUT", "/api/v1/domains/sales/dashboards/largest", "ben", body.dump());
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("names no filter of the dashboard: {{country}}"), std::string::npos)
      << refused.body;
}

}  // namespace
