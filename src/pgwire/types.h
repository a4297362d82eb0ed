// Values between Canopy and PostgreSQL's wire formats: the type a result column is sent
// as, a value in text or binary format, and a bound parameter turned into a SQL literal.
// Pure functions, tested (and fuzzed) without a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "governance/query.h"

namespace canopy::pgwire {

// pg_type OIDs of the types Canopy sends and takes.
namespace oid {
inline constexpr uint32_t kUnspecified = 0;
inline constexpr uint32_t kBool = 16;
inline constexpr uint32_t kBytea = 17;
inline constexpr uint32_t kName = 19;
inline constexpr uint32_t kInt8 = 20;
inline constexpr uint32_t kInt2 = 21;
inline constexpr uint32_t kInt4 = 23;
inline constexpr uint32_t kText = 25;
inline constexpr uint32_t kOid = 26;
inline constexpr uint32_t kJson = 114;
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kUnknown = 705;
inline constexpr uint32_t kBpchar = 1042;
inline constexpr uint32_t kVarchar = 1043;
inline constexpr uint32_t kDate = 1082;
inline constexpr uint32_t kTime = 1083;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestamptz = 1184;
inline constexpr uint32_t kInterval = 1186;
inline constexpr uint32_t kNumeric = 1700;
inline constexpr uint32_t kUuid = 2950;
inline constexpr uint32_t kJsonb = 3802;
}  // namespace oid

struct PgType {
  uint32_t oid = oid::kText;
  int16_t size = -1;      // pg_type.typlen
  int32_t modifier = -1;  // pg_attribute.atttypmod: numeric's precision and scale, packed
};

// The PostgreSQL type a column of DuckDB's `type` (as DESCRIBE spells it) is sent as.
// Lists, structs, maps and the rest are sent as text.
PgType PgTypeOf(const std::string& duckdb_type);

// A value in PostgreSQL's text format (nullopt: NULL).
std::optional<std::string> TextFormat(uint32_t type_oid, const governance::Value& value);

// A value in PostgreSQL's binary format for `type_oid` (nullopt: NULL). Throws
// Error(kFailed) when the value cannot be written so (a date outside the calendar).
std::optional<std::string> BinaryFormat(uint32_t type_oid, const governance::Value& value);

// Whether the binary format of `type_oid` is one Canopy writes (else text is sent).
bool HasBinaryFormat(uint32_t type_oid);

// A bound parameter as a SQL literal of its type: `bytes` in `format` (0 text, 1
// binary), nullopt for NULL. Throws Error(kInvalidInput) for a value that is not of its
// type, or not UTF-8 where text is expected.
std::string ParameterLiteral(uint32_t type_oid, int16_t format,
                             const std::optional<std::string>& bytes);

// The highest $n placeholder in `sql`, outside strings, quoted names and comments.
int CountPlaceholders(std::string_view sql);

// The longest statement with its parameters in place.
inline constexpr size_t kMaxBoundStatementBytes = size_t{16} << 20;

// `sql` with each $n placeholder replaced by literals[n-1]. Throws Error(kInvalidInput)
// when a placeholder has no literal, or the result is longer than kMaxBoundStatementBytes.
std::string SubstitutePlaceholders(std::string_view sql, const std::vector<std::string>& literals);

// The statements of a simple query message, split at each ';' outside strings, quoted
// names, comments and dollar quotes, each from its first token; pieces of blanks and
// comments alone left out. Views into `sql`.
std::vector<std::string_view> SplitStatements(std::string_view sql);

}  // namespace canopy::pgwire
