#include "build/lineage_step.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include "contract/check.h"
#include "core/error.h"
#include "core/text.h"
#include "lineage/lineage_graph.h"

namespace canopy::build {
namespace {

// DuckDB's aggregate functions and macros, read once per process: every sandbox runs
// the same DuckDB library and defines no functions of its own.
const lineage::FunctionCatalogue& Functions(engine::Connection& db) {
  static std::mutex mutex;
  static std::optional<lineage::FunctionCatalogue> functions;
  std::lock_guard<std::mutex> lock(mutex);
  if (!functions) functions = lineage::ReadFunctionCatalogue(db);
  return *functions;
}

bool TurnedOff() {
  const char* value = std::getenv("CANOPY_COLUMN_LINEAGE");
  return value != nullptr && std::strcmp(value, "off") == 0;
}

}  // namespace

std::string FileDataset(const std::string& domain, const std::string& path) {
  return "file:" + domain + "/" + path;
}

ProductLineage AnalyzeProductLineage(engine::Connection& db, const spec::Product& product,
                                     const std::vector<InputDataset>& inputs) {
  ProductLineage out;
  auto not_analysed = [&](const std::string& reason) {
    out.edges.clear();
    out.by_port.clear();
    out.input_schemas.clear();
    out.ports.clear();
    for (const auto& port : product.outputs) {
      out.ports.push_back({product.domain + "." + port.name, false, reason});
    }
    return out;
  };
  if (TurnedOff()) return not_analysed("column lineage is turned off (CANOPY_COLUMN_LINEAGE=off)");

  std::map<std::string, std::vector<std::string>> columns;
  std::map<std::string, const InputDataset*> by_input;
  std::vector<std::string> to_read;
  for (const auto& input : inputs) {
    by_input[ToLower(input.input)] = &input;
    if (input.columns.empty()) {
      to_read.push_back(input.input);
    } else {
      out.input_schemas[input.input] = input.columns;
    }
  }
  std::map<std::string, lineage::RelationLineage> models;
  try {
    for (const auto& view : to_read) {  // columns from the views' catalog entries: no re-bind
      auto& schema = out.input_schemas[view];
      for (const auto& column : contract::ViewColumns(db, view)) {
        schema.emplace_back(column.name, column.type);
      }
    }
    for (const auto& [input, schema] : out.input_schemas) {
      auto& names = columns[input];
      for (const auto& column : schema) names.push_back(column.first);
    }
    models = lineage::AnalyzeProduct(db, product, columns, &Functions(db));
  } catch (const Error& e) {
    return not_analysed(std::string("the engine could not analyse it: ") + e.what());
  }

  for (const auto& port : product.outputs) {
    const std::string target = product.domain + "." + port.name;
    auto model = models.find(port.from);
    if (model == models.end()) {
      out.ports.push_back({target, false, "no model named '" + port.from + "'"});
      continue;
    }
    const lineage::RelationLineage& rel = model->second;
    if (!rel.analysed) {
      out.ports.push_back({target, false, rel.reason});
      continue;
    }
    std::vector<catalog::ColumnLineageEdge> edges;
    std::string unknown;
    for (const auto& [column, sources] : rel.sources) {
      for (const auto& source : sources) {
        auto input = by_input.find(ToLower(source.relation));
        if (input == by_input.end()) {
          unknown = source.relation;
          continue;
        }
        bool dataset = false;
        for (const auto& d : rel.dataset_indirect) dataset = dataset || d == source;
        edges.push_back({target, column, input->second->dataset, source.column,
                         lineage::ToString(source.type), source.subtype, dataset});
      }
    }
    if (!unknown.empty()) {
      out.ports.push_back({target, false, "reads '" + unknown + "', which is not an input"});
      continue;
    }
    out.edges.insert(out.edges.end(), edges.begin(), edges.end());
    out.ports.push_back({target, true, ""});
    out.by_port[port.name] = rel;
  }
  return out;
}

ClassificationCheck CheckClassifications(const spec::Mesh& mesh, const spec::Product& product,
                                         const std::vector<catalog::ColumnLineageEdge>& edges) {
  const std::vector<std::string>& order = mesh.governance.classifications;
  auto rank = [&](const std::string& classification) {
    const auto at = std::find(order.begin(), order.end(), classification);
    return at == order.end() ? -1 : static_cast<int>(at - order.begin());
  };
  auto property_of = [](const spec::Contract& contract,
                        const std::string& column) -> const spec::Property* {
    for (const auto& property : contract.properties) {
      if (ToLower(property.name) == ToLower(column)) return &property;
    }
    return nullptr;
  };
  // The strictest classification the DIRECT sources of each port column give.
  struct Required {
    int rank = -1;
    std::vector<std::string> sources;
  };
  std::map<std::pair<std::string, std::string>, Required> required;  // (port SQL name, column)
  for (const auto& edge : edges) {
    if (edge.type != "DIRECT") continue;
    const size_t dot = edge.source.find('.');
    if (edge.source.rfind("file:", 0) == 0 || dot == std::string::npos) continue;
    const auto [upstream, port] =
        mesh.FindPort(edge.source.substr(0, dot), edge.source.substr(dot + 1));
    if (port == nullptr) continue;
    const spec::Property* source = property_of(port->contract, edge.source_column);
    const std::string classification =
        source != nullptr ? source->classification : mesh.governance.default_classification;
    const int r = rank(classification);
    Required& need = required[{edge.target, edge.column}];
    const std::string name = edge.source + "." + edge.source_column;
    if (r > need.rank) {
      need.rank = r;
      need.sources = {name};
    } else if (r == need.rank && r >= 0 &&
               std::find(need.sources.begin(), need.sources.end(), name) == need.sources.end()) {
      need.sources.push_back(name);
    }
  }
  ClassificationCheck check;
  for (const auto& port : product.outputs) {
    const std::string target = product.domain + "." + port.name;
    for (const auto& [key, need] : required) {
      if (key.first != target || need.rank < 0) continue;
      const spec::Property* property = property_of(port.contract, key.second);
      const std::string declared =
          property != nullptr ? property->classification : mesh.governance.default_classification;
      if (rank(declared) >= need.rank) continue;
      ClassificationFinding finding{port.name,
                                    key.second,
                                    declared,
                                    order[static_cast<size_t>(need.rank)],
                                    need.sources,
                                    property != nullptr ? property->declassified : "",
                                    property != nullptr ? property->location : port.location};
      (finding.reason.empty() ? check.weaker : check.declassified).push_back(std::move(finding));
    }
  }
  return check;
}

std::string Describe(const ClassificationFinding& finding, const spec::Product& product) {
  return product.domain + "." + finding.port + "." + finding.column + " is declared " +
         finding.declared + " but is computed from " + Join(finding.sources, ", ") + " (" +
         finding.lineage + ")";
}

std::string DeclassifyHint(const std::string& lineage) {
  return "declare each column at least as strictly as its sources (classification: " + lineage +
         "), or, as its owner, say why it is less sensitive: customProperties: "
         "[{property: declassified, value: \"<reason>\"}] (audited)";
}

ClassificationCheck CheckClassificationsFromSpecs(engine::Connection& parser,
                                                  const spec::Mesh& mesh,
                                                  const spec::Product& product) {
  std::vector<InputDataset> inputs;
  for (const auto& input : product.inputs) {
    if (!input.product) return {};  // a file's columns are known when it is read
    const auto [upstream, port] = mesh.FindPort(input.product->domain, input.product->port);
    if (port == nullptr || port->contract.properties.empty()) return {};
    InputDataset dataset;
    dataset.input = input.name;
    dataset.dataset = input.product->ToString();
    dataset.is_port = true;
    for (const auto& property : port->contract.properties) {
      dataset.columns.emplace_back(property.name, property.physical_type);
    }
    inputs.push_back(std::move(dataset));
  }
  const ProductLineage lineage = AnalyzeProductLineage(parser, product, inputs);
  return CheckClassifications(mesh, product, lineage.edges);
}

std::vector<std::string> AffectedConsumers(const spec::Mesh& mesh,
                                           const catalog::LiveLineage& lineage,
                                           const spec::Product& product,
                                           const std::vector<contract::ContractChange>& breaking) {
  std::map<std::string, std::set<std::string>> columns;  // changed port → changed columns
  std::set<std::string> whole;                           // ports changed as a whole
  for (const auto& change : breaking) {
    if (change.column.empty()) {
      whole.insert(change.port);
    } else {
      columns[change.port].insert(change.column);
    }
  }
  std::vector<std::string> out;
  for (const auto& domain : mesh.domains) {
    for (const auto& consumer : domain.products) {
      for (const auto& input : consumer.inputs) {
        if (!input.product || input.product->domain != product.domain) continue;
        const std::string& port = input.product->port;
        const bool as_whole = whole.count(port) != 0;
        if (!as_whole && columns.count(port) == 0) continue;
        const std::string read = input.product->ToString();
        for (const auto& output : consumer.outputs) {
          const std::string target = consumer.domain + "." + output.name;
          const std::string who =
              target + " (product " + consumer.Address() + ", owner " + consumer.owner + ")";
          const catalog::PortLineage* analysis = lineage::FindPortLineage(lineage, target);
          if (as_whole) {
            out.push_back(who + " reads " + read);
          } else if (analysis == nullptr || !analysis->analysed) {
            out.push_back(who + " reads " + read + " (column lineage " +
                          (analysis == nullptr ? std::string("not recorded")
                                               : "not analysed: " + analysis->reason) +
                          ")");
          } else {
            std::set<std::string> used;
            for (const auto& edge : lineage.edges) {
              if (edge.target == target && edge.source == read &&
                  columns[port].count(edge.source_column) != 0) {
                used.insert(edge.source_column);
              }
            }
            if (used.empty()) continue;
            out.push_back(
                who + " reads " + read + "." +
                Join(std::vector<std::string>(used.begin(), used.end()), ", " + read + "."));
          }
        }
      }
    }
  }
  return out;
}

}  // namespace canopy::build
