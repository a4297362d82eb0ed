// The PostgreSQL v3 frontend/backend protocol's bytes: reading what a client sends
// (the startup packet, then typed messages) and writing what a server answers. Pure
// functions over buffers, so they are tested (and fuzzed) without a socket.
//
// Every integer on the wire is big-endian. A typed message is one type byte, then an
// Int32 length that counts itself and the body, then the body.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canopy::pgwire {

// The largest message a client may send (a query's text, a startup packet); past it the
// connection ends with a protocol violation, as an HTTP body past its limit gets 413.
inline constexpr uint32_t kMaxMessageBytes = 1u << 20;
inline constexpr uint32_t kMaxStartupBytes = 10000;

// Codes a startup packet starts with.
inline constexpr uint32_t kProtocol3 = 196608;  // 3.0
inline constexpr uint32_t kSslRequest = 80877103;
inline constexpr uint32_t kGssEncRequest = 80877104;
inline constexpr uint32_t kCancelRequest = 80877102;

uint32_t ReadUint32(std::string_view bytes, size_t at);

// The startup packet's body (after its length): the code and, for a StartupMessage,
// its parameters (user, database, application_name, options…).
struct Startup {
  uint32_t code = 0;
  std::map<std::string, std::string> parameters;
  int32_t cancel_pid = 0;  // CancelRequest
  int32_t cancel_key = 0;
};

// Parses a startup packet's body; nullopt with `error` set when it is malformed.
std::optional<Startup> ParseStartup(std::string_view body, std::string& error);

// A typed message from the client.
struct Message {
  char type = 0;
  std::string body;
};

// The null-terminated string at `at` in `body`; advances `at` past its terminator.
// nullopt when there is no terminator.
std::optional<std::string> ReadCString(std::string_view body, size_t& at);

// Reads a message's body in order; a read past its end yields zeros and sets failed().
class Reader {
 public:
  explicit Reader(std::string_view body) : body_(body) {}
  int16_t Int16();
  int32_t Int32();
  std::string CString();
  std::string Bytes(size_t n);
  bool failed() const { return failed_; }
  bool at_end() const { return at_ == body_.size(); }

 private:
  bool Need(size_t n);
  std::string_view body_;
  size_t at_ = 0;
  bool failed_ = false;
};

// What a server writes, appended to one buffer that is sent whole.
class Writer {
 public:
  void AuthenticationOk() { Int32Message('R', 0); }
  void AuthenticationCleartextPassword() { Int32Message('R', 3); }
  // SCRAM-SHA-256: the mechanism offered, then the server's two messages.
  void AuthenticationSasl();
  void AuthenticationSaslContinue(const std::string& data) { SaslMessage(11, data); }
  void AuthenticationSaslFinal(const std::string& data) { SaslMessage(12, data); }
  void ParameterStatus(const std::string& name, const std::string& value);
  void BackendKeyData(int32_t pid, int32_t key);
  // 'I' idle, 'T' in a transaction block, 'E' in a failed one.
  void ReadyForQuery(char status);
  struct Field {
    std::string name;
    uint32_t type_oid = 25;
    int16_t type_size = -1;
    int16_t format = 0;     // 0 text, 1 binary
    int32_t modifier = -1;  // the type's modifier (numeric's precision and scale); -1 none
  };
  void RowDescription(const std::vector<Field>& fields);
  // A DataRow, a value at a time, without copies: BeginRow, then Value or Null for each
  // (in the format its field was described with), then EndRow.
  void BeginRow(int16_t count) {
    Begin('D');
    Int16(count);
  }
  void Value(std::string_view bytes) {
    Int32(static_cast<int32_t>(bytes.size()));
    out_.append(bytes);
  }
  // A value whose bytes `write(std::string& out)` appends to `out`.
  template <typename Write>
  void ValueBy(Write&& write) {
    const size_t at = out_.size();
    out_.append(4, '\0');
    write(out_);
    const auto length = static_cast<uint32_t>(out_.size() - at - 4);
    for (size_t i = 0; i < 4; ++i) out_[at + i] = static_cast<char>(length >> (24 - 8 * i));
  }
  void Null() { Int32(-1); }
  void EndRow() { End(); }
  void CommandComplete(const std::string& tag);
  // The extended protocol's acknowledgements.
  void ParseComplete() { Empty('1'); }
  void BindComplete() { Empty('2'); }
  void CloseComplete() { Empty('3'); }
  void NoData() { Empty('n'); }
  void PortalSuspended() { Empty('s'); }
  void ParameterDescription(const std::vector<uint32_t>& type_oids);
  void EmptyQueryResponse();
  // An ErrorResponse (or, with `notice`, a NoticeResponse): severity, SQLSTATE,
  // message and, when given, a hint.
  void Error(const std::string& sqlstate, const std::string& message, const std::string& hint = "",
             bool notice = false);

  const std::string& bytes() const { return out_; }
  size_t size() const { return out_.size(); }
  void Clear() { out_.clear(); }
  // Back to `size` bytes (a message begun and abandoned).
  void Truncate(size_t size) { out_.resize(std::min(size, out_.size())); }

 private:
  void Begin(char type);
  void End();
  void Int16(int16_t value) {
    const auto v = static_cast<uint16_t>(value);
    const char bytes[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    out_.append(bytes, sizeof bytes);
  }
  void Int32(int32_t value) {
    const auto v = static_cast<uint32_t>(value);
    const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                           static_cast<char>(v >> 8), static_cast<char>(v)};
    out_.append(bytes, sizeof bytes);
  }
  void CString(const std::string& text);
  void SaslMessage(int32_t code, const std::string& data);
  void Int32Message(char type, int32_t value);
  void Empty(char type);

  std::string out_;
  size_t start_ = 0;  // where the message being written begins
};

}  // namespace canopy::pgwire
