#include <gtest/gtest.h>

#include "core/diagnostics.h"
#include "core/text.h"

namespace canopy {
namespace {

TEST(EditDistance, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("owner", "owner"), 0);
  EXPECT_EQ(EditDistance("ownr", "owner"), 1);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("", "abc"), 3);
  EXPECT_EQ(EditDistance("fiel", "file"), 1);  // a swap is one typo
}

TEST(DidYouMean, SuggestsOnlyPlausibleTypos) {
  const std::vector<std::string> keys = {"owner", "version", "visibility", "tags"};
  EXPECT_EQ(DidYouMean("visibilty", keys), "did you mean 'visibility'?");
  EXPECT_EQ(DidYouMean("Owner", keys), "did you mean 'owner'?");
  EXPECT_EQ(DidYouMean("description", keys), "");
  EXPECT_EQ(DidYouMean("x", {}), "");
}

TEST(SqlQuoting, DoublesQuotes) {
  EXPECT_EQ(SqlString("it's"), "'it''s'");
  EXPECT_EQ(SqlString("'; drop table x; --"), "'''; drop table x; --'");
  EXPECT_EQ(SqlIdentifier("a\"b"), "\"a\"\"b\"");
}

TEST(Diagnostics, FormatsLikeACompilerAndSortsByPlace) {
  Diagnostics diagnostics;
  diagnostics.Warning({"b.yaml", 2, 1}, "second");
  diagnostics.Error({"a.yaml", 10, 3}, "first", "fix it");
  diagnostics.Sort();
  ASSERT_EQ(diagnostics.items().size(), 2u);
  EXPECT_EQ(diagnostics.items()[0].Format(), "a.yaml:10:3: error: first\n  hint: fix it");
  EXPECT_EQ(diagnostics.items()[1].Format("mesh/"), "mesh/b.yaml:2:1: warning: second");
  EXPECT_EQ(diagnostics.ErrorCount(), 1);
  EXPECT_EQ(diagnostics.WarningCount(), 1);
}

}  // namespace
}  // namespace canopy
