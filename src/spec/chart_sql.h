#pragma once

#include <map>
#include <set>
#include <string>

// A dashboard chart's SQL with its filters placed by its author, as `[[ … {{filter}} … ]]`:
//
//   select region, count(*) as orders from sales.orders
//   [[ where region = {{region}} ]]
//   group by region order by orders desc limit 10
//
// An optional part is kept (without its brackets) when every filter it names has a value,
// and dropped otherwise; each {{name}} becomes the value, a SQL literal (the caller quotes
// it). Filters a chart does not name still narrow its result from outside. SQL without any
// {{ is left as it is (a nested list literal, [[1, 2]], is DuckDB SQL).
namespace canopy::spec {

// `sql` with `values` (SQL literals by filter name) put in. `named` (when given) gets every
// filter the SQL names. Throws Error(kInvalidInput) for a {{name}} outside [[ ]], a [[ or
// {{ left open, or brackets inside brackets.
std::string ExpandChartSql(const std::string& sql, const std::map<std::string, std::string>& values,
                           std::set<std::string>* named = nullptr);

// `sql` as a statement with every filter it names given (each a NULL): what the guard parses
// for the ports it reads. Throws as ExpandChartSql.
std::string ChartSqlWithEveryFilter(const std::string& sql);

}  // namespace canopy::spec
