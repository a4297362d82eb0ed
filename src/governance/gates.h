// Publish gates (DESIGN §7): the platform team's rules in mesh.yaml, SQL over views
// of the mesh's metadata; every row a rule returns is a violation.
#pragma once

#include <string>
#include <vector>

#include "governance/policy.h"
#include "spec/model.h"

namespace canopy::governance {

struct GateViolation {
  const spec::GovernanceRule* rule = nullptr;
  std::string domain;   // empty when the row names no domain
  std::string product;  // empty when the row names no product
  std::string row;      // the row, as "col=value, …"
};

// Evaluates every rule against the metadata the specs describe — the state the
// mesh will be in once they are published. The views: domains(domain,
// description), products(domain, product, version, status, type, owner,
// visibility, description), ports(domain, product, port, description),
// columns(domain, product, port, "column", type, classification, required,
// "unique", description), grants(domain, product, grantee). A rule that fails to
// run is reported as one violation whose row is the error.
std::vector<GateViolation> EvaluateGates(const spec::Mesh& mesh,
                                         const std::vector<RuntimeGrant>& grants);

}  // namespace canopy::governance
