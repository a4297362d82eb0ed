// Plain-text tables for listings: columns padded to their widest cell.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace canopy::cli {

class Table {
 public:
  // Columns whose header starts with '>' are right-aligned (the '>' is not shown).
  explicit Table(std::vector<std::string> headers);
  void AddRow(std::vector<std::string> cells);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// 1234567 → "1,234,567".
std::string WithThousands(int64_t value);
// 1234 ms → "1.23 s"; 12 ms → "12 ms".
std::string Duration(int64_t millis);

}  // namespace canopy::cli
