#include "governance/tokens.h"

#include <charconv>

#include "core/clock.h"
#include "core/hash.h"
#include "governance/audit.h"

namespace canopy::governance {

IssuedToken IssueToken(catalog::CatalogStore& catalog, const std::string& user) {
  const std::string secret = RandomHex(32);
  IssuedToken issued;
  issued.id = catalog.CreateToken(user, Sha256Hex(secret), NowIso8601());
  issued.token = "cnp_" + std::to_string(issued.id) + "_" + secret;
  RecordAudit(catalog, "user:" + user, "token", "token " + std::to_string(issued.id), "ok", "{}");
  return issued;
}

std::optional<std::string> Authenticate(catalog::CatalogStore& catalog, const std::string& token) {
  // cnp_<digits>_<64 hex>
  if (token.size() < 4 + 1 + 1 + 64 || token.compare(0, 4, "cnp_") != 0) return std::nullopt;
  const auto underscore = token.find('_', 4);
  if (underscore == std::string::npos || token.size() - underscore - 1 != 64) return std::nullopt;
  int64_t id = 0;
  const char* first = token.data() + 4;
  const char* last = token.data() + underscore;
  auto [end, error] = std::from_chars(first, last, id);
  if (error != std::errc() || end != last || id <= 0) return std::nullopt;
  auto record = catalog.GetToken(id);
  if (!record || !record->revoked_at.empty()) return std::nullopt;
  const std::string presented = Sha256Hex(token.substr(underscore + 1));
  if (!ConstantTimeEquals(presented, record->secret_hash)) return std::nullopt;
  return record->user;
}

}  // namespace canopy::governance
