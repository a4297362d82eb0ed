// Fuzz target: what a PostgreSQL client sends, read as the server reads it. The bytes
// are a client's stream: a startup packet (length, then body), then typed messages
// (type byte, length, body). Each piece goes through the pure functions of
// src/pgwire/messages.h and src/pgwire/types.h: ParseStartup, Reader over the bodies
// of Parse/Bind/Describe/Execute/Close/Query/Password as the session reads them,
// ParameterLiteral for each bound value, CountPlaceholders, SubstitutePlaceholders and
// SplitStatements; the password messages also as SCRAM-SHA-256's two client messages.
//
// Oracles, beyond "no crash, no sanitizer report, no exception but canopy::Error":
//  - SplitStatements returns views inside the text, in order, not overlapping, none
//    empty, and none holding a ';' a second split would cut at;
//  - a bound parameter's literal is one token of SQL: it holds no statement break
//    and no placeholder of its own;
//  - substituting literals for the placeholders keeps the number of statements and
//    leaves no placeholder behind;
//  - no SCRAM client-final message proves a password the input does not hold.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/scram.h"
#include "fuzz/fuzz_support.h"
#include "pgwire/messages.h"
#include "pgwire/types.h"

using namespace canopy;
using namespace canopy::pgwire;

namespace {

// The type OIDs a parameter may be declared with: those Canopy converts, and others.
const uint32_t kTypes[] = {
    oid::kUnspecified, oid::kBool,     oid::kBytea,   oid::kName, oid::kInt8,   oid::kInt2,
    oid::kInt4,        oid::kText,     oid::kOid,     oid::kJson, oid::kFloat4, oid::kFloat8,
    oid::kUnknown,     oid::kBpchar,   oid::kVarchar, oid::kDate, oid::kTime,   oid::kTimestamp,
    oid::kTimestamptz, oid::kInterval, oid::kNumeric, oid::kUuid, oid::kJsonb,  1000};

void CheckSplit(std::string_view sql) {
  const auto pieces = SplitStatements(sql);
  const char* end_of_last = sql.data();
  for (const auto& piece : pieces) {
    fuzz::Check(!piece.empty(), "SplitStatements returned an empty statement");
    fuzz::Check(
        piece.data() >= end_of_last && piece.data() + piece.size() <= sql.data() + sql.size(),
        "SplitStatements returned a view outside the text or out of order");
    end_of_last = piece.data() + piece.size();
    fuzz::Check(SplitStatements(piece).size() == 1,
                "a statement SplitStatements returned splits again");
  }
  (void)CountPlaceholders(sql);
}

void CheckLiteral(const std::string& literal) {
  fuzz::Check(SplitStatements(literal).size() == 1,
              "a parameter's literal splits into statements: " + literal);
  fuzz::Check(CountPlaceholders(literal) == 0,
              "a parameter's literal holds a placeholder: " + literal);
}

struct Statement {
  std::string sql;
  std::vector<uint32_t> types;
};

// What the session keeps between messages, bounded.
struct Session {
  std::map<std::string, Statement> statements;
  // SCRAM-SHA-256 sign-in: the first 'p' message is the SASLInitialResponse, the next the
  // client-final message, against the verifier of a password the input cannot hold.
  std::optional<scram::ServerExchange> scram;
  int sasl_messages = 0;
};

const scram::Verifier& FuzzVerifier() {
  static const scram::Verifier verifier =
      scram::MakeVerifier("a password no input holds: 6f1c0e9b", "fuzz salt", 4096);
  return verifier;
}

// The server's side of SCRAM over what the client sent. Oracle: no input proves the
// password (a match is a forged proof).
void Sasl(Session& session, const std::string& body) {
  if (session.sasl_messages++ == 0) {
    Reader in(body);
    in.CString();  // the mechanism
    const int32_t length = in.Int32();
    const std::string first = length < 0 ? "" : in.Bytes(static_cast<size_t>(length));
    if (in.failed()) return;
    session.scram.emplace();
    if (session.scram->ClientFirst(first)) {
      session.scram->ServerFirst(FuzzVerifier().salt, 4096, "fuzznonce");
    } else {
      fuzz::Check(!session.scram->error().empty(), "a refused client-first without a reason");
      session.scram.reset();
    }
    return;
  }
  if (!session.scram) return;
  const auto match = session.scram->ClientFinal(body, {FuzzVerifier()});
  fuzz::Check(!match.has_value(), "a SCRAM proof was accepted without the password");
  fuzz::Check(!session.scram->error().empty(), "a refused client-final without a reason");
  session.scram.reset();
}

void Bind(Session& session, const std::string& body) {
  Reader in(body);
  in.CString();  // portal
  const std::string statement_name = in.CString();
  auto count = [&] {
    const int16_t n = in.Int16();
    return n < 0 ? size_t{0} : static_cast<size_t>(n);
  };
  std::vector<int16_t> formats(count());
  for (auto& format : formats) format = in.Int16();
  std::vector<std::optional<std::string>> values;
  const size_t n = count();
  for (size_t i = 0; i < n && !in.failed(); ++i) {
    const int32_t length = in.Int32();
    if (length < -1) return;
    values.emplace_back();
    if (length >= 0) values.back() = in.Bytes(static_cast<size_t>(length));
  }
  std::vector<int16_t> result_formats(count());
  for (auto& format : result_formats) format = in.Int16();
  if (in.failed()) return;

  const auto found = session.statements.find(statement_name);
  const Statement* statement = found != session.statements.end() ? &found->second : nullptr;
  std::vector<std::string> literals;
  for (size_t i = 0; i < values.size(); ++i) {
    // The declared type, else one drawn from the value's position and length.
    uint32_t type = kTypes[(i + (values[i] ? values[i]->size() : 0)) % std::size(kTypes)];
    if (statement != nullptr && i < statement->types.size()) type = statement->types[i];
    const int16_t format = formats.empty()       ? int16_t{0}
                           : formats.size() == 1 ? formats[0]
                                                 : formats[i % formats.size()];
    try {
      literals.push_back(ParameterLiteral(type, format, values[i]));
      CheckLiteral(literals.back());
    } catch (const Error& e) {
      fuzz::CheckError(e, "ParameterLiteral");
      return;
    }
  }
  if (statement == nullptr) return;
  try {
    const std::string bound = SubstitutePlaceholders(statement->sql, literals);
    fuzz::Check(CountPlaceholders(bound) == 0,
                "a placeholder is left after substitution: " + bound);
    fuzz::Check(SplitStatements(bound).size() == SplitStatements(statement->sql).size(),
                "substitution changed the number of statements: " + bound);
  } catch (const Error& e) {
    fuzz::CheckError(e, "SubstitutePlaceholders");
  }
}

void Typed(Session& session, char type, const std::string& body) {
  Reader in(body);
  switch (type) {
    case 'Q': {
      const std::string sql = in.CString();
      if (!in.failed()) CheckSplit(sql);
      break;
    }
    case 'P': {
      const std::string name = in.CString();
      const std::string sql = in.CString();
      const int16_t count = in.Int16();
      std::vector<uint32_t> types;
      for (int16_t i = 0; i < count && !in.failed(); ++i) {
        types.push_back(static_cast<uint32_t>(in.Int32()));
      }
      if (in.failed()) break;
      CheckSplit(sql);
      const int placeholders = CountPlaceholders(sql);
      fuzz::Check(placeholders >= 0, "a negative placeholder count");
      if (placeholders > 64) break;  // the session refuses past 32767; keep runs small
      types.resize(std::max(types.size(), static_cast<size_t>(placeholders)), oid::kUnspecified);
      if (session.statements.size() < 16) session.statements[name] = {sql, std::move(types)};
      break;
    }
    case 'B':
      Bind(session, body);
      break;
    case 'D':
    case 'C': {
      in.Bytes(1);
      in.CString();
      break;
    }
    case 'E': {
      in.CString();
      in.Int32();
      break;
    }
    case 'p': {
      in.CString();
      Sasl(session, body);
      break;
    }
    default:
      in.Bytes(body.size());
      break;
  }
  (void)in.at_end();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  size_t at = 0;
  // The startup packet: its length counts itself.
  if (bytes.size() >= 4) {
    const uint32_t length = ReadUint32(bytes, 0);
    if (length >= 8 && length <= kMaxStartupBytes && length <= bytes.size()) {
      std::string error;
      const auto startup = ParseStartup(bytes.substr(4, length - 4), error);
      fuzz::Check(startup.has_value() || !error.empty(), "ParseStartup failed without a reason");
      at = length;
    }
  }
  // The whole input as one body too: ReadCString and the Reader over arbitrary bytes.
  {
    size_t cursor = 0;
    while (cursor < bytes.size()) {
      const size_t before = cursor;
      if (!ReadCString(bytes, cursor)) break;
      fuzz::Check(cursor > before && cursor <= bytes.size(), "ReadCString did not advance");
    }
  }
  Session session;
  while (at + 5 <= bytes.size()) {
    const char type = bytes[at];
    const uint32_t length = ReadUint32(bytes, at + 1);
    if (length < 4 || length > kMaxMessageBytes || length > bytes.size() - at - 1) break;
    const std::string body(bytes.substr(at + 5, length - 4));
    Typed(session, type, body);
    at += 1 + length;
  }
  return 0;
}
