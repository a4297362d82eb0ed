// Linked into the unit tests: on a PostgreSQL run (support/test_store.h), gives every
// test a fresh catalog schema — except the tests of a suite that builds one mesh for
// all of them in SetUpTestSuite, which share the suite's (ShareCatalogInSuite).
#include <gtest/gtest.h>

#include "support/test_store.h"

namespace canopy::test {

namespace {

bool shared_in_suite = false;

class StoreListener : public ::testing::EmptyTestEventListener {
  void OnTestSuiteStart(const ::testing::TestSuite&) override {
    shared_in_suite = false;
    if (OnPostgres() && !PostgresUrl().empty()) UseFreshPostgresCatalog();
  }
  void OnTestStart(const ::testing::TestInfo&) override {
    if (OnPostgres() && !PostgresUrl().empty() && !shared_in_suite) UseFreshPostgresCatalog();
  }
};

class StoreEnvironment : public ::testing::Environment {
  void SetUp() override {
    if (OnPostgres() && PostgresUrl().empty()) {
      GTEST_SKIP() << "CANOPY_TEST_STORE=postgresql needs a server: run through "
                      "scripts/with-postgres (make test does)";
    }
  }
};

const bool registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new StoreListener);
  ::testing::AddGlobalTestEnvironment(new StoreEnvironment);
  return true;
}();

}  // namespace

void ShareCatalogInSuite() {
  shared_in_suite = true;
}

}  // namespace canopy::test
