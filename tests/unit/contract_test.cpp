// Checking data against its contract (contract/check.h): the schema checks here, one
// behaviour per test; the quality rules as data in tests/build/quality_rules.*.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "contract/check.h"
#include "core/text.h"
#include "engine/engine.h"
#include "spec/odcs.h"
#include "support/build_paths.h"

namespace fs = std::filesystem;

namespace canopy::contract {
namespace {

using spec::Contract;
using spec::LogicalType;
using spec::Property;
using spec::QualityMetric;
using spec::QualityOperator;
using spec::QualityRule;

const fs::path kCases = fs::path(canopy::test::kTestDir) / "build";

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Property Column(const std::string& name, const std::string& physical,
                LogicalType logical = LogicalType::kUnspecified) {
  Property p;
  p.name = name;
  p.physical_type = physical;
  p.logical_type = logical;
  return p;
}

Property Logical(const std::string& name, LogicalType logical) {
  return Column(name, "", logical);
}

Contract ContractOf(std::vector<Property> properties) {
  Contract c;
  c.object_name = "t";
  c.properties = std::move(properties);
  return c;
}

// A fresh in-memory DuckDB with the tables `setup` creates.
class ContractTest : public ::testing::Test {
 protected:
  ContractTest() : connection_(database_) {}

  void Setup(const std::string& sql) { connection_.Execute(sql); }

  std::vector<CheckResult> Schema(const Contract& contract, const std::string& relation = "t") {
    return CheckSchema(connection_, contract, DescribeColumns(connection_, relation));
  }
  std::vector<CheckResult> Data(const Contract& contract, const std::string& relation = "t") {
    return CheckData(connection_, contract, relation);
  }

  static std::string Describe(const std::vector<CheckResult>& results) {
    std::string out;
    for (const auto& r : results) {
      out += "  [" + std::string(r.passed ? "pass" : "FAIL") + "] " + r.column + " | " + r.rule +
             " | observed " + r.observed + " | " + r.message + "\n";
    }
    return out;
  }

  // The result for `column` whose rule starts with `rule`; fails the test if none.
  static const CheckResult* Find(const std::vector<CheckResult>& results, const std::string& column,
                                 const std::string& rule) {
    for (const auto& r : results) {
      if (r.column == column && r.rule.rfind(rule, 0) == 0) return &r;
    }
    ADD_FAILURE() << "no result for " << column << " / " << rule << " in:\n" << Describe(results);
    return nullptr;
  }

  static int Failures(const std::vector<CheckResult>& results) {
    int failed = 0;
    for (const auto& r : results) failed += r.passed ? 0 : 1;
    return failed;
  }

  engine::Database database_;
  engine::Connection connection_;
};

// --- the schema: columns and types ---

using ContractSchema = ContractTest;

TEST_F(ContractSchema, MatchingColumnsAndTypesPass) {
  Setup(
      "CREATE TABLE t (id BIGINT, name VARCHAR, amount DECIMAL(12,2), day DATE, seen TIMESTAMP,"
      " ok BOOLEAN, tags VARCHAR[], info STRUCT(a INTEGER))");
  auto results = Schema(ContractOf(
      {Column("id", "BIGINT", LogicalType::kInteger), Logical("name", LogicalType::kString),
       Column("amount", "DECIMAL(12,2)", LogicalType::kNumber), Logical("day", LogicalType::kDate),
       Logical("seen", LogicalType::kTimestamp), Logical("ok", LogicalType::kBoolean),
       Logical("tags", LogicalType::kArray), Logical("info", LogicalType::kObject)}));
  EXPECT_TRUE(results.empty()) << Describe(results);
}

TEST_F(ContractSchema, AViewsKeptColumnsAreWhatDescribeSays) {
  Setup(
      "CREATE TYPE mood AS ENUM ('sad', 'ok');"
      "CREATE VIEW v AS SELECT 1::BIGINT AS id, 1.5::DECIMAL(12,2) AS amount, [1, 2] AS tags,"
      " {'x': 1, 'Big Y': 'q'} AS info, 'ok'::mood AS mood, map(['k'], [1]) AS m,"
      " '{}'::JSON AS doc, DATE '2024-01-02' AS day, 'text' AS \"Odd Name\"");
  const auto kept = ViewColumns(connection_, "v");
  const auto described = DescribeColumns(connection_, "v");
  ASSERT_EQ(kept.size(), 9u);
  ASSERT_EQ(kept.size(), described.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(kept[i].name, described[i].name);
    EXPECT_EQ(kept[i].type, described[i].type) << kept[i].name;
  }
}

TEST_F(ContractSchema, AMissingColumnIsReported) {
  Setup("CREATE TABLE t (id BIGINT, name VARCHAR)");
  auto results = Schema(ContractOf({Column("id", "BIGINT"), Logical("name", LogicalType::kString),
                                    Logical("country", LogicalType::kString)}));
  ASSERT_EQ(results.size(), 1U) << Describe(results);
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].severity, "error");
  EXPECT_EQ(results[0].column, "country");
  EXPECT_TRUE(Contains(results[0].message, "'country'")) << results[0].message;
  EXPECT_TRUE(Contains(results[0].message, "does not produce")) << results[0].message;
}

TEST_F(ContractSchema, AnExtraColumnIsReported) {
  Setup("CREATE TABLE t (id BIGINT, name VARCHAR, internal_note VARCHAR)");
  auto results =
      Schema(ContractOf({Column("id", "BIGINT"), Logical("name", LogicalType::kString)}));
  ASSERT_EQ(results.size(), 1U) << Describe(results);
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].column, "internal_note");
  EXPECT_TRUE(Contains(results[0].message, "'internal_note'")) << results[0].message;
  EXPECT_TRUE(Contains(results[0].message, "does not declare")) << results[0].message;
}

TEST_F(ContractSchema, ARenamedColumnIsReportedAsOneRename) {
  Setup("CREATE TABLE t (id BIGINT, amout DOUBLE)");
  auto results =
      Schema(ContractOf({Column("id", "BIGINT"), Logical("amount", LogicalType::kNumber)}));
  ASSERT_EQ(results.size(), 1U) << "a rename, not a missing and an extra column:\n"
                                << Describe(results);
  EXPECT_EQ(results[0].column, "amount");
  EXPECT_TRUE(Contains(results[0].message, "'amount'")) << results[0].message;
  EXPECT_TRUE(Contains(results[0].message, "'amout'")) << results[0].message;
  EXPECT_TRUE(Contains(results[0].message, "renamed")) << results[0].message;
}

TEST_F(ContractSchema, UnrelatedMissingAndExtraColumnsAreNotARename) {
  Setup("CREATE TABLE t (id BIGINT, shipped_on DATE)");
  auto results =
      Schema(ContractOf({Column("id", "BIGINT"), Logical("amount", LogicalType::kNumber)}));
  ASSERT_EQ(results.size(), 2U) << Describe(results);
  for (const auto& r : results) EXPECT_FALSE(Contains(r.message, "renamed")) << r.message;
}

TEST_F(ContractSchema, EveryProblemIsListedNotOnlyTheFirst) {
  Setup("CREATE TABLE t (id VARCHAR, extra1 INTEGER, extra2 INTEGER)");
  auto results = Schema(ContractOf({Column("id", "BIGINT", LogicalType::kInteger),
                                    Logical("region", LogicalType::kString),
                                    Logical("country", LogicalType::kString)}));
  // id: physical + logical type; region, country missing; extra1, extra2 undeclared.
  EXPECT_EQ(results.size(), 6U) << Describe(results);
  EXPECT_EQ(Failures(results), static_cast<int>(results.size()));
}

TEST_F(ContractSchema, PhysicalTypeMustMatchExactly) {
  Setup("CREATE TABLE t (amount DECIMAL(10,2))");
  auto results = Schema(ContractOf({Column("amount", "DECIMAL(12,2)")}));
  ASSERT_EQ(results.size(), 1U) << Describe(results);
  EXPECT_EQ(results[0].rule, "physicalType");
  EXPECT_EQ(results[0].observed, "DECIMAL(10,2)");
  EXPECT_EQ(results[0].threshold, "DECIMAL(12,2)");
  EXPECT_TRUE(Contains(results[0].message, "DECIMAL(10,2)")) << results[0].message;
  EXPECT_TRUE(Contains(results[0].message, "DECIMAL(12,2)")) << results[0].message;
}

TEST_F(ContractSchema, PhysicalTypeIsComparedAsDuckDbSpellsIt) {
  Setup("CREATE TABLE t (amount DECIMAL(12,2), code VARCHAR, n INTEGER, f DOUBLE, l BIGINT[])");
  auto results =
      Schema(ContractOf({Column("amount", "decimal(12, 2)"), Column("code", "VARCHAR(18)"),
                         Column("n", "int4"), Column("f", "float8"), Column("l", "bigint[]")}));
  EXPECT_TRUE(results.empty()) << Describe(results);
}

TEST_F(ContractSchema, PhysicalTypesThatDifferFail) {
  Setup("CREATE TABLE t (a INTEGER, b BIGINT, c TIMESTAMP, d VARCHAR)");
  auto results = Schema(ContractOf(
      {Column("a", "BIGINT"), Column("b", "INTEGER"), Column("c", "DATE"), Column("d", "BLOB")}));
  EXPECT_EQ(results.size(), 4U) << Describe(results);
  for (const auto& r : results) EXPECT_EQ(r.rule, "physicalType");
}

TEST_F(ContractSchema, APhysicalTypeDuckDbDoesNotKnowIsAnError) {
  Setup("CREATE TABLE t (a INTEGER)");
  auto results = Schema(ContractOf({Column("a", "INTEGR")}));
  ASSERT_EQ(results.size(), 1U) << Describe(results);
  EXPECT_TRUE(Contains(results[0].message, "'INTEGR' is not a DuckDB type")) << results[0].message;
}

TEST_F(ContractSchema, LogicalTypeMustBeCompatible) {
  Setup("CREATE TABLE t (qty DOUBLE, name INTEGER, day TIMESTAMP, flag VARCHAR)");
  auto results = Schema(
      ContractOf({Logical("qty", LogicalType::kInteger), Logical("name", LogicalType::kString),
                  Logical("day", LogicalType::kDate), Logical("flag", LogicalType::kBoolean)}));
  ASSERT_EQ(results.size(), 4U) << Describe(results);
  const CheckResult* qty = Find(results, "qty", "logicalType");
  ASSERT_NE(qty, nullptr);
  EXPECT_EQ(qty->observed, "DOUBLE");
  EXPECT_EQ(qty->threshold, "integer");
  EXPECT_TRUE(Contains(qty->message, "DOUBLE")) << qty->message;
}

TEST_F(ContractSchema, CompatibleLogicalTypesPass) {
  Setup(
      "CREATE TABLE t (a TINYINT, b HUGEINT, c UBIGINT, d FLOAT, e DECIMAL(5,1), f INTEGER,"
      " g TIMESTAMP WITH TIME ZONE, h TIME, i MAP(VARCHAR, INTEGER), j INTEGER[])");
  auto results =
      Schema(ContractOf({Logical("a", LogicalType::kInteger), Logical("b", LogicalType::kInteger),
                         Logical("c", LogicalType::kInteger), Logical("d", LogicalType::kNumber),
                         Logical("e", LogicalType::kNumber), Logical("f", LogicalType::kNumber),
                         Logical("g", LogicalType::kTimestamp), Logical("h", LogicalType::kTime),
                         Logical("i", LogicalType::kObject), Logical("j", LogicalType::kArray)}));
  EXPECT_TRUE(results.empty()) << Describe(results);
}

// --- constraints: required, unique, primary key ---

using ContractConstraints = ContractTest;

TEST_F(ContractConstraints, RequiredWithNullsFailsWithAtMostFiveSamples) {
  Setup(
      "CREATE TABLE t AS SELECT i AS id, CASE WHEN i % 2 = 0 THEN NULL ELSE 'x' END AS name"
      " FROM range(1, 17) r(i)");  // 8 NULL names
  Property name = Logical("name", LogicalType::kString);
  name.required = true;
  auto results = Data(ContractOf({Logical("id", LogicalType::kInteger), name}));
  const CheckResult* required = Find(results, "name", "required");
  ASSERT_NE(required, nullptr);
  EXPECT_FALSE(required->passed);
  EXPECT_EQ(required->severity, "error");
  EXPECT_EQ(required->observed, "8");
  EXPECT_TRUE(Contains(required->message, "'name'")) << required->message;
  ASSERT_EQ(required->samples.size(), 5U);
  for (const auto& sample : required->samples) {
    EXPECT_TRUE(Contains(sample, "name=NULL")) << sample;
    EXPECT_TRUE(Contains(sample, "id=")) << sample;
  }
}

TEST_F(ContractConstraints, RequiredWithoutNullsPasses) {
  Setup("CREATE TABLE t AS SELECT 'x' AS name FROM range(3)");
  Property name = Logical("name", LogicalType::kString);
  name.required = true;
  auto results = Data(ContractOf({name}));
  const CheckResult* required = Find(results, "name", "required");
  ASSERT_NE(required, nullptr);
  EXPECT_TRUE(required->passed);
  EXPECT_EQ(required->observed, "0");
}

TEST_F(ContractConstraints, UniqueWithDuplicatesFailsAndShowsTheDuplicates) {
  Setup(
      "CREATE TABLE t (code VARCHAR); INSERT INTO t VALUES ('a'), ('b'), ('b'), ('c'), ('c'),"
      " ('c'), (NULL), (NULL)");
  Property code = Logical("code", LogicalType::kString);
  code.unique = true;
  auto results = Data(ContractOf({code}));
  const CheckResult* unique = Find(results, "code", "unique");
  ASSERT_NE(unique, nullptr);
  EXPECT_FALSE(unique->passed);
  EXPECT_EQ(unique->observed, "3");  // one extra 'b', two extra 'c'; NULLs are not duplicates
  ASSERT_EQ(unique->samples.size(), 2U);
  EXPECT_TRUE(Contains(unique->samples[0], "code=c")) << unique->samples[0];
  EXPECT_TRUE(Contains(unique->samples[0], "copies=3")) << unique->samples[0];
  EXPECT_TRUE(Contains(unique->samples[1], "code=b")) << unique->samples[1];
}

TEST_F(ContractConstraints, APrimaryKeyMustBePresentAndUnique) {
  Setup("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1), (2), (2), (NULL)");
  Property id = Logical("id", LogicalType::kInteger);
  id.primary_key = true;
  auto results = Data(ContractOf({id}));
  const CheckResult* required = Find(results, "id", "required");
  const CheckResult* unique = Find(results, "id", "primaryKey");
  ASSERT_NE(required, nullptr);
  ASSERT_NE(unique, nullptr);
  EXPECT_FALSE(required->passed);
  EXPECT_FALSE(unique->passed);
  EXPECT_EQ(unique->observed, "1");
}

TEST_F(ContractConstraints, ACompositePrimaryKeyIsUniqueAsAWhole) {
  // Neither column is unique alone; the pairs are.
  Setup(
      "CREATE TABLE t (a INTEGER, b VARCHAR); INSERT INTO t VALUES (1, 'x'), (1, 'y'),"
      " (2, 'x')");
  Property a = Logical("a", LogicalType::kInteger);
  Property b = Logical("b", LogicalType::kString);
  a.primary_key = b.primary_key = true;
  a.primary_key_position = 1;
  b.primary_key_position = 2;
  auto results = Data(ContractOf({a, b}));
  EXPECT_EQ(Failures(results), 0) << Describe(results);
  const CheckResult* key = Find(results, "a, b", "primaryKey");
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(key->passed);

  connection_.Execute("INSERT INTO t VALUES (2, 'x')");
  results = Data(ContractOf({a, b}));
  key = Find(results, "a, b", "primaryKey");
  ASSERT_NE(key, nullptr);
  EXPECT_FALSE(key->passed);
  EXPECT_EQ(key->observed, "1");
  EXPECT_EQ(Failures(results), 1) << Describe(results);
}

TEST_F(ContractConstraints, ACompositePrimaryKeyColumnMustNotBeNull) {
  Setup("CREATE TABLE t (a INTEGER, b VARCHAR); INSERT INTO t VALUES (1, 'x'), (1, NULL)");
  Property a = Logical("a", LogicalType::kInteger);
  Property b = Logical("b", LogicalType::kString);
  a.primary_key = b.primary_key = true;
  auto results = Data(ContractOf({a, b}));
  const CheckResult* required = Find(results, "b", "required");
  ASSERT_NE(required, nullptr);
  EXPECT_FALSE(required->passed);
}

// --- quality rules: the behaviour around them (the cases are data, below) ---

using ContractQuality = ContractTest;

QualityRule Rule(QualityMetric metric, QualityOperator op, double value) {
  QualityRule r;
  r.metric = metric;
  r.op = op;
  r.value = value;
  return r;
}

TEST_F(ContractQuality, AFailedLibraryRuleNamesRuleObservedThresholdAndSamples) {
  Setup(
      "CREATE TABLE t AS SELECT i AS id, CASE WHEN i > 3 THEN NULL ELSE i * 1.5 END AS amount"
      " FROM range(1, 11) r(i)");  // 7 NULL amounts
  Property amount = Logical("amount", LogicalType::kNumber);
  amount.quality = {Rule(QualityMetric::kNullValues, QualityOperator::kMustBe, 0)};
  auto results = Data(ContractOf({Logical("id", LogicalType::kInteger), amount}));
  const CheckResult* rule = Find(results, "amount", "nullValues");
  ASSERT_NE(rule, nullptr);
  EXPECT_FALSE(rule->passed);
  EXPECT_EQ(rule->severity, "error");
  EXPECT_EQ(rule->rule, "nullValues mustBe");
  EXPECT_EQ(rule->observed, "7");
  EXPECT_EQ(rule->threshold, "= 0");
  EXPECT_TRUE(Contains(rule->message, "7")) << rule->message;
  EXPECT_TRUE(Contains(rule->message, "= 0")) << rule->message;
  ASSERT_EQ(rule->samples.size(), 5U);
  EXPECT_TRUE(Contains(rule->samples[0], "amount=NULL")) << rule->samples[0];
}

TEST_F(ContractQuality, AWarningRuleIsReportedButIsNotAnError) {
  Setup("CREATE TABLE t AS SELECT NULL::VARCHAR AS note FROM range(4)");
  Property note = Logical("note", LogicalType::kString);
  QualityRule rule = Rule(QualityMetric::kNullValues, QualityOperator::kMustBe, 0);
  rule.severity = spec::RuleSeverity::kWarning;
  note.quality = {rule};
  auto results = Data(ContractOf({note}));
  ASSERT_EQ(results.size(), 1U) << Describe(results);
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].severity, "warning");
  EXPECT_EQ(results[0].observed, "4");
  EXPECT_FALSE(results[0].message.empty());
}

TEST_F(ContractQuality, ASqlRuleWhoseQueryFailsIsAFailureNamingTheCause) {
  Setup("CREATE TABLE t (id INTEGER)");
  Contract contract = ContractOf({Logical("id", LogicalType::kInteger)});
  QualityRule rule;
  rule.type = spec::QualityType::kSql;
  rule.query = "select count(*) from {object} where missing_column > 0";
  rule.op = QualityOperator::kMustBe;
  contract.quality = {rule};
  auto results = Data(contract);
  ASSERT_EQ(results.size(), 1U) << Describe(results);
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].severity, "error");
  EXPECT_TRUE(Contains(results[0].rule, "missing_column")) << results[0].rule;
  EXPECT_TRUE(Contains(results[0].message, "failed to run")) << results[0].message;
  EXPECT_TRUE(Contains(results[0].message, "missing_column")) << results[0].message;
}

TEST_F(ContractQuality, SqlRulesSeeTheRelationAndTheColumnByName) {
  // A relation name that needs quoting, as the build uses.
  Setup(
      "CREATE TABLE \"my port\" (\"unit price\" DOUBLE); INSERT INTO \"my port\" VALUES (1),"
      " (5), (9)");
  Property price = Logical("unit price", LogicalType::kNumber);
  QualityRule rule;
  rule.type = spec::QualityType::kSql;
  rule.query = "select count(*) from {object} where {property} > 4 and {property} < 100";
  rule.op = QualityOperator::kMustBe;
  rule.value = 2;
  price.quality = {rule};
  auto results = Data(ContractOf({price}), SqlIdentifier("my port"));
  ASSERT_EQ(results.size(), 1U) << Describe(results);
  EXPECT_TRUE(results[0].passed) << Describe(results);
  EXPECT_EQ(results[0].observed, "2");
  EXPECT_EQ(results[0].column, "unit price");
}

TEST_F(ContractQuality, AllLibraryMetricsAreMeasuredInOneScan) {
  // Not a speed test: the rules of one relation must not change each other's values.
  Setup(
      "CREATE TABLE t (a INTEGER, b VARCHAR); INSERT INTO t VALUES (1, 'x'), (1, NULL),"
      " (NULL, 'y')");
  Property a = Logical("a", LogicalType::kInteger);
  Property b = Logical("b", LogicalType::kString);
  a.quality = {Rule(QualityMetric::kNullValues, QualityOperator::kMustBe, 1),
               Rule(QualityMetric::kDuplicateValues, QualityOperator::kMustBe, 1)};
  b.quality = {Rule(QualityMetric::kNullValues, QualityOperator::kMustBe, 1)};
  Contract contract = ContractOf({a, b});
  contract.quality = {Rule(QualityMetric::kRowCount, QualityOperator::kMustBe, 3)};
  auto results = Data(contract);
  EXPECT_EQ(results.size(), 4U);
  EXPECT_EQ(Failures(results), 0) << Describe(results);
}

TEST(ContractThreshold, DescribesEveryOperator) {
  auto describe = [](QualityOperator op, double low, double high, bool percent = false) {
    QualityRule r;
    r.op = op;
    r.value = low;
    r.value_high = high;
    if (percent) r.unit = spec::QualityUnit::kPercent;
    return DescribeThreshold(r);
  };
  EXPECT_EQ(describe(QualityOperator::kMustBe, 0, 0), "= 0");
  EXPECT_EQ(describe(QualityOperator::kMustNotBe, 3, 0), "!= 3");
  EXPECT_EQ(describe(QualityOperator::kMustBeGreaterThan, 1000, 0), "> 1000");
  EXPECT_EQ(describe(QualityOperator::kMustBeGreaterOrEqualTo, 1, 0), ">= 1");
  EXPECT_EQ(describe(QualityOperator::kMustBeLessThan, 2.5, 0), "< 2.5");
  EXPECT_EQ(describe(QualityOperator::kMustBeLessOrEqualTo, 5, 0, true), "<= 5%");
  EXPECT_EQ(describe(QualityOperator::kMustBeBetween, 1, 5), "between 1 and 5");
  EXPECT_EQ(describe(QualityOperator::kMustNotBeBetween, 1, 5), "not between 1 and 5");
}

// --- the quality-rule cases of tests/build/quality_rules.odcs.yaml ---

// "pass 10" → {true, "10"}.
struct Expectation {
  bool pass = false;
  std::string observed;
};

std::optional<Expectation> ExpectationOf(const QualityRule& rule) {
  for (const auto& extra : rule.extra) {
    if (extra.key != "expect") continue;
    std::string text = Trim(extra.yaml);
    if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'')) {
      text = text.substr(1, text.size() - 2);
    }
    const auto space = text.find(' ');
    const std::string verdict = text.substr(0, space);
    if (verdict != "pass" && verdict != "fail") return std::nullopt;
    return Expectation{verdict == "pass",
                       space == std::string::npos ? "" : Trim(text.substr(space + 1))};
  }
  return std::nullopt;
}

TEST(ContractQualityRules, EveryCaseOfTheDataFile) {
  Diagnostics diagnostics;
  const spec::OdcsDocument doc = spec::LoadOdcsDocument(
      (kCases / "quality_rules.odcs.yaml").string(), "quality_rules.odcs.yaml", diagnostics);
  for (const auto& d : diagnostics.items()) {
    if (d.severity == Severity::kError) ADD_FAILURE() << d.Format();
  }
  ASSERT_FALSE(doc.schema.empty());

  engine::Database database;
  engine::Connection connection(database);
  connection.Execute(ReadAll(kCases / "quality_rules.sql"));

  int cases = 0;
  for (const Contract& object : doc.schema) {
    SCOPED_TRACE("schema object " + object.object_name);
    const std::string relation = SqlIdentifier(object.object_name);
    // The contract describes its table exactly, so only the rules can fail.
    auto schema = CheckSchema(connection, object, DescribeColumns(connection, relation));
    for (const auto& r : schema) ADD_FAILURE() << "schema: " << r.message;

    const auto results = CheckData(connection, object, relation);
    std::vector<std::pair<const QualityRule*, std::string>> rules;  // rule, its column
    for (const auto& property : object.properties) {
      for (const auto& rule : property.quality) rules.emplace_back(&rule, property.name);
    }
    for (const auto& rule : object.quality) rules.emplace_back(&rule, "");
    EXPECT_EQ(results.size(), rules.size()) << "one result per rule";

    for (const auto& [rule, column] : rules) {
      ++cases;
      const std::string place = "quality_rules.odcs.yaml:" + std::to_string(rule->location.line) +
                                " (" + rule->name + ")";
      auto expected = ExpectationOf(*rule);
      if (!expected) {
        ADD_FAILURE() << place << ": needs `expect: pass|fail OBSERVED`";
        continue;
      }
      const CheckResult* result = nullptr;
      for (const auto& r : results) {
        if (r.rule.rfind(rule->name + " (", 0) == 0) {
          EXPECT_EQ(result, nullptr) << place << ": rule names must be unique";
          result = &r;
        }
      }
      if (result == nullptr) {
        ADD_FAILURE() << place << ": no result";
        continue;
      }
      EXPECT_EQ(result->passed, expected->pass)
          << place << ": observed " << result->observed << ", threshold " << result->threshold
          << ", message: " << result->message;
      EXPECT_EQ(result->observed, expected->observed) << place;
      EXPECT_EQ(result->column, column) << place;
      EXPECT_EQ(result->severity, spec::ToString(rule->severity)) << place;
      EXPECT_FALSE(result->threshold.empty()) << place;
      if (!result->passed) {
        EXPECT_FALSE(result->message.empty()) << place << ": a failure says what is wrong";
      }
    }
  }
  EXPECT_GE(cases, 50) << "the data file lost cases";
}

// The build checks a port through the Parquet file it wrote, taking row and NULL counts
// from the file's footer and counting integer duplicates with a bitmap. Every case of the
// data file must come out the same as over the table itself.
TEST(ContractQualityRules, FooterStatisticsGiveTheSameResultsAsAScan) {
  Diagnostics diagnostics;
  const spec::OdcsDocument doc = spec::LoadOdcsDocument(
      (kCases / "quality_rules.odcs.yaml").string(), "quality_rules.odcs.yaml", diagnostics);
  ASSERT_FALSE(doc.schema.empty());
  engine::Database database;
  engine::Connection connection(database);
  connection.Execute(ReadAll(kCases / "quality_rules.sql"));
  const fs::path dir = fs::temp_directory_path() / ("canopy-footer-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  int used_footer = 0;
  for (const Contract& object : doc.schema) {
    SCOPED_TRACE("schema object " + object.object_name);
    const std::string table = SqlIdentifier(object.object_name);
    const std::string file = (dir / (object.object_name + ".parquet")).string();
    // Small row groups, so that counts and ranges span several of them.
    connection.Execute("COPY " + table + " TO " + SqlString(file) +
                       " (FORMAT parquet, ROW_GROUP_SIZE 3)");
    const std::string view = SqlIdentifier(object.object_name + "_file");
    connection.Execute("CREATE VIEW " + view + " AS SELECT * FROM read_parquet(" + SqlString(file) +
                       ")");
    const auto stats = ReadParquetStats(connection, file);
    ASSERT_TRUE(stats.has_value());
    for (const auto& [name, column] : stats->columns) used_footer += column.nulls ? 1 : 0;

    auto strip = [&](std::string text) {  // sample rows name no relation, rules may
      for (size_t at = text.find(view); at != std::string::npos; at = text.find(view, at)) {
        text.replace(at, view.size(), table);
      }
      return text;
    };
    const auto scanned = CheckData(connection, object, table);
    const auto footed = CheckData(connection, object, view, &*stats);
    ASSERT_EQ(scanned.size(), footed.size());
    for (size_t i = 0; i < scanned.size(); ++i) {
      EXPECT_EQ(scanned[i].rule, strip(footed[i].rule));
      EXPECT_EQ(scanned[i].passed, footed[i].passed) << scanned[i].rule;
      EXPECT_EQ(scanned[i].observed, footed[i].observed) << scanned[i].rule;
      EXPECT_EQ(scanned[i].samples.size(), footed[i].samples.size()) << scanned[i].rule;
    }
  }
  EXPECT_GT(used_footer, 0) << "the footer's NULL counts were not read";
  fs::remove_all(dir);
}

// Integer duplicates by bitmap, NULL-only row groups, negative values, and a range too
// wide for a bitmap (counted with a hash table instead): each gives the exact count.
TEST(ContractQualityRules, IntegerUniquenessFromTheFooterIsExact) {
  engine::Database database;
  engine::Connection connection(database);
  const fs::path dir = fs::temp_directory_path() / ("canopy-unique-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string file = (dir / "t.parquet").string();
  connection.Execute(
      "COPY (SELECT * FROM (VALUES (NULL::BIGINT, -7::INTEGER, 1::BIGINT), (NULL, -7, 2), "
      "(NULL, 3, 4611686018427387904), (5, -2, 4611686018427387904), (5, NULL, 3), "
      "(6, NULL, 9)) v(a, b, wide)) TO " +
      SqlString(file) + " (FORMAT parquet, ROW_GROUP_SIZE 3)");
  connection.Execute("CREATE VIEW t AS SELECT * FROM read_parquet(" + SqlString(file) + ")");
  const auto stats = ReadParquetStats(connection, file);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->rows, 6);
  ASSERT_TRUE(stats->columns.at("a").int_range.has_value()) << "a NULL-only row group is fine";
  EXPECT_EQ(*stats->columns.at("a").int_range, std::make_pair(int64_t{5}, int64_t{6}));
  EXPECT_EQ(stats->columns.at("a").nulls, 3);
  EXPECT_EQ(*stats->columns.at("b").int_range, std::make_pair(int64_t{-7}, int64_t{3}));

  Contract contract =
      ContractOf({Column("a", "BIGINT"), Column("b", "INTEGER"), Column("wide", "BIGINT")});
  for (auto& p : contract.properties) p.unique = true;
  for (const auto& r : CheckData(connection, contract, "t", &*stats)) {
    EXPECT_FALSE(r.passed) << r.column;
    EXPECT_EQ(r.observed, "1") << r.column;
    ASSERT_FALSE(r.samples.empty()) << r.column;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace canopy::contract
