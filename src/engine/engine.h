// RAII over the DuckDB C API. duckdb.h is included only by engine/*.cpp: the
// handles below are DuckDB's own opaque struct types, declared, not defined.
//
// Thread safety: a Database may be shared by threads, each with its own Connection;
// a Connection and its Results belong to one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct _duckdb_database;
struct _duckdb_connection;

namespace canopy::engine {

struct DatabaseOptions {
  std::string path;                           // empty: in memory
  std::map<std::string, std::string> config;  // DuckDB settings applied at open
};

// An open DuckDB database. Closing it (destruction) needs every Connection gone.
class Database {
 public:
  // Throws Error(kFailed) with DuckDB's message when it cannot open.
  explicit Database(const DatabaseOptions& options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  _duckdb_database* handle() const { return handle_; }

 private:
  _duckdb_database* handle_ = nullptr;
};

class Result;

// A connection to a Database; must not outlive it.
class Connection {
 public:
  explicit Connection(Database& database);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs every statement of `sql` in order. On failure throws Error(kFailed) naming
  // the statement (1-based) and DuckDB's message.
  void Execute(const std::string& sql);

  // Runs one query and returns its (materialised) result. Throws Error(kFailed).
  Result Query(const std::string& sql);

  _duckdb_connection* handle() const { return handle_; }

 private:
  _duckdb_connection* handle_ = nullptr;
};

// A query result. Values are read as text (NULL as nullopt-like empty + IsNull).
class Result {
 public:
  Result(Result&&) noexcept;
  Result& operator=(Result&&) noexcept;
  ~Result();

  int64_t RowCount() const;
  int ColumnCount() const;
  std::string ColumnName(int column) const;
  bool IsNull(int column, int64_t row) const;
  std::string Text(int column, int64_t row) const;
  int64_t Int(int column, int64_t row) const;

 private:
  friend class Connection;
  struct Impl;
  explicit Result(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The version of the DuckDB library in use ("v1.4.4").
std::string LibraryVersion();

}  // namespace canopy::engine
