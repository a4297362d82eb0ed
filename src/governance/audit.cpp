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
  const catalog::AuditSeal& seal = catalog.Seal();
  std::string previous_hash(64, '0');
  int64_t expected_seq = 1;
  bool keyed_seen = false;
  constexpr int kPage = 1000;
  auto bad = [&](int64_t seq, std::string problem) {
    result.first_bad = seq;
    result.problem = std::move(problem);
    return result;
  };
  for (int64_t after = 0;;) {
    auto page = catalog.Audit(after, kPage);
    for (const auto& entry : page) {
      ++result.entries;
      if (entry.seq != expected_seq) {
        return bad(entry.seq, "entries " + std::to_string(expected_seq) + " to " +
                                  std::to_string(entry.seq - 1) + " are missing");
      }
      if (entry.prev_hash != previous_hash) {
        return bad(entry.seq,
                   "its link to the entry before does not match (an entry was changed, "
                   "removed or inserted)");
      }
      if (seal.Hash(entry) == entry.hash) {
        keyed_seen = true;
      } else if (keyed_seen || catalog::AuditEntryHash(entry) != entry.hash) {
        // Unkeyed entries are those written before the catalog had its key: a prefix
        // of the chain, held in place by the keyed entries after it.
        return bad(entry.seq,
                   "its content does not match its hash (it was changed, or the chain was "
                   "re-hashed without the audit key " +
                       seal.key_path() + ")");
      }
      previous_hash = entry.hash;
      ++expected_seq;
      after = entry.seq;
    }
    if (static_cast<int>(page.size()) < kPage) break;
  }
  const int64_t count = expected_seq - 1;
  catalog::AuditCheckpoint checkpoint;
  switch (seal.Read(checkpoint)) {
    case catalog::AuditSeal::Checkpoint::kForged:
      return bad(count, "the checkpoint " + seal.checkpoint_path() +
                            " is not signed with the audit key (it was forged or changed)");
    case catalog::AuditSeal::Checkpoint::kNone:
      if (keyed_seen || !seal.checkpoint_path().empty()) {
        return bad(count, "the checkpoint " + seal.checkpoint_path() +
                              " is missing (it was deleted, and entries may have been cut)");
      }
      break;
    case catalog::AuditSeal::Checkpoint::kValid:
      if (checkpoint.seq > count) {
        return bad(count + 1, "the log ends at entry " + std::to_string(count) +
                                  " but the checkpoint names entry " +
                                  std::to_string(checkpoint.seq) +
                                  ": entries were cut off the end");
      }
      if (checkpoint.seq > 0) {
        auto at = catalog.Audit(checkpoint.seq - 1, 1);
        if (at.empty() || at[0].hash != checkpoint.hash) {
          return bad(checkpoint.seq,
                     "it does not match the checkpoint (entries were rewritten up to it)");
        }
      }
      break;
  }
  return result;
}

}  // namespace canopy::governance
