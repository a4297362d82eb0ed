#include "spec/chart_sql.h"

#include "core/error.h"

namespace canopy::spec {
namespace {

constexpr const char* kHint =
    "put each filter inside an optional part, e.g. [[ where region = {{region}} ]]";

Error Bad(const std::string& what) {
  return Error(ErrorCode::kInvalidInput, "chart SQL: " + what, kHint);
}

// The part between [[ and ]]: kept with its values when all of them are there.
std::string ExpandPart(const std::string& part, const std::map<std::string, std::string>& values,
                       std::set<std::string>* named) {
  std::string out;
  bool complete = true;
  size_t at = 0;
  for (size_t open = part.find("{{"); open != std::string::npos; open = part.find("{{", at)) {
    const size_t close = part.find("}}", open + 2);
    if (close == std::string::npos) throw Bad("a {{ is not closed with }}");
    const std::string name = part.substr(open + 2, close - open - 2);
    const size_t first = name.find_first_not_of(' ');
    const std::string trimmed = first == std::string::npos
                                    ? ""
                                    : name.substr(first, name.find_last_not_of(' ') - first + 1);
    if (trimmed.empty()) throw Bad("{{}} names no filter");
    if (named != nullptr) named->insert(trimmed);
    out += part.substr(at, open - at);
    auto value = values.find(trimmed);
    if (value == values.end()) {
      complete = false;
    } else {
      out += value->second;
    }
    at = close + 2;
  }
  out += part.substr(at);
  return complete ? out : std::string();
}

}  // namespace

std::string ExpandChartSql(const std::string& sql, const std::map<std::string, std::string>& values,
                           std::set<std::string>* named) {
  // SQL naming no filter is taken as it is: DuckDB's nested lists ([[1, 2]]) are SQL too.
  if (sql.find("{{") == std::string::npos) return sql;
  std::string out;
  size_t at = 0;
  for (size_t open = sql.find("[["); open != std::string::npos; open = sql.find("[[", at)) {
    const std::string before = sql.substr(at, open - at);
    if (before.find("{{") != std::string::npos) throw Bad("a {{filter}} outside [[ ]]");
    if (before.find("]]") != std::string::npos) throw Bad("a ]] without its [[");
    const size_t close = sql.find("]]", open + 2);
    if (close == std::string::npos) throw Bad("a [[ is not closed with ]]");
    const std::string part = sql.substr(open + 2, close - open - 2);
    if (part.find("[[") != std::string::npos) throw Bad("[[ inside [[ ]]");
    out += before;
    out += ExpandPart(part, values, named);
    at = close + 2;
  }
  const std::string rest = sql.substr(at);
  if (rest.find("{{") != std::string::npos) throw Bad("a {{filter}} outside [[ ]]");
  if (rest.find("]]") != std::string::npos) throw Bad("a ]] without its [[");
  return out + rest;
}

std::string ChartSqlWithEveryFilter(const std::string& sql) {
  std::set<std::string> named;
  ExpandChartSql(sql, {}, &named);
  std::map<std::string, std::string> every;
  for (const auto& name : named) every[name] = "NULL";
  return ExpandChartSql(sql, every);
}

}  // namespace canopy::spec
