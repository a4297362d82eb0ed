// Fault injection: named points on the way from staging a product to making it live
// where a process can die (kill -9, a power cut) or a storage call can fail (a full
// disk, a read-only storage root). A test arms one point; when the build reaches it,
// the process ends at once with _exit(kCrashExitCode) — no destructors, no flush, no
// rollback, as kill -9 would — or the storage call fails with the errno it was armed
// with, as the system call would have.
//
// Nothing in the canopy binary arms a point: arming is the test-only fault runner's
// (tests/fault/fault_runner.cpp; the CANOPY_FAULT it reads means nothing to canopy).
// Unarmed, a point costs one relaxed atomic load.
//
// The points are listed once, in kPoints; the fault test visits each, and
// docs/ARCHITECTURE.md (*Fault injection*) names them all.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace canopy::fault {

enum class Point {
  // Storage calls (build::Storage's real implementation), reached before the call:
  // armed with an errno, the call fails with it.
  kStorageMkdir,
  kStorageWrite,
  kStorageSync,
  kStorageRename,
  kStorageRemove,
  // The build and publish steps, reached after what they name.
  kStageParquet,
  kPublishManifest,
  kPublishRenamed,
  kCatalogPublish,
  kAuditAppend,
  kAuditCommitted,
  kAuditCheckpoint,
  kLineageRecord,
};

struct PointInfo {
  Point point;
  std::string_view name;   // what CANOPY_FAULT names
  std::string_view where;  // what has happened when it is reached
  bool storage;            // may be armed with an errno
};

inline constexpr std::array<PointInfo, 13> kPoints = {{
    {Point::kStorageMkdir, "storage.mkdir",
     "a folder is about to be made (a staging folder, a product's folder in products/)", true},
    {Point::kStorageWrite, "storage.write",
     "a file is about to be written and flushed (the manifest)", true},
    {Point::kStorageSync, "storage.sync",
     "a file written by the engine is about to be flushed (a port's Parquet)", true},
    {Point::kStorageRename, "storage.rename",
     "the staging folder is about to be renamed into products/", true},
    {Point::kStorageRemove, "storage.remove",
     "a folder is about to be removed (staging's tmp/ at publish, leftovers at clean-up)", true},
    {Point::kStageParquet, "stage.parquet",
     "a port's Parquet file is written in staging, not yet checked or flushed", false},
    {Point::kPublishManifest, "publish.manifest",
     "the manifest is written and flushed in staging, before the rename", false},
    {Point::kPublishRenamed, "publish.renamed",
     "the version folder is in products/, before the catalog transaction", false},
    {Point::kCatalogPublish, "catalog.publish",
     "inside the publish transaction: the version, its ports, columns, quality and lineage and "
     "the live pointer written, not committed",
     false},
    {Point::kAuditAppend, "audit.append",
     "inside the transaction that appends to the audit chain (a publish's own or any other): "
     "the entry written, not committed",
     false},
    {Point::kAuditCommitted, "audit.committed",
     "an audit entry committed, the signed checkpoint not yet moved", false},
    {Point::kAuditCheckpoint, "audit.checkpoint",
     "the next checkpoint written to its temporary file, not yet renamed over the last", false},
    {Point::kLineageRecord, "lineage.record",
     "inside the transaction recording an OpenLineage event (START, COMPLETE or FAIL), not "
     "committed",
     false},
}};

// The exit status of a process that died at a point.
inline constexpr int kCrashExitCode = 86;

namespace detail {

// What a test armed: the `nth` time `point` is reached (counting from 1) the process
// dies, or, with `error` set, that call and every later one fails with it (a disk stays
// full).
struct Armed {
  Point point;
  int64_t nth = 1;
  int error = 0;
  std::atomic<int64_t> hits{0};
};
extern std::atomic<Armed*> g_armed;
int Reach(Armed& armed, Point point);

}  // namespace detail

// Marks a point. Returns 0, or the errno the call at this point must fail with; does
// not return when the process is to die here.
inline int Hit(Point point) {
  detail::Armed* armed = detail::g_armed.load(std::memory_order_relaxed);
  if (armed == nullptr) [[likely]] {
    return 0;
  }
  return detail::Reach(*armed, point);
}

}  // namespace canopy::fault
