#include "pgwire/pgwire.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <cstdio>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <variant>

#include "core/clock.h"
#include "core/error.h"
#include "core/text.h"
#include "governance/audit.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "governance/tokens.h"
#include "pgwire/messages.h"

namespace canopy::pgwire {

namespace {

// --- types ---

// The PostgreSQL type a DuckDB column is sent as (pg_type's OIDs). Anything else —
// lists, structs, maps — is sent as text.
Writer::Field FieldFor(const governance::ResultColumn& column) {
  std::string type = column.type;
  for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto is = [&](const char* name) { return type == name; };
  auto starts = [&](const char* prefix) { return type.rfind(prefix, 0) == 0; };
  Writer::Field field{column.name, 25, -1};
  if (is("BOOLEAN")) field = {column.name, 16, 1};
  if (is("TINYINT") || is("SMALLINT") || is("UTINYINT")) field = {column.name, 21, 2};
  if (is("INTEGER") || is("USMALLINT")) field = {column.name, 23, 4};
  if (is("BIGINT") || is("UINTEGER")) field = {column.name, 20, 8};
  if (is("HUGEINT") || is("UBIGINT") || is("UHUGEINT") || starts("DECIMAL")) {
    field = {column.name, 1700, -1};
  }
  if (is("FLOAT")) field = {column.name, 700, 4};
  if (is("DOUBLE")) field = {column.name, 701, 8};
  if (is("DATE")) field = {column.name, 1082, 4};
  if (is("TIME")) field = {column.name, 1083, 8};
  if (is("TIMESTAMP") || starts("TIMESTAMP_")) field = {column.name, 1114, 8};
  if (is("TIMESTAMP WITH TIME ZONE")) field = {column.name, 1184, 8};
  if (is("INTERVAL")) field = {column.name, 1186, 16};
  if (is("UUID")) field = {column.name, 2950, 16};
  if (is("BLOB")) field = {column.name, 17, -1};
  if (is("JSON")) field = {column.name, 114, -1};
  return field;
}

// A value as PostgreSQL's text format writes it.
std::optional<std::string> TextOf(const governance::Value& value) {
  if (std::holds_alternative<std::monostate>(value)) return std::nullopt;
  if (const bool* b = std::get_if<bool>(&value)) return std::string(*b ? "t" : "f");
  if (const int64_t* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  if (const double* d = std::get_if<double>(&value)) {
    if (std::isnan(*d)) return std::string("NaN");
    if (std::isinf(*d)) return std::string(*d > 0 ? "Infinity" : "-Infinity");
    char buffer[32];
    const auto done = std::to_chars(buffer, buffer + sizeof buffer, *d);  // shortest exact
    return std::string(buffer, done.ptr);
  }
  return std::get<std::string>(value);
}

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
      state = has("cannot parse")            ? "42601"   // syntax_error
              : has("is not an output port") ? "42P01"   // undefined_table
                                             : "42501";  // refused
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

// Reads and writes whole buffers on a blocking socket. Every read has a deadline.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {
    const timeval timeout{kSendTimeoutS, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  // Waits up to `timeout_ms` for bytes; false on timeout.
  bool Wait(int64_t timeout_ms) {
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
      const ssize_t got = ::recv(fd_, out.data() + done, n - done, 0);
      if (got <= 0) return false;
      done += static_cast<size_t>(got);
    }
    return true;
  }
  bool Write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t sent = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (sent <= 0) return false;
      done += static_cast<size_t>(sent);
    }
    return true;
  }

 private:
  int fd_;
  std::chrono::steady_clock::time_point deadline_ =
      std::chrono::steady_clock::now() + kMessageDeadline;
};

// Streams a governed query's rows as DataRow messages, a batch of about 64 KiB at a
// time, so that a large result is never held whole.
class WireSink : public governance::ResultSink {
 public:
  WireSink(Socket& socket, Writer& out) : socket_(socket), out_(out) {}
  void Begin(const std::vector<governance::ResultColumn>& columns) override {
    std::vector<Writer::Field> fields;
    fields.reserve(columns.size());
    for (const auto& column : columns) fields.push_back(FieldFor(column));
    out_.RowDescription(fields);
  }
  void Row(const std::vector<governance::Value>& row) override {
    values_.clear();
    for (const auto& value : row) values_.push_back(TextOf(value));
    out_.DataRow(values_);
    if (out_.size() >= kBatchBytes) Flush();
  }
  void Flush() {
    if (!socket_.Write(out_.bytes())) {
      throw Error(ErrorCode::kFailed, "the client went away");
    }
    out_.Clear();
  }

 private:
  static constexpr size_t kBatchBytes = size_t{64} * 1024;
  Socket& socket_;
  Writer& out_;
  std::vector<std::optional<std::string>> values_;
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
  void Add(int32_t pid, int32_t key, std::shared_ptr<std::atomic<bool>> flag) {
    const std::lock_guard<std::mutex> lock(mutex_);
    sessions_[pid] = {key, std::move(flag)};
  }
  void Remove(int32_t pid) {
    const std::lock_guard<std::mutex> lock(mutex_);
    sessions_.erase(pid);
  }
  // Stops the statement the session is running, if the key is its own.
  void Cancel(int32_t pid, int32_t key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto found = sessions_.find(pid);
    if (found != sessions_.end() && found->second.first == key) found->second.second->store(true);
  }

 private:
  std::mutex mutex_;
  std::map<int32_t, std::pair<int32_t, std::shared_ptr<std::atomic<bool>>>> sessions_;
};

class Session {
 public:
  Session(const spec::Mesh& mesh, const CatalogLease& lease, const PgOptions& options, int fd,
          const sockaddr_storage& peer, int32_t pid, CancelRegistry& cancels)
      : mesh_(mesh),
        lease_(lease),
        options_(options),
        socket_(fd),
        peer_(peer),
        pid_(pid),
        cancels_(cancels) {}
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
      if (startup->code == kSslRequest || startup->code == kGssEncRequest) {
        if (!socket_.Write("N")) return false;  // no encryption: the client decides
        continue;
      }
      if (startup->code == kCancelRequest) {  // answered by nothing but the cancel
        cancels_.Cancel(startup->cancel_pid, startup->cancel_key);
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
    if (!IsLoopback(peer_)) {
      AuditLogin("denied", "cleartext password from a non-loopback address");
      Fatal("28000", "passwords are only taken over loopback connections until TLS is configured",
            "connect from this machine, or put a TLS-terminating proxy in front");
      return false;
    }
    out_.AuthenticationCleartextPassword();
    if (!Send()) return false;
    std::string head;
    if (!socket_.Read(5, head)) return false;
    const uint32_t length = ReadUint32(head, 1);
    std::string body;
    if (head[0] != 'p' || length < 5 || length > 4096 || !socket_.Read(length - 4, body)) {
      AuditLogin("denied", "no password message");
      Fatal("08P01", "expected a password message");
      return false;
    }
    size_t at = 0;
    const auto password = ReadCString(body, at);
    // A catalog connection is leased per use, never for a session's life: idle psql
    // sessions must not take the pool from the HTTP API.
    const auto owner =
        password ? governance::Authenticate(*lease_(), *password) : std::optional<std::string>();
    // The principal is the token's; the claimed name must be the same person's.
    token_ = password.value_or("");
    if (!owner || *owner != claimed_) {
      AuditLogin("denied", owner ? "the token belongs to another user" : "not a valid token");
      Fatal("28P01", "password authentication failed for user \"" + claimed_ + "\"",
            "the password is one of your Canopy tokens (canopy token create " + claimed_ + ")");
      return false;
    }
    try {
      principal_ = governance::ResolvePrincipal(mesh_, *owner);
    } catch (const Error&) {
      Fatal("28000", "the token's user is no longer in the mesh");
      return false;
    }
    AuditLogin("ok", "");
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
    cancels_.Add(pid_, key, cancel_);
    out_.BackendKeyData(pid_, key);
    out_.ReadyForQuery('I');
    return Send();
  }

  void AuditLogin(const std::string& outcome, const std::string& why) {
    try {  // the parameters were checked as UTF-8 (JSON needs it) before any login is audited
      nlohmann::json details{{"from", AddressText(peer_)}, {"claimed_user", claimed_}};
      if (!why.empty()) details["reason"] = why;
      if (!application_.empty()) details["application"] = application_;
      governance::RecordAudit(*lease_(), outcome == "ok" ? "user:" + claimed_ : "anonymous",
                              "pg.login", "pgwire", outcome, details.dump());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s pgwire: cannot audit a login: %s\n", NowIso8601().c_str(), e.what());
    }
  }

  // One message after startup. False: the connection ends.
  bool Handle(char type, const std::string& body) {
    switch (type) {
      case 'Q': {
        size_t at = 0;
        const auto sql = ReadCString(body, at);
        if (!sql) {
          Fatal("08P01", "a query message without its end");
          return false;
        }
        if (!ValidUtf8(*sql)) {
          out_.Error("22021", "invalid byte sequence for encoding \"UTF8\"");
        } else if (!Query(*sql)) {
          return false;
        }
        out_.ReadyForQuery(transaction_ ? 'T' : 'I');
        return Send();
      }
      case 'X':
        return false;
      case 'S':  // Sync: the end of an extended-protocol exchange
        skipping_ = false;
        out_.ReadyForQuery(transaction_ ? 'T' : 'I');
        return Send();
      case 'H':  // Flush
        return Send();
      case 'P':
      case 'B':
      case 'D':
      case 'E':
      case 'C':
        if (!skipping_) {
          out_.Error("0A000", "the extended query protocol is not supported yet",
                     "use the simple query protocol (psql and psycopg2 do by default)");
          skipping_ = true;  // the rest of the exchange is ignored up to its Sync
        }
        return true;
      default:
        Fatal("08P01", std::string("unexpected message type '") + type + "'");
        return false;
    }
  }

  // Answers one simple query: session statements here, everything else governed. False
  // when the connection must end (its token was revoked).
  bool Query(const std::string& text) {
    const std::string sql = Trimmed(text);
    if (sql.empty()) {
      out_.EmptyQueryResponse();
      return true;
    }
    const std::string lower = ToLower(sql);
    auto starts = [&](const char* word) {
      const size_t n = std::char_traits<char>::length(word);
      return lower.compare(0, n, word) == 0 &&
             (lower.size() == n || std::isspace(static_cast<unsigned char>(lower[n])) != 0);
    };
    if (starts("begin") || starts("start")) {
      transaction_ = true;
      out_.CommandComplete("BEGIN");
      return true;
    }
    if (starts("commit") || starts("end") || starts("rollback") || starts("abort")) {
      transaction_ = false;
      out_.CommandComplete(starts("commit") || starts("end") ? "COMMIT" : "ROLLBACK");
      return true;
    }
    if (starts("set")) {
      // Session settings a driver sends on connect change nothing a governed read
      // depends on; they are acknowledged.
      out_.CommandComplete("SET");
      return true;
    }
    if (starts("show")) {
      Show(Trimmed(lower.substr(4)));
      return true;
    }
    if (lower == "select version()") {
      SingleValue("version", "PostgreSQL 15.0 (Canopy " + options_.version + ")");
      return true;
    }
    return Governed(sql);
  }

  void Show(const std::string& name) {
    const std::map<std::string, std::string> settings = {
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
    if (found == settings.end()) {
      out_.Error("42704", "unrecognized configuration parameter \"" + name + "\"");
      return;
    }
    SingleValue(found->first, found->second);
  }

  void SingleValue(const std::string& column, const std::string& value) {
    out_.RowDescription({{column, 25, -1}});
    out_.DataRow({value});
    out_.CommandComplete("SELECT 1");
  }

  bool Governed(const std::string& sql) {
    try {
      const std::shared_ptr<catalog::CatalogStore> catalog = lease_();
      // The token is checked again for every statement: one revoked while the session
      // is open stops it at its next statement.
      if (governance::Authenticate(*catalog, token_) != claimed_) {
        Fatal("28000", "the token of this session was revoked", "connect again with a valid one");
        return false;
      }
      governance::QueryOptions query_options;
      cancel_->store(false);  // a cancel is for the statement running when it comes
      query_options.cancel = cancel_;
      governance::GovernedQuery query(mesh_, *catalog, principal_, sql, query_options);
      WireSink sink(socket_, out_);
      const governance::QueryOutcome outcome = query.Run(sink);
      for (const auto& warning : outcome.warnings) out_.Error("01000", warning, "", true);
      out_.CommandComplete("SELECT " + std::to_string(outcome.rows));
    } catch (const Error& e) {
      const SqlError error = ToSqlError(e);
      out_.Error(error.sqlstate, error.message, error.hint);
    }
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

  const spec::Mesh& mesh_;
  const CatalogLease& lease_;
  const PgOptions& options_;
  Socket socket_;
  sockaddr_storage peer_;
  int32_t pid_;
  CancelRegistry& cancels_;
  std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
  Writer out_;
  governance::Principal principal_;
  std::string claimed_;
  std::string token_;  // to check again before each statement; never logged
  std::string application_;
  bool transaction_ = false;
  bool skipping_ = false;
};

}  // namespace

// --- the listener ---

struct PgListener::State {
  const spec::Mesh& mesh;
  CatalogLease lease;
  PgOptions options;
  int listen_fd = -1;
  int port = 0;
  std::thread acceptor;
  std::mutex mutex;
  struct Connection {
    int fd;
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Connection> connections;
  std::atomic<bool> stopping{false};
  int32_t next_pid = 1;
  CancelRegistry cancels;

  State(const spec::Mesh& m, CatalogLease l, PgOptions o)
      : mesh(m), lease(std::move(l)), options(std::move(o)) {}

  // Joins the connections that ended. Holds `mutex`.
  void Reap() {
    for (auto it = connections.begin(); it != connections.end();) {
      if (it->done->load()) {
        it->thread.join();
        ::close(it->fd);
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Accept() {
    while (!stopping) {
      sockaddr_storage peer{};
      socklen_t length = sizeof peer;
      const int fd = ::accept(listen_fd, reinterpret_cast<sockaddr*>(&peer), &length);
      if (fd < 0) {
        if (stopping) return;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no spinning
        }
        continue;
      }
      std::lock_guard<std::mutex> lock(mutex);
      Reap();
      if (static_cast<int>(connections.size()) >= options.max_connections) {
        Writer out;
        out.Error("53300",
                  "too many connections (at most " + std::to_string(options.max_connections) + ")");
        Socket(fd).Write(out.bytes());
        ::close(fd);
        continue;
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      const int32_t pid = next_pid++;
      connections.push_back({fd, std::thread([this, fd, peer, pid, done] {
                               try {
                                 Session(mesh, lease, options, fd, peer, pid, cancels).Run();
                               } catch (const std::exception& e) {
                                 std::fprintf(stderr, "%s pgwire: connection %d ended: %s\n",
                                              NowIso8601().c_str(), pid, e.what());
                               }
                               // The client sees the end now; the descriptor is closed
                               // when the thread is joined, so it is never reused under a
                               // Stop that shuts it down.
                               ::shutdown(fd, SHUT_RDWR);
                               *done = true;
                             }),
                             done});
    }
  }
};

PgListener::PgListener(const spec::Mesh& mesh, CatalogLease lease, PgOptions options)
    : state_(std::make_unique<State>(mesh, std::move(lease), std::move(options))) {
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
  state_->acceptor = std::thread([this] { state_->Accept(); });
}

void PgListener::Stop() {
  if (state_->stopping.exchange(true)) return;
  if (state_->listen_fd >= 0) {
    ::shutdown(state_->listen_fd, SHUT_RDWR);  // wakes the blocked accept
  }
  if (state_->acceptor.joinable()) state_->acceptor.join();
  if (state_->listen_fd >= 0) ::close(state_->listen_fd);
  std::lock_guard<std::mutex> lock(state_->mutex);
  // Reading ends: a statement in flight still writes its answer, then its loop ends.
  for (auto& connection : state_->connections) ::shutdown(connection.fd, SHUT_RD);
  for (auto& connection : state_->connections) {
    connection.thread.join();
    ::close(connection.fd);
  }
  state_->connections.clear();
}

int PgListener::port() const {
  return state_->port;
}

}  // namespace canopy::pgwire
