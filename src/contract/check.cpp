#include "contract/check.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/text.h"

namespace canopy::contract {
namespace {

using spec::LogicalType;
using spec::QualityMetric;
using spec::QualityOperator;
using spec::QualityRule;
using spec::QualityType;

std::string FormatNumber(double value) {
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  std::ostringstream out;
  out.precision(6);
  out << value;
  return out.str();
}

// DuckDB's own spelling of a type name written in a contract, or "" if DuckDB does
// not know it. Only type-name characters reach the SQL.
std::string NormaliseType(engine::Connection& connection, const std::string& type) {
  static const std::regex allowed(R"(^[A-Za-z0-9_ (),\[\]]+$)");
  if (!std::regex_match(type, allowed)) return "";
  try {
    return connection.QueryValue("SELECT typeof(CAST(NULL AS " + type + "))").value_or("");
  } catch (const Error&) {
    return "";
  }
}

bool LogicalCompatible(LogicalType logical, const std::string& type) {
  const std::string t = ToLower(type);
  auto starts = [&](const char* prefix) { return t.rfind(prefix, 0) == 0; };
  const bool integer = t == "tinyint" || t == "smallint" || t == "integer" || t == "bigint" ||
                       t == "hugeint" || t == "utinyint" || t == "usmallint" || t == "uinteger" ||
                       t == "ubigint" || t == "uhugeint";
  const bool list = t.size() > 2 && t.substr(t.size() - 2) == "[]";
  switch (logical) {
    case LogicalType::kUnspecified:
      return true;
    case LogicalType::kInteger:
      return integer;
    case LogicalType::kNumber:
      return integer || t == "float" || t == "double" || starts("decimal");
    case LogicalType::kString:
      return t == "varchar" || t == "uuid" || starts("enum");
    case LogicalType::kBoolean:
      return t == "boolean";
    case LogicalType::kDate:
      return t == "date";
    case LogicalType::kTimestamp:
      return starts("timestamp");
    case LogicalType::kTime:
      return starts("time") && !starts("timestamp");
    case LogicalType::kObject:
      return starts("struct") || starts("map") || t == "json";
    case LogicalType::kArray:
      return list || starts("list");
  }
  return false;
}

CheckResult Failure(const std::string& column, const std::string& rule, std::string observed,
                    std::string threshold, std::string message) {
  CheckResult result;
  result.column = column;
  result.rule = rule;
  result.severity = "error";
  result.passed = false;
  result.observed = std::move(observed);
  result.threshold = std::move(threshold);
  result.message = std::move(message);
  return result;
}

// Up to 5 rows of `sql`, each as "col=value, col=value".
std::vector<std::string> Samples(engine::Connection& connection, const std::string& sql) {
  std::vector<std::string> rows;
  try {
    engine::Result result =
        connection.Query("SELECT COLUMNS(*)::VARCHAR FROM (" + sql + ") LIMIT 5");
    while (result.NextChunk()) {
      for (int64_t row = 0; row < result.ChunkRows(); ++row) {
        std::string line;
        for (int column = 0; column < result.ColumnCount(); ++column) {
          if (column > 0) line += ", ";
          line += result.ColumnName(column) + "=" +
                  (result.IsNull(column, row) ? "NULL" : result.Text(column, row));
        }
        rows.push_back(line);
      }
    }
  } catch (const Error&) {
    // Samples are a help; a failure to fetch them never hides the check's result.
  }
  return rows;
}

// What one library rule measures, as an aggregate over the relation, and which rows fail.
struct Measure {
  std::string aggregate;  // a count
  std::string failing;    // a predicate selecting failing rows ("" when not row-wise)
};

Measure MeasureFor(const QualityRule& rule, const std::string& column) {
  const std::string c = SqlIdentifier(column);
  std::vector<std::string> values;
  for (const auto& value : rule.valid_values) values.push_back(SqlString(value));
  const std::string list = "[" + Join(values, ", ") + "]";
  switch (rule.metric) {
    case QualityMetric::kNullValues:
      return {"count(*) - count(" + c + ")", c + " IS NULL"};
    case QualityMetric::kMissingValues: {
      std::string missing = c + " IS NULL";
      if (!values.empty()) missing += " OR list_contains(" + list + ", " + c + "::VARCHAR)";
      return {"count(*) FILTER (WHERE " + missing + ")", missing};
    }
    case QualityMetric::kInvalidValues: {
      std::vector<std::string> valid;
      if (!values.empty()) valid.push_back("list_contains(" + list + ", " + c + "::VARCHAR)");
      if (rule.pattern) {
        valid.push_back("regexp_full_match(" + c + "::VARCHAR, " + SqlString(*rule.pattern) + ")");
      }
      const std::string invalid = c + " IS NOT NULL AND NOT (" + Join(valid, " AND ") + ")";
      return {"count(*) FILTER (WHERE " + invalid + ")", invalid};
    }
    case QualityMetric::kDuplicateValues: {
      if (!rule.properties.empty()) {
        std::vector<std::string> columns;
        for (const auto& p : rule.properties) columns.push_back(SqlIdentifier(p));
        return {"count(*) - count(DISTINCT (" + Join(columns, ", ") + "))", ""};
      }
      return {"count(" + c + ") - count(DISTINCT " + c + ")", ""};
    }
    case QualityMetric::kRowCount:
    case QualityMetric::kNone:
      return {"count(*)", ""};
  }
  return {"count(*)", ""};
}

std::string RuleName(const QualityRule& rule) {
  std::string name = rule.type == QualityType::kSql ? "sql" : spec::ToString(rule.metric);
  if (rule.op) name += " " + std::string(spec::ToString(*rule.op));
  if (!rule.name.empty()) name = rule.name + " (" + name + ")";
  return name;
}

}  // namespace

std::string DescribeThreshold(const QualityRule& rule) {
  if (!rule.op) return "";
  const std::string unit = rule.unit == spec::QualityUnit::kPercent ? "%" : "";
  const std::string v = FormatNumber(rule.value) + unit;
  const std::string high = FormatNumber(rule.value_high) + unit;
  switch (*rule.op) {
    case QualityOperator::kMustBe:
      return "= " + v;
    case QualityOperator::kMustNotBe:
      return "!= " + v;
    case QualityOperator::kMustBeGreaterThan:
      return "> " + v;
    case QualityOperator::kMustBeGreaterOrEqualTo:
      return ">= " + v;
    case QualityOperator::kMustBeLessThan:
      return "< " + v;
    case QualityOperator::kMustBeLessOrEqualTo:
      return "<= " + v;
    case QualityOperator::kMustBeBetween:
      return "between " + v + " and " + high;
    case QualityOperator::kMustNotBeBetween:
      return "not between " + v + " and " + high;
  }
  return "";
}

bool Satisfies(const QualityRule& rule, double observed) {
  if (!rule.op) return true;
  constexpr double kEpsilon = 1e-9;
  switch (*rule.op) {
    case QualityOperator::kMustBe:
      return std::fabs(observed - rule.value) <= kEpsilon;
    case QualityOperator::kMustNotBe:
      return std::fabs(observed - rule.value) > kEpsilon;
    case QualityOperator::kMustBeGreaterThan:
      return observed > rule.value;
    case QualityOperator::kMustBeGreaterOrEqualTo:
      return observed >= rule.value - kEpsilon;
    case QualityOperator::kMustBeLessThan:
      return observed < rule.value;
    case QualityOperator::kMustBeLessOrEqualTo:
      return observed <= rule.value + kEpsilon;
    case QualityOperator::kMustBeBetween:
      return observed >= rule.value - kEpsilon && observed <= rule.value_high + kEpsilon;
    case QualityOperator::kMustNotBeBetween:
      return observed < rule.value || observed > rule.value_high;
  }
  return false;
}

std::vector<ActualColumn> DescribeColumns(engine::Connection& connection,
                                          const std::string& relation) {
  std::vector<ActualColumn> columns;
  engine::Result result = connection.Query("DESCRIBE " + relation);
  while (result.NextChunk()) {
    for (int64_t row = 0; row < result.ChunkRows(); ++row) {
      columns.push_back({result.Text(0, row), result.Text(1, row)});
    }
  }
  return columns;
}

std::vector<ActualColumn> ViewColumns(engine::Connection& connection, const std::string& view) {
  std::vector<ActualColumn> columns;
  engine::Result result =
      connection.Query("SELECT name, type FROM pragma_table_info(" + SqlString(view) + ")");
  while (result.NextChunk()) {
    for (int64_t row = 0; row < result.ChunkRows(); ++row) {
      columns.push_back({result.Text(0, row), result.Text(1, row)});
    }
  }
  return columns;
}

std::vector<CheckResult> CheckSchema(engine::Connection& connection, const spec::Contract& contract,
                                     const std::vector<ActualColumn>& actual) {
  std::vector<CheckResult> results;
  std::vector<std::string> missing;
  std::vector<std::string> extra;
  for (const auto& property : contract.properties) {
    bool found = false;
    for (const auto& column : actual) found |= column.name == property.name;
    if (!found) missing.push_back(property.name);
  }
  for (const auto& column : actual) {
    bool declared = false;
    for (const auto& property : contract.properties) declared |= column.name == property.name;
    if (!declared) extra.push_back(column.name);
  }
  // A missing column and an extra one with a close name: most likely a rename.
  for (auto it = missing.begin(); it != missing.end();) {
    auto match = ClosestMatch(*it, extra);
    if (!match) {
      ++it;
      continue;
    }
    results.push_back(Failure(*it, "column present", "'" + *match + "'", "'" + *it + "'",
                              "column '" + *it + "' is produced as '" + *match +
                                  "' (renamed?); rename it in the SQL or in the contract"));
    extra.erase(std::find(extra.begin(), extra.end(), *match));
    it = missing.erase(it);
  }
  for (const auto& name : missing) {
    results.push_back(
        Failure(name, "column present", "absent", "present",
                "the contract has column '" + name + "' but the model does not produce it"));
  }
  for (const auto& name : extra) {
    results.push_back(Failure(name, "column declared", "present", "absent",
                              "the model produces column '" + name +
                                  "', which the contract does not declare; add it to the "
                                  "contract or drop it from the SQL"));
  }
  for (const auto& property : contract.properties) {
    const ActualColumn* column = nullptr;
    for (const auto& candidate : actual) {
      if (candidate.name == property.name) column = &candidate;
    }
    if (column == nullptr) continue;
    if (!property.physical_type.empty()) {
      const std::string expected = NormaliseType(connection, property.physical_type);
      if (expected.empty()) {
        results.push_back(
            Failure(property.name, "physicalType", column->type, property.physical_type,
                    "physicalType '" + property.physical_type + "' is not a DuckDB type"));
      } else if (expected != column->type) {
        results.push_back(Failure(property.name, "physicalType", column->type, expected,
                                  "column '" + property.name + "' is " + column->type +
                                      " but the contract says " + expected +
                                      "; cast it in the SQL or change the contract"));
      }
    }
    if (!LogicalCompatible(property.logical_type, column->type)) {
      results.push_back(Failure(property.name, "logicalType", column->type,
                                spec::ToString(property.logical_type),
                                "column '" + property.name + "' is " + column->type +
                                    ", which is not a " + spec::ToString(property.logical_type)));
    }
  }
  return results;
}

std::optional<FileStats> ReadParquetStats(engine::Connection& connection, const std::string& file) {
  try {
    FileStats stats;
    int64_t groups = 0;
    {
      engine::Result meta = connection.Query(
          "SELECT num_rows, num_row_groups FROM parquet_file_metadata(" + SqlString(file) + ")");
      if (!meta.NextChunk() || meta.ChunkRows() != 1) return std::nullopt;
      stats.rows = meta.Int(0, 0);
      groups = meta.Int(1, 0);
    }
    std::set<std::string> integers;
    for (const auto& column :
         DescribeColumns(connection, "(SELECT * FROM read_parquet(" + SqlString(file) + "))")) {
      static const std::set<std::string> kIntegerTypes = {
          "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"};
      if (kIntegerTypes.count(column.type) != 0) integers.insert(column.name);
    }
    // One row per leaf column and row group. A nested column has several leaves (or a
    // path unlike its name): it gets no statistics, and is scanned as before.
    struct Acc {
      int64_t groups = 0, nulls = 0, counted = 0, ranged = 0, all_null = 0;
      int64_t min = 0, max = 0;
    };
    std::map<std::string, Acc> acc;
    engine::Result leaves = connection.Query(
        "SELECT path_in_schema, stats_null_count, stats_min_value, stats_max_value, "
        "row_group_num_rows FROM "
        "parquet_metadata(" +
        SqlString(file) + ")");
    while (leaves.NextChunk()) {
      for (int64_t row = 0; row < leaves.ChunkRows(); ++row) {
        Acc& a = acc[leaves.Text(0, row)];
        a.groups += 1;
        if (!leaves.IsNull(1, row)) {
          a.counted += 1;
          a.nulls += leaves.Int(1, row);
        }
        if (leaves.IsNull(2, row) || leaves.IsNull(3, row)) {
          // Without a minimum and maximum, a row group is in range only if it holds no value.
          if (!leaves.IsNull(1, row) && leaves.Int(1, row) == leaves.Int(4, row)) a.all_null += 1;
          continue;
        }
        char* end_min = nullptr;
        char* end_max = nullptr;
        const std::string low = leaves.Text(2, row);
        const std::string high = leaves.Text(3, row);
        errno = 0;
        const long long lo = std::strtoll(low.c_str(), &end_min, 10);
        const long long hi = std::strtoll(high.c_str(), &end_max, 10);
        if (errno != 0 || *end_min != '\0' || *end_max != '\0' || low.empty() || high.empty()) {
          continue;
        }
        a.min = a.ranged == 0 ? lo : std::min<int64_t>(a.min, lo);
        a.max = a.ranged == 0 ? hi : std::max<int64_t>(a.max, hi);
        a.ranged += 1;
      }
    }
    for (const auto& [name, a] : acc) {
      if (a.groups != groups) continue;  // a nested column's leaves, or a path with separators
      FileStats::Column column;
      if (a.counted == groups) column.nulls = a.nulls;
      // Every row group has a min/max, or holds only NULLs.
      if (integers.count(name) != 0 && a.ranged > 0 && a.ranged + a.all_null == groups) {
        column.int_range = std::make_pair(a.min, a.max);
      }
      stats.columns[name] = column;
    }
    return stats;
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::vector<CheckResult> CheckData(engine::Connection& connection, const spec::Contract& contract,
                                   const std::string& relation, const FileStats* stats) {
  struct Pending {
    CheckResult result;
    const QualityRule* rule = nullptr;  // null for constraints (required/unique)
    std::string failing;                // predicate for samples
    std::string group_column;           // for duplicate samples
    int index = 0;                      // column of the aggregate query, or -1
    double known = 0;                   // the value, when index is -1
    bool percent = false;
  };
  std::vector<Pending> pending;
  std::vector<std::string> aggregates = {"count(*)"};
  std::map<std::string, int> index_of = {{"count(*)", 0}};
  // The same measure asked for twice (`unique` and a duplicateValues rule) is computed once.
  auto add = [&](Pending item, const std::string& aggregate) {
    auto [at, inserted] = index_of.emplace(aggregate, static_cast<int>(aggregates.size()));
    if (inserted) aggregates.push_back(aggregate);
    item.index = at->second;
    pending.push_back(std::move(item));
  };
  auto add_known = [&](Pending item, int64_t value) {
    item.index = -1;
    item.known = static_cast<double>(value);
    pending.push_back(std::move(item));
  };
  auto footer = [&](const std::string& column) -> const FileStats::Column* {
    if (stats == nullptr) return nullptr;
    auto it = stats->columns.find(column);
    return it == stats->columns.end() ? nullptr : &it->second;
  };
  // NULLs of a column: from the footer when it counted them, else by the scan.
  auto add_nulls = [&](Pending item, const std::string& column) {
    const FileStats::Column* f = footer(column);
    if (f != nullptr && f->nulls) {
      add_known(std::move(item), *f->nulls);
    } else {
      add(std::move(item), "count(*) - count(" + SqlIdentifier(column) + ")");
    }
  };
  // Duplicate non-NULL values of a column. An integer column whose values span at most
  // 2^28 (a 32 MiB bitmap) is counted with bitstring_agg: one bit per possible value
  // instead of a hash table entry per value.
  auto duplicates_of = [&](const std::string& column) {
    const std::string c = SqlIdentifier(column);
    const FileStats::Column* f = footer(column);
    constexpr uint64_t kMaxSpan = uint64_t{1} << 28;
    // max - min in unsigned arithmetic is exact for any max >= min.
    if (f != nullptr && f->int_range && f->int_range->second >= f->int_range->first &&
        static_cast<uint64_t>(f->int_range->second) - static_cast<uint64_t>(f->int_range->first) <
            kMaxSpan) {
      return "count(" + c + ") - coalesce(bit_count(bitstring_agg(" + c + ", " +
             std::to_string(f->int_range->first) + ", " + std::to_string(f->int_range->second) +
             ")), 0)";
    }
    return "count(" + c + ") - count(DISTINCT " + c + ")";
  };

  std::vector<std::string> key_columns;
  for (const auto& property : contract.properties) {
    if (property.primary_key) key_columns.push_back(property.name);
  }
  for (const auto& property : contract.properties) {
    const std::string c = SqlIdentifier(property.name);
    if (property.required || property.primary_key) {
      Pending item;
      item.result = {property.name, "required", "error", false, "", "0 NULLs", "", {}};
      item.failing = c + " IS NULL";
      add_nulls(std::move(item), property.name);
    }
    if (property.unique || (property.primary_key && key_columns.size() == 1)) {
      Pending item;
      item.result = {property.name,
                     property.primary_key ? "primaryKey unique" : "unique",
                     "error",
                     false,
                     "",
                     "0 duplicates",
                     "",
                     {}};
      item.group_column = property.name;
      add(std::move(item), duplicates_of(property.name));
    }
    for (const auto& rule : property.quality) {
      if (rule.type != QualityType::kLibrary) continue;
      Measure measure = MeasureFor(rule, property.name);
      Pending item;
      item.rule = &rule;
      item.result.column = property.name;
      item.failing = measure.failing;
      item.percent = rule.unit == spec::QualityUnit::kPercent;
      if (rule.metric == QualityMetric::kDuplicateValues) {
        item.group_column = property.name;
        if (rule.properties.empty()) measure.aggregate = duplicates_of(property.name);
      }
      if (rule.metric == QualityMetric::kNullValues) {
        add_nulls(std::move(item), property.name);
      } else {
        add(std::move(item), measure.aggregate);
      }
    }
  }
  if (key_columns.size() > 1) {
    std::vector<std::string> quoted;
    for (const auto& k : key_columns) quoted.push_back(SqlIdentifier(k));
    Pending item;
    item.result = {
        Join(key_columns, ", "), "primaryKey unique", "error", false, "", "0 duplicates", "", {}};
    add(std::move(item), "count(*) - count(DISTINCT (" + Join(quoted, ", ") + "))");
  }
  for (const auto& rule : contract.quality) {
    if (rule.type != QualityType::kLibrary) continue;
    Measure measure = MeasureFor(rule, "");
    Pending item;
    item.rule = &rule;
    item.percent = rule.unit == spec::QualityUnit::kPercent;
    if (stats != nullptr && measure.aggregate == "count(*)") {
      add_known(std::move(item), stats->rows);
    } else {
      add(std::move(item), measure.aggregate);
    }
  }

  std::vector<CheckResult> results;
  std::vector<double> values(aggregates.size(), 0);
  if (stats != nullptr && aggregates.size() == 1) {
    values[0] = static_cast<double>(stats->rows);  // the footer answered everything
  } else {
    engine::Result scan =
        connection.Query("SELECT " + Join(aggregates, ", ") + " FROM " + relation);
    if (scan.NextChunk()) {
      for (size_t i = 0; i < aggregates.size(); ++i) {
        values[i] = scan.IsNull(static_cast<int>(i), 0) ? 0 : scan.Double(static_cast<int>(i), 0);
      }
    }
  }
  const double total = values[0];
  for (auto& item : pending) {
    double observed = item.index < 0 ? item.known : values[static_cast<size_t>(item.index)];
    if (item.percent) observed = total > 0 ? observed * 100.0 / total : 0;
    CheckResult& result = item.result;
    if (item.rule != nullptr) {
      result.rule = RuleName(*item.rule);
      result.severity = spec::ToString(item.rule->severity);
      result.threshold = DescribeThreshold(*item.rule);
      result.passed = Satisfies(*item.rule, observed);
    } else {
      result.passed = observed == 0;
    }
    result.observed = FormatNumber(observed) + (item.percent ? "%" : "");
    if (!result.passed) {
      const std::string where = result.column.empty() ? "" : "column '" + result.column + "': ";
      result.message =
          where + result.rule + " measured " + result.observed + ", expected " + result.threshold;
      if (!item.failing.empty()) {
        result.samples =
            Samples(connection, "SELECT * FROM " + relation + " WHERE " + item.failing);
      } else if (!item.group_column.empty()) {
        const std::string c = SqlIdentifier(item.group_column);
        result.samples =
            Samples(connection, "SELECT " + c + ", count(*) AS copies FROM " + relation +
                                    " WHERE " + c + " IS NOT NULL GROUP BY " + c +
                                    " HAVING count(*) > 1 ORDER BY copies DESC, " + c);
      }
    }
    results.push_back(std::move(result));
  }

  // SQL rules: one query each, {object} is the relation, {property} the column.
  auto run_sql_rule = [&](const QualityRule& rule, const std::string& column) {
    CheckResult result;
    result.column = column;
    result.rule = RuleName(rule) + ": " + Trim(rule.query);
    result.severity = spec::ToString(rule.severity);
    result.threshold = DescribeThreshold(rule);
    std::string sql = rule.query;
    for (size_t at = sql.find("{object}"); at != std::string::npos;
         at = sql.find("{object}", at + relation.size())) {
      sql.replace(at, 8, relation);
    }
    const std::string quoted = SqlIdentifier(column);
    for (size_t at = sql.find("{property}"); at != std::string::npos;
         at = sql.find("{property}", at + quoted.size())) {
      sql.replace(at, 10, quoted);
    }
    try {
      engine::Result value = connection.Query(sql);
      double observed = 0;
      if (value.NextChunk() && value.ColumnCount() > 0 && !value.IsNull(0, 0)) {
        observed = value.Double(0, 0);
      }
      result.observed = FormatNumber(observed);
      result.passed = Satisfies(rule, observed);
      if (!result.passed) {
        result.message = (column.empty() ? "" : "column '" + column + "': ") + "rule " +
                         result.rule + " returned " + result.observed + ", expected " +
                         result.threshold;
      }
    } catch (const Error& e) {
      result.passed = false;
      result.observed = "error";
      result.message = "rule " + result.rule + " failed to run: " + e.what();
    }
    results.push_back(std::move(result));
  };
  for (const auto& property : contract.properties) {
    for (const auto& rule : property.quality) {
      if (rule.type == QualityType::kSql) run_sql_rule(rule, property.name);
    }
  }
  for (const auto& rule : contract.quality) {
    if (rule.type == QualityType::kSql) run_sql_rule(rule, "");
  }
  return results;
}

}  // namespace canopy::contract
