// canopy serve, and canopy token create|list|revoke.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "build/runner.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "cli/table.h"
#include "core/clock.h"
#include "core/error.h"
#include "governance/audit.h"
#include "governance/tokens.h"
#include "server/server.h"

namespace canopy::cli {

int RunServe(const GlobalOptions& global, const std::string& listen, int threads,
             const PgServeOptions& pg, int max_upload_mb) {
  MeshSession session = OpenMesh(global);
  server::ServeOptions options;
  options.listen = listen;
  options.threads = threads;
  options.pg_listen = pg.listen;
  options.pg_max_connections = pg.max_connections;
  options.pg_idle_timeout_s = pg.idle_timeout_s;
  if (pg.tls_cert.empty() != pg.tls_key.empty()) {
    throw Error(ErrorCode::kUsage, "--pg-tls-cert and --pg-tls-key go together",
                "give both the certificate and its private key");
  }
  options.pg_tls_cert = pg.tls_cert;
  options.pg_tls_key = pg.tls_key;
  options.pg_auth = pg.auth;
  options.seal_folder = session.seal_folder;
  options.max_upload_bytes = static_cast<size_t>(max_upload_mb) << 20;
  return server::Serve(session.mesh, session.catalog_location, options);
}

int RunTokenCreate(const GlobalOptions& global, const std::string& user,
                   const std::string& expires) {
  // The lifetime is read before the mesh is opened: a typo costs no catalog work.
  std::optional<int64_t> lifetime;
  if (!expires.empty()) {
    lifetime = ParseDurationSeconds(expires);
    if (!lifetime) {
      throw Error(ErrorCode::kUsage, "--expires must be a duration, not '" + expires + "'",
                  "a whole number and a unit s, m, h or d, e.g. --expires 30d or --expires 12h");
    }
  }
  MeshSession session = OpenMesh(global);
  if (session.mesh.FindUser(user) == nullptr) {
    throw Error(ErrorCode::kNotFound, "no user '" + user + "' in the mesh",
                "users are declared under principals.users in mesh.yaml");
  }
  if (!lifetime) lifetime = session.mesh.auth.token_default_expiry_seconds;
  auto issued = governance::IssueToken(*session.catalog, user, lifetime);
  std::cerr << "token " << issued.id << " for " << user
            << (issued.expires_at.empty() ? ", never expires" : ", expires " + issued.expires_at)
            << " (shown once; only its hash is kept — revoke with canopy token revoke " << issued.id
            << "):\n";
  std::cout << issued.token << "\n";
  return 0;
}

int RunTokenList(const GlobalOptions& global, OutputFormat format) {
  MeshSession session = OpenMesh(global);
  auto tokens = session.catalog->Tokens();
  auto nullable = [](const std::string& text) {
    return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
  };
  const std::string now = NowIso8601();
  if (format == OutputFormat::kJson) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : tokens) {
      out.push_back({{"id", t.id},
                     {"user", t.user},
                     {"created_at", t.created_at},
                     {"expires_at", nullable(t.expires_at)},
                     {"expired", !t.expires_at.empty() && t.expires_at <= now},
                     {"revoked_at", nullable(t.revoked_at)}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  Table table({">id", "user", "created", "expires", "revoked"});
  for (const auto& t : tokens) {
    std::string expires = t.expires_at.empty() ? "never" : t.expires_at;
    if (!t.expires_at.empty() && t.expires_at <= now) expires += " (expired)";
    table.AddRow({std::to_string(t.id), t.user, t.created_at, expires, t.revoked_at});
  }
  table.Print(std::cout);
  return 0;
}

int RunTokenRevoke(const GlobalOptions& global, int64_t id) {
  MeshSession session = OpenMesh(global);
  if (!session.catalog->RevokeToken(id, NowIso8601())) {
    throw Error(ErrorCode::kNotFound, "no valid token " + std::to_string(id),
                "canopy token list shows them");
  }
  governance::RecordAudit(*session.catalog, "local", "token", "token " + std::to_string(id), "ok",
                          R"({"revoked":true})");
  std::cout << "token " << id << " revoked\n";
  return 0;
}

}  // namespace canopy::cli
