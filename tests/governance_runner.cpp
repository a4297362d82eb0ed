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
// file and {{storage}} for the storage root. Each message line must hold (there may be several);
// one starting with '!' must NOT be part of the message. No answer — rows or message — may ever
// hold the canary, a value only hr.salaries (private) holds, unless the reader is in hr or an
// admin.
//
// Every query case is asked four ways, which must answer alike: in the process
// (governance::RunGovernedQuery), through the real binary (`canopy query --as USER
// --format json`: rows, exit 3 for denied, exit 1 for refused or failed) and through
// the REST API (POST /api/v1/query with the user's token: rows, 400, 403, or 500 /
// an error ending the streamed document) and PostgreSQL's wire protocol (libpq's
// PQexecParams: rows, or an ErrorResponse whose SQLSTATE says which). Pipelines
// (domain:NAME) have no token, so their cases skip HTTP and the wire.
//
// Lines starting with '#' are comments.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "build/runner.h"
#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/error.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "governance/tokens.h"
#include "pgwire/pgwire.h"
#include "server/api.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"
#include "support/test_store.h"
#include "unit/cli_support.h"

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

fs::path g_template;                                               // the built fixture
std::map<std::string, std::pair<fs::path, std::string>> g_copies;  // per case file: its
                                                                   // mesh, its catalog URL

// The fixture, built once per file's copy. On a PostgreSQL run (support/test_store.h)
// the copy's catalog is the built SQLite one moved into a fresh schema, which
// CANOPY_CATALOG names while the file's cases run.
fs::path MeshFor(const fs::path& file) {
  auto it = g_copies.find(file.string());
  if (it != g_copies.end()) {
    if (!it->second.second.empty()) ::setenv("CANOPY_CATALOG", it->second.second.c_str(), 1);
    return it->second.first;
  }
  const fs::path copy = fs::temp_directory_path() /
                        ("canopy-gov-" + std::to_string(::getpid()) + "-" + file.stem().string());
  fs::remove_all(copy);
  fs::copy(g_template, copy, fs::copy_options::recursive);
  std::string url;
  if (test::OnPostgres()) {
    url = test::UseFreshPostgresCatalog();
    const std::string storage = (copy / ".canopy").string();
    catalog::OpenCatalog(url, storage)->Load(catalog::OpenCatalog(storage + "/catalog.db")->Dump());
  }
  g_copies[file.string()] = {copy, url};
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
  loaded.catalog = test::OpenTestCatalog((root / ".canopy/catalog.db").string());
  return loaded;
}

// The fixture as the in-process ways see it, loaded once per mesh copy (a PostgreSQL
// catalog's connection costs tens of milliseconds; every case would pay it four times).
// Catalog reads ask the store each time, so what the binary or a grant case wrote is seen.
std::map<std::string, std::unique_ptr<Loaded>> g_loaded;  // per mesh copy

Loaded& LoadedFor(const fs::path& root) {
  auto& loaded = g_loaded[root.string()];
  if (!loaded) loaded = std::make_unique<Loaded>(Load(root));
  return *loaded;
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

// What one way of asking answered.
struct Outcome {
  std::string kind;  // query (rows came back) | refused | denied | failed | other
  std::vector<std::string> rows;
  std::string message;  // the error's message, when there was one
  std::string printed;  // everything the reader was shown, for the canary check
};

Outcome FromError(ErrorCode code, const std::string& message) {
  Outcome out;
  out.kind = code == ErrorCode::kInvalidInput       ? "refused"
             : code == ErrorCode::kPermissionDenied ? "denied"
             : code == ErrorCode::kFailed           ? "failed"
                                          : "other (" + std::string(ErrorCodeName(code)) + ")";
  out.message = message;
  out.printed = message;
  return out;
}

// Rows of a JSON answer ({"rows": [[…], …]}), in the runner's tab-separated form.
std::vector<std::string> JsonRows(const nlohmann::json& rows) {
  std::vector<std::string> out;
  for (const auto& row : rows) {
    std::vector<governance::Value> values;
    for (const auto& v : row) {
      if (v.is_null()) {
        values.emplace_back(std::monostate{});
      } else if (v.is_boolean()) {
        values.emplace_back(v.get<bool>());
      } else if (v.is_number_integer()) {
        values.emplace_back(v.get<int64_t>());
      } else if (v.is_number()) {
        values.emplace_back(v.get<double>());
      } else {
        values.emplace_back(v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
    RowsSink sink;
    sink.Row(values);
    out.push_back(sink.rows[0]);
  }
  return out;
}

// In the process, through the governed query path itself.
Outcome AskEngine(const Loaded& loaded, const std::string& user, const std::string& sql) {
  auto principal = governance::ResolvePrincipal(loaded.mesh, user);
  RowsSink sink;
  try {
    governance::RunGovernedQuery(loaded.mesh, *loaded.catalog, principal, sql, {}, sink);
  } catch (const Error& e) {
    return FromError(e.code(), e.what());
  }
  Outcome out;
  out.kind = "query";
  out.rows = sink.rows;
  for (const auto& row : sink.rows) out.printed += row + "\n";
  return out;
}

// The real binary: `canopy --mesh ROOT query --as USER --format json SQL`, the SQL
// passed as one argument (no shell between).
Outcome AskCli(const fs::path& root, const std::string& user, const std::string& sql) {
  const fs::path out_file = root / "cli.stdout";
  const fs::path err_file = root / "cli.stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<std::string> args = {canopy::test::kCanopyBinary,
                                   "--mesh",
                                   root.string(),
                                   "query",
                                   "--as",
                                   user,
                                   "--format",
                                   "json",
                                   "--",
                                   sql};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  Outcome out;
  if (posix_spawn(&pid, canopy::test::kCanopyBinary, &actions, nullptr, argv.data(), environ) !=
      0) {
    posix_spawn_file_actions_destroy(&actions);
    out.kind = "other (cannot start canopy)";
    return out;
  }
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  waitpid(pid, &status, 0);
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string stdout_text = canopy::test::Read(out_file);
  const std::string stderr_text = canopy::test::Read(err_file);
  out.printed = stdout_text + stderr_text;
  out.message = stderr_text;
  if (exit_code == 0) {
    out.kind = "query";
    try {
      out.rows = JsonRows(nlohmann::json::parse(stdout_text).at("rows"));
    } catch (const std::exception& e) {
      out.kind = std::string("other (unreadable JSON: ") + e.what() + ")";
    }
  } else if (exit_code == 3) {
    out.kind = "denied";
  } else if (exit_code == 1 && stderr_text.rfind("error: ", 0) != 0) {
    out.kind = "other (exit 1 without an error line)";
  } else if (exit_code == 1) {
    // The command line answers a refusal and an engine failure alike (exit 1); the
    // message tells them apart, and the in-process way checks the code.
    out.kind = "refused-or-failed";
  } else {
    out.kind = "other (exit " + std::to_string(exit_code) + ")";
  }
  return out;
}

// The REST API: POST /api/v1/query with the user's bearer token, the same Api the
// server runs behind its sockets.
Outcome AskHttp(const Loaded& loaded, const std::string& token, const std::string& sql) {
  catalog::CatalogStore* store = loaded.catalog.get();
  server::Api api(
      loaded.mesh, [store] { return std::shared_ptr<catalog::CatalogStore>(store, [](auto*) {}); },
      "test");
  server::HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/query";
  request.body = nlohmann::json({{"sql", sql}}).dump();
  request.authorization = "Bearer " + token;
  server::HttpResponse response = api.Handle(request);
  if (response.stream) {
    response.stream([&](std::string_view piece) {
      response.body.append(piece);
      return true;
    });
  }
  Outcome out;
  out.printed = response.body;
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(response.body);
  } catch (const std::exception& e) {
    out.kind = std::string("other (unreadable JSON: ") + e.what() + ")";
    return out;
  }
  if (body.contains("error")) {
    const std::string code = body["error"].value("code", "");
    out.message = body["error"].value("message", "");
    // Before the first row, the status says it; once rows stream, the document ends
    // with the error.
    // A refusal or denial comes before the first row: a 400 or 403 with nothing else.
    // An engine failure may come while rows stream: a 500, or the document ending
    // with the error.
    const bool before_rows = code == "invalid_input" || code == "permission_denied";
    const int want_status = code == "invalid_input" ? 400 : code == "permission_denied" ? 403 : 500;
    if (response.status != want_status && (before_rows || response.status != 200)) {
      out.kind = "other (status " + std::to_string(response.status) + " for " + code + ")";
    } else if (before_rows && body.contains("rows")) {
      out.kind = "other (rows before a " + code + ")";
    } else {
      out.kind = code == "invalid_input"       ? "refused"
                 : code == "permission_denied" ? "denied"
                 : code == "failed"            ? "failed"
                                               : "other (" + code + ")";
    }
    return out;
  }
  if (response.status != 200) {
    out.kind = "other (status " + std::to_string(response.status) + ")";
    return out;
  }
  out.kind = "query";
  out.rows = JsonRows(body.at("rows"));
  return out;
}

// PostgreSQL's wire protocol: libpq against a PgListener over the same mesh and catalog,
// one per mesh copy, the statement sent with the extended protocol (PQexecParams).
struct WireServer {
  Loaded loaded;
  std::unique_ptr<pgwire::PgListener> listener;
};
std::map<std::string, std::unique_ptr<WireServer>> g_wire;  // per mesh copy

int WirePort(const fs::path& root) {
  auto& server = g_wire[root.string()];
  if (!server) {
    server = std::make_unique<WireServer>();
    server->loaded = Load(root);
    catalog::CatalogStore* store = server->loaded.catalog.get();
    pgwire::PgOptions options;
    options.listen = "127.0.0.1:0";
    options.version = "test";
    // The runner waits for each answer before it asks again: one store serves in turn.
    server->listener = std::make_unique<pgwire::PgListener>(
        server->loaded.mesh,
        [store] { return std::shared_ptr<catalog::CatalogStore>(store, [](auto*) {}); }, options);
    server->listener->Start();
  }
  return server->listener->port();
}

Outcome AskWire(const fs::path& root, const std::string& user, const std::string& token,
                const std::string& sql) {
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(WirePort(root)) +
                               " dbname=mesh connect_timeout=10 user=" + user +
                               " password=" + token;
  Outcome out;
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    out.kind = std::string("other (cannot connect: ") + PQerrorMessage(conn) + ")";
    PQfinish(conn);
    return out;
  }
  PGresult* result = PQexecParams(conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
  if (PQresultStatus(result) == PGRES_TUPLES_OK) {
    out.kind = "query";
    RowsSink sink;
    for (int row = 0; row < PQntuples(result); ++row) {
      std::vector<governance::Value> values;
      for (int column = 0; column < PQnfields(result); ++column) {
        const std::string text = PQgetvalue(result, row, column);
        out.printed += text + "\t";
        switch (PQgetisnull(result, row, column) != 0 ? 0 : PQftype(result, column)) {
          case 0:
            values.emplace_back(std::monostate{});
            break;
          case 16:
            values.emplace_back(text == "t");
            break;
          case 20:
          case 21:
          case 23:
            values.emplace_back(static_cast<int64_t>(std::stoll(text)));
            break;
          case 700:
          case 701:
            values.emplace_back(std::strtod(text.c_str(), nullptr));
            break;
          default:
            values.emplace_back(text);
        }
      }
      sink.Row(values);
    }
    out.rows = sink.rows;
  } else {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const std::string sqlstate = state != nullptr ? state : "";
    out.message = PQresultErrorMessage(result);
    out.printed += out.message;
    // 42501 is a denial when a port may not be read, else a refusal (as 42P01, a name
    // that is no port, and 42601 when the guard cannot parse it); the rest failed in
    // the engine.
    if (sqlstate == "42501") {
      out.kind = out.message.find("may not read") != std::string::npos ? "denied" : "refused";
    } else if (sqlstate == "42P01" ||
               (sqlstate == "42601" && out.message.find("query refused") != std::string::npos)) {
      out.kind = "refused";
    } else if (sqlstate.empty() || sqlstate[0] == '0' || sqlstate == "28000") {
      out.kind = "other (SQLSTATE " + sqlstate + ")";
    } else {
      out.kind = "failed";
    }
  }
  PQclear(result);
  PQfinish(conn);
  return out;
}

// The answer a case wants, checked against what one way gave.
void Check(const Case& c, const Outcome& got, bool may_see_canary) {
  if (!may_see_canary) {
    EXPECT_EQ(got.printed.find(kCanary), std::string::npos) << "the canary leaked:\n"
                                                            << got.printed;
  }
  const bool kind_matches = got.kind == c.kind || (got.kind == "refused-or-failed" &&
                                                   (c.kind == "refused" || c.kind == "failed"));
  if (!kind_matches) {
    ADD_FAILURE() << "expected " << c.kind << ", got " << got.kind
                  << (got.kind == "query" ? " (" + std::to_string(got.rows.size()) + " rows)"
                                          : ": " + got.message)
                  << "\n"
                  << c.sql;
    return;
  }
  if (c.kind == "query") {
    EXPECT_EQ(got.rows, c.expected) << c.sql;
    return;
  }
  // Every line must hold; at least one must say what the message is, not only what
  // it is not.
  bool positive = false;
  for (const std::string& want : c.expected) {
    if (want[0] == '!') {
      EXPECT_EQ(got.message.find(want.substr(1)), std::string::npos) << "message: " << got.message;
    } else {
      positive = true;
      EXPECT_NE(got.message.find(want), std::string::npos) << "message: " << got.message;
    }
  }
  EXPECT_TRUE(positive) << "say what the message must hold, not only what it must not";
}

// A refusal because the SQL reads the engine's catalog (pg_catalog, information_schema,
// duckdb_…).
bool AsksTheEngineCatalog(const Case& c) {
  return c.kind == "refused" &&
         std::any_of(c.expected.begin(), c.expected.end(), [](const std::string& line) {
           return line.find("is the engine's catalog") != std::string::npos;
         });
}

// Over the wire such a question is answered from the user's own view of the mesh's
// catalog (pgwire/catalog_view.h), not refused: it must answer, and its answer holds
// no file, no storage path, no private product of another domain and no canary.
void CheckCatalogView(const Case& c, const Outcome& got, const Loaded& loaded) {
  if (got.kind != "query") {
    // The view holds only some of the engine's catalog: a refusal or an error is as
    // safe, as long as it leaks nothing.
    EXPECT_TRUE(got.kind == "refused" || got.kind == "failed") << got.kind << "\n" << c.sql;
  }
  for (const std::string& secret : {std::string(kCanary), std::string(".parquet"),
                                    std::string("salaries"), fs::path(loaded.mesh.root).string()}) {
    EXPECT_EQ(got.printed.find(secret), std::string::npos)
        << "'" << secret << "' in the catalog's answer to\n"
        << c.sql << "\n"
        << got.printed;
  }
}

void RunGrant(const Case& c) {
  SCOPED_TRACE(c.file.filename().string() + ":" + std::to_string(c.line));
  Loaded& loaded = LoadedFor(MeshFor(c.file));
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
}

// Each query case is asked four ways, which must all answer alike.
enum class Way { kEngine, kCli, kHttp, kWire };

std::map<std::string, std::string> g_tokens;  // per copy and user

void RunCase(const Case& c, Way way) {
  SCOPED_TRACE(c.file.filename().string() + ":" + std::to_string(c.line));
  ASSERT_EQ(c.words.size(), 1u) << "want: " << c.kind << " USER";
  const fs::path root = MeshFor(c.file);
  Loaded& loaded = LoadedFor(root);
  const std::string& user = c.words[0];
  auto principal = governance::ResolvePrincipal(loaded.mesh, user);
  const bool may_see_canary = principal.admin || principal.InDomain("hr");
  const std::string sql = Substitute(c.sql, loaded);
  switch (way) {
    case Way::kEngine:
      Check(c, AskEngine(loaded, user, sql), may_see_canary);
      break;
    case Way::kCli:
      Check(c, AskCli(root, user, sql), may_see_canary);
      break;
    case Way::kHttp:
    case Way::kWire: {
      std::string& token = g_tokens[root.string() + "|" + user];
      if (token.empty()) token = governance::IssueToken(*loaded.catalog, user).token;
      if (way == Way::kHttp) {
        Check(c, AskHttp(loaded, token, sql), may_see_canary);
      } else if (AsksTheEngineCatalog(c)) {
        CheckCatalogView(c, AskWire(root, user, token, sql), loaded);
      } else {
        Check(c, AskWire(root, user, token, sql), may_see_canary);
      }
      break;
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
  if (test::OnPostgres() && test::PostgresUrl().empty()) {
    std::fprintf(stderr, "CANOPY_TEST_STORE=postgresql needs scripts/with-postgres: skipped\n");
    return 77;  // ctest's SKIP_RETURN_CODE
  }
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
      auto add = [&](const std::string& way_name, std::function<void()> body) {
        const std::string name =
            file.stem().string() + "_L" + std::to_string(c.line) + "_" + c.kind + way_name;
        ::testing::RegisterTest(file.stem().string().c_str(), name.c_str(), nullptr, nullptr,
                                file.string().c_str(), c.line, [body]() -> ::testing::Test* {
                                  struct CaseTest : ::testing::Test {
                                    std::function<void()> body;
                                    explicit CaseTest(std::function<void()> b)
                                        : body(std::move(b)) {}
                                    void TestBody() override { body(); }
                                  };
                                  return new CaseTest(body);
                                });
      };
      if (c.kind == "grant" || c.kind == "revoke") {
        add("", [c] { RunGrant(c); });
      } else {
        add("", [c] { RunCase(c, Way::kEngine); });
        add("_cli", [c] { RunCase(c, Way::kCli); });
        // A token is a person's: pipelines (domain:NAME) do not ask over HTTP.
        if (c.words.empty() || c.words[0].rfind("domain:", 0) != 0) {
          add("_http", [c] { RunCase(c, Way::kHttp); });
          add("_wire", [c] { RunCase(c, Way::kWire); });
        }
      }
      ++count;
    }
  }
  std::printf("%d governance cases in %zu files\n", count, files.size());
  const int result = RUN_ALL_TESTS();
  g_wire.clear();
  fs::remove_all(g_template);
  for (const auto& [file, copy] : g_copies) fs::remove_all(copy.first);
  return result;
}
