// Running a build: plan, then for each product (independent ones in parallel) —
// skip if unchanged, run its models in a sandbox, check each output port against its
// contract, and publish what passes.
#pragma once

#include <string>
#include <vector>

#include "build/storage.h"
#include "catalog/catalog.h"
#include "contract/check.h"
#include "spec/model.h"

namespace canopy::build {

struct BuildOptions {
  std::vector<std::string> targets;  // empty: everything
  // Only these domains' products (a domain's runner): products of other domains they
  // read come from their published versions, and are never rebuilt here.
  std::vector<std::string> domains{};
  bool force = false;  // rebuild even when unchanged
  int jobs = 0;        // products in parallel; 0: one per core
};

// What happened to one product, with the detail the summary and errors show.
struct ProductOutcome {
  catalog::ProductRun run;
  std::vector<contract::CheckResult> checks;  // all checks, passed and failed
  std::string error;                          // the failure, ready to print
  std::vector<std::string> warnings;          // e.g. reading a deprecated product
};

struct BuildReport {
  std::string build_id;
  std::vector<ProductOutcome> products;       // in plan order
  std::vector<std::string> gate_warnings;     // warning-severity publish gate rows
  std::vector<std::string> lineage_warnings;  // OpenLineage events not recorded or not sent
  double seconds = 0;
  bool ok() const;
};

// Told about progress; called from worker threads, one call at a time.
class BuildProgress {
 public:
  virtual ~BuildProgress() = default;
  virtual void Planned(int total) = 0;
  virtual void Step(const std::string& product, const std::string& step) = 0;
  virtual void Finished(const ProductOutcome& outcome) = 0;
};

// Where the mesh keeps its data and catalog: <mesh root>/<storage>.
std::string StorageRoot(const spec::Mesh& mesh);

// Makes the catalog's domains and products match the specs.
void SyncCatalogWithSpec(const spec::Mesh& mesh, catalog::CatalogStore& catalog);

// Builds `mesh` (which must be valid). Holds an exclusive lock on the storage root
// for its duration (Error(kConflict) if another build holds it) and first removes
// what an interrupted build left behind. Product failures are reported in the
// BuildReport, not thrown; an Error escapes only when the build cannot run at all.
BuildReport RunBuild(const spec::Mesh& mesh, catalog::CatalogStore& catalog, Storage& storage,
                     const BuildOptions& options, BuildProgress* progress);

}  // namespace canopy::build
