// A product as an ODPS v1.0 data product (`canopy export odps D.P`).
#include <set>

#include "standards/standards.h"
#include "standards/yaml_json.h"

namespace canopy::standards {

using detail::Json;

std::string OdpsProductId(const std::string& domain, const std::string& product) {
  return detail::UuidFromText("canopy:odps:" + domain + "." + product);
}

namespace {

Json Custom(const std::string& property, Json value) {
  return {{"property", property}, {"value", std::move(value)}};
}

}  // namespace

std::string ExportOdps(const spec::Mesh& mesh, const spec::Product& product,
                       const std::optional<catalog::LiveVersion>& live) {
  Json doc = Json::object();
  doc["apiVersion"] = "v1.0.0";
  doc["kind"] = "DataProduct";
  doc["id"] = OdpsProductId(product.domain, product.name);
  doc["name"] = product.name;
  doc["version"] = product.version.ToString();
  doc["status"] = spec::ToString(product.status);
  doc["domain"] = product.domain;
  Json description = Json::object();
  if (!product.description.purpose.empty()) description["purpose"] = product.description.purpose;
  if (!product.description.limitations.empty()) {
    description["limitations"] = product.description.limitations;
  }
  if (!product.description.usage.empty()) description["usage"] = product.description.usage;
  if (!description.empty()) doc["description"] = description;
  if (!product.tags.empty()) doc["tags"] = product.tags;

  // Input ports: the other products' output ports this product reads. File inputs have
  // no contract, so they are listed under customProperties instead.
  Json inputs = Json::array();
  Json input_contracts = Json::array();
  Json files = Json::array();
  for (const auto& input : product.inputs) {
    if (input.file) {
      files.push_back(
          {{"name", input.name}, {"file", *input.file}, {"format", spec::ToString(input.format)}});
      continue;
    }
    if (!input.product) continue;
    const std::string sql_name = input.product->ToString();
    auto [upstream, port] = mesh.FindPort(input.product->domain, input.product->port);
    Json entry = Json::object();
    entry["name"] = input.name;
    entry["version"] = upstream != nullptr ? upstream->version.ToString() : "unknown";
    entry["contractId"] = upstream != nullptr
                              ? OdcsContractId(upstream->domain, upstream->name)
                              : OdcsContractId(input.product->domain, input.product->port);
    Json custom = Json::array();
    custom.push_back(Custom("canopyPort", sql_name));
    if (upstream != nullptr) custom.push_back(Custom("canopyProduct", upstream->Address()));
    if (live) {
      if (auto it = live->input_versions.find(sql_name); it != live->input_versions.end()) {
        custom.push_back(Custom("canopyBuildId", it->second));
      }
    }
    entry["customProperties"] = custom;
    inputs.push_back(entry);
    Json contract = {{"id", entry["contractId"]}, {"version", entry["version"]}};
    bool seen = false;
    for (const auto& existing : input_contracts) seen = seen || existing == contract;
    if (!seen) input_contracts.push_back(contract);
  }
  if (!inputs.empty()) doc["inputPorts"] = inputs;

  Json outputs = Json::array();
  for (const auto& port : product.outputs) {
    Json entry = Json::object();
    entry["name"] = port.name;
    const std::string text =
        port.description.empty() ? port.contract.description : port.description;
    if (!text.empty()) entry["description"] = text;
    entry["type"] = "tables";
    entry["version"] = product.version.ToString();
    entry["contractId"] = OdcsContractId(product.domain, product.name);
    if (!input_contracts.empty()) entry["inputContracts"] = input_contracts;
    Json custom = Json::array();
    custom.push_back(Custom("canopySqlName", product.domain + "." + port.name));
    const std::string object =
        port.contract.object_name.empty() ? port.name : port.contract.object_name;
    custom.push_back(Custom("odcsSchemaObject", object));
    if (live) {
      for (const auto& record : live->ports) {
        if (record.name != port.name) continue;
        custom.push_back(Custom("canopyRows", record.rows));
      }
    }
    entry["customProperties"] = custom;
    outputs.push_back(entry);
  }
  if (!outputs.empty()) doc["outputPorts"] = outputs;

  doc["team"] = detail::TeamJson(mesh, product);
  Json custom = Json::array();
  custom.push_back(Custom("canopyAddress", product.Address()));
  custom.push_back(Custom("canopyType", spec::ToString(product.type)));
  custom.push_back(Custom("canopyVisibility", spec::ToString(product.visibility)));
  if (!files.empty()) custom.push_back(Custom("canopyFileInputs", files));
  if (live) {
    custom.push_back(Custom("canopyBuildId", live->build_id));
    custom.push_back(Custom("canopyPublishedVersion", live->version));
    custom.push_back(Custom("canopyPublishedAt", live->published_at));
  }
  doc["customProperties"] = custom;
  return detail::ToYaml(doc,
                        "ODPS v1.0 data product " + product.Address() + ", exported by Canopy");
}

}  // namespace canopy::standards
