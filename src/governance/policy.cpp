#include "governance/policy.h"

#include <algorithm>

#include "core/error.h"
#include "core/text.h"
#include "governance/governed.h"

namespace canopy::governance {
namespace {

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// Whether `ref` (user:x / group:x / domain:x) names this principal.
bool Matches(const Principal& principal, spec::PrincipalKind kind, const std::string& name) {
  switch (kind) {
    case spec::PrincipalKind::kUser:
      return principal.kind == spec::PrincipalKind::kUser && principal.name == name;
    case spec::PrincipalKind::kGroup:
      return principal.InGroup(name);
    case spec::PrincipalKind::kDomain:
      return principal.InDomain(name);
  }
  return false;
}

std::optional<std::pair<spec::PrincipalKind, std::string>> ParseGrantee(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  const std::string kind = text.substr(0, colon);
  const std::string name = text.substr(colon + 1);
  if (kind == "user") return std::make_pair(spec::PrincipalKind::kUser, name);
  if (kind == "group") return std::make_pair(spec::PrincipalKind::kGroup, name);
  if (kind == "domain") return std::make_pair(spec::PrincipalKind::kDomain, name);
  return std::nullopt;
}

}  // namespace

std::string Principal::ToString() const {
  return (kind == spec::PrincipalKind::kDomain ? "domain:" : "user:") + name;
}

bool Principal::InDomain(const std::string& domain) const {
  return Contains(domains, domain);
}
bool Principal::InGroup(const std::string& group) const {
  return Contains(groups, group);
}
bool Principal::HasClearance(const std::string& classification) const {
  return Contains(clearances, classification);
}

Principal ResolvePrincipal(const spec::Mesh& mesh, const std::string& text) {
  return ResolvePrincipal(mesh, text, {});
}

Principal ResolvePrincipal(const spec::Mesh& mesh, const std::string& text,
                           const std::vector<std::string>& extra_groups) {
  Principal principal;
  std::string name = text;
  if (text.rfind("domain:", 0) == 0) {
    name = text.substr(7);
    const spec::Domain* domain = mesh.FindDomain(name);
    if (domain == nullptr) {
      throw Error(ErrorCode::kNotFound, "no domain '" + name + "' in the mesh");
    }
    principal.kind = spec::PrincipalKind::kDomain;
    principal.name = name;
    principal.domains = {name};
    for (const auto& grantee : mesh.principals.domains) {
      if (grantee.name == name) principal.clearances = grantee.clearances;
    }
    return principal;
  }
  if (text.rfind("user:", 0) == 0) name = text.substr(5);
  const spec::User* user = mesh.FindUser(name);
  if (user == nullptr) {
    std::vector<std::string> users;
    for (const auto& u : mesh.principals.users) users.push_back(u.name);
    std::string hint = DidYouMean(name, users);
    throw Error(ErrorCode::kNotFound, "no user '" + name + "' in the mesh",
                hint.empty() ? "users are declared under principals.users in mesh.yaml" : hint);
  }
  principal.name = user->name;
  principal.groups = user->groups;
  for (const auto& group : extra_groups) {
    if (!principal.InGroup(group)) principal.groups.push_back(group);
  }
  principal.attributes = user->attributes;
  principal.clearances = user->clearances;
  for (const auto& group : user->groups) {
    const spec::Group* g = mesh.FindGroup(group);
    if (g != nullptr && g->admin) principal.admin = true;
  }
  for (const auto& domain : mesh.domains) {
    bool member = Contains(domain.owners, user->name);
    for (const auto& ref : domain.members) {
      member = member || (ref.kind == spec::PrincipalKind::kUser && ref.name == user->name) ||
               (ref.kind == spec::PrincipalKind::kGroup && principal.InGroup(ref.name));
    }
    if (member) principal.domains.push_back(domain.name);
  }
  return principal;
}

std::string DeprecationWarning(const spec::Product& product) {
  if (product.status != spec::ProductStatus::kDeprecated) return "";
  std::string end_of_life;
  for (const auto& port : product.outputs) {
    for (const auto& sla : port.sla) {
      if (sla.property == "endOfLife" && end_of_life.empty()) end_of_life = sla.value;
    }
  }
  return product.Address() + " is deprecated" +
         (end_of_life.empty() ? "" : " (end of life " + end_of_life + ")") + "; ask its owner (" +
         product.owner + ") what replaces it";
}

bool CanDiscover(const Principal& principal, const spec::Product& product) {
  return product.visibility != spec::Visibility::kPrivate || principal.admin ||
         principal.InDomain(product.domain);
}

bool CanAdminister(const spec::Mesh& mesh, const Principal& principal,
                   const spec::Product& product) {
  if (principal.admin) return true;
  if (principal.kind != spec::PrincipalKind::kUser) return false;
  const spec::Domain* domain = mesh.FindDomain(product.domain);
  return domain != nullptr && Contains(domain->owners, principal.name);
}

PolicyDecision Decide(const spec::Mesh& mesh, const std::vector<RuntimeGrant>& grants,
                      const Principal& principal, const spec::Product& product,
                      const spec::OutputPort& port) {
  PolicyDecision decision;
  const bool inside = principal.InDomain(product.domain);
  const std::string sql_name = product.domain + "." + port.name;

  // 1. May it read at all?
  if (inside) {
    decision.allowed = true;
    decision.reason = principal.ToString() + " belongs to domain " + product.domain;
  } else if (principal.admin) {
    decision.allowed = true;
    decision.reason = principal.ToString() + " is an admin";
  } else if (product.visibility == spec::Visibility::kPrivate) {
    decision.reason = sql_name + " is private to domain " + product.domain;
  } else if (product.visibility == spec::Visibility::kPublic) {
    decision.allowed = true;
    decision.reason = product.Address() + " is public";
  } else {
    for (const auto& grant : product.grants) {
      if (Matches(principal, grant.kind, grant.name)) {
        decision.allowed = true;
        decision.reason = "standing grant to " + grant.ToString() + " in " + product.file;
        break;
      }
    }
    for (const auto& grant : grants) {
      if (decision.allowed) break;
      if (grant.domain != product.domain || grant.product != product.name) continue;
      auto grantee = ParseGrantee(grant.grantee);
      if (grantee && Matches(principal, grantee->first, grantee->second)) {
        decision.allowed = true;
        decision.reason = "grant to " + grant.grantee;
      }
    }
    if (!decision.allowed) {
      decision.reason =
          principal.ToString() + " has no grant on " + product.Address() + " (internal)";
    }
  }
  if (!decision.allowed) return decision;

  // 2. Masks: central, by classification, for every reader without the clearance — the
  // owning domain's people included (membership lends no clearance). Only the owning
  // domain's own pipelines (domain:<name>, building from what the domain holds anyway)
  // read its ports unmasked; other domains' pipelines by the clearances mesh.yaml gives.
  const bool own_pipeline =
      principal.kind == spec::PrincipalKind::kDomain && principal.name == product.domain;
  if (!own_pipeline) {
    for (const auto& property : port.contract.properties) {
      for (const auto& mask : mesh.governance.masks) {
        if (mask.classification != property.classification) continue;
        if (principal.HasClearance(mask.classification)) continue;
        decision.masks.push_back({property.name, mask.classification, mask.method});
      }
    }
  }

  // 3. Row filters: local, for readers outside the domain unless exempt.
  if (!inside) {
    std::vector<std::string> predicates;
    for (const auto& filter : product.row_filters) {
      if (filter.output != port.name) continue;
      bool exempt = false;
      for (const auto& ref : filter.exempt)
        exempt = exempt || Matches(principal, ref.kind, ref.name);
      if (exempt) continue;
      predicates.push_back("(" + filter.where + ")");
    }
    if (!predicates.empty()) {
      decision.row_filter = BindPrincipal(Join(predicates, " AND "), principal);
      decision.row_filter_reason =
          "row filter of " + product.Address() + " for readers outside " + product.domain;
    }
  }
  return decision;
}

}  // namespace canopy::governance
