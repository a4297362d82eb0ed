// Runs the governance cases in tests/governance/*.test: who runs which SQL, and
// the rows they must see — or the refusal or denial they must get.
//
// The cases run against tests/governance/mesh, built once; each file starts from
// that build (grants made in one file do not leak into another). A case is:
//
//   query USER            the SQL on the following lines, up to "----"; then the
//   SQL…                  expected rows, one per line, values separated by a tab
//   ----                  (NULL for null), in order; a blank line ends the case
//   1	Ana Lima
//
//   refused USER          the guard refuses it (before reading any data); the line
//   SQL…                  after "----" must be part of the message
//   ----
//   not allowed
//
//   denied USER           a port may not be read (exit 3 on the command line); the
//   SQL…                  line after "----" must be part of the message
//   ----
//   may not read
//
//   failed USER           it passes the guard and the decisions but fails in the
//   SQL…                  engine (exit 1); the line after "----" must be part of
//   ----                  the message
//   too long
//
//   grant ACTOR PRODUCT GRANTEE / revoke ACTOR PRODUCT GRANTEE     one line, must succeed
//
// In the SQL, {{file D.P}} stands for the absolute path of port D.P's live Parquet
// file and {{storage}} for the storage root. A message line starting with '!' must
// NOT be part of the message. No answer — rows or message — may ever hold the canary,
// a value only hr.salaries (private) holds, unless the reader is in hr or an admin.
//
// Lines starting with '#' are comments.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "build/runner.h"
#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/error.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "spec/loader.h"
#include "spec/validate.h"

namespace fs = std::filesystem;
using namespace canopy;

namespace {

// A row of hr.salaries, a private product: nobody but hr's people and admins may ever
// see it, by any query.
constexpr const char* kCanary = "CANARY-7f3a";

struct Case {
  std::string kind;  // query | refused | denied | failed | grant | revoke
  std::vector<std::string> words;
  std::string sql;
  std::vector<std::string> expected;
  fs::path file;
  int line = 0;
};

std::vector<Case> ParseFile(const fs::path& file) {
  std::vector<Case> cases;
  std::ifstream in(file);
  std::string text;
  int number = 0;
  enum class State { kIdle, kSql, kExpected } state = State::kIdle;
  while (std::getline(in, text)) {
    ++number;
    if (state == State::kIdle) {
      if (text.empty() || text[0] == '#') continue;
      Case c;
      std::istringstream words(text);
      words >> c.kind;
      for (std::string word; words >> word;) c.words.push_back(word);
      c.file = file;
      c.line = number;
      cases.push_back(c);
      state = (c.kind == "grant" || c.kind == "revoke") ? State::kIdle : State::kSql;
    } else if (state == State::kSql) {
      if (text == "----") {
        state = State::kExpected;
      } else {
        cases.back().sql += (cases.back().sql.empty() ? "" : "\n") + text;
      }
    } else {
      if (text.empty()) {
        state = State::kIdle;
      } else {
        cases.back().expected.push_back(text);
      }
    }
  }
  return cases;
}

class RowsSink : public governance::ResultSink {
 public:
  void Begin(const std::vector<governance::ResultColumn>&) override {}
  void Row(const std::vector<governance::Value>& row) override {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += '\t';
      const auto& v = row[i];
      if (std::holds_alternative<std::monostate>(v)) {
        line += "NULL";
      } else if (const auto* b = std::get_if<bool>(&v)) {
        line += *b ? "true" : "false";
      } else if (const auto* n = std::get_if<int64_t>(&v)) {
        line += std::to_string(*n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "%.15g", *d);
        line += buffer;
      } else {
        line += std::get<std::string>(v);
      }
    }
    rows.push_back(line);
  }
  std::vector<std::string> rows;
};

fs::path g_template;                       // the built fixture
std::map<std::string, fs::path> g_copies;  // per case file

// The fixture, built once per file's copy.
fs::path MeshFor(const fs::path& file) {
  auto it = g_copies.find(file.string());
  if (it != g_copies.end()) return it->second;
  const fs::path copy = fs::temp_directory_path() /
                        ("canopy-gov-" + std::to_string(::getpid()) + "-" + file.stem().string());
  fs::remove_all(copy);
  fs::copy(g_template, copy, fs::copy_options::recursive);
  g_copies[file.string()] = copy;
  return copy;
}

struct Loaded {
  spec::Mesh mesh;
  std::unique_ptr<catalog::CatalogStore> catalog;
};

Loaded Load(const fs::path& root) {
  Loaded loaded;
  Diagnostics diagnostics;
  loaded.mesh = spec::LoadMesh(root.string(), diagnostics);
  spec::ValidateMesh(loaded.mesh, diagnostics);
  if (diagnostics.HasErrors()) throw Error(ErrorCode::kInvalidInput, "fixture mesh invalid");
  loaded.catalog = catalog::OpenCatalog((root / ".canopy/catalog.db").string());
  return loaded;
}

// The SQL with {{file D.P}} and {{storage}} replaced.
std::string Substitute(std::string sql, const Loaded& loaded) {
  const fs::path storage = fs::path(loaded.mesh.root) / ".canopy";
  for (size_t at = sql.find("{{"); at != std::string::npos; at = sql.find("{{", at)) {
    const size_t end = sql.find("}}", at);
    if (end == std::string::npos) break;
    const std::string token = sql.substr(at + 2, end - at - 2);
    std::string value;
    if (token == "storage") {
      value = storage.string();
    } else if (token.rfind("file ", 0) == 0) {
      const std::string address = token.substr(5);
      const auto dot = address.find('.');
      auto [product, port] = loaded.mesh.FindPort(address.substr(0, dot), address.substr(dot + 1));
      if (product == nullptr) throw Error(ErrorCode::kInvalidInput, "no port " + address);
      auto live = loaded.catalog->Live(product->domain, product->name);
      for (const auto& p : live->ports) {
        if (p.name == port->name) value = (storage / p.path).string();
      }
    }
    sql.replace(at, end - at + 2, value);
    at += value.size();
  }
  return sql;
}

void RunCase(const Case& c) {
  SCOPED_TRACE(c.file.filename().string() + ":" + std::to_string(c.line));
  Loaded loaded = Load(MeshFor(c.file));
  if (c.kind == "grant" || c.kind == "revoke") {
    ASSERT_EQ(c.words.size(), 3u) << "want: " << c.kind << " ACTOR PRODUCT GRANTEE";
    const auto dot = c.words[1].find('.');
    const spec::Product* product =
        loaded.mesh.FindProduct(c.words[1].substr(0, dot), c.words[1].substr(dot + 1));
    ASSERT_NE(product, nullptr);
    auto actor = governance::ResolvePrincipal(loaded.mesh, c.words[0]);
    ASSERT_TRUE(governance::CanAdminister(loaded.mesh, actor, *product));
    if (c.kind == "grant") {
      loaded.catalog->AddGrant(
          {0, product->domain, product->name, c.words[2], actor.ToString(), NowIso8601(), {}});
    } else {
      ASSERT_TRUE(loaded.catalog->RevokeGrant(product->domain, product->name, c.words[2]));
    }
    return;
  }
  ASSERT_EQ(c.words.size(), 1u) << "want: " << c.kind << " USER";
  auto principal = governance::ResolvePrincipal(loaded.mesh, c.words[0]);
  const std::string sql = Substitute(c.sql, loaded);
  RowsSink sink;
  try {
    governance::RunGovernedQuery(loaded.mesh, *loaded.catalog, principal, sql, {}, sink);
    if (!principal.admin && !principal.InDomain("hr")) {
      for (const auto& row : sink.rows) {
        EXPECT_EQ(row.find(kCanary), std::string::npos) << "the canary leaked: " << row;
      }
    }
    if (c.kind != "query") {
      ADD_FAILURE() << "expected the query to be " << c.kind << ", but it ran and returned "
                    << sink.rows.size() << " rows:\n"
                    << c.sql;
      return;
    }
    EXPECT_EQ(sink.rows, c.expected) << c.sql;
  } catch (const Error& e) {
    const bool refused = e.code() == ErrorCode::kInvalidInput;
    const bool denied = e.code() == ErrorCode::kPermissionDenied;
    const bool failed = e.code() == ErrorCode::kFailed;
    if ((c.kind == "refused" && refused) || (c.kind == "denied" && denied) ||
        (c.kind == "failed" && failed)) {
      ASSERT_FALSE(c.expected.empty()) << "say what the message must hold";
      const std::string& want = c.expected[0];
      if (want[0] == '!') {
        EXPECT_EQ(std::string(e.what()).find(want.substr(1)), std::string::npos)
            << "message: " << e.what();
      } else {
        EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << "message: " << e.what();
      }
      EXPECT_EQ(std::string(e.what()).find(kCanary), std::string::npos) << e.what();
    } else {
      ADD_FAILURE() << "expected " << c.kind << ", got " << ErrorCodeName(e.code()) << ": "
                    << e.what() << "\n"
                    << c.sql;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: governance_runner CASES_DIR\n");
    return 2;
  }
  const fs::path dir = fs::absolute(argv[1]);
  g_template = fs::temp_directory_path() / ("canopy-gov-template-" + std::to_string(::getpid()));
  fs::remove_all(g_template);
  fs::copy(dir / "mesh", g_template, fs::copy_options::recursive);
  {
    Loaded loaded = Load(g_template);
    auto storage = build::NewLocalStorage();
    auto report = build::RunBuild(loaded.mesh, *loaded.catalog, *storage, {}, nullptr);
    if (!report.ok()) {
      for (const auto& p : report.products) std::fprintf(stderr, "%s\n", p.error.c_str());
      std::fprintf(stderr, "the governance fixture does not build\n");
      return 1;
    }
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  int count = 0;
  for (const auto& file : files) {
    for (const auto& c : ParseFile(file)) {
      const std::string name = file.stem().string() + "_L" + std::to_string(c.line) + "_" + c.kind;
      ::testing::RegisterTest(file.stem().string().c_str(), name.c_str(), nullptr, nullptr,
                              file.string().c_str(), c.line, [c]() -> ::testing::Test* {
                                struct CaseTest : ::testing::Test {
                                  Case c;
                                  explicit CaseTest(Case value) : c(std::move(value)) {}
                                  void TestBody() override { RunCase(c); }
                                };
                                return new CaseTest(c);
                              });
      ++count;
    }
  }
  std::printf("%d governance cases in %zu files\n", count, files.size());
  const int result = RUN_ALL_TESTS();
  fs::remove_all(g_template);
  for (const auto& [file, copy] : g_copies) fs::remove_all(copy);
  return result;
}
