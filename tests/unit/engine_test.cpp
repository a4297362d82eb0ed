// The engine wrapper (engine/engine.h): prepared statements know their result's columns
// before they run, spelled as DuckDB's DESCRIBE spells them.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/engine.h"

namespace canopy::engine {
namespace {

TEST(EnginePrepared, ColumnNamesAndTypesMatchDescribe) {
  Database database;
  Connection connection(database);
  connection.Execute(
      "CREATE TYPE mood AS ENUM ('sad', 'ok');"
      "CREATE TABLE t (b BOOLEAN, i TINYINT, s SMALLINT, n INTEGER, l BIGINT, h HUGEINT,"
      " ut UTINYINT, ub UBIGINT, f FLOAT, d DOUBLE, m DECIMAL(12,2), w DECIMAL(38,10),"
      " v VARCHAR, j JSON, bl BLOB, dt DATE, tm TIME, ts TIMESTAMP, tz TIMESTAMPTZ,"
      " tn TIMESTAMP_NS, iv INTERVAL, u UUID, li INTEGER[], ar DOUBLE[3],"
      " st STRUCT(a INTEGER, \"Big Name\" VARCHAR[]), mp MAP(VARCHAR, BIGINT),"
      " e mood, \"Odd col\" INTEGER)");
  Prepared prepared = connection.Prepare("SELECT * FROM t");
  Result described = connection.Query("DESCRIBE t");
  int column = 0;
  while (described.NextChunk()) {
    for (int64_t row = 0; row < described.ChunkRows(); ++row, ++column) {
      ASSERT_LT(column, prepared.ColumnCount());
      EXPECT_EQ(prepared.ColumnName(column), described.Text(0, row));
      const std::string type = prepared.TypeName(column);
      if (described.Text(1, row).rfind("ENUM", 0) == 0) {
        EXPECT_EQ(type, "") << "an ENUM is left to DESCRIBE";
      } else {
        EXPECT_EQ(type, described.Text(1, row)) << prepared.ColumnName(column);
      }
    }
  }
  EXPECT_EQ(column, prepared.ColumnCount());
  EXPECT_EQ(column, 28);
}

TEST(EnginePrepared, TypesSayHowAResultReadsEachColumn) {
  Database database;
  Connection connection(database);
  Prepared prepared = connection.Prepare(
      "SELECT true AS b, 1::BIGINT AS i, 1.5::DOUBLE AS d, 1.25::DECIMAL(5,2) AS m,"
      " 'x' AS v, DATE '2024-01-02' AS dt");
  EXPECT_EQ(prepared.Type(0), ColumnType::kBoolean);
  EXPECT_EQ(prepared.Type(1), ColumnType::kInteger);
  EXPECT_EQ(prepared.Type(2), ColumnType::kDouble);
  EXPECT_EQ(prepared.Type(3), ColumnType::kDecimal);
  EXPECT_EQ(prepared.Type(4), ColumnType::kVarchar);
  EXPECT_EQ(prepared.Type(5), ColumnType::kOther);
  Result result = prepared.Execute();
  ASSERT_TRUE(result.NextChunk());
  EXPECT_EQ(result.Text(3, 0), "1.25");
  EXPECT_EQ(result.Text(4, 0), "x");
}

TEST(EnginePrepared, AStatementThatDoesNotBindFailsAtPrepare) {
  Database database;
  Connection connection(database);
  EXPECT_THROW(connection.Prepare("SELECT nope FROM range(3)"), Error);
}

// A decimal reads as text exactly, every digit of it: never through a double.
TEST(EngineResult, DecimalsReadAsTextKeepEveryDigit) {
  Database database;
  Connection connection(database);
  Result result = connection.Query(
      "SELECT 12345678901234.5678::DECIMAL(18,4), -0.05::DECIMAL(4,2), 0::DECIMAL(10,2), "
      "-123456789012345678901234567890.12::DECIMAL(38,2), 7::DECIMAL(3,0), 1.5::DECIMAL(9,1)");
  ASSERT_TRUE(result.NextChunk());
  EXPECT_EQ(result.Text(0, 0), "12345678901234.5678");
  EXPECT_EQ(result.Text(1, 0), "-0.05");
  EXPECT_EQ(result.Text(2, 0), "0.00");
  EXPECT_EQ(result.Text(3, 0), "-123456789012345678901234567890.12");
  EXPECT_EQ(result.Text(4, 0), "7");
  EXPECT_EQ(result.Text(5, 0), "1.5");
}

}  // namespace
}  // namespace canopy::engine
