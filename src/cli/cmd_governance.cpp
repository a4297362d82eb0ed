// canopy query, grant, revoke, access and audit.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/session.h"
#include "cli/table.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/text.h"
#include "governance/audit.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "server/product_json.h"

namespace canopy::cli {
namespace {

using nlohmann::json;

std::string ValueText(const governance::Value& value) {
  struct Visitor {
    std::string operator()(std::monostate) const { return ""; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const {
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.15g", d);
      return buffer;
    }
    std::string operator()(const std::string& s) const { return s; }
  };
  return std::visit(Visitor{}, value);
}

json ValueJson(const governance::Value& value) {
  struct Visitor {
    json operator()(std::monostate) const { return nullptr; }
    json operator()(bool b) const { return b; }
    json operator()(int64_t i) const { return i; }
    json operator()(double d) const { return d; }
    json operator()(const std::string& s) const { return s; }
  };
  return std::visit(Visitor{}, value);
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

class TableSink : public governance::ResultSink {
 public:
  void Begin(const std::vector<governance::ResultColumn>& columns) override { columns_ = columns; }
  void Row(const std::vector<governance::Value>& row) override {
    std::vector<std::string> cells;
    for (const auto& value : row) {
      cells.push_back(std::holds_alternative<std::monostate>(value) ? "NULL" : ValueText(value));
    }
    rows_.push_back(std::move(cells));
  }
  void Print(std::ostream& out) const {
    std::vector<std::string> headers;
    for (const auto& column : columns_) headers.push_back(column.name + (column.masked ? "*" : ""));
    Table table(headers);
    for (const auto& row : rows_) table.AddRow(row);
    table.Print(out);
  }

 private:
  std::vector<governance::ResultColumn> columns_;
  std::vector<std::vector<std::string>> rows_;
};

class CsvSink : public governance::ResultSink {
 public:
  explicit CsvSink(std::ostream& out) : out_(out) {}
  void Begin(const std::vector<governance::ResultColumn>& columns) override {
    std::vector<std::string> names;
    for (const auto& column : columns) names.push_back(CsvField(column.name));
    out_ << Join(names, ",") << "\n";
  }
  void Row(const std::vector<governance::Value>& row) override {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out_ << ',';
      out_ << CsvField(ValueText(row[i]));
    }
    out_ << '\n';
  }

 private:
  std::ostream& out_;
};

// {"columns":[{"name","type"}],"rows":[[…]],"masked":[…]}, rows streamed.
class JsonSink : public governance::ResultSink {
 public:
  explicit JsonSink(std::ostream& out) : out_(out) {}
  void Begin(const std::vector<governance::ResultColumn>& columns) override {
    json list = json::array();
    for (const auto& column : columns) {
      list.push_back({{"name", column.name}, {"type", column.type}});
      if (column.masked) masked_.push_back(column.name);
    }
    out_ << "{\"columns\":" << list.dump() << ",\"rows\":[";
  }
  void Row(const std::vector<governance::Value>& row) override {
    json values = json::array();
    for (const auto& value : row) values.push_back(ValueJson(value));
    out_ << (first_ ? "\n" : ",\n") << values.dump();
    first_ = false;
  }
  void End(const governance::QueryOutcome& outcome) {
    out_ << "\n],\"masked\":" << json(masked_).dump()
         << ",\"truncated\":" << (outcome.truncated ? "true" : "false") << "}\n";
  }

 private:
  std::ostream& out_;
  bool first_ = true;
  std::vector<std::string> masked_;
};

void RequireAdministrator(const spec::Mesh& mesh, const governance::Principal& actor,
                          const spec::Product& product, const std::string& action,
                          catalog::CatalogStore& catalog) {
  if (governance::CanAdminister(mesh, actor, product)) return;
  const spec::Domain* domain = mesh.FindDomain(product.domain);
  governance::RecordAudit(
      catalog, actor.ToString(), action, product.Address(), "denied",
      json{{"reason", "not an owner of " + product.domain + " or an admin"}}.dump());
  throw Error(ErrorCode::kPermissionDenied,
              actor.ToString() + " may not " + action + " on " + product.Address() +
                  ": only owners of domain " + product.domain + " (" + Join(domain->owners, ", ") +
                  ") and admins may",
              "ask one of them");
}

std::string CheckedGrantee(const spec::Mesh& mesh, const std::string& grantee) {
  const auto colon = grantee.find(':');
  const std::string kind = colon == std::string::npos ? "" : grantee.substr(0, colon);
  const std::string name = colon == std::string::npos ? grantee : grantee.substr(colon + 1);
  const bool known = (kind == "user" && mesh.FindUser(name) != nullptr) ||
                     (kind == "group" && mesh.FindGroup(name) != nullptr) ||
                     (kind == "domain" && mesh.FindDomain(name) != nullptr);
  if (kind != "user" && kind != "group" && kind != "domain") {
    throw Error(ErrorCode::kUsage, "grantee '" + grantee + "' has no kind",
                "write --to user:NAME, group:NAME or domain:NAME");
  }
  if (!known) throw Error(ErrorCode::kNotFound, "no " + kind + " '" + name + "' in the mesh");
  return grantee;
}

}  // namespace

int RunQuery(const GlobalOptions& global, const std::string& as, const std::string& sql,
             const std::string& format, const std::string& output, int64_t max_rows) {
  MeshSession session = OpenMesh(global);
  governance::Principal principal = governance::ResolvePrincipal(session.mesh, as);
  governance::QueryOptions options;
  options.max_rows = max_rows;
  if (format == "parquet") {
    if (output.empty()) {
      throw Error(ErrorCode::kUsage, "--format parquet needs --output FILE");
    }
    options.parquet_path = output;
    TableSink unused;
    auto outcome = governance::RunGovernedQuery(session.mesh, *session.catalog, principal, sql,
                                                options, unused);
    std::cerr << WithThousands(outcome.rows) << " rows written to " << output << "\n";
    return 0;
  }
  std::ofstream file;
  if (!output.empty()) {
    file.open(output, std::ios::binary | std::ios::trunc);
    if (!file) throw Error(ErrorCode::kFailed, "cannot write " + output);
  }
  std::ostream& out = output.empty() ? std::cout : file;
  governance::QueryOutcome outcome;
  if (format == "csv") {
    CsvSink sink(out);
    outcome =
        governance::RunGovernedQuery(session.mesh, *session.catalog, principal, sql, options, sink);
  } else if (format == "json") {
    JsonSink sink(out);
    outcome =
        governance::RunGovernedQuery(session.mesh, *session.catalog, principal, sql, options, sink);
    sink.End(outcome);
  } else {
    TableSink sink;
    outcome =
        governance::RunGovernedQuery(session.mesh, *session.catalog, principal, sql, options, sink);
    sink.Print(out);
  }
  for (const auto& warning : outcome.warnings) std::cerr << "warning: " << warning << "\n";
  std::cerr << "(" << WithThousands(outcome.rows) << " rows"
            << (outcome.truncated ? ", truncated" : "") << ", " << Duration(outcome.duration_ms)
            << ")";
  if (!outcome.masked.empty()) std::cerr << "  masked: " << Join(outcome.masked, ", ");
  if (!outcome.filtered.empty()) {
    std::cerr << "  row filter: " << Join(outcome.filtered, ", ");
  }
  std::cerr << "\n";
  return 0;
}

int RunGrant(const GlobalOptions& global, const std::string& address, const std::string& grantee,
             const std::string& as, bool revoke) {
  MeshSession session = OpenMesh(global);
  const spec::Product& product = ProductArgument(session.mesh, address);
  const std::string& domain = product.domain;
  const std::string& name = product.name;
  governance::Principal actor = governance::ResolvePrincipal(session.mesh, as);
  const std::string action = revoke ? "revoke" : "grant";
  RequireAdministrator(session.mesh, actor, product, action, *session.catalog);
  const std::string who = CheckedGrantee(session.mesh, grantee);
  if (revoke) {
    if (!session.catalog->RevokeGrant(domain, name, who)) {
      throw Error(ErrorCode::kNotFound, who + " holds no runtime grant on " + address,
                  "standing grants are in the product's YAML (access.grants)");
    }
  } else {
    if (product.visibility == spec::Visibility::kPrivate) {
      throw Error(ErrorCode::kConflict, address + " is private; it cannot be granted",
                  "make it visibility: internal to share it");
    }
    session.catalog->AddGrant({0, domain, name, who, actor.ToString(), NowIso8601(), {}});
  }
  governance::RecordAudit(*session.catalog, actor.ToString(), action, address, "ok",
                          json{{"grantee", who}}.dump());
  std::cout << (revoke ? "revoked " : "granted ") << address << (revoke ? " from " : " to ") << who
            << "\n";
  return 0;
}

int RunAccessRequest(const GlobalOptions& global, const std::string& address, const std::string& as,
                     const std::string& purpose) {
  MeshSession session = OpenMesh(global);
  const spec::Product& product = ProductArgument(session.mesh, address);
  const std::string& domain = product.domain;
  const std::string& name = product.name;
  governance::Principal requester = governance::ResolvePrincipal(session.mesh, as);
  if (!governance::CanDiscover(requester, product)) {
    throw Error(ErrorCode::kNotFound, "no product '" + address + "'");
  }
  if (product.visibility == spec::Visibility::kPrivate) {
    throw Error(ErrorCode::kConflict,
                address + " is private to domain " + domain + " and cannot be shared");
  }
  if (Trim(purpose).empty()) {
    throw Error(ErrorCode::kUsage, "an access request needs a purpose",
                "say why: --purpose \"quarterly revenue report\"");
  }
  const int64_t id = session.catalog->CreateAccessRequest(
      {0, domain, name, requester.ToString(), purpose, "pending", NowIso8601(), "", "", ""});
  governance::RecordAudit(*session.catalog, requester.ToString(), "request", address, "ok",
                          json{{"request", id}, {"purpose", purpose}}.dump());
  const spec::Domain* owning = session.mesh.FindDomain(domain);
  std::cout << "access request " << id << " for " << address << " is pending; owners of " << domain
            << " (" << Join(owning->owners, ", ") << ") decide it:\n"
            << "  canopy access approve " << id << " --as " << owning->owners.front() << "\n";
  return 0;
}

int RunAccessDecision(const GlobalOptions& global, int64_t id, const std::string& as, bool approve,
                      const std::string& note) {
  MeshSession session = OpenMesh(global);
  auto request = session.catalog->GetAccessRequest(id);
  if (!request) {
    throw Error(ErrorCode::kNotFound, "no access request " + std::to_string(id),
                "canopy access list shows the requests");
  }
  const spec::Product* product = session.mesh.FindProduct(request->domain, request->product);
  if (product == nullptr) {
    throw Error(ErrorCode::kNotFound,
                request->domain + "." + request->product + " is no longer in the mesh");
  }
  governance::Principal actor = governance::ResolvePrincipal(session.mesh, as);
  const std::string action = approve ? "approve" : "deny";
  RequireAdministrator(session.mesh, actor, *product, action, *session.catalog);
  session.catalog->DecideAccessRequest(id, approve, actor.ToString(), NowIso8601(), note);
  governance::RecordAudit(
      *session.catalog, actor.ToString(), action, product->Address(), "ok",
      json{{"request", id}, {"requester", request->requester}, {"note", note}}.dump());
  std::cout << "access request " << id << " " << (approve ? "approved" : "denied") << ": "
            << request->requester << (approve ? " may now read " : " may not read ")
            << product->Address() << "\n";
  return 0;
}

int RunAccessList(const GlobalOptions& global, OutputFormat format) {
  MeshSession session = OpenMesh(global);
  auto requests = session.catalog->AccessRequests();
  if (format == OutputFormat::kJson) {
    json out = json::array();
    for (const auto& r : requests) {
      out.push_back(server::AccessRequestJson(r));
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  Table table({">id", "product", "requester", "status", "purpose", "decided by"});
  for (const auto& r : requests) {
    table.AddRow({std::to_string(r.id), r.domain + "." + r.product, r.requester, r.status,
                  r.purpose, r.decided_by});
  }
  table.Print(std::cout);
  return 0;
}

int RunAudit(const GlobalOptions& global, bool verify, bool seal, OutputFormat format, int limit) {
  MeshSession session = OpenMesh(global);
  if (seal) {
    session.catalog->SealAudit();
    std::cout << "audit log sealed: key " << session.catalog->Seal().key_path()
              << " (keep it apart from the catalog, and back it up)\n";
    return 0;
  }
  if (verify) {
    auto result = governance::VerifyAudit(*session.catalog);
    if (result.ok()) {
      std::cout << "audit log intact: " << result.entries << " entries verified\n";
      return 0;
    }
    std::cerr << "error: the audit log was tampered with: ";
    if (*result.first_bad > 0) std::cerr << "entry " << *result.first_bad << " ";
    std::cerr << result.problem << " (" << result.entries << " entries checked)\n";
    return 1;
  }
  auto entries = session.catalog->Audit(0, 1 << 30);
  if (limit > 0 && static_cast<int>(entries.size()) > limit) {
    entries.erase(entries.begin(), entries.end() - limit);
  }
  if (format == OutputFormat::kJson) {
    json out = json::array();
    for (const auto& e : entries) {
      out.push_back({{"seq", e.seq},
                     {"at", e.at},
                     {"principal", e.principal},
                     {"action", e.action},
                     {"target", e.target},
                     {"outcome", e.outcome},
                     {"details", json::parse(e.details, nullptr, false)},
                     {"hash", e.hash}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  Table table({">seq", "at", "principal", "action", "target", "outcome"});
  for (const auto& e : entries) {
    table.AddRow({std::to_string(e.seq), e.at, e.principal, e.action, e.target, e.outcome});
  }
  table.Print(std::cout);
  return 0;
}

}  // namespace canopy::cli
