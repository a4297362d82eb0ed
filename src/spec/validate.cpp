#include "spec/validate.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "spec/chart_sql.h"

namespace canopy::spec {
namespace {

class Validator {
 public:
  Validator(Mesh& mesh, Diagnostics& diagnostics) : mesh_(mesh), d_(diagnostics) {}

  void Run() {
    CheckMesh();
    CheckPrincipals();
    CheckGovernance();
    CollectPorts();
    for (auto& domain : mesh_.domains) {
      CheckDomain(domain);
      std::set<std::string> product_names;
      for (auto& product : domain.products) CheckProduct(domain, product);
      for (const auto& dashboard : domain.dashboards) CheckDashboard(domain, dashboard);
    }
    CheckCycles();
  }

 private:
  void SqlName(const std::string& name, const std::string& what, const SourceLocation& at) {
    if (name.empty() || IsSqlName(name)) return;
    d_.Error(at, what + " '" + name + "' is not a valid name",
             "use lowercase letters, digits and _ (starting with a letter or _), at most 63 "
             "characters, e.g. '" +
                 Suggest(name) + "'");
  }

  static std::string Suggest(const std::string& name) {
    std::string out;
    for (char c : ToLower(name)) {
      out += (std::isalnum(static_cast<unsigned char>(c)) != 0) ? c : '_';
    }
    if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0])) != 0) out = "_" + out;
    return out.substr(0, 63);
  }

  void CheckMesh() {
    SqlName(mesh_.name, "mesh name", mesh_.location);
    if (mesh_.domains.empty()) {
      d_.Warning({"mesh.yaml", 0, 0}, "the mesh has no domains",
                 "add domains/<name>/domain.yaml and products under domains/<name>/products/");
    }
    std::map<std::string, const Domain*> seen;
    for (const auto& domain : mesh_.domains) {
      SqlName(domain.name, "domain name", domain.location);
    }
  }

  void CheckPrincipals() {
    const auto& p = mesh_.principals;
    std::map<std::string, SourceLocation> users;
    for (const auto& user : p.users) {
      if (!user.name.empty() && !IsPrincipalName(user.name)) {
        d_.Error(user.location, "user name '" + user.name + "' is not valid",
                 "use lowercase letters, digits, '.', '_' and '-', starting with a letter");
      }
      if (!users.emplace(user.name, user.location).second) {
        d_.Error(user.location, "user '" + user.name + "' is declared twice",
                 "first declared at " + users[user.name].ToString());
      }
      for (const auto& group : user.groups) {
        if (mesh_.FindGroup(group) == nullptr) UnknownGroup(group, user.location);
      }
      for (const auto& clearance : user.clearances) CheckClassification(clearance, user.location);
    }
    std::map<std::string, SourceLocation> groups;
    for (const auto& group : p.groups) {
      if (!group.name.empty() && !IsPrincipalName(group.name)) {
        d_.Error(group.location, "group name '" + group.name + "' is not valid",
                 "use lowercase letters, digits, '.', '_' and '-', starting with a letter");
      }
      if (!groups.emplace(group.name, group.location).second) {
        d_.Error(group.location, "group '" + group.name + "' is declared twice",
                 "first declared at " + groups[group.name].ToString());
      }
      if (users.count(group.name) != 0) {
        // Allowed, since refs are typed (user:x / group:x), but worth knowing.
      }
    }
    std::set<std::string> domains;
    for (const auto& domain : p.domains) {
      if (!domains.insert(domain.name).second) {
        d_.Error(domain.location, "domain '" + domain.name + "' is given clearances twice",
                 "merge the two entries");
      }
      if (mesh_.FindDomain(domain.name) == nullptr) UnknownDomain(domain.name, domain.location);
      for (const auto& clearance : domain.clearances) {
        CheckClassification(clearance, domain.location);
      }
    }
  }

  void CheckGovernance() {
    const auto& g = mesh_.governance;
    if (g.classifications.empty()) {
      d_.Error(g.location, "governance.classifications is empty",
               "list the classification values columns may carry, e.g. [public, internal, pii]");
    }
    std::set<std::string> seen;
    for (const auto& classification : g.classifications) {
      if (!seen.insert(classification).second) {
        d_.Error(g.location, "classification '" + classification + "' is listed twice");
      }
    }
    CheckClassification(g.default_classification, g.location, "defaultClassification");
    std::set<std::string> masked;
    for (const auto& mask : g.masks) {
      CheckClassification(mask.classification, mask.location);
      if (!masked.insert(mask.classification).second) {
        d_.Error(mask.location, "classification '" + mask.classification + "' has two masks",
                 "keep one mask per classification");
      }
    }
    std::set<std::string> rules;
    for (const auto& rule : g.rules) {
      if (!rules.insert(rule.name).second) {
        d_.Error(rule.location, "governance rule '" + rule.name + "' is declared twice",
                 "give each rule its own name");
      }
    }
  }

  void CheckClassification(const std::string& value, const SourceLocation& at,
                           const std::string& what = "classification") {
    const auto& list = mesh_.governance.classifications;
    if (value.empty() || std::find(list.begin(), list.end(), value) != list.end()) return;
    std::string hint = DidYouMean(value, list);
    if (hint.empty()) {
      hint = "the mesh allows " + Join(list, ", ") +
             "; add it to governance.classifications in mesh.yaml to allow it";
    }
    d_.Error(at, what + " '" + value + "' is not one of the mesh's classifications", hint);
  }

  std::vector<std::string> UserNames() const {
    std::vector<std::string> names;
    for (const auto& user : mesh_.principals.users) names.push_back(user.name);
    return names;
  }
  std::vector<std::string> GroupNames() const {
    std::vector<std::string> names;
    for (const auto& group : mesh_.principals.groups) names.push_back(group.name);
    return names;
  }
  std::vector<std::string> DomainNames() const {
    std::vector<std::string> names;
    for (const auto& domain : mesh_.domains) names.push_back(domain.name);
    return names;
  }

  void UnknownUser(const std::string& name, const SourceLocation& at) {
    std::string hint = DidYouMean(name, UserNames());
    d_.Error(at, "unknown user '" + name + "'",
             hint.empty() ? "declare it under principals.users in mesh.yaml" : hint);
  }
  void UnknownGroup(const std::string& name, const SourceLocation& at) {
    std::string hint = DidYouMean(name, GroupNames());
    d_.Error(at, "unknown group '" + name + "'",
             hint.empty() ? "declare it under principals.groups in mesh.yaml" : hint);
  }
  void UnknownDomain(const std::string& name, const SourceLocation& at) {
    std::string hint = DidYouMean(name, DomainNames());
    d_.Error(
        at, "unknown domain '" + name + "'",
        hint.empty()
            ? "domains are the folders under domains/ (known: " + Join(DomainNames(), ", ") + ")"
            : hint);
  }

  void CheckPrincipalRef(const PrincipalRef& ref) {
    switch (ref.kind) {
      case PrincipalKind::kUser:
        if (mesh_.FindUser(ref.name) == nullptr) UnknownUser(ref.name, ref.location);
        break;
      case PrincipalKind::kGroup:
        if (mesh_.FindGroup(ref.name) == nullptr) UnknownGroup(ref.name, ref.location);
        break;
      case PrincipalKind::kDomain:
        if (mesh_.FindDomain(ref.name) == nullptr) UnknownDomain(ref.name, ref.location);
        break;
    }
  }

  // Every SQL name (domain.port) → its first declaration; duplicates are errors.
  void CollectPorts() {
    for (const auto& domain : mesh_.domains) {
      for (const auto& product : domain.products) {
        for (const auto& port : product.outputs) {
          if (port.name.empty()) continue;
          const std::string sql_name = domain.name + "." + port.name;
          auto [it, inserted] = ports_.emplace(sql_name, &port);
          if (!inserted) {
            d_.Error(port.location,
                     "SQL name '" + sql_name + "' is already published by another port",
                     "first declared at " + it->second->location.ToString() +
                         "; port names are unique in a domain — rename one");
          }
          port_owner_.emplace(sql_name, &product);
        }
      }
    }
  }

  void CheckDomain(const Domain& domain) {
    for (const auto& owner : domain.owners) {
      if (mesh_.FindUser(owner) == nullptr) UnknownUser(owner, domain.location);
    }
    for (const auto& member : domain.members) {
      if (member.kind == PrincipalKind::kDomain) {
        d_.Error(member.location, "a domain cannot be a member of another domain",
                 "grant it access to the products it needs instead");
        continue;
      }
      CheckPrincipalRef(member);
    }
    std::map<std::string, const Product*> products;
    for (const auto& product : domain.products) {
      auto [it, inserted] = products.emplace(product.name, &product);
      if (!inserted && !product.name.empty()) {
        d_.Error(product.location,
                 "product '" + product.name + "' is declared twice in domain '" + domain.name + "'",
                 "first declared in " + it->second->file);
      }
    }
  }

  // A dashboard: its names, owner and charts. Its queries are checked by the guard
  // (build::CheckMesh), as each viewer's will be.
  void CheckDashboard(const Domain& domain, const Dashboard& dashboard) {
    SqlName(dashboard.name, "dashboard name", dashboard.location);
    bool product_named = false;
    for (const auto& product : domain.products) product_named |= product.name == dashboard.name;
    if (product_named) {
      d_.Error(
          dashboard.location,
          "dashboard '" + dashboard.Address() + "' has the name of a product of " + domain.name,
          "products and dashboards share the marketplace's names: rename the dashboard");
    }
    int same = 0;
    for (const auto& other : domain.dashboards) same += other.name == dashboard.name ? 1 : 0;
    if (same > 1) {
      d_.Error(dashboard.location,
               "two dashboards of " + domain.name + " are named " + dashboard.name);
    }
    if (!dashboard.owner.empty() && mesh_.FindUser(dashboard.owner) == nullptr) {
      UnknownUser(dashboard.owner, dashboard.location);
    }
    if (dashboard.charts.empty()) {
      d_.Error(dashboard.location, "dashboard '" + dashboard.Address() + "' has no charts",
               "add charts: [{ name, title, sql, vegaLite }]");
    }
    std::set<std::string> charts;
    for (const auto& chart : dashboard.charts) {
      SqlName(chart.name, "chart name", chart.location);
      if (!charts.insert(chart.name).second) {
        d_.Error(chart.location,
                 "two charts of " + dashboard.Address() + " are named " + chart.name,
                 "give each chart its own name");
      }
      if (chart.x + chart.width > dashboard.columns) {
        d_.Error(chart.location,
                 "chart '" + chart.name + "' reaches past the layout's " +
                     std::to_string(dashboard.columns) + " column(s)",
                 "make it narrower, move it left, or widen the layout (layout: { columns: N })");
      }
    }
    std::set<std::string> filters;
    for (const auto& filter : dashboard.filters) {
      SqlName(filter.name, "filter name", filter.location);
      if (!filters.insert(filter.name).second) {
        d_.Error(filter.location,
                 "two filters of " + dashboard.Address() + " are named " + filter.name);
      }
    }
    // Filters a chart's SQL places itself: well formed, and the dashboard's own.
    for (const auto& chart : dashboard.charts) {
      std::set<std::string> named;
      try {
        ExpandChartSql(chart.sql, {}, &named);
      } catch (const Error& e) {
        d_.Error(chart.sql_location,
                 "chart '" + chart.name + "' of " + dashboard.Address() + ": " + e.what(),
                 e.hint());
        continue;
      }
      for (const auto& name : named) {
        if (filters.count(name) == 0) {
          d_.Error(chart.sql_location,
                   "chart '" + chart.name + "' of " + dashboard.Address() +
                       " names no filter of the dashboard: {{" + name + "}}",
                   filters.empty()
                       ? std::string("add it under filters: [{ name, column, label }]")
                       : "the dashboard's filters are " +
                             Join(std::vector<std::string>(filters.begin(), filters.end()), ", "));
        }
      }
    }
  }

  void CheckProduct(const Domain& domain, Product& product) {
    SqlName(product.name, "product name", product.location);
    if (!product.owner.empty() && mesh_.FindUser(product.owner) == nullptr) {
      UnknownUser(product.owner, product.location);
    }
    for (const auto& grant : product.grants) {
      CheckPrincipalRef(grant);
      if (product.visibility == Visibility::kPrivate) {
        d_.Error(grant.location, "private product '" + product.Address() + "' has a grant",
                 "private products are for their domain and admins only; make it "
                 "visibility: internal to share it");
      }
    }

    // Inputs and models share one namespace inside the product's sandbox.
    std::map<std::string, SourceLocation> names;
    auto declare = [&](const std::string& name, const std::string& what, const SourceLocation& at) {
      if (name.empty()) return;
      SqlName(name, what, at);
      auto [it, inserted] = names.emplace(name, at);
      if (!inserted) {
        d_.Error(
            at, what + " '" + name + "' uses a name already taken in this product",
            "first used at " + it->second.ToString() + "; inputs and models share one namespace");
      }
    };
    for (const auto& input : product.inputs) {
      declare(input.name, "input", input.location);
      if (!input.product) continue;
      const std::string sql_name = input.product->ToString();
      auto it = port_owner_.find(sql_name);
      if (it == port_owner_.end()) {
        std::vector<std::string> known;
        for (const auto& [name, port] : ports_) known.push_back(name);
        std::string hint = DidYouMean(sql_name, known);
        d_.Error(input.product->location,
                 "input '" + input.name + "' reads '" + sql_name + "', which no product publishes",
                 hint.empty() ? "name an output port as domain.port" : hint);
      } else if (it->second == &product) {
        d_.Error(input.product->location,
                 "product '" + product.Address() + "' reads its own output '" + sql_name + "'",
                 "use the model that computes it by name instead");
      } else {
        const Product& upstream = *it->second;
        if (upstream.visibility == Visibility::kPrivate && upstream.domain != domain.name) {
          d_.Error(input.product->location,
                   "'" + sql_name + "' is private to domain '" + upstream.domain + "'",
                   "ask its owner (" + upstream.owner +
                       ") to make it internal and grant "
                       "domain:" +
                       domain.name);
        }
        edges_[&product].push_back({&upstream, input.product->location});
      }
    }
    std::map<std::string, const Model*> models;
    for (const auto& model : product.transform) {
      declare(model.name, "model", model.location);
      models.emplace(model.name, &model);
    }

    std::set<std::string> port_names;
    for (auto& port : product.outputs) {
      SqlName(port.name, "output port name", port.location);
      port_names.insert(port.name);
      if (port.from.empty() && models.count(port.name) != 0) port.from = port.name;
      if (port.from.empty()) {
        if (product.status != ProductStatus::kDraft) {
          d_.Error(port.location,
                   "output port '" + port.name +
                       "' does not say which model it "
                       "publishes",
                   "add from: <model name>");
        }
      } else if (models.count(port.from) == 0) {
        std::vector<std::string> model_names;
        for (const auto& [name, model] : models) model_names.push_back(name);
        std::string hint = DidYouMean(port.from, model_names);
        d_.Error(port.location,
                 "output port '" + port.name + "' publishes model '" + port.from +
                     "', which the transform does not define",
                 hint.empty() ? "models: " + Join(model_names, ", ") : hint);
      }
      CheckContract(port.contract);
    }

    for (const auto& filter : product.row_filters) {
      if (!filter.output.empty() && port_names.count(filter.output) == 0) {
        std::vector<std::string> ports(port_names.begin(), port_names.end());
        std::string hint = DidYouMean(filter.output, ports);
        d_.Error(
            filter.location,
            "row filter names output '" + filter.output + "', which this product does not publish",
            hint.empty() ? "outputs: " + Join(ports, ", ") : hint);
      }
      for (const auto& exempt : filter.exempt) CheckPrincipalRef(exempt);
    }
  }

  void CheckContract(const Contract& contract) {
    std::map<std::string, SourceLocation> seen;
    for (const auto& property : contract.properties) {
      if (property.name.empty()) continue;
      auto [it, inserted] = seen.emplace(ToLower(property.name), property.location);
      if (!inserted) {
        d_.Error(property.location, "column '" + property.name + "' is in the contract twice",
                 "first at " + it->second.ToString() + " (column names are case-insensitive)");
      }
      if (property.classification_given) {
        CheckClassification(property.classification, property.classification_location);
      }
    }
    for (const auto& rule : contract.quality) {
      for (const auto& column : rule.properties) {
        if (seen.count(ToLower(column)) == 0) {
          d_.Error(rule.location,
                   "quality rule names column '" + column + "', which the contract does not have");
        }
      }
    }
  }

  void CheckCycles() {
    enum class Mark { kNew, kActive, kDone };
    std::map<const Product*, Mark> marks;
    std::vector<const Product*> stack;
    std::set<std::set<const Product*>> reported;
    std::function<void(const Product*)> visit = [&](const Product* product) {
      marks[product] = Mark::kActive;
      stack.push_back(product);
      for (const auto& edge : edges_[product]) {
        const Mark mark = marks[edge.upstream];
        if (mark == Mark::kActive) {
          auto begin = std::find(stack.begin(), stack.end(), edge.upstream);
          std::vector<std::string> names;
          std::set<const Product*> members(begin, stack.end());
          for (auto it = begin; it != stack.end(); ++it) names.push_back((*it)->Address());
          names.push_back(edge.upstream->Address());
          if (reported.insert(members).second) {
            d_.Error(edge.location,
                     "products depend on each other in a cycle: " + Join(names, " -> "),
                     "a product cannot read, directly or through others, what it publishes; "
                     "break the cycle");
          }
        } else if (mark == Mark::kNew) {
          visit(edge.upstream);
        }
      }
      stack.pop_back();
      marks[product] = Mark::kDone;
    };
    for (const auto& domain : mesh_.domains) {
      for (const auto& product : domain.products) {
        if (marks[&product] == Mark::kNew) visit(&product);
      }
    }
  }

  struct Edge {
    const Product* upstream;
    SourceLocation location;
  };

  Mesh& mesh_;
  Diagnostics& d_;
  std::map<std::string, const OutputPort*> ports_;
  std::map<std::string, const Product*> port_owner_;
  std::map<const Product*, std::vector<Edge>> edges_;
};

bool Matches(const std::string& name, bool (*first)(char), bool (*rest)(char)) {
  if (name.empty() || name.size() > 63 || !first(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(), rest);
}

bool IsLowerAlpha(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

bool IsSqlName(const std::string& name) {
  return Matches(
      name, [](char c) { return IsLowerAlpha(c) || c == '_'; },
      [](char c) { return IsLowerAlpha(c) || IsDigit(c) || c == '_'; });
}

bool IsPrincipalName(const std::string& name) {
  return Matches(
      name, [](char c) { return IsLowerAlpha(c); },
      [](char c) { return IsLowerAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '.'; });
}

void ValidateMesh(Mesh& mesh, Diagnostics& diagnostics) {
  Validator(mesh, diagnostics).Run();
  // The identity provider's keys, when read from a file, must be there to read.
  if (mesh.auth.oidc && !mesh.auth.oidc->jwks_file.empty()) {
    const std::filesystem::path file = std::filesystem::path(mesh.root) / mesh.auth.oidc->jwks_file;
    std::error_code error;
    if (!std::filesystem::is_regular_file(file, error)) {
      diagnostics.Error(mesh.auth.oidc->jwks_location,
                        "jwks_file '" + mesh.auth.oidc->jwks_file + "' is not a file",
                        "save the provider's JWKS document (its jwks_uri) there, or give "
                        "jwks_url instead");
    }
  }
}

}  // namespace canopy::spec
