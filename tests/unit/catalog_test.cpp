#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "catalog/catalog.h"
#include "catalog/sqlite_catalog.h"
#include "core/error.h"
#include "support/test_store.h"

namespace fs = std::filesystem;

namespace canopy::catalog {
namespace {

ProductRecord Product(const std::string& domain, const std::string& name) {
  ProductRecord p;
  p.domain = domain;
  p.name = name;
  p.version = "1.0.0";
  p.status = "active";
  p.type = "aggregate";
  p.owner = "ana";
  p.visibility = "public";
  p.purpose = "What " + name + " is for.";
  p.tags = {"finance", "daily"};
  return p;
}

ColumnRecord Column(const std::string& name, const std::string& description) {
  return {name, "VARCHAR", "internal", true, false, false, description};
}

// A version of domain.product with one port "main" of two columns.
PublishedVersion Version(const std::string& domain, const std::string& product,
                         const std::string& build_id, const std::string& version = "1.0.0") {
  PublishedVersion v;
  v.domain = domain;
  v.product = product;
  v.version = version;
  v.build_id = build_id;
  v.fingerprint = "fp-" + build_id;
  v.published_at = "2024-05-01T10:00:00Z";
  v.manifest_path = domain + "/" + product + "/" + build_id + "/manifest.json";
  PortRecord port;
  port.name = "main";
  port.sql_name = domain + ".main";
  port.description = "The main output.";
  port.path = domain + "/" + product + "/" + build_id + "/main.parquet";
  port.rows = 42;
  port.bytes = 4096;
  port.checksum = "ab12";
  port.columns = {Column("id", "Identifier."), Column("amount", "Amount in euros.")};
  v.ports = {port};
  return v;
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ =
        fs::temp_directory_path() / ("canopy-catalog-" + std::to_string(::getpid()) + "-" + test);
    fs::remove_all(dir_);
    path_ = (dir_ / "meta" / "catalog.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The store under test: the file at path_, or on a PostgreSQL run the schema this
  // test was given (support/test_store.h). Schema tests are about the SQLite file.
  std::unique_ptr<CatalogStore> Open() {
    return sqlite_only_ ? OpenCatalog(path_) : canopy::test::OpenTestCatalog(path_);
  }

  static ErrorCode CodeOf(const std::function<void()>& action) {
    try {
      action();
    } catch (const Error& e) {
      return e.code();
    }
    ADD_FAILURE() << "expected an Error";
    return ErrorCode::kInternal;
  }

  fs::path dir_;
  std::string path_;
  bool sqlite_only_ = false;
};

// --- schema and migrations ---

class CatalogSchemaTest : public CatalogTest {
 protected:
  void SetUp() override {
    CatalogTest::SetUp();
    sqlite_only_ = true;
  }
};

TEST_F(CatalogSchemaTest, OpenCreatesFolderFileAndSchema) {
  auto store = Open();
  EXPECT_TRUE(fs::exists(path_));
  EXPECT_TRUE(store->ListProducts().empty());
  EXPECT_TRUE(store->Search("anything", 10).empty());
  EXPECT_TRUE(store->ReferencedPaths().empty());
}

TEST_F(CatalogSchemaTest, ReopeningKeepsDataAndAppliesNothingTwice) {
  // Migration 2 fails if run twice, so a second open proves it ran once.
  std::vector<Migration> migrations = SqliteMigrations();
  migrations.push_back({migrations.back().version + 1, "CREATE TABLE probe (x INTEGER);"});
  SqliteCatalog(path_, migrations)
      .SyncSpec({{"sales", "Sales.", {"ana"}}}, {Product("sales", "orders")});
  SqliteCatalog again(path_, migrations);
  ASSERT_EQ(again.ListProducts().size(), 1U);
  EXPECT_EQ(again.ListProducts()[0].product.name, "orders");
}

TEST_F(CatalogSchemaTest, AnOlderFileIsRefusedUntilUpgradedThenMigratedForward) {
  Open()->SyncSpec({}, {Product("sales", "orders")});
  std::vector<Migration> migrations = SqliteMigrations();
  const int next = migrations.back().version + 1;
  migrations.push_back({next,
                        "ALTER TABLE products ADD COLUMN note TEXT NOT NULL DEFAULT '';"
                        "UPDATE products SET note = 'migrated';"});
  try {
    SqliteCatalog refused(path_, migrations);
    FAIL() << "an older file must not be migrated without being asked";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailed);
    EXPECT_NE(std::string(e.what()).find("has schema version " + std::to_string(next - 1) +
                                         ", older than this canopy's " + std::to_string(next)),
              std::string::npos)
        << e.what();
    EXPECT_NE(e.hint().find("canopy catalog upgrade"), std::string::npos) << e.hint();
  }
  SqliteCatalog migrated(path_, migrations, Upgrade::kApply);
  EXPECT_EQ(migrated.Info().opened_at_version, next - 1);
  EXPECT_EQ(migrated.Info().schema_version, next);
  EXPECT_EQ(migrated.ListProducts().size(), 1U);
  // The file is now newer than the code without that migration.
  EXPECT_EQ(CodeOf([&] { Open(); }), ErrorCode::kFailed);
}

TEST_F(CatalogSchemaTest, ANewerSchemaOnDiskIsRefused) {
  std::vector<Migration> migrations = SqliteMigrations();
  const int newer = migrations.back().version + 1;
  migrations.push_back({newer, "CREATE TABLE from_the_future (x INTEGER);"});
  { SqliteCatalog writer(path_, migrations); }
  try {
    Open();
    FAIL() << "a newer schema must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailed);
    EXPECT_NE(std::string(e.what()).find("catalog schema version " + std::to_string(newer) +
                                         " is newer than this canopy supports"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(CatalogSchemaTest, AFailedMigrationKeepsTheFileAtThePreviousVersion) {
  Open()->SyncSpec({}, {Product("sales", "orders")});
  std::vector<Migration> migrations = SqliteMigrations();
  migrations.push_back(
      {migrations.back().version + 1, "CREATE TABLE half_done (x INTEGER); THIS IS NOT SQL;"});
  EXPECT_EQ(CodeOf([&] { SqliteCatalog failing(path_, migrations, Upgrade::kApply); }),
            ErrorCode::kFailed);
  auto store = Open();  // would be refused as "newer" had the migration been recorded
  EXPECT_EQ(store->ListProducts().size(), 1U);
}

TEST_F(CatalogSchemaTest, AFileThatIsNotACatalogIsAClearError) {
  fs::create_directories(dir_);
  const std::string junk = (dir_ / "junk.db").string();
  std::ofstream(junk) << "this is not a SQLite database, just some text that is long enough";
  try {
    OpenCatalog(junk);
    FAIL() << "a junk file must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailed);
    EXPECT_NE(std::string(e.what()).find("junk.db"), std::string::npos) << e.what();
  }
}

// --- the spec ---

using CatalogSpecTest = CatalogTest;

TEST_F(CatalogSpecTest, SyncedProductsAreListedAndShownBeforeAnyPublish) {
  auto store = Open();
  ProductRecord orders = Product("sales", "orders");
  orders.limitations = "Only EU stores.";
  store->SyncSpec({{"sales", "Sales.", {"ana", "bo"}}},
                  {Product("sales", "returns"), orders, Product("hr", "people")});
  auto products = store->ListProducts();
  ASSERT_EQ(products.size(), 3U);
  EXPECT_EQ(products[0].product.domain + "." + products[0].product.name, "hr.people");
  EXPECT_EQ(products[1].product.name, "orders");
  EXPECT_EQ(products[2].product.name, "returns");
  EXPECT_FALSE(products[1].build_id.has_value());
  EXPECT_FALSE(products[1].live_version.has_value());

  auto detail = store->GetProduct("sales", "orders");
  ASSERT_TRUE(detail.has_value());
  const ProductRecord& p = detail->summary.product;
  EXPECT_EQ(p.version, "1.0.0");
  EXPECT_EQ(p.status, "active");
  EXPECT_EQ(p.type, "aggregate");
  EXPECT_EQ(p.owner, "ana");
  EXPECT_EQ(p.visibility, "public");
  EXPECT_EQ(p.purpose, "What orders is for.");
  EXPECT_EQ(p.limitations, "Only EU stores.");
  EXPECT_EQ(p.tags, (std::vector<std::string>{"finance", "daily"}));
  EXPECT_FALSE(detail->summary.build_id.has_value());
  EXPECT_FALSE(detail->live.has_value());
  EXPECT_TRUE(detail->version_history.empty());
  EXPECT_FALSE(store->GetProduct("sales", "nothing").has_value());
  EXPECT_FALSE(store->Live("sales", "orders").has_value());
}

TEST_F(CatalogSpecTest, SyncUpdatesSpecMetadata) {
  auto store = Open();
  store->SyncSpec({}, {Product("sales", "orders")});
  ProductRecord changed = Product("sales", "orders");
  changed.owner = "bo";
  changed.version = "1.1.0";
  changed.tags = {"retail"};
  store->SyncSpec({}, {changed});
  auto p = store->GetProduct("sales", "orders")->summary.product;
  EXPECT_EQ(p.owner, "bo");
  EXPECT_EQ(p.version, "1.1.0");
  EXPECT_EQ(p.tags, std::vector<std::string>{"retail"});
  EXPECT_EQ(store->Search("retail", 10).size(), 1U);
  EXPECT_TRUE(store->Search("finance", 10).empty());
}

TEST_F(CatalogSpecTest, ProductsGoneFromTheSpecAreRetiredWithTheirHistory) {
  auto store = Open();
  store->SyncSpec({}, {Product("sales", "orders"), Product("sales", "returns")});
  store->Publish(Version("sales", "returns", "b1"));
  store->SyncSpec({}, {Product("sales", "orders")});

  auto returns = store->GetProduct("sales", "returns");
  ASSERT_TRUE(returns.has_value());
  EXPECT_EQ(returns->summary.product.status, "retired");
  EXPECT_EQ(returns->summary.build_id, "b1");
  EXPECT_EQ(returns->version_history.size(), 1U);
  EXPECT_EQ(store->GetProduct("sales", "orders")->summary.product.status, "active");

  store->SyncSpec({}, {Product("sales", "orders"), Product("sales", "returns")});
  EXPECT_EQ(store->GetProduct("sales", "returns")->summary.product.status, "active");
}

// --- publishing ---

using CatalogPublishTest = CatalogTest;

TEST_F(CatalogPublishTest, EveryFieldRoundTrips) {
  auto store = Open();
  store->SyncSpec({{"sales", "Sales.", {"ana"}}}, {Product("sales", "orders")});
  PublishedVersion v = Version("sales", "orders", "b1", "1.2.0");
  PortRecord second;
  second.name = "by_day";
  second.sql_name = "sales.by_day";
  second.description = "Per day.";
  second.path = "sales/orders/b1/by_day.parquet";
  second.rows = 7;
  second.bytes = 99;
  second.checksum = "cd34";
  // Deliberately not alphabetical: order must be kept.
  second.columns = {{"zeta", "DATE", "public", true, true, true, "Day."},
                    {"alpha", "BIGINT", "confidential", false, false, false, ""},
                    {"mid", "DECIMAL(18,2)", "internal", false, true, false, "Total."}};
  v.ports.push_back(second);
  v.quality = {{"main", "id", "nullValues mustBe 0", "error", true, "0", "= 0", ""},
               {"by_day", "", "rowCount", "warning", false, "7", "> 1000", "Too few days."}};
  v.lineage = {{"sales.raw_orders", "sales.main"}, {"file:data/fx.csv", "sales.main"}};
  v.input_versions = {{"sales.raw_orders", "b0"}, {"finance.fx", "b7"}};
  v.duration_ms = 1234;
  store->Publish(v);

  auto live = store->Live("sales", "orders");
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->version, "1.2.0");
  EXPECT_EQ(live->build_id, "b1");
  EXPECT_EQ(live->fingerprint, "fp-b1");
  EXPECT_EQ(live->published_at, "2024-05-01T10:00:00Z");
  EXPECT_EQ(live->manifest_path, "sales/orders/b1/manifest.json");
  EXPECT_EQ(live->input_versions, v.input_versions);
  ASSERT_EQ(live->ports.size(), 2U);
  for (size_t i = 0; i < v.ports.size(); ++i) {
    const PortRecord& want = v.ports[i];
    const PortRecord& got = live->ports[i];
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.sql_name, want.sql_name);
    EXPECT_EQ(got.description, want.description);
    EXPECT_EQ(got.path, want.path);
    EXPECT_EQ(got.rows, want.rows);
    EXPECT_EQ(got.bytes, want.bytes);
    EXPECT_EQ(got.checksum, want.checksum);
    ASSERT_EQ(got.columns.size(), want.columns.size());
    for (size_t j = 0; j < want.columns.size(); ++j) {
      const ColumnRecord& a = got.columns[j];
      const ColumnRecord& b = want.columns[j];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.type, b.type);
      EXPECT_EQ(a.classification, b.classification);
      EXPECT_EQ(a.required, b.required);
      EXPECT_EQ(a.unique, b.unique);
      EXPECT_EQ(a.primary_key, b.primary_key);
      EXPECT_EQ(a.description, b.description);
    }
  }
  ASSERT_EQ(live->quality.size(), 2U);
  for (size_t i = 0; i < v.quality.size(); ++i) {
    const QualityResult& a = live->quality[i];
    const QualityResult& b = v.quality[i];
    EXPECT_EQ(a.port, b.port);
    EXPECT_EQ(a.column, b.column);
    EXPECT_EQ(a.rule, b.rule);
    EXPECT_EQ(a.severity, b.severity);
    EXPECT_EQ(a.passed, b.passed);
    EXPECT_EQ(a.observed, b.observed);
    EXPECT_EQ(a.threshold, b.threshold);
    EXPECT_EQ(a.message, b.message);
  }

  auto detail = store->GetProduct("sales", "orders");
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->summary.build_id, "b1");
  EXPECT_EQ(detail->summary.live_version, "1.2.0");
  EXPECT_EQ(detail->summary.published_at, "2024-05-01T10:00:00Z");
  ASSERT_TRUE(detail->live.has_value());
  EXPECT_EQ(detail->live->ports.size(), 2U);
  EXPECT_EQ(detail->version_history,
            (std::vector<VersionEntry>{{"1.2.0", "b1", "2024-05-01T10:00:00Z"}}));
}

TEST_F(CatalogPublishTest, ASecondPublishBecomesLiveAndHistoryHoldsBoth) {
  auto store = Open();
  store->SyncSpec({}, {Product("sales", "orders")});
  store->Publish(Version("sales", "orders", "b1", "1.0.0"));
  PublishedVersion next = Version("sales", "orders", "b2", "1.1.0");
  next.published_at = "2024-05-02T10:00:00Z";
  store->Publish(next);

  EXPECT_EQ(store->Live("sales", "orders")->build_id, "b2");
  auto detail = store->GetProduct("sales", "orders");
  EXPECT_EQ(detail->summary.live_version, "1.1.0");
  EXPECT_EQ(detail->version_history,
            (std::vector<VersionEntry>{{"1.1.0", "b2", "2024-05-02T10:00:00Z"},
                                       {"1.0.0", "b1", "2024-05-01T10:00:00Z"}}));
}

TEST_F(CatalogPublishTest, PublishingTheSameBuildTwiceIsAConflictAndChangesNothing) {
  auto store = Open();
  store->Publish(Version("sales", "orders", "b1"));
  PublishedVersion again = Version("sales", "orders", "b1", "9.9.9");
  again.manifest_path = "elsewhere/manifest.json";
  EXPECT_EQ(CodeOf([&] { store->Publish(again); }), ErrorCode::kConflict);
  EXPECT_EQ(store->Live("sales", "orders")->version, "1.0.0");
  EXPECT_EQ(store->GetProduct("sales", "orders")->version_history.size(), 1U);
  // The same build id for another product is fine: a build publishes many products.
  EXPECT_NO_THROW(store->Publish(Version("sales", "returns", "b1")));
}

TEST_F(CatalogPublishTest, AFailedPublishLeavesThePreviousVersionLive) {
  auto store = Open();
  store->SyncSpec({}, {Product("sales", "orders")});
  store->Publish(Version("sales", "orders", "b1"));
  PublishedVersion broken = Version("sales", "orders", "b2", "2.0.0");
  broken.ports.push_back(broken.ports[0]);  // two ports named "main"
  broken.ports[1].path = "sales/orders/b2/other.parquet";
  broken.ports[1].columns = {Column("zebra_stripes", "Never published.")};
  try {
    store->Publish(broken);
    FAIL() << "a duplicate port must fail the publish";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailed);
    EXPECT_NE(std::string(e.what()).find("sales.orders"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store->Live("sales", "orders")->build_id, "b1");
  EXPECT_EQ(store->GetProduct("sales", "orders")->version_history.size(), 1U);
  EXPECT_TRUE(store->Search("zebra", 10).empty());
  for (const std::string& path : store->ReferencedPaths()) {
    EXPECT_EQ(path.find("/b2/"), std::string::npos) << path;
  }
  // The store is still usable: the fixed version publishes.
  EXPECT_NO_THROW(store->Publish(Version("sales", "orders", "b2", "2.0.0")));
  EXPECT_EQ(store->Live("sales", "orders")->build_id, "b2");
}

TEST_F(CatalogPublishTest, AProductMissingFromTheSpecIsAddedOnPublish) {
  auto store = Open();
  store->Publish(Version("ops", "tickets", "b1", "0.3.0"));
  auto products = store->ListProducts();
  ASSERT_EQ(products.size(), 1U);
  EXPECT_EQ(products[0].product.domain, "ops");
  EXPECT_EQ(products[0].product.name, "tickets");
  EXPECT_EQ(products[0].build_id, "b1");
  EXPECT_EQ(products[0].live_version, "0.3.0");
}

TEST_F(CatalogPublishTest, ReferencedPathsCoverEveryVersionEverPublished) {
  auto store = Open();
  store->Publish(Version("sales", "orders", "b1"));
  store->Publish(Version("sales", "orders", "b2"));
  store->Publish(Version("hr", "people", "b2"));
  EXPECT_EQ(
      store->ReferencedPaths(),
      (std::vector<std::string>{"hr/people/b2/main.parquet", "hr/people/b2/manifest.json",
                                "sales/orders/b1/main.parquet", "sales/orders/b1/manifest.json",
                                "sales/orders/b2/main.parquet", "sales/orders/b2/manifest.json"}));
}

TEST_F(CatalogPublishTest, ColumnLineageIsTheLiveVersionsOnly) {
  auto store = Open();
  store->SyncSpec({}, {Product("sales", "orders")});
  PublishedVersion first = Version("sales", "orders", "b1", "1.0.0");
  first.column_lineage = {
      {"sales.main", "amount", "file:sales/orders.csv", "amount", "DIRECT", "IDENTITY", false}};
  first.port_lineage = {{"sales.main", true, ""}};
  store->Publish(first);
  ASSERT_EQ(store->ColumnLineage().edges, first.column_lineage);
  EXPECT_EQ(store->ColumnLineage().ports, first.port_lineage);

  // The next version could not be analysed: its "not analysed" replaces the old edges.
  PublishedVersion next = Version("sales", "orders", "b2", "1.1.0");
  next.port_lineage = {{"sales.main", false, "PIVOT is not analysed"}};
  store->Publish(next);
  const LiveLineage live = store->ColumnLineage();
  EXPECT_TRUE(live.edges.empty());
  EXPECT_EQ(live.ports, next.port_lineage);
}

// --- builds ---

using CatalogBuildTest = CatalogTest;

TEST_F(CatalogBuildTest, RunsOfABuildAreRecordedAndReplaced) {
  auto store = Open();
  store->BeginBuild({"b1", "2024-05-01T10:00:00Z", "", "running", {"sales"}});
  store->RecordRun({"b1", "sales", "returns", "failed", "3 checks failed", 0, 12, 4, 7});
  store->RecordRun({"b1", "sales", "orders", "skipped", "unchanged", 0, 1, 0, 0});
  store->RecordRun({"b1", "sales", "orders", "published", "", 42, 80, 5, 5});
  store->FinishBuild("b1", "failed", "2024-05-01T10:01:00Z");

  auto runs = store->Runs("b1");
  ASSERT_EQ(runs.size(), 2U);
  EXPECT_EQ(runs[0].product, "orders");
  EXPECT_EQ(runs[0].status, "published");
  EXPECT_EQ(runs[0].rows, 42);
  EXPECT_EQ(runs[0].duration_ms, 80);
  EXPECT_EQ(runs[0].checks_passed, 5);
  EXPECT_EQ(runs[1].product, "returns");
  EXPECT_EQ(runs[1].message, "3 checks failed");
  EXPECT_EQ(runs[1].checks_total, 7);
  EXPECT_TRUE(store->Runs("b404").empty());
}

TEST_F(CatalogBuildTest, OpenLineageEventsAreKeptInTheOrderTheyCame) {
  auto store = Open();
  EXPECT_TRUE(store->LineageEvents().empty());
  store->RecordLineageEvent("b1", R"({"eventType":"START"})");
  store->RecordLineageEvent("b1", R"({"eventType":"COMPLETE"})");
  auto reopened = Open();  // another process sees them
  EXPECT_EQ(reopened->LineageEvents(),
            (std::vector<std::string>{R"({"eventType":"START"})", R"({"eventType":"COMPLETE"})"}));
}

TEST_F(CatalogBuildTest, BuildIdsAreUniqueAndMustExist) {
  auto store = Open();
  store->BeginBuild({"b1", "2024-05-01T10:00:00Z", "", "running", {}});
  EXPECT_EQ(CodeOf([&] {
              store->BeginBuild({"b1", "later", "", "running", {}});
            }),
            ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] { store->FinishBuild("b404", "succeeded", "now"); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] {
              store->RecordRun({"b404", "sales", "orders", "published", "", 0, 0, 0, 0});
            }),
            ErrorCode::kNotFound);
}

// --- search ---

class CatalogSearchTest : public CatalogTest {
 protected:
  void SetUp() override {
    CatalogTest::SetUp();
    store_ = Open();
    ProductRecord revenue = Product("finance", "revenue");
    revenue.purpose = "Monthly income per region.";
    ProductRecord orders = Product("sales", "orders");
    orders.purpose = "Every order line.";
    ProductRecord people = Product("hr", "people");
    people.purpose = "Employees and their teams.";
    people.tags = {"staff"};
    store_->SyncSpec({}, {revenue, orders, people});
    PublishedVersion v = Version("sales", "orders", "b1");
    v.ports[0].columns.push_back(Column("net_total", "Order revenue after discounts."));
    v.ports[0].columns.push_back(Column("customer_email", "Where receipts go."));
    store_->Publish(v);
  }
  std::unique_ptr<CatalogStore> store_;
};

TEST_F(CatalogSearchTest, ANameMatchRanksAboveAColumnDescriptionMatch) {
  auto hits = store_->Search("revenue", 10);
  ASSERT_EQ(hits.size(), 2U);
  EXPECT_EQ(hits[0].product, "revenue");
  EXPECT_EQ(hits[0].field, "name");
  EXPECT_EQ(hits[1].product, "orders");
  EXPECT_EQ(hits[1].field, "column");
  EXPECT_GT(hits[0].score, hits[1].score);
  EXPECT_NE(hits[1].snippet.find("[revenue]"), std::string::npos) << hits[1].snippet;
}

TEST_F(CatalogSearchTest, FindsByColumnNameTagAndDescription) {
  auto by_column = store_->Search("customer_email", 10);
  ASSERT_EQ(by_column.size(), 1U);
  EXPECT_EQ(by_column[0].domain, "sales");
  EXPECT_EQ(by_column[0].field, "column");
  EXPECT_NE(by_column[0].snippet.find("email"), std::string::npos) << by_column[0].snippet;

  auto by_tag = store_->Search("staff", 10);
  ASSERT_EQ(by_tag.size(), 1U);
  EXPECT_EQ(by_tag[0].product, "people");
  EXPECT_EQ(by_tag[0].field, "tag");

  auto by_description = store_->Search("employees", 10);
  ASSERT_EQ(by_description.size(), 1U);
  EXPECT_EQ(by_description[0].field, "description");
  EXPECT_EQ(by_description[0].snippet, "[Employees] and their teams.");
}

TEST_F(CatalogSearchTest, TheLastWordIsAPrefixAndAllWordsAreRequired) {
  auto hits = store_->Search("rev", 10);
  EXPECT_EQ(hits.size(), 2U);
  hits = store_->Search("Monthly reg", 10);
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(hits[0].product, "revenue");
  // Words may match different fields of one product (name + column here).
  hits = store_->Search("orders discounts", 10);
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(hits[0].product, "orders");
  EXPECT_TRUE(store_->Search("monthly teams", 10).empty());
  EXPECT_EQ(store_->Search("rev", 1).size(), 1U);
  EXPECT_TRUE(store_->Search("rev", 0).empty());
}

TEST_F(CatalogSearchTest, OnlyTheLiveVersionIsSearched) {
  PublishedVersion v = Version("sales", "orders", "b2", "2.0.0");  // without net_total
  store_->Publish(v);
  EXPECT_TRUE(store_->Search("discounts", 10).empty());
  EXPECT_EQ(store_->Search("amount", 10).size(), 1U);
}

TEST_F(CatalogSearchTest, HostileTextNeverThrowsAndHarmsNothing) {
  const std::vector<std::string> hostile = {"\"",
                                            "\"\"",
                                            "*",
                                            "rev*",
                                            "OR",
                                            "revenue OR",
                                            "AND NOT",
                                            "NEAR(",
                                            "NEAR(a b, 2)",
                                            "'; drop table products; --",
                                            "name:revenue",
                                            "^revenue",
                                            "{name}: x",
                                            "(((",
                                            ")",
                                            "-revenue",
                                            "+",
                                            "\\",
                                            "%_",
                                            "Ünïcödé café 日本語 😀",
                                            "\xff\xfe broken utf-8",
                                            std::string("nul\0byte", 8),
                                            std::string(10000, 'a'),
                                            "a b c d e f g h i j k l m n o p q r"};
  for (const std::string& text : hostile) {
    EXPECT_NO_THROW(store_->Search(text, 10)) << text;
  }
  EXPECT_TRUE(store_->Search("", 10).empty());
  EXPECT_TRUE(store_->Search("  ?! \"*\" ", 10).empty());
  EXPECT_EQ(store_->ListProducts().size(), 3U);
  // Operators are words: "OR" is not a disjunction, "NEAR(" not a group.
  EXPECT_TRUE(store_->Search("revenue OR people", 10).empty());
  EXPECT_TRUE(store_->Search("NEAR(revenue", 10).empty());
  EXPECT_EQ(store_->Search("\"revenue\"", 10).size(), 2U);
}

TEST_F(CatalogSearchTest, AccentsAndCaseDoNotMatter) {
  ProductRecord cafe = Product("shop", "café_sales");
  store_->SyncSpec({}, {cafe});
  auto hits = store_->Search("CAFE", 10);
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(hits[0].product, "café_sales");
}

// --- several processes ---

using CatalogConcurrencyTest = CatalogTest;

TEST_F(CatalogConcurrencyTest, TwoStoresOnOneFileSeeEachOthersCommits) {
  auto build = Open();
  auto server = Open();
  build->SyncSpec({}, {Product("sales", "orders")});
  EXPECT_EQ(server->ListProducts().size(), 1U);
  EXPECT_FALSE(server->Live("sales", "orders").has_value());
  build->Publish(Version("sales", "orders", "b1"));
  EXPECT_EQ(server->Live("sales", "orders")->build_id, "b1");
  EXPECT_EQ(server->Search("amount", 10).size(), 1U);
  server->Publish(Version("sales", "orders", "b2"));
  EXPECT_EQ(build->Live("sales", "orders")->build_id, "b2");
}

TEST_F(CatalogConcurrencyTest, ConcurrentWritersWaitForEachOther) {
  // Each thread opens its own store, as separate processes would.
  constexpr int kWriters = 4;
  constexpr int kPublishes = 15;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      try {
        auto store = Open();
        for (int i = 0; i < kPublishes; ++i) {
          store->Publish(Version("d" + std::to_string(w), "p", "b" + std::to_string(i)));
        }
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(w)] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors) EXPECT_EQ(error, "");
  auto store = Open();
  ASSERT_EQ(store->ListProducts().size(), static_cast<size_t>(kWriters));
  for (const auto& summary : store->ListProducts()) {
    EXPECT_EQ(summary.build_id, "b" + std::to_string(kPublishes - 1));
  }
}

// --- change detection ---

using CatalogGenerationTest = CatalogTest;

TEST_F(CatalogGenerationTest, EveryWriteButTheAuditLogMovesIt) {
  auto store = Open();
  auto other = Open();  // another connection: as another process would be
  int64_t last = store->Generation();
  auto moved = [&](const char* what) {
    const int64_t now = store->Generation();
    EXPECT_NE(now, last) << what << " did not move the generation";
    last = now;
  };
  other->AddGrant({0, "sales", "orders", "user:zoe", "alice", "t", std::nullopt});
  moved("a grant");
  other->RevokeGrant("sales", "orders", "user:zoe");
  moved("a revoked grant");
  const int64_t token = other->CreateToken("dana", "hash", "t", "");
  moved("a new token");
  ASSERT_TRUE(other->RevokeToken(token, "t2"));
  moved("a revoked token");
  other->CreateAccessRequest({0, "sales", "orders", "zoe", "why", "pending", "t", "", "", ""});
  moved("an access request");
  AuditEntry entry;
  entry.at = "t";
  entry.principal = "user:zoe";
  entry.action = "query";
  entry.target = "sales.orders";
  entry.outcome = "ok";
  entry.details = "{}";
  other->AppendAudit(entry);
  EXPECT_EQ(store->Generation(), last) << "reads are audited; the audit log must not move it";
}

// Every command syncs the spec; one whose spec the catalog holds already writes nothing,
// so servers keep their answers and no write lock is taken.
TEST_F(CatalogGenerationTest, SyncingAnUnchangedSpecWritesNothing) {
  auto store = Open();
  const std::vector<DomainRecord> domains = {{"sales", "Sales.", {"ana"}}};
  std::vector<ProductRecord> products = {Product("sales", "orders")};
  store->SyncSpec(domains, products);
  int64_t last = store->Generation();
  store->SyncSpec(domains, products);
  EXPECT_EQ(store->Generation(), last) << "an unchanged spec moved the generation";

  products[0].purpose = "Every order, once.";
  store->SyncSpec(domains, products);
  EXPECT_NE(store->Generation(), last) << "a changed description was not written";
  last = store->Generation();
  ASSERT_EQ(store->GetProduct("sales", "orders")->summary.product.purpose, "Every order, once.");

  // A product published without being in the spec is retired by the next sync, though
  // the spec itself did not change.
  store->Publish(Version("ops", "tickets", "b1", "0.3.0"));
  last = store->Generation();
  store->SyncSpec(domains, products);
  EXPECT_NE(store->Generation(), last);
  EXPECT_EQ(store->GetProduct("ops", "tickets")->summary.product.status, "retired");
}

// Every table of the schema keeps the generation, so a later migration cannot add a
// table whose writes go unnoticed by the server's answer cache.
TEST_F(CatalogGenerationTest, EveryTableButTheAuditLogHasItsTriggers) {
  Open();
  if (canopy::test::OnPostgres()) {
    // One statement trigger per table covers INSERT, UPDATE and DELETE.
    const std::string rows = canopy::test::Psql(R"sql(
      SELECT c.relname, count(t.tgname) FILTER (WHERE t.tgname LIKE 'generation_%')
      FROM pg_class c LEFT JOIN pg_trigger t ON t.tgrelid = c.oid
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
      GROUP BY 1 ORDER BY 1)sql");
    int tables = 0;
    std::istringstream lines(rows);
    for (std::string line; std::getline(lines, line);) {
      const std::string table = line.substr(0, line.find('|'));
      const std::string triggers = line.substr(line.find('|') + 1);
      ++tables;
      // spec_sync is written only in a sync's transaction, whose other writes move it.
      const bool exempt = table == "audit_log" || table == "schema_migrations" ||
                          table == "catalog_generation" || table == "build_locks" ||
                          table == "spec_sync";
      EXPECT_EQ(triggers, exempt ? "0" : "1") << table;
    }
    EXPECT_GT(tables, 15) << rows;
    return;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, R"sql(
      SELECT t.name, (SELECT count(*) FROM sqlite_master g
                      WHERE g.type = 'trigger' AND g.tbl_name = t.name
                        AND g.sql LIKE '%catalog_generation%')
      FROM sqlite_master t
      WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite_%' AND t.sql NOT LIKE 'CREATE VIRTUAL%'
        AND t.name NOT LIKE 'search_index_%')sql",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  int tables = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const std::string table = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const int triggers = sqlite3_column_int(stmt, 1);
    ++tables;
    if (table == "audit_log" || table == "schema_migrations" || table == "catalog_generation" ||
        table == "spec_sync") {
      EXPECT_EQ(triggers, 0) << table;
    } else {
      EXPECT_EQ(triggers, 3) << table << " needs INSERT, UPDATE and DELETE triggers";
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_GT(tables, 15);
}

}  // namespace
}  // namespace canopy::catalog
