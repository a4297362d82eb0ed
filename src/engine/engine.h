// RAII over the DuckDB C API. duckdb.h is included only by engine/*.cpp: the
// handles below are DuckDB's own opaque struct types, declared, not defined.
//
// Thread safety: a Database may be shared by threads, each with its own Connection;
// a Connection and its Results belong to one thread at a time, except Interrupt().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct _duckdb_database;
struct _duckdb_connection;

namespace canopy::engine {

struct DatabaseOptions {
  std::string path;                           // empty: in memory
  std::map<std::string, std::string> config;  // DuckDB settings applied at open
};

// An in-memory database that can read no file and load no extension: for parsing, and
// for answering from what Canopy puts into it.
DatabaseOptions WithoutFileAccess();

// An open DuckDB database. Destroy every Connection before it.
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

// The type of a result column, as far as readers need to know it.
enum class ColumnType { kBoolean, kInteger, kDouble, kDecimal, kVarchar, kOther };

class Prepared;

// A query result, read chunk by chunk (about 2048 rows each): nothing is
// materialised beyond the current chunk. Usage:
//   for (Result r = connection.Query(sql); r.NextChunk();)
//     for (int64_t row = 0; row < r.ChunkRows(); ++row) ... r.Text(0, row) ...
class Result {
 public:
  Result(Result&&) noexcept;
  Result& operator=(Result&&) noexcept;
  ~Result();

  int ColumnCount() const;
  std::string ColumnName(int column) const;
  ColumnType Type(int column) const;

  // Moves to the next chunk; false when there is none. Throws Error(kFailed) if the
  // query fails while streaming (e.g. a bad value in a CSV file).
  bool NextChunk();
  int64_t ChunkRows() const;

  bool IsNull(int column, int64_t row) const;
  // Integer and boolean columns.
  int64_t Int(int column, int64_t row) const;
  // Integer, floating point and decimal columns.
  double Double(int column, int64_t row) const;
  // VARCHAR columns, and integers/booleans/doubles formatted; other types must be
  // cast to VARCHAR in the SQL (throws Error(kInternal) otherwise).
  std::string Text(int column, int64_t row) const;
  // Text's characters appended to `out`, without a string of their own.
  void AppendText(int column, int64_t row, std::string& out) const;
  // A VARCHAR value where the chunk holds it: valid until the next NextChunk.
  std::string_view View(int column, int64_t row) const;

 private:
  friend class Connection;
  friend class Prepared;
  struct Impl;
  explicit Result(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A statement prepared (parsed, bound and planned) but not run: its result's columns are
// known before it runs. Belongs to the Connection that made it, and must not outlive it.
class Prepared {
 public:
  Prepared(Prepared&&) noexcept;
  Prepared& operator=(Prepared&&) noexcept;
  ~Prepared();

  int ColumnCount() const;
  std::string ColumnName(int column) const;
  // How Result will read the column (kOther: cast it to VARCHAR to read it as text).
  ColumnType Type(int column) const;
  // DuckDB's name of the column's type, as DESCRIBE spells it ("DECIMAL(12,2)",
  // "VARCHAR[]", "STRUCT(a INTEGER)"); "" for the few it does not spell (ENUM, UNION).
  std::string TypeName(int column) const;

  // Whether the statement is a query (SELECT, WITH, VALUES, TABLE) as DuckDB parsed it:
  // one that writes, configures or attaches nothing.
  bool IsQuery() const;

  // Runs the statement and streams its result. Throws Error(kFailed).
  Result Execute();

 private:
  friend class Connection;
  struct Impl;
  explicit Prepared(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A connection to a Database; must not outlive it.
class Connection {
 public:
  explicit Connection(Database& database);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs every statement of `sql` in order. On failure throws Error(kFailed) with
  // DuckDB's message, naming the statement (1-based) when there are several.
  void Execute(const std::string& sql);

  // Runs one statement and streams its result. Throws Error(kFailed).
  Result Query(const std::string& sql);

  // Prepares one statement to run later. Throws Error(kFailed) when it does not bind.
  Prepared Prepare(const std::string& sql);

  // The first column of the first row as text; nullopt when there is no row or it is NULL.
  std::optional<std::string> QueryValue(const std::string& sql);

  // Asks a query running on this connection (on another thread) to stop.
  void Interrupt();

  _duckdb_connection* handle() const { return handle_; }

 private:
  _duckdb_connection* handle_ = nullptr;
};

// SQL functions written in C++, registered on the database `connection` belongs to
// (every connection of it sees them). Their secrets live in this process's memory,
// never in any SQL text the database holds.
//
// NAME_text(VARCHAR) -> VARCHAR: 16 hex digits of SHA-256(key || value).
// NAME_num(BIGINT | DOUBLE | VARCHAR) -> BIGINT: a non-negative number from the same
// hash. NULL stays NULL. Keyed: without the key, a table of known values' hashes
// cannot be made.
void RegisterKeyedHash(Connection& connection, const std::string& name, const std::string& key);

// NAME(VARCHAR) -> VARCHAR: its argument, or an error naming `what` when it is longer
// than `max_bytes` (keeps functions whose cost grows with the square of their input
// within a time the query's limit can stop: DuckDB checks for interrupts between
// chunks, never inside one function call).
void RegisterLengthCap(Connection& connection, const std::string& name, int64_t max_bytes);

// The version of the DuckDB library in use ("v1.4.4").
std::string LibraryVersion();

// The line DuckDB's message points at ("LINE 3: ..."), 0 when it names none.
int ErrorLine(const std::string& message);

}  // namespace canopy::engine
