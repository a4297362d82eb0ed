// RAII over the SQLite C API, for the catalog store. Only catalog/sqlite_catalog.cpp
// includes this (and through it sqlite3.h).
//
// Every failure throws Error(kFailed) with SQLite's message and the start of the
// statement that was running. One Connection and its Statements belong to one
// thread at a time.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

#include "core/error.h"

namespace canopy::catalog::sqlite {

// An open database file. Must outlive its Statements and Transactions.
class Connection {
 public:
  static constexpr int kBusyTimeoutMs = 5000;

  // Opens (creating) the file with the settings every catalog connection uses:
  // WAL journal, 5 s busy timeout, foreign keys on, synchronous=NORMAL.
  explicit Connection(const std::string& path) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close_v2(db_);
      throw Error(ErrorCode::kFailed, "cannot open the catalog " + path + ": " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    try {
      SwitchToWal();
      Execute("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;");
    } catch (const Error& e) {
      sqlite3_close_v2(db_);
      throw Error(ErrorCode::kFailed, "cannot open the catalog " + path + ": " + e.what());
    }
  }
  ~Connection() { sqlite3_close_v2(db_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a fixed script of statements written in the code (never user text).
  void Execute(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw Error(ErrorCode::kFailed, std::string("SQLite: ") + sqlite3_errmsg(db_) + " (running " +
                                          Abbreviate(sql) + ")");
    }
  }

  // Rows changed by the last INSERT, UPDATE or DELETE.
  int Changes() const { return sqlite3_changes(db_); }

  sqlite3* handle() const { return db_; }

  // The first words of a statement, for error messages.
  static std::string Abbreviate(std::string_view sql) {
    std::string out;
    for (const char c : sql) {
      const bool space = c == ' ' || c == '\n' || c == '\t';
      if (space && (out.empty() || out.back() == ' ')) continue;
      if (out.size() >= 60) return "`" + out + "…`";
      out += space ? ' ' : c;
    }
    return "`" + out + "`";
  }

 private:
  // Entering WAL mode takes an exclusive lock, for which SQLite does not wait (to
  // avoid deadlock), so a process opening a new file while another one does retries
  // here for as long as the busy timeout.
  void SwitchToWal() {
    constexpr auto kPause = std::chrono::milliseconds(10);
    for (int waited_ms = 0;; waited_ms += 10) {
      const int rc = sqlite3_exec(db_, "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr);
      if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= kBusyTimeoutMs) break;
      std::this_thread::sleep_for(kPause);
    }
    Execute("PRAGMA journal_mode = WAL");  // a no-op now, or the error to report
  }

  sqlite3* db_ = nullptr;
};

// A prepared statement. Values are bound by position, never spliced into SQL.
class Statement {
 public:
  Statement(Connection& connection, const char* sql) : db_(connection.handle()) {
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt_, nullptr) != SQLITE_OK) Fail(sql);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds the parameters ?1, ?2, … to `values` (text, integers, bools), after a
  // reset, so a statement can be run again with new values.
  template <typename... Values>
  Statement& Bind(const Values&... values) {
    sqlite3_reset(stmt_);
    int index = 0;
    (BindOne(++index, values), ...);
    return *this;
  }

  // Steps once: true when a row is ready to read, false when done.
  bool Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Fail(sqlite3_sql(stmt_));
  }

  // Runs a statement that returns no rows.
  void Run() {
    while (Step()) {
    }
  }

  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  int64_t Int(int column) const {
    return static_cast<int64_t>(sqlite3_column_int64(stmt_, column));
  }
  bool Bool(int column) const { return Int(column) != 0; }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string Text(int column) const {
    const auto* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    const auto size = static_cast<size_t>(sqlite3_column_bytes(stmt_, column));
    return {reinterpret_cast<const char*>(text), size};
  }

 private:
  template <typename T>
  void BindOne(int index, const T& value) {
    int rc = SQLITE_OK;
    if constexpr (std::is_same_v<T, bool>) {
      rc = sqlite3_bind_int(stmt_, index, value ? 1 : 0);
    } else if constexpr (std::is_integral_v<T>) {
      rc = sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
    } else {
      const std::string_view text(value);
      rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) Fail(sqlite3_sql(stmt_));
  }

  [[noreturn]] void Fail(const char* sql) const {
    throw Error(ErrorCode::kFailed, std::string("SQLite: ") + sqlite3_errmsg(db_) + " (running " +
                                        Connection::Abbreviate(sql != nullptr ? sql : "") + ")");
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// A transaction, rolled back on destruction unless committed. kWrite takes the
// write lock at once (BEGIN IMMEDIATE, waiting up to the busy timeout), so a
// writer never fails half-way because another process wrote first; kRead gives
// a consistent snapshot across several SELECTs.
class Transaction {
 public:
  enum class Mode { kRead, kWrite };

  Transaction(Connection& connection, Mode mode) : connection_(connection) {
    connection_.Execute(mode == Mode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  }
  ~Transaction() {
    if (!done_) sqlite3_exec(connection_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void Commit() {
    connection_.Execute("COMMIT");
    done_ = true;
  }

 private:
  Connection& connection_;
  bool done_ = false;
};

}  // namespace canopy::catalog::sqlite
