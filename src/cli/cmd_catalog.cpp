// canopy catalog info, and canopy catalog migrate --to postgresql://…
#include <iostream>
#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "cli/table.h"
#include "core/error.h"
#include "governance/audit.h"

namespace canopy::cli {

namespace {

int64_t CountOf(const catalog::CatalogInfo& info, const std::string& kind) {
  for (const auto& [name, count] : info.counts) {
    if (name == kind) return count;
  }
  return 0;
}

}  // namespace

int RunCatalogInfo(const GlobalOptions& global, OutputFormat format) {
  MeshSession session = OpenMesh(global);
  const catalog::CatalogInfo info = session.catalog->Info();
  if (format == OutputFormat::kJson) {
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [kind, count] : info.counts) counts[kind] = count;
    std::cout << nlohmann::json{{"store", info.store},
                                {"location", info.location},
                                {"schema_version", info.schema_version},
                                {"counts", counts}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << "store           " << info.store << "\n"
            << "location        " << info.location << "\n"
            << "schema version  " << info.schema_version << "\n\n";
  Table table({"holds", ">count"});
  for (const auto& [kind, count] : info.counts) table.AddRow({kind, std::to_string(count)});
  table.Print(std::cout);
  return 0;
}

int RunCatalogMigrate(const GlobalOptions& global, const std::string& to) {
  if (!catalog::IsPostgresUrl(to)) {
    throw Error(ErrorCode::kUsage, "--to takes a PostgreSQL URL",
                "for example --to postgresql://canopy@db.example:5432/mesh");
  }
  MeshSession session = OpenMesh(global);
  const catalog::CatalogInfo from = session.catalog->Info();
  if (from.store != "sqlite") {
    throw Error(ErrorCode::kUsage, "the mesh's catalog is on " + from.store + " already",
                "migrate copies a SQLite catalog into PostgreSQL; CANOPY_CATALOG or mesh.yaml's "
                "catalog: chooses which one the mesh uses");
  }
  // The source must verify: a tampered chain is evidence, and is not laundered into a
  // fresh store.
  const governance::AuditVerification before = governance::VerifyAudit(*session.catalog);
  if (!before.ok()) {
    throw Error(ErrorCode::kFailed,
                "the audit log of " + from.location + " does not verify at entry " +
                    std::to_string(*before.first_bad) + ": " + before.problem,
                "nothing was copied; canopy audit --verify shows the problem");
  }
  const catalog::CatalogDump dump = session.catalog->Dump();
  auto target = catalog::OpenCatalog(to, session.seal_folder);
  target->Load(dump);
  const catalog::CatalogInfo copied = target->Info();
  governance::RecordAudit(*target, "local", "catalog.migrate", copied.location, "ok",
                          nlohmann::json{{"from", from.location},
                                         {"versions", CountOf(copied, "versions")},
                                         {"audit_entries", dump.audit.size()}}
                              .dump());
  const governance::AuditVerification after = governance::VerifyAudit(*target);
  if (!after.ok()) {
    throw Error(ErrorCode::kFailed,
                "the copied audit log does not verify at entry " +
                    std::to_string(*after.first_bad) + ": " + after.problem,
                "the SQLite catalog is unchanged; drop the PostgreSQL schema and report this");
  }
  std::cout << "copied " << from.location << " into " << copied.location << ":\n";
  Table table({"holds", ">source", ">copied"});
  for (const auto& [kind, count] : copied.counts) {
    table.AddRow({kind, std::to_string(CountOf(from, kind)), std::to_string(count)});
  }
  table.Print(std::cout);
  std::cout << "audit chain verified (" << after.entries << " entries, the last one this move)\n"
            << "the mesh still uses " << from.location
            << "; to switch, set catalog: to the URL in mesh.yaml (or CANOPY_CATALOG)\n";
  return 0;
}

int RunCatalogUpgrade(const GlobalOptions& global) {
  MeshSession session = OpenMesh(global, catalog::Upgrade::kApply);
  const catalog::CatalogInfo info = session.catalog->Info();
  if (info.opened_at_version == info.schema_version) {
    std::cout << info.location << " is at schema version " << info.schema_version
              << " already; nothing to do\n";
    return 0;
  }
  if (info.opened_at_version == 0) {
    std::cout << "made a new catalog " << info.location << " at schema version "
              << info.schema_version << "\n";
    return 0;
  }
  governance::RecordAudit(
      *session.catalog, "local", "catalog.upgrade", info.location, "ok",
      nlohmann::json{{"from", info.opened_at_version}, {"to", info.schema_version}}.dump());
  std::cout << "upgraded " << info.location << " from schema version " << info.opened_at_version
            << " to " << info.schema_version << "\n";
  return 0;
}

}  // namespace canopy::cli
