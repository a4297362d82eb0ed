#include "cli/session.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "build/runner.h"
#include "core/error.h"
#include "core/text.h"
#include "spec/loader.h"
#include "spec/validate.h"

namespace canopy::cli {

const spec::Product& ProductArgument(const spec::Mesh& mesh, const std::string& address) {
  const auto dot = address.find('.');
  if (dot != std::string::npos) {
    if (const spec::Product* product =
            mesh.FindProduct(address.substr(0, dot), address.substr(dot + 1))) {
      return *product;
    }
  }
  std::vector<std::string> names;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) names.push_back(product.Address());
  }
  std::string hint = DidYouMean(address, names);
  throw Error(
      ErrorCode::kNotFound, "no product '" + address + "'",
      hint.empty() ? "products are named domain.product; `canopy products` lists them" : hint);
}

MeshSession OpenMesh(const GlobalOptions& global, catalog::Upgrade upgrade) {
  MeshSession session;
  const std::string root = spec::FindMeshRoot(global.mesh);
  Diagnostics diagnostics;
  session.mesh = spec::LoadMesh(root, diagnostics);
  spec::ValidateMesh(session.mesh, diagnostics);
  diagnostics.Sort();
  const std::string prefix = DisplayPrefix(root);
  for (const auto& d : diagnostics.items()) std::cerr << d.Format(prefix) << "\n";
  if (diagnostics.HasErrors()) {
    throw Error(ErrorCode::kInvalidInput,
                "the mesh has " + std::to_string(diagnostics.ErrorCount()) + " error(s)",
                "fix them (canopy validate lists them) and run the command again");
  }
  std::string location;
  if (const char* env = std::getenv("CANOPY_CATALOG"); env != nullptr && *env != '\0') {
    location = env;
  } else if (session.mesh.catalog == "sqlite") {
    location = (std::filesystem::path(build::StorageRoot(session.mesh)) / "catalog.db").string();
  } else {
    location = session.mesh.catalog;
  }
  session.seal_folder = build::StorageRoot(session.mesh);
  session.catalog = catalog::OpenCatalog(location, session.seal_folder, upgrade);
  session.catalog_location = location;
  build::SyncCatalogWithSpec(session.mesh, *session.catalog);
  return session;
}

}  // namespace canopy::cli
