#include "catalog/pg_handle.h"

#include <cstdlib>
#include <memory>

namespace canopy::catalog::pg {

namespace {

// The first line of a libpq message, its runs of spaces made one.
std::string FirstLine(const char* message) {
  std::string out;
  for (const char* c = message; c != nullptr && *c != '\0' && *c != '\n'; ++c) {
    if (*c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += *c == '\t' ? ' ' : *c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "unknown error" : out;
}

std::string Abbreviate(std::string_view sql) {
  std::string out;
  for (const char c : sql) {
    const bool space = c == ' ' || c == '\n' || c == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    if (out.size() >= 60) return "`" + out + "…`";
    out += space ? ' ' : c;
  }
  return "`" + out + "`";
}

}  // namespace

std::string DisplayUrl(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  PQfreemem(error);  // may quote the URL: never shown
  if (options == nullptr) return "postgresql://(a URL that does not parse)";
  std::map<std::string, std::string> values;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) values[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  std::string host = values.count("host") != 0 ? values["host"] : values["hostaddr"];
  std::string out = "postgresql://";
  if (values.count("user") != 0) out += values["user"] + "@";
  out += host.empty() ? "localhost" : host;
  if (values.count("port") != 0) out += ":" + values["port"];
  out += "/" + (values.count("dbname") != 0 ? values["dbname"] : std::string());
  return out;
}

int64_t Result::Changed() const {
  const char* text = PQcmdTuples(result_);
  return text == nullptr || *text == '\0' ? 0 : std::strtoll(text, nullptr, 10);
}

int64_t Result::Int(int row, int column) const {
  return std::strtoll(PQgetvalue(result_, row, column), nullptr, 10);
}

double Result::Double(int row, int column) const {
  return std::strtod(PQgetvalue(result_, row, column), nullptr);
}

Connection::Connection(const std::string& url) : display_(DisplayUrl(url)) {
  // The URL's own settings win over these defaults (later entries override earlier).
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"5", "canopy", url.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, 1);
  if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    const std::string reason =
        conn_ != nullptr ? FirstLine(PQerrorMessage(conn_)) : "out of memory";
    PQfinish(conn_);
    conn_ = nullptr;
    throw Error(ErrorCode::kFailed, "cannot connect to the catalog " + display_ + ": " + reason,
                "check that the server is running and that the URL's host, port, database, "
                "user and password are right");
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);  // NOTICEs are not errors
}

void Connection::Execute(const std::string& sql) {
  last_state_.clear();
  const std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn_, sql.c_str()), PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) Fail(result.get(), sql);
}

Result Connection::Query(const char* sql, const std::vector<Param>& params) {
  last_state_.clear();
  // A connection the server dropped (a restart, a timeout) is made again once, when
  // no transaction was open on it: nothing is lost by retrying.
  if (PQstatus(conn_) == CONNECTION_BAD) {
    PQreset(conn_);
    prepared_.clear();
  }
  auto found = prepared_.find(std::string_view(sql));
  if (found == prepared_.end()) {
    const std::string name = "s" + std::to_string(prepared_.size());
    const std::unique_ptr<PGresult, decltype(&PQclear)> made(
        PQprepare(conn_, name.c_str(), sql, static_cast<int>(params.size()), nullptr), PQclear);
    if (PQresultStatus(made.get()) != PGRES_COMMAND_OK) Fail(made.get(), sql);
    found = prepared_.emplace(sql, name).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p.text().c_str());
  PGresult* result = PQexecPrepared(conn_, found->second.c_str(), static_cast<int>(values.size()),
                                    values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const std::unique_ptr<PGresult, decltype(&PQclear)> owned(result, PQclear);
    Fail(result, sql);
  }
  return Result(result);
}

int Connection::DrainNotifications() {
  if (PQconsumeInput(conn_) == 0) return -1;
  int count = 0;
  while (PGnotify* notify = PQnotifies(conn_)) {
    PQfreemem(notify);
    ++count;
  }
  return count;
}

void Connection::Fail(const PGresult* result, std::string_view sql) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  last_state_ = state != nullptr ? state : "";
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const std::string message = FirstLine(primary != nullptr ? primary : PQerrorMessage(conn_));
  throw Error(ErrorCode::kFailed,
              "PostgreSQL: " + message + " (running " + Abbreviate(sql) + " on " + display_ + ")");
}

Transaction::~Transaction() {
  if (!done_) PQclear(PQexec(connection_.handle(), "ROLLBACK"));
}

}  // namespace canopy::catalog::pg
