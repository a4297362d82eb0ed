// Which catalog store a test run uses. Every suite that opens a catalog runs twice in
// `make test`: on SQLite (the default) and on PostgreSQL, with CANOPY_TEST_STORE=
// postgresql and CANOPY_TEST_PG the URL of the throwaway server scripts/with-postgres
// started. On PostgreSQL each test gets a schema of its own (a fresh, empty catalog),
// named in CANOPY_CATALOG, which the binary and OpenMesh read, and which child
// processes inherit.
#pragma once

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "catalog/catalog.h"

namespace canopy::test {

inline bool OnPostgres() {
  const char* store = std::getenv("CANOPY_TEST_STORE");
  return store != nullptr && std::string(store) == "postgresql";
}

// The server's URL; "" when none was started.
inline std::string PostgresUrl() {
  const char* url = std::getenv("CANOPY_TEST_PG");
  return url != nullptr ? url : "";
}

// Makes a new, empty schema and points CANOPY_CATALOG at it. Returns its URL.
inline std::string UseFreshPostgresCatalog() {
  static std::atomic<int> counter{0};
  const std::string base = PostgresUrl();
  const std::string schema = "t_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  const std::string command =
      "psql -X -q -v ON_ERROR_STOP=1 '" + base + "' -c 'CREATE SCHEMA " + schema + "' >/dev/null";
  if (std::system(command.c_str()) != 0) std::abort();
  const std::string url = base + (base.find('?') == std::string::npos ? "?" : "&") +
                          "options=-csearch_path%3D" + schema;
  ::setenv("CANOPY_CATALOG", url.c_str(), 1);
  return url;
}

// The catalog of a mesh whose SQLite file would be `sqlite_file`: that file, or the
// PostgreSQL catalog CANOPY_CATALOG names. Its audit key sits beside the file either way.
inline std::string TestCatalogLocation(const std::string& sqlite_file) {
  const char* env = std::getenv("CANOPY_CATALOG");
  return env != nullptr && *env != '\0' ? std::string(env) : sqlite_file;
}

inline std::unique_ptr<catalog::CatalogStore> OpenTestCatalog(const std::string& sqlite_file) {
  const std::string folder = sqlite_file.substr(0, sqlite_file.rfind('/'));
  return catalog::OpenCatalog(TestCatalogLocation(sqlite_file), folder);
}

}  // namespace canopy::test

// For suites whose SetUpTestSuite builds one mesh for all their tests: they keep the
// catalog the suite started with (defined in test_store_listener.cpp).
namespace canopy::test {
void ShareCatalogInSuite();
}

namespace canopy::test {

// Runs `sql` with psql on the catalog CANOPY_CATALOG names; its rows, one per line,
// columns split by '|'. Empty on failure (the test's assertions then say what is
// missing).
inline std::string Psql(const std::string& sql) {
  const char* url = std::getenv("CANOPY_CATALOG");
  if (url == nullptr) return "";
  auto quote = [](const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  };
  const std::string command =
      "psql -X -q -A -t -v ON_ERROR_STOP=1 " + quote(url) + " -c " + quote(sql) + " 2>&1";
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    ::pclose(pipe);
  }
  return out;
}

}  // namespace canopy::test

namespace canopy::test {

// `text` as a SQL string literal (both stores: quotes doubled).
inline std::string SqlLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Runs `sql` directly on the catalog of a mesh whose SQLite file would be
// `sqlite_file` — as someone with write access to the database but not to Canopy's
// keys would (tampering tests). True when it ran.
inline bool ExecuteOnCatalog(const std::string& sqlite_file, const std::string& sql) {
  auto quote = [](const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  };
  const char* url = std::getenv("CANOPY_CATALOG");
  const std::string command =
      url != nullptr && *url != '\0'
          ? "psql -X -q -v ON_ERROR_STOP=1 " + quote(url) + " -c " + quote(sql) + " >/dev/null"
          : "sqlite3 " + quote(sqlite_file) + " " + quote(sql);
  return std::system(command.c_str()) == 0;
}

}  // namespace canopy::test

namespace canopy::test {

// Throws a mesh's storage root away, catalog included: on PostgreSQL the test moves to
// a fresh schema, as a new storage root would start a new SQLite file.
inline void RemoveStorageAndCatalog(const std::string& storage) {
  std::filesystem::remove_all(storage);
  if (OnPostgres() && !PostgresUrl().empty()) UseFreshPostgresCatalog();
}

}  // namespace canopy::test
