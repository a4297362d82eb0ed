// The REST API (DESIGN §6) through Api::Handle — every endpoint, each auth outcome,
// the error statuses, and the same governance outcomes as the command line — plus
// the real server over loopback for what only the network shows.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "build/runner.h"
#include "catalog/catalog.h"
#include "core/diagnostics.h"
#include "core/scram.h"
#include "governance/auth_throttle.h"
#include "governance/tokens.h"
#include "pgwire/messages.h"
#include "pgwire/pgwire.h"
#include "server/api.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"
#include "support/test_store.h"
#include "unit/api_fixture.h"
#include "unit/cli_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace canopy;

namespace {

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    canopy::test::ShareCatalogInSuite();
    dir_ = new fs::path(fs::temp_directory_path() / ("canopy-api-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", *dir_ / "mesh",
             fs::copy_options::recursive);
    Diagnostics diagnostics;
    mesh_ = new spec::Mesh(spec::LoadMesh((*dir_ / "mesh").string(), diagnostics));
    spec::ValidateMesh(*mesh_, diagnostics);
    ASSERT_FALSE(diagnostics.HasErrors());
    catalog_ = canopy::test::OpenTestCatalog(Location()).release();
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
    server::HttpRequest request{"GET", "/api/v1/me", {}, "", header, ""};
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

// The server keeps answers to catalog reads, but a change made anywhere — here through
// another connection, as `canopy grant` in another process would — shows at once, and a
// kept answer is never given to another principal or to a token that is no longer valid.
TEST_F(ApiTest, KeptAnswersNeverOutliveAChangeOrCrossPrincipals) {
  server::Api api(*mesh_, Lease, "test");
  auto get = [&](const std::string& path, const std::string& header) {
    server::HttpRequest request{"GET", path, {}, "", header, ""};
    return api.Handle(request);
  };
  const std::string card = "/api/v1/products/crm/customers";
  const std::string uma = "Bearer " + governance::IssueToken(*catalog_, "uma").token;
  const std::string zoe = "Bearer " + tokens_->at("zoe");
  auto can_read = [&](const std::string& header) {
    auto response = get(card, header);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body)["access"]["can_read"].get<bool>();
  };
  EXPECT_FALSE(can_read(zoe));
  EXPECT_FALSE(can_read(zoe));  // answered again, unchanged
  auto other = canopy::test::OpenTestCatalog(Location());
  other->AddGrant({0, "crm", "customers", "user:zoe", "carl", "now", std::nullopt});
  EXPECT_TRUE(can_read(zoe)) << "a grant made elsewhere shows at once";
  ASSERT_TRUE(other->RevokeGrant("crm", "customers", "user:zoe"));
  EXPECT_FALSE(can_read(zoe)) << "so does its revocation";

  // Answers are per principal: erin (admin) sees hr.salaries, zoe never does.
  const std::string erin = "Bearer " + tokens_->at("erin");
  EXPECT_EQ(get("/api/v1/products/hr/salaries", erin).status, 200);
  EXPECT_EQ(get("/api/v1/products/hr/salaries", zoe).status, 404);
  EXPECT_NE(get("/api/v1/products", erin).body, get("/api/v1/products", zoe).body);

  // A forged token gets nothing a valid one was answered; a revoked one, nothing at all.
  EXPECT_TRUE(can_read(uma));
  std::string forged = uma;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(get(card, forged).status, 401);
  const auto dot = uma.find('_', 11);
  const int64_t id = std::stoll(uma.substr(11, dot - 11));
  ASSERT_TRUE(other->RevokeToken(id, "now"));
  EXPECT_EQ(get(card, uma).status, 401);
}

// A kept sandbox is replaced by a fresh one after a thousand queries (DuckDB's buffer pool
// would otherwise hold memory for each of them): the fresh one masks and filters as the old
// one did, for every reader, with no answer different across the change.
TEST_F(ApiTest, ASandboxReplacedAfterManyQueriesGovernsAsBefore) {
  const std::string masked = R"j({"sql":"select id, email from crm.customers order by id"})j";
  const std::string filtered = R"j({"sql":"select id from crm.customers order by id"})j";
  const json dana_first = Json(Call("POST", "/api/v1/query", "dana", masked));
  const json ben_first = Json(Call("POST", "/api/v1/query", "ben", filtered));
  ASSERT_EQ(dana_first["masked"], json::array({"email"}));
  ASSERT_FALSE(dana_first["rows"].empty());
  for (const auto& row : dana_first["rows"]) {
    EXPECT_EQ(row[1].dump().find("@example.com"), std::string::npos) << row;
  }
  ASSERT_EQ(ben_first["rows"], json::parse("[[2],[4],[6]]"));
  // Each sandbox has a folder of its own (the links to the files it may read), removed with it.
  auto folders = [] {
    std::set<std::string> out;
    for (const auto& entry : fs::directory_iterator(*dir_ / "mesh/.canopy/sandboxes")) {
      out.insert(entry.path().filename().string());
    }
    return out;
  };
  const std::set<std::string> before = folders();
  for (int i = 0; i < 1010; ++i) {
    const json dana = Json(Call("POST", "/api/v1/query", "dana", masked));
    ASSERT_EQ(dana["rows"], dana_first["rows"]) << "query " << i;
    ASSERT_EQ(dana["masked"], dana_first["masked"]) << "query " << i;
    if (i % 100 == 0 || i >= 995) {
      ASSERT_EQ(Json(Call("POST", "/api/v1/query", "ben", filtered))["rows"], ben_first["rows"])
          << "query " << i;
    }
  }
  const std::set<std::string> after = folders();
  std::vector<std::string> gone;
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(),
                      std::back_inserter(gone));
  EXPECT_EQ(gone.size(), 1u) << "dana's sandbox, replaced once";
  EXPECT_EQ(after.size(), before.size());
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
  // A private port answers exactly as a port that does not exist.
  auto hidden = Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select * from hr.salaries"})j");
  auto unknown = Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select * from hr.salariez"})j");
  EXPECT_EQ(hidden.status, 400);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(Json(hidden)["error"]["code"], Json(unknown)["error"]["code"]);
  std::string unknown_message = Json(unknown)["error"]["message"].get<std::string>();
  unknown_message.replace(unknown_message.find("salariez"), 8, "salaries");
  EXPECT_EQ(Json(hidden)["error"]["message"].get<std::string>(), unknown_message);
  // The guard's verdicts are kept for statements tools repeat, per what the reader may
  // know: erin (an admin) reads the statement zoe was refused, and zoe is refused again.
  const std::string salaries = R"j({"sql":"select * from hr.salaries"})j";
  EXPECT_EQ(Call("POST", "/api/v1/query", "erin", salaries).status, 200);
  EXPECT_EQ(Call("POST", "/api/v1/query", "erin", salaries).status, 200);
  EXPECT_EQ(Call("POST", "/api/v1/query", "zoe", salaries).status, 400);
  auto limited = Json(
      Call("POST", "/api/v1/query", "zoe", R"j({"sql":"select * from range(50)","limit":5})j"));
  EXPECT_EQ(limited["rows"].size(), 5u);
  EXPECT_EQ(limited["truncated"], true);
  // A limit above the mesh's (1000 rows) is held to it: the mesh's limits are ceilings.
  auto raised = Json(Call("POST", "/api/v1/query", "zoe",
                          R"j({"sql":"select * from range(3000)","limit":5000})j"));
  EXPECT_EQ(raised["rows"].size(), 1000u);
  EXPECT_EQ(raised["truncated"], true);
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
  for (const char* path : {"/api/v1/health",
                           "/api/v1/me",
                           "/api/v1/domains",
                           "/api/v1/domains/{domain}",
                           "/api/v1/products",
                           "/api/v1/products/{domain}/{product}",
                           "/api/v1/products/{domain}/{product}/sample",
                           "/api/v1/search",
                           "/api/v1/query",
                           "/api/v1/lineage/{domain}/{product}",
                           "/api/v1/access-requests",
                           "/api/v1/access-requests/{id}/approve",
                           "/api/v1/access-requests/{id}/deny",
                           "/api/v1/grants",
                           "/api/v1/governance",
                           "/api/v1/audit",
                           "/api/v1/openapi.json",
                           "/api/v1/builder/sources",
                           "/api/v1/builder/vocabulary",
                           "/api/v1/builder/preview",
                           "/api/v1/domains/{domain}/products",
                           "/api/v1/domains/{domain}/products/{product}",
                           "/api/v1/domains/{domain}/products/{product}/flow",
                           "/api/v1/builds",
                           "/api/v1/dashboards",
                           "/api/v1/dashboards/{domain}/{dashboard}",
                           "/api/v1/dashboards/{domain}/{dashboard}/charts/{chart}",
                           "/api/v1/domains/{domain}/dashboards/{dashboard}"}) {
    ASSERT_TRUE(doc["paths"].contains(path)) << path;
    for (const auto& [method, operation] : doc["paths"][path].items()) {
      EXPECT_TRUE(operation.contains("responses")) << method << " " << path;
      EXPECT_TRUE(operation.contains("summary")) << method << " " << path;
    }
  }
}

// Entries cut off the end of the audit log are reported over HTTP too: the signed
// checkpoint still names the last entry. (Last of the ApiTest cases: it damages the
// suite's log.)
TEST_F(ApiTest, TheAuditEndpointReportsACutLog) {
  ASSERT_EQ(Call("POST", "/api/v1/query", "dana", R"j({"sql":"select 1"})j").status, 200);
  ASSERT_EQ(Json(Call("GET", "/api/v1/audit", "erin"))["verified"], true);
  const int64_t last = catalog_->Audit(0, 1 << 30).back().seq;
  const std::string cut = "DELETE FROM audit_log WHERE seq >= " + std::to_string(last - 1);
  ASSERT_TRUE(canopy::test::ExecuteOnCatalog(Location(), cut));
  auto audit = Json(Call("GET", "/api/v1/audit", "erin"));
  EXPECT_EQ(audit["verified"], false);
  EXPECT_EQ(audit["first_bad"], last - 1);
  EXPECT_NE(audit["problem"].get<std::string>().find("cut off the end"), std::string::npos)
      << audit.dump();
}

// The real server, over loopback: what only the network shows. The client is a raw
// socket, so the tests see exactly what goes over the wire (and can misbehave).
class Wire {
 public:
  struct Reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    std::vector<size_t> chunks;  // sizes of the chunks of a chunked body
    std::string Header(const std::string& name) const {
      auto it = headers.find(name);
      return it == headers.end() ? "" : it->second;
    }
  };

  explicit Wire(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    timeval timeout{10, 0};  // no test waits longer for one read
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~Wire() {
    if (fd_ >= 0) ::close(fd_);
  }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  // Whether response bytes are waiting, without reading them.
  bool Readable(int wait_ms = 0) {
    if (!buffered_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, wait_ms) == 1;
  }
  // True when the server closes the connection (after any response bytes).
  bool ClosedByPeer() {
    while (Fill()) buffered_.clear();
    return eof_;
  }

  // One response (interim 1xx responses are returned too); nullopt when the
  // connection ends or stalls first.
  std::optional<Reply> Read(bool head_request = false) {
    size_t end;
    while ((end = buffered_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Reply reply;
    std::istringstream lines(buffered_.substr(0, end));
    buffered_.erase(0, end + 4);
    std::string line;
    std::getline(lines, line);
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return std::nullopt;
    reply.status = std::atoi(line.c_str() + 9);
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    if (head_request || reply.status / 100 == 1) return reply;
    if (reply.Header("transfer-encoding") == "chunked") {
      for (;;) {
        size_t eol;
        while ((eol = buffered_.find("\r\n")) == std::string::npos) {
          if (!Fill()) return std::nullopt;
        }
        const size_t size = std::stoul(buffered_.substr(0, eol), nullptr, 16);
        while (buffered_.size() < eol + 2 + size + 2) {
          if (!Fill()) return std::nullopt;
        }
        reply.body.append(buffered_, eol + 2, size);
        buffered_.erase(0, eol + 2 + size + 2);
        if (size == 0) return reply;
        reply.chunks.push_back(size);
      }
    }
    if (!reply.Header("content-length").empty()) {
      const size_t length = std::stoul(reply.Header("content-length"));
      while (buffered_.size() < length) {
        if (!Fill()) return std::nullopt;
      }
      reply.body = buffered_.substr(0, length);
      buffered_.erase(0, length);
      return reply;
    }
    while (Fill()) {
    }
    if (!eof_) return std::nullopt;
    reply.body = std::move(buffered_);
    buffered_.clear();
    return reply;
  }

 private:
  bool Fill() {
    char data[65536];
    const ssize_t n = ::recv(fd_, data, sizeof data, 0);
    if (n <= 0) {
      eof_ = n == 0;
      return false;
    }
    buffered_.append(data, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffered_;
  bool eof_ = false;
};

std::string Request(const std::string& method, const std::string& target,
                    const std::string& token = "", const std::string& body = "",
                    const std::string& extra_headers = "") {
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  if (!body.empty() || method == "POST") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return request + extra_headers + "\r\n" + body;
}

// A `canopy serve` process on a free loopback port, its stderr in a log file.
struct Started {
  pid_t pid = -1;
  int port = 0;
  std::string log;
  bool up = false;  // it answered /api/v1/health
};

Started StartServer(const std::string& mesh, const fs::path& log_folder,
                    const std::string& pg_listen = "", const std::vector<std::string>& more = {}) {
  Started started;
  // A free port: let the kernel pick one, then give it to the server.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return started;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  started.port = ntohs(address.sin_port);
  ::close(probe);
  started.log = (log_folder / ("serve-" + std::to_string(started.port) + ".log")).string();
  const std::string listen = "127.0.0.1:" + std::to_string(started.port);
  started.pid = fork();
  if (started.pid == 0) {
    freopen(started.log.c_str(), "w", stderr);
    std::vector<std::string> args = {
        canopy::test::kCanopyBinary, "--mesh", mesh, "serve", "--listen", listen};
    if (!pg_listen.empty()) {
      args.emplace_back("--pg-listen");
      args.push_back(pg_listen);
    }
    args.insert(args.end(), more.begin(), more.end());
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(canopy::test::kCanopyBinary, argv.data());
    _exit(127);
  }
  for (int i = 0; i < 200 && !started.up; ++i) {
    Wire wire(started.port);
    if (wire.connected() && wire.Send(Request("GET", "/api/v1/health"))) {
      auto reply = wire.Read();
      started.up = reply && reply->status == 200;
    }
    if (!started.up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return started;
}

void StopServer(Started& server) {
  if (server.pid > 0) {
    kill(server.pid, SIGTERM);
    waitpid(server.pid, nullptr, 0);
    server.pid = -1;
  }
}

// One canopy serve process per test, on the governance mesh built once for all.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    canopy::test::ShareCatalogInSuite();
    dir_ = new fs::path(fs::temp_directory_path() / ("canopy-serve-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", *dir_ / "mesh",
             fs::copy_options::recursive);
    const std::string mesh = (*dir_ / "mesh").string();
    ASSERT_EQ(
        std::system(("cd " + mesh + " && " + canopy::test::kCanopyBinary + " build >/dev/null 2>&1")
                        .c_str()),
        0);
    const std::string token_file = (*dir_ / "token").string();
    ASSERT_EQ(std::system(("cd " + mesh + " && " + canopy::test::kCanopyBinary +
                           " token create dana >" + token_file + " 2>/dev/null")
                              .c_str()),
              0);
    token_ = new std::string;
    std::ifstream(token_file) >> *token_;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete token_;
  }

  void SetUp() override {
    ASSERT_FALSE(token_->empty());
    const Started started = StartServer((*dir_ / "mesh").string(), *dir_);
    child_ = started.pid;
    port_ = started.port;
    log_ = started.log;
    ASSERT_TRUE(started.up) << "the server did not start";
  }
  void TearDown() override {
    if (child_ > 0) Stop();
  }

  // SIGTERM, then the exit status.
  int Stop() {
    kill(child_, SIGTERM);
    int status = 0;
    waitpid(child_, &status, 0);
    child_ = -1;
    return status;
  }
  std::string Log() const {
    std::ifstream log(log_);
    return std::string((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  }
  // One request on a new connection.
  std::optional<Wire::Reply> Call(const std::string& request) {
    Wire wire(port_);
    if (!wire.connected() || !wire.Send(request)) return std::nullopt;
    return wire.Read();
  }
  bool Healthy() {
    auto reply = Call(Request("GET", "/api/v1/health"));
    return reply && reply->status == 200;
  }
  static std::string ErrorCodeOf(const Wire::Reply& reply) {
    auto doc = json::parse(reply.body, nullptr, false);
    return doc.is_discarded() ? "(not json: " + reply.body + ")"
                              : doc["error"]["code"].get<std::string>();
  }

  static fs::path* dir_;
  static std::string* token_;
  int port_ = 0;
  pid_t child_ = -1;
  std::string log_;
};

fs::path* ServerTest::dir_ = nullptr;
std::string* ServerTest::token_ = nullptr;

TEST_F(ServerTest, ServesLimitsBodiesAndStopsGracefully) {
  const std::string& token = *token_;
  Wire wire(port_);  // one keep-alive connection for all of it
  ASSERT_TRUE(wire.Send(Request("GET", "/api/v1/me", token)));
  auto me = wire.Read();
  ASSERT_TRUE(me);
  EXPECT_EQ(me->status, 200);
  EXPECT_EQ(json::parse(me->body)["principal"], "user:dana");
  auto query = Request("POST", "/api/v1/query", token,
                       R"j({"sql":"select id, email from crm.customers order by id"})j");
  ASSERT_TRUE(wire.Send(query));
  auto rows = wire.Read();
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->status, 200);
  EXPECT_EQ(json::parse(rows->body)["rows"].size(), 6u);
  ASSERT_TRUE(wire.Send(Request("GET", "/")));
  auto ui = wire.Read();
  ASSERT_TRUE(ui);
  EXPECT_EQ(ui->status, 200);
  EXPECT_NE(ui->Header("content-type").find("text/html"), std::string::npos);
  // A client that sends a whole 2 MiB body before reading still gets its 413.
  ASSERT_TRUE(wire.Send(Request("POST", "/api/v1/query", token, std::string(2 << 20, 'x'))));
  auto large = wire.Read();
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 413);
  EXPECT_EQ(ErrorCodeOf(*large), "payload_too_large");
  EXPECT_EQ(large->Header("connection"), "close");
  // SIGTERM: the server finishes and exits 0.
  const int status = Stop();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The log has one line per request, and never the token.
  const std::string text = Log();
  EXPECT_EQ(text.find(token.substr(10)), std::string::npos);
  EXPECT_NE(text.find("POST /api/v1/query 413"), std::string::npos) << text;
  EXPECT_NE(text.find("POST /api/v1/query 200"), std::string::npos) << text;
  EXPECT_NE(text.find("GET /api/v1/me 200"), std::string::npos) << text;
  EXPECT_NE(text.find("GET / 200"), std::string::npos) << text;
  EXPECT_NE(text.find("user:dana"), std::string::npos);
  EXPECT_EQ(text.find("h_"), std::string::npos);  // no result data (masked values start so)
  EXPECT_NE(text.find("received SIGTERM"), std::string::npos) << text;
  EXPECT_NE(text.find(" stopped"), std::string::npos) << text;
}

TEST_F(ServerTest, AnUploadHasItsOwnLargerLimit) {
  // 2 MiB into a domain's uploads is read whole and judged (dana is no member of sales:
  // 403, not 413); the same body anywhere else is over the 1 MiB limit.
  std::string csv = "a,b\n";
  while (csv.size() < (size_t{2} << 20)) csv += "1,2\n";
  Wire upload(port_);
  ASSERT_TRUE(
      upload.Send(Request("POST", "/api/v1/domains/sales/uploads?name=big.csv", *token_, csv)));
  auto judged = upload.Read();
  ASSERT_TRUE(judged);
  EXPECT_EQ(judged->status, 403) << judged->body;
  Wire other(port_);
  ASSERT_TRUE(other.Send(Request("POST", "/api/v1/domains/sales/products", *token_, csv)));
  auto refused = other.Read();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  // Over the upload limit (64 MiB by default), from the headers alone.
  Wire huge(port_);
  std::string head = Request("POST", "/api/v1/domains/sales/uploads?name=huge.csv", *token_);
  head.replace(head.find("Content-Length: 0"), 17, "Content-Length: 67108865");
  ASSERT_TRUE(huge.Send(head));
  auto too_large = huge.Read();
  ASSERT_TRUE(too_large);
  EXPECT_EQ(too_large->status, 413);
  EXPECT_TRUE(Healthy());
}

TEST_F(ServerTest, RefusesABodyOverTheLimitFromItsContentLength) {
  // 2 MiB announced, 1 KiB sent: the answer comes from the headers, without the body.
  Wire wire(port_);
  std::string head = Request("POST", "/api/v1/query", *token_);
  head.replace(head.find("Content-Length: 0"), 17, "Content-Length: 2097152");
  ASSERT_TRUE(wire.Send(head + std::string(1024, 'x')));
  auto reply = wire.Read();
  ASSERT_TRUE(reply) << "no answer before the body was sent";
  EXPECT_EQ(reply->status, 413);
  EXPECT_EQ(ErrorCodeOf(*reply), "payload_too_large");
  wire.ShutdownWrite();
  EXPECT_TRUE(wire.ClosedByPeer());
  // With Expect: 100-continue, a body over the limit is refused before it is sent…
  Wire expect(port_);
  head.replace(head.find("\r\n\r\n"), 4, "\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_TRUE(expect.Send(head));
  auto refused = expect.Read();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  // …and one of exactly the limit is invited, then read whole.
  std::string body = R"j({"sql":"select 1 as one","pad":")j";
  body += std::string((1 << 20) - body.size() - 2, ' ') + "\"}";
  ASSERT_EQ(body.size(), 1u << 20);
  Wire exact(port_);
  std::string exact_head = Request("POST", "/api/v1/query", *token_, body);
  exact_head.resize(exact_head.size() - body.size());
  exact_head.replace(exact_head.find("\r\n\r\n"), 4, "\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_TRUE(exact.Send(exact_head));
  auto go_on = exact.Read();
  ASSERT_TRUE(go_on);
  EXPECT_EQ(go_on->status, 100);
  ASSERT_TRUE(exact.Send(body));
  auto answered = exact.Read();
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200) << answered->body;
  EXPECT_TRUE(Healthy());
}

TEST_F(ServerTest, RefusesAChunkedBodyAsSoonAsItPassesTheLimit) {
  Wire wire(port_);
  ASSERT_TRUE(wire.Send("POST /api/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                        *token_ + "\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // 17 chunks of 64 KiB: just over 1 MiB, and no final chunk. The server must answer
  // without waiting for the end of a body it will not take.
  const std::string chunk = "10000\r\n" + std::string(65536, 'x') + "\r\n";
  for (int i = 0; i < 17; ++i) {
    if (!wire.Send(chunk)) break;  // the server may close once it has answered
  }
  auto reply = wire.Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413);
  EXPECT_EQ(ErrorCodeOf(*reply), "payload_too_large");
  // A chunked body within the limit is taken.
  Wire small(port_);
  const std::string sql = R"j({"sql":"select 42 as answer"})j";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", sql.size());
  ASSERT_TRUE(small.Send(
      "POST /api/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + *token_ +
      "\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\n" + sql + "\r\n0\r\n\r\n"));
  auto ok = small.Read();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(json::parse(ok->body)["rows"], json::parse("[[42]]"));
  EXPECT_TRUE(Healthy());
}

TEST_F(ServerTest, RefusesAnOversizedHeaderWith431) {
  auto big_header = Call(Request("GET", "/api/v1/health", "", "",
                                 "X-Padding: " + std::string(32 * 1024, 'a') + "\r\n"));
  ASSERT_TRUE(big_header);
  EXPECT_EQ(big_header->status, 431);
  EXPECT_EQ(ErrorCodeOf(*big_header), "header_too_large");
  auto long_uri = Call(Request("GET", "/" + std::string(20 * 1024, 'a')));
  ASSERT_TRUE(long_uri);
  EXPECT_EQ(long_uri->status, 431);
  // A line that never ends is cut at the limit too.
  Wire endless(port_);
  ASSERT_TRUE(endless.Send("GET /"));
  bool refused_early = false;
  for (int i = 0; i < 64 && !refused_early; ++i) {
    if (!endless.Send(std::string(16 * 1024, 'a'))) break;
    refused_early = endless.Readable();
  }
  auto endless_reply = endless.Read();
  ASSERT_TRUE(endless_reply);
  EXPECT_EQ(endless_reply->status, 431);
  EXPECT_TRUE(Healthy());
}

TEST_F(ServerTest, AnswersMalformedRequestsWith400AndKeepsServing) {
  for (const std::string& garbage :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
        std::string("GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
        std::string("BREW /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("POST /api/v1/query HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n0\r\n\r\n")}) {
    Wire wire(port_);
    ASSERT_TRUE(wire.Send(garbage));
    auto reply = wire.Read();
    ASSERT_TRUE(reply) << garbage;
    EXPECT_EQ(reply->status, 400) << garbage;
    EXPECT_EQ(ErrorCodeOf(*reply), "bad_request") << garbage;
    EXPECT_EQ(reply->Header("x-content-type-options"), "nosniff");
    wire.ShutdownWrite();
    EXPECT_TRUE(wire.ClosedByPeer()) << garbage;
  }
  EXPECT_TRUE(Healthy());
  EXPECT_NE(Log().find(" 400 "), std::string::npos);
}

TEST_F(ServerTest, SlowClientsDoNotStallOthers) {
  // Sixteen connections that say nothing, and eight that trickle a header a byte at a
  // time, while others are served.
  std::vector<std::unique_ptr<Wire>> idle;
  for (int i = 0; i < 16; ++i) idle.push_back(std::make_unique<Wire>(port_));
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    std::vector<std::unique_ptr<Wire>> slow;
    for (int i = 0; i < 8; ++i) slow.push_back(std::make_unique<Wire>(port_));
    const std::string text = Request("GET", "/api/v1/health", "", "", "X-Slow: 1\r\n");
    for (size_t at = 0; !done && at < text.size(); ++at) {
      for (auto& wire : slow) wire->Send(text.substr(at, 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const auto start = std::chrono::steady_clock::now();
  double slowest_ms = 0;
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto me = Call(Request("GET", "/api/v1/me", *token_));
    slowest_ms = std::max(
        slowest_ms,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(me);
    EXPECT_EQ(me->status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  done = true;
  trickle.join();
  EXPECT_LT(slowest_ms, 1000.0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(ServerTest, StreamsAQueryResultIntactInLargeChunks) {
  Wire wire(port_);
  ASSERT_TRUE(wire.Send(Request(
      "POST", "/api/v1/query", *token_,
      R"j({"sql":"select range as n, 'row number ' || range as label from range(1000) order by n"})j")));
  auto reply = wire.Read();
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->status, 200) << reply->body;
  EXPECT_EQ(reply->Header("transfer-encoding"), "chunked");
  EXPECT_EQ(reply->Header("cache-control"), "no-store");
  auto doc = json::parse(reply->body);  // throws (and fails) if the JSON is cut or mixed up
  ASSERT_EQ(doc["rows"].size(), 1000u);
  for (size_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(doc["rows"][i], json::array({i, "row number " + std::to_string(i)}));
  }
  // Thousands of pieces went out as a few chunks of at least 16 KiB (the last may be less).
  ASSERT_GE(reply->chunks.size(), 2u);
  for (size_t i = 0; i + 1 < reply->chunks.size(); ++i) EXPECT_GE(reply->chunks[i], 16384u);
  // The connection goes on after a stream.
  ASSERT_TRUE(wire.Send(Request("GET", "/api/v1/health")));
  auto next = wire.Read();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST_F(ServerTest, DecodesQueriesAndServesTheUiWithItsHeaders) {
  // Percent-decoding in names and values, '+' as a space, a decoded path.
  auto two = Call(Request("GET", "/api/v1/products/crm/%63ustomers/sample?%6Cimit=%32", *token_));
  ASSERT_TRUE(two);
  ASSERT_EQ(two->status, 200) << two->body;
  EXPECT_EQ(json::parse(two->body)["rows"].size(), 2u);
  auto spaced = Call(Request("GET", "/api/v1/products/crm/customers/sample?port=no+such", *token_));
  ASSERT_TRUE(spaced);
  EXPECT_EQ(spaced->status, 404);
  EXPECT_NE(spaced->body.find("no port no such"), std::string::npos) << spaced->body;
  // The UI: files, the single-page app for other paths, and the security headers.
  auto index = Call(Request("GET", "/"));
  auto deep = Call(Request("GET", "/products/crm/customers"));
  ASSERT_TRUE(index && deep);
  EXPECT_EQ(deep->status, 200);
  EXPECT_EQ(deep->body, index->body);
  EXPECT_NE(index->Header("content-type").find("text/html"), std::string::npos);
  if (index->body.find("built without") == std::string::npos) {
    EXPECT_NE(index->Header("content-security-policy").find("default-src 'self'"),
              std::string::npos);
  }
  EXPECT_EQ(index->Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(index->Header("referrer-policy"), "no-referrer");
  EXPECT_EQ(index->Header("cache-control"), "no-store");
  Wire head(port_);
  ASSERT_TRUE(head.Send(Request("HEAD", "/")));
  auto headers = head.Read(/*head_request=*/true);
  ASSERT_TRUE(headers);
  EXPECT_EQ(headers->status, 200);
  EXPECT_EQ(headers->Header("content-length"), std::to_string(index->body.size()));
  auto health = Call(Request("GET", "/api/v1/health"));
  ASSERT_TRUE(health);
  EXPECT_EQ(health->Header("content-security-policy"), "");
  EXPECT_EQ(health->Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(health->Header("content-type"), "application/json");
  // Methods and paths that lead nowhere.
  auto post_ui = Call(Request("POST", "/nothing", "", "{}"));
  ASSERT_TRUE(post_ui);
  EXPECT_EQ(post_ui->status, 404);
  EXPECT_EQ(ErrorCodeOf(*post_ui), "not_found");
  auto patch = Call(Request("PATCH", "/api/v1/me", *token_, "{}"));
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 404);
}

TEST_F(ServerTest, SigtermLetsARequestInFlightFinish) {
  // A result far larger than the socket buffers, which this client does not read yet:
  // the request is in flight, the server waiting on the client, when SIGTERM comes.
  Wire streaming(port_);
  ASSERT_TRUE(streaming.Send(Request(
      "POST", "/api/v1/query", *token_,
      R"j({"sql":"select range as n, repeat('x', 20000) as wide from range(1000) order by n"})j")));
  Wire idle(port_);  // a keep-alive connection between requests
  ASSERT_TRUE(idle.Send(Request("GET", "/api/v1/health")));
  ASSERT_TRUE(idle.Read());
  ASSERT_TRUE(streaming.Readable(5000)) << "the response did not start";
  kill(child_, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int status = 0;
  EXPECT_EQ(waitpid(child_, &status, WNOHANG), 0) << "the server exited with a response unsent";
  EXPECT_TRUE(idle.ClosedByPeer());  // idle connections are closed at once
  Wire late(port_);
  EXPECT_FALSE(late.connected());  // and no new ones are accepted
  // The response in flight still arrives whole.
  auto reply = streaming.Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  auto doc = json::parse(reply->body);
  ASSERT_EQ(doc["rows"].size(), 1000u);
  EXPECT_EQ(doc["rows"][999][0], 999);
  EXPECT_EQ(doc["rows"][999][1].get<std::string>().size(), 20000u);
  EXPECT_TRUE(streaming.ClosedByPeer());  // and the connection ends with it
  // Then the server exits 0.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  pid_t done = 0;
  while ((done = waitpid(child_, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(done, child_) << "the server did not exit";
  child_ = -1;
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string text = Log();
  EXPECT_NE(text.find("received SIGTERM: finishing requests in flight"), std::string::npos);
  EXPECT_NE(text.find("POST /api/v1/query 200"), std::string::npos) << text;
  EXPECT_LT(text.find("received SIGTERM"), text.find("POST /api/v1/query 200")) << text;
  EXPECT_NE(text.find(" stopped"), std::string::npos);
}

// --- many servers on one catalog (issue 11) ---

// Two `canopy serve` processes on one mesh and one catalog — the test's store: one
// SQLite file, or one PostgreSQL schema. What is decided through one is enforced by the
// other on its very next request: neither keeps an answer past a catalog write.
class ServerClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PrepareMesh("canopy-cluster-", {"zoe", "carl", "frank"});
    if (HasFatalFailure()) return;
    for (Started* server : {&a_, &b_}) {
      *server = StartServer(mesh_, dir_);
      ASSERT_TRUE(server->up) << "a server did not start";
    }
  }
  void TearDown() override {
    for (Started* server : {&a_, &b_}) {
      if (server->pid <= 0) continue;
      kill(server->pid, SIGTERM);
      waitpid(server->pid, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  // The governance mesh, built, in a folder of its own, with a token for each of `users`.
  void PrepareMesh(const std::string& prefix, std::initializer_list<const char*> users) {
    dir_ = fs::temp_directory_path() / (prefix + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", dir_ / "mesh",
             fs::copy_options::recursive);
    mesh_ = (dir_ / "mesh").string();
    ASSERT_EQ(Run("build >/dev/null 2>&1"), 0);
    for (const char* user : users) {
      ASSERT_EQ(
          Run(std::string("token create ") + user + " >" + (dir_ / user).string() + " 2>/dev/null"),
          0);
      std::ifstream(dir_ / user) >> tokens_[user];
    }
  }
  int Run(const std::string& args) {
    return std::system(
               ("cd " + mesh_ + " && " + canopy::test::kCanopyBinary + " " + args).c_str()) == 0
               ? 0
               : 1;
  }
  // The status of one request as `user` to `server`.
  int Status(const Started& server, const std::string& user, const std::string& method,
             const std::string& path, const std::string& body = "") {
    Wire wire(server.port);
    if (!wire.connected() || !wire.Send(Request(method, path, tokens_[user], body))) return -1;
    auto reply = wire.Read();
    last_body_ = reply ? reply->body : "";
    return reply ? reply->status : -1;
  }
  int Query(const Started& server, const std::string& user, const std::string& port) {
    return Status(server, user, "POST", "/api/v1/query",
                  R"({"sql":"select count(*) from )" + port + R"("})");
  }

  fs::path dir_;
  std::string mesh_;
  std::map<std::string, std::string> tokens_;
  Started a_, b_;
  std::string last_body_;
};

TEST_F(ServerClusterTest, AGrantThroughOneServerIsEnforcedByTheOtherAtOnce) {
  // Both servers have answered zoe's query (and kept what they could) before the grant.
  EXPECT_EQ(Query(a_, "zoe", "crm.customers"), 403);
  EXPECT_EQ(Query(b_, "zoe", "crm.customers"), 403);
  ASSERT_EQ(Status(a_, "carl", "POST", "/api/v1/grants",
                   R"({"product":"crm.customers","grantee":"user:zoe"})"),
            201)
      << last_body_;
  EXPECT_EQ(Query(b_, "zoe", "crm.customers"), 200) << last_body_;
  // Revoked through B: A refuses on its next request.
  ASSERT_EQ(Status(b_, "carl", "DELETE", "/api/v1/grants?product=crm.customers&grantee=user:zoe"),
            200)
      << last_body_;
  EXPECT_EQ(Query(a_, "zoe", "crm.customers"), 403) << last_body_;
}

TEST_F(ServerClusterTest, AnApprovalOnOneServerUnlocksTheQueryOnTheOther) {
  EXPECT_EQ(Query(a_, "zoe", "finance.exposure"), 403);
  ASSERT_EQ(Status(a_, "zoe", "POST", "/api/v1/access-requests",
                   R"({"product":"finance.exposure","purpose":"quarterly risk review"})"),
            201)
      << last_body_;
  const int64_t id = json::parse(last_body_).at("id").get<int64_t>();
  // B lists the request A took, and its owner approves it there.
  ASSERT_EQ(Status(b_, "frank", "GET", "/api/v1/access-requests"), 200);
  EXPECT_NE(last_body_.find("quarterly risk review"), std::string::npos) << last_body_;
  ASSERT_EQ(Status(b_, "frank", "POST",
                   "/api/v1/access-requests/" + std::to_string(id) + "/approve", "{}"),
            200)
      << last_body_;
  EXPECT_EQ(Query(a_, "zoe", "finance.exposure"), 200) << last_body_;
}

// Data is never read with a revoked token; a kept catalog answer (here /me) notices
// within a second — on PostgreSQL by notification, in practice in milliseconds.
TEST_F(ServerClusterTest, ATokenRevokedElsewhereIsRefusedByEveryServer) {
  ASSERT_EQ(Status(a_, "zoe", "GET", "/api/v1/me"), 200);
  ASSERT_EQ(Status(b_, "zoe", "GET", "/api/v1/me"), 200);
  ASSERT_EQ(Query(a_, "zoe", "sales.orders"), 200);
  // Revoked by a third process, the command line.
  const std::string id = tokens_["zoe"].substr(4, tokens_["zoe"].find('_', 4) - 4);
  ASSERT_EQ(Run("token revoke " + id + " >/dev/null"), 0);
  const auto revoked = std::chrono::steady_clock::now();
  EXPECT_EQ(Query(a_, "zoe", "sales.orders"), 401);
  EXPECT_EQ(Query(b_, "zoe", "sales.orders"), 401);
  for (const Started* server : {&a_, &b_}) {
    int status = 0;
    while ((status = Status(*server, "zoe", "GET", "/api/v1/me")) == 200 &&
           std::chrono::steady_clock::now() - revoked < std::chrono::seconds(1)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(status, 401) << "a kept answer outlived the token by more than a second";
  }
  std::cout << "[ notice   ] both servers refused the revoked token's /me after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - revoked)
                   .count()
            << " ms\n";
}

TEST_F(ServerClusterTest, NoLogOrAuditEntryShowsTheCatalogsPassword) {
  const char* url = std::getenv("CANOPY_CATALOG");
  if (!canopy::test::OnPostgres() || url == nullptr) GTEST_SKIP() << "a SQLite file has none";
  const std::string text = url;
  const auto user = text.find("://") + 3;
  const std::string password =
      text.substr(text.find(':', user) + 1, text.find('@') - text.find(':', user) - 1);
  ASSERT_GE(password.size(), 8U);
  EXPECT_EQ(Query(a_, "zoe", "crm.customers"), 403);  // something to log and audit
  EXPECT_EQ(Query(b_, "carl", "crm.customers"), 200);
  ASSERT_EQ(Run("audit --format json --limit 0 >" + (dir_ / "audit.json").string()), 0);
  for (const Started* server : {&a_, &b_}) {
    kill(server->pid, SIGTERM);
    waitpid(server->pid, nullptr, 0);
  }
  a_.pid = b_.pid = -1;
  for (const std::string& file : {a_.log, b_.log, (dir_ / "audit.json").string()}) {
    std::ifstream in(file);
    const std::string content((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    EXPECT_FALSE(content.empty()) << file;
    EXPECT_EQ(content.find(password), std::string::npos) << file << ":\n" << content;
  }
}

// --- PostgreSQL's wire protocol (issue 12, first part) ---

using canopy::test::FreePort;

// canopy serve --pg-listen on the governance mesh, driven by Debian's psql: the same
// governance as every other way in.
class ServerPgWireTest : public ServerClusterTest {
 protected:
  void SetUp() override {
    PrepareMesh("canopy-pgwire-", {"dana", "zoe", "ben"});
    if (HasFatalFailure()) return;
    // Rows enough for a cursor over a million of them.
    const fs::path mesh_yaml = fs::path(mesh_) / "mesh.yaml";
    std::string text = canopy::test::Read(mesh_yaml);
    const size_t at = text.find("rows: 1000,");
    ASSERT_NE(at, std::string::npos) << text;
    std::ofstream(mesh_yaml) << text.replace(at, 11, "rows: 1000000,");
    pg_port_ = FreePort();
    a_ = StartServer(mesh_, dir_, "127.0.0.1:" + std::to_string(pg_port_));
    ASSERT_TRUE(a_.up) << "the server did not start";
  }

  // psql as `user` with `password` (default: the user's token): its exit code, and what
  // it printed (stdout and stderr together).
  struct PsqlRun {
    int exit_code = -1;
    std::string out;
  };
  PsqlRun Psql(const std::string& user, const std::vector<std::string>& commands,
               const std::string& password = "") {
    using canopy::test::Quote;
    std::string command = "PGPASSWORD=" + Quote(password.empty() ? tokens_[user] : password) +
                          " PGCONNECT_TIMEOUT=10 psql -X -v VERBOSITY=verbose " +
                          Quote("host=127.0.0.1 port=" + std::to_string(pg_port_) +
                                " user=" + user + " dbname=govtest");
    for (const auto& c : commands) command += " -c " + Quote(c);
    const fs::path out = dir_ / "psql.out";
    PsqlRun run;
    run.exit_code = canopy::test::Shell(command + " >" + out.string() + " 2>&1");
    run.out = canopy::test::Read(out);
    return run;
  }
  // Runs a real driver's client program: `command`, the port, then `args` (users and
  // tokens). It prints "ok <check>" or "FAIL <check>: <why>" per check: each must pass,
  // and `expected` be among them.
  void ExpectClientPasses(const std::string& command, const std::string& args,
                          const std::string& expected) {
    const fs::path out = dir_ / "client.out";
    const int status = canopy::test::Shell(command + " " + std::to_string(pg_port_) + " " + args +
                                           " >" + out.string() + " 2>&1");
    const std::string printed = canopy::test::Read(out);
    EXPECT_EQ(status, 0) << printed;
    EXPECT_EQ(printed.find("FAIL"), std::string::npos) << printed;
    EXPECT_NE(printed.find("ok " + expected), std::string::npos) << printed;
  }
  bool Healthy() {
    Wire wire(a_.port);
    if (!wire.connected() || !wire.Send(Request("GET", "/api/v1/health"))) return false;
    auto reply = wire.Read();
    return reply && reply->status == 200;
  }

  int pg_port_ = 0;
};

TEST_F(ServerPgWireTest, PsqlReadsMaskedAndRowFilteredRowsAsEveryOtherWayIn) {
  const PsqlRun masked = Psql("dana", {"select id, email from crm.customers order by id"});
  ASSERT_EQ(masked.exit_code, 0) << masked.out;
  EXPECT_NE(masked.out.find("h_"), std::string::npos) << masked.out;
  EXPECT_EQ(masked.out.find("ana@example.com"), std::string::npos) << masked.out;
  EXPECT_NE(masked.out.find("(6 rows)"), std::string::npos) << masked.out;
  // ben is outside crm and not exempt: only the US rows.
  const PsqlRun filtered = Psql("ben", {"select count(*) from crm.customers"});
  ASSERT_EQ(filtered.exit_code, 0) << filtered.out;
  EXPECT_NE(filtered.out.find("     3\n"), std::string::npos) << filtered.out;
  // What tools send around their queries is accepted.
  const PsqlRun session =
      Psql("dana", {"SET application_name = 'Quarterly Report'", "SET extra_float_digits = 3",
                    "SHOW application_name", "SHOW server_version", "BEGIN",
                    "select count(*) from finance.exposure", "COMMIT", "select version()"});
  ASSERT_EQ(session.exit_code, 0) << session.out;
  EXPECT_NE(session.out.find("15.0"), std::string::npos) << session.out;
  EXPECT_NE(session.out.find("     6\n"), std::string::npos) << session.out;
  EXPECT_NE(session.out.find("PostgreSQL 15.0 (Canopy"), std::string::npos) << session.out;
  EXPECT_NE(session.out.find(" Quarterly Report\n"), std::string::npos) << session.out;
  // A setting that is not a session's own goes to the guard, which refuses it.
  const PsqlRun escape = Psql("dana", {"SET enable_external_access = true"});
  EXPECT_NE(escape.exit_code, 0) << escape.out;
  EXPECT_NE(escape.out.find("42501"), std::string::npos) << escape.out;
}

TEST_F(ServerPgWireTest, ADenialIs42501WithTheWayToAskAndAParseError42601) {
  const PsqlRun denied = Psql("zoe", {"select * from crm.customers"});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.out.find("ERROR:  42501: user:zoe may not read crm.customers"),
            std::string::npos)
      << denied.out;
  EXPECT_NE(denied.out.find("canopy access request crm.customers"), std::string::npos)
      << denied.out;
  EXPECT_EQ(denied.out.find("ana@example.com"), std::string::npos);
  const PsqlRun broken = Psql("dana", {"selec id from crm.customers"});
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_NE(broken.out.find("ERROR:  42601"), std::string::npos) << broken.out;
  const PsqlRun writes = Psql("dana", {"delete from crm.customers"});
  EXPECT_NE(writes.exit_code, 0);
  EXPECT_NE(writes.out.find("ERROR:  42501"), std::string::npos) << writes.out;
  // The connection goes on after an error.
  const PsqlRun after = Psql("dana", {"selec 1", "select count(*) from sales.orders"});
  EXPECT_NE(after.out.find("(1 row)"), std::string::npos) << after.out;
}

TEST_F(ServerPgWireTest, AWrongOrBorrowedTokenIsRefusedAndAudited) {
  const PsqlRun wrong = Psql("dana", {"select 1"}, "cnp_1_notthesecret");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.out.find("password authentication failed for user \"dana\""), std::string::npos)
      << wrong.out;
  // zoe's token does not make anyone dana: the principal is the token's.
  const PsqlRun borrowed = Psql("dana", {"select 1"}, tokens_["zoe"]);
  EXPECT_NE(borrowed.exit_code, 0);
  EXPECT_NE(borrowed.out.find("password authentication failed"), std::string::npos) << borrowed.out;
  ASSERT_EQ(Run("audit --format json --limit 0 >" + (dir_ / "audit.json").string()), 0);
  const std::string audit = canopy::test::Read(dir_ / "audit.json");
  // With SCRAM the server cannot tell a wrong token from another user's: neither proves.
  EXPECT_NE(audit.find("not a valid token (token): SCRAM: the proof matches no password"),
            std::string::npos)
      << audit;
  EXPECT_NE(audit.find("\"method\": \"scram-sha-256\""), std::string::npos) << audit;
  EXPECT_EQ(audit.find(tokens_["zoe"].substr(6)), std::string::npos) << "a token was audited";
}

TEST_F(ServerPgWireTest, MalformedStartupsEndTheirConnectionAndHarmNothing) {
  // What the server answers `bytes` with, up to its closing the connection.
  auto raw = [&](const std::string& bytes) {
    std::string answer;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(pg_port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return answer;
    }
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);  // nothing more comes: the server need not wait for it
    char buffer[256];
    timeval timeout{15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ssize_t got = 0;
    while ((got = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
      answer.append(buffer, static_cast<size_t>(got));
    }
    ::close(fd);
    return answer;
  };
  // Each gets an ErrorResponse ('E') with its SQLSTATE, then the end of the connection.
  auto error_with = [](const std::string& answer, const std::string& sqlstate) {
    return !answer.empty() && answer[0] == 'E' && answer.find("C" + sqlstate) != std::string::npos;
  };
  EXPECT_TRUE(error_with(raw(std::string("\xff\xff\xff\xff", 4)), "08P01"));  // 4 GiB long
  EXPECT_TRUE(error_with(raw(std::string("\x00\x00\x00\x08\x00\x04\x00\x00", 8)), "08P01"))
      << "protocol 4.0";
  EXPECT_TRUE(error_with(raw(std::string("\x00\x00\x00\x0c\x00\x03\x00\x00user", 12)), "08P01"))
      << "a parameter without its end";
  EXPECT_TRUE(error_with(raw(std::string("\x00\x00\x00\x09\x00\x03\x00\x00\x00", 9)), "28000"))
      << "no user";
  EXPECT_TRUE(error_with(raw("GET / HTTP/1.1\r\n\r\n"), "08P01")) << "another protocol";
  EXPECT_TRUE(error_with(raw(std::string("\x00\x00\x00\x11\x00\x03\x00\x00user\0\xff\xfe\0\0", 17)),
                         "22021"))
      << "a user name that is not UTF-8";
  // SSL asked for: "N" (no), and the connection waits for the startup packet.
  EXPECT_EQ(raw(std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8)).substr(0, 1), "N");
  const PsqlRun after = Psql("dana", {"select count(*) from sales.orders"});
  EXPECT_EQ(after.exit_code, 0) << after.out;
  EXPECT_TRUE(Healthy());
}

// A session holds no catalog connection while it waits: more idle sessions than the
// server's pool (8) leave the REST API and new sessions answering.
TEST_F(ServerPgWireTest, IdleSessionsDoNotTakeTheCatalogPool) {
  using canopy::test::Quote;
  const std::string connect =
      Quote("host=127.0.0.1 port=" + std::to_string(pg_port_) + " user=dana dbname=govtest");
  std::string idle = "PGPASSWORD=" + Quote(tokens_["dana"]) + "; export PGPASSWORD; ";
  for (int i = 0; i < 12; ++i) {
    idle += "psql -X -q " + connect + " -c 'select 1' -c '\\! sleep 4' >/dev/null 2>&1 & ";
  }
  idle += "sleep 1.5";  // they have connected and sit idle
  ASSERT_EQ(canopy::test::Shell(idle), 0);
  const auto start = std::chrono::steady_clock::now();
  const PsqlRun fresh = Psql("dana", {"select count(*) from sales.orders"});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.out;
  EXPECT_EQ(Query(a_, "dana", "sales.orders"), 200) << last_body_;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2))
      << "a request waited for the idle sessions";
  canopy::test::Shell("sleep 3");  // the idle ones end before the server stops
}

// Every byte the server sends for a query over a masked column, captured at the socket:
// the source value is in none of them (nor in the row count, the description or any
// message). The client is a raw socket speaking the protocol itself.
// A client speaking the protocol itself over a raw socket, for what drivers do not let a
// test choose (row limits, malformed messages) and to see every byte the server sends.
class RawPg {
 public:
  explicit RawPg(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    timeval timeout{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~RawPg() { ::close(fd_); }
  RawPg(const RawPg&) = delete;
  RawPg& operator=(const RawPg&) = delete;

  static std::string Be32(uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff),
                       static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
  }
  static std::string Be16(uint16_t v) {
    return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
  }
  static std::string Message(char type, const std::string& body) {
    return std::string(1, type) + Be32(static_cast<uint32_t>(body.size() + 4)) + body;
  }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Starts up as `user` with `password`, up to the first ReadyForQuery: the password in the
  // clear or proven by SCRAM-SHA-256, as the server asks (`method()` says which it was).
  bool Login(const std::string& user, const std::string& password) {
    const std::string nul(1, '\0');
    const std::string parameters =
        "user" + nul + user + nul + "database" + nul + "govtest" + std::string(2, '\0');
    const std::string startup = Be32(196608) + parameters;
    if (!connected_ || !Send(Be32(static_cast<uint32_t>(startup.size() + 4)) + startup)) {
      return false;
    }
    auto next = NextMessage();
    if (!next || next->first != 'R' || next->second.size() < 4) return false;
    const uint32_t code = canopy::pgwire::ReadUint32(next->second, 0);
    if (code == 3) {
      method_ = "password";
      if (!Send(Message('p', password + nul))) return false;
    } else if (code == 10) {
      method_ = "scram-sha-256";
      const std::string first_bare = "n=,r=rawpgclientnonce" + std::to_string(::getpid());
      const std::string first = "n,," + first_bare;
      if (!Send(Message(
              'p', "SCRAM-SHA-256" + nul + Be32(static_cast<uint32_t>(first.size())) + first))) {
        return false;
      }
      next = NextMessage();
      if (!next || next->first != 'R' || canopy::pgwire::ReadUint32(next->second, 0) != 11) {
        return false;
      }
      const auto final =
          canopy::scram::MakeClientFinal(password, first_bare, next->second.substr(4));
      if (!final || !Send(Message('p', final->message))) return false;
      next = NextMessage();
      // The server proves it knows the verifier; else no session.
      if (!next || next->first != 'R' || canopy::pgwire::ReadUint32(next->second, 0) != 12 ||
          next->second.substr(4) != final->expected_server_final) {
        return false;
      }
    } else {
      return false;
    }
    const bool ready = ReadUntilReady();
    captured_.clear();
    return ready;
  }
  const std::string& method() const { return method_; }
  // Reads until `count` ReadyForQuery ('Z') messages have arrived whole; false when the
  // connection ended first.
  bool ReadUntilReady(int count = 1) {
    char buffer[4096];
    for (;;) {
      int ready = 0;
      for (const auto& [type, body] : Messages()) ready += type == 'Z' ? 1 : 0;
      if (ready >= count) return true;
      const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) return false;
      captured_.append(buffer, static_cast<size_t>(got));
    }
  }
  // The whole messages received so far: type and body.
  std::vector<std::pair<char, std::string>> Messages() const {
    std::vector<std::pair<char, std::string>> messages;
    size_t at = 0;
    while (at + 5 <= captured_.size()) {
      const uint32_t length = canopy::pgwire::ReadUint32(captured_, at + 1);
      if (at + 1 + length > captured_.size()) break;
      messages.emplace_back(captured_[at], captured_.substr(at + 5, length - 4));
      at += 1 + length;
    }
    return messages;
  }
  // The types of the messages received, in order ("1", "2", "D", "s", "C", "Z").
  std::string Types() const {
    std::string types;
    for (const auto& [type, body] : Messages()) types += type;
    return types;
  }
  const std::string& captured() const { return captured_; }
  void Clear() { captured_.clear(); }

 private:
  // The next whole message, taken out of what was received; nullopt when the connection
  // ended first.
  std::optional<std::pair<char, std::string>> NextMessage() {
    char buffer[4096];
    for (;;) {
      if (captured_.size() >= 5) {
        const uint32_t length = canopy::pgwire::ReadUint32(captured_, 1);
        if (captured_.size() >= 1 + length) {
          std::pair<char, std::string> message{captured_[0], captured_.substr(5, length - 4)};
          captured_.erase(0, 1 + length);
          return message;
        }
      }
      const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) return std::nullopt;
      captured_.append(buffer, static_cast<size_t>(got));
    }
  }

  int fd_;
  bool connected_ = false;
  std::string captured_;
  std::string method_;
};

// Forwards one connection at a time from a port of its own to `target`, keeping every byte
// the client sent: what a listener on the network between them would see.
class RecordingProxy {
 public:
  explicit RecordingProxy(int target)
      : target_(target), listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    ::listen(listener_, 4);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordingProxy() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  RecordingProxy(const RecordingProxy&) = delete;
  RecordingProxy& operator=(const RecordingProxy&) = delete;
  int port() const { return port_; }
  std::string sent() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_;
  }

 private:
  void Serve() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<uint16_t>(target_));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
        Pump(client, server);
      }
      ::close(server);
      ::close(client);
    }
  }
  void Pump(int client, int server) {
    char buffer[16384];
    for (;;) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 10000) <= 0) return;
      for (int i = 0; i < 2; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t got = ::recv(fds[i].fd, buffer, sizeof buffer, 0);
        if (got <= 0) return;
        if (i == 0) {
          std::lock_guard<std::mutex> lock(mutex_);
          sent_.append(buffer, static_cast<size_t>(got));
        }
        if (::send(i == 0 ? server : client, buffer, static_cast<size_t>(got), MSG_NOSIGNAL) !=
            got) {
          return;
        }
      }
    }
  }

  int target_;
  int listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::string sent_;
  std::thread thread_;
};

// SCRAM-SHA-256, the default: psql (libpq) proves the token and checks the server's proof;
// no byte it sends holds the token or its secret. A wrong token, a user with no token at
// all and a token made before verifiers existed all end the same way, saying how to go on.
TEST_F(ServerPgWireTest, ScramProvesTheTokenWithoutSendingIt) {
  using canopy::test::Quote;
  RecordingProxy proxy(pg_port_);
  auto psql = [&](const std::string& user, const std::string& password) {
    PsqlRun run;
    run.exit_code = canopy::test::Shell(
        "PGPASSWORD=" + Quote(password) + " PGCONNECT_TIMEOUT=10 psql -X -At " +
        Quote("host=127.0.0.1 port=" + std::to_string(proxy.port()) + " user=" + user +
              " dbname=govtest") +
        " -c 'select count(*) from crm.customers' >" + (dir_ / "scram.out").string() + " 2>&1");
    run.out = canopy::test::Read(dir_ / "scram.out");
    return run;
  };
  const std::string token = tokens_["dana"];
  const PsqlRun ok = psql("dana", token);
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(ok.out, "6\n");
  const std::string sent = proxy.sent();
  EXPECT_NE(sent.find("SCRAM-SHA-256"), std::string::npos) << "the client chose SCRAM";
  EXPECT_NE(sent.find("c=biws,r="), std::string::npos) << "and sent its proof";
  EXPECT_EQ(sent.find(token), std::string::npos) << "the token crossed the wire";
  EXPECT_EQ(sent.find(token.substr(token.rfind('_') + 1, 16)), std::string::npos)
      << "part of its secret crossed the wire";

  // Refused alike: a wrong token, a user who has none (no name is revealed to exist), and a
  // token whose verifier is gone (as one made before catalog schema 8).
  std::string wrong = token;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  auto store = canopy::test::OpenTestCatalog((fs::path(mesh_) / ".canopy/catalog.db").string());
  const int64_t id = std::stoll(token.substr(4, token.find('_', 4) - 4));
  const std::string verifier = store->GetToken(id)->scram;
  ASSERT_EQ(verifier.rfind("SCRAM-SHA-256$4096:", 0), 0u) << verifier;
  EXPECT_EQ(verifier.find(token), std::string::npos);
  for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"dana", wrong}, {"nobody", token}, {"dana", "not a token at all"}}) {
    const PsqlRun refused = psql(user, password);
    EXPECT_NE(refused.exit_code, 0) << user;
    EXPECT_NE(refused.out.find("password authentication failed for user \"" + user + "\""),
              std::string::npos)
        << refused.out;
    EXPECT_NE(refused.out.find("--pg-auth password"), std::string::npos) << refused.out;
  }
  store->SetTokenScram(id, "");
  EXPECT_NE(psql("dana", token).exit_code, 0) << "a token without a verifier signs in by SCRAM";
  store->SetTokenScram(id, verifier);
  EXPECT_EQ(psql("dana", token).exit_code, 0);
  EXPECT_TRUE(Healthy());
}

// --pg-auth password: the token (or a provider's JWT) in the clear, over loopback or TLS —
// the way for tokens made before SCRAM; a token lent by another user is named as such.
TEST_F(ServerPgWireTest, PasswordSignInTakesTheTokenInTheClearWhereAsked) {
  const int port = FreePort();
  Started clear =
      StartServer(mesh_, dir_, "127.0.0.1:" + std::to_string(port), {"--pg-auth", "password"});
  ASSERT_TRUE(clear.up) << canopy::test::Read(clear.log);
  RawPg pg(port);
  ASSERT_TRUE(pg.Login("dana", tokens_["dana"]));
  EXPECT_EQ(pg.method(), "password");
  RawPg borrowed(port);
  EXPECT_FALSE(borrowed.Login("dana", tokens_["zoe"]));
  RawPg scram(pg_port_);
  ASSERT_TRUE(scram.Login("dana", tokens_["dana"]));
  EXPECT_EQ(scram.method(), "scram-sha-256");
  StopServer(clear);
  ASSERT_EQ(Run("audit --format json --limit 0 >" + (dir_ / "audit.json").string()), 0);
  const std::string audit = canopy::test::Read(dir_ / "audit.json");
  EXPECT_NE(audit.find("the token belongs to another user"), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"method\": \"password\""), std::string::npos) << audit;
}

// A Query message with several statements (psql -c "a; b", a tool's "SET …; SELECT …")
// runs them in turn, each under the guard; an error skips the rest, as in PostgreSQL.
TEST_F(ServerPgWireTest, AQueryMessageRunsItsStatementsInTurnAndStopsAtAnError) {
  RawPg pg(pg_port_);
  ASSERT_TRUE(pg.Login("zoe", tokens_["zoe"]));
  const std::string nul(1, '\0');
  ASSERT_TRUE(pg.Send(RawPg::Message(
      'Q',
      "set application_name = 'a;b'; select 1 as \"x;y\" -- ;\n; show application_name;" + nul)));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "CTDCTDCZ");
  EXPECT_NE(pg.captured().find("a;b"), std::string::npos);
  pg.Clear();
  ASSERT_TRUE(pg.Send(RawPg::Message(
      'Q', "select 2 as two; select email from crm.customers; select 3 as three" + nul)));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "TDCEZ");  // the third never ran
  EXPECT_NE(pg.captured().find("42501"), std::string::npos);
  EXPECT_EQ(pg.captured().find("three"), std::string::npos);
  pg.Clear();
  ASSERT_TRUE(pg.Send(RawPg::Message('Q', " ; ;" + nul)));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "IZ");  // EmptyQueryResponse
  pg.Clear();
  ASSERT_TRUE(pg.Send(RawPg::Message('Q', "select 4 as four; -- done" + nul)));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "TDCZ");  // a trailing comment is no statement
}

TEST_F(ServerPgWireTest, AMaskedValueIsInNoByteTheServerSends) {
  RawPg pg(pg_port_);
  ASSERT_TRUE(pg.Login("dana", tokens_["dana"]));
  const std::string sql =
      "select id, email, lower(email) as lowered, email like 'ana%' as starts, "
      "length(email) as n from crm.customers order by id" +
      std::string(1, '\0');
  ASSERT_TRUE(pg.Send(RawPg::Message('Q', sql)));
  ASSERT_TRUE(pg.ReadUntilReady());
  // The same over the extended protocol, with the value as a bound parameter.
  const std::string nul(1, '\0');
  ASSERT_TRUE(
      pg.Send(RawPg::Message('P', nul + "select email, id from crm.customers where email <> $1" +
                                      nul + RawPg::Be16(0)) +
              RawPg::Message('B', nul + nul + RawPg::Be16(0) + RawPg::Be16(1) + RawPg::Be32(3) +
                                      "x@y" + RawPg::Be16(1) + RawPg::Be16(1)) +
              RawPg::Message('D', "P" + nul) + RawPg::Message('E', nul + RawPg::Be32(0)) +
              RawPg::Message('S', "")));
  ASSERT_TRUE(pg.ReadUntilReady());
  pg.Send(RawPg::Message('X', ""));
  const std::string captured = pg.captured();

  EXPECT_NE(captured.find("h_"), std::string::npos) << "no masked value came at all";
  EXPECT_NE(captured.find("SELECT 6"), std::string::npos);
  EXPECT_EQ(pg.Types().find('E'), std::string::npos) << "an error came";
  for (const char* secret : {"ana@example.com", "ben@example.com", "example.com", "chloe"}) {
    EXPECT_EQ(captured.find(secret), std::string::npos) << secret << " was sent";
  }
}

// The extended protocol as JDBC and Npgsql speak it: a portal read a few rows at a time
// (PortalSuspended between), named statements bound twice, errors skipping to the Sync.
TEST_F(ServerPgWireTest, ExtendedProtocolPortalsStopAtTheirRowLimitAndGoOn) {
  RawPg pg(pg_port_);
  ASSERT_TRUE(pg.Login("dana", tokens_["dana"]));
  const std::string nul(1, '\0');
  auto parse = [&](const std::string& name, const std::string& sql) {
    return RawPg::Message('P', name + nul + sql + nul + RawPg::Be16(0));
  };
  auto bind = [&](const std::string& portal, const std::string& statement,
                  const std::vector<std::string>& values) {
    std::string body = portal + nul + statement + nul + RawPg::Be16(0) +
                       RawPg::Be16(static_cast<uint16_t>(values.size()));
    for (const auto& v : values) body += RawPg::Be32(static_cast<uint32_t>(v.size())) + v;
    return RawPg::Message('B', body + RawPg::Be16(0));
  };
  auto execute = [&](const std::string& portal, uint32_t rows) {
    return RawPg::Message('E', portal + nul + RawPg::Be32(rows));
  };
  const std::string sync = RawPg::Message('S', "");
  ASSERT_TRUE(pg.Send(parse("", "select id from crm.customers order by id") + bind("", "", {}) +
                      execute("", 2) + execute("", 2) + execute("", 0) + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "12DDsDDsDDCZ");
  std::vector<std::string> ids;
  for (const auto& [type, body] : pg.Messages()) {
    if (type == 'D') ids.push_back(body.substr(6));  // one column: count, length, value
    if (type == 'C') {
      EXPECT_EQ(body, std::string("SELECT 2") + nul);
    }
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));

  // A question about the catalog keeps its row limit too.
  pg.Clear();
  ASSERT_TRUE(pg.Send(parse("", "select table_name from information_schema.tables order by 1") +
                      bind("", "", {}) + execute("", 2) + execute("", 0) + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "12DDsDCZ");

  // A named statement bound twice with different parameters.
  pg.Clear();
  ASSERT_TRUE(pg.Send(parse("by_region", "select count(*) from crm.customers where region = $1") +
                      bind("", "by_region", {"EU"}) + execute("", 0) +
                      bind("", "by_region", {"US"}) + execute("", 0) + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "12DC2DCZ");
  std::vector<std::string> counts;
  for (const auto& [type, body] : pg.Messages()) {
    if (type == 'D') counts.push_back(body.substr(6));
  }
  EXPECT_EQ(counts, (std::vector<std::string>{"2", "3"}));

  // An error skips the rest of the exchange up to its Sync; the session goes on.
  pg.Clear();
  ASSERT_TRUE(pg.Send(parse("", "select * from crm.nothing") + bind("", "", {}) + execute("", 0) +
                      sync + parse("", "select 7") + bind("", "", {}) + execute("", 0) + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  ASSERT_TRUE(pg.ReadUntilReady(2));
  EXPECT_EQ(pg.Types(), "12EZ12DCZ");
  EXPECT_NE(pg.captured().find("42P01"), std::string::npos) << pg.captured();
  // Binding a statement with the wrong number of parameters is an error, not a crash.
  pg.Clear();
  ASSERT_TRUE(pg.Send(bind("", "by_region", {}) + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "EZ");
  EXPECT_NE(pg.captured().find("requires 1"), std::string::npos);
  // A truncated Bind breaks the protocol: an error, then the connection ends.
  pg.Clear();
  ASSERT_TRUE(pg.Send(RawPg::Message('B', nul + "by_region" + nul + RawPg::Be16(3))));
  EXPECT_FALSE(pg.ReadUntilReady());
  EXPECT_NE(pg.captured().find("08P01"), std::string::npos) << pg.captured();
  EXPECT_TRUE(Healthy());
}

// What a hostile (or careless) client sends is refused with an error, and the server
// and the session go on: a COMMIT through the extended protocol closing the portal it
// runs in, a question about the catalog that is huge, endless or answers too much,
// more parameters than Bind can carry, more open cursors than a session may hold.
TEST_F(ServerPgWireTest, HostileStatementsAreRefusedAndHarmNothing) {
  RawPg pg(pg_port_);
  ASSERT_TRUE(pg.Login("dana", tokens_["dana"]));
  const std::string nul(1, '\0');
  auto run = [&](const std::string& portal, const std::string& sql) {
    return RawPg::Message('P', nul + sql + nul + RawPg::Be16(0)) +
           RawPg::Message('B',
                          portal + nul + nul + RawPg::Be16(0) + RawPg::Be16(0) + RawPg::Be16(0)) +
           RawPg::Message('E', portal + nul + RawPg::Be32(0));
  };
  const std::string sync = RawPg::Message('S', "");
  ASSERT_TRUE(pg.Send(run("", "BEGIN") + run("p", "select 1") + run("c", "COMMIT") + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "12C12DC12CZ");
  pg.Clear();
  ASSERT_TRUE(pg.Send(run("", "select count(*) from crm.customers") + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_EQ(pg.Types(), "12DCZ");

  const PsqlRun huge = Psql(
      "dana",
      {"select 1 as pg_" + std::string(100000, 'a'), "select * from range(200000) -- pg_class",
       "select count(*) from pg_catalog.generate_series(0," + std::string(12000, ' ') + "5001) s",
       "select $70000", "select count(*) from sales.orders"});
  EXPECT_NE(huge.out.find("16 KiB long at most"), std::string::npos) << huge.out.substr(0, 2000);
  EXPECT_NE(huge.out.find("100000 rows at most"), std::string::npos) << huge.out.substr(0, 2000);
  EXPECT_NE(huge.out.find("  5002\n"), std::string::npos) << "a long catalog question";
  EXPECT_NE(huge.out.find("(1 row)"), std::string::npos) << "the session went on";
  pg.Clear();
  ASSERT_TRUE(pg.Send(RawPg::Message('P', nul + "select $70000" + nul + RawPg::Be16(0)) + sync));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_NE(pg.captured().find("54000"), std::string::npos);

  std::vector<std::string> cursors = {"BEGIN"};
  for (int i = 1; i <= 5; ++i) {
    cursors.push_back("DECLARE c" + std::to_string(i) +
                      " CURSOR FOR select order_id from sales.orders");
  }
  const PsqlRun many = Psql("dana", cursors);
  EXPECT_NE(many.out.find("54000: too many open portals and cursors"), std::string::npos)
      << many.out;
  EXPECT_TRUE(Healthy());
}

// What connection pools and drivers send to reset a session before reusing it: RESET,
// DISCARD ALL and DEALLOCATE are taken, and do what PostgreSQL does to the session.
TEST_F(ServerPgWireTest, PoolsResetASessionWithDiscardResetAndDeallocate) {
  const PsqlRun reset =
      Psql("dana", {"set application_name = 'report'", "show application_name", "reset all",
                    "show application_name", "set application_name = 'again'", "discard all",
                    "show application_name", "deallocate all"});
  ASSERT_EQ(reset.exit_code, 0) << reset.out;
  EXPECT_NE(reset.out.find(" report\n"), std::string::npos) << reset.out;
  EXPECT_EQ(reset.out.find(" again\n"), std::string::npos) << reset.out;
  EXPECT_NE(reset.out.find("DISCARD ALL"), std::string::npos) << reset.out;
  const PsqlRun refused = Psql("dana", {"begin", "discard all"});
  EXPECT_NE(refused.out.find("25001"), std::string::npos) << refused.out;
  const PsqlRun missing = Psql("dana", {"deallocate nothing_here"});
  EXPECT_NE(missing.out.find("26000"), std::string::npos) << missing.out;

  // A named statement is gone after DEALLOCATE; a cursor after DISCARD ALL.
  RawPg pg(pg_port_);
  ASSERT_TRUE(pg.Login("dana", tokens_["dana"]));
  const std::string nul(1, '\0');
  const std::string sync = RawPg::Message('S', "");
  auto bind = [&](const std::string& statement) {
    return RawPg::Message(
               'B', nul + statement + nul + RawPg::Be16(0) + RawPg::Be16(0) + RawPg::Be16(0)) +
           RawPg::Message('E', nul + RawPg::Be32(0)) + sync;
  };
  ASSERT_TRUE(pg.Send(RawPg::Message('P', "s1" + nul + "select 1 as one" + nul + RawPg::Be16(0)) +
                      sync + bind("s1")));
  ASSERT_TRUE(pg.ReadUntilReady(2));
  EXPECT_EQ(pg.Types(), "1Z2DCZ");
  pg.Clear();
  ASSERT_TRUE(pg.Send(RawPg::Message('Q', "deallocate s1" + nul) + bind("s1")));
  ASSERT_TRUE(pg.ReadUntilReady(2));
  EXPECT_EQ(pg.Types(), "CZEZ");
  EXPECT_NE(pg.captured().find("26000"), std::string::npos);
  pg.Clear();
  ASSERT_TRUE(pg.Send(RawPg::Message('Q',
                                     "begin; declare c cursor with hold for select 1 as one; "
                                     "commit; discard all; fetch c" +
                                         nul)));
  ASSERT_TRUE(pg.ReadUntilReady());
  EXPECT_NE(pg.captured().find("cursor \"c\" does not exist"), std::string::npos) << pg.Types();
}

// Sessions holding open cursors take at most half the server's catalog connections: with
// more of them than that, the REST API still answers at once.
TEST_F(ServerPgWireTest, OpenCursorsLeaveTheRestApiItsConnections) {
  std::vector<std::unique_ptr<RawPg>> sessions;
  const std::string nul(1, '\0');
  for (int i = 0; i < 8; ++i) {
    sessions.push_back(std::make_unique<RawPg>(pg_port_));
    ASSERT_TRUE(sessions.back()->Login("dana", tokens_["dana"]));
  }
  for (auto& pg : sessions) {
    ASSERT_TRUE(pg->Send(RawPg::Message('Q', "BEGIN" + nul) +
                         RawPg::Message('Q',
                                        "DECLARE c CURSOR FOR select order_id from "
                                        "sales.orders" +
                                            nul)));
  }
  for (int i = 0; i < 2; ++i) {  // the first ones have their cursors (and connections)
    ASSERT_TRUE(sessions[static_cast<size_t>(i)]->ReadUntilReady(2));
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Query(a_, "dana", "sales.orders"), 200) << last_body_;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3))
      << "a request waited for the cursors' connections";
  sessions.clear();  // the cursors close with their sessions; those waiting get theirs
  EXPECT_TRUE(Healthy());
}

// libpq itself (PQexecParams, PQprepare): parameters in text and binary, results in
// binary, typed as PostgreSQL types them — and the same governance.
TEST_F(ServerPgWireTest, LibpqBindsTextAndBinaryParametersAndReadsBinaryResults) {
  const std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(pg_port_) +
      " user=dana dbname=govtest connect_timeout=10 password=" + tokens_["dana"];
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  auto be32 = [](const char* p) {
    return static_cast<int32_t>(canopy::pgwire::ReadUint32(std::string_view(p, 4), 0));
  };

  // A text parameter and a binary int4 one; every result column in binary.
  const std::string region = "EU";
  const std::string two = RawPg::Be32(1);
  const Oid types[] = {25, 23};
  const char* values[] = {region.c_str(), two.data()};
  const int lengths[] = {0, 4};
  const int formats[] = {0, 1};
  PGresult* result = PQexecParams(
      conn, "select id, email, region from crm.customers where region = $1 and id > $2 order by id",
      2, types, values, lengths, formats, 1);
  ASSERT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  ASSERT_EQ(PQntuples(result), 1);  // EU: ids 1 and 3; above 1: 3
  EXPECT_EQ(PQfformat(result, 0), 1);
  const Oid id_type = PQftype(result, 0);
  ASSERT_TRUE(id_type == 20 || id_type == 23) << id_type;
  if (id_type == 23) {
    EXPECT_EQ(be32(PQgetvalue(result, 0, 0)), 3);
  } else {
    EXPECT_EQ(be32(PQgetvalue(result, 0, 0) + 4), 3);
  }
  const std::string email(PQgetvalue(result, 0, 1), static_cast<size_t>(PQgetlength(result, 0, 1)));
  EXPECT_EQ(email.rfind("h_", 0), 0U) << email;  // masked in binary as in text
  EXPECT_EQ(std::string(PQgetvalue(result, 0, 2)), "EU");
  PQclear(result);

  // A prepared statement: its parameters and columns described, then run twice.
  result = PQprepare(conn, "count_by", "select count(*) as n from crm.customers where region = $1",
                     1, nullptr);
  ASSERT_EQ(PQresultStatus(result), PGRES_COMMAND_OK) << PQerrorMessage(conn);
  PQclear(result);
  result = PQdescribePrepared(conn, "count_by");
  ASSERT_EQ(PQresultStatus(result), PGRES_COMMAND_OK) << PQerrorMessage(conn);
  EXPECT_EQ(PQnparams(result), 1);
  EXPECT_EQ(PQnfields(result), 1);
  EXPECT_EQ(std::string(PQfname(result, 0)), "n");
  EXPECT_EQ(PQftype(result, 0), 20U);
  PQclear(result);
  for (const char* r : {"EU", "US", "XX"}) {
    const char* one[] = {r};
    result = PQexecPrepared(conn, "count_by", 1, one, nullptr, nullptr, 0);
    ASSERT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQerrorMessage(conn);
    EXPECT_EQ(std::string(PQgetvalue(result, 0, 0)), std::string(r) == "EU"   ? "2"
                                                     : std::string(r) == "US" ? "3"
                                                                              : "0")
        << r;
    PQclear(result);
  }

  // Values round trip through binary parameters and binary results, type by type.
  struct Case {
    Oid type;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {16, std::string(1, '\1')},                                   // bool
      {21, RawPg::Be16(static_cast<uint16_t>(-7))},                 // int2
      {20, RawPg::Be32(0xffffffffU) + RawPg::Be32(0xfffffffeU)},    // int8 -2
      {701, RawPg::Be32(0x400921fbU) + RawPg::Be32(0x54442d18U)},   // float8 pi
      {1082, RawPg::Be32(static_cast<uint32_t>(-1))},               // 1999-12-31
      {1114, RawPg::Be32(0x0000000aU) + RawPg::Be32(0x12345678U)},  // a timestamp
      {1700, RawPg::Be16(2) + RawPg::Be16(0) + RawPg::Be16(0x4000) + RawPg::Be16(4) +
                 RawPg::Be16(123) + RawPg::Be16(4500)},  // -123.4500
      {2950, std::string("\x12\x34\x56\x78\x9a\xbc\xde\xf0\x01\x23\x45\x67\x89\xab\xcd\xef", 16)},
      {17, std::string("a\0b\xff", 4)},  // bytea
      {1186, RawPg::Be32(0) + RawPg::Be32(3723000000U) + RawPg::Be32(2) + RawPg::Be32(14)},
  };
  for (const Case& c : cases) {
    const char* value[] = {c.bytes.data()};
    const int length[] = {static_cast<int>(c.bytes.size())};
    const int binary[] = {1};
    result = PQexecParams(conn, "select $1 as v", 1, &c.type, value, length, binary, 1);
    ASSERT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << c.type << ": " << PQerrorMessage(conn);
    EXPECT_EQ(PQftype(result, 0), c.type);
    EXPECT_EQ(std::string(PQgetvalue(result, 0, 0), static_cast<size_t>(PQgetlength(result, 0, 0))),
              c.bytes)
        << "type " << c.type;
    PQclear(result);
  }
  // And in text: what PostgreSQL prints.
  const char* texts[] = {"2024-02-29", "-0.50", "\\x00ff", "1 year 2 mons 3 days 04:05:06",
                         "it's; --"};
  const Oid text_types[] = {1082, 1700, 17, 1186, 25};
  result = PQexecParams(conn, "select $1 as d, $2 as n, $3 as b, $4 as i, $5 as s", 5, text_types,
                        texts, nullptr, nullptr, 0);
  ASSERT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  EXPECT_EQ(std::string(PQgetvalue(result, 0, 0)), "2024-02-29");
  EXPECT_EQ(std::string(PQgetvalue(result, 0, 1)), "-0.50");
  EXPECT_EQ(std::string(PQgetvalue(result, 0, 2)), "\\x00ff");
  EXPECT_EQ(std::string(PQgetvalue(result, 0, 3)), "1 year 2 mons 3 days 04:05:06");
  EXPECT_EQ(std::string(PQgetvalue(result, 0, 4)), "it's; --");
  PQclear(result);
  // A decimal's precision and scale travel in its type modifier, as PostgreSQL's
  // numeric(10,2) does (BI tools size and format the column from it).
  result = PQexec(conn, "select cast(8.99 as decimal(10,2)) as price, 1.5::double as ratio");
  ASSERT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  EXPECT_EQ(PQftype(result, 0), 1700U);
  EXPECT_EQ(PQfmod(result, 0), ((10 << 16) | 2) + 4);
  EXPECT_EQ(std::string(PQgetvalue(result, 0, 0)), "8.99");
  EXPECT_EQ(PQfmod(result, 1), -1);
  PQclear(result);

  // A parameter is a value, never SQL: the guard still decides, and zoe is still denied.
  const char* sneaky[] = {"1 union select email from crm.customers"};
  result = PQexecParams(conn, "select order_id from sales.orders where order_id::varchar = $1", 1,
                        nullptr, sneaky, nullptr, nullptr, 0);
  ASSERT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  EXPECT_EQ(PQntuples(result), 0) << PQgetvalue(result, 0, 0);
  PQclear(result);
  PQfinish(conn);
  const std::string zoe_info =
      "host=127.0.0.1 port=" + std::to_string(pg_port_) +
      " user=zoe dbname=govtest connect_timeout=10 password=" + tokens_["zoe"];
  conn = PQconnectdb(zoe_info.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  result = PQexecParams(conn, "select email from crm.customers where id = $1", 1, nullptr, texts,
                        nullptr, nullptr, 1);
  EXPECT_EQ(PQresultStatus(result), PGRES_FATAL_ERROR);
  EXPECT_EQ(std::string(PQresultErrorField(result, PG_DIAG_SQLSTATE)), "42501");
  PQclear(result);
  result = PQexec(conn, "select 1");
  EXPECT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << "the session goes on";
  PQclear(result);
  PQfinish(conn);
}

// What psql asks to describe the mesh (\dn, \dt, \d NAME) and what drivers ask of
// information_schema: each domain a schema, each port this user may discover a table
// with its published columns — and no private product of another domain.
TEST_F(ServerPgWireTest, PsqlDescribesTheMeshAsThisUserMaySeeIt) {
  const PsqlRun dana = Psql("dana", {"\\dn", "\\dt", "\\d crm.customers",
                                     "select table_schema, table_name from "
                                     "information_schema.tables order by 1, 2"});
  ASSERT_EQ(dana.exit_code, 0) << dana.out;
  EXPECT_NE(dana.out.find("List of schemas"), std::string::npos) << dana.out;
  EXPECT_NE(dana.out.find(" crm "), std::string::npos) << dana.out;
  EXPECT_NE(dana.out.find("| customers | table | canopy"), std::string::npos) << dana.out;
  EXPECT_NE(dana.out.find("Table \"crm.customers\""), std::string::npos) << dana.out;
  EXPECT_NE(dana.out.find(" email "), std::string::npos) << dana.out;
  EXPECT_EQ(dana.out.find("pg_canopy"), std::string::npos) << dana.out;
  EXPECT_EQ(dana.out.find(" main "), std::string::npos) << dana.out;
  EXPECT_EQ(dana.out.find("salaries"), std::string::npos) << "a private product shows\n"
                                                          << dana.out;
  // The tables describe; they hold nothing: rows come only through the guard.
  const PsqlRun zoe = Psql("zoe", {"select count(*) from pg_catalog.pg_class", "\\dt crm.*"});
  ASSERT_EQ(zoe.exit_code, 0) << zoe.out;
  EXPECT_NE(zoe.out.find("customers"), std::string::npos) << zoe.out;  // zoe may see it exists
  // What .NET's driver (Tableau, Power BI) loads on connect, in one Query message: the
  // version, the types with their namespaces, receive functions and ranges, the enums.
  const PsqlRun types = Psql(
      "dana", {"select version(); "
               "select n.nspname, t.oid, t.typname, t.typtype from pg_type t "
               "join pg_namespace n on n.oid = t.typnamespace "
               "left join pg_proc p on p.oid = t.typreceive "
               "left join pg_range r on r.rngtypid = t.oid "
               "where t.typtype in ('b', 'r', 'e', 'd') order by t.oid; "
               "select t.oid, e.enumlabel from pg_enum e join pg_type t on t.oid = e.enumtypid "
               "order by oid, e.enumsortorder"});
  ASSERT_EQ(types.exit_code, 0) << types.out;
  EXPECT_NE(types.out.find("PostgreSQL 15.0 (Canopy"), std::string::npos) << types.out;
  EXPECT_NE(types.out.find(" pg_catalog |   20 | int8"), std::string::npos) << types.out;
  EXPECT_NE(types.out.find(" pg_catalog | 1700 | numeric"), std::string::npos) << types.out;
  EXPECT_NE(types.out.find("(0 rows)"), std::string::npos) << types.out;  // no enums
  const PsqlRun write = Psql("dana", {"create table pg_catalog.x (a int)"});
  EXPECT_NE(write.exit_code, 0) << write.out;
  // A statement that only looks like a query to a reader who does not nest comments
  // (PostgreSQL and DuckDB do): refused, and nothing was made.
  const PsqlRun hidden = Psql("dana", {"/* /* */ select */ create table pg_made as select 1 as a",
                                       "select count(*) from pg_made"});
  EXPECT_NE(hidden.exit_code, 0) << hidden.out;
  EXPECT_NE(hidden.out.find("only queries are answered about the catalog"), std::string::npos)
      << hidden.out;
  EXPECT_EQ(hidden.out.find("(1 row)"), std::string::npos) << hidden.out;
}

// With a certificate, SSLRequest is answered "yes": psql encrypts (sslmode=require),
// and the same governance holds over TLS. A bad certificate stops the server at start.
TEST_F(ServerPgWireTest, TlsEncryptsTheSessionWhenACertificateIsGiven) {
  using canopy::test::Quote;
  const fs::path cert = dir_ / "server.crt";
  const fs::path key = dir_ / "server.key";
  ASSERT_EQ(canopy::test::Shell("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
                                "/CN=127.0.0.1 -keyout " +
                                Quote(key.string()) + " -out " + Quote(cert.string()) +
                                " >/dev/null 2>&1"),
            0)
      << "openssl (Debian's) makes the test's certificate";
  const int tls_port = FreePort();
  // Tokens in the clear (--pg-auth password): the rule on where they may come from applies.
  Started tls = StartServer(
      mesh_, dir_, "0.0.0.0:" + std::to_string(tls_port),
      {"--pg-tls-cert", cert.string(), "--pg-tls-key", key.string(), "--pg-auth", "password"});
  ASSERT_TRUE(tls.up) << canopy::test::Read(tls.log);
  const std::string command = "PGPASSWORD=" + Quote(tokens_["dana"]) +
                              " PGCONNECT_TIMEOUT=10 psql -X " +
                              Quote("host=127.0.0.1 port=" + std::to_string(tls_port) +
                                    " user=dana dbname=govtest sslmode=require") +
                              " -c '\\conninfo' -c 'select count(*) from crm.customers' -c 'select "
                              "* from range(200000)' >" +
                              (dir_ / "tls.out").string() + " 2>&1";
  const int status = canopy::test::Shell(command);
  const std::string out = canopy::test::Read(dir_ / "tls.out");
  EXPECT_EQ(status, 0) << out.substr(0, 2000);
  EXPECT_NE(out.find("SSL connection (protocol: TLSv1."), std::string::npos) << out.substr(0, 2000);
  EXPECT_NE(out.find("(200000 rows)"), std::string::npos) << "a large result over TLS";
  EXPECT_NE(out.find("     6\n"), std::string::npos) << out;
  // From another address than loopback, a password goes only over TLS.
  canopy::test::Shell(
      "hostname -I 2>/dev/null | tr ' ' '\\n' | grep -v '^127\\.' | "
      "grep -m1 '^[0-9.]*$' >" +
      (dir_ / "address").string());
  std::string address = canopy::test::Read(dir_ / "address");
  while (!address.empty() && std::isspace(static_cast<unsigned char>(address.back())) != 0) {
    address.pop_back();
  }
  if (!address.empty()) {
    auto psql_from = [&](const std::string& sslmode) {
      return canopy::test::Shell("PGPASSWORD=" + Quote(tokens_["dana"]) +
                                 " PGCONNECT_TIMEOUT=10 psql -X " +
                                 Quote("host=" + address + " port=" + std::to_string(tls_port) +
                                       " user=dana dbname=govtest sslmode=" + sslmode) +
                                 " -c 'select 1' >" + (dir_ / "remote.out").string() + " 2>&1");
    };
    EXPECT_NE(psql_from("disable"), 0);
    EXPECT_NE(canopy::test::Read(dir_ / "remote.out").find("only taken over TLS"),
              std::string::npos)
        << canopy::test::Read(dir_ / "remote.out");
    EXPECT_EQ(psql_from("require"), 0) << canopy::test::Read(dir_ / "remote.out");
    // With SCRAM (the default) the token never crosses the wire: another address may sign
    // in without TLS, as PostgreSQL allows.
    StopServer(tls);
    tls = StartServer(mesh_, dir_, "0.0.0.0:" + std::to_string(tls_port));
    ASSERT_TRUE(tls.up) << canopy::test::Read(tls.log);
    EXPECT_EQ(psql_from("disable"), 0) << canopy::test::Read(dir_ / "remote.out");
  }
  StopServer(tls);
  // The server without a certificate says no to encryption; sslmode=require fails.
  const PsqlRun plain = Psql("dana", {"select 1"});
  EXPECT_EQ(plain.exit_code, 0) << plain.out;
  const int refused = canopy::test::Shell("PGPASSWORD=" + Quote(tokens_["dana"]) +
                                          " PGCONNECT_TIMEOUT=10 psql -X " +
                                          Quote("host=127.0.0.1 port=" + std::to_string(pg_port_) +
                                                " user=dana dbname=govtest sslmode=require") +
                                          " -c 'select 1' >/dev/null 2>&1");
  EXPECT_NE(refused, 0);
  // A key that is not the certificate's: the server does not start, and says why.
  std::ofstream(dir_ / "other.key") << "not a key\n";
  const int broken = canopy::test::Shell(
      "timeout 20 " + std::string(canopy::test::kCanopyBinary) + " --mesh " + Quote(mesh_) +
      " serve --listen 127.0.0.1:" + std::to_string(FreePort()) + " --pg-listen 127.0.0.1:" +
      std::to_string(FreePort()) + " --pg-tls-cert " + Quote(cert.string()) + " --pg-tls-key " +
      Quote((dir_ / "other.key").string()) + " >" + (dir_ / "broken.out").string() + " 2>&1");
  EXPECT_EQ(broken, 1) << canopy::test::Read(dir_ / "broken.out");
  EXPECT_NE(canopy::test::Read(dir_ / "broken.out").find("for TLS"), std::string::npos)
      << canopy::test::Read(dir_ / "broken.out");
}

// A Python program with psycopg2 (Debian's), as analysts write them: parameters, types,
// refusals, and a connection that goes on (tests/pgwire/psycopg2_client.py).
TEST_F(ServerPgWireTest, Psycopg2RunsParameterisedQueriesUnderTheSameGovernance) {
  if (canopy::test::Shell("/usr/bin/python3 -c 'import psycopg2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "Debian's python3-psycopg2 is not installed (scripts/setup --test does)";
  }
  using canopy::test::Quote;
  ExpectClientPasses("/usr/bin/python3 " +
                         Quote(std::string(canopy::test::kTestDir) + "/pgwire/psycopg2_client.py"),
                     "dana " + Quote(tokens_["dana"]) + " " + Quote(tokens_["zoe"]),
                     "a parameterised query");
}

// PostgreSQL's JDBC driver, as DBeaver, Metabase and other JDBC tools use it: browsing
// (DatabaseMetaData), prepared statements with binary results, fetching in steps.
TEST_F(ServerPgWireTest, JdbcBrowsesTheMeshAndReadsUnderTheSameGovernance) {
  const std::string jar = "/usr/share/java/postgresql.jar";
  if (canopy::test::Shell("command -v java >/dev/null 2>&1") != 0 || !fs::exists(jar)) {
    GTEST_SKIP() << "a JDK and Debian's libpostgresql-jdbc-java are needed (scripts/setup --test)";
  }
  using canopy::test::Quote;
  ExpectClientPasses("java -cp " + jar + " " +
                         Quote(std::string(canopy::test::kTestDir) + "/pgwire/JdbcClient.java"),
                     "dana " + Quote(tokens_["dana"]) + " zoe " + Quote(tokens_["zoe"]),
                     "a denied read is refused with 42501");
}

// node-postgres (npm's pg): the extended protocol as JavaScript tools speak it.
TEST_F(ServerPgWireTest, NodePostgresQueriesUnderTheSameGovernance) {
  const std::string dir = std::string(canopy::test::kTestDir) + "/pgwire/node";
  if (canopy::test::Shell("command -v node >/dev/null 2>&1") != 0 ||
      !fs::exists(dir + "/node_modules/pg")) {
    GTEST_SKIP() << "node and the npm package pg are needed (scripts/setup --test)";
  }
  using canopy::test::Quote;
  ExpectClientPasses("node " + Quote(dir + "/client.mjs"),
                     "dana " + Quote(tokens_["dana"]) + " zoe " + Quote(tokens_["zoe"]),
                     "a named prepared statement, run 3");
}

// A token revoked while its session is open stops the session at its next statement;
// a statement that is not UTF-8 is refused, and the session goes on.
TEST_F(ServerPgWireTest, ARevokedTokenEndsItsOpenSessionAtTheNextStatement) {
  const PsqlRun bytes = Psql("dana", {std::string("select '\xff' as x"), "select 1"});
  EXPECT_NE(bytes.out.find("22021"), std::string::npos) << bytes.out;
  EXPECT_NE(bytes.out.find("(1 row)"), std::string::npos) << bytes.out;

  const std::string id = tokens_["dana"].substr(4, tokens_["dana"].find('_', 4) - 4);
  const std::string revoke = "\\! cd " + canopy::test::Quote(mesh_) + " && " +
                             canopy::test::kCanopyBinary + " token revoke " + id +
                             " >/dev/null 2>&1";
  const PsqlRun run = Psql(
      "dana", {"select count(*) from sales.orders", revoke, "select count(*) from sales.orders"});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.out.find("(1 row)"), std::string::npos) << run.out;  // before the revoke
  EXPECT_NE(run.out.find("28000: the token of this session was revoked"), std::string::npos)
      << run.out;

  // Describing a statement tells its columns: it is refused too, and ends the session.
  RawPg pg(pg_port_);
  ASSERT_TRUE(pg.Login("zoe", tokens_["zoe"]));
  const std::string zoe = tokens_["zoe"].substr(4, tokens_["zoe"].find('_', 4) - 4);
  ASSERT_EQ(canopy::test::Shell("cd " + canopy::test::Quote(mesh_) + " && " +
                                canopy::test::kCanopyBinary + " token revoke " + zoe +
                                " >/dev/null 2>&1"),
            0);
  const std::string nul(1, '\0');
  ASSERT_TRUE(
      pg.Send(RawPg::Message('P', nul + "select id from crm.customers" + nul + RawPg::Be16(0)) +
              RawPg::Message('D', "S" + nul) + RawPg::Message('S', "")));
  EXPECT_FALSE(pg.ReadUntilReady()) << pg.Types();  // the connection ended before a Sync's answer
  EXPECT_EQ(pg.Types().find('T'), std::string::npos) << "no RowDescription: " << pg.Types();
  EXPECT_NE(pg.captured().find("the token of this session was revoked"), std::string::npos)
      << pg.captured();
}

}  // namespace

namespace {

// A product saved and built through the REST API is a port at once for a PostgreSQL
// session that was already open: the server's API and its sessions share one mesh.
TEST_F(ServerPgWireTest, AProductSavedThroughTheApiIsThereForAnOpenSession) {
  const std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(pg_port_) +
      " user=ben dbname=govtest connect_timeout=10 password=" + tokens_["ben"];
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* before = PQexec(conn, "select count(*) from sales.from_wire");
  EXPECT_EQ(PQresultStatus(before), PGRES_FATAL_ERROR);
  PQclear(before);

  const json flow = {
      {"product", {{"name", "from_wire"}, {"purpose", "Orders as they are"}}},
      {"blocks",
       json::array({{{"id", "o"}, {"type", "source"}, {"port", "sales.orders"}},
                    {{"id", "out"}, {"type", "output"}, {"input", "o"}, {"name", "from_wire"}}})}};
  {
    Wire wire(a_.port);
    ASSERT_TRUE(wire.Send(Request("POST", "/api/v1/domains/sales/products", tokens_["ben"],
                                  json({{"flow", flow}}).dump())));
    auto saved = wire.Read();
    ASSERT_TRUE(saved.has_value());
    ASSERT_EQ(saved->status, 201) << saved->body;
  }
  {
    Wire wire(a_.port);
    ASSERT_TRUE(wire.Send(
        Request("POST", "/api/v1/builds", tokens_["ben"], R"({"targets": ["sales.from_wire"]})")));
    auto built = wire.Read();
    ASSERT_TRUE(built.has_value());
    ASSERT_EQ(built->status, 200) << built->body;
    EXPECT_NE(built->body.find(R"("event":"done")"), std::string::npos) << built->body;
    EXPECT_NE(built->body.find(R"("ok":true)"), std::string::npos) << built->body;
  }
  PGresult* after = PQexec(conn, "select count(*) from sales.from_wire");
  ASSERT_EQ(PQresultStatus(after), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  EXPECT_GT(std::stoll(PQgetvalue(after, 0, 0)), 0);
  PQclear(after);
  PQfinish(conn);
}

}  // namespace

namespace {

// Repeated failed authentications from one address slow that address down: after ten in
// a minute it must wait (429, Retry-After, audited), a valid token included; others are
// not affected.
TEST_F(ApiTest, RepeatedFailedAuthenticationsFromOneAddressAreSlowedDown) {
  server::Api api(*mesh_, Lease, "test");
  auto call = [&](const std::string& peer, const std::string& token) {
    server::HttpRequest request;
    request.method = "GET";
    request.path = "/api/v1/me";
    request.peer = peer;
    request.authorization = "Bearer " + token;
    return api.Handle(request);
  };
  const std::string guesser = "203.0.113.7";
  const std::string forged = "cnp_1_" + std::string(64, 'a');
  for (int i = 0; i < governance::AuthThrottle::kFree; ++i) {
    EXPECT_EQ(call(guesser, forged).status, 401) << i;
  }
  EXPECT_EQ(call(guesser, forged).status, 401);  // this failure starts the wait
  auto slowed = call(guesser, tokens_->at("dana"));
  EXPECT_EQ(slowed.status, 429) << slowed.body;
  EXPECT_GE(slowed.retry_after, 1);
  EXPECT_NE(slowed.body.find("try again in"), std::string::npos);
  EXPECT_EQ(call("198.51.100.2", tokens_->at("dana")).status, 200);  // another address
  bool audited = false;
  for (const auto& entry : catalog_->Audit(0, 100000)) {
    audited |=
        entry.action == "auth.throttle" && entry.target == guesser && entry.outcome == "denied";
  }
  EXPECT_TRUE(audited);
}

TEST(AuthThrottle, WaitsDoubleAndAreForgottenAfterASuccess) {
  governance::AuthThrottle throttle;
  const auto start = governance::AuthThrottle::Clock::now();
  for (int i = 0; i < governance::AuthThrottle::kFree; ++i)
    EXPECT_EQ(throttle.Failed("a", start), 0);
  EXPECT_EQ(throttle.Failed("a", start), 1);
  EXPECT_EQ(throttle.WaitSeconds("a", start), 1);
  EXPECT_EQ(throttle.WaitSeconds("a", start + std::chrono::seconds(2)), 0);
  EXPECT_EQ(throttle.Failed("a", start + std::chrono::seconds(2)), 2);
  EXPECT_EQ(throttle.Failed("a", start + std::chrono::seconds(5)), 4);
  EXPECT_EQ(throttle.WaitSeconds("b", start), 0);
  throttle.Succeeded("a");
  EXPECT_EQ(throttle.WaitSeconds("a", start + std::chrono::seconds(5)), 0);
  EXPECT_EQ(throttle.Failed("a", start + std::chrono::seconds(5)), 0);
}

}  // namespace

// A PostgreSQL login that cannot be audited (the catalog busy: every connection the
// wire may use is out) is refused in the protocol, never let in unrecorded (the soak
// benchmark found a session opened whose pg.login entry was lost).
TEST(ServerPgLogin, ALoginThatCannotBeAuditedIsRefusedAsBusy) {
  std::unique_ptr<test::GovernanceMeshApi> env;
  test::MakeGovernanceMeshApi(env, "canopy-pglogin-");
  ASSERT_NE(env, nullptr);
  catalog::CatalogStore* store = env->catalog.get();
  std::atomic<int> leases{0};
  std::atomic<int> fail_from{1 << 30};  // the lease number from which leasing fails
  pgwire::PgOptions options;
  options.listen = "127.0.0.1:0";
  options.version = "test";
  pgwire::PgListener listener(
      env->meshes,
      [&]() -> std::shared_ptr<catalog::CatalogStore> {
        if (++leases >= fail_from) {
          throw Error(ErrorCode::kFailed, "the catalog connections are all in use",
                      "try again in a moment");
        }
        return {store, [](auto*) {}};
      },
      options);
  listener.Start();
  auto connect = [&] {
    const std::string conninfo =
        "host=127.0.0.1 port=" + std::to_string(listener.port()) +
        " dbname=mesh connect_timeout=10 user=dana password=" + env->tokens.at("dana");
    return PQconnectdb(conninfo.c_str());
  };
  auto logins = [&] {
    int ok = 0;
    for (const auto& entry : store->Audit(0, 1 << 30)) {
      ok += entry.action == "pg.login" && entry.outcome == "ok" ? 1 : 0;
    }
    return ok;
  };
  // A login as it should be: one entry.
  PGconn* fine = connect();
  EXPECT_EQ(PQstatus(fine), CONNECTION_OK) << PQerrorMessage(fine);
  PQfinish(fine);
  EXPECT_EQ(logins(), 1);
  // The token checked, then no connection left to record the login with.
  leases = 0;
  fail_from = 2;
  PGconn* unrecorded = connect();
  EXPECT_NE(PQstatus(unrecorded), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(unrecorded)).find("too busy to record the login"),
            std::string::npos)
      << PQerrorMessage(unrecorded);
  PQfinish(unrecorded);
  EXPECT_EQ(logins(), 1);
  // No connection even to check the token: the same, with the pool's own words.
  leases = 0;
  fail_from = 1;
  PGconn* unchecked = connect();
  EXPECT_NE(PQstatus(unchecked), CONNECTION_OK);
  EXPECT_NE(std::string(PQerrorMessage(unchecked)).find("all in use"), std::string::npos)
      << PQerrorMessage(unchecked);
  PQfinish(unchecked);
  EXPECT_EQ(logins(), 1);
  listener.Stop();
}

// Sessions run on pooled threads: a connection after another is served by a thread that
// served before (DuckDB sets up memory for each new thread that runs a query: a thread per
// connection made every connection's first result about 10 ms later). The cap on
// connections holds, and a slot frees when its session ends.
TEST(ServerPgSessions, ThreadsServeOneConnectionAfterAnotherAndTheCapHolds) {
  std::unique_ptr<test::GovernanceMeshApi> env;
  test::MakeGovernanceMeshApi(env, "canopy-pgpool-");
  ASSERT_NE(env, nullptr);
  catalog::CatalogStore* store = env->catalog.get();
  pgwire::PgOptions options;
  options.listen = "127.0.0.1:0";
  options.version = "test";
  options.max_connections = 3;
  pgwire::PgListener listener(
      env->meshes,
      [&]() -> std::shared_ptr<catalog::CatalogStore> {
        return {store, [](auto*) {}};
      },
      options);
  listener.Start();
  const std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(listener.port()) +
      " dbname=mesh connect_timeout=10 user=dana password=" + env->tokens.at("dana");
  // The threads serving sessions, by their name.
  auto session_threads = [] {
    std::set<std::string> ids;
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
      if (canopy::test::Read(task.path() / "comm").rfind("canopy-pg", 0) == 0) {
        ids.insert(task.path().filename().string());
      }
    }
    return ids;
  };
  auto query = [&](PGconn* conn) {
    PGresult* result = PQexec(conn, "select count(*) from sales.orders");
    const bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
    PQclear(result);
    return ok;
  };
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    EXPECT_TRUE(query(conn)) << PQerrorMessage(conn);
    for (const auto& id : session_threads()) seen.insert(id);
    PQfinish(conn);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // A thread per connection would have been 20; one, or a few where a connection came
  // before the last one's thread was back, serve them all.
  EXPECT_LE(seen.size(), 3U);

  // Three at once is the cap: a fourth is refused with 53300 and the reason, also to a
  // client that asks for TLS first (libpq's default) and to one that does not.
  std::vector<PGconn*> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(PQconnectdb(conninfo.c_str()));
    EXPECT_EQ(PQstatus(open.back()), CONNECTION_OK) << PQerrorMessage(open.back());
  }
  for (const char* sslmode : {" sslmode=prefer", " sslmode=disable"}) {
    PGconn* refused = PQconnectdb((conninfo + sslmode).c_str());
    EXPECT_NE(PQstatus(refused), CONNECTION_OK);
    EXPECT_NE(std::string(PQerrorMessage(refused)).find("too many connections (at most 3)"),
              std::string::npos)
        << sslmode << ": " << PQerrorMessage(refused);
    PQfinish(refused);
  }
  for (PGconn* conn : open) EXPECT_TRUE(query(conn)) << PQerrorMessage(conn);
  // A cancel still gets through with every slot taken: that is when one is wanted most.
  ASSERT_EQ(PQsendQuery(open[0],
                        "with recursive t(n) as (select 1 union all select n + 1 from t "
                        "where n < 1000000000) select count(*) from t"),
            1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  PGcancel* cancel = PQgetCancel(open[0]);
  char why[256] = "";
  EXPECT_EQ(PQcancel(cancel, why, sizeof why), 1) << why;
  PQfreeCancel(cancel);
  PGresult* cancelled = PQgetResult(open[0]);
  const char* state = PQresultErrorField(cancelled, PG_DIAG_SQLSTATE);
  EXPECT_STREQ(state != nullptr ? state : "", "57014") << PQresultErrorMessage(cancelled);
  PQclear(cancelled);
  while (PGresult* rest = PQgetResult(open[0])) PQclear(rest);
  // One ends: its slot is free again once the server has seen it go.
  PQfinish(open.back());
  open.pop_back();
  bool admitted = false;
  for (int attempt = 0; attempt < 100 && !admitted; ++attempt) {
    PGconn* again = PQconnectdb(conninfo.c_str());
    admitted = PQstatus(again) == CONNECTION_OK && query(again);
    PQfinish(again);
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(admitted) << "a freed slot was not given to the next connection";
  for (PGconn* conn : open) PQfinish(conn);
  listener.Stop();  // with sessions' threads waiting in the pool
  EXPECT_TRUE(session_threads().empty()) << "Stop left a session's thread running";
}
