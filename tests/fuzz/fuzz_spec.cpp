// Fuzz target: the mesh's YAML files, read and checked as `canopy validate` does.
//
// A copy of tests/governance/mesh sits in a temporary folder; each input replaces one
// of its files, chosen by what the input says it is: `kind: Mesh` -> mesh.yaml,
// `kind: Domain` -> domains/sales/domain.yaml, `kind: Dashboard` ->
// domains/sales/dashboards/fuzz.yaml, anything else -> the product
// domains/sales/products/orders.yaml. Then spec::LoadMesh and build::CheckMesh (which
// runs spec::ValidateMesh first) over the whole mesh, and the file is put back.
//
// Findings: crashes and sanitizer reports, hangs, and exceptions other than
// canopy::Error (a YAML::Exception escaping the loader is one), or kInternal.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "build/check_mesh.h"
#include "core/diagnostics.h"
#include "core/error.h"
#include "fuzz/fuzz_support.h"
#include "spec/loader.h"
#include "support/build_paths.h"

namespace fs = std::filesystem;
using namespace canopy;

namespace {

const fs::path& Mesh() {
  static const fs::path mesh = [] {
    const fs::path folder = fuzz::TempFolder("spec") / "mesh";
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", folder,
             fs::copy_options::recursive);
    fs::create_directories(folder / "domains/sales/dashboards");
    return folder;
  }();
  return mesh;
}

fs::path Slot(std::string_view text) {
  if (text.find("kind: Mesh") != std::string_view::npos) return "mesh.yaml";
  if (text.find("kind: Domain") != std::string_view::npos) return "domains/sales/domain.yaml";
  if (text.find("kind: Dashboard") != std::string_view::npos) {
    return "domains/sales/dashboards/fuzz.yaml";
  }
  return "domains/sales/products/orders.yaml";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const fs::path file = Mesh() / Slot(text);
  const bool existed = fs::exists(file);
  const std::string original = existed ? fuzz::ReadFile(file) : std::string();
  fuzz::WriteFile(file, text);
  try {
    Diagnostics diagnostics;
    spec::Mesh mesh = spec::LoadMesh(Mesh().string(), diagnostics);
    build::CheckMesh(mesh, diagnostics);
  } catch (const Error& e) {
    fuzz::CheckError(e, "LoadMesh/CheckMesh");
  }
  if (existed) {
    fuzz::WriteFile(file, original);
  } else {
    fs::remove(file);
  }
  return 0;
}
