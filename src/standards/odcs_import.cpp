// An ODCS contract as a new draft product (`canopy import odcs FILE --domain D [--name P]`).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.h"
#include "spec/odcs.h"
#include "spec/validate.h"
#include "standards/standards.h"
#include "standards/yaml_json.h"

namespace fs = std::filesystem;

namespace canopy::standards {

using detail::Json;

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot read '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// "full-example.odcs.yaml" → "full-example".
std::string FileStem(const std::string& path) {
  std::string stem = fs::path(path).filename().string();
  for (const char* suffix : {".yaml", ".yml", ".json", ".odcs"}) {
    const std::string s = suffix;
    if (stem.size() > s.size() && stem.compare(stem.size() - s.size(), s.size(), s) == 0) {
      stem.resize(stem.size() - s.size());
    }
  }
  return stem;
}

std::string Quote(const std::string& text) {
  return "'" + text + "'";
}

// The first team member whose role says owner and who is a user of the mesh.
std::optional<std::string> TeamOwner(const spec::Mesh& mesh, const spec::OdcsDocument& doc) {
  for (const auto& extra : doc.extra) {
    if (extra.key != "team") continue;
    Json team = detail::ExtraToJson(extra);
    Json members = team.is_object() && team.contains("members") ? team["members"] : team;
    if (!members.is_array()) continue;
    for (const auto& member : members) {
      if (!member.is_object() || !member.contains("username") || !member.contains("role")) {
        continue;
      }
      if (!member["username"].is_string() || !member["role"].is_string()) continue;
      if (ToLower(member["role"].get<std::string>()).find("owner") == std::string::npos) continue;
      if (member.contains("dateOut")) continue;  // left the team
      const std::string name = member["username"].get<std::string>();
      if (mesh.FindUser(name) != nullptr) return name;
    }
  }
  return std::nullopt;
}

}  // namespace

ImportResult ImportOdcs(const spec::Mesh& mesh, const std::string& odcs_path,
                        const std::string& domain_name, const std::string& name_or_empty) {
  const spec::Domain* domain = mesh.FindDomain(domain_name);
  if (domain == nullptr) {
    std::vector<std::string> names;
    for (const auto& known : mesh.domains) names.push_back(known.name);
    std::string hint = DidYouMean(domain_name, names);
    if (hint.empty()) hint = "the mesh's domains: " + Join(names, ", ");
    throw Error(ErrorCode::kNotFound, "unknown domain " + Quote(domain_name), hint);
  }
  std::error_code ec;
  if (!fs::is_regular_file(odcs_path, ec)) {
    throw Error(ErrorCode::kNotFound, "no ODCS file " + Quote(odcs_path),
                "give the path of a contract, e.g. contracts/orders.odcs.yaml");
  }

  Diagnostics diagnostics;
  const spec::OdcsDocument doc = spec::LoadOdcsDocument(odcs_path, odcs_path, diagnostics);
  diagnostics.Sort();
  if (diagnostics.HasErrors()) {
    std::vector<std::string> lines;
    for (const auto& item : diagnostics.items()) lines.push_back(item.Format());
    throw Error(
        ErrorCode::kInvalidInput,
        Quote(odcs_path) + " is not an ODCS contract Canopy can import:\n" + Join(lines, "\n"),
        "fix the lines above and import it again");
  }

  // The product's name.
  std::string name;
  if (!name_or_empty.empty()) {
    if (!spec::IsSqlName(name_or_empty)) {
      std::string suggestion = detail::MakeSqlName(name_or_empty);
      throw Error(ErrorCode::kUsage, Quote(name_or_empty) + " is not a valid product name",
                  "use lowercase letters, digits and _ (starting with a letter or _)" +
                      (suggestion.empty() ? std::string() : ", e.g. --name " + suggestion));
    }
    name = name_or_empty;
  } else {
    for (const auto& candidate : {doc.name, doc.data_product, FileStem(odcs_path)}) {
      name = detail::MakeSqlName(candidate);
      if (!name.empty()) break;
    }
    if (name.empty()) {
      throw Error(ErrorCode::kInvalidInput, "cannot make a product name from " + Quote(odcs_path),
                  "give one with --name NAME");
    }
  }
  const std::string address = domain_name + "." + name;
  if (mesh.FindProduct(domain_name, name) != nullptr) {
    throw Error(ErrorCode::kConflict, "product " + Quote(address) + " exists already",
                "choose another name with --name");
  }
  const std::string product_file = "products/" + name + ".yaml";
  const std::string contract_file = "contracts/" + name + ".odcs.yaml";
  for (const auto& file : {product_file, contract_file}) {
    if (fs::exists(fs::path(mesh.root) / domain->folder / file, ec)) {
      throw Error(ErrorCode::kConflict, domain->folder + "/" + file + " exists already",
                  "choose another name with --name, or move the file away");
    }
  }

  ImportResult result;
  result.product_name = name;
  std::vector<std::string> notes;  // the later next steps, after inputs/transform/owner

  // One output port per schema object; SQL names are unique in the domain.
  std::set<std::string> taken;
  for (const auto& product : domain->products) {
    for (const auto& port : product.outputs) taken.insert(port.name);
  }
  Json outputs = Json::array();
  std::vector<std::string> port_names;
  for (size_t i = 0; i < doc.schema.size(); ++i) {
    const spec::Contract& object = doc.schema[i];
    std::string base = detail::MakeSqlName(object.object_name);
    if (base.empty()) base = "object_" + std::to_string(i + 1);
    std::string port = base;
    if (taken.count(port) != 0) port = detail::MakeSqlName(name + "_" + base);
    for (int n = 2; taken.count(port) != 0; ++n) port = base + "_" + std::to_string(n);
    taken.insert(port);
    port_names.push_back(port);
    if (port != base) {
      notes.push_back("Schema object " + Quote(object.object_name) + " is published as port " +
                      Quote(port) + " (SQL name " + domain_name + "." + port + "), since " +
                      domain_name + "." + base + " is taken in the domain; rename the port in " +
                      product_file + " if you prefer another name.");
    } else if (port != object.object_name) {
      notes.push_back("Schema object " + Quote(object.object_name) + " is published as port " +
                      Quote(port) + " (SQL name " + domain_name + "." + port +
                      "): SQL names are lowercase letters, digits and _.");
    }
    Json entry = Json::object();
    entry["name"] = port;
    entry["contract_file"] = contract_file;
    entry["contract_object"] = object.object_name;
    outputs.push_back(entry);
  }

  // Owner: a team member who owns the contract and is a user of the mesh, else the domain's
  // first owner (the product file must name one).
  std::string owner;
  std::string owner_note;
  if (auto from_team = TeamOwner(mesh, doc)) {
    owner = *from_team;
    owner_note = "The owner is " + Quote(owner) +
                 ", the contract team's owner; change owner: if someone else is accountable.";
  } else if (!domain->owners.empty()) {
    owner = domain->owners.front();
    owner_note = "The owner is " + Quote(owner) + ", an owner of domain " + domain_name +
                 " (the contract names no owner who is a user of the mesh); set owner: to the "
                 "user accountable for this product.";
  } else if (!mesh.principals.users.empty()) {
    owner = mesh.principals.users.front().name;
    owner_note = "The owner is " + Quote(owner) +
                 " for now; set owner: to the user accountable "
                 "for this product.";
  } else {
    owner = "owner";
    owner_note = "Declare the product's owner under principals.users in mesh.yaml and set owner:.";
  }

  // Version: the contract's, when it is semantic.
  std::string version = doc.version;
  if (version.size() > 1 && (version[0] == 'v' || version[0] == 'V') &&
      std::isdigit(static_cast<unsigned char>(version[1])) != 0) {
    version = version.substr(1);
  }
  static const std::regex semver(
      R"(^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$)");
  if (!std::regex_match(version, semver)) {
    notes.push_back("The contract's version " + Quote(doc.version) +
                    " is not semantic (MAJOR.MINOR.PATCH); the product starts at 0.1.0.");
    version = "0.1.0";
  }

  Json product = Json::object();
  product["apiVersion"] = "canopy/v1";
  product["kind"] = "DataProduct";
  product["name"] = name;
  product["version"] = version;
  product["status"] = "draft";
  product["owner"] = owner;
  Json description = Json::object();
  if (!doc.description.purpose.empty()) description["purpose"] = doc.description.purpose;
  if (!doc.description.usage.empty()) description["usage"] = doc.description.usage;
  if (!doc.description.limitations.empty()) {
    description["limitations"] = doc.description.limitations;
  }
  if (!description.empty()) product["description"] = description;
  if (!doc.tags.empty()) product["tags"] = doc.tags;
  if (!outputs.empty()) product["outputs"] = outputs;
  const std::string header = "Imported from " + fs::path(odcs_path).filename().string() +
                             " by `canopy import odcs`. A draft: add inputs and a transform, "
                             "then set status: active.";
  result.files.emplace_back(product_file, detail::ToYaml(product, header));
  result.files.emplace_back(contract_file, ReadFile(odcs_path));

  // What the user adds next.
  const std::string product_path = domain->folder + "/" + product_file;
  result.next_steps.push_back("Add the product's inputs to " + product_path +
                              " (inputs:): the files in " + domain->folder +
                              "/ or the other products' ports (domain.port) it reads.");
  if (!port_names.empty()) {
    result.next_steps.push_back(
        "Add a transform: the SQL models that compute " + Join(port_names, ", ") +
        "; name each model like its port, or set from: on the port. The build checks each "
        "port's columns and types against " +
        domain->folder + "/" + contract_file + ".");
  } else {
    result.next_steps.push_back(
        "The contract has no schema objects, so the product has no output ports yet: add a "
        "schema object to " +
        domain->folder + "/" + contract_file +
        " and an output naming it "
        "(contract_file:, contract_object:)" +
        (doc.sla.empty() ? std::string(".")
                         : "; its slaProperties apply to the ports that name the contract."));
  }
  result.next_steps.push_back(owner_note);

  // Classifications the mesh does not list: reported, never changed.
  const auto& allowed = mesh.governance.classifications;
  std::map<std::string, std::vector<std::string>> unknown;
  bool defaulted = false;
  for (const auto& object : doc.schema) {
    std::map<std::string, std::vector<std::string>> by_lower;
    for (const auto& property : object.properties) {
      by_lower[ToLower(property.name)].push_back(property.name);
      const std::string where = object.object_name + "." + property.name;
      if (!property.classification_given) {
        defaulted = true;
      } else if (std::find(allowed.begin(), allowed.end(), property.classification) ==
                 allowed.end()) {
        unknown[property.classification].push_back(where);
      }
      const std::string physical = ToLower(property.physical_type);
      if (physical == "array" || physical == "object" || physical == "record") {
        notes.push_back("physicalType " + Quote(property.physical_type) + " of " + where +
                        " is not a DuckDB type, and the build checks it against the column's "
                        "type: write the DuckDB type (e.g. VARCHAR[] or STRUCT(...)) or keep "
                        "only logicalType.");
      }
      for (const auto& rule : property.quality) {
        if (rule.type == spec::QualityType::kSql &&
            rule.query.find("{object}") == std::string::npos) {
          notes.push_back("The sql quality rule on " + where +
                          " names its table itself; Canopy runs it against the port, written "
                          "{object} ({property} for the column): rewrite the query with them.");
        }
      }
    }
    for (size_t j = 0; j < doc.schema.size(); ++j) {
      if (&doc.schema[j] != &object && doc.schema[j].object_name == object.object_name) {
        notes.push_back("The contract has several schema objects named " +
                        Quote(object.object_name) +
                        "; contract_object picks one by name, so "
                        "give each a name of its own.");
        break;
      }
    }
    for (const auto& rule : object.quality) {
      for (const auto& column : rule.properties) {
        if (by_lower.count(ToLower(column)) == 0) {
          notes.push_back("A quality rule of " + Quote(object.object_name) + " names column " +
                          Quote(column) +
                          ", which the object does not have; `canopy validate` "
                          "fails until the rule or the column is fixed.");
        }
      }
      if (rule.type == spec::QualityType::kSql &&
          rule.query.find("{object}") == std::string::npos) {
        notes.push_back("The sql quality rule on " + object.object_name +
                        " names its table itself; Canopy runs it against the port, written "
                        "{object}: rewrite the query with it.");
      }
    }
    for (const auto& [lower, names] : by_lower) {
      if (names.size() > 1) {
        notes.push_back("Schema object " + Quote(object.object_name) +
                        " has columns that differ "
                        "only in case (" +
                        Join(names, ", ") +
                        "); DuckDB column names are "
                        "case-insensitive, so rename all but one in the contract.");
      }
    }
  }
  for (const auto& [classification, places] : unknown) {
    std::vector<std::string> shown;
    for (const auto& place : places) {
      if (shown.size() == 5) {
        shown.emplace_back("...");
        break;
      }
      shown.push_back(place);
    }
    result.next_steps.push_back(
        "Add classification " + Quote(classification) +
        " to governance.classifications in mesh.yaml (it classifies " + Join(shown, ", ") +
        "), or change those columns in the contract to one the mesh allows (" +
        Join(allowed, ", ") +
        "). The contract uses it and the mesh does not list it, so "
        "`canopy validate` fails until then; a central decision, so it was not changed here. If "
        "readers without clearance must not see it, also add a mask for it under "
        "governance.masks.");
  }
  if (defaulted) {
    notes.push_back("Columns the contract does not classify get the mesh default " +
                    Quote(mesh.governance.default_classification) +
                    "; classify them in the contract where that is wrong.");
  }
  if (!doc.domain.empty() && doc.domain != domain_name) {
    notes.push_back("The contract names domain " + Quote(doc.domain) + "; the product is in " +
                    Quote(domain_name) + ", which Canopy's exports use.");
  }
  if (!doc.id.empty()) {
    notes.push_back("The contract's id " + doc.id +
                    " stays in the contract file; `canopy export "
                    "odcs " +
                    address +
                    "` identifies the product's contract by an id derived "
                    "from its address (" +
                    OdcsContractId(domain_name, name) + ").");
  }
  for (const auto& item : diagnostics.items()) notes.push_back("Check: " + item.Format());
  result.next_steps.insert(result.next_steps.end(), notes.begin(), notes.end());
  result.next_steps.push_back("When `canopy build " + address +
                              "` publishes it, set status: active.");
  return result;
}

}  // namespace canopy::standards
