#include "governance/tokens.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/hash.h"
#include "core/scram.h"
#include "governance/audit.h"
#include "governance/oidc.h"

namespace canopy::governance {
namespace {

Authentication Refused(std::string kind, std::string reason) {
  Authentication out;
  out.kind = std::move(kind);
  out.reason = std::move(reason);
  return out;
}

Authentication LiveToken(const catalog::TokenRecord& record);

Authentication CanopyToken(catalog::CatalogStore& catalog, const std::string& token) {
  // cnp_<digits>_<64 hex>
  if (token.size() < 4 + 1 + 1 + 64 || token.compare(0, 4, "cnp_") != 0) {
    return Refused("token", "malformed");
  }
  const auto underscore = token.find('_', 4);
  if (underscore == std::string::npos || token.size() - underscore - 1 != 64) {
    return Refused("token", "malformed");
  }
  int64_t id = 0;
  const char* first = token.data() + 4;
  const char* last = token.data() + underscore;
  auto [end, error] = std::from_chars(first, last, id);
  if (error != std::errc() || end != last || id <= 0) return Refused("token", "malformed");
  auto record = catalog.GetToken(id);
  if (!record) return Refused("token", "unknown token " + std::to_string(id));
  const std::string presented = Sha256Hex(token.substr(underscore + 1));
  if (!ConstantTimeEquals(presented, record->secret_hash)) {
    return Refused("token", "wrong secret for token " + std::to_string(id));
  }
  return LiveToken(*record);
}

// The verdict on a token whose secret was proven: refused when revoked or expired.
Authentication LiveToken(const catalog::TokenRecord& record) {
  if (!record.revoked_at.empty()) return Refused("token", "revoked");
  Authentication out;
  if (!record.expires_at.empty()) {
    const auto expires = UnixSecondsFromIso(record.expires_at);
    if (!expires || NowUnixSeconds() >= *expires) return Refused("token", "expired");
    out.expires_at = expires;
  }
  out.user = record.user;
  return out;
}

Authentication OidcToken(const spec::Mesh& mesh, OidcVerifier& verifier, const std::string& token) {
  OidcVerdict verdict = verifier.Verify(token);
  if (!verdict.identity) return Refused("oidc", verdict.reason);
  const spec::User* user = mesh.FindUser(verdict.identity->user);
  if (user == nullptr) {
    std::string name = verdict.identity->user.substr(0, 64);
    for (char& c : name) {
      if (c < 0x20 || c >= 0x7f) c = '?';
    }
    return Refused("oidc", "user '" + name + "' is not declared in mesh.yaml");
  }
  Authentication out;
  out.kind = "oidc";
  out.user = user->name;
  out.expires_at = verdict.identity->expires_at;
  for (const std::string& group : verdict.identity->groups) {
    const spec::Group* declared = mesh.FindGroup(group);
    if (declared == nullptr || declared->admin) continue;
    if (std::find(out.groups.begin(), out.groups.end(), group) == out.groups.end()) {
      out.groups.push_back(group);
    }
  }
  std::sort(out.groups.begin(), out.groups.end());
  return out;
}

}  // namespace

IssuedToken IssueToken(catalog::CatalogStore& catalog, const std::string& user,
                       std::optional<int64_t> lifetime_seconds) {
  const std::string secret = RandomHex(32);
  IssuedToken issued;
  if (lifetime_seconds)
    issued.expires_at = IsoFromUnixSeconds(NowUnixSeconds() + *lifetime_seconds);
  issued.id = catalog.CreateToken(user, Sha256Hex(secret), NowIso8601(), issued.expires_at);
  issued.token = "cnp_" + std::to_string(issued.id) + "_" + secret;
  catalog.SetTokenScram(issued.id,
                        scram::Format(scram::MakeVerifier(issued.token, ScramSalt(catalog, user))));
  nlohmann::json details = nlohmann::json::object();
  if (!issued.expires_at.empty()) details["expires_at"] = issued.expires_at;
  RecordAudit(catalog, "user:" + user, "token", "token " + std::to_string(issued.id), "ok",
              details.dump());
  return issued;
}

std::string ScramSalt(catalog::CatalogStore& catalog, const std::string& user) {
  return HmacSha256Hex(catalog.MaskSalt(), "scram-sha-256 salt of " + user).substr(0, 32);
}

ScramCandidates ScramCandidatesFor(catalog::CatalogStore& catalog, const std::string& user) {
  ScramCandidates out;
  out.salt = ScramSalt(catalog, user);
  for (const auto& record : catalog.Tokens()) {
    if (record.user != user || record.scram.empty()) continue;
    Authentication verdict = LiveToken(record);
    auto verifier = scram::Parse(record.scram);
    if (!verdict.accepted() || !verifier || verifier->salt != out.salt ||
        verifier->iterations != scram::kIterations) {
      continue;
    }
    out.verifiers.push_back(std::move(*verifier));
    out.token_ids.push_back(record.id);
    out.verdicts.push_back(std::move(verdict));
  }
  return out;
}

Authentication AuthenticateTokenId(catalog::CatalogStore& catalog, int64_t id) {
  auto record = catalog.GetToken(id);
  if (!record) return Refused("token", "unknown token " + std::to_string(id));
  return LiveToken(*record);
}

Authentication Authenticate(catalog::CatalogStore& catalog, const spec::Mesh& mesh,
                            const std::string& token) {
  if (LooksLikeJwt(token)) {
    if (auto verifier = OidcVerifierFor(mesh)) return OidcToken(mesh, *verifier, token);
    return Refused("oidc", "this mesh takes no OIDC tokens (mesh.yaml has no auth.oidc)");
  }
  return CanopyToken(catalog, token);
}

}  // namespace canopy::governance
