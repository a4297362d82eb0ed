// Fuzz target: importing an ODCS contract (standards::ImportOdcs, which reads the
// document with spec::LoadOdcsDocument) from the bytes written to a file, into the
// sales domain of tests/governance/mesh; and the same file read on its own, as a
// port's contract file is.
//
// Findings: crashes and sanitizer reports, hangs, exceptions other than canopy::Error
// (or kInternal), and an import that succeeds with files that are not where an import
// puts them (products/<name>.yaml and contracts/<name>.odcs.yaml).
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/diagnostics.h"
#include "core/error.h"
#include "fuzz/fuzz_support.h"
#include "spec/loader.h"
#include "spec/odcs.h"
#include "spec/validate.h"
#include "standards/standards.h"
#include "support/build_paths.h"

namespace fs = std::filesystem;
using namespace canopy;

namespace {

struct Fixture {
  spec::Mesh mesh;
  fs::path input;
};

const Fixture& Setup() {
  static const Fixture fixture = [] {
    const fs::path folder = fuzz::TempFolder("odcs");
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", folder / "mesh",
             fs::copy_options::recursive);
    Fixture f;
    Diagnostics diagnostics;
    f.mesh = spec::LoadMesh((folder / "mesh").string(), diagnostics);
    spec::ValidateMesh(f.mesh, diagnostics);
    if (diagnostics.HasErrors()) fuzz::Finding("the governance mesh does not load");
    f.input = folder / "input.odcs.yaml";
    return f;
  }();
  return fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& fixture = Setup();
  fuzz::WriteFile(fixture.input, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    Diagnostics diagnostics;
    spec::LoadOdcsDocument(fixture.input.string(), "input.odcs.yaml", diagnostics);
  } catch (const Error& e) {
    fuzz::CheckError(e, "LoadOdcsDocument");
  }
  try {
    const auto result = standards::ImportOdcs(fixture.mesh, fixture.input.string(), "sales", "");
    fuzz::Check(spec::IsSqlName(result.product_name),
                "ImportOdcs named the product '" + result.product_name + "'");
    for (const auto& [path, content] : result.files) {
      const bool placed = path == "products/" + result.product_name + ".yaml" ||
                          path == "contracts/" + result.product_name + ".odcs.yaml";
      fuzz::Check(placed, "ImportOdcs writes " + path);
    }
  } catch (const Error& e) {
    fuzz::CheckError(e, "ImportOdcs");
  }
  return 0;
}
