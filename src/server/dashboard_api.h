// Dashboards as data products (issue: the stage for business users): listed like
// products, each chart run as the viewer through the governed path — their grants, masks
// and row filters; nothing kept across viewers — and saved by members of the domain.
#pragma once

#include <string>
#include <utility>

#include "server/builder_api.h"

namespace canopy::server {

// Whether `principal` may know the dashboard exists (private ones: its domain and admins).
bool CanSeeDashboard(const governance::Principal& principal, const spec::Dashboard& dashboard);

// The output ports a chart reads ("domain.port"), as the guard names them; empty when
// the query is refused.
std::vector<std::string> ChartPorts(const spec::Mesh& mesh, const spec::DashboardChart& chart);

// GET /api/v1/dashboards: [{domain, name, owner, status, visibility, purpose, tags,
// charts, ports}] this principal may see.
std::string ListDashboards(const BuilderRequest& request);

// GET /api/v1/dashboards/{d}/{n}: the dashboard with, per chart, its Vega-Lite spec, the
// ports it reads and whether this principal may read them (if not: why and how to ask).
std::string DashboardJson(const BuilderRequest& request, const std::string& domain,
                          const std::string& name);

// POST /api/v1/dashboards/{d}/{n}/charts/{c} {"filters": {"name": "value"}}: the chart's
// rows for this principal. Throws as a governed query does (403 with the hint to ask).
std::string RunChart(const BuilderRequest& request, const std::string& domain,
                     const std::string& name, const std::string& chart, const std::string& body);

// PUT /api/v1/domains/{d}/dashboards/{n} {dashboard as JSON, "create": true to refuse
// replacing one that exists (409)}: members of the domain only;
// written as domains/{d}/dashboards/{n}.yaml, validated (charts by the guard), taken back
// when invalid; audited. Returns the status and the JSON.
std::pair<int, std::string> SaveDashboard(const BuilderRequest& request, MeshSource& source,
                                          const std::string& domain, const std::string& name,
                                          const std::string& body);

// The dashboard's file as `canopy export dashboard` writes it (YAML).
std::string DashboardYaml(const spec::Dashboard& dashboard);

}  // namespace canopy::server
