#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "spec/loader.h"

namespace fs = std::filesystem;

namespace canopy::spec {
namespace {

class ResolveInsideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("canopy-paths-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "domain/data");
    fs::create_directories(root_ / "outside");
    std::ofstream(root_ / "domain/data/a.csv") << "x\n1\n";
    std::ofstream(root_ / "outside/secret.csv") << "x\n1\n";
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Domain() const { return (root_ / "domain").string(); }
  fs::path root_;
};

TEST_F(ResolveInsideTest, AcceptsFilesInsideTheFolder) {
  auto resolved = ResolveInside(Domain(), "data/a.csv");
  EXPECT_EQ(resolved.status, PathStatus::kInside);
  EXPECT_EQ(resolved.absolute, (root_ / "domain/data/a.csv").string());
  EXPECT_EQ(ResolveInside(Domain(), "data/../data/a.csv").status, PathStatus::kInside);
  EXPECT_EQ(ResolveInside(Domain(), "data/missing.csv").status, PathStatus::kMissing);
}

TEST_F(ResolveInsideTest, RefusesEscapes) {
  EXPECT_EQ(ResolveInside(Domain(), "../outside/secret.csv").status, PathStatus::kEscapes);
  EXPECT_EQ(ResolveInside(Domain(), "data/../../outside/secret.csv").status, PathStatus::kEscapes);
  EXPECT_EQ(ResolveInside(Domain(), "/etc/passwd").status, PathStatus::kAbsolute);
  EXPECT_EQ(ResolveInside(Domain(), "").status, PathStatus::kAbsolute);
}

TEST_F(ResolveInsideTest, RefusesSymlinksThatLeadOut) {
  fs::create_symlink(root_ / "outside/secret.csv", root_ / "domain/data/link.csv");
  fs::create_directory_symlink(root_ / "outside", root_ / "domain/linked");
  EXPECT_EQ(ResolveInside(Domain(), "data/link.csv").status, PathStatus::kSymlinkOut);
  EXPECT_EQ(ResolveInside(Domain(), "linked/secret.csv").status, PathStatus::kSymlinkOut);
  // A sibling folder whose name starts like the domain's is still outside.
  fs::create_directories(root_ / "domain2");
  std::ofstream(root_ / "domain2/x.csv") << "x\n";
  EXPECT_EQ(ResolveInside(Domain(), "../domain2/x.csv").status, PathStatus::kEscapes);
}

TEST_F(ResolveInsideTest, AcceptsSymlinksThatStayInside) {
  fs::create_symlink(root_ / "domain/data/a.csv", root_ / "domain/data/alias.csv");
  EXPECT_EQ(ResolveInside(Domain(), "data/alias.csv").status, PathStatus::kInside);
}

}  // namespace
}  // namespace canopy::spec
