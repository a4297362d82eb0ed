// Internal to cli: one function per command. Each returns an exit code or throws
// canopy::Error, which RunCli maps to a message and an exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace canopy::cli {

enum class OutputFormat { kTable, kJson };

struct GlobalOptions {
  std::optional<std::string> mesh;  // --mesh
};

int RunValidate(const GlobalOptions& global, OutputFormat format);
int RunInit(const std::string& dir, const std::string& domain, const std::string& owner,
            const std::string& name);
int RunExample(const std::string& dir, double scale, bool overwrite);
int RunBuildCommand(const GlobalOptions& global, const std::vector<std::string>& targets,
                    const std::vector<std::string>& domains, bool force, int jobs);
int RunProducts(const GlobalOptions& global, OutputFormat format);
int RunShow(const GlobalOptions& global, const std::string& address, OutputFormat format);
int RunQuery(const GlobalOptions& global, const std::string& as, const std::string& sql,
             const std::string& format, const std::string& output, int64_t max_rows);
int RunGrant(const GlobalOptions& global, const std::string& address, const std::string& grantee,
             const std::string& as, bool revoke);
int RunAccessRequest(const GlobalOptions& global, const std::string& address, const std::string& as,
                     const std::string& purpose);
int RunAccessDecision(const GlobalOptions& global, int64_t id, const std::string& as, bool approve,
                      const std::string& note);
int RunAccessList(const GlobalOptions& global, OutputFormat format);
int RunAudit(const GlobalOptions& global, bool verify, bool seal, OutputFormat format, int limit);
struct PgServeOptions {
  std::string tls_cert;  // PEM files; both or neither
  std::string tls_key;
  std::string listen;  // empty: no PostgreSQL protocol
  int max_connections = 64;
  int idle_timeout_s = 3600;
  std::string auth;  // scram-sha-256 | password | "" (SCRAM unless the mesh takes OIDC tokens)
};
int RunServe(const GlobalOptions& global, const std::string& listen, int threads,
             const PgServeOptions& pg, int max_upload_mb);
int RunTokenCreate(const GlobalOptions& global, const std::string& user,
                   const std::string& expires);
int RunTokenList(const GlobalOptions& global, OutputFormat format);
int RunTokenRevoke(const GlobalOptions& global, int64_t id);
int RunContractDiff(const GlobalOptions& global, const std::string& address);
int RunExport(const GlobalOptions& global, const std::string& standard, const std::string& address);
// `canopy export dashboard D.N [--output FILE]`: the dashboard's YAML.
int RunExportDashboard(const GlobalOptions& global, const std::string& address,
                       const std::string& output);
int RunImport(const GlobalOptions& global, const std::string& file, const std::string& domain,
              const std::string& name);
// canopy lineage D.P[.COLUMN]: direction up | down | both; format text | json | dot.
int RunLineage(const GlobalOptions& global, const std::string& target, const std::string& direction,
               const std::string& format);
// Every recorded OpenLineage event as JSON Lines, to `output` ("" or "-": stdout).
int RunExportOpenLineage(const GlobalOptions& global, const std::string& output);
// canopy catalog info: which store, where (never a password), schema version, counts.
int RunCatalogInfo(const GlobalOptions& global, OutputFormat format);
// canopy catalog migrate --to URL: copies the SQLite catalog into an empty PostgreSQL one.
int RunCatalogMigrate(const GlobalOptions& global, const std::string& to);
int RunCatalogUpgrade(const GlobalOptions& global);
int RunSearch(const GlobalOptions& global, const std::string& text, OutputFormat format, int limit);

// How to show the mesh folder before a relative path: "" when it is the current
// folder, "demo/" below it, else the absolute path with a '/'.
std::string DisplayPrefix(const std::string& root);

}  // namespace canopy::cli
