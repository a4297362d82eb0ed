// What tools ask before they query — pg_catalog and information_schema, as psql's \dn,
// \dt and \d send them, and drivers on connect — answered for one principal from the
// mesh's catalog: each domain is a schema, each output port this principal may discover
// is a table with its published columns and descriptions. The tables hold no rows: data
// is read only through the governed path. Private products of other domains are not
// there at all.
//
// The answers come from an in-memory DuckDB of the session's own (no file access) whose
// pg_catalog is DuckDB's, completed with the few functions and tables PostgreSQL clients
// name and DuckDB lacks; a query's PostgreSQL spellings (OPERATOR(pg_catalog.~),
// COLLATE pg_catalog.default, ::regclass…) are rewritten to DuckDB's first.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "catalog/catalog.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "spec/model.h"

namespace canopy::pgwire {

class CatalogView {
 public:
  CatalogView(const spec::Mesh& mesh, catalog::CatalogStore& catalog,
              const governance::Principal& principal);
  ~CatalogView();
  CatalogView(const CatalogView&) = delete;
  CatalogView& operator=(const CatalogView&) = delete;

  // Whether `sql` asks about the catalog (names pg_catalog, information_schema or a
  // pg_ relation) and reads no port `principal` may discover.
  static bool AsksAboutCatalog(const spec::Mesh& mesh, const governance::Principal& principal,
                               const std::string& sql);
  // `sql` in DuckDB's spelling.
  static std::string Rewrite(const std::string& sql);

  // The catalog generation this view was built at.
  int64_t generation() const;

  // The longest question taken, and the most rows it may answer.
  static constexpr size_t kMaxQuestionBytes = size_t{16} * 1024;
  static constexpr int64_t kMaxRows = 100000;

  // Runs a read-only catalog query within `timeout_ms`, stopped when `cancel` is set;
  // returns the rows sent. Throws Error(kInvalidInput) for anything but a query or one
  // too long, Error(kFailed) when it fails, runs too long or answers too many rows.
  int64_t Run(const std::string& sql, governance::ResultSink& sink, int timeout_ms,
              const std::shared_ptr<std::atomic<bool>>& cancel);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace canopy::pgwire
