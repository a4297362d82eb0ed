// Who may read what, and how it looks to them (DESIGN §7): the one function that
// decides, for a principal and an output port, denied or allowed, which columns
// are masked how, and which row filter applies — each with its reason.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spec/model.h"

namespace canopy::governance {

// The acting principal with everything a decision reads, resolved from mesh.yaml
// and the domains' owners and members.
struct Principal {
  spec::PrincipalKind kind = spec::PrincipalKind::kUser;  // kUser or kDomain
  std::string name;
  std::vector<std::string> groups;
  std::map<std::string, std::string> attributes;
  std::vector<std::string> clearances;
  std::vector<std::string> domains;  // domains it belongs to (owner, member, or itself)
  bool admin = false;

  std::string ToString() const;  // "user:alice", "domain:finance"
  bool InDomain(const std::string& domain) const;
  bool InGroup(const std::string& group) const;
  bool HasClearance(const std::string& classification) const;
};

// Resolves "alice" / "user:alice" / "domain:finance". Throws Error(kNotFound) for
// someone the mesh does not know.
Principal ResolvePrincipal(const spec::Mesh& mesh, const std::string& name);
// The same for a user, who is also in `extra_groups` (groups an identity provider gave:
// they count for grants, row-filter exemptions and domain membership, never for admin).
Principal ResolvePrincipal(const spec::Mesh& mesh, const std::string& name,
                           const std::vector<std::string>& extra_groups);

// A grant made at run time (an approved access request, `canopy grant`), in
// addition to the standing grants of the product's spec.
struct RuntimeGrant {
  std::string domain;
  std::string product;
  std::string grantee;  // "user:x" | "group:x" | "domain:x"
};

struct ColumnMask {
  std::string column;
  std::string classification;
  spec::MaskMethod method = spec::MaskMethod::kHash;
};

struct PolicyDecision {
  bool allowed = false;
  std::string reason;                     // why allowed or denied, for messages and the audit
  std::vector<ColumnMask> masks;          // columns masked for this reader
  std::optional<std::string> row_filter;  // SQL predicate (AND of the port's filters)
  std::string row_filter_reason;
};

// The decision for `principal` reading `port` of `product`. Pure.
PolicyDecision Decide(const spec::Mesh& mesh, const std::vector<RuntimeGrant>& grants,
                      const Principal& principal, const spec::Product& product,
                      const spec::OutputPort& port);

// A warning for readers of a deprecated product ("… is deprecated (end of life
// 2027-03-31): move to its successor"); empty when the product is not deprecated.
std::string DeprecationWarning(const spec::Product& product);

// Whether `principal` may see that `product` exists (private products are hidden
// from everyone but their domain and admins).
bool CanDiscover(const Principal& principal, const spec::Product& product);

// Whether `principal` may grant and decide access for `product`: an owner of its
// domain, or an admin.
bool CanAdminister(const spec::Mesh& mesh, const Principal& principal,
                   const spec::Product& product);

}  // namespace canopy::governance
