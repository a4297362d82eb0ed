// The JSON views that `canopy … --format json` and the REST API share.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "catalog/catalog.h"
#include "spec/model.h"

namespace canopy::server {

// outputs: [{name, sql_name, description, rows|null, columns: [{name, type, classification,
// required, unique, primary_key, description}], sla: [{property, value, unit}]}]. Columns
// follow the contract; their type is the published one when `live` has the port.
nlohmann::json OutputsJson(const spec::Product& product, const catalog::LiveVersion* live);

// quality: [{port, column, rule, severity, passed, observed, threshold}] of the live version.
nlohmann::json QualityJson(const catalog::LiveVersion* live);

// history: [{version, build_id, published_at}], newest first.
nlohmann::json HistoryJson(const catalog::ProductDetail* detail);

// {id, product, requester, purpose, status, created_at, decided_by, decided_at, note}.
nlohmann::json AccessRequestJson(const catalog::AccessRequest& request);

// The column lineage among `visible` datasets (port SQL names and "file:<domain>/<path>"):
// {column_edges: [{port, column, source, source_column, type, subtype, dataset}],
//  port_lineage: [{port, analysed, reason}]} — an edge only when both ends are visible.
nlohmann::json ColumnLineageJson(const catalog::LiveLineage& lineage,
                                 const std::set<std::string>& visible);

}  // namespace canopy::server
