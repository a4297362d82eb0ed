// Bearer tokens from the company's identity provider: OpenID Connect ID or access
// tokens (JWTs signed RS256 or ES256), accepted beside Canopy's own tokens when
// mesh.yaml has `auth: { oidc: … }`. The JWT library is used in oidc.cpp alone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spec/model.h"

namespace canopy::governance {

// Who a valid token says the bearer is, as the token says it (not yet mapped to the mesh).
struct OidcIdentity {
  std::string user;                 // the user_claim's value
  std::vector<std::string> groups;  // the groups_claim's values (strings only)
  int64_t expires_at = 0;           // exp, seconds since the epoch
};

// The verdict on one token: an identity, or why not — in words for the audit log and the
// 401 ("expired", "wrong audience" …), never the token itself.
struct OidcVerdict {
  std::optional<OidcIdentity> identity;
  std::string reason;
};

// Whether `token` has a JWT's shape (three dot-separated base64url parts, the first
// non-empty), so it is judged as one rather than as a Canopy token.
bool LooksLikeJwt(std::string_view token);

// Judges tokens against one provider: signature by the key its `kid` names, alg RS256 or
// ES256 only (and the key's own type), exp (required) and nbf with the leeway, iss and
// aud. Keeps the provider's keys: a jwks_file is read again when its modification time or
// size changes; a jwks_url is fetched on first use, again when a token names a kid it
// does not hold (at most once per jwks_refresh), and at least hourly. A key missing from
// the newest JWKS is no longer trusted. Thread-safe.
class OidcVerifier {
 public:
  OidcVerifier(spec::OidcSettings settings, std::string mesh_root);
  ~OidcVerifier();
  OidcVerifier(const OidcVerifier&) = delete;
  OidcVerifier& operator=(const OidcVerifier&) = delete;

  OidcVerdict Verify(const std::string& token);

  // How many times the JWKS was read (file) or fetched (URL); for tests.
  int64_t jwks_loads() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The verifier for `mesh`'s settings, one per process and settings, so keys are kept
// across requests and sessions; nullptr when the mesh takes no OIDC tokens.
std::shared_ptr<OidcVerifier> OidcVerifierFor(const spec::Mesh& mesh);

// GETs `url` (https:// verified against the system's certificate authorities, or
// http://), no redirects, one deadline, at most `max_bytes` of body. Throws Error(kFailed)
// saying what failed, or the status when it is not 200 (core/http_client.h).
std::string FetchUrl(const std::string& url, int timeout_ms, size_t max_bytes);

}  // namespace canopy::governance
