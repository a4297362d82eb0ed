// Governed queries (DESIGN §7): the guard, one decision per port read, and a
// sandboxed engine in which each port is a view that applies the reader's masks and
// row filters — so nothing the reader's SQL computes sees an unmasked value or a
// filtered-out row. Every query is audited, denials too.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "catalog/catalog.h"
#include "governance/policy.h"
#include "spec/model.h"

namespace canopy::engine {
class Result;
}

namespace canopy::governance {

using Value = std::variant<std::monostate, bool, int64_t, double, std::string>;

struct ResultColumn {
  std::string name;
  std::string type;     // DuckDB's type name
  bool masked = false;  // the column is a masked port column passed through
};

// The value at `column`, `row` of the result's current chunk, as sinks take it (text for
// the types that are not a bool, an integer or a double).
Value ReadValue(const engine::Result& result, int column, int64_t row);

// Receives a result as it streams.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void Begin(const std::vector<ResultColumn>& columns) = 0;
  virtual void Row(const std::vector<Value>& row) = 0;
  // Rows [first, first + count) of the result's current chunk, counting each one sent in
  // `sent` (so that a sink that fails half-way still tells how many went out). By
  // default each through ReadValue and Row; a sink that writes values straight from the
  // chunk overrides it.
  virtual void Rows(const engine::Result& chunk, int64_t first, int64_t count, int64_t& sent);

 private:
  std::vector<Value> values_;  // the default Rows' row, reused
};

// A file a query may read beside the ports: one in a domain's own folder (an upload, a
// source file), which the builder previews for the domain's members — the caller has
// checked that the reader is one. It is the table `canopy_files.<name>`, read as it is:
// a raw file has no contract, so no decision, mask or row filter applies to it.
struct FileRelation {
  std::string name;  // a SQL name
  std::string path;  // absolute
  spec::FileFormat format = spec::FileFormat::kCsv;
};
inline constexpr const char* kFileSchema = "canopy_files";

struct QueryOptions {
  int64_t max_rows = 0;      // 0: the mesh's limit
  std::string parquet_path;  // when set, the result is written there as Parquet instead
  // Set (from any thread) to stop the query as its time limit would: it fails with
  // "the query was cancelled", within about 50 ms.
  std::shared_ptr<std::atomic<bool>> cancel;
  std::vector<FileRelation> files;
};

struct QueryOutcome {
  std::vector<std::string> ports;     // read
  std::vector<std::string> masked;    // "domain.port.column" masked for this reader
  std::vector<std::string> filtered;  // ports read through a row filter
  int64_t rows = 0;
  bool truncated = false;  // more rows than max_rows existed
  int64_t duration_ms = 0;
  int64_t guard_us = 0;               // time spent in the guard and the decisions
  std::vector<std::string> warnings;  // e.g. a deprecated product read
};

// A governed query in two steps, so a server can answer a refusal or denial with
// its status before it streams rows. Construction runs the guard and the decisions
// and prepares the sandbox (throwing, and auditing, as RunGovernedQuery); Run streams
// the result within the limits and audits it. Belongs to one thread at a time.
class GovernedQuery {
 public:
  GovernedQuery(const spec::Mesh& mesh, catalog::CatalogStore& catalog, const Principal& principal,
                const std::string& sql, const QueryOptions& options);
  ~GovernedQuery();
  GovernedQuery(const GovernedQuery&) = delete;
  GovernedQuery& operator=(const GovernedQuery&) = delete;

  // The result's columns (empty for Parquet output).
  const std::vector<ResultColumn>& columns() const;
  // What is known so far: ports, masks, filters (rows after Run).
  const QueryOutcome& outcome() const;
  // Once only. Throws Error(kFailed) on failure or when a limit is exceeded.
  QueryOutcome Run(ResultSink& sink);

  // The result in steps, for a cursor or a portal: Open once (the sink's Begin), then
  // Fetch until it returns false. Fetch sends up to `limit` more rows (0: all that are
  // left) and returns true when rows remain. The query is audited when its result ends,
  // when it fails, or when it is closed (or destroyed) before its end, also one never
  // opened (its columns were told: "never_run" in the entry). Throws as Run.
  void Open(ResultSink& sink);
  bool Fetch(ResultSink& sink, int64_t limit);
  void Close();

 private:
  void Describe();
  template <typename Step>
  void Guarded(Step&& step);
  void Finish(const std::string& result);
  struct State;
  std::unique_ptr<State> state_;
};

// Runs `sql` for `principal`. Throws Error(kInvalidInput) when the guard refuses it,
// Error(kPermissionDenied) naming the port and the `canopy access request` command
// when a port may not be read, Error(kFailed) when it fails or exceeds a limit.
// Appends one audit entry whatever the outcome.
QueryOutcome RunGovernedQuery(const spec::Mesh& mesh, catalog::CatalogStore& catalog,
                              const Principal& principal, const std::string& sql,
                              const QueryOptions& options, ResultSink& sink);

// The runtime grants of the catalog, as decisions read them.
std::vector<RuntimeGrant> LoadGrants(catalog::CatalogStore& catalog);
std::vector<RuntimeGrant> LoadGrantsFrom(const std::vector<catalog::GrantRecord>& records);

}  // namespace canopy::governance
