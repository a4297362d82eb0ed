// Diagnostics: the problems found in user input, collected so that one run
// reports all of them, each with the place it was found and the fix.
#pragma once

#include <string>
#include <vector>

namespace canopy {

// A place in a file the user wrote. `file` is relative to the mesh root;
// `line` and `column` are 1-based, 0 when unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:column", or less when line/column are unknown.
  std::string ToString() const;
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  SourceLocation location;
  std::string message;
  std::string hint;  // how to fix it; may be empty

  // "file:line:col: error: message (hint)" — the form editors and CI understand.
  // `prefix` is prepended to the file (e.g. the mesh folder as the user named it).
  std::string Format(const std::string& prefix = {}) const;
};

// An ordered collection of diagnostics. Not thread-safe.
class Diagnostics {
 public:
  void Error(SourceLocation location, std::string message, std::string hint = {});
  void Warning(SourceLocation location, std::string message, std::string hint = {});
  void Add(Diagnostic diagnostic) { items_.push_back(std::move(diagnostic)); }

  bool HasErrors() const;
  int ErrorCount() const;
  int WarningCount() const;
  const std::vector<Diagnostic>& items() const { return items_; }

  // Sorts by file, line, column (stable for equal places), so output reads top to bottom.
  void Sort();

 private:
  std::vector<Diagnostic> items_;
};

}  // namespace canopy
