#include "governance/governed.h"

#include <regex>

#include "core/hash.h"
#include "core/text.h"

namespace canopy::governance {
namespace {

bool IsIntegerType(const std::string& type) {
  static const std::vector<std::string> names = {"TINYINT",  "SMALLINT",  "INTEGER",  "BIGINT",
                                                 "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                                                 "HUGEINT",  "UHUGEINT"};
  return std::find(names.begin(), names.end(), type) != names.end();
}

// The largest value a hash-derived number may take in `type`, so the cast never fails.
std::string HashModulus(const std::string& type) {
  if (type == "TINYINT") return "127";
  if (type == "UTINYINT") return "255";
  if (type == "SMALLINT") return "32767";
  if (type == "USMALLINT") return "65535";
  return "2147483647";
}

}  // namespace

const GovernedFunctions& Functions() {
  static const GovernedFunctions functions = [] {
    const std::string tag = RandomHex(8);
    return GovernedFunctions{"canopy_mask_" + tag, "canopy_cap_" + tag};
  }();
  return functions;
}

void InstallGovernedFunctions(engine::Connection& connection, const std::string& salt) {
  engine::RegisterKeyedHash(connection, Functions().mask_hash, salt);
  engine::RegisterLengthCap(connection, Functions().cap, kDistanceArgumentBytes);
}

std::string MaskExpression(spec::MaskMethod method, const std::string& column,
                           const std::string& type) {
  const std::string c = SqlIdentifier(column);
  std::string null_of_type = "CAST(NULL AS " + type + ")";
  const bool text = type == "VARCHAR";
  switch (method) {
    case spec::MaskMethod::kNull:
      return null_of_type;
    case spec::MaskMethod::kRedact:
      return text ? "CASE WHEN " + c + " IS NULL THEN NULL ELSE '****' END" : null_of_type;
    case spec::MaskMethod::kPartial:
      return text ? "CASE WHEN " + c + " IS NULL THEN NULL WHEN length(" + c +
                        ") <= 4 THEN repeat('*', length(" + c + ")) ELSE repeat('*', length(" + c +
                        ") - 4) || right(" + c + ", 4) END"
                  : null_of_type;
    case spec::MaskMethod::kHash: {
      const std::string& hash = Functions().mask_hash;
      if (text) return "('h_' || " + hash + "_text(" + c + "))";
      std::string as;  // the overload of the numeric hash this type goes through
      if (type == "DOUBLE" || type == "FLOAT") {
        as = "DOUBLE";
      } else if (type == "UBIGINT" || type == "HUGEINT" || type == "UHUGEINT") {
        as = "VARCHAR";
      } else if (IsIntegerType(type)) {
        as = "BIGINT";
      } else {
        return null_of_type;
      }
      return "CAST(" + hash + "_num(CAST(" + c + " AS " + as + ")) % " + HashModulus(type) +
             " AS " + type + ")";
    }
  }
  return null_of_type;
}

std::string BindPrincipal(const std::string& predicate, const Principal& principal) {
  static const std::regex attr(R"(principal_attr\s*\(\s*'((?:[^']|'')*)'\s*\))", std::regex::icase);
  static const std::regex group(R"(principal_in_group\s*\(\s*'((?:[^']|'')*)'\s*\))",
                                std::regex::icase);
  auto replace = [](const std::string& text, const std::regex& pattern, auto&& value) {
    std::string out;
    auto begin = std::sregex_iterator(text.begin(), text.end(), pattern);
    size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      out += text.substr(last, static_cast<size_t>(it->position()) - last);
      std::string name = (*it)[1].str();
      for (size_t at = name.find("''"); at != std::string::npos; at = name.find("''", at + 1)) {
        name.erase(at, 1);
      }
      out += value(name);
      last = static_cast<size_t>(it->position() + it->length());
    }
    return out + text.substr(last);
  };
  std::string bound = replace(predicate, attr, [&](const std::string& name) {
    auto it = principal.attributes.find(name);
    return it == principal.attributes.end() ? std::string("CAST(NULL AS VARCHAR)")
                                            : SqlString(it->second);
  });
  return replace(bound, group, [&](const std::string& name) {
    return std::string(principal.InGroup(name) ? "true" : "false");
  });
}

std::string GovernedSelect(const PolicyDecision& decision, const std::vector<ColumnType>& columns,
                           const std::string& source) {
  std::vector<std::string> items;
  items.reserve(columns.size());
  for (const auto& column : columns) {
    const ColumnMask* mask = nullptr;
    for (const auto& m : decision.masks) {
      if (m.column == column.name) mask = &m;
    }
    if (mask == nullptr) {
      items.push_back(SqlIdentifier(column.name));
    } else {
      items.push_back(MaskExpression(mask->method, column.name, column.type) + " AS " +
                      SqlIdentifier(column.name));
    }
  }
  // The filter reads the stored values; the projection above it masks them.
  std::string sql = "SELECT " + Join(items, ", ") + " FROM " + source;
  if (decision.row_filter) sql += " WHERE " + *decision.row_filter;
  return sql;
}

}  // namespace canopy::governance
