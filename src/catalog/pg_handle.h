// RAII over libpq, for the PostgreSQL catalog store. Only catalog/pg_*.cpp include
// this (and through it libpq-fe.h).
//
// Every failure throws Error(kFailed) with PostgreSQL's message (its first line) and
// the start of the statement that was running. Values are always sent as parameters,
// never spliced into SQL. One Connection belongs to one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace canopy::catalog::pg {

// What a connection URL may be shown as: scheme, user, host, port and database,
// never the password (nor any other parameter). Never throws.
std::string DisplayUrl(const std::string& url);

// The rows a statement returned. Columns are read by position.
class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  ~Result() { PQclear(result_); }
  Result(Result&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  Result& operator=(Result&&) = delete;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int Rows() const { return PQntuples(result_); }
  bool Empty() const { return Rows() == 0; }
  // Rows changed by an INSERT, UPDATE or DELETE.
  int64_t Changed() const;
  bool IsNull(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }
  std::string Text(int row, int column) const {
    return {PQgetvalue(result_, row, column),
            static_cast<size_t>(PQgetlength(result_, row, column))};
  }
  int64_t Int(int row, int column) const;
  double Double(int row, int column) const;
  bool Bool(int row, int column) const {
    const char* value = PQgetvalue(result_, row, column);
    return value[0] == 't' || value[0] == '1';
  }

 private:
  PGresult* result_;
};

// One text parameter; integers and bools are sent as their text.
class Param {
 public:
  Param(const std::string& text) : text_(text) {}  // NOLINT(google-explicit-constructor)
  Param(const char* text) : text_(text) {}         // NOLINT(google-explicit-constructor)
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
  Param(T value)  // NOLINT(google-explicit-constructor)
      : text_(std::is_same_v<T, bool> ? (value ? "true" : "false") : std::to_string(value)) {}
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

class Connection {
 public:
  // Connects to `url` (postgresql://user:password@host:port/database?…). On failure
  // throws one line naming the server and database as DisplayUrl shows them, never the
  // password, with libpq's reason.
  explicit Connection(const std::string& url);
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a fixed script written in the code (no parameters; may hold several
  // statements).
  void Execute(const std::string& sql);
  // Runs one statement with `params` as $1, $2, …; prepared once per connection and
  // reused after.
  Result Query(const char* sql, const std::vector<Param>& params = {});

  // The notifications (LISTEN) that arrived, without waiting; consumes them. -1 when
  // the connection is broken.
  int DrainNotifications();
  // The connection's socket, to wait on for notifications.
  int Socket() const { return PQsocket(conn_); }

  const std::string& display() const { return display_; }
  PGconn* handle() const { return conn_; }

  // The SQLSTATE of the last failure ("" when none): 40001 serialization, 23505
  // unique violation, 55P03 lock not available, …
  const std::string& last_state() const { return last_state_; }

 private:
  [[noreturn]] void Fail(const PGresult* result, std::string_view sql);

  PGconn* conn_ = nullptr;
  std::string display_;
  std::string last_state_;
  std::map<std::string, std::string, std::less<>> prepared_;  // sql → statement name
};

// A transaction, rolled back on destruction unless committed. Read committed;
// kSnapshot gives one consistent snapshot across several SELECTs.
class Transaction {
 public:
  enum class Mode { kWrite, kSnapshot };
  Transaction(Connection& connection, Mode mode) : connection_(connection) {
    connection_.Execute(mode == Mode::kSnapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                                : "BEGIN");
  }
  ~Transaction();
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

}  // namespace canopy::catalog::pg
