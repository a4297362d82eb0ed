// Writing new meshes: `canopy init` (a starter) and `canopy example` (the acme mesh
// with generated data).
#pragma once

#include <string>
#include <vector>

namespace canopy::scaffold {

struct InitOptions {
  std::string mesh_name;  // default: the folder's name, made a valid SQL name
  std::string domain = "sales";
  std::string owner;  // default: $USER made a valid principal name, else "owner"
};

// Writes a one-domain, one-product mesh into `dir` (created if needed) and returns
// the files written, relative to it. Throws Error(kConflict) if `dir` already holds a
// mesh.yaml, and Error(kInvalidInput) for names that are not valid.
std::vector<std::string> WriteInitMesh(const std::string& dir, const InitOptions& options);

struct ExampleReport {
  std::vector<std::string> files;  // spec files written
  std::vector<std::string> data;   // data files generated, with their sizes
  double seconds = 0;              // time spent generating data
};

// Writes the example mesh into `dir` and generates its source data with DuckDB,
// deterministically, at `scale` (1 ≈ one million order lines). Throws
// Error(kConflict) if `dir` already holds a mesh.yaml, unless `overwrite`.
ExampleReport WriteExampleMesh(const std::string& dir, double scale, bool overwrite);

}  // namespace canopy::scaffold
