// The catalog store: the metadata of the mesh — domains, products, published
// versions with their ports, columns and quality results, builds and their product
// runs, lineage edges — and full-text search over it.
//
// CatalogStore is an interface; callers never see SQL. SqliteCatalog
// (sqlite_catalog.h) is the embedded implementation, PgCatalog (pg_catalog.h) the one
// many servers and build runners on different machines share.
//
// Thread safety: one CatalogStore object is used by one thread at a time. Several
// processes may open the same store at once (a build and a server): writers are
// serialised by the store, readers see the last committed state.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

#include "catalog/audit_seal.h"

namespace canopy::catalog {

// --- what the spec says about domains and products (synced at each build) ---

struct DomainRecord {
  std::string name;
  std::string description;
  std::vector<std::string> owners;
};

struct ProductRecord {
  std::string domain;
  std::string name;
  std::string version;  // semver text
  std::string status;   // draft | active | deprecated | retired
  std::string type;     // sourceAligned | aggregate | consumerAligned
  std::string owner;
  std::string visibility;  // public | internal | private
  std::string purpose;
  std::string usage;
  std::string limitations;
  std::vector<std::string> tags;
};

// --- a published version ---

struct ColumnRecord {
  std::string name;
  std::string type;            // the DuckDB type as published
  std::string classification;  // resolved (never empty)
  bool required = false;
  bool unique = false;
  bool primary_key = false;
  std::string description;
};

struct PortRecord {
  std::string name;      // port name
  std::string sql_name;  // domain.port
  std::string description;
  std::string path;  // the Parquet file, relative to the storage root
  int64_t rows = 0;
  int64_t bytes = 0;
  std::string checksum;  // sha256 of the Parquet file, hex
  std::vector<ColumnRecord> columns;
};

struct QualityResult {
  std::string port;
  std::string column;    // empty for table-level rules
  std::string rule;      // a readable name: "nullValues mustBe 0", "sql: select ..."
  std::string severity;  // error | warning
  bool passed = false;
  std::string observed;   // the measured value, as text
  std::string threshold;  // the expected condition, as text ("= 0", "> 1000", "in [1, 5]")
  std::string message;    // for failures: what to look at
};

struct LineageEdge {
  std::string from;  // an input: "sales.orders" (a port) or "file:data/orders.csv"
  std::string to;    // an output port's SQL name
};

// One source of one published column (column-level lineage). Sources are another
// product's port ("sales.orders") or an input file of the product
// ("file:sales/data/orders.csv"), each with the column read.
struct ColumnLineageEdge {
  std::string target;  // the output port's SQL name: "finance.revenue_by_region"
  std::string column;  // its column
  std::string source;
  std::string source_column;
  std::string type;      // DIRECT | INDIRECT (OpenLineage transformation types)
  std::string subtype;   // IDENTITY | TRANSFORMATION | AGGREGATION | FILTER | JOIN | …
  bool dataset = false;  // a row-level effect on the whole port (FILTER, JOIN, GROUP_BY, …)

  bool operator==(const ColumnLineageEdge&) const = default;
};

// Whether the column lineage of an output port was analysed; when not, why (its
// product-level lineage edges are still recorded). Never a guess.
struct PortLineage {
  std::string target;  // the output port's SQL name
  bool analysed = false;
  std::string reason;

  bool operator==(const PortLineage&) const = default;
};

// The column lineage of every live version.
struct LiveLineage {
  std::vector<ColumnLineageEdge> edges;  // sorted by target, column, source, source_column
  std::vector<PortLineage> ports;        // sorted by target
};

struct PublishedVersion {
  std::string domain;
  std::string product;
  std::string version;
  std::string build_id;
  std::string fingerprint;    // of spec, SQL, contract and inputs; unchanged → skip
  std::string published_at;   // ISO 8601 UTC
  std::string manifest_path;  // relative to the storage root
  std::map<std::string, std::string> input_versions;  // upstream SQL name → its build id
  std::vector<PortRecord> ports;
  std::vector<QualityResult> quality;
  std::vector<LineageEdge> lineage;
  std::vector<ColumnLineageEdge> column_lineage;
  std::vector<PortLineage> port_lineage;
  int64_t duration_ms = 0;
};

// --- builds ---

struct BuildRecord {
  std::string id;
  std::string started_at;
  std::string finished_at;  // empty while running
  std::string status;       // running | succeeded | failed
  std::vector<std::string> targets;
};

struct ProductRun {
  std::string build_id;
  std::string domain;
  std::string product;
  std::string status;   // published | skipped | failed
  std::string message;  // why it failed / was skipped
  int64_t rows = 0;
  int64_t duration_ms = 0;
  int checks_passed = 0;
  int checks_total = 0;
};

// --- reads ---

struct ProductSummary {
  ProductRecord product;
  std::optional<std::string> build_id;      // of the live version; nullopt before the first publish
  std::optional<std::string> live_version;  // the semver of the live version
  std::optional<std::string> published_at;
};

struct LiveVersion {
  std::string version;
  std::string build_id;
  std::string fingerprint;
  std::string published_at;
  std::string manifest_path;
  std::vector<PortRecord> ports;
  std::vector<QualityResult> quality;
  std::map<std::string, std::string> input_versions;
};

struct VersionEntry {
  std::string version;
  std::string build_id;
  std::string published_at;

  bool operator==(const VersionEntry&) const = default;
};

struct ProductDetail {
  ProductSummary summary;
  std::optional<LiveVersion> live;
  std::vector<VersionEntry> version_history;  // every published version, newest first
};

struct SearchHit {
  std::string domain;
  std::string product;
  double score = 0;   // higher is better
  std::string field;  // what matched: name, description, tag, port, column
  std::string snippet;
};

// --- governance ---

// A grant made at run time: by `canopy grant`, or by approving an access request.
struct GrantRecord {
  int64_t id = 0;
  std::string domain;
  std::string product;
  std::string grantee;     // "user:x" | "group:x" | "domain:x"
  std::string granted_by;  // the principal who granted it
  std::string granted_at;
  std::optional<int64_t> request_id;  // the approved request, if any
};

struct AccessRequest {
  int64_t id = 0;
  std::string domain;
  std::string product;
  std::string requester;  // "user:x"
  std::string purpose;
  std::string status;  // pending | approved | denied
  std::string created_at;
  std::string decided_by;
  std::string decided_at;
  std::string note;  // the decider's reason
};

// One entry of the tamper-evident audit log. `hash` chains it to the entry before:
// AuditEntryHash(entry) over prev_hash and every field.
struct AuditEntry {
  int64_t seq = 0;  // 1, 2, 3, … in order of appending
  std::string at;
  std::string principal;
  std::string action;   // query | grant | revoke | request | approve | deny | publish | token
  std::string target;   // what it acted on (ports, product, request id)
  std::string outcome;  // ok | denied | failed
  std::string details;  // JSON object text
  std::string prev_hash;
  std::string hash;
};

// What an entry's chain hash covers: prev_hash, seq and every other field, each
// length-prefixed ("5:abcde…"). The first entry's prev_hash is 64 zeros.
std::string AuditEntryBytes(const AuditEntry& entry);
// The unkeyed chain hash, SHA-256 of those bytes, as catalogs made before the audit key
// wrote it. Entries are now keyed (AuditSeal::Hash: HMAC-SHA-256 of the same bytes).
std::string AuditEntryHash(const AuditEntry& entry);

// An API token: only the SHA-256 of its secret is kept.
struct TokenRecord {
  int64_t id = 0;
  std::string user;
  std::string secret_hash;  // hex SHA-256 of the secret part
  std::string created_at;
  std::string revoked_at;  // empty while valid
  std::string expires_at;  // ISO 8601 UTC; empty: never expires
  // Its SCRAM-SHA-256 verifier (PostgreSQL's text form, core/scram.h), for the wire's
  // sign-in without sending it; empty for a token made before there were verifiers.
  std::string scram;
};

// What `canopy catalog info` shows.
struct CatalogInfo {
  std::string store;     // sqlite | postgresql
  std::string location;  // the file, or the URL without its password
  int schema_version = 0;
  int opened_at_version = 0;  // the schema version this process found (0: it made the catalog)
  std::vector<std::pair<std::string, int64_t>> counts;  // what the catalog holds, by kind
};

// Everything a catalog holds, for `canopy catalog migrate`: ids, sequence numbers and
// hashes as stored, so tokens stay valid and the audit chain verifies after a move.
struct CatalogDump {
  std::vector<DomainRecord> domains;
  std::vector<ProductRecord> products;      // retired ones included
  std::vector<PublishedVersion> versions;   // every version, in the order published
  std::map<std::string, std::string> live;  // "domain.product" → build id of its live version
  std::vector<BuildRecord> builds;
  std::vector<ProductRun> runs;
  std::vector<AccessRequest> requests;
  std::vector<GrantRecord> grants;
  std::vector<TokenRecord> tokens;
  std::vector<AuditEntry> audit;
  std::vector<std::pair<std::string, std::string>> lineage_events;  // build id, event
  std::string mask_salt;
  int64_t audit_keyed_after = 0;  // the checkpoint's: entries up to it may be unkeyed
};

// Follows the catalog's generation as other processes move it, without a query per
// read: for servers, whose every kept answer checks it (CatalogStore::WatchGeneration).
class GenerationWatch {
 public:
  virtual ~GenerationWatch() = default;
  // The generation as last heard of — behind the store by a notification's delay, and
  // by kMaxLag at most should notifications be lost — or nullopt while the watch cannot
  // follow (its connection is down): then ask the store.
  virtual std::optional<int64_t> Current() const = 0;
  static constexpr int kMaxLagMs = 250;
};

// A product's build lock, held until destroyed (see CatalogStore::LockProduct).
class ProductLock {
 public:
  virtual ~ProductLock() = default;
};

class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  // Makes the catalog's domains and products match the spec (upsert; products no
  // longer in the spec are kept with their history but marked retired).
  virtual void SyncSpec(const std::vector<DomainRecord>& domains,
                        const std::vector<ProductRecord>& products) = 0;

  virtual void BeginBuild(const BuildRecord& build) = 0;
  virtual void FinishBuild(const std::string& build_id, const std::string& status,
                           const std::string& finished_at) = 0;
  virtual void RecordRun(const ProductRun& run) = 0;
  virtual std::vector<ProductRun> Runs(const std::string& build_id) = 0;

  // Makes `version` the live version of its product, in one transaction, with its
  // ports, columns, quality results and lineage, and appends `audit` to the audit log
  // in that same transaction (as AppendAudit does, checkpoint included), so that a
  // version is never live without the entries that record its publish, whenever the
  // process dies. Throws Error(kFailed) and changes nothing on failure.
  virtual void Publish(const PublishedVersion& version, const std::vector<AuditEntry>& audit) = 0;
  void Publish(const PublishedVersion& version) { Publish(version, {}); }

  virtual std::optional<LiveVersion> Live(const std::string& domain,
                                          const std::string& product) = 0;
  virtual std::vector<ProductSummary> ListProducts() = 0;
  virtual std::optional<ProductDetail> GetProduct(const std::string& domain,
                                                  const std::string& product) = 0;
  // Ranked full-text search over names, descriptions, tags, port and column names
  // and descriptions. Never throws on odd user text (quotes, operators).
  virtual std::vector<SearchHit> Search(const std::string& text, int limit) = 0;

  // The column lineage of the live versions of all products.
  virtual LiveLineage ColumnLineage() = 0;

  // --- OpenLineage RunEvents, as emitted by builds ---

  // Appends one event (a JSON object, as text) of build `build_id`.
  virtual void RecordLineageEvent(const std::string& build_id, const std::string& event) = 0;
  // Every recorded event, oldest first.
  virtual std::vector<std::string> LineageEvents() = 0;

  // Every file path (relative to the storage root) that a published version refers
  // to, live or not: what clean-up must keep.
  virtual std::vector<std::string> ReferencedPaths() = 0;

  // --- runtime grants and the access workflow ---

  // Adds a grant; Error(kConflict) if the grantee already holds one on the product.
  virtual int64_t AddGrant(const GrantRecord& grant) = 0;
  // Removes the grant; false when there was none.
  virtual bool RevokeGrant(const std::string& domain, const std::string& product,
                           const std::string& grantee) = 0;
  virtual std::vector<GrantRecord> Grants() = 0;

  // Error(kConflict) when the requester already has a pending request for the product.
  virtual int64_t CreateAccessRequest(const AccessRequest& request) = 0;
  virtual std::optional<AccessRequest> GetAccessRequest(int64_t id) = 0;
  // Newest first.
  virtual std::vector<AccessRequest> AccessRequests() = 0;
  // Approves or denies a pending request — approving also adds the grant to the
  // requester — in one transaction. Error(kNotFound) for an unknown id,
  // Error(kConflict) when it was decided already.
  virtual void DecideAccessRequest(int64_t id, bool approve, const std::string& decided_by,
                                   const std::string& decided_at, const std::string& note) = 0;

  // --- the audit log ---

  // Appends `entry` (its seq, prev_hash and keyed hash are set here, under the write
  // lock, so concurrent writers keep one chain), moves the checkpoint to it, and
  // returns it as stored.
  virtual AuditEntry AppendAudit(const AuditEntry& entry) = 0;
  // Entries with seq > after, oldest first, at most `limit`.
  virtual std::vector<AuditEntry> Audit(int64_t after, int limit) = 0;

  // The key and checkpoint that seal the audit chain (catalog/audit_seal.h).
  virtual const AuditSeal& Seal() = 0;
  // Makes the audit key of a log from before keys and checkpoints its head (`canopy
  // audit --seal`). Error(kConflict) when there is a key already.
  virtual void SealAudit() = 0;

  // A random secret made once per catalog (keys the hash mask).
  virtual std::string MaskSalt() = 0;

  // --- API tokens ---

  // `expires_at`: ISO 8601 UTC, or empty for a token that never expires.
  virtual int64_t CreateToken(const std::string& user, const std::string& secret_hash,
                              const std::string& created_at, const std::string& expires_at) = 0;
  // Sets the SCRAM verifier of token `id` (made from the whole token, which has the id in it).
  virtual void SetTokenScram(int64_t id, const std::string& verifier) = 0;
  virtual std::optional<TokenRecord> GetToken(int64_t id) = 0;
  virtual std::vector<TokenRecord> Tokens() = 0;
  // False when there is no such valid token.
  virtual bool RevokeToken(int64_t id, const std::string& revoked_at) = 0;

  // --- change detection ---

  // A number that changes with every committed write, by any process, to anything but
  // the audit log: while it is unchanged, every other read answers as it did. Cheap (a
  // one-row read), so servers can keep answers and check it before reusing one.
  virtual int64_t Generation() = 0;
  // A watch that follows Generation() from the store's own notifications, so that a
  // server's kept answers cost no query; nullptr where Generation() is as cheap as that
  // (SQLite: a page of a local file).
  virtual std::unique_ptr<GenerationWatch> WatchGeneration() { return nullptr; }

  // --- build locks ---

  // Takes the build lock of domain.product for `holder` (who is building: build id,
  // host, process), across processes — and across machines on PostgreSQL. Returns
  // nullptr when another holder has it, with `held_by` saying who. A lock goes with
  // its process, however it ends (kill -9 included).
  virtual std::unique_ptr<ProductLock> LockProduct(const std::string& domain,
                                                   const std::string& product,
                                                   const std::string& holder,
                                                   std::string& held_by) = 0;

  // --- moving a catalog ---

  virtual CatalogInfo Info() = 0;
  // Everything, in one consistent snapshot.
  virtual CatalogDump Dump() = 0;
  // Fills an empty catalog (no products, versions, grants, tokens or audit entries)
  // with `dump`, in one transaction; Error(kConflict) when it is not empty.
  virtual void Load(const CatalogDump& dump) = 0;
};

// Whether `location` names a PostgreSQL catalog (postgresql:// or postgres://).
bool IsPostgresUrl(const std::string& location);

// What opening a catalog whose schema is older than this Canopy's does. A new, empty
// catalog is always made at the latest version, and a newer one is always refused.
enum class Upgrade {
  kRefuse,  // Error(kFailed) naming `canopy catalog upgrade`: servers and runners share
            // the catalog, so none changes its schema under the others on its own
  kApply,   // apply the missing migrations, in order (`canopy catalog upgrade`)
};

// Opens the store named by `location`: a file path for SQLite (created as needed), or a
// postgresql:// URL. The audit key and checkpoint of a PostgreSQL catalog live in
// `seal_folder` (the mesh's storage root; a SQLite catalog keeps them beside its file).
// Throws Error(kFailed) with the reason.
std::unique_ptr<CatalogStore> OpenCatalog(const std::string& location,
                                          const std::string& seal_folder = "",
                                          Upgrade upgrade = Upgrade::kRefuse);

// The error for a catalog at schema version `found` when this Canopy's is `latest`.
Error OlderSchemaError(const std::string& where, int found, int latest);

}  // namespace canopy::catalog
