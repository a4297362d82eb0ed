// Lineage wired into the platform, through the real command line and the API:
// column lineage stored at build time and followed by `canopy lineage` across
// products and domains; "not analysed" kept with its reason; breaking changes naming
// the ports that read the changed columns; OpenLineage RunEvents recorded, exported,
// valid against the standard's schemas, and POSTed to an endpoint (which may be down).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "catalog/catalog.h"
#include "cli_support.h"
#include "core/diagnostics.h"
#include "governance/tokens.h"
#include "server/api.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"
#include "support/test_store.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace canopy;

namespace {

using canopy::test::CliRun;
using canopy::test::HaveShared;
using canopy::test::MissingStandards;
using canopy::test::Quote;
using canopy::test::Read;
using canopy::test::Shell;
using canopy::test::ValidateJsonTool;

// Runs canopy in `mesh` with `args`; `env` is put before the command ("A=b").
CliRun Canopy(const fs::path& mesh, const std::string& args, const std::string& env = "") {
  CliRun run;
  const fs::path out = mesh.parent_path() / "stdout";
  const fs::path err = mesh.parent_path() / "stderr";
  run.exit_code =
      Shell("cd " + Quote(mesh.string()) + " && " + env + " " + Quote(canopy::test::kCanopyBinary) +
            " " + args + " >" + Quote(out.string()) + " 2>" + Quote(err.string()));
  run.out = Read(out);
  run.err = Read(err);
  return run;
}

// validate-json openlineage FILE must pass. Without ../shared the rest of the test
// still runs, and the test is reported skipped.
void ExpectValidOpenLineage(const fs::path& file) {
  if (!HaveShared()) GTEST_SKIP() << MissingStandards();
  const fs::path log = file.string() + ".validation";
  const int code = Shell(Quote(ValidateJsonTool().string()) + " openlineage " +
                         Quote(file.string()) + " >" + Quote(log.string()) + " 2>&1");
  EXPECT_EQ(code, 0) << Read(log);
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

bool HasEdge(const json& edges, const std::string& port, const std::string& column,
             const std::string& source, const std::string& source_column,
             const std::string& type = "", const std::string& subtype = "") {
  for (const auto& e : edges) {
    if (e["port"] == port && e["column"] == column && e["source"] == source &&
        e["source_column"] == source_column && (type.empty() || e["type"] == type) &&
        (subtype.empty() || e["subtype"] == subtype)) {
      return true;
    }
  }
  return false;
}

// --- the example mesh: five domains, cross-domain products --------------------------------

class ExampleLineage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    canopy::test::ShareCatalogInSuite();
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("canopy-lineage-example-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    ASSERT_EQ(Shell(Quote(canopy::test::kCanopyBinary) + " example " +
                    Quote((*dir_ / "acme").string()) + " --scale 0.002 >/dev/null 2>&1"),
              0);
    CliRun build = Canopy(Mesh(), "build");
    ASSERT_EQ(build.exit_code, 0) << build.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static fs::path Mesh() { return *dir_ / "acme"; }
  static fs::path* dir_;
};
fs::path* ExampleLineage::dir_ = nullptr;

TEST_F(ExampleLineage, AColumnIsFollowedUpAcrossProductsAndDomainsToTheFile) {
  CliRun run =
      Canopy(Mesh(), "lineage finance.revenue_by_region.cogs --direction up --format json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json out = json::parse(run.out);
  EXPECT_EQ(out["ports"], json::array({"finance.revenue_by_region"}));
  // finance reads sales' port; sales read its file: one chain across two domains.
  EXPECT_TRUE(HasEdge(out["upstream"], "finance.revenue_by_region", "cogs", "sales.order_lines",
                      "quantity", "DIRECT", "AGGREGATION"))
      << out.dump(1);
  EXPECT_TRUE(HasEdge(out["upstream"], "sales.order_lines", "quantity",
                      "file:sales/data/order_lines.csv", "quantity", "DIRECT"))
      << out.dump(1);
  EXPECT_TRUE(out["downstream"].empty());
  EXPECT_TRUE(out["not_analysed"].empty()) << out["not_analysed"].dump();

  CliRun text = Canopy(Mesh(), "lineage finance.revenue_by_region.cogs --direction up");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("finance.revenue_by_region.cogs\n    <- sales.order_lines.quantity  "
                          "DIRECT AGGREGATION"),
            std::string::npos)
      << text.out;
}

TEST_F(ExampleLineage, AColumnIsFollowedDownToEveryConsumer) {
  CliRun run = Canopy(Mesh(), "lineage sales.order_lines.quantity --direction down --format json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json out = json::parse(run.out);
  EXPECT_TRUE(out["upstream"].empty());
  EXPECT_TRUE(HasEdge(out["downstream"], "finance.revenue_by_region", "cogs", "sales.order_lines",
                      "quantity"))
      << out.dump(1);
  for (const auto& e : out["downstream"]) EXPECT_NE(e["port"], "sales.order_lines");

  CliRun dot = Canopy(Mesh(), "lineage sales.order_lines.quantity --direction down --format dot");
  ASSERT_EQ(dot.exit_code, 0) << dot.err;
  EXPECT_EQ(dot.out.rfind("digraph lineage {", 0), 0u) << dot.out;
  EXPECT_NE(dot.out.find("\"sales.order_lines.quantity\" -> \"finance.revenue_by_region.cogs\""),
            std::string::npos)
      << dot.out;
}

TEST_F(ExampleLineage, AProductShowsItsProductEdgesAndItsColumnEdges) {
  CliRun run = Canopy(Mesh(), "lineage finance.revenue_by_region --format json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json out = json::parse(run.out);
  EXPECT_EQ(out["direction"], "both");
  std::set<std::pair<std::string, std::string>> edges;
  for (const auto& e : out["edges"]) {
    edges.insert({e["from"].get<std::string>(), e["to"].get<std::string>()});
  }
  EXPECT_EQ(edges.count({"sales.order_lines", "finance.revenue_by_region"}), 1u);
  EXPECT_EQ(edges.count({"file:sales/data/order_lines.csv", "sales.order_lines"}), 1u);
  ASSERT_EQ(out["ports"].size(), 1u);
  EXPECT_EQ(out["ports"][0]["analysed"], true);
  EXPECT_TRUE(HasEdge(out["column_edges"], "finance.revenue_by_region", "cogs", "sales.products",
                      "unit_cost", "DIRECT", "AGGREGATION"));

  CliRun text = Canopy(Mesh(), "lineage finance.revenue_by_region");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("sales.order_lines -> finance.revenue_by_region"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("<- sales.products.unit_cost  DIRECT AGGREGATION"), std::string::npos);
}

TEST_F(ExampleLineage, UnknownNamesFailWithAHintAndBadUsageExitsTwo) {
  CliRun product = Canopy(Mesh(), "lineage finance.revenue_by_regon");
  EXPECT_EQ(product.exit_code, 1);
  EXPECT_NE(product.err.find("no product 'finance.revenue_by_regon'"), std::string::npos)
      << product.err;
  EXPECT_NE(product.err.find("finance.revenue_by_region"), std::string::npos) << product.err;
  CliRun column = Canopy(Mesh(), "lineage finance.revenue_by_region.cogz");
  EXPECT_EQ(column.exit_code, 1);
  EXPECT_NE(column.err.find("no column 'cogz' in finance.revenue_by_region"), std::string::npos)
      << column.err;
  EXPECT_NE(column.err.find("cogs"), std::string::npos) << column.err;
  EXPECT_EQ(Canopy(Mesh(), "lineage finance.revenue_by_region --direction sideways").exit_code, 2);
  EXPECT_EQ(Canopy(Mesh(), "lineage finance.revenue_by_region --format xml").exit_code, 2);
  EXPECT_EQ(Canopy(Mesh(), "lineage finance").exit_code, 2);
}

TEST_F(ExampleLineage, EveryProductRunHasAStartAndACompleteEventThatValidate) {
  const fs::path file = *dir_ / "events.jsonl";
  CliRun run = Canopy(Mesh(), "export openlineage --output " + Quote(file.string()));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ExpectValidOpenLineage(file);
  const auto events = JsonLines(Read(file));
  std::map<std::string, std::vector<std::string>> by_run;  // runId → event types
  std::set<std::string> jobs;
  for (const auto& event : events) {
    by_run[event["run"]["runId"]].push_back(event["eventType"]);
    jobs.insert(event["job"]["name"]);
    EXPECT_EQ(event["job"]["namespace"], "canopy://acme");
  }
  EXPECT_EQ(jobs.size(), 9u);  // the example's nine products
  for (const auto& [run_id, types] : by_run) {
    EXPECT_EQ(types, (std::vector<std::string>{"START", "COMPLETE"})) << run_id;
  }
  // The column lineage facet says what the catalog says, in OpenLineage's words.
  bool found = false;
  for (const auto& event : events) {
    if (event["eventType"] != "COMPLETE" || event["job"]["name"] != "finance.revenue_by_region") {
      continue;
    }
    const json& output = event["outputs"][0];
    EXPECT_EQ(output["name"], "finance.revenue_by_region");
    EXPECT_FALSE(output["facets"]["dataQualityAssertions"]["assertions"].empty());
    EXPECT_EQ(output["facets"]["schema"]["fields"][0]["name"], "month");
    for (const auto& field : output["facets"]["columnLineage"]["fields"]["cogs"]["inputFields"]) {
      if (field["name"] == "sales.order_lines" && field["field"] == "quantity") {
        found = true;
        EXPECT_EQ(field["namespace"], "canopy://acme");
        EXPECT_EQ(field["transformations"][0]["type"], "DIRECT");
        EXPECT_EQ(field["transformations"][0]["subtype"], "AGGREGATION");
      }
    }
    EXPECT_FALSE(output["facets"]["columnLineage"]["dataset"].empty());
  }
  EXPECT_TRUE(found);
  // stdout by default, one event per line.
  CliRun stdout_run = Canopy(Mesh(), "export openlineage");
  ASSERT_EQ(stdout_run.exit_code, 0);
  EXPECT_EQ(JsonLines(stdout_run.out).size(), events.size());
}

// --- the governance test mesh: small, with a private domain -------------------------------

class MeshLineage : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("canopy-lineage-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", dir_ / "mesh",
             fs::copy_options::recursive);
  }
  void TearDown() override {
    StopListener();
    fs::remove_all(dir_);
  }

  fs::path Mesh() const { return dir_ / "mesh"; }

  void Edit(const std::string& file, const std::string& what, const std::string& with) {
    const fs::path path = Mesh() / file;
    std::string text = Read(path);
    const auto at = text.find(what);
    ASSERT_NE(at, std::string::npos) << what;
    text.replace(at, what.size(), with);
    std::ofstream(path) << text;
  }
  void Write(const std::string& file, const std::string& text) {
    std::ofstream(Mesh() / file) << text;
  }

  // A loopback HTTP listener (python3's http.server) that appends each POSTed body as
  // one line to `received`; returns its URL.
  std::string StartListener() {
    const fs::path script = dir_ / "listener.py";
    std::ofstream(script) << R"py(import http.server, sys
out, port_file = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        with open(out, 'ab') as f:
            f.write(body.replace(b'\n', b' ') + b'\n')
        self.send_response(201)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
with open(port_file + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + '.tmp', port_file)
server.serve_forever()
)py";
    const fs::path port_file = dir_ / "port";
    listener_ = ::fork();
    if (listener_ == 0) {
      ::execlp("python3", "python3", script.c_str(), (dir_ / "received.jsonl").c_str(),
               port_file.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return "http://127.0.0.1:" + Read(port_file) + "/api/v1/lineage";
  }
  void StopListener() {
    if (listener_ <= 0) return;
    ::kill(listener_, SIGTERM);
    ::waitpid(listener_, nullptr, 0);
    listener_ = -1;
  }

  fs::path dir_;
  pid_t listener_ = -1;
};

TEST_F(MeshLineage, AFailingProductEmitsFailAndItsConsumerTooAndAllValidate) {
  // sales.orders promises a column its SQL does not make: the contract fails.
  Edit("domains/sales/products/orders.yaml", "        - { name: region, physicalType: VARCHAR }",
       "        - { name: region, physicalType: VARCHAR }\n"
       "        - { name: channel, physicalType: VARCHAR }");
  CliRun build = Canopy(Mesh(), "build");
  ASSERT_EQ(build.exit_code, 1) << build.err;
  const fs::path file = dir_ / "events.jsonl";
  ASSERT_EQ(Canopy(Mesh(), "export openlineage --output " + Quote(file.string())).exit_code, 0);
  ExpectValidOpenLineage(file);
  std::map<std::string, std::vector<std::string>> by_job;
  for (const auto& event : JsonLines(Read(file))) {
    by_job[event["job"]["name"]].push_back(event["eventType"]);
    if (event["eventType"] == "FAIL") {
      EXPECT_FALSE(event["run"]["facets"]["errorMessage"]["message"].get<std::string>().empty());
    }
  }
  EXPECT_EQ(by_job["sales.orders"], (std::vector<std::string>{"START", "FAIL"}));
  EXPECT_EQ(by_job["finance.exposure"], (std::vector<std::string>{"START", "FAIL"}));
  EXPECT_EQ(by_job["crm.customers"], (std::vector<std::string>{"START", "COMPLETE"}));
}

TEST_F(MeshLineage, AColumnReadThroughAMaskIsMarkedMaskedInTheFacet) {
  // finance builds as domain:finance, which is not cleared for pii: crm.customers.email
  // reaches finance.exposure hashed.
  ASSERT_EQ(Canopy(Mesh(), "build").exit_code, 0);
  bool checked = false;
  for (const auto& event : JsonLines(Canopy(Mesh(), "export openlineage").out)) {
    if (event["eventType"] != "COMPLETE" || event["job"]["name"] != "finance.exposure") continue;
    const json& fields = event["outputs"][0]["facets"]["columnLineage"]["fields"];
    ASSERT_EQ(fields["email"]["inputFields"].size(), 1u) << fields.dump(1);
    const json& email = fields["email"]["inputFields"][0];
    EXPECT_EQ(email["name"], "crm.customers");
    EXPECT_EQ(email["field"], "email");
    EXPECT_EQ(email["transformations"][0]["masking"], true);
    const json& id = fields["id"]["inputFields"][0];
    EXPECT_FALSE(id["transformations"][0].contains("masking")) << id.dump();
    checked = true;
  }
  EXPECT_TRUE(checked);
}

// Classification follows the data: a column computed from a pii column is pii (upper()
// of a name too), unless its owner declassifies it with a written reason, which is
// audited with what it outweighs.
TEST_F(MeshLineage, AColumnComputedFromAClassifiedOneInheritsItsClassification) {
  const std::string file = "domains/finance/products/exposure.yaml";
  Edit(file, "select c.id, c.email,", "select c.id, c.email, upper(c.name) as shout,");
  Edit(file, "{ name: email, physicalType: VARCHAR, classification: pii }",
       "{ name: email, physicalType: VARCHAR, classification: confidential }\n"
       "        - { name: shout, physicalType: VARCHAR }");
  // Known before any build: the inputs are ports, whose contracts give their columns.
  const CliRun invalid = Canopy(Mesh(), "validate");
  EXPECT_NE(invalid.exit_code, 0);
  EXPECT_NE((invalid.out + invalid.err)
                .find("finance.exposure.shout is declared internal but is computed from "
                      "crm.customers.name (pii)"),
            std::string::npos)
      << invalid.out << invalid.err;
  const CliRun refused = Canopy(Mesh(), "build");
  EXPECT_NE(refused.exit_code, 0);
  const std::string said = refused.out + refused.err;
  EXPECT_NE(said.find("classification does not follow the data"), std::string::npos) << said;
  EXPECT_NE(said.find("finance.exposure.email is declared confidential but is computed from "
                      "crm.customers.email (pii)"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("finance.exposure.shout is declared internal but is computed from "
                      "crm.customers.name (pii)"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("exposure.yaml:"), std::string::npos) << "names the file and line\n" << said;
  EXPECT_NE(said.find("declassified"), std::string::npos) << "says how to declassify\n" << said;

  // pii for the derived column; a written reason for the other.
  Edit(file, "{ name: shout, physicalType: VARCHAR }",
       "{ name: shout, physicalType: VARCHAR, classification: pii }");
  Edit(file, "{ name: email, physicalType: VARCHAR, classification: confidential }",
       "{ name: email, physicalType: VARCHAR, classification: confidential, customProperties: "
       "[{ property: declassified, value: \"finance reads it hashed: no one's address\" }] }");
  const CliRun built = Canopy(Mesh(), "build");
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;
  const auto audit = nlohmann::json::parse(Canopy(Mesh(), "audit --format json").out);
  int declassified = 0;
  for (const auto& entry : audit) {
    if (entry["action"] != "declassify") continue;
    ++declassified;
    EXPECT_EQ(entry["target"], "finance.exposure.email") << entry.dump();
    EXPECT_EQ(entry["principal"], "domain:finance") << entry.dump();
    const auto& details = entry["details"];
    EXPECT_EQ(details["reason"], "finance reads it hashed: no one's address") << entry.dump();
    EXPECT_EQ(details["lineage"], "pii") << entry.dump();
    EXPECT_EQ(details["declared"], "confidential") << entry.dump();
  }
  EXPECT_EQ(declassified, 1) << audit.dump(1);

  // A declassification without a reason is an error where it is written.
  Edit(file, "value: \"finance reads it hashed: no one's address\"", "value: \"  \"");
  const CliRun empty = Canopy(Mesh(), "validate");
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE((empty.out + empty.err).find("declassified needs a written reason"), std::string::npos)
      << empty.out << empty.err;
}

TEST_F(MeshLineage, ARefusedPublishNamesThePortsThatReadTheChangedColumns) {
  ASSERT_EQ(Canopy(Mesh(), "build").exit_code, 0);
  // finance.exposure reads crm.customers.credit_limit; nothing reads score.
  Edit("domains/crm/products/customers.yaml",
       "{ name: credit_limit, physicalType: \"DECIMAL(10,2)\", classification: confidential }",
       "{ name: credit_limit, physicalType: DOUBLE, classification: confidential }");
  Edit("domains/crm/products/customers.yaml", "credit_limit, score, segment from raw",
       "cast(credit_limit as double) as credit_limit, score, segment from raw");
  const std::string consumer =
      "finance.exposure (product finance.exposure, owner frank) reads crm.customers.credit_limit";
  CliRun diff = Canopy(Mesh(), "contract diff crm.customers");  // the same list, before building
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_NE(diff.out.find(consumer), std::string::npos) << diff.out;
  CliRun refused = Canopy(Mesh(), "build");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("crm.customers.credit_limit: type changed"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find(consumer), std::string::npos) << refused.err;
}

TEST_F(MeshLineage, AChangeToAColumnNobodyReadsNamesNoConsumer) {
  ASSERT_EQ(Canopy(Mesh(), "build").exit_code, 0);
  Edit("domains/crm/products/customers.yaml",
       "        - { name: segment, physicalType: VARCHAR, classification: public }\n", "");
  Edit("domains/crm/products/customers.yaml", ", score, segment from raw", ", score from raw");
  CliRun refused = Canopy(Mesh(), "build");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("crm.customers.segment: column removed"), std::string::npos);
  EXPECT_NE(refused.err.find("no other product reads what changed"), std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.err.find("finance.exposure (product"), std::string::npos) << refused.err;
}

TEST_F(MeshLineage, WithoutColumnLineageARefusalNamesPortLevelReaders) {
  // Consumers published without column lineage: the refusal falls back to the port.
  ASSERT_EQ(Canopy(Mesh(), "build", "CANOPY_COLUMN_LINEAGE=off").exit_code, 0);
  Edit("domains/crm/products/customers.yaml",
       "        - { name: segment, physicalType: VARCHAR, classification: public }\n", "");
  Edit("domains/crm/products/customers.yaml", ", score, segment from raw", ", score from raw");
  CliRun refused = Canopy(Mesh(), "build");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("finance.exposure (product finance.exposure, owner frank) reads "
                             "crm.customers (column lineage not analysed: column lineage is "
                             "turned off"),
            std::string::npos)
      << refused.err;
}

TEST_F(MeshLineage, SqlThatCannotBeAnalysedIsRecordedAsSuchNeverGuessed) {
  Write("domains/sales/products/pivoted.yaml", R"yaml(apiVersion: canopy/v1
kind: DataProduct
name: pivoted
version: 1.0.0
owner: alice
description: Amount per customer and region, one column per region
visibility: internal
inputs:
  - { name: orders, product: sales.orders }
transform:
  - { name: pivoted, sql: "select * from orders pivot (sum(amount) for region in ('EU', 'US') group by customer_id)" }
outputs:
  - name: pivoted
    contract:
      properties:
        - { name: customer_id, logicalType: integer }
        - { name: EU, logicalType: number }
        - { name: US, logicalType: number }
)yaml");
  CliRun build = Canopy(Mesh(), "build");
  ASSERT_EQ(build.exit_code, 0) << build.err;
  CliRun run = Canopy(Mesh(), "lineage sales.pivoted --format json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json out = json::parse(run.out);
  ASSERT_EQ(out["ports"].size(), 1u);
  EXPECT_EQ(out["ports"][0]["analysed"], false);
  EXPECT_NE(out["ports"][0]["reason"].get<std::string>().find("PIVOT"), std::string::npos);
  EXPECT_TRUE(out["column_edges"].empty());
  bool product_edge = false;
  for (const auto& e : out["edges"]) {
    product_edge = product_edge || (e["from"] == "sales.orders" && e["to"] == "sales.pivoted");
  }
  EXPECT_TRUE(product_edge);  // product-level lineage is kept
  CliRun text = Canopy(Mesh(), "lineage sales.pivoted.EU");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("not analysed: sales.pivoted:"), std::string::npos) << text.out;
}

TEST_F(MeshLineage, TheApiGivesColumnEdgesAndHidesPrivateProductsOfOtherDomains) {
  // hr.headcount is internal but reads hr.salaries, which is private to hr.
  Write("domains/hr/products/headcount.yaml", R"yaml(apiVersion: canopy/v1
kind: DataProduct
name: headcount
version: 1.0.0
owner: hank
description: Number of employees and total pay
visibility: internal
inputs:
  - { name: salaries, product: hr.salaries }
transform:
  - { name: headcount, sql: "select count(*) as employees, sum(salary) as total_pay from salaries" }
outputs:
  - name: headcount
    contract:
      properties:
        - { name: employees, logicalType: integer }
        - { name: total_pay, logicalType: number, classification: confidential }
)yaml");
  ASSERT_EQ(Canopy(Mesh(), "build").exit_code, 0);
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(Mesh().string(), diagnostics);
  spec::ValidateMesh(mesh, diagnostics);
  ASSERT_FALSE(diagnostics.HasErrors());
  std::shared_ptr<catalog::CatalogStore> store =
      canopy::test::OpenTestCatalog((Mesh() / ".canopy/catalog.db").string());
  std::map<std::string, std::string> tokens;
  for (const char* user : {"dana", "hank"}) {
    tokens[user] = governance::IssueToken(*store, user).token;
  }
  auto get = [&](const std::string& path, const std::string& user) {
    server::Api api(
        mesh, [&] { return store; }, "test");
    server::HttpRequest request;
    request.method = "GET";
    request.path = path;
    request.authorization = "Bearer " + tokens.at(user);
    auto response = api.Handle(request);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body);
  };
  const json customers = get("/api/v1/lineage/crm/customers", "dana");
  EXPECT_FALSE(customers["nodes"].empty());  // the fields the UI reads are still there
  EXPECT_FALSE(customers["edges"].empty());
  EXPECT_TRUE(HasEdge(customers["column_edges"], "finance.exposure", "credit_limit",
                      "crm.customers", "credit_limit", "DIRECT", "IDENTITY"))
      << customers["column_edges"].dump(1);
  EXPECT_TRUE(HasEdge(customers["column_edges"], "crm.customers", "email",
                      "file:crm/data/customers.csv", "email", "DIRECT", "IDENTITY"));
  bool analysed = false;
  for (const auto& p : customers["port_lineage"]) {
    analysed = analysed || (p["port"] == "crm.customers" && p["analysed"] == true);
  }
  EXPECT_TRUE(analysed);

  const json outsider = get("/api/v1/lineage/hr/headcount", "dana");
  ASSERT_EQ(outsider["port_lineage"].size(), 1u);  // its own port, not the private one
  EXPECT_EQ(outsider["port_lineage"][0]["port"], "hr.headcount");
  for (const auto& e : outsider["column_edges"]) {
    EXPECT_NE(e["source"], "hr.salaries") << "a private port leaked: " << e.dump();
  }
  for (const auto& p : outsider["port_lineage"]) EXPECT_NE(p["port"], "hr.salaries");
  const json owner = get("/api/v1/lineage/hr/headcount", "hank");
  EXPECT_TRUE(HasEdge(owner["column_edges"], "hr.headcount", "total_pay", "hr.salaries", "salary",
                      "DIRECT", "AGGREGATION"))
      << owner["column_edges"].dump(1);
}

TEST_F(MeshLineage, EveryEventIsPostedToTheEndpointMeshYamlNames) {
  const std::string url = StartListener();
  ASSERT_NE(url, "http://127.0.0.1:/api/v1/lineage") << "the listener did not start";
  std::ofstream(Mesh() / "mesh.yaml", std::ios::app) << "openlineage:\n  url: " << url << "\n";
  CliRun build = Canopy(Mesh(), "build");
  ASSERT_EQ(build.exit_code, 0) << build.err;
  EXPECT_EQ(build.err.find("OpenLineage"), std::string::npos) << build.err;
  StopListener();
  const fs::path received = dir_ / "received.jsonl";
  ExpectValidOpenLineage(received);
  const auto posted = JsonLines(Read(received));
  const auto recorded = JsonLines(Canopy(Mesh(), "export openlineage").out);
  EXPECT_EQ(posted.size(), recorded.size());
  EXPECT_EQ(posted.size(), 2u * 4u);  // START and COMPLETE of each of the four products
}

TEST_F(MeshLineage, AnUnreachableEndpointWarnsAndTheBuildStillSucceeds) {
  // Nothing listens on the discard port of the loopback address.
  std::ofstream(Mesh() / "mesh.yaml", std::ios::app)
      << "openlineage:\n  url: http://127.0.0.1:9/api/v1/lineage\n";
  CliRun build = Canopy(Mesh(), "build");
  EXPECT_EQ(build.exit_code, 0) << build.err;
  EXPECT_NE(build.err.find("warning: OpenLineage endpoint http://127.0.0.1:9/api/v1/lineage"),
            std::string::npos)
      << build.err;
  // The events are still recorded, for canopy export openlineage.
  EXPECT_EQ(JsonLines(Canopy(Mesh(), "export openlineage").out).size(), 2u * 4u);
}

TEST_F(MeshLineage, AnEndpointThatNeverAnswersTimesOutAndTheBuildStillSucceeds) {
  // A loopback socket that listens but never accepts: connecting and sending succeed
  // (the kernel queues them), the answer never comes.
  const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(socket, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(socket, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(socket, 16), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(socket, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/ol";
  std::ofstream(Mesh() / "mesh.yaml", std::ios::app) << "openlineage:\n  url: " << url << "\n";
  CliRun build = Canopy(Mesh(), "build");
  ::close(socket);
  EXPECT_EQ(build.exit_code, 0) << build.err;
  EXPECT_NE(build.err.find("warning: OpenLineage endpoint " + url), std::string::npos) << build.err;
  EXPECT_NE(build.err.find("timed out"), std::string::npos) << build.err;
}

TEST_F(MeshLineage, AnEndpointThatIsNotHttpIsASpecError) {
  std::ofstream(Mesh() / "mesh.yaml", std::ios::app)
      << "openlineage:\n  url: ftp://lineage.example.com/api/v1/lineage\n";
  CliRun validate = Canopy(Mesh(), "validate");
  EXPECT_EQ(validate.exit_code, 1);
  EXPECT_NE(validate.err.find("unsupported OpenLineage endpoint"), std::string::npos)
      << validate.err;
  EXPECT_NE(validate.err.find("give an http:// or https:// URL"), std::string::npos)
      << validate.err;
}

}  // namespace
