// The mesh a long-running process answers from (the server, its PostgreSQL sessions),
// replaced whole when a product or dashboard is saved through it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "spec/model.h"

namespace canopy::spec {

// Readers take the current mesh and keep its pointer for as long as they use it (a
// request, a statement, an open portal): a Replace never pulls it from under them.
// Thread-safe.
class MeshSource {
 public:
  explicit MeshSource(Mesh mesh);
  std::shared_ptr<const Mesh> Current() const;
  // Goes up by one at each Replace (answers kept by the REST API are keyed by it).
  int64_t revision() const;
  void Replace(Mesh mesh);
  // Held by whoever writes the mesh's files, from the write to the Replace.
  std::mutex& writer() { return writer_; }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Mesh> current_;
  int64_t revision_ = 0;
  std::mutex writer_;
};

}  // namespace canopy::spec
