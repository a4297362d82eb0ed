// The engine a product is built in: a fresh in-memory DuckDB that can read only
// the product's declared input files and write only its staging folder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "spec/model.h"

namespace canopy::build {

struct SandboxOptions {
  int64_t memory_bytes = 4LL << 30;
  int threads = 0;                    // 0: DuckDB's default (all cores)
  std::vector<std::string> readable;  // absolute file paths
  std::string writable_dir;           // absolute; also the spill folder
  // Keep the product's SQL from running below its inputs' row filters (see
  // governance/query.cpp): set when any input is row-filtered for this domain.
  bool filter_barrier = false;
  // Keys the hash mask of governed inputs (governance::InstallGovernedFunctions).
  std::string mask_salt;
};

// The DuckDB reader call for a file input at `path`: read_csv/read_json/read_parquet
// with the input's options.
std::string InputReader(const spec::ProductInput& input, const std::string& path);

// After construction the configuration is locked: SQL run inside cannot widen its
// file access, load extensions or change limits.
class Sandbox {
 public:
  explicit Sandbox(const SandboxOptions& options);
  engine::Connection& connection() { return connection_; }

 private:
  engine::Database database_;
  engine::Connection connection_;
};

}  // namespace canopy::build
