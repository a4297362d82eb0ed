#include "governance/audit.h"

#include "core/clock.h"

namespace canopy::governance {

catalog::AuditEntry MakeAuditEntry(const std::string& principal, const std::string& action,
                                   const std::string& target, const std::string& outcome,
                                   const std::string& details) {
  catalog::AuditEntry entry;
  entry.at = NowIso8601();
  entry.principal = principal;
  entry.action = action;
  entry.target = target;
  entry.outcome = outcome;
  entry.details = details;
  return entry;
}

catalog::AuditEntry RecordAudit(catalog::CatalogStore& catalog, const std::string& principal,
                                const std::string& action, const std::string& target,
                                const std::string& outcome, const std::string& details) {
  return catalog.AppendAudit(MakeAuditEntry(principal, action, target, outcome, details));
}

AuditVerification VerifyAudit(catalog::CatalogStore& catalog) {
  AuditVerification result;
  const catalog::AuditSeal& seal = catalog.Seal();
  auto bad = [&](int64_t seq, std::string problem) {
    result.first_bad = seq;
    result.problem = std::move(problem);
    return result;
  };
  if (!seal.has_key()) {
    if (catalog.Audit(0, 1).empty()) return result;
    return bad(0, catalog::MissingAuditKey(seal).what());
  }
  // The checkpoint first: it only moves forward, after its entry is committed, so a
  // log read after it is never shorter than it when nothing was cut.
  catalog::AuditCheckpoint checkpoint;
  const catalog::AuditSeal::Checkpoint state = seal.Read(checkpoint);
  if (state == catalog::AuditSeal::Checkpoint::kForged) {
    return bad(0, "the checkpoint " + seal.checkpoint_path() +
                      " is not signed with the audit key (it was forged or changed)");
  }
  if (state == catalog::AuditSeal::Checkpoint::kNone && !seal.checkpoint_path().empty()) {
    return bad(0, "the checkpoint " + seal.checkpoint_path() +
                      " is missing (it was deleted, and entries may have been cut)");
  }
  std::string previous_hash(64, '0');
  int64_t expected_seq = 1;
  constexpr int kPage = 1000;
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
      // Only the entries the checkpoint names as from before the key may be unkeyed.
      const bool unkeyed_allowed = entry.seq <= checkpoint.keyed_after;
      if (seal.Hash(entry) != entry.hash &&
          !(unkeyed_allowed && catalog::AuditEntryHash(entry) == entry.hash)) {
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
  if (state == catalog::AuditSeal::Checkpoint::kValid) {
    if (checkpoint.seq > count) {
      return bad(count + 1, "the log ends at entry " + std::to_string(count) +
                                " but the checkpoint names entry " +
                                std::to_string(checkpoint.seq) + ": entries were cut off the end");
    }
    if (checkpoint.seq > 0) {
      auto at = catalog.Audit(checkpoint.seq - 1, 1);
      if (at.empty() || at[0].hash != checkpoint.hash) {
        return bad(checkpoint.seq,
                   "it does not match the checkpoint (entries were rewritten up to it)");
      }
    }
  }
  return result;
}

}  // namespace canopy::governance
