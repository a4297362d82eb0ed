// canopy catalog info and canopy catalog migrate, through the real binary. The
// migration tests need the throwaway PostgreSQL of `make test` (the pg: run): they
// build the mesh on SQLite and move it into the test's fresh schema.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "catalog/catalog.h"
#include "governance/audit.h"
#include "governance/tokens.h"
#include "support/build_paths.h"
#include "support/test_store.h"
#include "unit/cli_support.h"

namespace fs = std::filesystem;
using canopy::test::CliRun;
using canopy::test::Quote;
using canopy::test::Read;

namespace {

class CatalogCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("canopy-catcli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", dir_ / "mesh",
             fs::copy_options::recursive);
    const char* catalog = std::getenv("CANOPY_CATALOG");
    target_ = catalog != nullptr ? catalog : "";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs canopy in the mesh; `env` goes before it ("env -u CANOPY_CATALOG": on SQLite).
  CliRun Canopy(const std::string& args, const std::string& env = "") {
    CliRun run;
    const fs::path out = dir_ / "stdout";
    const fs::path err = dir_ / "stderr";
    const std::string command = "cd " + Quote((dir_ / "mesh").string()) + " && " + env + " " +
                                Quote(canopy::test::kCanopyBinary) + " " + args + " >" +
                                Quote(out.string()) + " 2>" + Quote(err.string());
    const int status = std::system(command.c_str());
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = Read(out);
    run.err = Read(err);
    return run;
  }
  CliRun OnSqlite(const std::string& args) { return Canopy(args, "env -u CANOPY_CATALOG"); }

  static nlohmann::json Counts(const CliRun& info) {
    return nlohmann::json::parse(info.out).at("counts");
  }

  // The test's PostgreSQL schema, empty; "" on a SQLite-only run.
  bool NeedPostgres() const { return canopy::test::OnPostgres() && !target_.empty(); }

  fs::path dir_;
  std::string target_;
};

// The password of the test server's URL (postgresql://canopy:<password>@…).
std::string PasswordOf(const std::string& url) {
  const auto user = url.find("://") + 3;
  const auto colon = url.find(':', user);
  const auto at = url.find('@', user);
  return colon < at ? url.substr(colon + 1, at - colon - 1) : "";
}

TEST_F(CatalogCliTest, InfoNamesTheStoreItsSchemaVersionAndWhatItHolds) {
  ASSERT_EQ(Canopy("build").exit_code, 0);
  CliRun info = Canopy("catalog info --format json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto json = nlohmann::json::parse(info.out);
  EXPECT_EQ(json.at("store"), canopy::test::OnPostgres() ? "postgresql" : "sqlite");
  EXPECT_EQ(json.at("schema_version"), 8);
  EXPECT_GT(json.at("counts").at("versions").get<int>(), 0);
  EXPECT_EQ(json.at("counts").at("versions"), json.at("counts").at("products"));
  EXPECT_GT(json.at("counts").at("audit entries").get<int>(), 0);
  if (canopy::test::OnPostgres()) {
    const std::string password = PasswordOf(canopy::test::PostgresUrl());
    ASSERT_FALSE(password.empty());
    EXPECT_EQ(info.out.find(password), std::string::npos) << info.out;
    EXPECT_EQ(json.at("location").get<std::string>().rfind("postgresql://canopy@", 0), 0)
        << info.out;
  } else {
    EXPECT_EQ(json.at("location"), (dir_ / "mesh/.canopy/catalog.db").string());
  }
  CliRun table = Canopy("catalog info");
  EXPECT_NE(table.out.find("schema version  8"), std::string::npos) << table.out;
}

TEST_F(CatalogCliTest, MigrateKeepsEveryVersionTokensGrantsAndAVerifiableChain) {
  if (!NeedPostgres()) GTEST_SKIP() << "needs the PostgreSQL of `make test` (the pg: run)";
  ASSERT_EQ(OnSqlite("build").exit_code, 0);
  ASSERT_EQ(OnSqlite("build --force").exit_code, 0);  // two versions of every product
  CliRun token = OnSqlite("token create dana");
  ASSERT_EQ(token.exit_code, 0) << token.err;
  CliRun expiring = OnSqlite("token create dana --expires 30d");
  ASSERT_EQ(expiring.exit_code, 0) << expiring.err;
  ASSERT_EQ(OnSqlite("grant crm.customers --to user:zoe --as carl").exit_code, 0);
  ASSERT_EQ(OnSqlite("access request finance.exposure --as zoe --purpose audit").exit_code, 0);
  CliRun source = OnSqlite("catalog info --format json");
  ASSERT_EQ(source.exit_code, 0) << source.err;

  CliRun moved = OnSqlite("catalog migrate --to " + Quote(target_));
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(moved.out.find("audit chain verified"), std::string::npos) << moved.out;
  EXPECT_EQ(moved.out.find(PasswordOf(target_)), std::string::npos) << moved.out;

  CliRun copied = Canopy("catalog info --format json");  // CANOPY_CATALOG: the target
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_EQ(nlohmann::json::parse(copied.out).at("store"), "postgresql");
  nlohmann::json before = Counts(source);
  nlohmann::json after = Counts(copied);
  EXPECT_EQ(after.at("audit entries").get<int>(), before.at("audit entries").get<int>() + 1);
  before.erase("audit entries");
  after.erase("audit entries");
  EXPECT_EQ(after, before);
  EXPECT_EQ(before.at("versions").get<int>(), 2 * before.at("products").get<int>());

  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  CliRun still = OnSqlite("audit --verify");  // the source keeps its own checkpoint
  EXPECT_EQ(still.exit_code, 0) << still.err;
  // The token issued on SQLite authenticates on PostgreSQL; the grant is enforced.
  auto catalog = canopy::catalog::OpenCatalog(target_, (dir_ / "mesh/.canopy").string());
  std::string secret = token.out;
  while (!secret.empty() && secret.back() == '\n') secret.pop_back();
  canopy::spec::Mesh mesh;  // a mesh without auth.oidc: Canopy tokens only
  EXPECT_EQ(canopy::governance::Authenticate(*catalog, mesh, secret).user, "dana");
  // The expiry moved with its token.
  const auto tokens = catalog->Tokens();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].expires_at, "");
  EXPECT_FALSE(tokens[1].expires_at.empty());
  // So did its SCRAM verifier, and the salt the target derives for dana is the one it was
  // made with: a proof made with the token is accepted there (the wire's sign-in).
  const auto candidates = canopy::governance::ScramCandidatesFor(*catalog, "dana");
  ASSERT_EQ(candidates.verifiers.size(), 2u);
  canopy::scram::ServerExchange exchange;
  ASSERT_TRUE(exchange.ClientFirst("n,,n=,r=migrated"));
  const auto proof = canopy::scram::MakeClientFinal(
      secret, "n=,r=migrated", exchange.ServerFirst(candidates.salt, canopy::scram::kIterations));
  ASSERT_TRUE(proof.has_value());
  const auto match = exchange.ClientFinal(proof->message, candidates.verifiers);
  ASSERT_TRUE(match.has_value()) << exchange.error();
  EXPECT_EQ(candidates.token_ids[*match], tokens[0].id);
  CliRun listed = OnSqlite("token list --format json");
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(nlohmann::json::parse(listed.out).at(1).at("expires_at"), tokens[1].expires_at);
  CliRun query = Canopy("query --as zoe \"select count(*) from crm.customers\"");
  EXPECT_EQ(query.exit_code, 0) << query.err;
  // The mesh goes on on PostgreSQL: a build publishes, the chain still verifies.
  ASSERT_EQ(Canopy("build --force").exit_code, 0);
  EXPECT_EQ(Canopy("audit --verify").exit_code, 0);
}

TEST_F(CatalogCliTest, MigrateRefusesANonEmptyTargetAndATamperedSource) {
  if (!NeedPostgres()) GTEST_SKIP() << "needs the PostgreSQL of `make test` (the pg: run)";
  ASSERT_EQ(OnSqlite("build").exit_code, 0);
  // A cut audit log is evidence: it is not copied into a store that would hide it.
  const std::string file = (dir_ / "mesh/.canopy/catalog.db").string();
  ASSERT_EQ(canopy::test::Shell("sqlite3 " + Quote(file) +
                                " 'DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM "
                                "audit_log)'"),
            0);
  CliRun tampered = OnSqlite("catalog migrate --to " + Quote(target_));
  EXPECT_EQ(tampered.exit_code, 1);
  EXPECT_NE(tampered.err.find("does not verify"), std::string::npos) << tampered.err;
  EXPECT_NE(tampered.err.find("nothing was copied"), std::string::npos) << tampered.err;
  EXPECT_EQ(canopy::test::Psql("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_schema = current_schema()"),
            "0\n");  // not even created

  fs::remove_all(dir_ / "mesh/.canopy");
  ASSERT_EQ(OnSqlite("build").exit_code, 0);
  ASSERT_EQ(OnSqlite("catalog migrate --to " + Quote(target_)).exit_code, 0);
  const std::string entries = canopy::test::Psql("SELECT count(*) FROM audit_log");
  ASSERT_EQ(OnSqlite("build --force").exit_code, 0);
  CliRun again = OnSqlite("catalog migrate --to " + Quote(target_));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("is not empty"), std::string::npos) << again.err;
  EXPECT_EQ(canopy::test::Psql("SELECT count(*) FROM audit_log"), entries);
  EXPECT_EQ(Canopy("audit --verify").exit_code, 0);

  CliRun not_a_url = OnSqlite("catalog migrate --to /tmp/other.db");
  EXPECT_EQ(not_a_url.exit_code, 2);
  EXPECT_NE(not_a_url.err.find("--to takes a PostgreSQL URL"), std::string::npos) << not_a_url.err;
  CliRun from_pg = Canopy("catalog migrate --to " + Quote(target_));
  EXPECT_EQ(from_pg.exit_code, 2);
  EXPECT_NE(from_pg.err.find("on postgresql already"), std::string::npos) << from_pg.err;
}

// An unreachable server, a wrong password, a missing database: one line naming host
// and database, exit 1, never the password — and nothing written anywhere.
TEST_F(CatalogCliTest, BadConnectionsSayWhereWithoutThePassword) {
  if (!NeedPostgres()) GTEST_SKIP() << "needs the PostgreSQL of `make test` (the pg: run)";
  const std::string url = canopy::test::PostgresUrl();  // postgresql://canopy:PW@HOST:PORT/canopy
  const std::string server = url.substr(url.find('@') + 1, url.rfind('/') - url.find('@') - 1);
  const std::string password = PasswordOf(url);
  struct Case {
    std::string url;
    std::string says;
  };
  const Case cases[] = {
      {"postgresql://canopy:" + password + "@" + server + "/no_such_db",
       "database \"no_such_db\" does not exist"},
      {"postgresql://canopy:Wr0ngSecret@" + server + "/canopy", "password authentication failed"},
      {"postgresql://canopy:Wr0ngSecret@127.0.0.1:1/canopy", "127.0.0.1"},
  };
  for (const Case& c : cases) {
    const std::string shown_password = PasswordOf(c.url);
    for (const std::string& command : {std::string("catalog info"), std::string("build")}) {
      CliRun run = Canopy(command, "CANOPY_CATALOG=" + Quote(c.url));
      EXPECT_EQ(run.exit_code, 1) << c.url;
      EXPECT_EQ(run.err.rfind("error: cannot connect to the catalog postgresql://canopy@", 0), 0)
          << run.err;
      EXPECT_NE(run.err.find(c.says), std::string::npos) << run.err;
      EXPECT_EQ(run.err.find(shown_password), std::string::npos) << run.err;
      EXPECT_EQ(run.out.find(shown_password), std::string::npos) << run.out;
      const auto first_line = run.err.find('\n');
      EXPECT_NE(run.err.substr(0, first_line).find(c.url.substr(c.url.rfind('/') + 1)),
                std::string::npos)
          << run.err;  // the database is named
      EXPECT_EQ(run.err.find('\n', first_line + 1), run.err.rfind('\n'))
          << run.err;  // the error and its hint: two lines
    }
  }
  EXPECT_FALSE(fs::exists(dir_ / "mesh/.canopy/catalog.db"));
}

}  // namespace

namespace {

// A catalog three migrations behind (as a canopy before the spec's fingerprint left it):
// servers and builds refuse it and name the command; `canopy catalog upgrade` brings it
// forward with everything it held.
TEST_F(CatalogCliTest, AnOlderSchemaIsRefusedUntilCatalogUpgrade) {
  ASSERT_EQ(Canopy("build").exit_code, 0);
  const std::string catalog_file = (dir_ / "mesh/.canopy/catalog.db").string();
  ASSERT_TRUE(canopy::test::ExecuteOnCatalog(
      catalog_file,
      "DROP TABLE spec_sync; ALTER TABLE api_tokens DROP COLUMN expires_at; "
      "ALTER TABLE api_tokens DROP COLUMN scram; "
      "DELETE FROM schema_migrations WHERE version >= 6;"));

  for (const std::string command : {"build", "products", "serve --listen 127.0.0.1:0"}) {
    const CliRun refused = Canopy(command, "timeout 30");  // a server that starts is stopped
    EXPECT_EQ(refused.exit_code, 1) << command;
    EXPECT_NE(refused.err.find("has schema version 5, older than this canopy's 8"),
              std::string::npos)
        << command << ": " << refused.err;
    EXPECT_NE(refused.err.find("run `canopy catalog upgrade`"), std::string::npos) << refused.err;
  }
  const CliRun upgraded = Canopy("catalog upgrade");
  ASSERT_EQ(upgraded.exit_code, 0) << upgraded.err;
  EXPECT_NE(upgraded.out.find("from schema version 5 to 8"), std::string::npos) << upgraded.out;
  const CliRun again = Canopy("catalog upgrade");
  EXPECT_NE(again.out.find("at schema version 8 already"), std::string::npos) << again.out;

  const CliRun info = Canopy("catalog info --format json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out).at("schema_version"), 8);
  EXPECT_GT(Counts(info).at("versions").get<int>(), 0);
  EXPECT_EQ(Canopy("build --force").exit_code, 0);
  EXPECT_EQ(Canopy("audit --verify").exit_code, 0);
}

// Three processes append to the audit log at once — queries, tokens and grants — on the
// test's store. Every entry lands, in one chain that still verifies.
TEST_F(CatalogCliTest, ThreeProcessesAppendingAtOnceKeepOneVerifiableChain) {
  ASSERT_EQ(Canopy("build").exit_code, 0);
  auto entries = [&] {
    CliRun log = Canopy("audit --format json --limit 0");
    EXPECT_EQ(log.exit_code, 0) << log.err;
    return nlohmann::json::parse(log.out, nullptr, false).size();
  };
  const size_t before = entries();
  const std::string canopy = Quote(canopy::test::kCanopyBinary);
  const std::string loops[] = {
      "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do " + canopy +
          " query --as dana 'select count(*) from crm.customers' || exit 1; done",
      "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do " + canopy + " token create dana || exit 1; done",
      "for i in 1 2 3 4 5 6; do " + canopy + " grant crm.customers --to user:zoe --as carl && " +
          canopy + " revoke crm.customers --from user:zoe --as carl || exit 1; done"};
  std::string command = "cd " + Quote((dir_ / "mesh").string()) + " || exit 1; ";
  std::string waits = "fail=0;";
  for (size_t i = 0; i < std::size(loops); ++i) {
    command += "( " + loops[i] + " ) >/dev/null 2>>errors & p" + std::to_string(i) + "=$!; ";
    waits += " wait $p" + std::to_string(i) + " || fail=1;";
  }
  command += waits + " exit $fail";
  ASSERT_EQ(canopy::test::Shell(command), 0) << Read(dir_ / "mesh/errors");

  EXPECT_EQ(entries(), before + 12 + 12 + 12);
  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

}  // namespace
