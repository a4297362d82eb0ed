// Internal to cli: what most commands start from — the mesh, validated, and its
// catalog, opened and in step with the specs.
#pragma once

#include <memory>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "spec/model.h"

namespace canopy::cli {

struct MeshSession {
  spec::Mesh mesh;
  std::unique_ptr<catalog::CatalogStore> catalog;
  std::string catalog_location;  // what OpenCatalog was given
  std::string seal_folder;       // the storage root: a PostgreSQL catalog's audit key is here
};

// Finds, loads and validates the mesh (printing its diagnostics; an invalid mesh is
// Error(kInvalidInput)), then opens the catalog: $CANOPY_CATALOG, or mesh.yaml's
// `catalog:` (a postgresql:// URL), or <storage>/catalog.db. A catalog at an older
// schema version is refused unless `upgrade` is kApply (`canopy catalog upgrade`).
MeshSession OpenMesh(const GlobalOptions& global,
                     catalog::Upgrade upgrade = catalog::Upgrade::kRefuse);

// The product a command names as domain.product; Error(kNotFound) with "did you mean".
const spec::Product& ProductArgument(const spec::Mesh& mesh, const std::string& address);

}  // namespace canopy::cli
