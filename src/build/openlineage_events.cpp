#include "build/openlineage_events.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/hash.h"
#include "core/http_client.h"
#include "core/text.h"

#ifndef CANOPY_VERSION
#define CANOPY_VERSION "0.0.0"
#endif

namespace canopy::build {
namespace {

using nlohmann::json;

constexpr const char* kProducer = "https://canopy.invalid/canopy/v" CANOPY_VERSION;
constexpr const char* kEventSchema =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

// A facet with the base fields every facet must have; `schema` names the facet's
// own schema: "1-2-0/ColumnLineageDatasetFacet".
json Facet(const std::string& schema) {
  const std::string name = schema.substr(schema.find('/') + 1);
  return {{"_producer", kProducer},
          {"_schemaURL", "https://openlineage.io/spec/facets/" + schema + ".json#/$defs/" + name}};
}

std::string FormatUuid(const std::string& hex) {
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

std::string PortNamespace(const spec::Mesh& mesh) {
  return "canopy://" + mesh.name;
}

// (namespace, name) of a dataset id as lineage_step names them.
std::pair<std::string, std::string> DatasetName(const spec::Mesh& mesh, const std::string& id) {
  if (id.rfind("file:", 0) == 0) {
    return {
        "file",
        (std::filesystem::path(mesh.root) / "domains" / id.substr(5)).lexically_normal().string()};
  }
  return {PortNamespace(mesh), id};
}

json Owners(const spec::Mesh& mesh, const spec::Product& product, const std::string& schema) {
  json facet = Facet(schema);
  json owners = json::array();
  owners.push_back({{"name", "user:" + product.owner}, {"type", "OWNER"}});
  if (const spec::Domain* domain = mesh.FindDomain(product.domain)) {
    for (const auto& owner : domain->owners) {
      if (owner != product.owner) {
        owners.push_back({{"name", "user:" + owner}, {"type", "DOMAIN_OWNER"}});
      }
    }
  }
  owners.push_back({{"name", "team:" + product.domain}, {"type", "DOMAIN"}});
  facet["owners"] = owners;
  return facet;
}

json SchemaFacet(const std::vector<std::pair<std::string, std::string>>& columns,
                 const std::map<std::string, std::string>& descriptions = {}) {
  json facet = Facet("1-2-0/SchemaDatasetFacet");
  json fields = json::array();
  int position = 0;
  for (const auto& [name, type] : columns) {
    json field = {{"name", name}, {"ordinal_position", ++position}};
    if (!type.empty()) field["type"] = type;
    if (auto d = descriptions.find(name); d != descriptions.end() && !d->second.empty()) {
      field["description"] = d->second;
    }
    fields.push_back(field);
  }
  facet["fields"] = fields;
  return facet;
}

json InputField(const spec::Mesh& mesh, const LineageRun& run,
                const catalog::ColumnLineageEdge& edge) {
  auto [ns, name] = DatasetName(mesh, edge.source);
  json transformation = {{"type", edge.type}, {"subtype", edge.subtype}};
  for (const auto& input : run.inputs) {
    if (input.dataset == edge.source && input.masked.count(edge.source_column) != 0) {
      transformation["masking"] = true;
    }
  }
  return {{"namespace", ns},
          {"name", name},
          {"field", edge.source_column},
          {"transformations", json::array({transformation})}};
}

// Adds `edge` to a list of InputFields: one per source column, holding every
// transformation through which it is used.
void AddInputField(const spec::Mesh& mesh, const LineageRun& run,
                   const catalog::ColumnLineageEdge& edge, json& fields) {
  json field = InputField(mesh, run, edge);
  for (auto& existing : fields) {
    if (existing["namespace"] != field["namespace"] || existing["name"] != field["name"] ||
        existing["field"] != field["field"]) {
      continue;
    }
    for (const auto& t : existing["transformations"]) {
      if (t == field["transformations"][0]) return;
    }
    existing["transformations"].push_back(field["transformations"][0]);
    return;
  }
  fields.push_back(std::move(field));
}

json ColumnLineageFacet(const spec::Mesh& mesh, const LineageRun& run, const std::string& target,
                        const std::vector<std::string>& columns) {
  json facet = Facet("1-2-0/ColumnLineageDatasetFacet");
  json fields = json::object();
  for (const auto& column : columns) fields[column] = {{"inputFields", json::array()}};
  json dataset = json::array();
  for (const auto& edge : run.lineage->edges) {
    if (edge.target != target) continue;
    // Row-level effects are the same for every column: once, in `dataset`.
    AddInputField(mesh, run, edge, edge.dataset ? dataset : fields[edge.column]["inputFields"]);
  }
  facet["fields"] = fields;
  facet["dataset"] = dataset;
  return facet;
}

// "nullValues mustBe 0" → nullValues; "sql: select …" → sql.
std::string AssertionKind(const std::string& rule) {
  std::string kind = rule.substr(0, rule.find(' '));
  if (!kind.empty() && kind.back() == ':') kind.pop_back();
  return kind;
}

json OutputDataset(const spec::Mesh& mesh, const spec::Product& product, const LineageRun& run,
                   const spec::OutputPort& port, bool finished) {
  const std::string target = product.domain + "." + port.name;
  json dataset = {{"namespace", PortNamespace(mesh)}, {"name", target}};
  json facets = json::object();
  const catalog::PortRecord* written = nullptr;
  for (const auto& record : run.ports) {
    if (record.name == port.name) written = &record;
  }
  std::vector<std::pair<std::string, std::string>> columns;
  std::map<std::string, std::string> descriptions;
  if (written != nullptr) {
    for (const auto& c : written->columns) {
      columns.emplace_back(c.name, c.type);
      descriptions[c.name] = c.description;
    }
  } else {
    for (const auto& p : port.contract.properties) {
      columns.emplace_back(p.name, p.physical_type);
      descriptions[p.name] = p.description;
    }
  }
  facets["schema"] = SchemaFacet(columns, descriptions);
  if (!port.description.empty()) {
    facets["documentation"] = Facet("1-1-0/DocumentationDatasetFacet");
    facets["documentation"]["description"] = port.description;
  }
  facets["ownership"] = Owners(mesh, product, "1-0-1/OwnershipDatasetFacet");
  if (finished && written != nullptr) {
    facets["version"] = Facet("1-0-1/DatasetVersionDatasetFacet");
    facets["version"]["datasetVersion"] = run.build_id;
    facets["version"]["productVersion"] = product.version.ToString();
  }
  if (run.lineage) {
    bool analysed = false;
    for (const auto& p : run.lineage->ports)
      analysed = analysed || (p.target == target && p.analysed);
    if (analysed) {
      std::vector<std::string> names;
      names.reserve(columns.size());
      for (const auto& [name, type] : columns) names.push_back(name);
      facets["columnLineage"] = ColumnLineageFacet(mesh, run, target, names);
    }
  }
  json assertions = json::array();
  for (const auto& check : run.quality) {
    if (check.port != port.name) continue;
    json assertion = {{"assertion", AssertionKind(check.rule)},
                      {"success", check.passed},
                      {"name", check.rule},
                      {"severity", check.severity}};
    if (!check.column.empty()) assertion["column"] = check.column;
    if (!check.threshold.empty()) assertion["expected"] = check.threshold;
    if (!check.observed.empty()) assertion["actual"] = check.observed;
    if (!check.passed && !check.message.empty()) assertion["description"] = check.message;
    assertions.push_back(assertion);
  }
  if (!assertions.empty()) {
    facets["dataQualityAssertions"] = Facet("1-1-0/DataQualityAssertionsDatasetFacet");
    facets["dataQualityAssertions"]["assertions"] = assertions;
  }
  if (written != nullptr) {
    facets["dataQualityMetrics"] = Facet("1-0-3/DataQualityMetricsInputDatasetFacet");
    facets["dataQualityMetrics"]["rowCount"] = written->rows;
    if (written->bytes > 0) facets["dataQualityMetrics"]["bytes"] = written->bytes;
    facets["dataQualityMetrics"]["fileCount"] = 1;
    facets["dataQualityMetrics"]["columnMetrics"] = json::object();
    if (finished) {
      json statistics = Facet("1-0-2/OutputStatisticsOutputDatasetFacet");
      statistics["rowCount"] = written->rows;
      if (written->bytes > 0) statistics["size"] = written->bytes;
      statistics["fileCount"] = 1;
      dataset["outputFacets"] = {{"outputStatistics", statistics}};
    }
  }
  dataset["facets"] = facets;
  return dataset;
}

}  // namespace

std::string NewRunId() {
  std::string hex = RandomHex(16);
  hex[12] = '4';
  hex[16] = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];
  return FormatUuid(hex);
}

std::string UuidFromName(const std::string& name) {
  Sha256 hash;
  std::string hex = hash.Add("canopy-run").Add(name).HexDigest().substr(0, 32);
  hex[12] = '8';
  hex[16] = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];
  return FormatUuid(hex);
}

std::string MakeRunEvent(const spec::Mesh& mesh, const spec::Product& product,
                         const LineageRun& run, const std::string& event_type,
                         const std::string& event_time, const std::string& error) {
  json event = {{"eventType", event_type},
                {"eventTime", event_time},
                {"producer", kProducer},
                {"schemaURL", kEventSchema}};
  json run_facets = json::object();
  run_facets["parent"] = Facet("1-1-0/ParentRunFacet");
  run_facets["parent"]["job"] = {{"namespace", PortNamespace(mesh)}, {"name", "canopy build"}};
  run_facets["parent"]["run"] = {{"runId", UuidFromName(run.build_id)}};
  if (event_type == "FAIL") {
    run_facets["errorMessage"] = Facet("1-0-1/ErrorMessageRunFacet");
    run_facets["errorMessage"]["message"] = error;
    run_facets["errorMessage"]["programmingLanguage"] = "SQL";
  }
  event["run"] = {{"runId", run.run_id}, {"facets", run_facets}};

  json job_facets = json::object();
  job_facets["jobType"] = Facet("2-0-4/JobTypeJobFacet");
  job_facets["jobType"]["processingType"] = "BATCH";
  job_facets["jobType"]["integration"] = "CANOPY";
  job_facets["jobType"]["jobType"] = "DATA_PRODUCT";
  std::string sql;
  for (const auto& model : product.transform) {
    sql += "CREATE VIEW " + SqlIdentifier(model.name) + " AS\n" + Trim(model.sql) + ";\n";
  }
  if (!sql.empty()) {
    job_facets["sql"] = Facet("1-1-0/SQLJobFacet");
    job_facets["sql"]["query"] = sql;
    job_facets["sql"]["dialect"] = "duckdb";
  }
  job_facets["ownership"] = Owners(mesh, product, "1-0-1/OwnershipJobFacet");
  if (!product.description.purpose.empty()) {
    job_facets["documentation"] = Facet("1-1-0/DocumentationJobFacet");
    job_facets["documentation"]["description"] = product.description.purpose;
  }
  event["job"] = {
      {"namespace", PortNamespace(mesh)}, {"name", product.Address()}, {"facets", job_facets}};

  json inputs = json::array();
  for (const auto& input : run.inputs) {
    auto [ns, name] = DatasetName(mesh, input.dataset);
    json dataset = {{"namespace", ns}, {"name", name}};
    if (!run.lineage) {
      inputs.push_back(dataset);
      continue;
    }
    if (auto schema = run.lineage->input_schemas.find(input.input);
        schema != run.lineage->input_schemas.end()) {
      dataset["facets"] = {{"schema", SchemaFacet(schema->second)}};
    }
    inputs.push_back(dataset);
  }
  event["inputs"] = inputs;
  json outputs = json::array();
  const bool finished = event_type != "START";
  for (const auto& port : product.outputs) {
    outputs.push_back(OutputDataset(mesh, product, run, port, finished));
  }
  event["outputs"] = outputs;
  return event.dump();
}

LineageEmitter::LineageEmitter(catalog::CatalogStore& catalog, std::mutex& catalog_mutex,
                               std::optional<std::string> url)
    : catalog_(catalog), catalog_mutex_(catalog_mutex), url_(std::move(url)) {}

void LineageEmitter::Emit(const std::string& build_id, const std::string& event) {
  try {
    std::lock_guard<std::mutex> lock(catalog_mutex_);
    catalog_.RecordLineageEvent(build_id, event);
  } catch (const Error& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    warnings_.push_back(std::string("OpenLineage event not recorded: ") + e.what());
  }
  if (!url_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!posting_) return;
  }
  try {
    PostJson(*url_, event, 2000);
  } catch (const Error& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (posting_) {
      posting_ = false;
      warnings_.push_back("OpenLineage endpoint " + *url_ + ": " + e.what() +
                          "; no more events are sent in this build (all are recorded: canopy "
                          "export openlineage)");
    }
  }
}

std::vector<std::string> LineageEmitter::Warnings() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return warnings_;
}

void PostJson(const std::string& url, const std::string& body, int timeout_ms) {
  HttpCall call;
  call.method = "POST";
  call.url = url;
  call.body = body;
  call.content_type = "application/json";
  call.timeout_ms = timeout_ms;
  const HttpAnswer answer = HttpExchange(call);
  if (answer.status < 200 || answer.status >= 300) {
    throw Error(ErrorCode::kFailed, "the endpoint answered HTTP " + std::to_string(answer.status));
  }
}

}  // namespace canopy::build
