// Finding and loading a mesh folder (DESIGN §4).
#pragma once

#include <optional>
#include <string>

#include "core/diagnostics.h"
#include "spec/model.h"

namespace canopy::spec {

// The mesh root: `explicit_dir` (--mesh) if given, else $CANOPY_MESH, else the
// nearest folder from the current one upward that holds a mesh.yaml.
// Throws Error(kNotFound) with a hint when there is none.
std::string FindMeshRoot(const std::optional<std::string>& explicit_dir);

// Reads mesh.yaml, every domains/<d>/domain.yaml and domains/<d>/products/*.yaml,
// the SQL files models name and the ODCS documents ports name. File inputs are
// checked to resolve inside their domain folder (no '..', absolute paths or symlinks
// out). Problems go to `diagnostics`; what could be read is returned, so one run
// reports every problem. Properties without a classification get the mesh default.
Mesh LoadMesh(const std::string& root, Diagnostics& diagnostics);

// Where a path a spec names (relative to its domain folder) really points.
enum class PathStatus { kInside, kMissing, kAbsolute, kEscapes, kSymlinkOut };
struct ResolvedPath {
  PathStatus status = PathStatus::kMissing;
  std::string absolute;  // the resolved path (meaningful for kInside and kMissing)
};
ResolvedPath ResolveInside(const std::string& folder, const std::string& relative);

}  // namespace canopy::spec
