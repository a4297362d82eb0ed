// OpenLineage RunEvents (spec 2-0-2) for product builds: one run per product that
// is built (not for skipped ones), a START when its build begins and a COMPLETE or
// FAIL when it ends. The job is the product (namespace "canopy://<mesh>", name
// "domain.product"); inputs are upstream ports (same namespace) and input files
// (namespace "file", name = absolute path); outputs are the product's ports.
//
// Facets: run — parent (the whole `canopy build`), errorMessage on FAIL; job —
// jobType, sql (the models in order), ownership; datasets — schema, version,
// documentation, ownership and columnLineage (outputs), dataQualityMetrics and
// dataQualityAssertions (outputs: the contract checks Canopy ran on the port it
// wrote), outputStatistics (outputFacets).
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "build/lineage_step.h"
#include "catalog/catalog.h"
#include "spec/model.h"

namespace canopy::build {

// What is known about one product run when an event is made; filled as it goes.
struct LineageRun {
  std::string run_id;    // a UUID
  std::string build_id;  // of the whole build
  std::string started_at;
  std::vector<InputDataset> inputs;
  std::optional<ProductLineage> lineage;
  std::vector<catalog::PortRecord> ports;       // written ports, with columns, rows, bytes
  std::vector<catalog::QualityResult> quality;  // the contract checks that ran
};

// A random (version 4) UUID.
std::string NewRunId();
// A name-based UUID (SHA-256 of `name`, version bits 8): the parent run of a build.
std::string UuidFromName(const std::string& name);

// The event as one line of JSON. `event_type`: START | COMPLETE | FAIL.
std::string MakeRunEvent(const spec::Mesh& mesh, const spec::Product& product,
                         const LineageRun& run, const std::string& event_type,
                         const std::string& event_time, const std::string& error);

// Records events in the catalog and, when mesh.yaml names an OpenLineage endpoint,
// POSTs each one there. A failed POST is a warning (the first one turns posting
// off for the rest of the build); it never fails the build. Thread-safe.
class LineageEmitter {
 public:
  LineageEmitter(catalog::CatalogStore& catalog, std::mutex& catalog_mutex,
                 std::optional<std::string> url);
  void Emit(const std::string& build_id, const std::string& event);
  std::vector<std::string> Warnings() const;

 private:
  catalog::CatalogStore& catalog_;
  std::mutex& catalog_mutex_;
  std::optional<std::string> url_;
  mutable std::mutex mutex_;  // guards the two below
  bool posting_ = true;
  std::vector<std::string> warnings_;
};

// POSTs `body` (JSON) to `url` (http:// or https://, core/http_client.h) and waits at
// most `timeout_ms` in all. Throws Error(kFailed) naming what went wrong, including a
// response that is not 2xx.
void PostJson(const std::string& url, const std::string& body, int timeout_ms);

}  // namespace canopy::build
