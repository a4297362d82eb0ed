#include "spec/loader.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/text.h"
#include "spec/parse.h"

namespace fs = std::filesystem;

namespace canopy::spec {
namespace {

bool IsWithin(const fs::path& folder, const fs::path& path) {
  auto folder_it = folder.begin();
  auto path_it = path.begin();
  for (; folder_it != folder.end(); ++folder_it, ++path_it) {
    if (folder_it->empty()) continue;  // trailing separator
    if (path_it == path.end() || *folder_it != *path_it) return false;
  }
  return true;
}

std::vector<fs::path> SortedEntries(const fs::path& folder) {
  std::vector<fs::path> entries;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());
  return entries;
}

std::string Relative(const fs::path& root, const fs::path& path) {
  return path.lexically_relative(root).generic_string();
}

// Reports a path problem for `what` (e.g. "SQL file") at `location`. True when usable.
bool CheckPath(const ResolvedPath& resolved, const std::string& relative, const std::string& what,
               const SourceLocation& location, Diagnostics& diagnostics, bool missing_is_error) {
  switch (resolved.status) {
    case PathStatus::kInside:
      return true;
    case PathStatus::kMissing:
      if (missing_is_error) {
        diagnostics.Error(location, what + " '" + relative + "' does not exist",
                          "paths are relative to the domain folder");
      } else {
        diagnostics.Warning(location, what + " '" + relative + "' does not exist yet",
                            "the build fails until it is there; paths are relative to the "
                            "domain folder");
      }
      return false;
    case PathStatus::kAbsolute:
      diagnostics.Error(location, what + " '" + relative + "' is an absolute path",
                        "name files relative to the domain folder, and keep them inside it");
      return false;
    case PathStatus::kEscapes:
      diagnostics.Error(location, what + " '" + relative + "' is outside the domain folder",
                        "a domain reads only its own files; copy the file into the domain, or "
                        "read another domain's data through its output port");
      return false;
    case PathStatus::kSymlinkOut:
      diagnostics.Error(
          location, what + " '" + relative + "' is a symbolic link to outside the domain folder",
          "a domain reads only its own files; replace the link with the file");
      return false;
  }
  return false;
}

std::optional<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// ODCS documents already read, by absolute path: several ports may name one file,
// and its problems are reported once.
using OdcsCache = std::map<std::string, OdcsDocument>;

void LoadContractFile(const fs::path& root, const fs::path& domain_dir, OutputPort& port,
                      OdcsCache& cache, Diagnostics& diagnostics) {
  const std::string relative = *port.contract.contract_file;
  const SourceLocation location = port.contract.location;
  auto resolved = ResolveInside(domain_dir.string(), relative);
  if (!CheckPath(resolved, relative, "contract file", location, diagnostics, true)) return;
  const std::string display = Relative(root, resolved.absolute);
  auto cached = cache.find(resolved.absolute);
  if (cached == cache.end()) {
    cached =
        cache.emplace(resolved.absolute, LoadOdcsDocument(resolved.absolute, display, diagnostics))
            .first;
  }
  const OdcsDocument& doc = cached->second;
  const std::string wanted = port.contract.object_name;
  const Contract* chosen = nullptr;
  std::vector<std::string> names;
  for (const auto& object : doc.schema) names.push_back(object.object_name);
  if (!wanted.empty()) {
    for (const auto& object : doc.schema) {
      if (object.object_name == wanted) chosen = &object;
    }
    if (chosen == nullptr) {
      std::string hint = DidYouMean(wanted, names);
      diagnostics.Error(location,
                        "contract file '" + relative + "' has no schema object '" + wanted + "'",
                        hint.empty() ? "its objects: " + Join(names, ", ") : hint);
      return;
    }
  } else {
    for (const auto& object : doc.schema) {
      if (object.object_name == port.name) chosen = &object;
    }
    if (chosen == nullptr && doc.schema.size() == 1) chosen = &doc.schema.front();
    if (chosen == nullptr) {
      diagnostics.Error(location,
                        doc.schema.empty()
                            ? "contract file '" + relative + "' has no schema objects"
                            : "contract file '" + relative +
                                  "' has several schema objects "
                                  "and none is named '" +
                                  port.name + "'",
                        doc.schema.empty() ? "add a schema object with the port's columns"
                                           : "add contract_object: one of " + Join(names, ", "));
      return;
    }
  }
  Contract contract = *chosen;
  contract.contract_file = relative;
  port.contract = std::move(contract);
  if (port.sla.empty()) port.sla = doc.sla;
}

void LoadProduct(const fs::path& root, const fs::path& domain_dir, const fs::path& file,
                 Domain& domain, OdcsCache& cache, Diagnostics& diagnostics) {
  ReadContext context{Relative(root, file), &diagnostics};
  auto node = ParseYamlFile(file.string(), context);
  if (!node) return;
  Product product = ParseProductFile(*node, context);
  product.domain = domain.name;
  const std::string stem = file.stem().string();
  if (!product.name.empty() && product.name != stem) {
    diagnostics.Error(product.location,
                      "product '" + product.name + "' is in the file " + file.filename().string(),
                      "name the file " + product.name + ".yaml, or the product " + stem);
  }
  for (auto& model : product.transform) {
    if (!model.sql_file) continue;
    auto resolved = ResolveInside(domain_dir.string(), *model.sql_file);
    if (!CheckPath(resolved, *model.sql_file, "SQL file", model.location, diagnostics, true)) {
      continue;
    }
    auto text = ReadText(resolved.absolute);
    if (!text) {
      diagnostics.Error(model.location, "cannot read SQL file '" + *model.sql_file + "'");
      continue;
    }
    model.sql = *text;
    model.sql_location = {Relative(root, resolved.absolute), 1, 1};
    if (Trim(model.sql).empty()) {
      diagnostics.Error(model.sql_location, "SQL file is empty", "write the model's query in it");
    }
  }
  for (auto& input : product.inputs) {
    if (!input.file) continue;
    auto resolved = ResolveInside(domain_dir.string(), *input.file);
    CheckPath(resolved, *input.file, "input file", input.location, diagnostics, false);
  }
  for (auto& port : product.outputs) {
    if (port.contract.contract_file) LoadContractFile(root, domain_dir, port, cache, diagnostics);
  }
  domain.products.push_back(std::move(product));
}

}  // namespace

ResolvedPath ResolveInside(const std::string& folder, const std::string& relative) {
  const fs::path given(relative);
  if (given.is_absolute() || relative.empty()) return {PathStatus::kAbsolute, {}};
  const fs::path base = fs::path(folder).lexically_normal();
  const fs::path joined = (base / given).lexically_normal();
  if (!IsWithin(base, joined)) return {PathStatus::kEscapes, {}};
  std::error_code ec;
  // A link anywhere on the way may lead out: compare where it really points.
  const fs::path real_base = fs::weakly_canonical(base, ec);
  const fs::path real = fs::weakly_canonical(joined, ec);
  if (ec || !IsWithin(real_base, real)) return {PathStatus::kSymlinkOut, {}};
  if (!fs::exists(real, ec)) return {PathStatus::kMissing, joined.string()};
  return {PathStatus::kInside, joined.string()};
}

std::string FindMeshRoot(const std::optional<std::string>& explicit_dir) {
  std::optional<std::string> named = explicit_dir;
  std::string source = "--mesh";
  if (!named) {
    if (const char* env = std::getenv("CANOPY_MESH"); env != nullptr && *env != '\0') {
      named = env;
      source = "CANOPY_MESH";
    }
  }
  std::error_code ec;
  if (named) {
    const fs::path folder = fs::absolute(*named, ec).lexically_normal();
    if (!fs::is_directory(folder, ec)) {
      throw Error(ErrorCode::kNotFound,
                  "mesh folder '" + *named + "' (from " + source + ") does not exist",
                  "create one with `canopy init " + *named + "`");
    }
    if (!fs::is_regular_file(folder / "mesh.yaml", ec)) {
      throw Error(ErrorCode::kNotFound, "'" + *named + "' (from " + source + ") has no mesh.yaml",
                  "create one with `canopy init " + *named +
                      "`, or point at the folder that "
                      "holds mesh.yaml");
    }
    return folder.string();
  }
  const fs::path start = fs::current_path(ec);
  for (fs::path folder = start; !folder.empty(); folder = folder.parent_path()) {
    if (fs::is_regular_file(folder / "mesh.yaml", ec)) return folder.string();
    if (folder == folder.root_path()) break;
  }
  throw Error(ErrorCode::kNotFound, "no mesh.yaml in " + start.string() + " or any folder above it",
              "run inside a mesh, pass --mesh DIR or set CANOPY_MESH; `canopy init DIR` "
              "creates a new mesh");
}

Mesh LoadMesh(const std::string& root_dir, Diagnostics& diagnostics) {
  const fs::path root = fs::absolute(root_dir).lexically_normal();
  ReadContext mesh_context{"mesh.yaml", &diagnostics};
  Mesh mesh;
  if (auto node = ParseYamlFile((root / "mesh.yaml").string(), mesh_context)) {
    mesh = ParseMeshFile(*node, mesh_context);
  }
  mesh.root = root.string();

  OdcsCache cache;
  const fs::path domains_dir = root / "domains";
  std::error_code ec;
  if (!fs::is_directory(domains_dir, ec)) {
    diagnostics.Warning({"mesh.yaml", 0, 0}, "the mesh has no domains/ folder yet",
                        "add domains/<name>/domain.yaml for each domain");
  }
  for (const auto& domain_dir : SortedEntries(domains_dir)) {
    if (!fs::is_directory(domain_dir, ec)) continue;
    const fs::path domain_file = domain_dir / "domain.yaml";
    const std::string folder = Relative(root, domain_dir);
    if (!fs::is_regular_file(domain_file, ec)) {
      diagnostics.Error({folder + "/", 0, 0}, "domain folder has no domain.yaml",
                        "add " + folder + "/domain.yaml with the domain's name and owners");
      continue;
    }
    ReadContext context{Relative(root, domain_file), &diagnostics};
    auto node = ParseYamlFile(domain_file.string(), context);
    if (!node) continue;
    Domain domain = ParseDomainFile(*node, context);
    domain.folder = folder;
    const std::string folder_name = domain_dir.filename().string();
    if (!domain.name.empty() && domain.name != folder_name) {
      diagnostics.Error(
          domain.location, "domain '" + domain.name + "' is in the folder domains/" + folder_name,
          "name the folder domains/" + domain.name + ", or the domain " + folder_name);
    }
    if (domain.name.empty()) domain.name = folder_name;
    for (const auto& file : SortedEntries(domain_dir / "products")) {
      const std::string ext = file.extension().string();
      if (ext != ".yaml" && ext != ".yml") continue;
      LoadProduct(root, domain_dir, file, domain, cache, diagnostics);
    }
    for (const auto& file : SortedEntries(domain_dir / "dashboards")) {
      const std::string ext = file.extension().string();
      if (ext != ".yaml" && ext != ".yml") continue;
      ReadContext dashboard_context{Relative(root, file), &diagnostics};
      auto dashboard_node = ParseYamlFile(file.string(), dashboard_context);
      if (!dashboard_node) continue;
      Dashboard dashboard = ParseDashboardFile(*dashboard_node, dashboard_context);
      dashboard.domain = domain.name;
      const std::string stem = file.stem().string();
      if (!dashboard.name.empty() && dashboard.name != stem) {
        diagnostics.Error(
            dashboard.location,
            "dashboard '" + dashboard.name + "' is in the file " + file.filename().string(),
            "name the file " + dashboard.name + ".yaml, or the dashboard " + stem);
      }
      domain.dashboards.push_back(std::move(dashboard));
    }
    mesh.domains.push_back(std::move(domain));
  }

  for (auto& domain : mesh.domains) {
    for (auto& product : domain.products) {
      for (auto& port : product.outputs) {
        for (auto& property : port.contract.properties) {
          if (!property.classification_given) {
            property.classification = mesh.governance.default_classification;
          }
        }
      }
    }
  }
  return mesh;
}

}  // namespace canopy::spec
