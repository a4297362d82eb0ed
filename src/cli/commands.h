// Internal to cli: one function per command. Each returns an exit code or throws
// canopy::Error, which RunCli maps to a message and an exit code.
#pragma once

#include <optional>
#include <string>

namespace canopy::cli {

enum class OutputFormat { kTable, kJson };

struct GlobalOptions {
  std::optional<std::string> mesh;  // --mesh
};

int RunValidate(const GlobalOptions& global, OutputFormat format);
int RunInit(const std::string& dir, const std::string& domain, const std::string& owner,
            const std::string& name);
int RunExample(const std::string& dir, double scale, bool overwrite);

// How to show the mesh folder before a relative path: "" when it is the current
// folder, "demo/" below it, else the absolute path with a '/'.
std::string DisplayPrefix(const std::string& root);

}  // namespace canopy::cli
