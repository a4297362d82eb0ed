// The SQL that stands for a port for one reader: its columns, masked where the
// decision says so (each keeping its type), and its rows, filtered where it says so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "governance/policy.h"

namespace canopy::governance {

struct ColumnType {
  std::string name;
  std::string type;  // DuckDB type name as published
};

// The functions governed SQL calls, registered (by InstallGovernedFunctions) on each
// engine that runs it. Their names carry a random part made once per process, so SQL
// that did not come from Canopy cannot name them.
struct GovernedFunctions {
  std::string mask_hash;  // the keyed hash of the hash mask (engine::RegisterKeyedHash)
  std::string cap;        // the length cap on string-distance arguments
};
const GovernedFunctions& Functions();

// The longest string a string-distance function (levenshtein …) compares in a
// governed query: its cost grows with the square of the length, inside one call that
// DuckDB cannot interrupt.
constexpr int64_t kDistanceArgumentBytes = 512;

// Registers them on `connection`'s database. `salt` (the catalog's mask salt) keys the
// hash mask so hashes are stable within a mesh but cannot be looked up in a table of
// known values; it stays in this process's memory, never in the engine's SQL text.
void InstallGovernedFunctions(engine::Connection& connection, const std::string& salt);

// `SELECT <columns, masked> FROM <source> [WHERE <row filter>]`. `source` is a
// relation (e.g. read_parquet('...')).
std::string GovernedSelect(const PolicyDecision& decision, const std::vector<ColumnType>& columns,
                           const std::string& source);

// The mask of one column as an SQL expression of the same type.
std::string MaskExpression(spec::MaskMethod method, const std::string& column,
                           const std::string& type);

// Binds principal_attr('name') and principal_in_group('name') in a row filter to
// this principal's values, as SQL constants (NULL for an attribute it lacks).
std::string BindPrincipal(const std::string& predicate, const Principal& principal);

}  // namespace canopy::governance
