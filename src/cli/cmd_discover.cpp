// canopy products, show and search.
#include <iostream>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "build/lineage_step.h"
#include "build/runner.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "cli/table.h"
#include "contract/diff.h"
#include "core/error.h"
#include "core/text.h"
#include "server/dashboard_api.h"
#include "server/product_json.h"
#include "spec/loader.h"
#include "standards/standards.h"

namespace canopy::cli {
namespace {

using nlohmann::json;

json Nullable(const std::optional<std::string>& value) {
  return value ? json(*value) : json(nullptr);
}

// The product as `canopy show --format json` gives it (DESIGN §5). Columns come from
// the live version when there is one, else from the contract.
json ProductJson(const spec::Product& product, const catalog::ProductDetail& detail) {
  const auto& summary = detail.summary;
  json out = {{"domain", product.domain},
              {"name", product.name},
              {"version", product.version.ToString()},
              {"status", spec::ToString(product.status)},
              {"type", spec::ToString(product.type)},
              {"owner", product.owner},
              {"visibility", spec::ToString(product.visibility)},
              {"description",
               {{"purpose", product.description.purpose},
                {"usage", product.description.usage},
                {"limitations", product.description.limitations}}},
              {"tags", product.tags},
              {"build_id", Nullable(summary.build_id)},
              {"live_version", Nullable(summary.live_version)},
              {"published_at", Nullable(summary.published_at)}};
  const catalog::LiveVersion* live = detail.live ? &*detail.live : nullptr;
  out["outputs"] = server::OutputsJson(product, live);
  out["quality"] = server::QualityJson(live);
  out["history"] = server::HistoryJson(&detail);
  return out;
}

}  // namespace

int RunProducts(const GlobalOptions& global, OutputFormat format) {
  MeshSession session = OpenMesh(global);
  auto products = session.catalog->ListProducts();
  if (format == OutputFormat::kJson) {
    json out = json::array();
    for (const auto& p : products) {
      out.push_back({{"domain", p.product.domain},
                     {"name", p.product.name},
                     {"version", p.product.version},
                     {"status", p.product.status},
                     {"type", p.product.type},
                     {"owner", p.product.owner},
                     {"visibility", p.product.visibility},
                     {"build_id", Nullable(p.build_id)},
                     {"published_at", Nullable(p.published_at)}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  Table table({"product", "version", "status", "type", "owner", "visibility", "published"});
  for (const auto& p : products) {
    table.AddRow({p.product.domain + "." + p.product.name, p.product.version, p.product.status,
                  p.product.type, p.product.owner, p.product.visibility,
                  p.published_at.value_or("never")});
  }
  table.Print(std::cout);
  return 0;
}

int RunShow(const GlobalOptions& global, const std::string& address, OutputFormat format) {
  MeshSession session = OpenMesh(global);
  const spec::Product& product = ProductArgument(session.mesh, address);
  const std::string& domain = product.domain;
  const std::string& name = product.name;
  auto detail = session.catalog->GetProduct(domain, name);
  if (!detail) throw Error(ErrorCode::kInternal, "product " + address + " is not in the catalog");
  json out = ProductJson(product, *detail);
  if (format == OutputFormat::kJson) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << product.Address() << "  " << out["version"].get<std::string>() << "  ("
            << out["status"].get<std::string>() << ", " << out["type"].get<std::string>() << ", "
            << out["visibility"].get<std::string>() << ")\n";
  std::cout << "owner: " << product.owner << "\n";
  if (!product.description.purpose.empty()) {
    std::cout << "purpose: " << product.description.purpose << "\n";
  }
  if (!product.description.usage.empty())
    std::cout << "usage: " << product.description.usage << "\n";
  if (!product.description.limitations.empty()) {
    std::cout << "limitations: " << product.description.limitations << "\n";
  }
  if (!product.tags.empty()) std::cout << "tags: " << Join(product.tags, ", ") << "\n";
  std::cout << "live: "
            << (detail->summary.build_id
                    ? *detail->summary.live_version + " from build " + *detail->summary.build_id +
                          " at " + detail->summary.published_at.value_or("")
                    : std::string("never published (run canopy build ") + address + ")")
            << "\n";
  for (const auto& port : out["outputs"]) {
    std::cout << "\nport " << port["sql_name"].get<std::string>();
    if (!port["rows"].is_null())
      std::cout << "  (" << WithThousands(port["rows"].get<int64_t>()) << " rows)";
    std::cout << "\n";
    Table columns({"column", "type", "classification", "required", "description"});
    for (const auto& column : port["columns"]) {
      columns.AddRow({column["name"].get<std::string>(), column["type"].get<std::string>(),
                      column["classification"].get<std::string>(),
                      column["required"].get<bool>() ? "yes" : "",
                      column["description"].get<std::string>()});
    }
    columns.Print(std::cout);
  }
  if (!out["quality"].empty()) {
    int passed = 0;
    for (const auto& q : out["quality"]) passed += q["passed"].get<bool>() ? 1 : 0;
    std::cout << "\nquality: " << passed << "/" << out["quality"].size() << " checks passed\n";
    for (const auto& q : out["quality"]) {
      if (q["passed"].get<bool>()) continue;
      std::cout << "  " << q["severity"].get<std::string>() << ": " << q["port"].get<std::string>()
                << " " << q["rule"].get<std::string>() << " observed "
                << q["observed"].get<std::string>() << ", expected "
                << q["threshold"].get<std::string>() << "\n";
    }
  }
  return 0;
}

int RunSearch(const GlobalOptions& global, const std::string& text, OutputFormat format,
              int limit) {
  MeshSession session = OpenMesh(global);
  auto hits = session.catalog->Search(text, limit);
  if (format == OutputFormat::kJson) {
    json out = json::array();
    for (const auto& hit : hits) {
      out.push_back({{"domain", hit.domain},
                     {"name", hit.product},
                     {"score", hit.score},
                     {"field", hit.field},
                     {"snippet", hit.snippet}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (hits.empty()) {
    std::cout << "no product matches '" << text << "'\n";
    return 0;
  }
  Table table({"product", ">score", "matched", "excerpt"});
  for (const auto& hit : hits) {
    char score[32];
    std::snprintf(score, sizeof score, "%.2f", hit.score);
    table.AddRow({hit.domain + "." + hit.product, score, hit.field, hit.snippet});
  }
  table.Print(std::cout);
  return 0;
}

}  // namespace canopy::cli

namespace canopy::cli {

int RunContractDiff(const GlobalOptions& global, const std::string& address) {
  MeshSession session = OpenMesh(global);
  const spec::Product& product = ProductArgument(session.mesh, address);
  const std::string& domain = product.domain;
  const std::string& name = product.name;
  auto live = session.catalog->Live(domain, name);
  if (!live) {
    std::cout << address << " has never been published: everything in its contract is new\n";
    return 0;
  }
  std::ifstream in(std::filesystem::path(build::StorageRoot(session.mesh)) / live->manifest_path);
  const json manifest = json::parse(in, nullptr, false);
  if (manifest.is_discarded() || !manifest.contains("contracts")) {
    throw Error(ErrorCode::kFailed, "the live version's manifest has no contract snapshot",
                "rebuild it once with this canopy (canopy build " + address + " --force)");
  }
  std::vector<contract::ContractChange> changes;
  for (const auto& [port, snapshot] : manifest["contracts"].items()) {
    const spec::OutputPort* current = nullptr;
    for (const auto& p : product.outputs) {
      if (p.name == port) current = &p;
    }
    if (current == nullptr) {
      changes.push_back({port, "", "port removed", true, "consumers reading it will break"});
      continue;
    }
    auto diff =
        contract::DiffSnapshots(port, snapshot.dump(), contract::Snapshot(current->contract, {}));
    changes.insert(changes.end(), diff.begin(), diff.end());
  }
  for (const auto& port : product.outputs) {
    if (!manifest["contracts"].contains(port.name)) {
      changes.push_back({port.name, "", "port added", false, "a new output port"});
    }
  }
  if (changes.empty()) {
    std::cout << "no changes to the contract of " << address << " since " << live->version << "\n";
    return 0;
  }
  bool breaking = false;
  Table table({"port", "column", "change", "breaking", "detail"});
  for (const auto& change : changes) {
    breaking = breaking || change.breaking;
    table.AddRow({change.port, change.column, change.kind, change.breaking ? "BREAKING" : "",
                  change.detail});
  }
  table.Print(std::cout);
  const int major = static_cast<int>(std::strtol(live->version.c_str(), nullptr, 10));
  if (breaking && product.version.major <= major) {
    std::cout << "\nbreaking: publishing needs version " << major + 1 << ".0.0 or later (the spec "
              << "says " << product.version.ToString() << ", live is " << live->version << ")\n";
  }
  if (breaking) {
    std::vector<contract::ContractChange> breaking_changes;
    for (const auto& change : changes) {
      if (change.breaking) breaking_changes.push_back(change);
    }
    const auto consumers = build::AffectedConsumers(session.mesh, session.catalog->ColumnLineage(),
                                                    product, breaking_changes);
    std::cout << (consumers.empty() ? "no other product reads what changed\n"
                                    : "downstream ports that read what changed:\n");
    for (const auto& consumer : consumers) std::cout << "  " << consumer << "\n";
  }
  return 0;
}

}  // namespace canopy::cli

namespace canopy::cli {

int RunExport(const GlobalOptions& global, const std::string& standard,
              const std::string& address) {
  MeshSession session = OpenMesh(global);
  const spec::Product& product = ProductArgument(session.mesh, address);
  auto live = session.catalog->Live(product.domain, product.name);
  std::cout << (standard == "odps" ? standards::ExportOdps(session.mesh, product, live)
                                   : standards::ExportOdcs(session.mesh, product, live));
  return 0;
}

int RunExportDashboard(const GlobalOptions& global, const std::string& address,
                       const std::string& output) {
  MeshSession session = OpenMesh(global);
  const auto dot = address.find('.');
  const spec::Dashboard* dashboard =
      dot == std::string::npos
          ? nullptr
          : session.mesh.FindDashboard(address.substr(0, dot), address.substr(dot + 1));
  if (dashboard == nullptr) {
    std::vector<std::string> names;
    for (const auto& domain : session.mesh.domains) {
      for (const auto& d : domain.dashboards) names.push_back(d.Address());
    }
    std::string hint = DidYouMean(address, names);
    throw Error(ErrorCode::kNotFound, "no dashboard '" + address + "'",
                hint.empty() ? "dashboards are named domain.dashboard; they live in "
                               "domains/<domain>/dashboards/"
                             : hint);
  }
  const std::string yaml = server::DashboardYaml(*dashboard);
  if (output.empty()) {
    std::cout << yaml;
    return 0;
  }
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out << yaml;
  if (!out.flush()) throw Error(ErrorCode::kFailed, "could not write " + output);
  std::cerr << "wrote " << output << "\n";
  return 0;
}

int RunImport(const GlobalOptions& global, const std::string& file, const std::string& domain,
              const std::string& name) {
  const std::string root = spec::FindMeshRoot(global.mesh);
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(root, diagnostics);
  auto result = standards::ImportOdcs(mesh, file, domain, name);
  const std::filesystem::path folder = std::filesystem::path(root) / "domains" / domain;
  for (const auto& [relative, content] : result.files) {
    const auto path = folder / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << content;
    std::cout << "wrote " << DisplayPrefix(root) << "domains/" << domain << "/" << relative << "\n";
  }
  std::cout << "\n" << domain << "." << result.product_name << " is a draft. Next:\n";
  for (const auto& step : result.next_steps) std::cout << "  - " << step << "\n";
  return 0;
}

}  // namespace canopy::cli
