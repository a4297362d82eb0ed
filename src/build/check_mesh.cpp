#include "build/check_mesh.h"

#include <set>
#include "build/lineage_step.h"
#include "engine/engine.h"

#include "governance/gates.h"
#include "governance/guard.h"
#include "spec/chart_sql.h"
#include "spec/validate.h"

namespace canopy::build {

void CheckMesh(spec::Mesh& mesh, Diagnostics& diagnostics) {
  spec::ValidateMesh(mesh, diagnostics);
  // The global rules (publish gates), over the specs' metadata and standing grants.
  if (!diagnostics.HasErrors()) {
    for (const auto& violation : governance::EvaluateGates(mesh, {})) {
      const auto& rule = *violation.rule;
      const std::string message = "publish gate '" + rule.name + "': " + violation.row;
      const std::string hint = rule.description.empty() ? "" : rule.description;
      if (rule.severity == spec::RuleSeverity::kError) {
        diagnostics.Error(rule.location, message, hint);
      } else {
        diagnostics.Warning(rule.location, message, hint);
      }
    }
  }
  // Classification follows the data, where the lineage is known from the specs alone.
  if (!diagnostics.HasErrors()) {
    engine::Database database(engine::WithoutFileAccess());
    engine::Connection parser(database);
    for (const auto& domain : mesh.domains) {
      for (const auto& product : domain.products) {
        for (const auto& f : CheckClassificationsFromSpecs(parser, mesh, product).weaker) {
          diagnostics.Error(f.location, Describe(f, product), DeclassifyHint(f.lineage));
        }
      }
    }
    // Dashboards' queries, by the guard each viewer's query meets: one read-only SELECT
    // over ports that exist (whether a viewer may read them is decided per viewer).
    std::set<std::string> ports;
    for (const auto& domain : mesh.domains) {
      for (const auto& product : domain.products) {
        for (const auto& port : product.outputs) ports.insert(domain.name + "." + port.name);
      }
    }
    for (const auto& domain : mesh.domains) {
      for (const auto& dashboard : domain.dashboards) {
        for (const auto& chart : dashboard.charts) {
          std::string sql;  // as the guard meets it with every filter given
          try {
            sql = spec::ChartSqlWithEveryFilter(chart.sql);
          } catch (const Error&) {
            continue;  // said by spec validation (ValidateMesh)
          }
          const auto verdict = governance::Guard(parser, sql, ports);
          if (!verdict.allowed) {
            diagnostics.Error(chart.sql_location,
                              "chart '" + chart.name + "' of " + dashboard.Address() +
                                  ": the query would be refused: " + verdict.reason,
                              "a chart reads output ports (domain.port) with one SELECT");
          }
        }
      }
    }
  }
  diagnostics.Sort();
}

}  // namespace canopy::build
