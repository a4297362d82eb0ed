// Bearer tokens: Canopy's own ("cnp_<id>_<secret>": only SHA-256(secret) is stored; a
// token is looked up by id and its hash compared in constant time; it may expire), and —
// when mesh.yaml has `auth: { oidc: … }` — JWTs from the company's identity provider
// (governance/oidc.h). Every place that takes a token takes both, through Authenticate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "core/scram.h"
#include "spec/model.h"

namespace canopy::governance {

struct IssuedToken {
  int64_t id = 0;
  std::string token;       // shown once, never stored
  std::string expires_at;  // ISO 8601 UTC; empty: never
};

// A new token for `user` (who must exist; the caller checks), valid for `lifetime_seconds`
// from now (nullopt: until revoked), audited.
IssuedToken IssueToken(catalog::CatalogStore& catalog, const std::string& user,
                       std::optional<int64_t> lifetime_seconds = std::nullopt);

// The verdict on a presented token.
struct Authentication {
  std::optional<std::string> user;  // a user of the mesh, when accepted
  // Groups the identity provider gave (only groups mesh.yaml declares, never an admin
  // group: admin comes from mesh.yaml alone); empty for Canopy tokens.
  std::vector<std::string> groups;
  std::optional<int64_t> expires_at;  // seconds since the epoch; nullopt: never
  std::string kind = "token";         // "token" (Canopy's) or "oidc"
  std::string reason;                 // why refused ("expired", "wrong audience" …)

  bool accepted() const { return user.has_value(); }
};

// Judges `token`: a JWT when it has a JWT's shape and the mesh takes OIDC tokens, else a
// Canopy token. Refuses (with the reason, never the token) one that is malformed,
// unknown, revoked, expired, forged, or — for a JWT — of another issuer or audience, of a
// key the provider does not publish, or naming a user the mesh does not declare.
Authentication Authenticate(catalog::CatalogStore& catalog, const spec::Mesh& mesh,
                            const std::string& token);

// SCRAM-SHA-256 on the PostgreSQL wire (core/scram.h): the client proves it holds one of the
// user's tokens without sending it. Each token made since catalog migration 8 has a
// verifier; all of a user's share one salt, derived from the catalog's secret and the user's
// name, so the server can name it before it knows which token the client holds — and name
// one for a user with no token, or none at all, alike.
std::string ScramSalt(catalog::CatalogStore& catalog, const std::string& user);
struct ScramCandidates {
  std::string salt;
  std::vector<scram::Verifier> verifiers;  // of the user's tokens that are neither revoked
  std::vector<int64_t> token_ids;          // nor expired; in the same order, their ids
  std::vector<Authentication> verdicts;    // and the verdict on each (accepted)
};
ScramCandidates ScramCandidatesFor(catalog::CatalogStore& catalog, const std::string& user);
// The verdict on token `id`, its secret proven another way (SCRAM): refused when it is
// unknown, revoked or expired. What a SCRAM session checks before each statement.
Authentication AuthenticateTokenId(catalog::CatalogStore& catalog, int64_t id);

}  // namespace canopy::governance
