// Checks of a loaded mesh that span files: names, references, cycles, policies.
#pragma once

#include "core/diagnostics.h"
#include "spec/model.h"

namespace canopy::spec {

// Adds every problem of `mesh` to `diagnostics` (all of them, not just the first).
// Pure: reads no files (LoadMesh has done that). Resolves each output port's
// default `from` (the model named like the port) into the returned mesh's ports.
void ValidateMesh(Mesh& mesh, Diagnostics& diagnostics);

// Identifier rules: SQL names (domains, products, ports, models, inputs) are
// [a-z_][a-z0-9_]{0,62}; principal names (users, groups) are [a-z][a-z0-9._-]{0,62}.
bool IsSqlName(const std::string& name);
bool IsPrincipalName(const std::string& name);

}  // namespace canopy::spec
