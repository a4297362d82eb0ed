// The SQLite implementation of CatalogStore: one file in WAL mode, so a build and a
// server (separate processes) can use it at once. Writers take the write lock at the
// start of their transaction and wait up to 5 s for another writer to finish.
//
// The schema is versioned: each Migration is applied once, in order, in its own
// transaction, and recorded in the table schema_migrations(version, applied_at).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "catalog/catalog.h"

namespace canopy::catalog {

namespace sqlite {
class Connection;
}

struct Migration {
  int version = 0;  // strictly increasing along a list
  std::string sql;  // one or more statements
};

// The migrations this Canopy knows, oldest first. Append to it; never edit an entry.
const std::vector<Migration>& SqliteMigrations();

class SqliteCatalog final : public CatalogStore {
 public:
  // Opens the file at `path` (creating it and its folder, at the latest version) and,
  // with Upgrade::kApply, applies the migrations an older file lacks. Throws
  // Error(kFailed) when it cannot, when a migration fails (the file keeps the
  // migrations applied before it), when the file's schema is older and upgrading was
  // not asked for, or when it is newer than the last of `migrations`.
  explicit SqliteCatalog(const std::string& path,
                         const std::vector<Migration>& migrations = SqliteMigrations(),
                         Upgrade upgrade = Upgrade::kRefuse);
  ~SqliteCatalog() override;
  SqliteCatalog(const SqliteCatalog&) = delete;
  SqliteCatalog& operator=(const SqliteCatalog&) = delete;

  void SyncSpec(const std::vector<DomainRecord>& domains,
                const std::vector<ProductRecord>& products) override;
  // Throws Error(kConflict) when a build with that id was begun already.
  void BeginBuild(const BuildRecord& build) override;
  // Throws Error(kNotFound) for an unknown build.
  void FinishBuild(const std::string& build_id, const std::string& status,
                   const std::string& finished_at) override;
  // Throws Error(kNotFound) for a build not begun. A second run of the same product
  // in the same build replaces the first.
  void RecordRun(const ProductRun& run) override;
  // Sorted by domain, product; empty for an unknown build.
  std::vector<ProductRun> Runs(const std::string& build_id) override;
  // Also throws Error(kConflict), changing nothing, when this product already has a
  // version with the same build id. A product missing from the spec is added.
  using CatalogStore::Publish;
  void Publish(const PublishedVersion& version, const std::vector<AuditEntry>& audit) override;
  std::optional<LiveVersion> Live(const std::string& domain, const std::string& product) override;
  // Sorted by domain, name; retired products included.
  std::vector<ProductSummary> ListProducts() override;
  std::optional<ProductDetail> GetProduct(const std::string& domain,
                                          const std::string& product) override;
  // Every word of `text` must occur in the product (in any field); the last word
  // may be a prefix. Matches in names weigh most, then tags, descriptions and
  // ports, then columns. Snippets mark matched words as [word]. Text without
  // letters or digits finds nothing.
  std::vector<SearchHit> Search(const std::string& text, int limit) override;
  LiveLineage ColumnLineage() override;
  void RecordLineageEvent(const std::string& build_id, const std::string& event) override;
  std::vector<std::string> LineageEvents() override;
  // Sorted, without duplicates.
  std::vector<std::string> ReferencedPaths() override;

  int64_t AddGrant(const GrantRecord& grant) override;
  bool RevokeGrant(const std::string& domain, const std::string& product,
                   const std::string& grantee) override;
  // Sorted by domain, product, grantee.
  std::vector<GrantRecord> Grants() override;
  int64_t CreateAccessRequest(const AccessRequest& request) override;
  std::optional<AccessRequest> GetAccessRequest(int64_t id) override;
  std::vector<AccessRequest> AccessRequests() override;
  void DecideAccessRequest(int64_t id, bool approve, const std::string& decided_by,
                           const std::string& decided_at, const std::string& note) override;
  AuditEntry AppendAudit(const AuditEntry& entry) override;
  std::vector<AuditEntry> Audit(int64_t after, int limit) override;
  std::string MaskSalt() override;
  const AuditSeal& Seal() override { return *seal_; }
  void SealAudit() override;
  int64_t Generation() override;
  // An exclusive flock on locks/<domain>.<product>.lock beside the file, which holds the
  // holder's text: one machine's processes (an in-memory catalog: this process's).
  std::unique_ptr<ProductLock> LockProduct(const std::string& domain, const std::string& product,
                                           const std::string& holder,
                                           std::string& held_by) override;
  CatalogInfo Info() override;
  CatalogDump Dump() override;
  void Load(const CatalogDump& dump) override;
  int64_t CreateToken(const std::string& user, const std::string& secret_hash,
                      const std::string& created_at, const std::string& expires_at) override;
  std::optional<TokenRecord> GetToken(int64_t id) override;
  std::vector<TokenRecord> Tokens() override;
  bool RevokeToken(int64_t id, const std::string& revoked_at) override;
  void SetTokenScram(int64_t id, const std::string& verifier) override;

 private:
  // After an append commits: moves the signed checkpoint to `head`.
  void AdvanceCheckpoint(const AuditEntry& head);
  std::string path_;
  std::unique_ptr<sqlite::Connection> db_;
  std::unique_ptr<AuditSeal> seal_;
  int opened_at_version_ = 0;  // the schema version found on opening (0: made here)
};

}  // namespace canopy::catalog
