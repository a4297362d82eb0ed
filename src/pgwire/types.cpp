#include "pgwire/types.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include "core/error.h"
#include "core/text.h"

namespace canopy::pgwire {

namespace {

// --- bytes ---

void PutBig(std::string& out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out += static_cast<char>((value >> shift) & 0xff);
  }
}

uint64_t GetBig(std::string_view in, size_t at, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(in[at + static_cast<size_t>(i)]);
  }
  return value;
}

Error BadValue(const std::string& what) {
  return Error(ErrorCode::kFailed, "cannot send " + what + " in PostgreSQL's binary format",
               "ask for the column in text format");
}

Error BadParameter(const std::string& what) {
  return Error(ErrorCode::kInvalidInput, "a bound parameter is not valid: " + what,
               "send the value in the text format of its type");
}

// --- the calendar (days counted from 1970-01-01, proleptic Gregorian) ---

constexpr int64_t kPgEpochDays = 10957;  // 2000-01-01, PostgreSQL's epoch
constexpr int64_t kMicrosPerDay = int64_t{86400} * 1000000;

int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

void CivilFromDays(int64_t days, int64_t& year, int64_t& month, int64_t& day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t shifted_month = (5 * day_of_year + 2) / 153;
  day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
  month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
  year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
}

// Reads an unsigned decimal number of at most `max_digits` digits at `at`.
bool Digits(std::string_view text, size_t& at, int64_t& value, size_t max_digits = 18) {
  const size_t begin = at;
  value = 0;
  while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) != 0 &&
         at - begin < max_digits) {
    value = value * 10 + (text[at] - '0');
    ++at;
  }
  return at > begin;
}

bool Expect(std::string_view text, size_t& at, char c) {
  if (at >= text.size() || text[at] != c) return false;
  ++at;
  return true;
}

// "YYYY-MM-DD" (with " (BC)" for years before 1) at `at`: days since 1970-01-01.
bool ParseDate(std::string_view text, size_t& at, int64_t& days) {
  int64_t year = 0;
  int64_t month = 0;
  int64_t day = 0;
  if (!Digits(text, at, year, 9) || !Expect(text, at, '-') || !Digits(text, at, month, 2) ||
      !Expect(text, at, '-') || !Digits(text, at, day, 2) || month < 1 || month > 12 || day < 1 ||
      day > 31) {
    return false;
  }
  constexpr std::string_view kBc = " (BC)";
  if (text.substr(at, kBc.size()) == kBc) {
    year = 1 - year;
    at += kBc.size();
  } else if (text.size() > at + kBc.size() && text.substr(text.size() - kBc.size()) == kBc) {
    year = 1 - year;  // a timestamp's era comes after its time
  }
  days = DaysFromCivil(year, month, day);
  return true;
}

// "HH:MM:SS[.ffffff]" at `at`: microseconds.
bool ParseTime(std::string_view text, size_t& at, int64_t& micros) {
  int64_t hours = 0;
  int64_t minutes = 0;
  int64_t seconds = 0;
  if (!Digits(text, at, hours, 9) || !Expect(text, at, ':') || !Digits(text, at, minutes, 2) ||
      !Expect(text, at, ':') || !Digits(text, at, seconds, 2)) {
    return false;
  }
  int64_t fraction = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int64_t scale = 100000;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) != 0) {
      fraction += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
  }
  micros = ((hours * 60 + minutes) * 60 + seconds) * 1000000 + fraction;
  return true;
}

// "+HH[:MM[:SS]]" or "-HH…" at `at`: seconds east of UTC.
bool ParseOffset(std::string_view text, size_t& at, int64_t& seconds) {
  seconds = 0;
  if (at >= text.size() || (text[at] != '+' && text[at] != '-')) return true;  // none: UTC
  const int64_t sign = text[at] == '-' ? -1 : 1;
  ++at;
  int64_t hours = 0;
  int64_t minutes = 0;
  int64_t secs = 0;
  if (!Digits(text, at, hours, 2)) return false;
  if (Expect(text, at, ':') && !Digits(text, at, minutes, 2)) return false;
  if (Expect(text, at, ':') && !Digits(text, at, secs, 2)) return false;
  seconds = sign * ((hours * 60 + minutes) * 60 + secs);
  return true;
}

std::string TwoDigits(int64_t value) {
  return (value < 10 ? "0" : "") + std::to_string(value);
}

std::string DateText(int64_t days_since_1970) {
  int64_t year = 0;
  int64_t month = 0;
  int64_t day = 0;
  CivilFromDays(days_since_1970, year, month, day);
  const bool bc = year <= 0;
  std::string y = std::to_string(bc ? 1 - year : year);
  if (y.size() < 4) y.insert(0, 4 - y.size(), '0');
  return y + "-" + TwoDigits(month) + "-" + TwoDigits(day) + (bc ? " (BC)" : "");
}

std::string TimeText(int64_t micros) {
  const int64_t seconds = micros / 1000000;
  std::string text = TwoDigits(seconds / 3600) + ":" + TwoDigits(seconds / 60 % 60) + ":" +
                     TwoDigits(seconds % 60);
  if (micros % 1000000 != 0) {
    std::string fraction = std::to_string(micros % 1000000);
    fraction.insert(0, 6 - fraction.size(), '0');
    text += "." + fraction;
  }
  return text;
}

// Microseconds since 1970 as "YYYY-MM-DD HH:MM:SS[.ffffff]".
std::string TimestampText(int64_t micros) {
  int64_t days = micros / kMicrosPerDay;
  int64_t rest = micros % kMicrosPerDay;
  if (rest < 0) {
    rest += kMicrosPerDay;
    --days;
  }
  std::string date = DateText(days);
  const bool bc = date.size() > 5 && date.substr(date.size() - 5) == " (BC)";
  if (bc) date.resize(date.size() - 5);
  return date + " " + TimeText(rest) + (bc ? " (BC)" : "");
}

// --- numeric ---

// A decimal number's text as PostgreSQL's binary numeric: digits in base 10000.
std::string NumericBinary(std::string_view text) {
  std::string out;
  if (text == "NaN" || text == "nan") {
    PutBig(out, 0, 2);
    PutBig(out, 0, 2);
    PutBig(out, 0xC000, 2);
    PutBig(out, 0, 2);
    return out;
  }
  size_t at = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) ++at;
  std::string whole;
  std::string fraction;
  while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) != 0) {
    whole += text[at++];
  }
  if (at < text.size() && text[at] == '.') {
    ++at;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) != 0) {
      fraction += text[at++];
    }
  }
  if (at != text.size() || (whole.empty() && fraction.empty()))
    throw BadValue("'" + std::string(text) + "' as numeric");
  const auto scale = static_cast<int64_t>(fraction.size());
  whole.erase(0, std::min(whole.find_first_not_of('0'), whole.size()));
  // Pad both sides to whole groups of four digits.
  whole.insert(0, (4 - whole.size() % 4) % 4, '0');
  fraction.append((4 - fraction.size() % 4) % 4, '0');
  std::vector<int> groups;
  for (size_t i = 0; i < whole.size(); i += 4) groups.push_back(std::stoi(whole.substr(i, 4)));
  for (size_t i = 0; i < fraction.size(); i += 4)
    groups.push_back(std::stoi(fraction.substr(i, 4)));
  int64_t weight = static_cast<int64_t>(whole.size() / 4) - 1;
  size_t first = 0;
  while (first < groups.size() && groups[first] == 0) {
    ++first;
    --weight;
  }
  size_t last = groups.size();
  while (last > first && groups[last - 1] == 0) --last;
  if (first == last) weight = 0;
  PutBig(out, last - first, 2);
  PutBig(out, static_cast<uint64_t>(weight) & 0xffff, 2);
  PutBig(out, first != last && negative ? 0x4000 : 0, 2);
  PutBig(out, static_cast<uint64_t>(scale), 2);
  for (size_t i = first; i < last; ++i) PutBig(out, static_cast<uint64_t>(groups[i]), 2);
  return out;
}

// PostgreSQL's binary numeric as decimal text.
std::string NumericText(std::string_view bytes) {
  if (bytes.size() < 8) throw BadParameter("a numeric shorter than its header");
  const auto count = static_cast<size_t>(GetBig(bytes, 0, 2));
  const auto weight = static_cast<int16_t>(GetBig(bytes, 2, 2));
  const auto sign = GetBig(bytes, 4, 2);
  const auto scale = static_cast<int64_t>(GetBig(bytes, 6, 2));
  if (bytes.size() != 8 + 2 * count || scale > 1000)
    throw BadParameter("a numeric of the wrong length");
  if (sign == 0xC000) return "'NaN'";
  if (sign != 0 && sign != 0x4000) throw BadParameter("a numeric with an unknown sign");
  std::string whole;
  std::string fraction;
  for (size_t i = 0; i < count; ++i) {
    const auto digit = GetBig(bytes, 8 + 2 * i, 2);
    if (digit > 9999) throw BadParameter("a numeric digit above 9999");
    std::string four = std::to_string(digit);
    four.insert(0, 4 - four.size(), '0');
    const int64_t position = weight - static_cast<int64_t>(i);  // power of 10000
    (position >= 0 ? whole : fraction) += four;
  }
  if (weight < -1) fraction.insert(0, 4 * static_cast<size_t>(-1 - weight), '0');
  const int64_t trailing_groups = weight - static_cast<int64_t>(count) + 1;
  if (trailing_groups > 0) {
    if (trailing_groups > 10000) throw BadParameter("a numeric too large");
    whole.append(static_cast<size_t>(4 * trailing_groups), '0');
  }
  whole.erase(0, std::min(whole.find_first_not_of('0'), whole.size()));
  if (whole.empty()) whole = "0";
  fraction.resize(static_cast<size_t>(scale), '0');
  return std::string(sign == 0x4000 ? "-" : "") + whole + (scale > 0 ? "." + fraction : "");
}

// --- interval ---

struct Interval {
  int64_t months = 0;
  int64_t days = 0;
  int64_t micros = 0;
};

// DuckDB's interval text: "1 year 2 months -3 days 04:05:06.5".
bool ParseInterval(std::string_view text, Interval& interval) {
  size_t at = 0;
  while (at < text.size()) {
    if (text[at] == ' ') {
      ++at;
      continue;
    }
    const bool negative = text[at] == '-';
    if (text[at] == '-' || text[at] == '+') ++at;
    const size_t number_at = at;
    int64_t number = 0;
    if (!Digits(text, at, number)) return false;
    if (at < text.size() && text[at] == ':') {
      at = number_at;
      int64_t micros = 0;
      if (!ParseTime(text, at, micros)) return false;
      interval.micros += negative ? -micros : micros;
      continue;
    }
    if (negative) number = -number;
    while (at < text.size() && text[at] == ' ') ++at;
    const size_t unit_at = at;
    while (at < text.size() && std::isalpha(static_cast<unsigned char>(text[at])) != 0) ++at;
    const std::string_view unit = text.substr(unit_at, at - unit_at);
    if (unit.rfind("year", 0) == 0) {
      interval.months += 12 * number;
    } else if (unit.rfind("mon", 0) == 0) {
      interval.months += number;
    } else if (unit.rfind("day", 0) == 0) {
      interval.days += number;
    } else {
      return false;
    }
  }
  return true;
}

// --- parameters ---

std::string Quoted(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string CheckedText(std::string_view bytes) {
  if (bytes.find('\0') != std::string_view::npos) {
    throw Error(ErrorCode::kInvalidInput, "a bound parameter holds a NUL byte",
                "send bytes as bytea");
  }
  if (!ValidUtf8(bytes)) {
    throw Error(ErrorCode::kInvalidInput, "a bound parameter is not valid UTF-8");
  }
  return std::string(bytes);
}

std::string BlobLiteral(std::string_view bytes) {
  static const char* const kHex = "0123456789ABCDEF";
  std::string out = "CAST('";
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out + "' AS BLOB)";
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The DuckDB type a parameter of `type_oid` is cast to; "" for text-like types.
const char* CastTarget(uint32_t type_oid) {
  switch (type_oid) {
    case oid::kBool:
      return "BOOLEAN";
    case oid::kInt2:
      return "SMALLINT";
    case oid::kInt4:
    case oid::kOid:
      return "INTEGER";
    case oid::kInt8:
      return "BIGINT";
    case oid::kFloat4:
      return "FLOAT";
    case oid::kFloat8:
      return "DOUBLE";
    case oid::kDate:
      return "DATE";
    case oid::kTime:
      return "TIME";
    case oid::kTimestamp:
      return "TIMESTAMP";
    case oid::kTimestamptz:
      return "TIMESTAMPTZ";
    case oid::kInterval:
      return "INTERVAL";
    case oid::kUuid:
      return "UUID";
    case oid::kJson:
    case oid::kJsonb:
      return "JSON";
    default:
      return "";
  }
}

bool IsNumberText(std::string_view text) {
  size_t at = 0;
  if (at < text.size() && (text[at] == '-' || text[at] == '+')) ++at;
  size_t digits = 0;
  while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) != 0) {
    ++at;
    ++digits;
  }
  if (at < text.size() && text[at] == '.') {
    ++at;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) != 0) {
      ++at;
      ++digits;
    }
  }
  if (digits == 0) return false;
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    ++at;
    if (at < text.size() && (text[at] == '-' || text[at] == '+')) ++at;
    size_t exponent = 0;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) != 0) {
      ++at;
      ++exponent;
    }
    if (exponent == 0) return false;
  }
  return at == text.size();
}

std::string DoubleText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[32];
  const auto done = std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest exact
  return std::string(buffer, done.ptr);
}

std::string BinaryParameterText(uint32_t type_oid, std::string_view bytes) {
  auto need = [&](size_t size) {
    if (bytes.size() != size) {
      throw BadParameter("type " + std::to_string(type_oid) + " takes " + std::to_string(size) +
                         " bytes in binary, not " + std::to_string(bytes.size()));
    }
  };
  switch (type_oid) {
    case oid::kBool:
      need(1);
      return bytes[0] != 0 ? "true" : "false";
    case oid::kInt2:
      need(2);
      return std::to_string(static_cast<int16_t>(GetBig(bytes, 0, 2)));
    case oid::kInt4:
      need(4);
      return std::to_string(static_cast<int32_t>(GetBig(bytes, 0, 4)));
    case oid::kOid:
      need(4);
      return std::to_string(static_cast<uint32_t>(GetBig(bytes, 0, 4)));
    case oid::kInt8:
      need(8);
      return std::to_string(static_cast<int64_t>(GetBig(bytes, 0, 8)));
    case oid::kFloat4: {
      need(4);
      const auto bits = static_cast<uint32_t>(GetBig(bytes, 0, 4));
      float value = 0;
      std::memcpy(&value, &bits, sizeof value);
      return DoubleText(value);
    }
    case oid::kFloat8: {
      need(8);
      const uint64_t bits = GetBig(bytes, 0, 8);
      double value = 0;
      std::memcpy(&value, &bits, sizeof value);
      return DoubleText(value);
    }
    case oid::kDate: {
      need(4);
      const auto days = static_cast<int32_t>(GetBig(bytes, 0, 4));
      if (days == std::numeric_limits<int32_t>::max()) return "infinity";
      if (days == std::numeric_limits<int32_t>::min()) return "-infinity";
      return DateText(days + kPgEpochDays);
    }
    case oid::kTime: {
      need(8);
      const auto micros = static_cast<int64_t>(GetBig(bytes, 0, 8));
      if (micros < 0 || micros > kMicrosPerDay) throw BadParameter("a time outside a day");
      return TimeText(micros);
    }
    case oid::kTimestamp:
    case oid::kTimestamptz: {
      need(8);
      const auto micros = static_cast<int64_t>(GetBig(bytes, 0, 8));
      if (micros == std::numeric_limits<int64_t>::max()) return "infinity";
      if (micros == std::numeric_limits<int64_t>::min()) return "-infinity";
      constexpr int64_t kLimit = int64_t{200000} * 365 * kMicrosPerDay;  // beyond any calendar use
      if (micros > kLimit || micros < -kLimit) throw BadParameter("a timestamp out of range");
      return TimestampText(micros + kPgEpochDays * kMicrosPerDay) +
             (type_oid == oid::kTimestamptz ? "+00" : "");
    }
    case oid::kInterval: {
      need(16);
      const auto micros = static_cast<int64_t>(GetBig(bytes, 0, 8));
      const auto days = static_cast<int32_t>(GetBig(bytes, 8, 4));
      const auto months = static_cast<int32_t>(GetBig(bytes, 12, 4));
      return std::to_string(months) + " months " + std::to_string(days) + " days " +
             std::to_string(micros) + " microseconds";
    }
    case oid::kUuid: {
      need(16);
      static const char* const kHex = "0123456789abcdef";
      std::string text;
      for (size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
        const auto b = static_cast<unsigned char>(bytes[i]);
        text += kHex[b >> 4];
        text += kHex[b & 15];
      }
      return text;
    }
    case oid::kNumeric:
      return NumericText(bytes);
    case oid::kJsonb:
      if (bytes.empty() || bytes[0] != 1) throw BadParameter("a jsonb of an unknown version");
      return CheckedText(bytes.substr(1));
    default:
      return CheckedText(bytes);
  }
}

// DuckDB writes a BLOB as text with "\xHH" for each byte that is not printable ASCII.
std::string BlobBytes(std::string_view text) {
  std::string bytes;
  bytes.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] == 'x' &&
        HexDigit(text[i + 2]) >= 0 && HexDigit(text[i + 3]) >= 0) {
      bytes += static_cast<char>(HexDigit(text[i + 2]) * 16 + HexDigit(text[i + 3]));
      i += 3;
    } else {
      bytes += text[i];
    }
  }
  return bytes;
}

}  // namespace

PgType PgTypeOf(const std::string& duckdb_type) {
  std::string type = duckdb_type;
  for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto is = [&](const char* name) { return type == name; };
  auto starts = [&](const char* prefix) { return type.rfind(prefix, 0) == 0; };
  if (is("BOOLEAN")) return {oid::kBool, 1};
  if (is("TINYINT") || is("SMALLINT") || is("UTINYINT")) return {oid::kInt2, 2};
  if (is("INTEGER") || is("USMALLINT")) return {oid::kInt4, 4};
  if (is("BIGINT") || is("UINTEGER")) return {oid::kInt8, 8};
  if (starts("DECIMAL(")) {  // DECIMAL(p,s): numeric(p,s), packed as PostgreSQL packs it
    int precision = 0;
    int scale = 0;
    if (std::sscanf(type.c_str(), "DECIMAL(%d,%d)", &precision, &scale) == 2 && precision > 0 &&
        scale >= 0 && scale <= precision) {
      return {oid::kNumeric, -1, ((precision << 16) | scale) + 4};
    }
    return {oid::kNumeric, -1};
  }
  if (is("HUGEINT") || is("UBIGINT") || is("UHUGEINT") || is("DECIMAL")) {
    return {oid::kNumeric, -1};
  }
  if (is("FLOAT")) return {oid::kFloat4, 4};
  if (is("DOUBLE")) return {oid::kFloat8, 8};
  if (is("DATE")) return {oid::kDate, 4};
  if (is("TIME")) return {oid::kTime, 8};
  if (is("TIMESTAMP WITH TIME ZONE")) return {oid::kTimestamptz, 8};
  if (is("TIMESTAMP") || starts("TIMESTAMP_")) return {oid::kTimestamp, 8};
  if (is("INTERVAL")) return {oid::kInterval, 16};
  if (is("UUID")) return {oid::kUuid, 16};
  if (is("BLOB")) return {oid::kBytea, -1};
  if (is("JSON")) return {oid::kJson, -1};
  return {oid::kText, -1};
}

bool HasBinaryFormat(uint32_t type_oid) {
  switch (type_oid) {
    case oid::kBool:
    case oid::kBytea:
    case oid::kInt8:
    case oid::kInt2:
    case oid::kInt4:
    case oid::kText:
    case oid::kJson:
    case oid::kFloat4:
    case oid::kFloat8:
    case oid::kDate:
    case oid::kTime:
    case oid::kTimestamp:
    case oid::kTimestamptz:
    case oid::kInterval:
    case oid::kNumeric:
    case oid::kUuid:
      return true;
    default:
      return false;
  }
}

std::optional<std::string> TextFormat(uint32_t type_oid, const governance::Value& value) {
  if (std::holds_alternative<std::monostate>(value)) return std::nullopt;
  if (const bool* b = std::get_if<bool>(&value)) return std::string(*b ? "t" : "f");
  if (const int64_t* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  if (const double* d = std::get_if<double>(&value)) return DoubleText(*d);
  const std::string& text = std::get<std::string>(value);
  if (type_oid == oid::kBytea) {
    static const char* const kHex = "0123456789abcdef";
    std::string out = "\\x";
    for (const char c : BlobBytes(text)) {
      const auto b = static_cast<unsigned char>(c);
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
    return out;
  }
  if (type_oid == oid::kInterval) {  // PostgreSQL says "mons" where DuckDB says "months"
    std::string out = text;
    for (size_t at = out.find("month"); at != std::string::npos; at = out.find("month", at)) {
      out.replace(at, 5, "mon");
    }
    return out;
  }
  return text;
}

std::optional<std::string> BinaryFormat(uint32_t type_oid, const governance::Value& value) {
  if (std::holds_alternative<std::monostate>(value)) return std::nullopt;
  std::string out;
  const auto* integer = std::get_if<int64_t>(&value);
  const auto* real = std::get_if<double>(&value);
  const auto* text = std::get_if<std::string>(&value);
  switch (type_oid) {
    case oid::kBool:
      if (const bool* b = std::get_if<bool>(&value)) return std::string(1, *b ? '\1' : '\0');
      break;
    case oid::kInt2:
    case oid::kInt4:
    case oid::kInt8:
      if (integer != nullptr) {
        PutBig(out, static_cast<uint64_t>(*integer),
               type_oid == oid::kInt2   ? 2
               : type_oid == oid::kInt4 ? 4
                                        : 8);
        return out;
      }
      break;
    case oid::kFloat4:
      if (real != nullptr) {
        const auto single = static_cast<float>(*real);
        uint32_t bits = 0;
        std::memcpy(&bits, &single, sizeof bits);
        PutBig(out, bits, 4);
        return out;
      }
      break;
    case oid::kFloat8:
      if (real != nullptr) {
        uint64_t bits = 0;
        std::memcpy(&bits, real, sizeof bits);
        PutBig(out, bits, 8);
        return out;
      }
      break;
    case oid::kNumeric:
      if (integer != nullptr) return NumericBinary(std::to_string(*integer));
      if (text != nullptr) return NumericBinary(*text);
      break;
    case oid::kBytea:
      if (text != nullptr) return BlobBytes(*text);
      break;
    default:
      break;
  }
  if (text == nullptr) throw BadValue("a value of type " + std::to_string(type_oid));
  size_t at = 0;
  switch (type_oid) {
    case oid::kDate: {
      int64_t days = 0;
      if (*text == "infinity" || *text == "-infinity") {
        PutBig(out, *text == "infinity" ? 0x7fffffffULL : 0x80000000ULL, 4);
        return out;
      }
      if (!ParseDate(*text, at, days)) throw BadValue("the date '" + *text + "'");
      PutBig(out, static_cast<uint64_t>(days - kPgEpochDays), 4);
      return out;
    }
    case oid::kTime: {
      int64_t micros = 0;
      if (!ParseTime(*text, at, micros)) throw BadValue("the time '" + *text + "'");
      PutBig(out, static_cast<uint64_t>(micros), 8);
      return out;
    }
    case oid::kTimestamp:
    case oid::kTimestamptz: {
      if (*text == "infinity" || *text == "-infinity") {
        PutBig(out, *text == "infinity" ? 0x7fffffffffffffffULL : 0x8000000000000000ULL, 8);
        return out;
      }
      int64_t days = 0;
      int64_t micros = 0;
      int64_t offset = 0;
      if (!ParseDate(*text, at, days) || !Expect(*text, at, ' ') || !ParseTime(*text, at, micros) ||
          !ParseOffset(*text, at, offset)) {
        throw BadValue("the timestamp '" + *text + "'");
      }
      const int64_t since_epoch = (days - kPgEpochDays) * kMicrosPerDay + micros - offset * 1000000;
      PutBig(out, static_cast<uint64_t>(since_epoch), 8);
      return out;
    }
    case oid::kInterval: {
      Interval interval;
      if (!ParseInterval(*text, interval)) throw BadValue("the interval '" + *text + "'");
      PutBig(out, static_cast<uint64_t>(interval.micros), 8);
      PutBig(out, static_cast<uint64_t>(interval.days), 4);
      PutBig(out, static_cast<uint64_t>(interval.months), 4);
      return out;
    }
    case oid::kUuid: {
      for (size_t i = 0; i < text->size(); ++i) {
        if ((*text)[i] == '-') continue;
        if (i + 1 >= text->size() || HexDigit((*text)[i]) < 0 || HexDigit((*text)[i + 1]) < 0) {
          throw BadValue("the uuid '" + *text + "'");
        }
        out += static_cast<char>(HexDigit((*text)[i]) * 16 + HexDigit((*text)[i + 1]));
        ++i;
      }
      if (out.size() != 16) throw BadValue("the uuid '" + *text + "'");
      return out;
    }
    default:
      return *text;  // text, varchar, json: the bytes themselves
  }
}

std::string ParameterLiteral(uint32_t type_oid, int16_t format,
                             const std::optional<std::string>& bytes) {
  const char* target = CastTarget(type_oid);
  if (!bytes) {
    return *target != 0 ? std::string("CAST(NULL AS ") + target + ")" : std::string("NULL");
  }
  if (format != 0 && format != 1) throw BadParameter("format code " + std::to_string(format));
  if (type_oid == oid::kBytea) {
    if (format == 1) return BlobLiteral(*bytes);
    if (bytes->rfind("\\x", 0) == 0) {
      std::string raw;
      for (size_t i = 2; i + 1 < bytes->size(); i += 2) {
        const int high = HexDigit((*bytes)[i]);
        const int low = HexDigit((*bytes)[i + 1]);
        if (high < 0 || low < 0) throw BadParameter("bytea hex with a non-hex digit");
        raw += static_cast<char>(high * 16 + low);
      }
      if (bytes->size() % 2 != 0) throw BadParameter("bytea hex with an odd number of digits");
      return BlobLiteral(raw);
    }
    return BlobLiteral(*bytes);
  }
  const std::string text =
      format == 1 ? BinaryParameterText(type_oid, *bytes) : CheckedText(*bytes);
  if (type_oid == oid::kNumeric) {
    if (text == "'NaN'" || ToLower(text) == "nan") return "CAST('NaN' AS DOUBLE)";
    if (!IsNumberText(text)) throw BadParameter("'" + text + "' is not a number");
    return "(" + text + ")";  // a bare literal keeps every digit; parentheses keep a sign apart
  }
  if (*target != 0) return std::string("CAST(") + Quoted(text) + " AS " + target + ")";
  return Quoted(text);
}

namespace {

bool IdentifierChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// Calls `placeholder(begin, end, n)` for each $n and `semicolon(at)` for each ';'
// outside strings, quoted names, comments and dollar quotes, and `code(at)` where a
// token begins (anything but blanks, comments and ';').
template <typename Found, typename Semicolon, typename Code>
void ScanCode(std::string_view sql, Found&& placeholder, Semicolon&& semicolon, Code&& code) {
  size_t i = 0;
  const size_t n = sql.size();
  // Where the last placeholder ended: a '$' right there begins another ("$1$2" is two
  // parameters to PostgreSQL), though a digit is otherwise part of an identifier.
  size_t after_placeholder = std::string_view::npos;
  while (i < n) {
    const char c = sql[i];
    const bool comment =
        i + 1 < n && ((c == '-' && sql[i + 1] == '-') || (c == '/' && sql[i + 1] == '*'));
    if (!comment && c != ';' && std::isspace(static_cast<unsigned char>(c)) == 0) code(i);
    if (c == '\'') {
      // An E'' string takes backslash escapes.
      const bool escapes = i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E') &&
                           (i < 2 || !IdentifierChar(sql[i - 2]));
      ++i;
      while (i < n) {
        if (escapes && sql[i] == '\\') {
          i += 2;
          continue;
        }
        if (sql[i] == '\'') {
          if (i + 1 < n && sql[i + 1] == '\'') {
            i += 2;
            continue;
          }
          break;
        }
        ++i;
      }
      ++i;
    } else if (c == '"') {
      ++i;
      while (i < n && !(sql[i] == '"' && (i + 1 >= n || sql[i + 1] != '"'))) {
        i += sql[i] == '"' ? 2 : 1;
      }
      ++i;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 0;
      while (i < n) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '$' && (i == 0 || !IdentifierChar(sql[i - 1]) || i == after_placeholder)) {
      size_t j = i + 1;
      if (j < n && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) {
        int64_t number = 0;
        while (j < n && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) {
          number = std::min<int64_t>(number * 10 + (sql[j] - '0'), 1000000);
          ++j;
        }
        placeholder(i, j, number);
        i = j;
        after_placeholder = j;
        continue;
      }
      // A dollar-quoted string: $tag$ … $tag$ (the tag's first character is not a digit,
      // the others may be).
      while (j < n && IdentifierChar(sql[j])) ++j;
      if (j < n && sql[j] == '$') {
        const std::string_view tag = sql.substr(i, j - i + 1);
        const size_t close = sql.find(tag, j + 1);
        i = close == std::string_view::npos ? n : close + tag.size();
      } else {
        i = j;
      }
    } else {
      if (c == ';') semicolon(i);
      ++i;
    }
  }
}

template <typename Found>
void ScanPlaceholders(std::string_view sql, Found&& placeholder) {
  ScanCode(
      sql, std::forward<Found>(placeholder), [](size_t) {}, [](size_t) {});
}

}  // namespace

int CountPlaceholders(std::string_view sql) {
  int64_t highest = 0;
  ScanPlaceholders(sql, [&](size_t, size_t, int64_t n) { highest = std::max(highest, n); });
  return static_cast<int>(highest);
}

std::string SubstitutePlaceholders(std::string_view sql, const std::vector<std::string>& literals) {
  std::string out;
  out.reserve(sql.size());
  size_t copied = 0;
  ScanPlaceholders(sql, [&](size_t begin, size_t end, int64_t n) {
    if (n < 1 || static_cast<size_t>(n) > literals.size()) {
      throw Error(ErrorCode::kInvalidInput, "there is no parameter $" + std::to_string(n) + " (" +
                                                std::to_string(literals.size()) + " were bound)");
    }
    out.append(sql.substr(copied, begin - copied));
    // In parentheses, so a literal never joins what is around it ("-$1" with -5 is not
    // the start of a comment).
    const std::string& literal = literals[static_cast<size_t>(n - 1)];
    if (out.size() + literal.size() > kMaxBoundStatementBytes) {
      throw Error(ErrorCode::kInvalidInput,
                  "the statement with its parameters in place is longer than " +
                      std::to_string((kMaxBoundStatementBytes >> 20)) + " MiB",
                  "bind smaller values, or name each one once");
    }
    out += "(" + literal + ")";
    copied = end;
  });
  out.append(sql.substr(copied));
  return out;
}

std::vector<std::string_view> SplitStatements(std::string_view sql) {
  std::vector<std::string_view> statements;
  size_t first = std::string_view::npos;  // where the piece's first token begins
  auto add = [&](size_t end) {
    if (first != std::string_view::npos) statements.push_back(sql.substr(first, end - first));
    first = std::string_view::npos;
  };
  ScanCode(
      sql, [](size_t, size_t, int64_t) {}, add, [&](size_t at) { first = std::min(first, at); });
  add(sql.size());
  return statements;
}

}  // namespace canopy::pgwire
