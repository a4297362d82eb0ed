// Fault injection at every step of a build (core/fault.h): for each point of
// fault::kPoints, `canopy build` (the test-only canopy_fault_runner: the same command
// line with the point armed) dies there as kill -9 would; then, in this process, the
// store must be consistent, every product live at its previous version with the same
// rows read through a governed query (or, past its publish's commit, at the new one,
// whole and audited), `canopy audit --verify`'s check must pass, and the next build
// must succeed and leave nothing behind. A full disk (ENOSPC) and a read-only storage
// root (EROFS) from the storage seam, and a storage root made read-only for real, must
// fail with a clear error and lose nothing. Runs on SQLite and, as pg:, on PostgreSQL.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "build/runner.h"
#include "build/storage.h"
#include "catalog/catalog.h"
#include "core/fault.h"
#include "core/hash.h"
#include "governance/audit.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"
#include "support/test_store.h"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace canopy::fault {
void PrintTo(const PointInfo& info, std::ostream* os) {
  *os << info.name;
}
}  // namespace canopy::fault

namespace canopy::build {
namespace {

const fs::path kFixture = fs::path(canopy::test::kTestDir) / "build" / "mesh";
// The products of tests/build/mesh, each with one output port of the same name.
const std::vector<std::string> kProducts = {"crm.customers", "crm.segments", "finance.revenue",
                                            "sales.orders"};
// The points whose first hit comes after the first product's publish committed.
const std::set<std::string> kAfterTheFirstCommit = {"audit.committed", "audit.checkpoint"};

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::pair<std::string, std::string> Split(const std::string& address) {
  const auto dot = address.find('.');
  return {address.substr(0, dot), address.substr(dot + 1)};
}

struct Exit {
  int code = -1;
  std::string err;
};

// Runs `program ARGS` with `extra` added to this process's environment (less
// CANOPY_MESH, and CANOPY_CATALOG unless on PostgreSQL, where it names the test's
// catalog); stdout is dropped, stderr kept.
Exit RunProgram(const std::string& program, const std::vector<std::string>& args,
                const std::vector<std::string>& extra, const fs::path& scratch) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    if (text.rfind("CANOPY_MESH=", 0) == 0 || text.rfind("CANOPY_FAULT=", 0) == 0) continue;
    if (text.rfind("CANOPY_CATALOG=", 0) == 0 && !canopy::test::OnPostgres()) continue;
    env.push_back(text);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  std::vector<std::string> argv_text = {program};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string err_path = (scratch / "stderr").string();

  Exit exit;
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    const int null_fd = ::open("/dev/null", O_RDWR);
    const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null_fd < 0 || err_fd < 0) ::_exit(126);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(err_fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
    exit.code = WEXITSTATUS(status);
  }
  exit.err = ReadAll(err_path);
  return exit;
}

// Collects a result's rows as text.
class TextSink : public governance::ResultSink {
 public:
  void Begin(const std::vector<governance::ResultColumn>&) override {}
  void Row(const std::vector<governance::Value>& row) override {
    std::string line;
    for (const auto& value : row) {
      line += std::visit(
          [](const auto& v) -> std::string {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              return "NULL";
            } else if constexpr (std::is_same_v<T, std::string>) {
              return v;
            } else {
              return std::to_string(v);
            }
          },
          value);
      line += "|";
    }
    rows.push_back(line);
  }
  std::vector<std::string> rows;
};

class BuildFault : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "-" + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = fs::temp_directory_path() / ("canopy-fault-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    mesh_ = dir_ / "mesh";
    fs::copy(kFixture, mesh_, fs::copy_options::recursive);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(Storage(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }

  fs::path Storage() const { return mesh_ / ".canopy"; }

  spec::Mesh Load() const {
    Diagnostics diagnostics;
    spec::Mesh mesh = spec::LoadMesh(mesh_.string(), diagnostics);
    spec::ValidateMesh(mesh, diagnostics);
    for (const auto& d : diagnostics.items()) {
      if (d.severity == Severity::kError) ADD_FAILURE() << d.Format();
    }
    return mesh;
  }

  std::unique_ptr<catalog::CatalogStore> OpenStore() const {
    return canopy::test::OpenTestCatalog((Storage() / "catalog.db").string());
  }

  // A whole forced build, in this process, through the real storage.
  BuildReport Build() const {
    const spec::Mesh mesh = Load();
    auto store = OpenStore();
    auto storage = NewLocalStorage();
    BuildOptions options;
    options.force = true;
    return RunBuild(mesh, *store, *storage, options, nullptr);
  }

  // `canopy build --force --jobs 1` with CANOPY_FAULT=`fault` (one product at a time,
  // so the n-th hit of a point is the same step every run).
  Exit BuildWithFault(const std::string& fault) const {
    return RunProgram(canopy::test::kFaultRunner,
                      {"--mesh", mesh_.string(), "build", "--force", "--jobs", "1"},
                      {"CANOPY_FAULT=" + fault}, dir_);
  }

  // Each product's live build id and its rows as fay (an admin) reads them through a
  // governed query, as `canopy query` does.
  struct Live {
    std::string build_id;
    std::vector<std::string> rows;
  };
  std::map<std::string, Live> ReadLive() const {
    const spec::Mesh mesh = Load();
    auto store = OpenStore();
    std::map<std::string, Live> out;
    for (const auto& address : kProducts) {
      auto [domain, product] = Split(address);
      auto live = store->Live(domain, product);
      if (!live) {
        ADD_FAILURE() << address << " has no live version";
        continue;
      }
      out[address].build_id = live->build_id;
      TextSink sink;
      try {
        governance::RunGovernedQuery(mesh, *store, governance::ResolvePrincipal(mesh, "fay"),
                                     "SELECT * FROM " + address + " ORDER BY ALL", {}, sink);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "reading " << address << ": " << e.what();
      }
      out[address].rows = sink.rows;
    }
    return out;
  }

  // The store as a restarted process finds it: every version the catalog refers to is
  // whole on disk (its manifest, and each Parquet file with the checksum the manifest
  // records); each live version agrees with its manifest and has its publish audit
  // entry; and the audit chain verifies.
  void ExpectConsistent() const {
    auto store = OpenStore();
    for (const auto& path : store->ReferencedPaths()) {
      const fs::path file = Storage() / path;
      if (!fs::is_regular_file(file)) {
        ADD_FAILURE() << "the catalog refers to " << path << ", which does not exist";
        continue;
      }
      if (file.filename() != "manifest.json") continue;
      const json manifest = json::parse(ReadAll(file), nullptr, false);
      if (manifest.is_discarded() || !manifest.contains("ports")) {
        ADD_FAILURE() << path << " is not a whole manifest";
        continue;
      }
      for (const auto& [name, port] : manifest["ports"].items()) {
        const fs::path data = file.parent_path() / port.value("file", "");
        EXPECT_TRUE(fs::is_regular_file(data)) << data;
        if (fs::is_regular_file(data)) {
          EXPECT_EQ(Sha256File(data.string()), port.value("sha256", "")) << data;
        }
      }
    }
    std::set<std::pair<std::string, std::string>> audited;  // (target, build id) published
    for (const auto& entry : store->Audit(0, 100000)) {
      if (entry.action != "publish") continue;
      const json details = json::parse(entry.details, nullptr, false);
      if (!details.is_discarded()) audited.emplace(entry.target, details.value("build_id", ""));
    }
    for (const auto& address : kProducts) {
      auto [domain, product] = Split(address);
      auto live = store->Live(domain, product);
      ASSERT_TRUE(live) << address;
      const json manifest = json::parse(ReadAll(Storage() / live->manifest_path), nullptr, false);
      ASSERT_FALSE(manifest.is_discarded()) << live->manifest_path;
      EXPECT_EQ(manifest.value("build_id", ""), live->build_id) << address;
      for (const auto& port : live->ports) {
        ASSERT_TRUE(manifest["ports"].contains(port.name)) << address << " " << port.name;
        EXPECT_EQ(port.checksum, manifest["ports"][port.name].value("sha256", "")) << address;
        EXPECT_EQ(port.rows, manifest["ports"][port.name].value("rows", int64_t{-1})) << address;
      }
      EXPECT_EQ(audited.count({address, live->build_id}), 1U)
          << address << " is live at build " << live->build_id
          << " but the audit log has no entry of its publish";
    }
    const governance::AuditVerification verified = governance::VerifyAudit(*store);
    EXPECT_TRUE(verified.ok()) << "entry " << verified.first_bad.value_or(0) << ": "
                               << verified.problem;
  }

  // Nothing left behind: no file in staging, no version folder the catalog does not
  // refer to, no temporary audit checkpoint.
  void ExpectNoLeftovers() const {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(Storage() / "staging", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      EXPECT_TRUE(it->is_directory()) << "left in staging: " << it->path();
    }
    std::set<std::string> referenced;
    for (const auto& path : OpenStore()->ReferencedPaths()) {
      referenced.insert(fs::path(path).parent_path().string());
    }
    for (auto it = fs::recursive_directory_iterator(Storage() / "products", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() != 2) continue;  // products/<domain>/<product>/<build>
      const std::string relative = fs::relative(it->path(), Storage()).string();
      EXPECT_EQ(referenced.count(relative), 1U) << "orphan version folder: " << relative;
    }
    for (const auto& entry : fs::directory_iterator(Storage())) {
      EXPECT_FALSE(Contains(entry.path().filename().string(), ".tmp-"))
          << "left behind: " << entry.path();
    }
  }

  // After a build that failed or died: the store is consistent, each product is at
  // its version of `before` with the same rows or (`may_move`) at a new build, whole
  // and with the same rows; returns how many moved. Then the next build succeeds,
  // publishes everything and leaves nothing behind.
  int ExpectRecovered(const std::map<std::string, Live>& before, bool may_move) {
    ExpectConsistent();
    int moved = 0;
    for (const auto& [address, live] : ReadLive()) {
      const Live& old = before.at(address);
      if (live.build_id != old.build_id) {
        ++moved;
        EXPECT_TRUE(may_move) << address << " moved to build " << live.build_id;
      }
      EXPECT_EQ(live.rows, old.rows) << address << " at build " << live.build_id;
    }
    const BuildReport next = Build();
    EXPECT_TRUE(next.ok());
    for (const auto& product : next.products) {
      EXPECT_EQ(product.run.status, "published") << product.run.product << ": " << product.error;
    }
    ExpectConsistent();
    ExpectNoLeftovers();
    for (const auto& [address, live] : ReadLive()) {
      EXPECT_EQ(live.build_id, next.build_id) << address;
      EXPECT_EQ(live.rows, before.at(address).rows) << address;
    }
    return moved;
  }

  fs::path dir_;
  fs::path mesh_;
};

// --- a crash at each point ---

class BuildFaultCrash : public BuildFault,
                        public ::testing::WithParamInterface<fault::PointInfo> {};

TEST_P(BuildFaultCrash, LeavesThePreviousVersionLiveAndTheNextBuildRecovers) {
  const std::string point(GetParam().name);
  ASSERT_TRUE(Build().ok());
  // The first hit, and the third: a later product's, after earlier ones published.
  for (const int nth : {1, 3}) {
    SCOPED_TRACE("CANOPY_FAULT=" + point + ":" + std::to_string(nth));
    const auto before = ReadLive();
    ASSERT_EQ(before.size(), kProducts.size());
    const Exit crashed = BuildWithFault(point + ":" + std::to_string(nth));
    ASSERT_EQ(crashed.code, fault::kCrashExitCode)
        << "the build did not die at the point (87: never reached it)\n"
        << crashed.err;
    EXPECT_TRUE(Contains(crashed.err, "fault: the process dies at " + point)) << crashed.err;
    const bool after_commit = kAfterTheFirstCommit.count(point) != 0;
    const int moved = ExpectRecovered(before, nth > 1 || after_commit);
    if (nth == 1) {
      EXPECT_EQ(moved, after_commit ? 1 : 0);
    }
    if (HasFailure()) return;
  }
}

std::string PointName(const ::testing::TestParamInfo<fault::PointInfo>& info) {
  std::string name(info.param.name);
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}

// Every point of the one list in core/fault.h, so a new point cannot be missed.
INSTANTIATE_TEST_SUITE_P(BuildFaultPoints, BuildFaultCrash, ::testing::ValuesIn(fault::kPoints),
                         PointName);

// --- a full disk and a read-only storage root ---

struct Failure {
  std::string fault;             // CANOPY_FAULT
  std::vector<std::string> say;  // in the error
};

TEST_F(BuildFault, AFullDiskOrAReadOnlyRootFailsClearlyAndLosesNothing) {
  ASSERT_TRUE(Build().ok());
  const std::vector<Failure> failures = {
      // COPY wrote the port's Parquet file; flushing it finds the disk full.
      {"storage.sync:1:ENOSPC",
       {"error: ", "cannot flush to disk", "staging/", "customers.parquet",
        "No space left on device", "hint: the file system holding it is full",
        "the live versions are unchanged"}},
      // The manifest does not fit.
      {"storage.write:1:ENOSPC",
       {"error: ", "cannot write", "staging/", "manifest.json", "No space left on device",
        "hint: the file system holding it is full"}},
      // The disk fills up between two products: the first publishes, the rest fail.
      {"storage.write:2:ENOSPC", {"manifest.json", "No space left on device"}},
      // A storage root on a read-only file system: the first folder cannot be made.
      {"storage.mkdir:1:EROFS",
       {"error: ", "cannot create", "staging/", "Read-only file system",
        "hint: the storage root must be writable by this process"}},
  };
  for (const auto& failure : failures) {
    SCOPED_TRACE("CANOPY_FAULT=" + failure.fault);
    const auto before = ReadLive();
    const Exit failed = BuildWithFault(failure.fault);
    ASSERT_EQ(failed.code, 1) << "the build must fail, not crash (87: never reached)\n"
                              << failed.err;
    for (const auto& part : failure.say) EXPECT_TRUE(Contains(failed.err, part)) << failed.err;
    const bool moves = failure.fault == "storage.write:2:ENOSPC";
    EXPECT_EQ(ExpectRecovered(before, moves), moves ? 1 : 0);
    if (HasFailure()) return;
  }
}

// The storage root read-only for the build, as a read-only file system makes it: for root,
// whom file modes do not stop, a read-only bind mount of the folder over itself (the kernel
// answers EROFS); for anyone else, every folder's write bits taken away (EACCES).
class ReadOnlyFolder {
 public:
  explicit ReadOnlyFolder(const fs::path& folder) : folder_(folder) {
    if (::geteuid() == 0) {
      if (::mount(folder.c_str(), folder.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        why_not_ = std::string("cannot bind-mount it: ") + std::strerror(errno);
        return;
      }
      mounted_ = true;
      if (::mount(nullptr, folder.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) !=
          0) {
        why_not_ = std::string("cannot remount it read-only: ") + std::strerror(errno);
      }
      return;
    }
    for (auto it = fs::recursive_directory_iterator(folder);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory()) made_read_only_.push_back(it->path());
    }
    made_read_only_.push_back(folder);
    for (const auto& f : made_read_only_) {
      fs::permissions(f, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                      fs::perm_options::remove);
    }
  }
  ~ReadOnlyFolder() {
    if (mounted_ && ::umount2(folder_.c_str(), MNT_DETACH) != 0) {
      std::fprintf(stderr, "cannot unmount %s: %s\n", folder_.c_str(), std::strerror(errno));
    }
    for (const auto& f : made_read_only_) {
      fs::permissions(f, fs::perms::owner_write, fs::perm_options::add);
    }
  }
  ReadOnlyFolder(const ReadOnlyFolder&) = delete;
  ReadOnlyFolder& operator=(const ReadOnlyFolder&) = delete;
  // Empty when the folder is read-only now; else why it could not be made so.
  const std::string& why_not() const { return why_not_; }

 private:
  fs::path folder_;
  bool mounted_ = false;
  std::vector<fs::path> made_read_only_;
  std::string why_not_;
};

TEST_F(BuildFault, AStorageRootMadeReadOnlyFailsClearlyAndLosesNothing) {
  ASSERT_TRUE(Build().ok());
  const auto before = ReadLive();
  Exit failed;
  {
    ReadOnlyFolder read_only(Storage());
    if (!read_only.why_not().empty()) {
      GTEST_SKIP() << "the storage root could not be made read-only (" << read_only.why_not()
                   << "); EROFS from the storage seam is tested in "
                      "AFullDiskOrAReadOnlyRootFailsClearlyAndLosesNothing";
    }
    ASSERT_NE(::access(Storage().c_str(), W_OK), 0) << "the storage root is still writable";
    failed = RunProgram(canopy::test::kCanopyBinary, {"--mesh", mesh_.string(), "build", "--force"},
                        {}, dir_);
  }
  EXPECT_EQ(failed.code, 1) << failed.err;
  EXPECT_TRUE(Contains(failed.err, "error: ")) << failed.err;
  EXPECT_TRUE(Contains(failed.err, Storage().string())) << failed.err;
  ExpectRecovered(before, false);
}

// --- the list ---

TEST(FaultPoints, AreNamedOnceAndListedInTheArchitecture) {
  const std::string architecture =
      ReadAll(fs::path(canopy::test::kTestDir).parent_path() / "docs" / "ARCHITECTURE.md");
  std::set<std::string> names;
  for (const auto& info : fault::kPoints) {
    EXPECT_TRUE(names.insert(std::string(info.name)).second) << info.name << " twice";
    EXPECT_TRUE(Contains(architecture, "`" + std::string(info.name) + "`"))
        << info.name << " is not listed in docs/ARCHITECTURE.md";
  }
  for (size_t i = 0; i < fault::kPoints.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(fault::kPoints[i].point), i) << "kPoints follows the enum";
  }
}

}  // namespace
}  // namespace canopy::build
