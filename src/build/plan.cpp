#include "build/plan.h"

#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "core/text.h"

namespace canopy::build {

BuildPlan PlanBuild(const spec::Mesh& mesh, const std::vector<std::string>& targets,
                    const std::vector<std::string>& domains) {
  std::vector<const spec::Product*> selected;
  std::vector<std::string> names;
  std::vector<std::string> domain_names;
  for (const auto& domain : mesh.domains) {
    names.push_back(domain.name);
    domain_names.push_back(domain.name);
    for (const auto& product : domain.products) names.push_back(product.Address());
  }
  const std::set<std::string> only(domains.begin(), domains.end());
  for (const auto& name : domains) {
    if (mesh.FindDomain(name) == nullptr) {
      std::string hint = DidYouMean(name, domain_names);
      throw Error(ErrorCode::kUsage, "no domain '" + name + "' to build",
                  hint.empty() ? "the domains are " + Join(domain_names, ", ") : hint);
    }
  }
  auto ours = [&](const spec::Product& product) {
    return only.empty() || only.count(product.domain) != 0;
  };
  if (targets.empty()) {
    for (const auto& domain : mesh.domains) {
      for (const auto& product : domain.products) {
        if (ours(product)) selected.push_back(&product);
      }
    }
  }
  for (const auto& target : targets) {
    const auto dot = target.find('.');
    bool found = false;
    if (dot == std::string::npos) {
      if (const spec::Domain* domain = mesh.FindDomain(target)) {
        for (const auto& product : domain->products) selected.push_back(&product);
        found = true;
      }
    } else if (const spec::Product* product =
                   mesh.FindProduct(target.substr(0, dot), target.substr(dot + 1))) {
      selected.push_back(product);
      found = true;
    }
    if (found && !only.empty() && only.count(target.substr(0, dot)) == 0) {
      throw Error(ErrorCode::kUsage,
                  "'" + target + "' is not in " +
                      (only.size() == 1 ? "the domain " : "the domains ") + Join(domains, ", ") +
                      " this build is limited to",
                  "name it with --domain too, or leave it to its domain's runner");
    }
    if (!found) {
      std::string hint = DidYouMean(target, names);
      throw Error(
          ErrorCode::kUsage, "nothing to build named '" + target + "'",
          hint.empty() ? "targets are domains or domain.product: " + Join(names, ", ") : hint);
    }
  }

  BuildPlan plan;
  std::map<const spec::Product*, int> index;
  std::function<int(const spec::Product*)> visit = [&](const spec::Product* product) -> int {
    if (auto it = index.find(product); it != index.end()) return it->second;
    PlannedProduct planned;
    planned.product = product;
    for (const auto& input : product->inputs) {
      if (!input.product) continue;
      auto [upstream, port] = mesh.FindPort(input.product->domain, input.product->port);
      if (upstream == nullptr || upstream == product) continue;  // validation reports these
      if (!ours(*upstream)) continue;                            // read from its published version
      const int at = visit(upstream);
      if (std::find(planned.upstream.begin(), planned.upstream.end(), at) ==
          planned.upstream.end()) {
        planned.upstream.push_back(at);
      }
    }
    const int at = static_cast<int>(plan.products.size());
    plan.products.push_back(std::move(planned));
    index[product] = at;
    return at;
  };
  for (const auto* product : selected) visit(product);
  return plan;
}

}  // namespace canopy::build
