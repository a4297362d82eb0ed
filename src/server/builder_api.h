// The builder's endpoints (issue: the stage for business users): previews of a flow's
// blocks through the governed query path, and saving a flow as an ordinary product.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "catalog/catalog.h"
#include "governance/policy.h"
#include "spec/mesh_source.h"
#include "spec/model.h"

namespace canopy::server {

using spec::MeshSource;

struct BuilderRequest {
  const spec::Mesh& mesh;
  catalog::CatalogStore& catalog;
  const governance::Principal& principal;
};

// GET /api/v1/builder/sources: every output port this principal may read, with its
// columns, their types and classifications, and which are masked for this principal —
// the builder's palette of sources. Returns the JSON.
std::string BuilderSources(const BuilderRequest& request);

// The blocks, filter operators and measure functions the builder offers, and the mesh's
// classifications from the least to the most strict. Returns the JSON.
std::string BuilderVocabulary(const spec::Mesh& mesh);

// POST /api/v1/builder/preview {"flow": …, "block": id, "limit": N, "profile": bool}: the
// block's first rows as this principal reads them (masked, filtered), its row count and
// (unless profile is false) a profile of each column (nulls, distinct, min, max; a
// histogram of numbers). Returns the JSON.
std::string BuilderPreview(const BuilderRequest& request, const std::string& body);

// POST /api/v1/domains/{d}/products (name empty) and PUT /api/v1/domains/{d}/products/{p}
// {"flow": …, "dry_run": bool}: members of the domain only. Compiles the flow into the
// product's files; a dry run returns them with what they replace, else they are written,
// the whole mesh is validated (the files are put back as they were when it fails) and
// `source` gets the new mesh. Audited, refusals too. Returns the status and the JSON.
std::pair<int, std::string> SaveProduct(const BuilderRequest& request, MeshSource& source,
                                        const std::string& domain, const std::string& name,
                                        const std::string& body);

// GET /api/v1/domains/{d}/uploads: the domain's files (data/*.csv|json|parquet, uploaded
// or put there by hand) with their columns and rows, for its members. Returns the JSON.
std::string DomainFiles(const BuilderRequest& request, const std::string& domain, size_t max_bytes);

// POST /api/v1/domains/{d}/uploads?name=<file>[&replace=true], the body the file's bytes:
// members of the domain only. The name must be <name>.csv|json|parquet and the content
// what it says (sniffed); the file must read (a governed query as the uploader) before it
// is renamed into domains/<d>/data/. 409 when it exists and `replace` is false, 413 over
// `max_bytes`. Audited (action "upload"), refusals too. Returns the status and the JSON.
std::pair<int, std::string> UploadFile(const BuilderRequest& request, const std::string& domain,
                                       const std::string& name, bool replace,
                                       const std::string& bytes, size_t max_bytes);

// GET /api/v1/domains/{d}/products/{p}/flow: the flow a product was made from, or, for a
// product made by hand, {"flow": null, "read_only": true, "reason": …, "files": […]}.
std::string OpenFlow(const BuilderRequest& request, const std::string& domain,
                     const std::string& name);

// A streamed body: `write` sends a piece (an empty piece sends what is gathered at once)
// and returns false when the client has gone away.
using StreamBody = std::function<void(const std::function<bool(std::string_view)>& write)>;

// POST /api/v1/builds {"targets": ["domain.product", …], "force": bool}: the real build of
// those products (their domains' only: what they read from other domains comes from its
// published versions), for members of their domains. Refusals throw (and are audited)
// before anything streams; then progress streams as JSON lines — {"event": "planned"},
// "step" (product, step), "finished" (product, status, rows, checks, error), "done".
// `mesh` and `catalog` must outlive the body (the response holds them).
StreamBody StartBuild(const BuilderRequest& request, const std::string& body);

}  // namespace canopy::server
