// The governance workflow through the real command line: exit codes, the access
// request flow, grants, build edges, publish gates, the audit log and its
// verification, output formats and limits. The SQL guard's cases are data, in
// tests/governance/*.test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <algorithm>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "catalog/catalog.h"
#include "cli_support.h"
#include "core/hash.h"
#include "support/build_paths.h"
#include "support/test_store.h"

namespace fs = std::filesystem;

namespace {

using canopy::test::CliRun;
using canopy::test::Quote;
using canopy::test::Read;

class GovernanceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("canopy-govcli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", dir_ / "mesh",
             fs::copy_options::recursive);
    CliRun build = Canopy("build");
    ASSERT_EQ(build.exit_code, 0) << build.err;
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliRun Canopy(const std::string& args) {
    CliRun run;
    const fs::path out = dir_ / "stdout";
    const fs::path err = dir_ / "stderr";
    const std::string command = "cd " + Quote((dir_ / "mesh").string()) + " && " +
                                Quote(canopy::test::kCanopyBinary) + " " + args + " >" +
                                Quote(out.string()) + " 2>" + Quote(err.string());
    const int status = std::system(command.c_str());
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = Read(out);
    run.err = Read(err);
    return run;
  }

  void Sqlite(const std::string& sql) {
    ASSERT_TRUE(canopy::test::ExecuteOnCatalog((dir_ / "mesh/.canopy/catalog.db").string(), sql))
        << sql;
  }

  // The audit checkpoint of the test's catalog, which the build in SetUp made:
  // audit.checkpoint beside a SQLite file, audit.pg-<database>.<schema>.checkpoint in
  // the storage root for a PostgreSQL schema.
  fs::path Checkpoint() const {
    for (const auto& entry : fs::directory_iterator(dir_ / "mesh/.canopy")) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("audit.", 0) == 0 && name.size() > 11 &&
          name.compare(name.size() - 11, 11, ".checkpoint") == 0) {
        return entry.path();
      }
    }
    ADD_FAILURE() << "no audit checkpoint in " << (dir_ / "mesh/.canopy");
    return dir_ / "mesh/.canopy/audit.checkpoint";
  }

  fs::path dir_;
};

TEST_F(GovernanceCliTest, ADenialExitsThreeAndSaysHowToAsk) {
  CliRun run = Canopy("query --as zoe \"select * from crm.customers\"");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("user:zoe may not read crm.customers"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("canopy access request crm.customers --as zoe --purpose"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.out, "");
}

TEST_F(GovernanceCliTest, AGuardRefusalExitsOneWithTheReason) {
  CliRun run = Canopy("query --as dana \"select * from read_csv('/etc/passwd')\"");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("read_csv() is not allowed"), std::string::npos) << run.err;
}

TEST_F(GovernanceCliTest, AccessRequestApproveQuery) {
  CliRun request = Canopy("access request crm.customers --as zoe --purpose \"APAC churn study\"");
  ASSERT_EQ(request.exit_code, 0) << request.err;
  EXPECT_NE(request.out.find("access request 1 for crm.customers is pending"), std::string::npos);

  CliRun list = Canopy("access list --format json");
  ASSERT_EQ(list.exit_code, 0);
  auto requests = nlohmann::json::parse(list.out);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["status"], "pending");
  EXPECT_EQ(requests[0]["requester"], "user:zoe");
  EXPECT_EQ(requests[0]["purpose"], "APAC churn study");

  // Neither the requester, nor a reader of the product, nor another domain's owner decides.
  EXPECT_EQ(Canopy("access approve 1 --as zoe").exit_code, 3);
  EXPECT_EQ(Canopy("access approve 1 --as dana").exit_code, 3);
  EXPECT_EQ(Canopy("access approve 1 --as alice").exit_code, 3);
  EXPECT_EQ(Canopy("query --as zoe \"select count(*) from crm.customers\"").exit_code, 3);

  CliRun approve = Canopy("access approve 1 --as carl --note \"ok for one quarter\"");
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  CliRun query = Canopy("query --as zoe --format csv \"select id, region from crm.customers\"");
  ASSERT_EQ(query.exit_code, 0) << query.err;
  EXPECT_EQ(query.out, "id,region\n5,APAC\n");  // zoe's own region only

  // A decided request stays decided.
  EXPECT_EQ(Canopy("access deny 1 --as carl").exit_code, 1);
  EXPECT_EQ(Canopy("access approve 99 --as carl").exit_code, 1);
  // A denied request grants nothing.
  ASSERT_EQ(Canopy("access request finance.exposure --as zoe --purpose x").exit_code, 0);
  ASSERT_EQ(Canopy("access deny 2 --as frank").exit_code, 0);
  EXPECT_EQ(Canopy("query --as zoe \"select count(*) from finance.exposure\"").exit_code, 3);
}

TEST_F(GovernanceCliTest, RequestsNeedAPurposeAndAVisibleProduct) {
  EXPECT_EQ(Canopy("access request crm.customers --as zoe --purpose \"  \"").exit_code, 2);
  CliRun hidden = Canopy("access request hr.salaries --as zoe --purpose x");
  EXPECT_EQ(hidden.exit_code, 1);
  EXPECT_NE(hidden.err.find("no product 'hr.salaries'"), std::string::npos) << hidden.err;
}

TEST_F(GovernanceCliTest, OnlyOwnersAndAdminsGrantAndRevoke) {
  EXPECT_EQ(Canopy("grant crm.customers --to user:zoe --as dana").exit_code, 3);
  EXPECT_EQ(Canopy("grant crm.customers --to user:zoe --as alice").exit_code, 3);
  EXPECT_EQ(Canopy("grant crm.customers --to user:nobody --as carl").exit_code, 1);
  EXPECT_EQ(Canopy("grant crm.customers --to zoe --as carl").exit_code, 2);
  EXPECT_EQ(Canopy("grant hr.salaries --to user:zoe --as hank").exit_code, 1);    // private
  ASSERT_EQ(Canopy("grant crm.customers --to user:zoe --as erin").exit_code, 0);  // an admin
  EXPECT_EQ(Canopy("grant crm.customers --to user:zoe --as carl").exit_code, 1);  // held already
  EXPECT_EQ(Canopy("query --as zoe \"select count(*) from crm.customers\"").exit_code, 0);
  ASSERT_EQ(Canopy("revoke crm.customers --from user:zoe --as carl").exit_code, 0);
  EXPECT_EQ(Canopy("query --as zoe \"select count(*) from crm.customers\"").exit_code, 3);
  EXPECT_EQ(Canopy("revoke crm.customers --from user:zoe --as carl").exit_code, 1);
}

TEST_F(GovernanceCliTest, BuildEdgesNeedAGrantAndSayWhichOne) {
  // Take finance's standing grant away: its pipeline may no longer read crm.customers.
  const fs::path spec = dir_ / "mesh/domains/crm/products/customers.yaml";
  std::string text = Read(spec);
  const std::string grant = ", domain:finance]";
  text.replace(text.find(grant), grant.size(), "]");
  std::ofstream(spec) << text;
  CliRun build = Canopy("build");
  EXPECT_EQ(build.exit_code, 1);
  EXPECT_NE(build.err.find("domain:finance may not read crm.customers"), std::string::npos)
      << build.err;
  EXPECT_NE(build.err.find("canopy grant crm.customers --to domain:finance --as carl"),
            std::string::npos)
      << build.err;
  // The grant, given at run time, is enough.
  ASSERT_EQ(Canopy("grant crm.customers --to domain:finance --as carl").exit_code, 0);
  CliRun again = Canopy("build");
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST_F(GovernanceCliTest, APublishGateBlocksWhatItNames) {
  const fs::path mesh = dir_ / "mesh/mesh.yaml";
  std::string text = Read(mesh);
  const std::string rules = "  rules:\n";
  text.replace(
      text.find(rules), rules.size(),
      "  rules:\n"
      "    - { name: no-pii-in-finance, severity: error, sql: \"select domain, product, "
      "\\\"column\\\" from columns where domain = 'finance' and classification = 'pii'\" }\n"
      "    - { name: describe-columns, severity: warning, sql: \"select domain, product, "
      "\\\"column\\\" from columns where description is null and domain = 'hr'\" }\n");
  std::ofstream(mesh) << text;
  // validate checks the global rules too, and names the violation.
  CliRun validate = Canopy("validate");
  EXPECT_EQ(validate.exit_code, 1);
  EXPECT_NE(validate.err.find("publish gate 'no-pii-in-finance': domain=finance, "
                              "product=exposure, column=email"),
            std::string::npos)
      << validate.err;
  CliRun build = Canopy("build --force");
  EXPECT_EQ(build.exit_code, 1);
  EXPECT_NE(build.err.find("finance.exposure: blocked by publish gates"), std::string::npos)
      << build.err;
  EXPECT_NE(build.err.find("rule 'no-pii-in-finance': domain=finance, product=exposure, "
                           "column=email"),
            std::string::npos)
      << build.err;
  EXPECT_NE(build.err.find("warning: publish gate rule 'describe-columns'"), std::string::npos);
  // The rest publishes; the blocked product keeps its previous live version.
  EXPECT_NE(build.out.find("crm.customers     published"), std::string::npos) << build.out;
  CliRun show = Canopy("show finance.exposure --format json");
  ASSERT_EQ(show.exit_code, 0);
  EXPECT_FALSE(nlohmann::json::parse(show.out)["build_id"].is_null());
}

TEST_F(GovernanceCliTest, ABreakingChangeNeedsAMajorVersionAndNamesItsConsumers) {
  const fs::path spec = dir_ / "mesh/domains/crm/products/customers.yaml";
  std::string text = Read(spec);
  auto cut = [&](const std::string& what, const std::string& with) {
    const auto at = text.find(what);
    ASSERT_NE(at, std::string::npos) << what;
    text.replace(at, what.size(), with);
  };
  cut("        - { name: segment, physicalType: VARCHAR, classification: public }\n", "");
  cut(", score, segment from raw", ", score from raw");
  std::ofstream(spec) << text;
  CliRun diff = Canopy("contract diff crm.customers");
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_NE(diff.out.find("segment  column removed  BREAKING"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("publishing needs version 2.0.0"), std::string::npos);
  const std::string live_before =
      nlohmann::json::parse(Canopy("show crm.customers --format json").out)["build_id"];
  CliRun refused = Canopy("build");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("needs a major version (2.0.0)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("crm.customers.segment: column removed"), std::string::npos);
  // finance.exposure reads crm.customers, but not its segment (column lineage).
  EXPECT_NE(refused.err.find("no other product reads what changed"), std::string::npos)
      << refused.err;
  EXPECT_EQ(nlohmann::json::parse(Canopy("show crm.customers --format json").out)["build_id"],
            live_before);
  cut("version: 1.0.0", "version: 2.0.0");
  std::ofstream(spec) << text;
  CliRun bumped = Canopy("build");
  EXPECT_EQ(bumped.exit_code, 0) << bumped.err;
}

TEST_F(GovernanceCliTest, ADeprecatedProductWarnsItsConsumersBuildsAndQueries) {
  const fs::path spec = dir_ / "mesh/domains/sales/products/orders.yaml";
  std::string text = Read(spec);
  text.replace(text.find("version: 1.0.0"), 14, "version: 1.0.0\nstatus: deprecated");
  const std::string last = "        - { name: region, physicalType: VARCHAR }";
  text.replace(text.find(last), last.size(),
               last + "\n    sla:\n      - { property: endOfLife, value: \"2027-03-31\" }");
  std::ofstream(spec) << text;
  CliRun build = Canopy("build");
  EXPECT_EQ(build.exit_code, 0) << build.err;
  EXPECT_NE(build.err.find("warning: finance.exposure: input 'orders': sales.orders is deprecated "
                           "(end of life 2027-03-31)"),
            std::string::npos)
      << build.err;
  CliRun query = Canopy("query --as zoe \"select count(*) from sales.orders\"");
  EXPECT_EQ(query.exit_code, 0);
  EXPECT_NE(query.err.find("warning: sales.orders is deprecated (end of life 2027-03-31)"),
            std::string::npos)
      << query.err;
}

TEST_F(GovernanceCliTest, EveryActionIsAuditedAndTamperingIsFound) {
  ASSERT_EQ(Canopy("query --as dana \"select count(*) from crm.customers\"").exit_code, 0);
  ASSERT_EQ(Canopy("query --as zoe \"select count(*) from crm.customers\"").exit_code, 3);
  ASSERT_EQ(Canopy("grant crm.customers --to user:zoe --as carl").exit_code, 0);
  ASSERT_EQ(Canopy("access request finance.exposure --as zoe --purpose p").exit_code, 0);
  ASSERT_EQ(Canopy("access approve 1 --as frank").exit_code, 0);

  CliRun audit = Canopy("audit --format json");
  ASSERT_EQ(audit.exit_code, 0);
  auto all = nlohmann::json::parse(audit.out);
  // The build in SetUp published four products, each audited as its domain.
  nlohmann::json entries = nlohmann::json::array();
  int publishes = 0;
  for (const auto& entry : all) {
    if (entry["action"] == "publish") {
      ++publishes;
      EXPECT_EQ(entry["principal"].get<std::string>().rfind("domain:", 0), 0u);
    } else {
      entries.push_back(entry);
    }
  }
  EXPECT_EQ(publishes, 4);
  ASSERT_EQ(entries.size(), 5u) << audit.out;
  EXPECT_EQ(entries[0]["action"], "query");
  EXPECT_EQ(entries[0]["principal"], "user:dana");
  EXPECT_EQ(entries[0]["outcome"], "ok");
  EXPECT_EQ(entries[0]["details"]["rows"], 1);
  EXPECT_EQ(entries[0]["details"]["ports"], nlohmann::json::array({"crm.customers"}));
  EXPECT_EQ(entries[0]["details"]["masked"].size(), 4u);  // name, email, score, credit_limit
  EXPECT_EQ(entries[1]["outcome"], "denied");
  EXPECT_EQ(entries[1]["principal"], "user:zoe");
  EXPECT_EQ(entries[2]["action"], "grant");
  EXPECT_EQ(entries[3]["action"], "request");
  EXPECT_EQ(entries[4]["action"], "approve");

  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_NE(verify.out.find("9 entries verified"), std::string::npos) << verify.out;

  // Rewriting history is found, at the entry that was changed: the denial.
  const int denial = entries[1]["seq"];
  Sqlite("UPDATE audit_log SET outcome = 'ok' WHERE seq = " + std::to_string(denial));
  CliRun tampered = Canopy("audit --verify");
  EXPECT_EQ(tampered.exit_code, 1);
  EXPECT_NE(tampered.err.find("entry " + std::to_string(denial)), std::string::npos)
      << tampered.err;
}

TEST_F(GovernanceCliTest, DeletingAnAuditEntryIsFound) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  }
  Sqlite("DELETE FROM audit_log WHERE seq = 6");  // 4 publishes, then the queries
  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.err.find("entry 7"), std::string::npos) << verify.err;
}

// Rewrites every entry of the audit log as someone who can write the catalog but
// not read the audit key would: `edit` changes an entry, `hash` re-hashes it, and
// each entry after is re-linked so the chain holds on its own terms.
void RewriteAuditChain(const fs::path& catalog,
                       const std::function<void(canopy::catalog::AuditEntry&)>& edit,
                       const std::function<std::string(const canopy::catalog::AuditEntry&)>& hash) {
  auto entries = canopy::test::OpenTestCatalog(catalog.string())->Audit(0, 1 << 30);
  std::string previous(64, '0');
  std::string sql;
  for (auto& e : entries) {
    edit(e);
    e.prev_hash = previous;
    e.hash = hash(e);
    previous = e.hash;
    using canopy::test::SqlLiteral;
    sql += "UPDATE audit_log SET outcome = " + SqlLiteral(e.outcome) +
           ", details = " + SqlLiteral(e.details) + ", prev_hash = " + SqlLiteral(e.prev_hash) +
           ", hash = " + SqlLiteral(e.hash) + " WHERE seq = " + std::to_string(e.seq) + ";\n";
  }
  ASSERT_TRUE(canopy::test::ExecuteOnCatalog(catalog.string(), sql));
}

// The chain's head is kept apart, in a checkpoint signed with the audit key: cutting
// entries off the end is found, and stays found as the log grows again.
TEST_F(GovernanceCliTest, CuttingTheLastEntriesIsFound) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  }
  ASSERT_EQ(Canopy("audit --verify").exit_code, 0);
  Sqlite("DELETE FROM audit_log WHERE seq > 5");  // the last two queries
  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.err.find("the log ends at entry 5 but the checkpoint names entry 7"),
            std::string::npos)
      << verify.err;
  // New entries take the cut ones' numbers; the checkpoint does not follow them.
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  }
  CliRun later = Canopy("audit --verify");
  EXPECT_EQ(later.exit_code, 1);
  EXPECT_NE(later.err.find("entry 7 it does not match the checkpoint"), std::string::npos)
      << later.err;
}

TEST_F(GovernanceCliTest, DeletingEveryEntryIsFound) {
  Sqlite("DELETE FROM audit_log");
  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.err.find("the checkpoint names entry 4"), std::string::npos) << verify.err;
}

// Re-hashing the whole chain after a rewrite, with the unkeyed SHA-256 older catalogs
// used or with a key of one's own, leaves entries the audit key does not sign.
TEST_F(GovernanceCliTest, RewritingAndRehashingTheChainIsFound) {
  ASSERT_EQ(Canopy("query --as zoe \"select count(*) from crm.customers\"").exit_code, 3);
  const fs::path catalog = dir_ / "mesh/.canopy/catalog.db";
  auto hide_denials = [](canopy::catalog::AuditEntry& e) {
    if (e.outcome == "denied") e.outcome = "ok";
  };
  RewriteAuditChain(catalog, hide_denials, canopy::catalog::AuditEntryHash);
  CliRun sha = Canopy("audit --verify");
  EXPECT_EQ(sha.exit_code, 1);
  // The unkeyed hash is accepted only for entries the signed checkpoint names as from
  // before the key (none here: this log was keyed from its start).
  EXPECT_NE(sha.err.find("entry 1 its content does not match its hash"), std::string::npos)
      << sha.err;

  const std::string own_key = canopy::RandomHex(32);
  RewriteAuditChain(catalog, hide_denials, [&](const canopy::catalog::AuditEntry& e) {
    return canopy::HmacSha256Hex(own_key, e.prev_hash + e.outcome);
  });
  CliRun keyed = Canopy("audit --verify");
  EXPECT_EQ(keyed.exit_code, 1);
  EXPECT_NE(keyed.err.find("re-hashed without the audit key"), std::string::npos) << keyed.err;
}

// Emptying the log and deleting the checkpoint stays found after new entries: an
// append never makes a checkpoint.
TEST_F(GovernanceCliTest, AnEmptiedLogWithoutItsCheckpointStaysFound) {
  const fs::path checkpoint = Checkpoint();
  Sqlite("DELETE FROM audit_log");
  fs::remove(checkpoint);
  ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.err.find(checkpoint.filename().string() + " is missing"), std::string::npos)
      << verify.err;
}

// A key that went missing is never replaced by a new one: appends and verification
// fail with the way out, until the key is back.
TEST_F(GovernanceCliTest, AMissingKeyIsAnErrorNotANewKey) {
  const fs::path keys = dir_ / "mesh/.canopy/keys";
  const fs::path checkpoint = Checkpoint();
  fs::rename(keys, dir_ / "keys.away");
  fs::remove(checkpoint);
  CliRun query = Canopy("query --as dana \"select 1\"");
  EXPECT_EQ(query.exit_code, 1);
  EXPECT_NE(query.err.find("audit.key is missing"), std::string::npos) << query.err;
  EXPECT_NE(query.err.find("restore the key"), std::string::npos) << query.err;
  EXPECT_EQ(Canopy("audit --verify").exit_code, 1);
  EXPECT_FALSE(fs::exists(keys / "audit.key"));
  fs::rename(dir_ / "keys.away", keys);
  CliRun back = Canopy("audit --verify");
  EXPECT_EQ(back.exit_code, 1);  // the checkpoint is still gone
  EXPECT_NE(back.err.find(checkpoint.filename().string() + " is missing"), std::string::npos)
      << back.err;
}

// A catalog from before audit keys (unkeyed SHA-256 entries, no key, no checkpoint) is
// sealed once; its old entries verify, later ones are keyed.
TEST_F(GovernanceCliTest, ACatalogFromBeforeKeysIsSealedOnce) {
  fs::remove(Checkpoint());
  fs::remove_all(dir_ / "mesh/.canopy/keys");
  RewriteAuditChain(
      dir_ / "mesh/.canopy/catalog.db", [](canopy::catalog::AuditEntry&) {},
      canopy::catalog::AuditEntryHash);
  EXPECT_EQ(Canopy("audit --verify").exit_code, 1);
  CliRun seal = Canopy("audit --seal");
  ASSERT_EQ(seal.exit_code, 0) << seal.err;
  EXPECT_EQ(Canopy("audit --seal").exit_code, 1);  // once
  ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  CliRun verify = Canopy("audit --verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_NE(verify.out.find("5 entries verified"), std::string::npos) << verify.out;
}

TEST_F(GovernanceCliTest, AForgedOrDeletedCheckpointIsFound) {
  ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  const fs::path checkpoint = Checkpoint();
  ASSERT_TRUE(fs::exists(checkpoint));
  const std::string signed_text = Read(checkpoint);
  EXPECT_EQ(signed_text.rfind("canopy-audit-checkpoint-v2 5 ", 0), 0u) << signed_text;

  // Pointing it back at an earlier entry, without the key to sign it.
  {
    std::ofstream out(checkpoint, std::ios::trunc);
    out << "canopy-audit-checkpoint-v1 3 " << std::string(64, 'a') << " " << std::string(64, 'b')
        << "\n";
  }
  CliRun forged = Canopy("audit --verify");
  EXPECT_EQ(forged.exit_code, 1);
  EXPECT_NE(forged.err.find("is not signed with the audit key"), std::string::npos) << forged.err;
  // Appending does not overwrite the evidence.
  ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  EXPECT_EQ(Canopy("audit --verify").exit_code, 1);

  fs::remove(checkpoint);
  CliRun deleted = Canopy("audit --verify");
  EXPECT_EQ(deleted.exit_code, 1);
  EXPECT_NE(deleted.err.find(checkpoint.filename().string() + " is missing"), std::string::npos)
      << deleted.err;
  ASSERT_EQ(Canopy("query --as dana \"select 1\"").exit_code, 0);
  EXPECT_FALSE(fs::exists(checkpoint));
  EXPECT_EQ(Canopy("audit --verify").exit_code, 1);
}

// The key is kept where the catalog's writers cannot read it: CANOPY_AUDIT_KEY_FILE.
// A new catalog starts its checkpoint at once, so it verifies before any entry.
TEST_F(GovernanceCliTest, TheKeyCanLiveOutsideTheMesh) {
  const fs::path key = dir_ / "vault/audit.key";
  fs::create_directories(key.parent_path());
  {
    std::ofstream out(key);
    out << canopy::RandomHex(32) << "\n";
  }
  canopy::test::RemoveStorageAndCatalog((dir_ / "mesh/.canopy").string());
  const std::string env = "CANOPY_AUDIT_KEY_FILE=" + Quote(key.string()) + " ";
  CliRun empty = Canopy("audit --verify");  // made with the mesh's own key
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  canopy::test::RemoveStorageAndCatalog((dir_ / "mesh/.canopy").string());
  const std::string command = "cd " + Quote((dir_ / "mesh").string()) + " && " + env +
                              Quote(canopy::test::kCanopyBinary) + " audit --verify >/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0);
  EXPECT_FALSE(fs::exists(dir_ / "mesh/.canopy/keys/audit.key"));
  const std::string build = "cd " + Quote((dir_ / "mesh").string()) + " && " + env +
                            Quote(canopy::test::kCanopyBinary) + " build >/dev/null 2>&1";
  ASSERT_EQ(std::system(build.c_str()), 0);
  EXPECT_EQ(std::system(command.c_str()), 0);
  // Without the key nothing verifies, and no new key is made up in its place.
  CliRun keyless = Canopy("audit --verify");
  EXPECT_EQ(keyless.exit_code, 1);
  EXPECT_NE(keyless.err.find("audit.key is missing"), std::string::npos) << keyless.err;
  EXPECT_FALSE(fs::exists(dir_ / "mesh/.canopy/keys/audit.key"));
}

TEST_F(GovernanceCliTest, OutputFormats) {
  CliRun json = Canopy(
      "query --as dana --format json \"select id, email, segment from crm.customers "
      "order by id limit 2\"");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = nlohmann::json::parse(json.out);
  ASSERT_EQ(doc["columns"].size(), 3u);
  EXPECT_EQ(doc["columns"][0]["name"], "id");
  EXPECT_EQ(doc["columns"][0]["type"], "BIGINT");
  EXPECT_EQ(doc["rows"].size(), 2u);
  EXPECT_EQ(doc["rows"][0][0], 1);
  EXPECT_EQ(doc["rows"][0][2], "gold");
  EXPECT_EQ(doc["masked"], nlohmann::json::array({"email"}));

  const fs::path csv = dir_ / "out.csv";
  CliRun to_file = Canopy("query --as carl --format csv --output " + csv.string() +
                          " \"select region, email from crm.customers where id = 6\"");
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_EQ(Read(csv), "region,email\nUS,\n");

  const fs::path parquet = dir_ / "out.parquet";
  CliRun pq = Canopy("query --as dana --format parquet --output " + parquet.string() +
                     " \"select id, email from crm.customers\"");
  ASSERT_EQ(pq.exit_code, 0) << pq.err;
  EXPECT_GT(fs::file_size(parquet), 0u);
  // A Parquet file starts and ends with its magic bytes.
  const std::string bytes = Read(parquet);
  EXPECT_EQ(bytes.substr(0, 4), "PAR1");
  EXPECT_EQ(bytes.substr(bytes.size() - 4), "PAR1");
  EXPECT_EQ(Canopy("query --as dana --format parquet \"select 1\"").exit_code, 2);
  // The engine may write the one staged file, never read its folder: no trace is left
  // beside the output.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().rfind(".canopy-query-", 0), std::string::npos);
  }
}

// An output file inside the storage root would open the port files' folder to the
// engine (and could overwrite them): refused, audited, nothing written.
TEST_F(GovernanceCliTest, QueryOutputInsideTheStorageRootIsRefused) {
  const fs::path storage = dir_ / "mesh/.canopy";
  for (const std::string& target : std::vector<std::string>{
           (storage / "out.parquet").string(), (storage / "products/x.parquet").string(),
           (dir_ / "mesh/.canopy/../.canopy/y.parquet").string()}) {
    CliRun run = Canopy("query --as dana --format parquet --output " + target +
                        " \"select id from crm.customers\"");
    EXPECT_EQ(run.exit_code, 1) << target << ": " << run.err;
    EXPECT_NE(run.err.find("inside the storage root"), std::string::npos) << run.err;
    EXPECT_FALSE(fs::exists(target));
  }
  // Through a symbolic link to the storage root too.
  fs::create_directory_symlink(storage, dir_ / "alias");
  CliRun linked = Canopy("query --as dana --format parquet --output " +
                         (dir_ / "alias/z.parquet").string() + " \"select 1 as x\"");
  EXPECT_EQ(linked.exit_code, 1) << linked.err;
  EXPECT_FALSE(fs::exists(storage / "z.parquet"));
  CliRun audit = Canopy("audit --format json");
  EXPECT_NE(audit.out.find("inside the storage root"), std::string::npos);
}

TEST_F(GovernanceCliTest, RowAndTimeLimits) {
  CliRun rows = Canopy("query --as zoe --max-rows 3 --format csv \"select * from range(100)\"");
  ASSERT_EQ(rows.exit_code, 0);
  EXPECT_EQ(rows.out, "range\n0\n1\n2\n");
  EXPECT_NE(rows.err.find("truncated"), std::string::npos);
  // --max-rows lowers the mesh's limit (1000 here), never raises it.
  CliRun raised =
      Canopy("query --as zoe --max-rows 5000 --format csv \"select * from range(3000)\"");
  ASSERT_EQ(raised.exit_code, 0) << raised.err;
  EXPECT_EQ(std::count(raised.out.begin(), raised.out.end(), '\n'), 1001);  // header + 1000
  EXPECT_NE(raised.err.find("truncated"), std::string::npos);
  // The mesh allows 10 s; a query that would run for minutes is stopped.
  const fs::path mesh = dir_ / "mesh/mesh.yaml";
  std::string text = Read(mesh);
  text.replace(text.find("timeout: 10s"), 12, "timeout: 1s");
  std::ofstream(mesh) << text;
  const auto start = std::chrono::steady_clock::now();
  CliRun slow = Canopy("query --as zoe \"select count(*) from range(1000000000000) a\"");
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(slow.exit_code, 1);
  EXPECT_NE(slow.err.find("longer than the limit of 1 s"), std::string::npos) << slow.err;
  EXPECT_LT(seconds, 10);
  // A string distance folded while DuckDB binds the query (one call it cannot
  // interrupt, minutes long uncapped) is capped and fails at once.
  const auto folded_start = std::chrono::steady_clock::now();
  CliRun folded =
      Canopy("query --as zoe \"select levenshtein(repeat('a', 90000), repeat('b', 90000))\"");
  const auto folded_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - folded_start).count();
  EXPECT_EQ(folded.exit_code, 1);
  EXPECT_LT(folded_seconds, 3) << folded.err;
  // A scalar subquery that would never end is stopped like any other work.
  const auto bind_start = std::chrono::steady_clock::now();
  CliRun binding = Canopy(
      "query --as zoe \"select count(*) from range(3) where 0 < (select count(*) from "
      "range(1000000000000))\"");
  const auto bind_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - bind_start).count();
  EXPECT_EQ(binding.exit_code, 1);
  EXPECT_NE(binding.err.find("longer than the limit of 1 s"), std::string::npos) << binding.err;
  EXPECT_LT(bind_seconds, 10);
}

}  // namespace
