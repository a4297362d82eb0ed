// Everything `canopy validate` checks of a loaded mesh, for the command line and for the
// server's saves alike.
#pragma once

#include "core/diagnostics.h"
#include "spec/model.h"

namespace canopy::build {

// ValidateMesh, then (when that finds no error) the global rules (publish gates) over the
// specs and standing grants, and classification following the data where the lineage is
// known from the specs alone. Every problem goes to `diagnostics`, sorted.
void CheckMesh(spec::Mesh& mesh, Diagnostics& diagnostics);

}  // namespace canopy::build
