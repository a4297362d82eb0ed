// PostgreSQL's wire formats without a socket: values each way, placeholders, literals.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "pgwire/catalog_view.h"
#include "pgwire/types.h"

namespace {

using canopy::pgwire::BinaryFormat;
using canopy::pgwire::CatalogView;
using canopy::pgwire::CountPlaceholders;
using canopy::pgwire::ParameterLiteral;
using canopy::pgwire::SplitStatements;
using canopy::pgwire::SubstitutePlaceholders;
using canopy::pgwire::TextFormat;
namespace oid = canopy::pgwire::oid;

std::string Hex(const std::string& bytes) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

TEST(PgWireTypes, DuckDbTypesMapToPostgresOids) {
  EXPECT_EQ(canopy::pgwire::PgTypeOf("INTEGER").oid, oid::kInt4);
  EXPECT_EQ(canopy::pgwire::PgTypeOf("DECIMAL(12,2)").oid, oid::kNumeric);
  // numeric(12,2) as PostgreSQL describes it: ((12 << 16) | 2) + 4; without one, -1.
  EXPECT_EQ(canopy::pgwire::PgTypeOf("DECIMAL(12,2)").modifier, 786438);
  EXPECT_EQ(canopy::pgwire::PgTypeOf("HUGEINT").modifier, -1);
  EXPECT_EQ(canopy::pgwire::PgTypeOf("INTEGER").modifier, -1);
  EXPECT_EQ(canopy::pgwire::PgTypeOf("TIMESTAMP WITH TIME ZONE").oid, oid::kTimestamptz);
  EXPECT_EQ(canopy::pgwire::PgTypeOf("TIMESTAMP_MS").oid, oid::kTimestamp);
  EXPECT_EQ(canopy::pgwire::PgTypeOf("VARCHAR[]").oid, oid::kText);  // lists as text
  EXPECT_EQ(canopy::pgwire::PgTypeOf("STRUCT(a INTEGER)").oid, oid::kText);
}

TEST(PgWireTypes, NumericIsWrittenInBaseTenThousand) {
  // -123.4500: two digits (123, 4500), weight 0, negative, scale 4.
  EXPECT_EQ(Hex(*BinaryFormat(oid::kNumeric, std::string("-123.4500"))),
            "0002"
            "0000"
            "4000"
            "0004"
            "007b"
            "1194");
  // 0.0001: one digit (1) at weight -1.
  EXPECT_EQ(Hex(*BinaryFormat(oid::kNumeric, std::string("0.0001"))),
            "0001ffff00000004"
            "0001");
  // 10000: one digit (1) at weight 1, no trailing zero digits.
  EXPECT_EQ(Hex(*BinaryFormat(oid::kNumeric, int64_t{10000})),
            "0001000100000000"
            "0001");
  EXPECT_EQ(Hex(*BinaryFormat(oid::kNumeric, std::string("0.00"))), "0000000000000002");
  EXPECT_THROW(BinaryFormat(oid::kNumeric, std::string("12abc")), canopy::Error);
}

TEST(PgWireTypes, DatesAndTimestampsCountFromTwoThousand) {
  EXPECT_EQ(Hex(*BinaryFormat(oid::kDate, std::string("2000-01-01"))), "00000000");
  EXPECT_EQ(Hex(*BinaryFormat(oid::kDate, std::string("1999-12-31"))), "ffffffff");
  EXPECT_EQ(Hex(*BinaryFormat(oid::kDate, std::string("2024-02-29"))), "00002279");
  EXPECT_EQ(Hex(*BinaryFormat(oid::kTimestamp, std::string("2000-01-02 00:00:01.5"))),
            "000000141dee4360");  // 86,401.5 s
  // A zone offset is taken off: 01:00+01 is midnight UTC.
  EXPECT_EQ(*BinaryFormat(oid::kTimestamptz, std::string("2000-01-01 01:00:00+01")),
            std::string(8, '\0'));
  EXPECT_THROW(BinaryFormat(oid::kDate, std::string("yesterday")), canopy::Error);
}

TEST(PgWireTypes, TextFormatSaysWhatPostgresSays) {
  EXPECT_EQ(*TextFormat(oid::kBool, true), "t");
  EXPECT_EQ(*TextFormat(oid::kFloat8, 0.1), "0.1");
  EXPECT_EQ(*TextFormat(oid::kBytea, std::string("a\\x00\\xFF")), "\\x6100ff");
  EXPECT_EQ(*TextFormat(oid::kInterval, std::string("1 year 2 months 3 days")),
            "1 year 2 mons 3 days");
  EXPECT_FALSE(TextFormat(oid::kText, std::monostate{}).has_value());
}

TEST(PgWireTypes, PlaceholdersAreFoundOnlyOutsideStringsNamesAndComments) {
  EXPECT_EQ(CountPlaceholders("select $1, $2 from t where a = $3"), 3);
  EXPECT_EQ(CountPlaceholders("select '$4', \"$5\", $$ $6 $$, $q$ $7 $q$ -- $8\n /* $9 */ $1"), 1);
  EXPECT_EQ(CountPlaceholders("select E'\\' $2', a$1 from t"), 0);  // a$1 is a name
  EXPECT_EQ(CountPlaceholders("select 1"), 0);
  // A placeholder right after another is one too, as PostgreSQL reads it (found by
  // fuzz_pgwire: "$2$2" substituted the first only, and its literal then made the
  // second a placeholder).
  EXPECT_EQ(CountPlaceholders("select $1$2"), 2);
  EXPECT_EQ(SubstitutePlaceholders("select $1$1, $1$ x", {"7"}), "select (7)(7), (7)$ x");
}

TEST(PgWireTypes, StatementsSplitOnlyAtSemicolonsOutsideStringsNamesAndComments) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(SplitStatements("select 1; select 2;"), (V{"select 1", "select 2"}));
  EXPECT_EQ(SplitStatements("select ';', \";\", $$;$$, $t$;$t$ -- ;\n /* ; /* ; */ ; */ ;x"),
            (V{"select ';', \";\", $$;$$, $t$;$t$ -- ;\n /* ; /* ; */ ; */ ", "x"}));
  EXPECT_EQ(SplitStatements("select E'\\';', 1"), (V{"select E'\\';', 1"}));
  EXPECT_EQ(SplitStatements("  ;\n ; "), V{});
  EXPECT_EQ(SplitStatements("select 1; -- done"), (V{"select 1"}));  // a comment is no statement
  EXPECT_EQ(SplitStatements("/* a /* nested */ one */ ; select 2"), (V{"select 2"}));
  EXPECT_EQ(SplitStatements("-- why\n/* lead */ select 3 ;"), (V{"select 3 "}));
  EXPECT_EQ(SplitStatements("select 'unterminated; select 2"),
            (V{"select 'unterminated; select 2"}));
}

TEST(PgWireTypes, ALiteralNeverLeavesItsPlace) {
  const std::vector<std::string> literals = {ParameterLiteral(oid::kInt4, 0, std::string("-5")),
                                             ParameterLiteral(0, 0, std::string("x' or '1'='1"))};
  // "-$1" with -5 is not the start of a comment; a quote stays inside the string.
  EXPECT_EQ(SubstitutePlaceholders("select -$1, $2", literals),
            "select -(CAST('-5' AS INTEGER)), ('x'' or ''1''=''1')");
  EXPECT_EQ(ParameterLiteral(oid::kNumeric, 0, std::string("12.50")), "(12.50)");
  EXPECT_THROW(ParameterLiteral(oid::kNumeric, 0, std::string("1; drop")), canopy::Error);
  EXPECT_EQ(ParameterLiteral(oid::kBytea, 1, std::string("\x01'", 2)),
            "CAST('\\x01\\x27' AS BLOB)");
  EXPECT_EQ(ParameterLiteral(oid::kInt4, 0, std::nullopt), "CAST(NULL AS INTEGER)");
  EXPECT_THROW(ParameterLiteral(oid::kText, 0, std::string("a\0b", 3)), canopy::Error);
  EXPECT_THROW(ParameterLiteral(oid::kInt8, 1, std::string("abc")), canopy::Error);  // 3 bytes
  EXPECT_THROW(SubstitutePlaceholders("select $2", {"1"}), canopy::Error);
}

// A catalog question is rewritten into DuckDB's spelling before it runs. Its rewriting must
// not recurse once per character of the question (std::regex does): a hostile question of
// the largest size allowed (16 KiB) overflowed a session thread's stack, taking the whole
// server down. Each of these is just under the limit and must be rewritten as a short one is.
TEST(PgCatalogRewrite, QuestionsOfTheLargestSizeDoNotExhaustTheStack) {
  const std::string spaces(16000, ' ');
  EXPECT_EQ(CatalogView::Rewrite("select * from generate_series(0," + spaces + "5) s"),
            "select * from generate_series(0, 5) AS s(s)");
  std::string sum;
  for (int i = 0; i < 7000; ++i) sum += "1+";
  EXPECT_EQ(CatalogView::Rewrite("select * from generate_series(0, " + sum + "1) s"),
            "select * from generate_series(0, " + sum + "1) AS s(s)");
  EXPECT_EQ(CatalogView::Rewrite("select * from pg_catalog" + spaces + ".pg_class"),
            "select * from pg_class");
  const std::string name(16000, 'x');
  EXPECT_EQ(CatalogView::Rewrite("select * from " + name + " OPERATOR(pg_catalog.~) 'a'"),
            "select * from " + name + " ~ 'a'");
  const std::string op = "select 1 OPERATOR(pg_catalog." + std::string(16000, '+') + ") 1";
  EXPECT_NE(CatalogView::Rewrite(op).find("OPERATOR(" + std::string(16000, '+') + ")"),
            std::string::npos)
      << "a long operator is left as it is (but for its pg_catalog)";
  // generate_series's alias, but not a keyword taken for one.
  EXPECT_EQ(CatalogView::Rewrite("select * from generate_series(1, 3) g where g > 1"),
            "select * from generate_series(1, 3) AS g(g) where g > 1");
  EXPECT_EQ(CatalogView::Rewrite("select * from generate_series(1, 3) where true"),
            "select * from generate_series(1, 3) where true");
  EXPECT_EQ(CatalogView::Rewrite("select * from generate_series(1, (2 + 1)) AS g"),
            "select * from generate_series(1, (2 + 1)) AS g");
  // Whitespace inside a string literal, a quoted name and a comment is kept.
  EXPECT_EQ(CatalogView::Rewrite("select '  a  ', \"b  c\" -- x   y\n  from pg_catalog.pg_class"),
            "select '  a  ', \"b  c\" -- x   y\nfrom pg_class");
}

}  // namespace
