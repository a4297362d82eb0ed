// API tokens: "cnp_<id>_<secret>". Only SHA-256(secret) is stored; a token is
// checked by looking its record up by id and comparing hashes in constant time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "catalog/catalog.h"

namespace canopy::governance {

struct IssuedToken {
  int64_t id = 0;
  std::string token;  // shown once, never stored
};

// A new token for `user` (who must exist; the caller checks), audited.
IssuedToken IssueToken(catalog::CatalogStore& catalog, const std::string& user);

// The user a token belongs to; nullopt when it is malformed, unknown, revoked or
// its secret does not match.
std::optional<std::string> Authenticate(catalog::CatalogStore& catalog, const std::string& token);

}  // namespace canopy::governance
