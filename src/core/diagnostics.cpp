#include "core/diagnostics.h"

#include <algorithm>
#include <tuple>

namespace canopy {

std::string SourceLocation::ToString() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  return out;
}

std::string Diagnostic::Format(const std::string& prefix) const {
  std::string out;
  if (!location.file.empty()) {
    SourceLocation shown = location;
    shown.file = prefix + shown.file;
    out += shown.ToString() + ": ";
  }
  out += severity == Severity::kError ? "error: " : "warning: ";
  out += message;
  if (!hint.empty()) out += "\n  hint: " + hint;
  return out;
}

void Diagnostics::Error(SourceLocation location, std::string message, std::string hint) {
  items_.push_back({Severity::kError, std::move(location), std::move(message), std::move(hint)});
}

void Diagnostics::Warning(SourceLocation location, std::string message, std::string hint) {
  items_.push_back({Severity::kWarning, std::move(location), std::move(message), std::move(hint)});
}

bool Diagnostics::HasErrors() const {
  return ErrorCount() > 0;
}

int Diagnostics::ErrorCount() const {
  return static_cast<int>(std::count_if(items_.begin(), items_.end(), [](const Diagnostic& d) {
    return d.severity == Severity::kError;
  }));
}

int Diagnostics::WarningCount() const {
  return static_cast<int>(items_.size()) - ErrorCount();
}

void Diagnostics::Sort() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.location.file, a.location.line, a.location.column) <
           std::tie(b.location.file, b.location.line, b.location.column);
  });
}

}  // namespace canopy
