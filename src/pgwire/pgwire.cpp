#include "pgwire/pgwire.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <variant>

#include "core/clock.h"
#include "core/error.h"
#include "core/scram.h"
#include "core/text.h"
#include "engine/engine.h"
#include "governance/audit.h"
#include "governance/auth_throttle.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "governance/tokens.h"
#include "pgwire/catalog_view.h"
#include "pgwire/messages.h"
#include "pgwire/types.h"

namespace canopy::pgwire {

namespace {

// --- errors ---

struct SqlError {
  std::string sqlstate;
  std::string message;
  std::string hint;
};

// The SQLSTATE of a Canopy error, as a PostgreSQL client expects it.
SqlError ToSqlError(const Error& e) {
  const std::string message = e.what();
  auto has = [&](const char* part) { return message.find(part) != std::string::npos; };
  std::string state = "XX000";
  switch (e.code()) {
    case ErrorCode::kPermissionDenied:
      state = "42501";  // insufficient_privilege
      break;
    case ErrorCode::kInvalidInput:
    case ErrorCode::kUsage:
      state = has("cannot parse")            ? "42601"  // syntax_error
              : has("is not an output port") ? "42P01"  // undefined_table
              : has("Binder Error")          ? "42703"  // undefined_column (DuckDB binds names)
              : has("Parser Error")          ? "42601"
              : has("Catalog Error")         ? "42883"  // undefined_function
                                             : "42501";         // refused
      break;
    case ErrorCode::kUnauthenticated:
      state = "28000";
      break;
    case ErrorCode::kNotFound:
      state = "42P01";
      break;
    case ErrorCode::kFailed:
      if (has("ran longer than the limit") || has("the query was cancelled")) {
        state = "57014";  // query_canceled
      } else if (has("Binder Error")) {
        state = "42703";  // undefined_column (DuckDB binds names here)
      } else if (has("Parser Error")) {
        state = "42601";
      } else if (has("Conversion Error") || has("Invalid Input Error")) {
        state = "22P02";
      } else if (has("Out of Range Error")) {
        state = "22003";
      } else if (has("more rows than")) {
        state = "54000";  // program_limit_exceeded
      }
      break;
    default:
      break;
  }
  return {state, message, e.hint()};
}

// --- one connection ---

// How long a client may take: to send a whole message once it began one (and the whole
// startup and login), and to take a batch of rows — so a client that sends one byte, or
// stops reading a result, holds its slot and its catalog connection that long at most.
constexpr auto kMessageDeadline = std::chrono::seconds(30);
constexpr int kSendTimeoutS = 30;

// Reads and writes whole buffers on a blocking socket, in the clear or over TLS. Every
// read has a deadline.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {
    const timeval timeout{kSendTimeoutS, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  ~Socket() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // The TLS handshake, as the server, within the current deadline; false when it fails.
  // From now on every byte is encrypted, and the socket does not block: every wait is a
  // poll against a deadline, so a client trickling bytes cannot hold the session longer.
  bool StartTls(SSL_CTX* context) {
    const int flags = ::fcntl(fd_, F_GETFL, 0);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) != 0) return false;
    ssl_ = SSL_new(context);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) return false;
    for (;;) {
      const int done = SSL_accept(ssl_);
      if (done == 1) return true;
      if (!AwaitTls(done, deadline_)) return false;
    }
  }
  bool tls() const { return ssl_ != nullptr; }

  // After a TLS call returned `result`: waits (until `deadline`) for what it wants, the
  // socket readable or writable. False when it failed otherwise, or time ran out.
  bool AwaitTls(int result, std::chrono::steady_clock::time_point deadline) {
    const int error = SSL_get_error(ssl_, result);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return false;
    pollfd p{fd_, static_cast<int16_t>(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    return ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT32_MAX))) > 0;
  }

  // Waits up to `timeout_ms` for bytes; false on timeout.
  bool Wait(int64_t timeout_ms) {
    if (ssl_ != nullptr && SSL_pending(ssl_) > 0) return true;  // decrypted, not yet read
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(timeout_ms, INT32_MAX)));
    return ready > 0;
  }
  // Reads from now on must end by `deadline`.
  void SetDeadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }
  // Exactly `n` bytes; false when the peer closed, the read failed or the deadline passed.
  bool Read(size_t n, std::string& out) {
    out.resize(n);
    size_t done = 0;
    while (done < n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline_ - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0 || !Wait(left)) return false;
      if (ssl_ != nullptr) {
        const int got = SSL_read(ssl_, out.data() + done, static_cast<int>(n - done));
        if (got <= 0) {
          if (!AwaitTls(got, deadline_)) return false;
          continue;
        }
        done += static_cast<size_t>(got);
        continue;
      }
      const ssize_t got = ::recv(fd_, out.data() + done, n - done, 0);
      if (got <= 0) return false;
      done += static_cast<size_t>(got);
    }
    return true;
  }
  bool Write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      if (ssl_ != nullptr) {
        const int sent =
            SSL_write(ssl_, bytes.data() + done, static_cast<int>(bytes.size() - done));
        if (sent <= 0) {
          // As the send timeout of a plain socket: a client that stops reading is left.
          if (!AwaitTls(sent,
                        std::chrono::steady_clock::now() + std::chrono::seconds(kSendTimeoutS))) {
            return false;
          }
          continue;
        }
        done += static_cast<size_t>(sent);
        continue;
      }
      const ssize_t sent = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (sent <= 0) return false;
      done += static_cast<size_t>(sent);
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_ = nullptr;
  std::chrono::steady_clock::time_point deadline_ =
      std::chrono::steady_clock::now() + kMessageDeadline;
};

// The fields of a result with the formats a Bind asked for: none (all text), one (for
// every column) or one per column. Binary is sent only for types that have it.
std::vector<Writer::Field> FieldsOf(const std::vector<governance::ResultColumn>& columns,
                                    const std::vector<int16_t>& formats) {
  if (formats.size() > 1 && formats.size() != columns.size()) {
    throw Error(ErrorCode::kInvalidInput,
                "the bind message asks for " + std::to_string(formats.size()) +
                    " result formats for " + std::to_string(columns.size()) + " columns");
  }
  std::vector<Writer::Field> fields;
  fields.reserve(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) {
    const PgType type = PgTypeOf(columns[c].type);
    const int16_t format = formats.empty()       ? int16_t{0}
                           : formats.size() == 1 ? formats[0]
                                                 : formats[c];
    if (format != 0 && format != 1) {
      throw Error(ErrorCode::kInvalidInput, "result format code " + std::to_string(format));
    }
    fields.push_back({columns[c].name, type.oid, type.size,
                      static_cast<int16_t>(format == 1 && HasBinaryFormat(type.oid) ? 1 : 0),
                      type.modifier});
  }
  return fields;
}

// Streams a governed query's rows as DataRow messages, a batch of about 64 KiB at a
// time, so that a large result is never held whole.
class WireSink : public governance::ResultSink {
 public:
  // `describe`: send a RowDescription when the result begins (the simple protocol; the
  // extended one sends it on Describe).
  WireSink(Socket& socket, Writer& out, std::vector<int16_t> formats, bool describe)
      : socket_(socket), out_(out), formats_(std::move(formats)), describe_(describe) {}
  void Begin(const std::vector<governance::ResultColumn>& columns) override {
    fields_ = FieldsOf(columns, formats_);
    ways_.resize(fields_.size());
    if (describe_) out_.RowDescription(fields_);
  }
  // Rows that are Values already (a session statement's, a question about the catalog).
  void Row(const std::vector<governance::Value>& row) override {
    BeginRow(static_cast<int16_t>(row.size()));
    for (size_t c = 0; c < row.size(); ++c) Formatted(fields_[c], row[c]);
    EndRow();
  }
  // Straight from the chunk, without a Value between, for the values most results are
  // made of (text, integers, decimals, booleans in text; integers in binary); the rest
  // through Row's formats.
  void Rows(const engine::Result& chunk, int64_t first, int64_t count, int64_t& sent) override {
    const auto columns = static_cast<int16_t>(fields_.size());
    for (int16_t c = 0; c < columns; ++c) ways_[static_cast<size_t>(c)] = WayOf(chunk, c);
    for (int64_t row = first; row < first + count; ++row) {
      BeginRow(columns);
      for (int c = 0; c < columns; ++c) {
        const Way way = ways_[static_cast<size_t>(c)];
        if (chunk.IsNull(c, row)) {
          out_.Null();
        } else if (way == Way::kView) {
          out_.Value(chunk.View(c, row));
        } else if (way == Way::kText) {
          out_.ValueBy([&](std::string& out) { chunk.AppendText(c, row, out); });
        } else if (way == Way::kBool) {
          out_.Value(chunk.Int(c, row) != 0 ? "t" : "f");
        } else if (way == Way::kBinaryInteger) {
          const uint32_t type = fields_[static_cast<size_t>(c)].type_oid;
          const auto value = static_cast<uint64_t>(chunk.Int(c, row));
          const int bytes = type == oid::kInt2 ? 2 : type == oid::kInt4 ? 4 : 8;
          out_.ValueBy([&](std::string& out) {
            for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>(value >> (8 * i));
          });
        } else {
          Formatted(fields_[static_cast<size_t>(c)], governance::ReadValue(chunk, c, row));
        }
      }
      EndRow();
      ++sent;
    }
  }
  void Flush() {
    if (!socket_.Write(out_.bytes())) {
      throw Error(ErrorCode::kFailed, "the client went away");
    }
    out_.Clear();
  }
  // For a result opened earlier: its fields, without a RowDescription.
  void Resume(const std::vector<governance::ResultColumn>& columns) {
    fields_ = FieldsOf(columns, formats_);
    ways_.resize(fields_.size());
  }
  int64_t rows() const { return rows_; }

 private:
  // A value through its field's format (text or binary). A value that cannot be written takes its
  // half-written row back out of the buffer before the error goes to the client, so the stream
  // stays whole messages.
  void Formatted(const Writer::Field& field, const governance::Value& value) {
    std::optional<std::string> formatted;
    try {
      formatted = field.format == 1 ? BinaryFormat(field.type_oid, value)
                                    : TextFormat(field.type_oid, value);
    } catch (...) {
      out_.Truncate(row_start_);
      throw;
    }
    if (formatted) {
      out_.Value(*formatted);
    } else {
      out_.Null();
    }
  }
  void BeginRow(int16_t columns) {
    row_start_ = out_.size();
    out_.BeginRow(columns);
  }
  void EndRow() {
    out_.EndRow();
    ++rows_;
    if (out_.size() >= kBatchBytes) Flush();
  }

  enum class Way { kView, kText, kBool, kBinaryInteger, kFormat };
  Way WayOf(const engine::Result& chunk, int column) const {
    const Writer::Field& field = fields_[static_cast<size_t>(column)];
    const engine::ColumnType type = chunk.Type(column);
    if (field.format == 1) {
      const bool integer = field.type_oid == oid::kInt2 || field.type_oid == oid::kInt4 ||
                           field.type_oid == oid::kInt8;
      return integer && type == engine::ColumnType::kInteger ? Way::kBinaryInteger : Way::kFormat;
    }
    if (field.type_oid == oid::kBytea || field.type_oid == oid::kInterval) return Way::kFormat;
    switch (type) {
      case engine::ColumnType::kVarchar:
        return Way::kView;
      case engine::ColumnType::kInteger:
      case engine::ColumnType::kDecimal:
        return Way::kText;
      case engine::ColumnType::kBoolean:
        return Way::kBool;
      default:
        return Way::kFormat;
    }
  }

  static constexpr size_t kBatchBytes = size_t{64} * 1024;
  Socket& socket_;
  Writer& out_;
  std::vector<int16_t> formats_;
  bool describe_;
  std::vector<Writer::Field> fields_;
  std::vector<Way> ways_;  // per column, for the chunk being written
  size_t row_start_ = 0;   // where the row being written begins in the buffer
  int64_t rows_ = 0;
};

// The statement without surrounding blanks and trailing semicolons.
std::string Trimmed(const std::string& sql) {
  size_t begin = 0;
  size_t end = sql.size();
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (begin < end && blank(sql[begin])) ++begin;
  while (end > begin && (blank(sql[end - 1]) || sql[end - 1] == ';')) --end;
  return sql.substr(begin, end - begin);
}

bool IsLoopback(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  }
  if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
  }
  return address.ss_family == AF_UNIX;
}

std::string AddressText(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr, host,
                sizeof host);
  } else if (address.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr, host,
                sizeof host);
  }
  return host;
}

// The sessions a CancelRequest may name: by process id, with the secret key sent to
// that session's client alone (BackendKeyData), so no one else can cancel its work.
class CancelRegistry {
 public:
  void Add(int32_t pid, int32_t key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    sessions_[pid] = {key, nullptr};
  }
  void Remove(int32_t pid) {
    const std::lock_guard<std::mutex> lock(mutex_);
    sessions_.erase(pid);
  }
  // The flag of the statement the session is running now (nullptr: none): a cancel
  // stops that one, never a cursor waiting for its next FETCH.
  void Watch(int32_t pid, std::shared_ptr<std::atomic<bool>> flag) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto found = sessions_.find(pid);
    if (found != sessions_.end()) found->second.second = std::move(flag);
  }
  // Stops the statement the session is running, if the key is its own.
  void Cancel(int32_t pid, int32_t key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto found = sessions_.find(pid);
    if (found != sessions_.end() && found->second.first == key && found->second.second) {
      found->second.second->store(true);
    }
  }

 private:
  std::mutex mutex_;
  std::map<int32_t, std::pair<int32_t, std::shared_ptr<std::atomic<bool>>>> sessions_;
};

// While in scope, a CancelRequest for the session sets `flag`.
class Watching {
 public:
  Watching(CancelRegistry& cancels, int32_t pid, std::shared_ptr<std::atomic<bool>> flag)
      : cancels_(cancels), pid_(pid) {
    cancels_.Watch(pid_, std::move(flag));
  }
  ~Watching() { cancels_.Watch(pid_, nullptr); }
  Watching(const Watching&) = delete;
  Watching& operator=(const Watching&) = delete;

 private:
  CancelRegistry& cancels_;
  int32_t pid_;
};

// An error with its SQLSTATE, for what the protocol itself refuses.
class WireError : public std::runtime_error {
 public:
  WireError(std::string sqlstate, const std::string& message, std::string hint = "")
      : std::runtime_error(message), error{std::move(sqlstate), message, std::move(hint)} {}
  SqlError error;
};

// A message that breaks the protocol: the connection ends.
class ProtocolViolation : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The session's token was revoked, or expired, while it was open: the connection ends.
class TokenRevoked : public std::runtime_error {
 public:
  explicit TokenRevoked(const std::string& reason)
      : std::runtime_error(reason == "revoked"
                               ? "the token of this session was revoked"
                               : "the token of this session is no longer valid: " + reason) {}
};

// A statement the session answers itself (SET, SHOW, BEGIN…): its columns and rows, and
// what it changes, done when it runs.
struct LocalAnswer {
  std::vector<governance::ResultColumn> columns;  // none: no rows
  std::vector<std::vector<governance::Value>> rows;
  std::string tag;
  std::function<void()> apply;
  size_t sent = 0;  // rows sent so far (a portal's Execute may ask for a few at a time)
};

// A statement made by Parse.
struct Prepared {
  std::string sql;
  std::vector<uint32_t> parameter_types;  // one per placeholder; 0 where the client left it open
};

// A portal made by Bind, or a cursor by DECLARE: a statement with its parameters in
// place, and its result as it is read.
struct Portal {
  std::string sql;
  std::string parsed;            // as Parse gave it, without its parameters (empty: the same)
  std::vector<int16_t> formats;  // of the result, as Bind asked
  std::vector<governance::ResultColumn> columns;
  std::optional<LocalAnswer> local;                // a session statement's answer
  std::shared_ptr<catalog::CatalogStore> catalog;  // held while its query lives
  std::shared_ptr<const spec::Mesh> mesh;          // the same: the query reads it
  std::unique_ptr<governance::GovernedQuery> query;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  bool opened = false;
  bool done = false;
  bool hold = false;  // a cursor WITH HOLD outlives its transaction
};

class Session {
 public:
  Session(const spec::MeshSource& meshes, const CatalogLease& lease, const PgOptions& options,
          int fd, const sockaddr_storage& peer, int32_t pid, CancelRegistry& cancels, SSL_CTX* tls,
          std::string refusal = "")
      : tls_(tls),
        meshes_(meshes),
        mesh_(meshes.Current()),
        lease_(lease),
        options_(options),
        socket_(fd),
        peer_(peer),
        pid_(pid),
        cancels_(cancels),
        refusal_(std::move(refusal)) {}
  ~Session() { cancels_.Remove(pid_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Run() {
    if (!Startup()) return;
    while (true) {
      if (!socket_.Wait(int64_t{options_.idle_timeout_s} * 1000)) {
        Fatal("57P05", "the connection was idle for longer than " +
                           std::to_string(options_.idle_timeout_s) + " s");
        return;
      }
      socket_.SetDeadline(std::chrono::steady_clock::now() + kMessageDeadline);
      std::string head;
      if (!socket_.Read(5, head)) return;
      const char type = head[0];
      const uint32_t length = ReadUint32(head, 1);
      if (length < 4 || length - 4 > kMaxMessageBytes) {
        Fatal("08P01", "a message of " + std::to_string(length) + " bytes; at most " +
                           std::to_string(kMaxMessageBytes) + " are read");
        return;
      }
      std::string body;
      if (!socket_.Read(length - 4, body)) return;
      // Each message sees the mesh as it is now (a product saved meanwhile is there);
      // an open portal keeps the one its query began with.
      mesh_ = meshes_.Current();
      if (!Handle(type, body)) return;
    }
  }

 private:
  // The startup packet, encryption requests, and the password. False: the connection ends.
  bool Startup() {
    // One deadline for the whole startup and login, as PostgreSQL's authentication_timeout.
    socket_.SetDeadline(std::chrono::steady_clock::now() + kMessageDeadline);
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::string head;
      if (!socket_.Read(4, head)) return false;
      const uint32_t length = ReadUint32(head, 0);
      if (length < 8 || length > kMaxStartupBytes) {
        Fatal("08P01", "a startup packet of " + std::to_string(length) + " bytes");
        return false;
      }
      std::string body;
      if (!socket_.Read(length - 4, body)) return false;
      std::string error;
      const auto startup = ParseStartup(body, error);
      if (!startup) {
        Fatal("08P01", error);
        return false;
      }
      if (startup->code == kSslRequest && tls_ != nullptr && !socket_.tls()) {
        if (!socket_.Write("S") || !socket_.StartTls(tls_)) return false;
        continue;  // the startup packet comes again, encrypted
      }
      if (startup->code == kSslRequest || startup->code == kGssEncRequest) {
        if (!socket_.Write("N")) return false;  // no encryption: the client decides
        continue;
      }
      if (startup->code == kCancelRequest) {  // answered by nothing but the cancel
        cancels_.Cancel(startup->cancel_pid, startup->cancel_key);
        return false;
      }
      if (!refusal_.empty()) {  // told after the startup, where every client reads it
        Fatal("53300", refusal_, "try again when fewer connections are open");
        return false;
      }
      return Authenticate(*startup);
    }
    Fatal("08P01", "too many encryption requests");
    return false;
  }

  bool Authenticate(const pgwire::Startup& startup) {
    const auto user = startup.parameters.find("user");
    if (user == startup.parameters.end() || user->second.empty()) {
      Fatal("28000", "no user name in the startup message", "connect with user=NAME");
      return false;
    }
    for (const auto& [name, value] : startup.parameters) {
      if (!ValidUtf8(name) || !ValidUtf8(value)) {
        Fatal("22021", "invalid byte sequence for encoding \"UTF8\" in the startup packet");
        return false;
      }
    }
    claimed_ = user->second;
    if (auto app = startup.parameters.find("application_name"); app != startup.parameters.end()) {
      application_ = app->second;
    }
    const bool scram = UsesScram();
    if (!scram && !IsLoopback(peer_) && !socket_.tls()) {
      AuditLogin("denied", "a password in the clear from a non-loopback address");
      Fatal("28000",
            tls_ != nullptr ? "passwords from other machines are only taken over TLS"
                            : "passwords are only taken over loopback connections until TLS is "
                              "configured",
            tls_ != nullptr ? "connect with sslmode=require"
                            : "connect from this machine, or start the server with --pg-tls-cert "
                              "and --pg-tls-key");
      return false;
    }
    // An address that failed too often waits before it may try again.
    const std::string address = AddressText(peer_);
    if (const int64_t wait = governance::ProcessAuthThrottle().WaitSeconds(address); wait > 0) {
      Fatal("28000",
            "too many failed logins from " + address + ": try again in " + std::to_string(wait) +
                " s",
            "check the token: canopy token create " + claimed_ + " makes a new one");
      return false;
    }
    // A catalog connection is leased per use, never for a session's life: idle psql
    // sessions must not take the pool from the HTTP API.
    governance::Authentication auth;
    if (scram ? !ScramExchange(auth) : !PasswordExchange(auth)) return false;
    const std::optional<std::string>& owner = auth.user;
    // The principal is the token's; the claimed name must be the same person's.
    if (!owner || *owner != claimed_) {
      AuditLogin("denied", owner ? "the token belongs to another user"
                                 : "not a valid token (" + auth.kind + "): " + auth.reason);
      if (const int64_t wait = governance::ProcessAuthThrottle().Failed(address); wait > 0) {
        AuditThrottle(address, wait);
      }
      Fatal("28P01", "password authentication failed for user \"" + claimed_ + "\"",
            scram ? "the password is one of your Canopy tokens (canopy token create " + claimed_ +
                        "); tokens made before SCRAM sign-in (catalog schema 8) need the "
                        "server started with --pg-auth password"
                  : "the password is one of your Canopy tokens (canopy token create " + claimed_ +
                        ")");
      return false;
    }
    try {
      principal_ = governance::ResolvePrincipal(*mesh_, *owner, auth.groups);
    } catch (const Error&) {
      Fatal("28000", "the token's user is no longer in the mesh");
      return false;
    }
    governance::ProcessAuthThrottle().Succeeded(address);
    // A session nobody can account for is not opened: no audit entry, no login.
    if (!AuditLogin("ok", "")) {
      Fatal("53300", "the server is too busy to record the login", "try again in a moment");
      return false;
    }
    out_.AuthenticationOk();
    const std::pair<const char*, std::string> parameters[] = {
        {"server_version", "15.0 (Canopy " + options_.version + ")"},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"DateStyle", "ISO, MDY"},
        {"IntervalStyle", "postgres"},
        {"TimeZone", "UTC"},
        {"integer_datetimes", "on"},
        {"standard_conforming_strings", "on"},
        {"is_superuser", "off"},
        {"session_authorization", claimed_},
        {"application_name", application_}};
    for (const auto& [name, value] : parameters) out_.ParameterStatus(name, value);
    std::random_device random;
    const auto key = static_cast<int32_t>(random());
    cancels_.Add(pid_, key);
    out_.BackendKeyData(pid_, key);
    out_.ReadyForQuery('I');
    return Send();
  }

  // Whether this connection signs in with SCRAM-SHA-256: as --pg-auth says, else unless the
  // mesh takes OIDC tokens (a JWT cannot be proven with SCRAM: the server never has it).
  bool UsesScram() const {
    if (options_.auth == "scram-sha-256") return true;
    if (options_.auth == "password") return false;
    return !mesh_->auth.oidc.has_value();
  }

  // The client's next message of the authentication exchange ('p'), at most 4 KiB. False
  // (the connection ended, said and audited) when it is not one.
  bool ReadAuthMessage(const char* expected, std::string& body) {
    std::string head;
    if (!socket_.Read(5, head)) return false;
    const uint32_t length = ReadUint32(head, 1);
    if (head[0] != 'p' || length < 5 || length > 4096 || !socket_.Read(length - 4, body)) {
      AuditLogin("denied", std::string("no ") + expected);
      Fatal("08P01", std::string("expected a ") + expected);
      return false;
    }
    return true;
  }

  // The token in the clear (over loopback or TLS): a Canopy token or a JWT. False when the
  // connection ended; else `auth` says whose token it is, or why it is none.
  bool PasswordExchange(governance::Authentication& auth) {
    out_.AuthenticationCleartextPassword();
    std::string body;
    if (!Send() || !ReadAuthMessage("password message", body)) return false;
    size_t at = 0;
    const auto password = ReadCString(body, at);
    auth.reason = "no password";
    try {
      if (password) auth = governance::Authenticate(*lease_(), *mesh_, *password);
    } catch (const Error& e) {  // the catalog is busy or gone: say so, in the protocol
      Fatal("53300", e.what(), e.hint().empty() ? "try again in a moment" : e.hint());
      return false;
    }
    token_ = password.value_or("");
    return true;
  }

  // SCRAM-SHA-256 (core/scram.h): the client proves it holds one of the user's tokens and
  // the server proves it knows the token's verifier; the token never crosses the wire. A
  // user with no token gets the same exchange (the salt is derived, not looked up) and
  // fails at its end, as a wrong token does. False when the connection ended; else `auth`
  // says whose token was proven, or why none was.
  bool ScramExchange(governance::Authentication& auth) {
    governance::ScramCandidates candidates;
    try {
      candidates = governance::ScramCandidatesFor(*lease_(), claimed_);
    } catch (const Error& e) {
      Fatal("53300", e.what(), e.hint().empty() ? "try again in a moment" : e.hint());
      return false;
    }
    out_.AuthenticationSasl();
    std::string body;
    if (!Send() || !ReadAuthMessage("SASL response", body)) return false;
    Reader initial(body);
    const std::string mechanism = initial.CString();
    const int32_t length = initial.Int32();
    const std::string first = length < 0 ? "" : initial.Bytes(static_cast<size_t>(length));
    scram::ServerExchange exchange;
    if (initial.failed() || !initial.at_end() || mechanism != "SCRAM-SHA-256" ||
        !exchange.ClientFirst(first)) {
      const std::string why = mechanism != "SCRAM-SHA-256" && !initial.failed()
                                  ? "SCRAM-SHA-256 is the only mechanism offered"
                              : exchange.error().empty() ? "malformed SASL response"
                                                         : exchange.error();
      AuditLogin("denied", why);
      Fatal("08P01", why);
      return false;
    }
    out_.AuthenticationSaslContinue(exchange.ServerFirst(candidates.salt, scram::kIterations));
    body.clear();
    if (!Send() || !ReadAuthMessage("SASL response", body)) return false;
    const auto match = exchange.ClientFinal(body, candidates.verifiers);
    if (!match) {
      auth.kind = "token";
      auth.reason = "SCRAM: " + exchange.error();
      if (exchange.error() != "the proof matches no password") {
        AuditLogin("denied", auth.reason);
        Fatal("08P01", auth.reason);
        return false;
      }
      return true;
    }
    // Live when the exchange began; a revocation since is found before the first statement,
    // as every statement checks the token again.
    scram_token_ = candidates.token_ids[*match];
    auth = candidates.verdicts[*match];
    out_.AuthenticationSaslFinal(exchange.ServerFinal(candidates.verifiers[*match]));
    return true;
  }

  void AuditThrottle(const std::string& address, int64_t wait) {
    try {
      governance::RecordAudit(*lease_(), "anonymous", "auth.throttle", address, "denied",
                              nlohmann::json{{"via", "pgwire"}, {"wait_s", wait}}.dump());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s pgwire: cannot audit a throttle: %s\n", NowIso8601().c_str(),
                   e.what());
    }
  }

  // False when the entry could not be written (said on stderr).
  bool AuditLogin(const std::string& outcome, const std::string& why) {
    try {  // the parameters were checked as UTF-8 (JSON needs it) before any login is audited
      nlohmann::json details{{"from", AddressText(peer_)},
                             {"claimed_user", claimed_},
                             {"tls", socket_.tls()},
                             {"method", UsesScram() ? "scram-sha-256" : "password"}};
      if (!why.empty()) details["reason"] = why;
      if (!application_.empty()) details["application"] = application_;
      governance::RecordAudit(*lease_(), outcome == "ok" ? "user:" + claimed_ : "anonymous",
                              "pg.login", "pgwire", outcome, details.dump());
      return true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s pgwire: cannot audit a login: %s\n", NowIso8601().c_str(), e.what());
      return false;
    }
  }

  // --- messages ---

  // One message after startup. False: the connection ends.
  bool Handle(char type, const std::string& body) {
    const bool go_on = HandleMessage(type, body);
    Settle();
    // Answers to a pipeline without a Sync are sent as they grow, not held.
    if (go_on && out_.size() >= kSendAt) return Send();
    return go_on;
  }

  // What a statement left to do once it was answered: close the portals of a transaction
  // that ended; forget what DISCARD ALL or DEALLOCATE ALL said to.
  void Settle() {
    if (ending_) {
      ending_ = false;
      EndTransaction();
    }
    if (discarding_) {  // DISCARD ALL
      discarding_ = false;
      deallocating_ = true;
      portals_.clear();
      settings_.clear();
    }
    if (deallocating_) {  // DEALLOCATE ALL (PostgreSQL keeps the unnamed statement)
      deallocating_ = false;
      for (auto it = statements_.begin(); it != statements_.end();) {
        it = it->first.empty() ? std::next(it) : statements_.erase(it);
      }
    }
  }

  static constexpr size_t kSendAt = size_t{64} * 1024;

  bool HandleMessage(char type, const std::string& body) {
    switch (type) {
      case 'Q': {
        size_t at = 0;
        const auto sql = ReadCString(body, at);
        if (!sql) {
          Fatal("08P01", "a query message without its end");
          return false;
        }
        if (!SimpleQuery(*sql)) return false;
        out_.ReadyForQuery(Status());
        return Send();
      }
      case 'X':
        return false;
      case 'S':  // Sync: the end of an extended-protocol exchange (and of its implicit
                 // transaction, outside a transaction block)
        skipping_ = false;
        if (!transaction_) EndTransaction();
        out_.ReadyForQuery(Status());
        return Send();
      case 'H':  // Flush
        return Send();
      case 'P':
      case 'B':
      case 'D':
      case 'E':
      case 'C':
        break;
      default:
        Fatal("08P01", std::string("unexpected message type '") + type + "'");
        return false;
    }
    if (skipping_) return true;  // after an error, up to the Sync
    try {
      switch (type) {
        case 'P':
          Parse(body);
          return true;
        case 'B':
          Bind(body);
          return true;
        case 'D':
          Describe(body);
          return true;
        case 'E':
          return Execute(body);
        default:
          Close(body);
          return true;
      }
    } catch (const ProtocolViolation& e) {
      Fatal("08P01", e.what());
      return false;
    } catch (const TokenRevoked& e) {
      Fatal("28000", e.what(), "connect again with a valid token");
      return false;
    } catch (const Error& e) {
      Report(ToSqlError(e));
    } catch (const WireError& e) {
      Report(e.error);
    }
    skipping_ = true;
    return true;
  }

  char Status() const { return transaction_ ? (failed_ ? 'E' : 'T') : 'I'; }

  void Report(const SqlError& error) {
    out_.Error(error.sqlstate, error.message, error.hint);
    if (transaction_) failed_ = true;
  }

  // The end of a transaction (COMMIT, ROLLBACK, or a Sync outside a block): its
  // portals and cursors close, but for cursors declared WITH HOLD.
  void EndTransaction() {
    for (auto it = portals_.begin(); it != portals_.end();) {
      it = it->second.hold ? std::next(it) : portals_.erase(it);
    }
    failed_ = false;
  }

  static Reader Checked(Reader reader, const char* what) {
    if (reader.failed() || !reader.at_end()) {
      throw ProtocolViolation(std::string("a malformed ") + what + " message");
    }
    return reader;
  }

  void Parse(const std::string& body) {
    Reader in(body);
    const std::string name = in.CString();
    const std::string sql = in.CString();
    const int16_t count = in.Int16();
    if (count < 0) throw ProtocolViolation("a parse message with a negative count");
    std::vector<uint32_t> types;
    for (int16_t i = 0; i < count; ++i) types.push_back(static_cast<uint32_t>(in.Int32()));
    Checked(in, "parse");
    if (!ValidUtf8(sql)) throw WireError("22021", "invalid byte sequence for encoding \"UTF8\"");
    if (!name.empty() && statements_.count(name) != 0) {
      throw WireError("42P05", "prepared statement \"" + name + "\" already exists");
    }
    const int placeholders = CountPlaceholders(sql);
    if (placeholders > INT16_MAX || types.size() > static_cast<size_t>(INT16_MAX)) {
      throw WireError("54000", "a statement takes at most 32767 parameters");
    }
    if (!name.empty() && statements_.size() >= kMaxStatements) {
      throw WireError("54000",
                      "too many prepared statements (at most " + std::to_string(kMaxStatements) +
                          " per connection)",
                      "close the ones no longer used (Close, or DEALLOCATE)");
    }
    types.resize(std::max(types.size(), static_cast<size_t>(placeholders)), oid::kUnspecified);
    statements_[name] = {sql, std::move(types)};
    out_.ParseComplete();
  }

  const Prepared& FindStatement(const std::string& name) {
    const auto found = statements_.find(name);
    if (found == statements_.end()) {
      throw WireError("26000", "prepared statement \"" + name + "\" does not exist");
    }
    return found->second;
  }

  Portal& FindPortal(const std::string& name) {
    const auto found = portals_.find(name);
    if (found == portals_.end()) throw WireError("34000", "portal \"" + name + "\" does not exist");
    return found->second;
  }

  void Bind(const std::string& body) {
    Reader in(body);
    const std::string portal_name = in.CString();
    const std::string statement_name = in.CString();
    auto counted = [&](const char* what) {
      const int16_t n = in.Int16();
      if (n < 0) throw ProtocolViolation(std::string("a bind message with a negative ") + what);
      return static_cast<size_t>(n);
    };
    std::vector<int16_t> parameter_formats(counted("format count"));
    for (auto& format : parameter_formats) format = in.Int16();
    std::vector<std::optional<std::string>> values(counted("parameter count"));
    for (auto& value : values) {
      const int32_t length = in.Int32();
      if (length < -1) throw ProtocolViolation("a bind message with a negative length");
      if (length >= 0) value = in.Bytes(static_cast<size_t>(length));
    }
    std::vector<int16_t> result_formats(counted("result format count"));
    for (auto& format : result_formats) format = in.Int16();
    Checked(in, "bind");
    const Prepared& statement = FindStatement(statement_name);
    if (values.size() != statement.parameter_types.size()) {
      throw WireError("08P01", "bind message supplies " + std::to_string(values.size()) +
                                   " parameters, but prepared statement \"" + statement_name +
                                   "\" requires " +
                                   std::to_string(statement.parameter_types.size()));
    }
    if (parameter_formats.size() > 1 && parameter_formats.size() != values.size()) {
      throw WireError("08P01", "bind message has " + std::to_string(parameter_formats.size()) +
                                   " parameter formats but " + std::to_string(values.size()) +
                                   " parameters");
    }
    std::vector<std::string> literals;
    for (size_t i = 0; i < values.size(); ++i) {
      const int16_t format = parameter_formats.empty()       ? int16_t{0}
                             : parameter_formats.size() == 1 ? parameter_formats[0]
                                                             : parameter_formats[i];
      try {
        literals.push_back(ParameterLiteral(statement.parameter_types[i], format, values[i]));
      } catch (const Error& e) {
        throw WireError("22P02", "parameter $" + std::to_string(i + 1) + ": " + e.what(), e.hint());
      }
    }
    if (!portal_name.empty() && portals_.count(portal_name) != 0) {
      throw WireError("42P03", "portal \"" + portal_name + "\" already exists");
    }
    Portal portal;
    portal.sql = SubstitutePlaceholders(statement.sql, literals);
    portal.parsed = statement.sql;
    portal.formats = std::move(result_formats);
    portals_.erase(portal_name);
    portals_.emplace(portal_name, std::move(portal));
    out_.BindComplete();
  }

  void Describe(const std::string& body) {
    Reader in(body);
    const std::string kind = in.Bytes(1);
    const std::string name = in.CString();
    Checked(in, "describe");
    if (kind == "S") {
      const Prepared& statement = FindStatement(name);
      std::vector<uint32_t> types = statement.parameter_types;
      std::vector<std::string> nulls;
      for (uint32_t& type : types) {
        nulls.push_back(ParameterLiteral(type, 0, std::nullopt));
        if (type == oid::kUnspecified) type = oid::kText;  // sent as text, cast by the engine
      }
      out_.ParameterDescription(types);
      Portal probe;
      probe.sql = SubstitutePlaceholders(statement.sql, nulls);
      DescribeRows(probe);
    } else if (kind == "P") {
      DescribeRows(FindPortal(name));
    } else {
      throw ProtocolViolation("a describe message for neither a statement nor a portal");
    }
  }

  // A RowDescription of what the portal returns, or NoData.
  void DescribeRows(Portal& portal) {
    const std::vector<governance::ResultColumn>& columns = ColumnsOf(portal);
    if (columns.empty()) {
      out_.NoData();
    } else {
      out_.RowDescription(FieldsOf(columns, portal.formats));
    }
  }

  // The portal's result columns: a session statement's, or the governed query's (the
  // guard and the decisions run here, once, for the Describe and the Execute).
  const std::vector<governance::ResultColumn>& ColumnsOf(Portal& portal) {
    if (!portal.local && !portal.query && !portal.done) {
      portal.local = LocalStatement(portal.sql, portal.parsed);
      if (portal.local) {
        portal.columns = portal.local->columns;
      } else {
        PrepareQuery(portal);
      }
    }
    return portal.columns;
  }

  // At most this many portals and cursors hold a query (and a catalog connection from
  // the server's pool) at once.
  static constexpr size_t kMaxOpenQueries = 4;
  static constexpr size_t kMaxStatements = 1000;

  void PrepareQuery(Portal& portal) {
    const auto open = std::count_if(portals_.begin(), portals_.end(), [](const auto& named) {
      return named.second.query != nullptr;
    });
    if (static_cast<size_t>(open) >= kMaxOpenQueries) {
      throw WireError("54000",
                      "too many open portals and cursors (at most " +
                          std::to_string(kMaxOpenQueries) + " hold a query at once)",
                      "read them to their end, or close them");
    }
    CheckToken(portal);
    governance::QueryOptions query_options;
    query_options.cancel = portal.cancel;
    try {
      portal.mesh = mesh_;
      portal.query = std::make_unique<governance::GovernedQuery>(
          *mesh_, *portal.catalog, principal_, portal.sql, query_options);
    } catch (...) {
      portal.catalog.reset();  // a refused or denied statement holds no connection
      throw;
    }
    portal.columns = portal.query->columns();
  }

  // Throws TokenRevoked unless the session's token still authenticates its user.
  void CheckTokenWith(catalog::CatalogStore& catalog) {
    const governance::Authentication auth =
        scram_token_ ? governance::AuthenticateTokenId(catalog, *scram_token_)
                     : governance::Authenticate(catalog, *mesh_, token_);
    if (auth.user != claimed_) {
      throw TokenRevoked(auth.accepted() ? "it names another user" : auth.reason);
    }
  }

  // The token is checked again before every governed statement (its Describe, each
  // Execute, each FETCH): one revoked while the session is open ends the session there.
  void CheckToken(Portal& portal) {
    if (!portal.catalog) portal.catalog = lease_();
    CheckTokenWith(*portal.catalog);
  }

  bool Execute(const std::string& body) {
    Reader in(body);
    const std::string name = in.CString();
    const int32_t max_rows = in.Int32();
    Checked(in, "execute");
    Portal& portal = FindPortal(name);
    ColumnsOf(portal);
    if (portal.local) {
      if (RefusedInFailedTransaction(portal.sql)) {
        skipping_ = true;
        return true;
      }
      if (Answer(*portal.local, portal.formats, false, max_rows > 0 ? max_rows : 0)) {
        out_.PortalSuspended();
        return true;
      }
      portal.local.reset();
      portal.done = true;
      return true;
    }
    if (failed_) {
      RefusedInFailedTransaction(portal.sql);
      skipping_ = true;
      return true;
    }
    if (portal.done) {
      out_.CommandComplete("SELECT 0");
      return true;
    }
    int64_t sent = 0;
    if (RunPortal(portal, max_rows > 0 ? max_rows : 0, false, sent)) {
      out_.PortalSuspended();
    } else {
      out_.CommandComplete("SELECT " + std::to_string(sent));
    }
    return true;
  }

  void Close(const std::string& body) {
    Reader in(body);
    const std::string kind = in.Bytes(1);
    const std::string name = in.CString();
    Checked(in, "close");
    if (kind == "S") {
      statements_.erase(name);
    } else if (kind == "P") {
      portals_.erase(name);
    } else {
      throw ProtocolViolation("a close message for neither a statement nor a portal");
    }
    out_.CloseComplete();
  }

  // --- running ---

  // Runs (or resumes) a portal's governed query: up to `limit` more rows (0: all), with
  // a RowDescription first when `describe`. Whether rows remain; throws TokenRevoked
  // when the session's token was revoked.
  bool RunPortal(Portal& portal, int64_t limit, bool describe, int64_t& sent) {
    if (portal.done) {  // read to its end already: nothing more, and no connection taken
      if (describe) out_.RowDescription(FieldsOf(portal.columns, portal.formats));
      return false;
    }
    if (portal.query) {
      CheckToken(portal);
    } else {
      PrepareQuery(portal);
    }
    // A cancel is for the statement running when it comes: this one, from now to the
    // end of this fetch.
    portal.cancel->store(false);
    const Watching watching(cancels_, pid_, portal.cancel);
    WireSink sink(socket_, out_, portal.formats, describe && !portal.opened);
    if (!portal.opened) {
      portal.opened = true;
      portal.query->Open(sink);
    } else {
      if (describe) out_.RowDescription(FieldsOf(portal.columns, portal.formats));
      sink.Resume(portal.columns);
    }
    bool more = false;
    try {
      more = portal.query->Fetch(sink, limit);
    } catch (...) {
      portal.done = true;
      portal.query.reset();
      portal.catalog.reset();
      throw;
    }
    sent = sink.rows();
    if (!more) {
      const governance::QueryOutcome& outcome = portal.query->outcome();
      for (const auto& warning : outcome.warnings) out_.Error("01000", warning, "", true);
      if (outcome.truncated) {
        out_.Error(
            "01000",
            "the result was cut at " + std::to_string(outcome.rows) + " rows, the mesh's limit",
            "narrow the query, or raise limits.query.rows in mesh.yaml", true);
      }
      portal.done = true;  // its catalog connection goes back to the pool now
      portal.query.reset();
      portal.catalog.reset();
    }
    return more;
  }

  // A Query message: its statements in turn (psql -c "a; b", a tool's "SET …; SELECT …"),
  // each answered as it runs; an error skips the rest, as in PostgreSQL.
  bool SimpleQuery(const std::string& text) {
    if (!ValidUtf8(text)) {
      Report({"22021", "invalid byte sequence for encoding \"UTF8\"", ""});
      return true;
    }
    const std::vector<std::string_view> statements = SplitStatements(text);
    if (statements.empty()) {
      out_.EmptyQueryResponse();
      return true;
    }
    for (const std::string_view statement : statements) {
      bool failed = false;
      if (!SimpleStatement(std::string(statement), failed)) return false;
      Settle();
      if (failed) break;
    }
    return true;
  }

  // One statement of a Query message. False: the session ends; `failed`: an error was
  // reported.
  bool SimpleStatement(const std::string& text, bool& failed) {
    const std::string sql = Trimmed(text);
    try {
      if (RefusedInFailedTransaction(sql)) {
        failed = true;
        return true;
      }
      if (auto cursor = CursorStatement(sql)) return *cursor;
      if (auto local = LocalStatement(sql)) {
        Answer(*local, {}, true);
        return true;
      }
      Portal portal;
      portal.sql = sql;
      int64_t sent = 0;
      RunPortal(portal, 0, true, sent);
      out_.CommandComplete("SELECT " + std::to_string(sent));
    } catch (const TokenRevoked& e) {
      Fatal("28000", e.what(), "connect again with a valid token");
      return false;
    } catch (const Error& e) {
      Report(ToSqlError(e));
      failed = true;
    } catch (const WireError& e) {
      Report(e.error);
      failed = true;
    }
    return true;
  }

  // In a transaction that failed, only its end is taken (as PostgreSQL does).
  bool RefusedInFailedTransaction(const std::string& sql) {
    if (!failed_) return false;
    const std::string lower = ToLower(Trimmed(sql));
    for (const char* word : {"rollback", "abort", "commit", "end"}) {
      if (StartsWithWord(lower, word)) return false;
    }
    out_.Error("25P02",
               "current transaction is aborted, commands ignored until end of "
               "transaction block");
    return true;
  }

  static bool StartsWithWord(const std::string& lower, const char* word) {
    const size_t n = std::char_traits<char>::length(word);
    return lower.compare(0, n, word) == 0 &&
           (lower.size() == n || std::isspace(static_cast<unsigned char>(lower[n])) != 0 ||
            lower[n] == ';');
  }

  // Sends a session statement's answer: up to `limit` more rows (0: all). True when
  // rows remain (the portal is suspended); else the command is complete.
  bool Answer(LocalAnswer& answer, const std::vector<int16_t>& formats, bool describe,
              size_t limit = 0) {
    if (answer.apply) {
      answer.apply();
      answer.apply = nullptr;
    }
    if (!answer.columns.empty()) {
      WireSink sink(socket_, out_, formats, describe);
      if (describe) {
        sink.Begin(answer.columns);
      } else {
        sink.Resume(answer.columns);
      }
      const size_t end =
          limit > 0 ? std::min(answer.rows.size(), answer.sent + limit) : answer.rows.size();
      for (; answer.sent < end; ++answer.sent) sink.Row(answer.rows[answer.sent]);
      if (answer.sent < answer.rows.size()) return true;
    }
    out_.CommandComplete(answer.tag);
    return false;
  }

  // Statements the session answers itself (nullopt: a governed query). Nothing happens
  // until the answer's `apply` runs.
  // `parsed`: the statement as Parse gave it, before its parameters were put in place
  // (where a statement is routed is decided on that, never on a bound value).
  std::optional<LocalAnswer> LocalStatement(const std::string& text,
                                            const std::string& parsed = "") {
    const std::string sql = Trimmed(text);
    const std::string lower = ToLower(sql);
    auto starts = [&](const char* word) { return StartsWithWord(lower, word); };
    LocalAnswer answer;
    if (starts("begin") || starts("start")) {
      answer.tag = "BEGIN";
      answer.apply = [this] { transaction_ = true; };
      return answer;
    }
    if (starts("commit") || starts("end") || starts("rollback") || starts("abort")) {
      const bool commit = (starts("commit") || starts("end")) && !failed_;
      answer.tag = commit ? "COMMIT" : "ROLLBACK";
      answer.apply = [this] {
        transaction_ = false;
        ending_ = true;  // its portals close once this message is answered, not under it
      };
      return answer;
    }
    if (starts("set")) {
      // The session settings drivers and tools send change nothing a governed read
      // depends on: they are taken (and SHOW says them back). Any other SET goes to the
      // guard, which refuses it as it refuses everything but a query.
      auto setting = SessionSetting(sql);
      if (!setting) return std::nullopt;
      answer.tag = "SET";
      answer.apply = [this, setting] {
        if (!setting->first.empty()) settings_[setting->first] = setting->second;
      };
      return answer;
    }
    if (starts("reset")) {  // RESET name | RESET ALL: back to the server's value
      const std::string name = Trimmed(lower.substr(5));
      // Only what SET takes: any other name goes to the guard, which refuses it.
      if (name != "all" && TakenSettings().count(name) == 0) return std::nullopt;
      answer.tag = "RESET";
      answer.apply = [this, name] {
        if (name == "all") {
          settings_.clear();
        } else {
          settings_.erase(name);
        }
      };
      return answer;
    }
    if (starts("discard")) {  // what connection pools send before a session is reused
      const std::string what = Trimmed(lower.substr(7));
      if (what != "all" && what != "plans" && what != "sequences" && what != "temp" &&
          what != "temporary") {
        throw WireError("42601", "syntax error at or near \"" + what + "\" in DISCARD");
      }
      if (what == "all" && transaction_) {
        throw WireError("25001", "DISCARD ALL cannot run inside a transaction block");
      }
      answer.tag = what == "all"         ? "DISCARD ALL"
                   : what == "plans"     ? "DISCARD PLANS"
                   : what == "sequences" ? "DISCARD SEQUENCES"
                                         : "DISCARD TEMP";
      // Statements, portals, cursors and settings go once this message is answered.
      if (what == "all") answer.apply = [this] { discarding_ = true; };
      return answer;
    }
    if (starts("deallocate")) {  // DEALLOCATE [PREPARE] name | ALL
      std::string name = Trimmed(sql.substr(10));
      // PREPARE is a keyword only when a name follows it (a statement may be called so).
      if (StartsWithWord(ToLower(name), "prepare") && !Trimmed(name.substr(7)).empty()) {
        name = Trimmed(name.substr(7));
      }
      if (ToLower(name) == "all") {
        answer.tag = "DEALLOCATE ALL";
        answer.apply = [this] { deallocating_ = true; };
        return answer;
      }
      if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
        name = name.substr(1, name.size() - 2);
      } else {
        name = ToLower(name);
      }
      if (statements_.count(name) == 0) {
        throw WireError("26000", "prepared statement \"" + name + "\" does not exist");
      }
      answer.tag = "DEALLOCATE";
      answer.apply = [this, name] { statements_.erase(name); };
      return answer;
    }
    if (starts("show")) {
      const std::string name = Trimmed(lower.substr(4));
      const auto set = settings_.find(name);
      const auto value =
          set != settings_.end() ? std::optional<std::string>(set->second) : Setting(name);
      if (!value) throw WireError("42704", "unrecognized configuration parameter \"" + name + "\"");
      return Single(name == "transaction isolation level" ? "transaction_isolation" : name, *value);
    }
    if (lower == "select version()") {
      return Single("version", "PostgreSQL 15.0 (Canopy " + options_.version + ")");
    }
    if (CatalogView::AsksAboutCatalog(*mesh_, principal_, parsed.empty() ? sql : parsed)) {
      return AboutCatalog(sql);
    }
    if (starts("declare") || starts("fetch") || starts("move") || starts("close")) {
      throw WireError("0A000", "cursors are declared and fetched with the simple query protocol");
    }
    return std::nullopt;
  }

  // A question about the catalog, answered from this principal's view of it (built
  // again when the catalog has changed since).
  LocalAnswer AboutCatalog(const std::string& sql) {
    class Collect : public governance::ResultSink {
     public:
      explicit Collect(LocalAnswer& answer) : answer_(answer) {}
      void Begin(const std::vector<governance::ResultColumn>& columns) override {
        answer_.columns = columns;
      }
      void Row(const std::vector<governance::Value>& row) override { answer_.rows.push_back(row); }

     private:
      LocalAnswer& answer_;
    };
    const std::shared_ptr<catalog::CatalogStore> catalog = lease_();
    CheckTokenWith(*catalog);
    if (!view_ || view_->generation() != catalog->Generation() || view_mesh_ != mesh_) {
      view_ = std::make_unique<CatalogView>(*mesh_, *catalog, principal_);
      view_mesh_ = mesh_;
    }
    LocalAnswer answer;
    Collect sink(answer);
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    const Watching watching(cancels_, pid_, cancel);
    answer.tag =
        "SELECT " + std::to_string(view_->Run(sql, sink, mesh_->limits.query.timeout_ms, cancel));
    return answer;
  }

  // The settings a session may SET (and RESET): drivers and tools send them, and none
  // changes anything a governed read depends on.
  static const std::set<std::string>& TakenSettings() {
    static const std::set<std::string> taken = {"application_name",
                                                "datestyle",
                                                "extra_float_digits",
                                                "search_path",
                                                "client_encoding",
                                                "timezone",
                                                "intervalstyle",
                                                "statement_timeout",
                                                "lock_timeout",
                                                "bytea_output",
                                                "client_min_messages",
                                                "standard_conforming_strings",
                                                "idle_in_transaction_session_timeout"};
    return taken;
  }

  // A SET of a setting tools send: its name (lower case; "" for one not kept) and
  // value. nullopt for any other SET.
  static std::optional<std::pair<std::string, std::string>> SessionSetting(const std::string& sql) {
    const std::set<std::string>& taken = TakenSettings();
    std::string rest = ToLower(Trimmed(sql.substr(3)));
    for (const char* scope : {"session ", "local "}) {
      if (rest.rfind(scope, 0) == 0) rest = Trimmed(rest.substr(std::strlen(scope)));
    }
    // Read-only transactions and their isolation: what Canopy's reads are anyway.
    for (const char* statement : {"session characteristics as transaction",
                                  "transaction isolation level", "transaction read only"}) {
      if (rest.rfind(statement, 0) == 0 && rest.find("read write") == std::string::npos) {
        return std::make_pair(std::string(), std::string());
      }
    }
    std::string name;
    std::string value;
    if (rest.rfind("time zone ", 0) == 0) {
      name = "timezone";
      value = rest.substr(10);
    } else {
      const size_t end = rest.find_first_of(" =");
      if (end == std::string::npos) return std::nullopt;
      name = rest.substr(0, end);
      value = Trimmed(rest.substr(end));
      if (!value.empty() && value[0] == '=') {
        value = Trimmed(value.substr(1));
      } else if (value.rfind("to ", 0) == 0) {
        value = Trimmed(value.substr(3));
      } else {
        return std::nullopt;
      }
    }
    if (taken.count(name) == 0) return std::nullopt;
    // What the server keeps whatever is asked: only its own value is taken.
    if (name == "client_encoding" &&
        !(value == "utf8" || value == "'utf8'" || value == "'utf-8'" || value == "unicode")) {
      return std::nullopt;
    }
    if (name == "standard_conforming_strings" && !(value == "on" || value == "'on'")) {
      return std::nullopt;
    }
    // The value as written in the statement (its case kept), without quotes.
    const size_t at = sql.size() - value.size();
    value = Trimmed(sql.substr(at));
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    return std::make_pair(name, value);
  }

  static LocalAnswer Single(const std::string& column, const std::string& value) {
    LocalAnswer answer;
    answer.columns = {{column, "VARCHAR", false}};
    answer.rows = {{value}};
    answer.tag = "SELECT 1";
    return answer;
  }

  static std::optional<std::string> Setting(const std::string& name) {
    static const std::map<std::string, std::string> settings = {
        {"server_version", "15.0"},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"datestyle", "ISO, MDY"},
        {"timezone", "UTC"},
        {"standard_conforming_strings", "on"},
        {"search_path", "public"},
        {"transaction_isolation", "read committed"},
        {"integer_datetimes", "on"},
        {"max_identifier_length", "63"},
        {"transaction isolation level", "read committed"}};
    const auto found = settings.find(name);
    if (found == settings.end()) return std::nullopt;
    return found->second;
  }

  // --- cursors: DECLARE, FETCH, CLOSE ---

  // A name as SQL writes it: "Quoted" as it is, bare folded to lower case. Advances `at`.
  static std::string NameAt(const std::string& sql, size_t& at) {
    while (at < sql.size() && std::isspace(static_cast<unsigned char>(sql[at])) != 0) ++at;
    std::string name;
    if (at < sql.size() && sql[at] == '"') {
      for (++at; at < sql.size(); ++at) {
        if (sql[at] == '"') {
          if (at + 1 < sql.size() && sql[at + 1] == '"') {
            name += '"';
            ++at;
            continue;
          }
          ++at;
          return name;
        }
        name += sql[at];
      }
      throw WireError("42601", "a quoted name without its closing quote");
    }
    while (at < sql.size() && std::isspace(static_cast<unsigned char>(sql[at])) == 0 &&
           sql[at] != ';') {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[at++])));
    }
    return name;
  }

  // DECLARE/FETCH/MOVE/CLOSE. nullopt: not one of them; else false when the
  // connection must end.
  std::optional<bool> CursorStatement(const std::string& sql) {
    const std::string lower = ToLower(sql);
    size_t at = 0;
    const std::string verb = NameAt(lower, at);
    if (verb == "declare") return Declare(sql, at);
    if (verb == "fetch") return Fetch(sql, at);
    if (verb == "move") {
      throw WireError("0A000", "MOVE is not supported: Canopy's cursors go forward with FETCH");
    }
    if (verb == "close") {
      const std::string name = NameAt(sql, at);
      if (ToLower(name) == "all") {
        portals_.clear();
      } else if (portals_.erase(name) == 0) {
        throw WireError("34000", "cursor \"" + name + "\" does not exist");
      }
      out_.CommandComplete("CLOSE CURSOR");
      return true;
    }
    return std::nullopt;
  }

  // DECLARE name [BINARY] [ASENSITIVE|INSENSITIVE] [NO SCROLL] CURSOR
  //   [{WITH|WITHOUT} HOLD] FOR query
  bool Declare(const std::string& sql, size_t at) {
    const std::string name = NameAt(sql, at);
    if (name.empty()) throw WireError("42601", "DECLARE needs a cursor name");
    bool binary = false;
    bool hold = false;
    std::string previous;
    for (std::string word = ToLower(NameAt(sql, at)); word != "for";
         previous = word, word = ToLower(NameAt(sql, at))) {
      if (word == "binary") {
        binary = true;
      } else if (word == "hold") {
        hold = previous == "with";  // WITHOUT HOLD is the default
      } else if (word == "scroll") {
        if (previous != "no") {
          throw WireError("0A000", "scrollable cursors are not supported: cursors go forward");
        }
      } else if (word.empty()) {
        throw WireError("42601", "DECLARE needs FOR and a query");
      } else if (word != "asensitive" && word != "insensitive" && word != "no" &&
                 word != "cursor" && word != "with" && word != "without") {
        throw WireError("42601", "syntax error at or near \"" + word + "\" in DECLARE");
      }
    }
    if (!transaction_ && !hold) {
      throw WireError("25P01", "DECLARE CURSOR can only be used in transaction blocks");
    }
    if (portals_.count(name) != 0)
      throw WireError("42P03", "cursor \"" + name + "\" already exists");
    Portal portal;
    portal.sql = Trimmed(sql.substr(at));
    portal.hold = hold;
    if (binary) portal.formats = {1};
    PrepareQuery(portal);  // the guard and the decisions, now: a denial is DECLARE's error
    portals_.emplace(name, std::move(portal));
    out_.CommandComplete("DECLARE CURSOR");
    return true;
  }

  // FETCH [FORWARD] [n | ALL | NEXT] [FROM | IN] name
  bool Fetch(const std::string& sql, size_t at) {
    int64_t count = 1;
    std::string word = NameAt(sql, at);
    auto is = [&](const char* keyword) { return ToLower(word) == keyword; };
    auto next = [&] { word = NameAt(sql, at); };
    if (is("forward")) next();
    if (is("all")) {
      count = 0;
      next();
    } else if (is("next")) {
      next();
    } else if (!word.empty() && word.size() <= 12 &&
               std::all_of(word.begin(), word.end(), [](char c) {
                 return std::isdigit(static_cast<unsigned char>(c)) != 0;
               })) {
      count = std::max<int64_t>(1, std::stoll(word));
      next();
    } else if (is("backward") || is("prior") || is("first") || is("last") || is("absolute") ||
               is("relative")) {
      throw WireError("0A000", "cursors go forward only");
    }
    if (is("from") || is("in")) next();
    const auto found = portals_.find(word);
    if (found == portals_.end()) throw WireError("34000", "cursor \"" + word + "\" does not exist");
    int64_t sent = 0;
    RunPortal(found->second, count, true, sent);
    out_.CommandComplete("FETCH " + std::to_string(sent));
    return true;
  }

  void Fatal(const std::string& sqlstate, const std::string& message,
             const std::string& hint = "") {
    out_.Error(sqlstate, message, hint);
    Send();
  }

  bool Send() {
    const bool sent = socket_.Write(out_.bytes());
    out_.Clear();
    return sent;
  }

  SSL_CTX* tls_;  // nullptr: no TLS configured
  const spec::MeshSource& meshes_;
  std::shared_ptr<const spec::Mesh> mesh_;
  const CatalogLease& lease_;
  const PgOptions& options_;
  Socket socket_;
  sockaddr_storage peer_;
  int32_t pid_;
  CancelRegistry& cancels_;
  const std::string refusal_;  // not empty: the startup is answered with this, and the end
  Writer out_;
  governance::Principal principal_;
  std::string claimed_;
  std::string token_;                   // to check again before each statement; never logged
  std::optional<int64_t> scram_token_;  // the token proven by SCRAM: checked again by id
  std::string application_;
  bool transaction_ = false;   // in a BEGIN … COMMIT block
  bool failed_ = false;        // … in which a statement failed
  bool ending_ = false;        // a COMMIT or ROLLBACK ran: close the transaction's portals
  bool skipping_ = false;      // after an error in an extended exchange, up to its Sync
  bool discarding_ = false;    // a DISCARD ALL ran: statements, portals and settings go
  bool deallocating_ = false;  // a DEALLOCATE ALL ran: named statements go
  std::map<std::string, Prepared> statements_;
  std::map<std::string, Portal> portals_;        // and cursors
  std::unique_ptr<CatalogView> view_;            // built at the first question about the catalog
  std::shared_ptr<const spec::Mesh> view_mesh_;  // the mesh view_ was built from
  std::map<std::string, std::string> settings_;  // SET by the client, said back by SHOW
};

}  // namespace

// --- the listener ---

struct PgListener::State {
  std::shared_ptr<const spec::MeshSource> meshes;
  CatalogLease lease;
  PgOptions options;
  int listen_fd = -1;
  int port = 0;
  std::thread acceptor;

  // Sessions run on pooled threads: a thread whose connection ended waits for the next one
  // (up to kIdleThreads wait). DuckDB runs part of each query on the thread that fetches its
  // rows, and on a thread that never ran one before its first result came 10 ms later (the
  // engine's per-thread memory being set up): a thread per connection paid that on every
  // connection, which is how most clients — a script, a BI tool's pool — come.
  static constexpr int kIdleThreads = 8;
  // Connections past the cap still get a session that only answers the startup: an
  // encryption request and a cancel as always (a cancel is most wanted when every slot is
  // taken), then the refusal, which a client asking for TLS first would otherwise never
  // read. Past these few spare ones a connection is told at once and closed.
  static constexpr int kRefusingSlots = 4;
  struct Job {
    int fd;
    sockaddr_storage peer;
    int32_t pid;
    bool refused;  // past the cap: the startup, then the refusal
  };
  struct Worker {
    std::thread thread;
    bool exited = false;  // its loop has ended: join it
  };
  std::mutex mutex;
  std::condition_variable wake;  // a job was queued, or the listener stops
  std::list<Job> jobs;           // accepted, waiting for an idle thread
  std::list<Worker> workers;
  std::set<int> open_fds;  // the connections being served or waiting, for Stop
  int admitted = 0;        // of them, those not refused: the ones the cap counts
  int idle = 0;            // threads waiting for a job
  std::atomic<bool> stopping{false};
  int32_t next_pid = 1;
  CancelRegistry cancels;
  SSL_CTX* tls = nullptr;

  ~State() {
    if (tls != nullptr) SSL_CTX_free(tls);
  }

  State(std::shared_ptr<const spec::MeshSource> m, CatalogLease l, PgOptions o)
      : meshes(std::move(m)), lease(std::move(l)), options(std::move(o)) {}

  // Joins the threads that left the pool. Holds `mutex`.
  void Reap() {
    for (auto it = workers.begin(); it != workers.end();) {
      if (it->exited) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Serve(const Job& job) {
    try {
      Session(*meshes, lease, options, job.fd, job.peer, job.pid, cancels, tls,
              job.refused ? TooMany() : "")
          .Run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s pgwire: connection %d ended: %s\n", NowIso8601().c_str(), job.pid,
                   e.what());
    }
    // The client sees the end now. The descriptor is closed under the mutex, once Stop can
    // no longer shut it down, so a number reused by the system is never touched.
    ::shutdown(job.fd, SHUT_RDWR);
    std::lock_guard<std::mutex> lock(mutex);
    open_fds.erase(job.fd);
    if (!job.refused) --admitted;
    ::close(job.fd);
  }

  std::string TooMany() const {
    return "too many connections (at most " + std::to_string(options.max_connections) + ")";
  }

  // A pooled thread: serves `first`, then whatever is queued, while the pool wants it.
  void Work(Worker* self, Job first) {
    ::pthread_setname_np(::pthread_self(), "canopy-pg");  // as `top -H` and /proc show it
    Serve(first);
    std::unique_lock<std::mutex> lock(mutex);
    while (!stopping && idle < kIdleThreads) {
      ++idle;
      wake.wait(lock, [this] { return stopping || !jobs.empty(); });
      --idle;
      if (jobs.empty()) break;  // stopping
      const Job job = jobs.front();
      jobs.pop_front();
      lock.unlock();
      Serve(job);
      lock.lock();
    }
    self->exited = true;
  }

  void Accept() {
    while (!stopping) {
      Job job{-1, {}, 0, false};
      socklen_t length = sizeof job.peer;
      job.fd = ::accept(listen_fd, reinterpret_cast<sockaddr*>(&job.peer), &length);
      if (job.fd < 0) {
        if (stopping) return;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no spinning
        }
        continue;
      }
      // As PostgreSQL does: a response's end goes out at once. Without it, Nagle's algorithm
      // held the last rows and CommandComplete back until the client acknowledged the
      // batch before them: a 40 ms stall at the end of a streamed result.
      const int on = 1;
      ::setsockopt(job.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      std::lock_guard<std::mutex> lock(mutex);
      Reap();
      job.refused = admitted >= options.max_connections;
      if (job.refused && static_cast<int>(open_fds.size()) - admitted >= kRefusingSlots) {
        Writer out;
        out.Error("53300", TooMany());
        Socket(job.fd).Write(out.bytes());
        ::close(job.fd);
        continue;
      }
      job.pid = next_pid++;
      open_fds.insert(job.fd);
      if (!job.refused) ++admitted;
      if (idle > static_cast<int>(jobs.size())) {
        jobs.push_back(job);
        wake.notify_one();
        continue;
      }
      try {
        workers.emplace_back();
        Worker* worker = &workers.back();
        worker->thread = std::thread([this, worker, job] { Work(worker, job); });
      } catch (const std::system_error& e) {  // no thread to be had: this client is refused
        workers.pop_back();
        std::fprintf(stderr, "%s pgwire: cannot start a connection: %s\n", NowIso8601().c_str(),
                     e.what());
        open_fds.erase(job.fd);
        if (!job.refused) --admitted;
        ::close(job.fd);
      }
    }
  }
};

PgListener::PgListener(const spec::Mesh& mesh, CatalogLease lease, PgOptions options)
    : PgListener(std::make_shared<spec::MeshSource>(mesh), std::move(lease), std::move(options)) {}

PgListener::PgListener(std::shared_ptr<const spec::MeshSource> meshes, CatalogLease lease,
                       PgOptions options)
    : state_(std::make_unique<State>(std::move(meshes), std::move(lease), std::move(options))) {
  const PgOptions& given = state_->options;
  if (!given.tls_cert.empty()) {
    state_->tls = SSL_CTX_new(TLS_server_method());
    if (state_->tls == nullptr || SSL_CTX_set_min_proto_version(state_->tls, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(state_->tls, given.tls_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(state_->tls, given.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(state_->tls) != 1) {
      char reason[256] = "";
      ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
      throw Error(ErrorCode::kFailed,
                  "cannot use " + given.tls_cert + " and " + given.tls_key + " for TLS: " + reason,
                  "give a PEM certificate and the private key that goes with it");
    }
  }
  const std::string& listen = state_->options.listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    throw Error(ErrorCode::kUsage, "--pg-listen takes HOST:PORT, not '" + listen + "'");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    throw Error(ErrorCode::kUsage, "--pg-listen: cannot resolve '" + listen + "'");
  }
  for (addrinfo* a = found; a != nullptr && state_->listen_fd < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
      state_->listen_fd = fd;
    } else {
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (state_->listen_fd < 0) {
    throw Error(ErrorCode::kFailed, "cannot listen on " + listen + " for PostgreSQL clients",
                "is the port taken? choose another with --pg-listen");
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(state_->listen_fd, reinterpret_cast<sockaddr*>(&bound), &length);
  state_->port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

PgListener::~PgListener() {
  Stop();
}

void PgListener::Start() {
  // A client gone mid-answer must end its connection, not the server (TLS writes do not
  // take MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
  state_->acceptor = std::thread([this] { state_->Accept(); });
}

void PgListener::Stop() {
  if (state_->stopping.exchange(true)) return;
  if (state_->listen_fd >= 0) {
    ::shutdown(state_->listen_fd, SHUT_RDWR);  // wakes the blocked accept
  }
  if (state_->acceptor.joinable()) state_->acceptor.join();
  if (state_->listen_fd >= 0) ::close(state_->listen_fd);
  std::list<State::Worker> workers;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    // Reading ends: a statement in flight still writes its answer, then its loop ends.
    for (const int fd : state_->open_fds) ::shutdown(fd, SHUT_RD);
    state_->wake.notify_all();
    workers.splice(workers.end(), state_->workers);
  }
  for (auto& worker : workers) worker.thread.join();
  std::lock_guard<std::mutex> lock(state_->mutex);
  for (const auto& job : state_->jobs) ::close(job.fd);  // accepted, never served
  state_->jobs.clear();
  state_->open_fds.clear();
}

int PgListener::port() const {
  return state_->port;
}

}  // namespace canopy::pgwire
