// The SQL that stands for a port for one reader: its columns, masked where the
// decision says so (each keeping its type), and its rows, filtered where it says so.
#pragma once

#include <string>
#include <vector>

#include "governance/policy.h"

namespace canopy::governance {

struct ColumnType {
  std::string name;
  std::string type;  // DuckDB type name as published
};

// `SELECT <columns, masked> FROM <source> [WHERE <row filter>]`. `source` is a
// relation (e.g. read_parquet('...')); `salt` keys the hash mask so hashes are
// stable within a mesh but cannot be looked up in a table of known values.
std::string GovernedSelect(const PolicyDecision& decision, const std::vector<ColumnType>& columns,
                           const std::string& source, const std::string& salt);

// The mask of one column as an SQL expression of the same type.
std::string MaskExpression(spec::MaskMethod method, const std::string& column,
                           const std::string& type, const std::string& salt);

// Binds principal_attr('name') and principal_in_group('name') in a row filter to
// this principal's values, as SQL constants (NULL for an attribute it lacks).
std::string BindPrincipal(const std::string& predicate, const Principal& principal);

}  // namespace canopy::governance
