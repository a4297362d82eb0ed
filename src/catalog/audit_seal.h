// What makes the audit log tamper-evident beyond its own hash chain: a key kept
// outside the catalog, and a signed checkpoint of the chain's head kept apart.
//
// Each entry's hash is HMAC-SHA-256 under the key, so whoever can write the catalog
// but not read the key cannot rewrite an entry and re-hash the chain after it. After
// every append the checkpoint file records the highest sequence number and its hash,
// signed with the same key, so cutting entries off the end (or all of them) leaves a
// checkpoint that names an entry the log no longer has. The checkpoint only moves
// forward (under a file lock), however many processes append at once.
//
// The key is `keys/audit.key` beside the catalog file (made once, 0600, in a 0700
// folder), or the file CANOPY_AUDIT_KEY_FILE names — a deployment keeps it where the
// catalog's writers cannot read it. The checkpoint is `audit.checkpoint` beside the
// catalog file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/error.h"

namespace canopy::catalog {

struct AuditEntry;

struct AuditCheckpoint {
  int64_t seq = 0;
  std::string hash;
  // Entries up to this one may carry the unkeyed hash of a catalog from before the
  // key (sealed by `canopy audit --seal`); every later entry is keyed. 0 for a chain
  // keyed from its start.
  int64_t keyed_after = 0;
};

class AuditSeal {
 public:
  // For the catalog at `catalog_path` (":memory:" or "": a key in memory, no checkpoint).
  // Reads the key; makes none (see MakeKey). The checkpoint is `checkpoint_name` in the
  // same folder: one per catalog, so that catalogs sharing a storage root (a SQLite one
  // and the PostgreSQL one it was migrated to) keep their own.
  explicit AuditSeal(const std::string& catalog_path,
                     const std::string& checkpoint_name = "audit.checkpoint");

  // Whether the key is there. Without it nothing is appended or verified.
  bool has_key() const { return !key_.empty(); }
  // Makes the key (random, 0600, in a 0700 folder) and starts the checkpoint at the
  // chain's head (seq, hash); entries up to seq are the unkeyed ones. The catalog calls
  // it for a new, empty log; `canopy audit --seal` for a log from before keys. Never
  // for a log whose key went missing: that stays an error until the key is restored.
  void MakeKey(int64_t seq, const std::string& hash);

  // The keyed chain hash of an entry (over prev_hash and every field).
  std::string Hash(const AuditEntry& entry) const;

  // Records (seq, hash) as the head after an append, when the checkpoint still holds
  // on the chain: it names an earlier entry and `hash_at` (the stored hash of an
  // entry) agrees with it. Otherwise the checkpoint is left as found -- forged,
  // missing after the first entry, naming a cut or rewritten entry -- since moving it
  // would hide what was done from `canopy audit --verify`.
  void Advance(int64_t seq, const std::string& hash,
               const std::function<std::string(int64_t)>& hash_at) const;
  // Sets the checkpoint to `head` whatever it holds: for a catalog just loaded with a
  // copied chain (canopy catalog migrate), whose checkpoint named its empty start.
  void Adopt(const AuditCheckpoint& head) const;
  // Starts the checkpoint of a new, empty catalog under an existing key (0 and 64
  // zeros), when there is none.
  void Start() const;

  enum class Checkpoint { kNone, kValid, kForged };
  // Reads the checkpoint: kNone when there is no file, kForged when its signature does
  // not verify (then `out` is untouched).
  Checkpoint Read(AuditCheckpoint& out) const;

  const std::string& key_path() const { return key_path_; }
  const std::string& checkpoint_path() const { return checkpoint_path_; }

 private:
  std::string Sign(const AuditCheckpoint& checkpoint) const;
  // Removes the temporary checkpoints of writers that died before their rename; under
  // the checkpoint's lock.
  void RemoveStaleTemporaries() const;
  void Write(const AuditCheckpoint& next, bool may_create,
             const std::function<std::string(int64_t)>& hash_at, bool force = false) const;
  std::string key_;
  std::string key_path_;
  std::string checkpoint_path_;
};

// What appending to or verifying a log with entries but no key answers: the key was
// lost (restore it), or the log is from before keys (seal it once).
Error MissingAuditKey(const AuditSeal& seal);

}  // namespace canopy::catalog
