#include "spec/mesh_source.h"

namespace canopy::spec {

MeshSource::MeshSource(Mesh mesh) : current_(std::make_shared<const Mesh>(std::move(mesh))) {}

std::shared_ptr<const Mesh> MeshSource::Current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

int64_t MeshSource::revision() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return revision_;
}

void MeshSource::Replace(Mesh mesh) {
  auto next = std::make_shared<const Mesh>(std::move(mesh));
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::move(next);
  ++revision_;
}

}  // namespace canopy::spec
