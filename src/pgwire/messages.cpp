#include "pgwire/messages.h"

namespace canopy::pgwire {

uint32_t ReadUint32(std::string_view bytes, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 3]));
}

std::optional<std::string> ReadCString(std::string_view body, size_t& at) {
  const size_t end = body.find('\0', at);
  if (end == std::string_view::npos) return std::nullopt;
  std::string text(body.substr(at, end - at));
  at = end + 1;
  return text;
}

std::optional<Startup> ParseStartup(std::string_view body, std::string& error) {
  if (body.size() < 4) {
    error = "a startup packet shorter than its code";
    return std::nullopt;
  }
  Startup startup;
  startup.code = ReadUint32(body, 0);
  if (startup.code == kCancelRequest) {
    if (body.size() != 12) {
      error = "a cancel request of the wrong length";
      return std::nullopt;
    }
    startup.cancel_pid = static_cast<int32_t>(ReadUint32(body, 4));
    startup.cancel_key = static_cast<int32_t>(ReadUint32(body, 8));
    return startup;
  }
  if (startup.code == kSslRequest || startup.code == kGssEncRequest) {
    if (body.size() != 4) {
      error = "an encryption request of the wrong length";
      return std::nullopt;
    }
    return startup;
  }
  if (startup.code >> 16 != 3) {
    error = "protocol version " + std::to_string(startup.code >> 16) + "." +
            std::to_string(startup.code & 0xffff) + " is not supported (3.0 is)";
    return std::nullopt;
  }
  // name\0value\0 … \0
  size_t at = 4;
  while (at < body.size() && body[at] != '\0') {
    auto name = ReadCString(body, at);
    auto value = name ? ReadCString(body, at) : std::nullopt;
    if (!value) {
      error = "a startup parameter without its end";
      return std::nullopt;
    }
    startup.parameters[*name] = *value;
  }
  if (at + 1 != body.size()) {
    error = "a startup packet that does not end where its length says";
    return std::nullopt;
  }
  return startup;
}

bool Reader::Need(size_t n) {
  if (failed_ || body_.size() - at_ < n) {
    failed_ = true;
    return false;
  }
  return true;
}

int16_t Reader::Int16() {
  if (!Need(2)) return 0;
  const auto value = static_cast<int16_t>((static_cast<unsigned char>(body_[at_]) << 8) |
                                          static_cast<unsigned char>(body_[at_ + 1]));
  at_ += 2;
  return value;
}

int32_t Reader::Int32() {
  if (!Need(4)) return 0;
  const auto value = static_cast<int32_t>(ReadUint32(body_, at_));
  at_ += 4;
  return value;
}

std::string Reader::CString() {
  if (failed_) return "";
  auto text = ReadCString(body_, at_);
  if (!text) failed_ = true;
  return text.value_or("");
}

std::string Reader::Bytes(size_t n) {
  if (!Need(n)) return "";
  std::string bytes(body_.substr(at_, n));
  at_ += n;
  return bytes;
}

void Writer::Begin(char type) {
  start_ = out_.size();
  out_ += type;
  out_.append(4, '\0');  // the length, set by End
}

void Writer::End() {
  const auto length = static_cast<uint32_t>(out_.size() - start_ - 1);
  for (int i = 0; i < 4; ++i) {
    out_[start_ + 1 + static_cast<size_t>(i)] = static_cast<char>((length >> (24 - 8 * i)) & 0xff);
  }
}

void Writer::CString(const std::string& text) {
  // A NUL inside would end the string early on the client's side: cut it there.
  out_.append(text, 0, text.find('\0'));
  out_ += '\0';
}

void Writer::Int32Message(char type, int32_t value) {
  Begin(type);
  Int32(value);
  End();
}

void Writer::AuthenticationSasl() {
  Begin('R');
  Int32(10);
  CString("SCRAM-SHA-256");
  out_.push_back('\0');  // the end of the list
  End();
}

void Writer::SaslMessage(int32_t code, const std::string& data) {
  Begin('R');
  Int32(code);
  out_.append(data);
  End();
}

void Writer::Empty(char type) {
  Begin(type);
  End();
}

void Writer::ParameterDescription(const std::vector<uint32_t>& type_oids) {
  Begin('t');
  Int16(static_cast<int16_t>(type_oids.size()));
  for (const uint32_t type : type_oids) Int32(static_cast<int32_t>(type));
  End();
}

void Writer::ParameterStatus(const std::string& name, const std::string& value) {
  Begin('S');
  CString(name);
  CString(value);
  End();
}

void Writer::BackendKeyData(int32_t pid, int32_t key) {
  Begin('K');
  Int32(pid);
  Int32(key);
  End();
}

void Writer::ReadyForQuery(char status) {
  Begin('Z');
  out_ += status;
  End();
}

void Writer::RowDescription(const std::vector<Field>& fields) {
  Begin('T');
  Int16(static_cast<int16_t>(fields.size()));
  for (const Field& field : fields) {
    CString(field.name);
    Int32(0);  // not a column of a table the client could name
    Int16(0);
    Int32(static_cast<int32_t>(field.type_oid));
    Int16(field.type_size);
    Int32(field.modifier);
    Int16(field.format);
  }
  End();
}

void Writer::CommandComplete(const std::string& tag) {
  Begin('C');
  CString(tag);
  End();
}

void Writer::EmptyQueryResponse() {
  Begin('I');
  End();
}

void Writer::Error(const std::string& sqlstate, const std::string& message, const std::string& hint,
                   bool notice) {
  Begin(notice ? 'N' : 'E');
  const char* severity = notice ? "NOTICE" : "ERROR";
  out_ += 'S';
  CString(severity);
  out_ += 'V';
  CString(severity);
  out_ += 'C';
  CString(sqlstate);
  out_ += 'M';
  CString(message);
  if (!hint.empty()) {
    out_ += 'H';
    CString(hint);
  }
  out_ += '\0';
  End();
}

}  // namespace canopy::pgwire
