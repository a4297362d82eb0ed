#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "build/check_mesh.h"
#include "cli/commands.h"
#include "core/diagnostics.h"
#include "spec/loader.h"

namespace fs = std::filesystem;

namespace canopy::cli {

std::string DisplayPrefix(const std::string& root) {
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  const fs::path relative = fs::path(root).lexically_relative(cwd);
  if (relative.empty() || relative == ".") return "";
  const std::string text = relative.generic_string();
  if (text.rfind("..", 0) == 0) return fs::path(root).generic_string() + "/";
  return text + "/";
}

int RunValidate(const GlobalOptions& global, OutputFormat format) {
  const std::string root = spec::FindMeshRoot(global.mesh);
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(root, diagnostics);
  build::CheckMesh(mesh, diagnostics);

  int products = 0;
  int ports = 0;
  int dashboards = 0;
  for (const auto& domain : mesh.domains) {
    products += static_cast<int>(domain.products.size());
    dashboards += static_cast<int>(domain.dashboards.size());
    for (const auto& product : domain.products) ports += static_cast<int>(product.outputs.size());
  }

  if (format == OutputFormat::kJson) {
    nlohmann::json out;
    out["mesh"] = mesh.name;
    out["valid"] = !diagnostics.HasErrors();
    out["errors"] = diagnostics.ErrorCount();
    out["warnings"] = diagnostics.WarningCount();
    out["domains"] = mesh.domains.size();
    out["products"] = products;
    out["ports"] = ports;
    out["dashboards"] = dashboards;
    out["diagnostics"] = nlohmann::json::array();
    for (const auto& d : diagnostics.items()) {
      out["diagnostics"].push_back(
          {{"severity", d.severity == Severity::kError ? "error" : "warning"},
           {"file", d.location.file},
           {"line", d.location.line},
           {"column", d.location.column},
           {"message", d.message},
           {"hint", d.hint}});
    }
    std::cout << out.dump(2) << "\n";
    return diagnostics.HasErrors() ? 1 : 0;
  }

  const std::string prefix = DisplayPrefix(root);
  for (const auto& d : diagnostics.items()) std::cerr << d.Format(prefix) << "\n";
  if (diagnostics.HasErrors()) {
    std::cerr << "\n"
              << diagnostics.ErrorCount() << " error(s), " << diagnostics.WarningCount()
              << " warning(s): mesh '" << mesh.name << "' is not valid\n";
    return 1;
  }
  std::cout << "mesh '" << mesh.name << "' is valid: " << mesh.domains.size() << " domains, "
            << products << " products, " << ports << " output ports";
  if (dashboards > 0) std::cout << ", " << dashboards << " dashboard(s)";
  if (diagnostics.WarningCount() > 0)
    std::cout << " (" << diagnostics.WarningCount() << " warnings)";
  std::cout << "\n";
  return 0;
}

}  // namespace canopy::cli
