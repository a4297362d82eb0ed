#include "governance/gates.h"

#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"

namespace canopy::governance {
namespace {

std::string Row(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  quoted.reserve(values.size());
  for (const auto& value : values) quoted.push_back(SqlString(value));
  return "(" + Join(quoted, ", ") + ")";
}

// INSERT … VALUES for many rows, or nothing for none.
std::string Insert(const std::string& table, const std::vector<std::string>& rows) {
  return rows.empty() ? "" : "INSERT INTO " + table + " VALUES " + Join(rows, ", ") + ";";
}

std::string MetadataScript(const spec::Mesh& mesh, const std::vector<RuntimeGrant>& grants) {
  std::vector<std::string> domains;
  std::vector<std::string> products;
  std::vector<std::string> ports;
  std::vector<std::string> columns;
  std::vector<std::string> grant_rows;
  for (const auto& domain : mesh.domains) {
    domains.push_back(Row({domain.name, domain.description}));
    for (const auto& p : domain.products) {
      std::string owner = p.owner.empty() ? "NULL" : SqlString(p.owner);
      std::string description =
          p.description.purpose.empty() ? "NULL" : SqlString(p.description.purpose);
      products.push_back(
          "(" +
          Join({SqlString(p.domain), SqlString(p.name), SqlString(p.version.ToString()),
                SqlString(spec::ToString(p.status)), SqlString(spec::ToString(p.type)), owner,
                SqlString(spec::ToString(p.visibility)), description},
               ", ") +
          ")");
      for (const auto& port : p.outputs) {
        ports.push_back(Row({p.domain, p.name, port.name, port.description}));
        for (const auto& c : port.contract.properties) {
          const std::string type =
              c.physical_type.empty() ? spec::ToString(c.logical_type) : c.physical_type;
          columns.push_back("(" +
                            Join({SqlString(p.domain), SqlString(p.name), SqlString(port.name),
                                  SqlString(c.name), SqlString(type), SqlString(c.classification),
                                  c.required ? "true" : "false", c.unique ? "true" : "false",
                                  c.description.empty() ? "NULL" : SqlString(c.description)},
                                 ", ") +
                            ")");
        }
      }
      for (const auto& grant : p.grants) {
        grant_rows.push_back(Row({p.domain, p.name, grant.ToString()}));
      }
    }
  }
  for (const auto& grant : grants) {
    grant_rows.push_back(Row({grant.domain, grant.product, grant.grantee}));
  }
  return "CREATE TABLE domains (domain VARCHAR, description VARCHAR);"
         "CREATE TABLE products (domain VARCHAR, product VARCHAR, version VARCHAR, "
         "status VARCHAR, type VARCHAR, owner VARCHAR, visibility VARCHAR, description VARCHAR);"
         "CREATE TABLE ports (domain VARCHAR, product VARCHAR, port VARCHAR, "
         "description VARCHAR);"
         "CREATE TABLE columns (domain VARCHAR, product VARCHAR, port VARCHAR, \"column\" VARCHAR, "
         "type VARCHAR, classification VARCHAR, required BOOLEAN, \"unique\" BOOLEAN, "
         "description VARCHAR);"
         "CREATE TABLE grants (domain VARCHAR, product VARCHAR, grantee VARCHAR);" +
         Insert("domains", domains) + Insert("products", products) + Insert("ports", ports) +
         Insert("columns", columns) + Insert("grants", grant_rows);
}

}  // namespace

std::vector<GateViolation> EvaluateGates(const spec::Mesh& mesh,
                                         const std::vector<RuntimeGrant>& grants) {
  std::vector<GateViolation> violations;
  if (mesh.governance.rules.empty()) return violations;
  engine::Database database(engine::WithoutFileAccess());
  engine::Connection db(database);
  db.Execute(MetadataScript(mesh, grants) + "SET lock_configuration = true;");
  for (const auto& rule : mesh.governance.rules) {
    try {
      engine::Result result = db.Query("SELECT COLUMNS(*)::VARCHAR FROM (\n" + rule.sql + "\n)");
      int domain_column = -1;
      int product_column = -1;
      for (int c = 0; c < result.ColumnCount(); ++c) {
        if (ToLower(result.ColumnName(c)) == "domain") domain_column = c;
        if (ToLower(result.ColumnName(c)) == "product") product_column = c;
      }
      while (result.NextChunk()) {
        for (int64_t row = 0; row < result.ChunkRows(); ++row) {
          GateViolation violation;
          violation.rule = &rule;
          std::vector<std::string> cells;
          for (int c = 0; c < result.ColumnCount(); ++c) {
            const std::string value = result.IsNull(c, row) ? "NULL" : result.Text(c, row);
            cells.push_back(result.ColumnName(c) + "=" + value);
            if (c == domain_column) violation.domain = value;
            if (c == product_column) violation.product = value;
          }
          violation.row = Join(cells, ", ");
          violations.push_back(std::move(violation));
        }
      }
    } catch (const Error& e) {
      violations.push_back({&rule, "", "", std::string("the rule failed to run: ") + e.what()});
    }
  }
  return violations;
}

}  // namespace canopy::governance
