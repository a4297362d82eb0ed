#include "server/product_json.h"

namespace canopy::server {

using nlohmann::json;

json OutputsJson(const spec::Product& product, const catalog::LiveVersion* live) {
  json outputs = json::array();
  for (const auto& port : product.outputs) {
    const catalog::PortRecord* record = nullptr;
    if (live != nullptr) {
      for (const auto& p : live->ports) {
        if (p.name == port.name) record = &p;
      }
    }
    json columns = json::array();
    for (const auto& property : port.contract.properties) {
      std::string type = property.physical_type.empty()
                             ? std::string(spec::ToString(property.logical_type))
                             : property.physical_type;
      if (record != nullptr) {
        for (const auto& c : record->columns) {
          if (c.name == property.name) type = c.type;
        }
      }
      columns.push_back({{"name", property.name},
                         {"type", type},
                         {"classification", property.classification},
                         {"required", property.required},
                         {"unique", property.unique},
                         {"primary_key", property.primary_key},
                         {"description", property.description}});
    }
    json sla = json::array();
    for (const auto& s : port.sla) {
      sla.push_back({{"property", s.property}, {"value", s.value}, {"unit", s.unit}});
    }
    outputs.push_back({{"name", port.name},
                       {"sql_name", product.domain + "." + port.name},
                       {"description", port.description},
                       {"rows", record != nullptr ? json(record->rows) : json(nullptr)},
                       {"columns", columns},
                       {"sla", sla}});
  }
  return outputs;
}

json QualityJson(const catalog::LiveVersion* live) {
  json quality = json::array();
  if (live == nullptr) return quality;
  for (const auto& q : live->quality) {
    quality.push_back({{"port", q.port},
                       {"column", q.column},
                       {"rule", q.rule},
                       {"severity", q.severity},
                       {"passed", q.passed},
                       {"observed", q.observed},
                       {"threshold", q.threshold}});
  }
  return quality;
}

json HistoryJson(const catalog::ProductDetail* detail) {
  json history = json::array();
  if (detail == nullptr) return history;
  for (const auto& entry : detail->version_history) {
    history.push_back({{"version", entry.version},
                       {"build_id", entry.build_id},
                       {"published_at", entry.published_at}});
  }
  return history;
}

json AccessRequestJson(const catalog::AccessRequest& r) {
  return {{"id", r.id},
          {"product", r.domain + "." + r.product},
          {"requester", r.requester},
          {"purpose", r.purpose},
          {"status", r.status},
          {"created_at", r.created_at},
          {"decided_by", r.decided_by},
          {"decided_at", r.decided_at},
          {"note", r.note}};
}

json ColumnLineageJson(const catalog::LiveLineage& lineage, const std::set<std::string>& visible) {
  json edges = json::array();
  for (const auto& e : lineage.edges) {
    if (visible.count(e.target) == 0 || visible.count(e.source) == 0) continue;
    edges.push_back({{"port", e.target},
                     {"column", e.column},
                     {"source", e.source},
                     {"source_column", e.source_column},
                     {"type", e.type},
                     {"subtype", e.subtype},
                     {"dataset", e.dataset}});
  }
  json ports = json::array();
  for (const auto& p : lineage.ports) {
    if (visible.count(p.target) == 0) continue;
    ports.push_back({{"port", p.target}, {"analysed", p.analysed}, {"reason", p.reason}});
  }
  return {{"column_edges", edges}, {"port_lineage", ports}};
}

}  // namespace canopy::server
