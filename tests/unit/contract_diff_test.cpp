// Contract evolution: each breaking-change rule, one case; the loosening that is not.
#include <gtest/gtest.h>

#include "contract/diff.h"

namespace canopy::contract {
namespace {

spec::Property Column(const std::string& name, const std::string& type) {
  spec::Property p;
  p.name = name;
  p.physical_type = type;
  p.classification = "internal";
  return p;
}

spec::QualityRule Rule(spec::QualityMetric metric, spec::QualityOperator op, double value) {
  spec::QualityRule rule;
  rule.metric = metric;
  rule.op = op;
  rule.value = value;
  return rule;
}

spec::Contract Base() {
  spec::Contract contract;
  contract.properties = {Column("id", "BIGINT"), Column("status", "VARCHAR"),
                         Column("amount", "DOUBLE")};
  auto valid = Rule(spec::QualityMetric::kInvalidValues, spec::QualityOperator::kMustBe, 0);
  valid.valid_values = {"open", "closed"};
  contract.properties[1].quality = {valid};
  contract.quality = {
      Rule(spec::QualityMetric::kRowCount, spec::QualityOperator::kMustBeGreaterThan, 0)};
  return contract;
}

std::vector<ContractChange> Diff(const spec::Contract& next) {
  return DiffSnapshots("p", Snapshot(Base(), {}), Snapshot(next, {}));
}

void ExpectOne(const std::vector<ContractChange>& changes, const std::string& kind, bool breaking) {
  ASSERT_EQ(changes.size(), 1u) << (changes.empty() ? "no change" : changes[1].kind);
  EXPECT_EQ(changes[0].kind, kind);
  EXPECT_EQ(changes[0].breaking, breaking) << kind;
}

TEST(ContractDiff, NoChangeIsNoChange) {
  EXPECT_TRUE(Diff(Base()).empty());
}

TEST(ContractDiff, ARemovedColumnIsBreaking) {
  auto next = Base();
  next.properties.pop_back();
  ExpectOne(Diff(next), "column removed", true);
}

TEST(ContractDiff, AnAddedColumnIsNot) {
  auto next = Base();
  next.properties.push_back(Column("note", "VARCHAR"));
  ExpectOne(Diff(next), "column added", false);
}

TEST(ContractDiff, AChangedTypeIsBreaking) {
  auto next = Base();
  next.properties[0].physical_type = "VARCHAR";
  ExpectOne(Diff(next), "type changed", true);
  // As published, the actual type counts, not what the contract once declared.
  auto published =
      Snapshot(Base(), {{"id", "INTEGER"}, {"status", "VARCHAR"}, {"amount", "DOUBLE"}});
  auto same = DiffSnapshots("p", published, Snapshot(Base(), {{"id", "INTEGER"}}));
  EXPECT_TRUE(same.empty());
}

TEST(ContractDiff, RequiredAddedIsBreakingRemovedIsNot) {
  auto next = Base();
  next.properties[2].required = true;
  ExpectOne(Diff(next), "required added", true);
  auto published = Base();
  published.properties[2].required = true;
  auto changes = DiffSnapshots("p", Snapshot(published, {}), Snapshot(Base(), {}));
  ExpectOne(changes, "required removed", false);
}

TEST(ContractDiff, UniqueAddedIsBreaking) {
  auto next = Base();
  next.properties[0].unique = true;
  ExpectOne(Diff(next), "unique added", true);
}

TEST(ContractDiff, AQualityRuleAddedIsBreakingUnlessAWarning) {
  auto next = Base();
  next.properties[2].quality = {
      Rule(spec::QualityMetric::kNullValues, spec::QualityOperator::kMustBe, 0)};
  ExpectOne(Diff(next), "quality rule added", true);
  next.properties[2].quality[0].severity = spec::RuleSeverity::kWarning;
  ExpectOne(Diff(next), "quality rule added", false);
}

TEST(ContractDiff, ATightenedRuleIsBreakingALoosenedOneIsNot) {
  auto tighter = Base();
  tighter.quality[0].value = 1000;  // rowCount > 0 → > 1000
  ExpectOne(Diff(tighter), "quality rule tightened", true);
  auto published = tighter;
  auto changes = DiffSnapshots("p", Snapshot(published, {}), Snapshot(Base(), {}));
  ExpectOne(changes, "quality rule loosened", false);
}

TEST(ContractDiff, ARemovedRuleIsNotBreaking) {
  auto next = Base();
  next.quality.clear();
  ExpectOne(Diff(next), "quality rule removed", false);
}

TEST(ContractDiff, ARemovedValidValueIsBreakingAnAddedOneIsNot) {
  auto next = Base();
  next.properties[1].quality[0].valid_values = {"open"};
  ExpectOne(Diff(next), "valid value removed", true);
  next.properties[1].quality[0].valid_values = {"open", "closed", "void"};
  ExpectOne(Diff(next), "valid value added", false);
}

TEST(ContractDiff, BetweenNarrowedIsTighter) {
  auto published = Base();
  published.quality[0] =
      Rule(spec::QualityMetric::kRowCount, spec::QualityOperator::kMustBeBetween, 1);
  published.quality[0].value_high = 100;
  auto next = published;
  next.quality[0].value_high = 50;
  auto changes = DiffSnapshots("p", Snapshot(published, {}), Snapshot(next, {}));
  ExpectOne(changes, "quality rule tightened", true);
}

}  // namespace
}  // namespace canopy::contract
