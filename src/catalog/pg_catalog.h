// The PostgreSQL implementation of CatalogStore (libpq), for a mesh shared by many
// servers and build runners on different machines. Chosen by a postgresql:// URL.
//
// The same versioned migrations as the SQLite store (schema_migrations), applied
// under an advisory lock so that processes starting together migrate once. Writers
// are serialised by a transaction-scoped advisory lock (the catalog's write lock),
// so concurrent writers never deadlock; readers see the last committed state. Search
// is PostgreSQL's full-text search: a weighted tsvector per product under a GIN
// index, ranked with ts_rank. The catalog's generation is a row bumped by
// statement triggers, which also NOTIFY canopy_catalog.
//
// A URL's search_path option (options=-csearch_path%3Dname) puts the catalog in that
// schema, so one database can hold several catalogs.
#pragma once

#include <memory>
#include <string>

#include "catalog/catalog.h"

namespace canopy::catalog {

namespace pg {
class Connection;
}

class PgCatalog final : public CatalogStore {
 public:
  // Connects and applies the migrations the database lacks. Throws Error(kFailed),
  // one line naming the server and database but never the password, when it cannot
  // connect, or when the schema is newer than this canopy knows. The audit key and
  // checkpoint live in `seal_folder` (the storage root), as beside a SQLite file.
  PgCatalog(const std::string& url, const std::string& seal_folder,
            Upgrade upgrade = Upgrade::kRefuse);
  ~PgCatalog() override;
  PgCatalog(const PgCatalog&) = delete;
  PgCatalog& operator=(const PgCatalog&) = delete;

  void SyncSpec(const std::vector<DomainRecord>& domains,
                const std::vector<ProductRecord>& products) override;
  void BeginBuild(const BuildRecord& build) override;
  void FinishBuild(const std::string& build_id, const std::string& status,
                   const std::string& finished_at) override;
  void RecordRun(const ProductRun& run) override;
  std::vector<ProductRun> Runs(const std::string& build_id) override;
  using CatalogStore::Publish;
  void Publish(const PublishedVersion& version, const std::vector<AuditEntry>& audit) override;
  std::optional<LiveVersion> Live(const std::string& domain, const std::string& product) override;
  std::vector<ProductSummary> ListProducts() override;
  std::optional<ProductDetail> GetProduct(const std::string& domain,
                                          const std::string& product) override;
  // As the SQLite store: every word must occur, the last may be a prefix; names weigh
  // most (A), then tags (B), descriptions and ports (C), columns (D); accents are
  // ignored where the unaccent extension can be used.
  std::vector<SearchHit> Search(const std::string& text, int limit) override;
  LiveLineage ColumnLineage() override;
  void RecordLineageEvent(const std::string& build_id, const std::string& event) override;
  std::vector<std::string> LineageEvents() override;
  std::vector<std::string> ReferencedPaths() override;
  int64_t AddGrant(const GrantRecord& grant) override;
  bool RevokeGrant(const std::string& domain, const std::string& product,
                   const std::string& grantee) override;
  std::vector<GrantRecord> Grants() override;
  int64_t CreateAccessRequest(const AccessRequest& request) override;
  std::optional<AccessRequest> GetAccessRequest(int64_t id) override;
  std::vector<AccessRequest> AccessRequests() override;
  void DecideAccessRequest(int64_t id, bool approve, const std::string& decided_by,
                           const std::string& decided_at, const std::string& note) override;
  AuditEntry AppendAudit(const AuditEntry& entry) override;
  std::vector<AuditEntry> Audit(int64_t after, int limit) override;
  const AuditSeal& Seal() override { return *seal_; }
  void SealAudit() override;
  std::string MaskSalt() override;
  int64_t CreateToken(const std::string& user, const std::string& secret_hash,
                      const std::string& created_at, const std::string& expires_at) override;
  std::optional<TokenRecord> GetToken(int64_t id) override;
  std::vector<TokenRecord> Tokens() override;
  bool RevokeToken(int64_t id, const std::string& revoked_at) override;
  void SetTokenScram(int64_t id, const std::string& verifier) override;
  int64_t Generation() override;
  // LISTENs on its own connection (the generation triggers NOTIFY canopy_catalog) and
  // reads the generation again on each notification, and every kMaxLagMs regardless.
  std::unique_ptr<GenerationWatch> WatchGeneration() override;
  // A session advisory lock keyed by the catalog's schema and the product, held on this
  // store's connection: it goes with the process, however it ends.
  std::unique_ptr<ProductLock> LockProduct(const std::string& domain, const std::string& product,
                                           const std::string& holder,
                                           std::string& held_by) override;
  CatalogInfo Info() override;
  CatalogDump Dump() override;
  void Load(const CatalogDump& dump) override;

 private:
  // After an append commits: moves the signed checkpoint to `head`.
  void AdvanceCheckpoint(const AuditEntry& head);
  std::string url_;  // as given (with its password): for the watch's own connection
  std::unique_ptr<pg::Connection> db_;
  std::unique_ptr<AuditSeal> seal_;
  int opened_at_version_ = 0;  // the schema version found on opening (0: made here)
};

}  // namespace canopy::catalog
