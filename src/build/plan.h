// Planning a build: which products, in which order, each after its upstreams.
#pragma once

#include <string>
#include <vector>

#include "spec/model.h"

namespace canopy::build {

struct PlannedProduct {
  const spec::Product* product = nullptr;
  std::vector<int> upstream;  // indices into BuildPlan::products, all earlier
};

// Products in a topological order: every product comes after all it reads.
struct BuildPlan {
  std::vector<PlannedProduct> products;
};

// Plans the targets (empty: the whole mesh; "domain" or "domain.product") and every
// product they read, transitively. The mesh must be valid (no cycles). Throws
// Error(kUsage) naming an unknown target, with "did you mean".
//
// With `domains` (a domain's runner), only those domains' products are planned: the
// targets default to all of them and must lie within them, and an upstream of another
// domain is read from its published version instead of being planned.
BuildPlan PlanBuild(const spec::Mesh& mesh, const std::vector<std::string>& targets,
                    const std::vector<std::string>& domains = {});

}  // namespace canopy::build
