// The audit log: every read, grant, decision, publish and token issue, appended to
// a hash chain in the catalog store, and its verification.
#pragma once

#include <optional>
#include <string>

#include "catalog/catalog.h"

namespace canopy::governance {

// An entry made now, not yet chained: for CatalogStore::Publish, which appends a
// publish's entries in its own transaction. `details` is a JSON object's text.
catalog::AuditEntry MakeAuditEntry(const std::string& principal, const std::string& action,
                                   const std::string& target, const std::string& outcome,
                                   const std::string& details);

// Appends one entry (now, chained). `details` is a JSON object's text.
catalog::AuditEntry RecordAudit(catalog::CatalogStore& catalog, const std::string& principal,
                                const std::string& action, const std::string& target,
                                const std::string& outcome, const std::string& details);

struct AuditVerification {
  int64_t entries = 0;               // entries checked
  std::optional<int64_t> first_bad;  // seq of the first entry that does not verify
  std::string problem;               // what is wrong with it
  bool ok() const { return !first_bad.has_value(); }
};

// Recomputes the chain from the first entry: each hash must match its fields and
// the previous hash, and sequence numbers must have no gaps.
AuditVerification VerifyAudit(catalog::CatalogStore& catalog);

}  // namespace canopy::governance
