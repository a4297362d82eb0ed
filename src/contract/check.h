// Checking a port's data against its contract (DESIGN §4, §8): the exact column
// set and types, required / unique / primary key, and the ODCS quality rules.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "spec/model.h"

namespace canopy::contract {

// A column as the engine produced it.
struct ActualColumn {
  std::string name;
  std::string type;  // DuckDB's type name: BIGINT, DECIMAL(12,2), VARCHAR[] ...
};

// One checked rule: a schema expectation, a constraint or a quality rule.
struct CheckResult {
  std::string column;    // empty for table-level checks
  std::string rule;      // "required", "unique", "nullValues mustBe 0", "sql: ..."
  std::string severity;  // error | warning
  bool passed = false;
  std::string observed;
  std::string threshold;
  std::string message;               // for failures: what is wrong and where to look
  std::vector<std::string> samples;  // up to 5 failing rows, as "col=value, ..." lines
};

// The columns of `relation` (a table, view or query) as DuckDB describes them.
std::vector<ActualColumn> DescribeColumns(engine::Connection& connection,
                                          const std::string& relation);

// The columns of the view `view` as its catalog entry keeps them since CREATE VIEW bound
// it: the same names and type names as DESCRIBE, without binding the view again (which
// would sniff its CSV and JSON inputs once more).
std::vector<ActualColumn> ViewColumns(engine::Connection& connection, const std::string& view);

// Compares the produced columns with the contract: missing, extra and renamed
// columns, exact physical types (normalised by DuckDB itself) and compatible
// logical types. Every problem is an error-severity failed CheckResult.
std::vector<CheckResult> CheckSchema(engine::Connection& connection, const spec::Contract& contract,
                                     const std::vector<ActualColumn>& actual);

// What the footer of a Parquet file says about its data, exactly: the writer counts
// rows and NULLs, and keeps each row group's minimum and maximum.
struct FileStats {
  struct Column {
    std::optional<int64_t> nulls;                          // when every row group counted them
    std::optional<std::pair<int64_t, int64_t>> int_range;  // integer columns: [min, max]
  };
  int64_t rows = 0;
  std::map<std::string, Column> columns;  // top-level columns by name
};

// The footer statistics of the Parquet file `file`; nullopt when it cannot be read.
// Only what every row group records is kept, so whatever it holds is exact.
std::optional<FileStats> ReadParquetStats(engine::Connection& connection, const std::string& file);

// Runs required/unique/primary key and every quality rule of `contract` against the
// table or view `relation` (already known to match the schema). One scan computes
// all library metrics; sql rules run one query each, with {object} as `relation`.
// With `stats` (the footer of the Parquet file `relation` reads, and nothing else),
// row and NULL counts come from it instead of the scan, and `unique` on an integer
// column with a narrow range counts distinct values with a bitmap instead of a hash
// table; the results are the same, only cheaper.
std::vector<CheckResult> CheckData(engine::Connection& connection, const spec::Contract& contract,
                                   const std::string& relation, const FileStats* stats = nullptr);

// A readable form of an operator and its value(s): "> 0", "between 1 and 5".
std::string DescribeThreshold(const spec::QualityRule& rule);

// Whether `observed` satisfies the rule's operator.
bool Satisfies(const spec::QualityRule& rule, double observed);

}  // namespace canopy::contract
