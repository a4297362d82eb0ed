#include "build/plan.h"

#include <functional>
#include <map>

#include "core/error.h"
#include "core/text.h"

namespace canopy::build {

BuildPlan PlanBuild(const spec::Mesh& mesh, const std::vector<std::string>& targets) {
  std::vector<const spec::Product*> selected;
  std::vector<std::string> names;
  for (const auto& domain : mesh.domains) {
    names.push_back(domain.name);
    for (const auto& product : domain.products) names.push_back(product.Address());
  }
  if (targets.empty()) {
    for (const auto& domain : mesh.domains) {
      for (const auto& product : domain.products) selected.push_back(&product);
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
