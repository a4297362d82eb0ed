#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "build/lineage_step.h"
#include "cli/commands.h"
#include "core/diagnostics.h"
#include "engine/engine.h"
#include "governance/gates.h"
#include "spec/loader.h"
#include "spec/validate.h"

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
  spec::ValidateMesh(mesh, diagnostics);
  // The global rules (publish gates), over the specs' metadata and standing grants.
  if (!diagnostics.HasErrors()) {
    for (const auto& violation : governance::EvaluateGates(mesh, {})) {
      const auto& rule = *violation.rule;
      const std::string message = "publish gate '" + rule.name + "': " + violation.row;
      const std::string hint = rule.description.empty() ? "" : rule.description;
      if (rule.severity == spec::RuleSeverity::kError) {
        diagnostics.Error(rule.location, message, hint);
      } else {
        diagnostics.Warning(rule.location, message, hint);
      }
    }
  }
  // Classification follows the data, where the lineage is known from the specs alone.
  if (!diagnostics.HasErrors()) {
    engine::Database database(engine::WithoutFileAccess());
    engine::Connection parser(database);
    for (const auto& domain : mesh.domains) {
      for (const auto& product : domain.products) {
        for (const auto& f : build::CheckClassificationsFromSpecs(parser, mesh, product).weaker) {
          diagnostics.Error(f.location, build::Describe(f, product),
                            build::DeclassifyHint(f.lineage));
        }
      }
    }
  }
  diagnostics.Sort();

  int products = 0;
  int ports = 0;
  for (const auto& domain : mesh.domains) {
    products += static_cast<int>(domain.products.size());
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
  if (diagnostics.WarningCount() > 0)
    std::cout << " (" << diagnostics.WarningCount() << " warnings)";
  std::cout << "\n";
  return 0;
}

}  // namespace canopy::cli
