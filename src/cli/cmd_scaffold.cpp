#include <iomanip>
#include <iostream>

#include "cli/commands.h"
#include "core/diagnostics.h"
#include "scaffold/scaffold.h"
#include "spec/loader.h"
#include "spec/validate.h"

namespace canopy::cli {
namespace {

// Validates a mesh just written; it must be valid, or Canopy has a bug.
int ValidateWritten(const std::string& dir) {
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(spec::FindMeshRoot(dir), diagnostics);
  spec::ValidateMesh(mesh, diagnostics);
  diagnostics.Sort();
  for (const auto& d : diagnostics.items()) std::cerr << d.Format(DisplayPrefix(mesh.root)) << "\n";
  if (diagnostics.HasErrors()) {
    std::cerr << "error: internal: the mesh Canopy wrote is not valid\n";
    return 1;
  }
  return 0;
}

}  // namespace

int RunInit(const std::string& dir, const std::string& domain, const std::string& owner,
            const std::string& name) {
  scaffold::InitOptions options;
  options.domain = domain;
  options.owner = owner;
  options.mesh_name = name;
  auto files = scaffold::WriteInitMesh(dir, options);
  for (const auto& file : files) std::cout << "  wrote " << dir << "/" << file << "\n";
  if (int code = ValidateWritten(dir); code != 0) return code;
  std::cout << "\nA new mesh is in " << dir << ". Next:\n"
            << "  cd " << dir << "\n"
            << "  canopy validate          # check every spec\n"
            << "  edit domains/" << domain << "/products/orders.yaml, or add a product beside it\n";
  return 0;
}

int RunExample(const std::string& dir, double scale, bool overwrite) {
  auto report = scaffold::WriteExampleMesh(dir, scale, overwrite);
  std::cout << "wrote the example mesh to " << dir << " (" << report.files.size()
            << " spec files)\n";
  std::cout << "generated its data at scale " << scale << " in " << std::fixed
            << std::setprecision(2) << report.seconds << " s:\n";
  for (const auto& file : report.data) std::cout << "  " << file << "\n";
  if (int code = ValidateWritten(dir); code != 0) return code;
  std::cout << "\nNext: cd " << dir << " && canopy validate   (the tour is in " << dir
            << "/README.md)\n";
  return 0;
}

}  // namespace canopy::cli
