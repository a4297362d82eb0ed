// The REST API (DESIGN §6) through Api::Handle — every endpoint, each auth outcome,
// the error statuses, and the same governance outcomes as the command line — plus
// the real server over loopback for what only the network shows.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "build/runner.h"
#include "catalog/catalog.h"
#include "core/diagnostics.h"
#include "governance/tokens.h"
#include "server/api.h"
#include "spec/loader.h"
#include "spec/validate.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace canopy;

namespace {

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("canopy-api-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    fs::copy(fs::path(CANOPY_TEST_DIR) / "governance/mesh", *dir_ / "mesh",
             fs::copy_options::recursive);
    Diagnostics diagnostics;
    mesh_ = new spec::Mesh(spec::LoadMesh((*dir_ / "mesh").string(), diagnostics));
    spec::ValidateMesh(*mesh_, diagnostics);
    ASSERT_FALSE(diagnostics.HasErrors());
    catalog_ = catalog::OpenCatalog(Location()).release();
    auto storage = build::NewLocalStorage();
    auto report = build::RunBuild(*mesh_, *catalog_, *storage, {}, nullptr);
    ASSERT_TRUE(report.ok());
    for (const char* user : {"dana", "zoe", "carl", "erin", "ben"}) {
      (*tokens_)[user] = governance::IssueToken(*catalog_, user).token;
    }
  }
  static void TearDownTestSuite() {
    delete catalog_;
    delete mesh_;
    fs::remove_all(*dir_);
    delete dir_;
  }
  // The one catalog of the test, lent without giving up ownership.
  static std::shared_ptr<catalog::CatalogStore> Lease() {
    return {catalog_, [](catalog::CatalogStore*) {}};
  }
  static std::string Location() { return (*dir_ / "mesh/.canopy/catalog.db").string(); }

  server::HttpResponse Call(const std::string& method, const std::string& path,
                            const std::string& user = "", const std::string& body = "",
                            std::map<std::string, std::string> query = {}) {
    server::Api api(*mesh_, Lease, "test");
    server::HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.query = std::move(query);
    if (!user.empty()) request.authorization = "Bearer " + tokens_->at(user);
    auto response = api.Handle(request);
    if (response.stream) {
      response.stream([&](std::string_view piece) {
        response.body.append(piece);
        return true;
      });
    }
    return response;
  }
  json Json(const server::HttpResponse& response) { return json::parse(response.body); }

  static fs::path* dir_;
  static spec::Mesh* mesh_;
  static catalog::CatalogStore* catalog_;
  static std::map<std::string, std::string>* tokens_;
};

fs::path* ApiTest::dir_ = nullptr;
spec::Mesh* ApiTest::mesh_ = nullptr;
catalog::CatalogStore* ApiTest::catalog_ = nullptr;
std::map<std::string, std::string>* ApiTest::tokens_ = new std::map<std::string, std::string>;

TEST_F(ApiTest, HealthNeedsNoToken) {
  auto response = Call("GET", "/api/v1/health");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(Json(response)["status"], "ok");
}

TEST_F(ApiTest, EveryOtherEndpointNeedsAValidToken) {
  for (const char* path : {"/api/v1/me", "/api/v1/products", "/api/v1/domains",
                           "/api/v1/openapi.json", "/api/v1/search", "/api/v1/grants"}) {
    auto none = Call("GET", path);
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_EQ(Json(none)["error"]["code"], "unauthenticated") << path;
  }
  server::Api api(*mesh_, Lease, "test");
  auto with = [&](const std::string& header) {
    server::HttpRequest request{"GET", "/api/v1/me", {}, "", header};
    return api.Handle(request).status;
  };
  const std::string dana = tokens_->at("dana");
  EXPECT_EQ(with("Bearer " + dana), 200);
  EXPECT_EQ(with(dana), 401);                                    // no scheme
  EXPECT_EQ(with("Basic " + dana), 401);                         // wrong scheme
  EXPECT_EQ(with("Bearer cnp_1_" + std::string(64, '0')), 401);  // forged secret
  std::string tampered = dana;
  tampered.back() = tampered.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(with("Bearer " + tampered), 401);                               // one character off
  EXPECT_EQ(with("Bearer cnp_999_" + dana.substr(dana.size() - 64)), 401);  // other id
  EXPECT_EQ(with("Bearer ' or 1=1 --"), 401);
  // Revoked tokens stop working at once.
  auto issued = governance::IssueToken(*catalog_, "dana");
  EXPECT_EQ(with("Bearer " + issued.token), 200);
  ASSERT_TRUE(catalog_->RevokeToken(issued.id, "now"));
  EXPECT_EQ(with("Bearer " + issued.token), 401);
}

TEST_F(ApiTest, MeSaysWhoTheTokenBelongsTo) {
  auto me = Json(Call("GET", "/api/v1/me", "erin"));
  EXPECT_EQ(me["principal"], "user:erin");
  EXPECT_EQ(me["admin"], true);
  EXPECT_EQ(Json(Call("GET", "/api/v1/me", "dana"))["admin"], false);
}

TEST_F(ApiTest, ProductsHidePrivateProductsOfOtherDomains) {
  auto names = [&](const std::string& user) {
    std::set<std::string> out;
    for (const auto& p : Json(Call("GET", "/api/v1/products", user))) {
      out.insert(p["domain"].get<std::string>() + "." + p["name"].get<std::string>());
    }
    return out;
  };
  EXPECT_EQ(names("zoe").count("hr.salaries"), 0u);
  EXPECT_EQ(names("zoe").count("crm.customers"), 1u);  // internal: discoverable by all
  EXPECT_EQ(names("erin").count("hr.salaries"), 1u);   // admins see everything
  EXPECT_EQ(Call("GET", "/api/v1/products/hr/salaries", "zoe").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/products/hr/salaries", "erin").status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/products/crm/nothing", "zoe").status, 404);
  auto search = Json(Call("GET", "/api/v1/search", "zoe", "", {{"q", "salaries"}}));
  EXPECT_TRUE(search.empty()) << search.dump();
}

TEST_F(ApiTest, AProductCarriesItsContractQualityAndAccess) {
  auto product = Json(Call("GET", "/api/v1/products/crm/customers", "dana"));
  EXPECT_EQ(product["owner"], "carl");
  EXPECT_FALSE(product["build_id"].is_null());
  EXPECT_EQ(product["outputs"][0]["sql_name"], "crm.customers");
  EXPECT_EQ(product["outputs"][0]["rows"], 6);
  EXPECT_EQ(product["outputs"][0]["columns"][1]["classification"], "pii");
  EXPECT_EQ(product["quality"].size(), 3u);
  EXPECT_EQ(product["access"]["can_read"], true);
  EXPECT_EQ(product["access"]["masked"].size(), 4u);
  EXPECT_EQ(product["freshness"]["status"], "fresh");
  auto zoe = Json(Call("GET", "/api/v1/products/crm/customers", "zoe"));
  EXPECT_EQ(zoe["access"]["can_read"], false);
  EXPECT_EQ(zoe["can_read"], false);
}

TEST_F(ApiTest, QueriesAreGovernedAsOnTheCommandLine) {
  auto masked =
      Call("POST", "/api/v1/query", "dana",
           R"j({"sql":"select id, email from crm.customers where email = 'ana@example.com'"})j");
  ASSERT_EQ(masked.status, 200) << masked.body;
  auto doc = Json(masked);
  EXPECT_EQ(doc["rows"].size(), 0u);
  EXPECT_EQ(doc["masked"], json::array({"email"}));
  auto filtered = Json(Call("POST", "/api/v1/query", "ben",
                            R"j({"sql":"select id from crm.customers order by id"})j"));
  EXPECT_EQ(filtered["rows"], json::parse("[[2],[4],[6]]"));
  auto denied = Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select * from crm.customers"})j");
  EXPECT_EQ(denied.status, 403);
  EXPECT_NE(Json(denied)["error"]["message"].get<std::string>().find("may not read crm.customers"),
            std::string::npos);
  auto refused =
      Call("POST", "/api/v1/query", "dana", R"j({"sql":"select * from read_csv('/etc/passwd')"})j");
  EXPECT_EQ(refused.status, 400);
  auto hidden = Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select * from hr.salaries"})j");
  EXPECT_EQ(hidden.status, 403);
  auto limited = Json(
      Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select * from range(50)","limit":5})j"));
  EXPECT_EQ(limited["rows"].size(), 5u);
  EXPECT_EQ(limited["truncated"], true);
}

TEST_F(ApiTest, BadRequestsGetFourHundreds) {
  EXPECT_EQ(Call("POST", "/api/v1/query", "dana", "{not json").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/query", "dana", "[1,2]").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/query", "dana", R"j({"sql":42})j").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/query", "dana", R"j({"sql":"select 1","limit":-1})j").status,
            400);
  EXPECT_EQ(Call("POST", "/api/v1/query", "dana", "{}").status, 400);
  EXPECT_EQ(Call("GET", "/api/v1/nothing", "dana").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/domains/nowhere", "dana").status, 404);
  EXPECT_EQ(Call("POST", "/api/v1/access-requests/999/approve", "carl").status, 404);
}

TEST_F(ApiTest, SampleRowsGoThroughGovernance) {
  auto sample =
      Json(Call("GET", "/api/v1/products/crm/customers/sample", "dana", "", {{"limit", "3"}}));
  ASSERT_EQ(sample["rows"].size(), 3u);
  EXPECT_EQ(sample["rows"][0][1].get<std::string>().rfind("h_", 0), 0u);  // name hashed
  EXPECT_EQ(Call("GET", "/api/v1/products/crm/customers/sample", "zoe").status, 403);
  EXPECT_EQ(
      Call("GET", "/api/v1/products/crm/customers/sample", "dana", "", {{"port", "nope"}}).status,
      404);
}

TEST_F(ApiTest, TheAccessWorkflow) {
  auto created = Call("POST", "/api/v1/access-requests", "zoe",
                      R"j({"product":"sales.orders","purpose":"nothing"})j");
  // sales.orders is public: asking is allowed but pointless; ask for crm instead.
  EXPECT_EQ(created.status, 201);
  auto request = Call("POST", "/api/v1/access-requests", "zoe",
                      R"j({"product":"crm.customers","purpose":"APAC study"})j");
  ASSERT_EQ(request.status, 201) << request.body;
  const int64_t id = Json(request)["id"];
  EXPECT_EQ(Call("POST", "/api/v1/access-requests", "zoe",
                 R"j({"product":"crm.customers","purpose":"  "})j")
                .status,
            400);
  EXPECT_EQ(
      Call("POST", "/api/v1/access-requests", "zoe", R"j({"product":"hr.salaries","purpose":"x"})j")
          .status,
      404);
  // The owner sees it in the inbox, and may decide; others may not.
  bool decidable = false;
  for (const auto& r : Json(Call("GET", "/api/v1/access-requests", "carl"))) {
    if (r["id"] == id) decidable = r["can_decide"];
  }
  EXPECT_TRUE(decidable);
  const std::string approve = "/api/v1/access-requests/" + std::to_string(id) + "/approve";
  EXPECT_EQ(Call("POST", approve, "dana", "{}").status, 403);
  EXPECT_EQ(Call("POST", approve, "zoe", "{}").status, 403);
  EXPECT_EQ(
      Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select count(*) from crm.customers"})j")
          .status,
      403);
  auto approved = Call("POST", approve, "carl", R"j({"note":"one quarter"})j");
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(Json(approved)["status"], "approved");
  EXPECT_EQ(Call("POST", approve, "carl", "{}").status, 409);
  auto rows =
      Json(Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select id from crm.customers"})j"));
  EXPECT_EQ(rows["rows"], json::parse("[[5]]"));
  // The grant shows for zoe and for the owner.
  bool held = false;
  for (const auto& g : Json(Call("GET", "/api/v1/grants", "zoe"))) {
    held = held || (g["product"] == "crm.customers" && g["grantee"] == "user:zoe");
  }
  EXPECT_TRUE(held);
  // Revoke through the API.
  EXPECT_EQ(Call("DELETE", "/api/v1/grants", "dana", "",
                 {{"product", "crm.customers"}, {"grantee", "user:zoe"}})
                .status,
            403);
  EXPECT_EQ(Call("DELETE", "/api/v1/grants", "carl", "",
                 {{"product", "crm.customers"}, {"grantee", "user:zoe"}})
                .status,
            200);
  EXPECT_EQ(
      Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select count(*) from crm.customers"})j")
          .status,
      403);
  EXPECT_EQ(Call("POST", "/api/v1/grants", "carl",
                 R"j({"product":"crm.customers","grantee":"user:nobody"})j")
                .status,
            400);
  EXPECT_EQ(Call("POST", "/api/v1/grants", "carl",
                 R"j({"product":"crm.customers","grantee":"user:zoe"})j")
                .status,
            201);
  EXPECT_EQ(Call("POST", "/api/v1/grants", "carl",
                 R"j({"product":"crm.customers","grantee":"user:zoe"})j")
                .status,
            409);
}

TEST_F(ApiTest, GovernanceAndAuditAreForAdmins) {
  ASSERT_EQ(Call("POST", "/api/v1/query", "dana", R"j({"sql":"select 1"})j").status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/audit", "dana").status, 403);
  EXPECT_EQ(Call("GET", "/api/v1/governance", "dana").status, 403);
  auto audit = Json(Call("GET", "/api/v1/audit", "erin", "", {{"action", "query"}}));
  EXPECT_EQ(audit["verified"], true);
  ASSERT_FALSE(audit["entries"].empty());
  for (const auto& e : audit["entries"]) EXPECT_EQ(e["action"], "query");
  auto governance = Json(Call("GET", "/api/v1/governance", "erin"));
  EXPECT_EQ(governance["masks"].size(), 2u);
  EXPECT_EQ(governance["rules"][0]["name"], "product-has-owner");
  EXPECT_TRUE(governance["rules"][0]["violations"].empty());
}

TEST_F(ApiTest, LineageGoesUpAndDown) {
  auto graph = Json(Call("GET", "/api/v1/lineage/crm/customers", "dana"));
  std::set<std::pair<std::string, std::string>> edges;
  for (const auto& e : graph["edges"]) {
    edges.insert({e["from"].get<std::string>(), e["to"].get<std::string>()});
  }
  EXPECT_EQ(edges.count({"file:crm/data/customers.csv", "crm.customers"}), 1u);
  EXPECT_EQ(edges.count({"crm.customers", "finance.exposure"}), 1u);
  EXPECT_EQ(edges.count({"sales.orders", "finance.exposure"}), 0u);  // not this product's lineage
}

TEST_F(ApiTest, TheOpenApiDocumentDescribesEveryEndpoint) {
  auto doc = Json(Call("GET", "/api/v1/openapi.json", "dana"));
  EXPECT_EQ(doc["openapi"], "3.0.3");
  for (const char* path :
       {"/api/v1/health", "/api/v1/me", "/api/v1/domains", "/api/v1/domains/{domain}",
        "/api/v1/products", "/api/v1/products/{domain}/{product}",
        "/api/v1/products/{domain}/{product}/sample", "/api/v1/search", "/api/v1/query",
        "/api/v1/lineage/{domain}/{product}", "/api/v1/access-requests",
        "/api/v1/access-requests/{id}/approve", "/api/v1/access-requests/{id}/deny",
        "/api/v1/grants", "/api/v1/governance", "/api/v1/audit", "/api/v1/openapi.json"}) {
    ASSERT_TRUE(doc["paths"].contains(path)) << path;
    for (const auto& [method, operation] : doc["paths"][path].items()) {
      EXPECT_TRUE(operation.contains("responses")) << method << " " << path;
      EXPECT_TRUE(operation.contains("summary")) << method << " " << path;
    }
  }
}

// The real server, over loopback: what only the network shows.
TEST(ServerTest, ServesLimitsBodiesAndStopsGracefully) {
  const fs::path dir = fs::temp_directory_path() / ("canopy-serve-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(fs::path(CANOPY_TEST_DIR) / "governance/mesh", dir / "mesh",
           fs::copy_options::recursive);
  const std::string mesh = (dir / "mesh").string();
  ASSERT_EQ(std::system(("cd " + mesh + " && " + CANOPY_BINARY + " build >/dev/null 2>&1").c_str()),
            0);
  const std::string token_file = (dir / "token").string();
  ASSERT_EQ(std::system(("cd " + mesh + " && " + CANOPY_BINARY + " token create dana >" +
                         token_file + " 2>/dev/null")
                            .c_str()),
            0);
  std::string token;
  std::ifstream(token_file) >> token;
  const int port = 20000 + ::getpid() % 20000;
  const pid_t child = fork();
  if (child == 0) {
    const std::string log = (dir / "serve.log").string();
    freopen(log.c_str(), "w", stderr);
    execl(CANOPY_BINARY, CANOPY_BINARY, "--mesh", mesh.c_str(), "serve", "--listen",
          ("127.0.0.1:" + std::to_string(port)).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  httplib::Client client("127.0.0.1", port);
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    auto health = client.Get("/api/v1/health");
    up = health && health->status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << "the server did not start";
  httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto me = client.Get("/api/v1/me", auth);
  ASSERT_TRUE(me);
  EXPECT_EQ(me->status, 200);
  std::string big(2 << 20, 'x');
  auto large = client.Post("/api/v1/query", auth, big, "application/json");
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 413);
  auto query = client.Post("/api/v1/query", auth,
                           R"j({"sql":"select id, email from crm.customers order by id"})j",
                           "application/json");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->status, 200);
  EXPECT_EQ(json::parse(query->body)["rows"].size(), 6u);
  auto ui = client.Get("/");
  ASSERT_TRUE(ui);
  EXPECT_EQ(ui->status, 200);
  EXPECT_NE(ui->get_header_value("Content-Type").find("text/html"), std::string::npos);
  // SIGTERM: the server finishes and exits 0.
  kill(child, SIGTERM);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The log has one line per request, and never the token.
  std::ifstream log(dir / "serve.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(token.substr(10)), std::string::npos);
  EXPECT_NE(text.find("POST /api/v1/query 413"), std::string::npos) << text;
  EXPECT_NE(text.find("GET /api/v1/me 200"), std::string::npos) << text;
  EXPECT_NE(text.find("user:dana"), std::string::npos);
  EXPECT_EQ(text.find("h_"), std::string::npos);  // no result data
  fs::remove_all(dir);
}

}  // namespace
