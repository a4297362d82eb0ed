#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "scaffold/scaffold.h"
#include "spec/loader.h"
#include "spec/validate.h"

namespace fs = std::filesystem;

namespace canopy::scaffold {
namespace {

class ScaffoldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("canopy-scaffold-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Diagnostics Validate(const fs::path& root) {
    Diagnostics diagnostics;
    spec::Mesh mesh = spec::LoadMesh(root.string(), diagnostics);
    spec::ValidateMesh(mesh, diagnostics);
    return diagnostics;
  }
  static std::string Read(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }
  fs::path dir_;
};

TEST_F(ScaffoldTest, InitWritesAValidMesh) {
  InitOptions options;
  options.domain = "logistics";
  options.owner = "sam";
  auto files = WriteInitMesh((dir_ / "new").string(), options);
  EXPECT_FALSE(files.empty());
  Diagnostics diagnostics = Validate(dir_ / "new");
  for (const auto& d : diagnostics.items()) ADD_FAILURE() << d.Format();
  EXPECT_TRUE(fs::exists(dir_ / "new/domains/logistics/products/orders.yaml"));
  EXPECT_NE(Read(dir_ / "new/mesh.yaml").find("name: new"), std::string::npos);
}

TEST_F(ScaffoldTest, InitRefusesToOverwriteAMesh) {
  WriteInitMesh(dir_.string(), {});
  const std::string before = Read(dir_ / "mesh.yaml");
  try {
    WriteInitMesh(dir_.string(), {});
    FAIL() << "a second init must refuse";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict);
  }
  EXPECT_EQ(Read(dir_ / "mesh.yaml"), before);
}

TEST_F(ScaffoldTest, InitRefusesInvalidNames) {
  InitOptions options;
  options.domain = "Sales Team";
  EXPECT_THROW(WriteInitMesh(dir_.string(), options), Error);
  EXPECT_FALSE(fs::exists(dir_ / "mesh.yaml"));
}

TEST_F(ScaffoldTest, ExampleIsValidAndItsDataDeterministic) {
  auto first = WriteExampleMesh((dir_ / "a").string(), 0.002, false);
  auto second = WriteExampleMesh((dir_ / "b").string(), 0.002, false);
  Diagnostics diagnostics = Validate(dir_ / "a");
  for (const auto& d : diagnostics.items()) ADD_FAILURE() << d.Format();
  ASSERT_FALSE(first.data.empty());
  EXPECT_EQ(first.data, second.data);
  int compared = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir_ / "a")) {
    if (!entry.is_regular_file()) continue;
    const fs::path relative = entry.path().lexically_relative(dir_ / "a");
    EXPECT_EQ(Read(entry.path()), Read(dir_ / "b" / relative)) << relative;
    ++compared;
  }
  EXPECT_GT(compared, 10);
}

TEST_F(ScaffoldTest, ExampleRefusesABadScale) {
  EXPECT_THROW(WriteExampleMesh(dir_.string(), 0, false), Error);
  EXPECT_THROW(WriteExampleMesh(dir_.string(), -1, false), Error);
}

}  // namespace
}  // namespace canopy::scaffold
