#include "governance/audit.h"

#include "core/clock.h"

namespace canopy::governance {

catalog::AuditEntry RecordAudit(catalog::CatalogStore& catalog, const std::string& principal,
                                const std::string& action, const std::string& target,
                                const std::string& outcome, const std::string& details) {
  catalog::AuditEntry entry;
  entry.at = NowIso8601();
  entry.principal = principal;
  entry.action = action;
  entry.target = target;
  entry.outcome = outcome;
  entry.details = details;
  return catalog.AppendAudit(entry);
}

AuditVerification VerifyAudit(catalog::CatalogStore& catalog) {
  AuditVerification result;
  std::string previous_hash(64, '0');
  int64_t expected_seq = 1;
  constexpr int kPage = 1000;
  for (int64_t after = 0;;) {
    auto page = catalog.Audit(after, kPage);
    for (const auto& entry : page) {
      ++result.entries;
      if (entry.seq != expected_seq) {
        result.first_bad = entry.seq;
        result.problem = "entries " + std::to_string(expected_seq) + " to " +
                         std::to_string(entry.seq - 1) + " are missing";
        return result;
      }
      if (entry.prev_hash != previous_hash) {
        result.first_bad = entry.seq;
        result.problem =
            "its link to the entry before does not match (an entry was changed, "
            "removed or inserted)";
        return result;
      }
      if (catalog::AuditEntryHash(entry) != entry.hash) {
        result.first_bad = entry.seq;
        result.problem = "its content does not match its hash (it was changed)";
        return result;
      }
      previous_hash = entry.hash;
      ++expected_seq;
      after = entry.seq;
    }
    if (static_cast<int>(page.size()) < kPage) break;
  }
  return result;
}

}  // namespace canopy::governance
