// Hashing and identifiers (OpenSSL underneath).
#pragma once

#include <string>
#include <string_view>

namespace canopy {

// SHA-256 of bytes, lowercase hex.
std::string Sha256Hex(std::string_view bytes);

// SHA-256 of a file's content, streamed; throws Error(kFailed) if it cannot be read.
std::string Sha256File(const std::string& path);

// Incremental SHA-256 for fingerprints made of many parts.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Adds one part; parts are length-prefixed so ("ab","c") != ("a","bc").
  Sha256& Add(std::string_view part);
  std::string HexDigest();

 private:
  struct Impl;
  Impl* impl_;
};

// HMAC-SHA-256 of `data` under `key`, lowercase hex.
std::string HmacSha256Hex(std::string_view key, std::string_view data);
// The same two as raw bytes (32 of them).
std::string HmacSha256(std::string_view key, std::string_view data);
std::string Sha256Bytes(std::string_view bytes);

// `bytes` cryptographically random bytes, as lowercase hex (2*bytes characters).
std::string RandomHex(int bytes);

// Constant-time comparison of two strings of equal length.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace canopy
