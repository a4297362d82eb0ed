#include "server/dashboard_api.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"
#include "governance/audit.h"
#include "governance/guard.h"
#include "governance/query.h"
#include "server/server_util.h"
#include "spec/chart_sql.h"
#include "spec/validate.h"
#include "standards/yaml_json.h"

namespace fs = std::filesystem;

namespace canopy::server {
namespace {

using json = nlohmann::ordered_json;

constexpr int64_t kChartRows = 5000;

const spec::Dashboard& Find(const BuilderRequest& r, const std::string& domain,
                            const std::string& name) {
  const spec::Dashboard* dashboard = r.mesh.FindDashboard(domain, name);
  if (dashboard == nullptr || !CanSeeDashboard(r.principal, *dashboard)) {
    throw Error(ErrorCode::kNotFound, "no dashboard " + domain + "." + name);
  }
  return *dashboard;
}

json VegaLite(const spec::DashboardChart& chart) {
  if (chart.vega_lite.empty()) return nullptr;
  try {
    return standards::detail::NodeToJson(YAML::Load(chart.vega_lite));
  } catch (const YAML::Exception&) {
    return nullptr;
  }
}

json Position(const spec::DashboardChart& chart) {
  return {{"x", chart.x}, {"y", chart.y}, {"width", chart.width}, {"height", chart.height}};
}

json Description(const spec::ProductDescription& description) {
  json out = {{"purpose", description.purpose}};
  if (!description.usage.empty()) out["usage"] = description.usage;
  if (!description.limitations.empty()) out["limitations"] = description.limitations;
  return out;
}

// Whether the principal may read every port the chart reads; if not, why, and how to ask
// — the first port refused in port/product/message/hint, and every one in `denied`.
json Access(const BuilderRequest& r, const std::vector<governance::RuntimeGrant>& grants,
            const std::vector<std::string>& ports) {
  json denied = json::array();
  for (const auto& sql_name : ports) {
    const auto dot = sql_name.find('.');
    const auto [product, port] = r.mesh.FindPort(sql_name.substr(0, dot), sql_name.substr(dot + 1));
    if (product == nullptr || port == nullptr) continue;
    const auto decision = governance::Decide(r.mesh, grants, r.principal, *product, *port);
    if (decision.allowed) continue;
    denied.push_back({{"port", sql_name},
                      {"product", product->Address()},
                      {"message", "You may not read " + sql_name + ": " + decision.reason},
                      {"hint", "request access to " + product->Address() +
                                   " on its page (or: canopy access request " + product->Address() +
                                   " --purpose \"…\"); its owner " + product->owner + " decides"}});
  }
  if (denied.empty()) return {{"can_read", true}};
  json out = {{"can_read", false}};
  for (const auto& [key, value] : denied.front().items()) out[key] = value;
  out["denied"] = denied;
  return out;
}

}  // namespace

bool CanSeeDashboard(const governance::Principal& principal, const spec::Dashboard& dashboard) {
  return dashboard.visibility != spec::Visibility::kPrivate || principal.admin ||
         principal.InDomain(dashboard.domain);
}

std::vector<std::string> ChartPorts(const spec::Mesh& mesh, const spec::DashboardChart& chart) {
  // One parser for all requests: the guard only parses (about 0.1 ms a query).
  static std::mutex mutex;
  static engine::Database database(engine::WithoutFileAccess());
  static engine::Connection parser(database);
  std::set<std::string> known;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      for (const auto& port : product.outputs) known.insert(domain.name + "." + port.name);
    }
  }
  std::string sql;  // with every filter it places given
  try {
    sql = spec::ChartSqlWithEveryFilter(chart.sql);
  } catch (const Error&) {
    return {};  // not a statement: validation says so
  }
  std::lock_guard<std::mutex> lock(mutex);
  const auto verdict = governance::Guard(parser, sql, known);
  return verdict.allowed ? verdict.ports : std::vector<std::string>{};
}

std::string ListDashboards(const BuilderRequest& r) {
  json out = json::array();
  for (const auto& domain : r.mesh.domains) {
    for (const auto& dashboard : domain.dashboards) {
      if (!CanSeeDashboard(r.principal, dashboard)) continue;
      std::set<std::string> ports;
      for (const auto& chart : dashboard.charts) {
        for (auto& port : ChartPorts(r.mesh, chart)) ports.insert(port);
      }
      out.push_back({{"kind", "dashboard"},
                     {"domain", dashboard.domain},
                     {"name", dashboard.name},
                     {"owner", dashboard.owner},
                     {"status", spec::ToString(dashboard.status)},
                     {"visibility", spec::ToString(dashboard.visibility)},
                     {"purpose", dashboard.description.purpose},
                     {"tags", dashboard.tags},
                     {"charts", dashboard.charts.size()},
                     {"ports", ports}});
    }
  }
  return out.dump();
}

std::string DashboardJson(const BuilderRequest& r, const std::string& domain,
                          const std::string& name) {
  const spec::Dashboard& dashboard = Find(r, domain, name);
  const auto grants = governance::LoadGrants(r.catalog);
  json charts = json::array();
  for (const auto& chart : dashboard.charts) {
    const auto ports = ChartPorts(r.mesh, chart);
    charts.push_back({{"name", chart.name},
                      {"title", chart.title},
                      {"sql", chart.sql},
                      {"vegaLite", VegaLite(chart)},
                      {"position", Position(chart)},
                      {"ports", ports},
                      {"access", Access(r, grants, ports)}});
  }
  json filters = json::array();
  for (const auto& f : dashboard.filters) {
    filters.push_back({{"name", f.name}, {"column", f.column}, {"label", f.label}});
  }
  return json({{"kind", "dashboard"},
               {"domain", dashboard.domain},
               {"name", dashboard.name},
               {"owner", dashboard.owner},
               {"status", spec::ToString(dashboard.status)},
               {"visibility", spec::ToString(dashboard.visibility)},
               {"description", Description(dashboard.description)},
               {"tags", dashboard.tags},
               {"layout", {{"columns", dashboard.columns}}},
               {"filters", filters},
               {"charts", charts},
               {"can_edit", r.principal.InDomain(dashboard.domain)}})
      .dump();
}

std::string RunChart(const BuilderRequest& r, const std::string& domain, const std::string& name,
                     const std::string& chart_name, const std::string& body_text) {
  const spec::Dashboard& dashboard = Find(r, domain, name);
  const spec::DashboardChart* chart = nullptr;
  for (const auto& c : dashboard.charts) {
    if (c.name == chart_name) chart = &c;
  }
  if (chart == nullptr)
    throw Error(ErrorCode::kNotFound, "no chart " + chart_name + " in " + dashboard.Address());
  json picked = json::object();
  if (!body_text.empty()) {
    const json body = json::parse(body_text, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      throw Error(ErrorCode::kUsage, "the request body must be a JSON object");
    }
    if (auto it = body.find("filters"); it != body.end() && it->is_object()) picked = *it;
  }
  governance::QueryOptions options;
  options.max_rows = std::min<int64_t>(kChartRows, r.mesh.limits.query.max_rows);
  std::string sql = chart->sql;
  // The viewer's filter values: a chart whose result has the filter's column shows only
  // the rows that match (values are literals: they cannot change the statement).
  auto value_of = [&picked](const spec::DashboardFilter& filter) -> std::optional<std::string> {
    auto it = picked.find(filter.name);
    if (it == picked.end() || it->is_null()) return std::nullopt;
    std::string value = it->is_string() ? it->get<std::string>() : it->dump();
    if (value.empty()) return std::nullopt;
    return value;
  };
  // Filters the chart's SQL places itself ([[ … {{name}} … ]], spec/chart_sql.h) go where
  // its author put them — before its own limit or grouping; the others narrow its result.
  std::map<std::string, std::string> literals;
  for (const auto& filter : dashboard.filters) {
    if (auto value = value_of(filter)) literals[filter.name] = SqlString(*value);
  }
  std::set<std::string> placed;
  sql = spec::ExpandChartSql(sql, literals, &placed);
  bool any = false;
  for (const auto& filter : dashboard.filters) {
    any = any || (placed.count(filter.name) == 0 && value_of(filter).has_value());
  }
  if (any) {
    governance::GovernedQuery probe(r.mesh, r.catalog, r.principal, sql, options);
    std::set<std::string> columns;
    for (const auto& c : probe.columns()) columns.insert(c.name);
    probe.Close();
    std::vector<std::string> conditions;
    for (const auto& filter : dashboard.filters) {
      auto value = value_of(filter);
      if (!value || placed.count(filter.name) != 0 || columns.count(filter.column) == 0) continue;
      conditions.push_back(SqlIdentifier(filter.column) + " = " + SqlString(*value));
    }
    if (!conditions.empty()) {
      sql = "select * from (\n" + sql + "\n) as chart where " + Join(conditions, " and ");
    }
  }
  CollectRows rows;
  const auto outcome =
      governance::RunGovernedQuery(r.mesh, r.catalog, r.principal, sql, options, rows);
  json columns = json::array();
  for (const auto& c : rows.columns()) {
    columns.push_back({{"name", c.name}, {"type", c.type}, {"masked", c.masked}});
  }
  return json({{"chart", chart->name},
               {"columns", columns},
               {"rows", rows.rows()},
               {"masked", outcome.masked},
               {"filtered", outcome.filtered},
               {"truncated", outcome.truncated}})
      .dump();
}

std::string DashboardYaml(const spec::Dashboard& dashboard) {
  json charts = json::array();
  for (const auto& chart : dashboard.charts) {
    json item = {{"name", chart.name}, {"title", chart.title}, {"sql", chart.sql}};
    if (json spec = VegaLite(chart); !spec.is_null()) item["vegaLite"] = spec;
    item["position"] = Position(chart);
    charts.push_back(item);
  }
  json document = {{"apiVersion", "canopy/v1"},
                   {"kind", "Dashboard"},
                   {"name", dashboard.name},
                   {"status", spec::ToString(dashboard.status)},
                   {"owner", dashboard.owner},
                   {"description", Description(dashboard.description)},
                   {"tags", dashboard.tags},
                   {"visibility", spec::ToString(dashboard.visibility)},
                   {"layout", {{"columns", dashboard.columns}}}};
  if (!dashboard.filters.empty()) {
    json filters = json::array();
    for (const auto& f : dashboard.filters) {
      filters.push_back({{"name", f.name}, {"column", f.column}, {"label", f.label}});
    }
    document["filters"] = filters;
  }
  document["charts"] = charts;
  return standards::detail::ToYaml(document);
}

std::pair<int, std::string> SaveDashboard(const BuilderRequest& r, MeshSource& source,
                                          const std::string& domain_name, const std::string& name,
                                          const std::string& body_text) {
  const std::string who = r.principal.ToString();
  const std::string address = domain_name + "." + name;
  const spec::Domain* domain = r.mesh.FindDomain(domain_name);
  if (domain == nullptr) throw Error(ErrorCode::kNotFound, "no domain " + domain_name);
  if (!r.principal.InDomain(domain_name)) {
    governance::RecordAudit(r.catalog, who, "dashboard.save", address, "denied",
                            json({{"reason", "not a member of the domain"}}).dump());
    throw Error(ErrorCode::kPermissionDenied,
                who + " may not save dashboards in " + domain_name + ": only its members may",
                "save the chart to a dashboard of your own domain, or ask an owner of " +
                    domain_name + " (" + Join(domain->owners, ", ") + ") to add you");
  }
  if (!spec::IsSqlName(name)) {
    throw Error(ErrorCode::kUsage, "'" + name + "' is not a SQL name",
                "use lower-case letters, digits and _, starting with a letter");
  }
  json body = json::parse(body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    throw Error(ErrorCode::kUsage, "the request body must be the dashboard as a JSON object");
  }
  const spec::Dashboard* existing = r.mesh.FindDashboard(domain_name, name);
  // {"create": true}: a new dashboard only (two people creating one name do not overwrite).
  const bool create = body.value("create", false);
  body.erase("create");
  if (create && existing != nullptr) {
    throw Error(ErrorCode::kConflict, "the dashboard " + address + " exists already",
                "add the chart to it, or pick another name");
  }
  // The file as a person would write it: the header first, then what was sent.
  json document = {{"apiVersion", "canopy/v1"}, {"kind", "Dashboard"}, {"name", name}};
  if (!body.contains("owner")) {
    document["owner"] = existing != nullptr ? existing->owner : r.principal.name;
  }
  for (const auto& [key, value] : body.items()) {
    if (key == "apiVersion" || key == "kind" || key == "name" || key == "domain") continue;
    document[key] = value;
  }
  const fs::path folder = fs::path(r.mesh.root) / domain->folder;
  const fs::path file = folder / "dashboards" / (name + ".yaml");
  const std::string content = standards::detail::ToYaml(
      document, "A dashboard of " + domain_name + ", saved from the web UI.");
  std::lock_guard<std::mutex> writing(source.writer());
  Applied applied = ApplyFiles(r.mesh.root, {{file, content}}, {folder / "dashboards"});
  if (!applied.mesh) {
    governance::RecordAudit(r.catalog, who, "dashboard.save", address, "invalid",
                            json({{"errors", applied.diagnostics.ErrorCount()}}).dump());
    json error = {{"code", ErrorCodeName(ErrorCode::kInvalidInput)},
                  {"message", "the dashboard does not validate: " +
                                  std::to_string(applied.diagnostics.ErrorCount()) +
                                  " error(s); nothing was saved"},
                  {"hint", "fix what the diagnostics name and save again"},
                  {"diagnostics", DiagnosticsJson(applied.diagnostics)}};
    return {HttpStatusFor(ErrorCode::kInvalidInput), json({{"error", error}}).dump()};
  }
  governance::RecordAudit(r.catalog, who, "dashboard.save", address, "ok",
                          json({{"file", domain->folder + "/dashboards/" + name + ".yaml"},
                                {"created", existing == nullptr}})
                              .dump());
  source.Replace(std::move(*applied.mesh));
  return {existing == nullptr ? 201 : 200,
          json({{"dashboard", address},
                {"file", domain->folder + "/dashboards/" + name + ".yaml"},
                {"content", content}})
              .dump()};
}

}  // namespace canopy::server
