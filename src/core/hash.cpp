#include "core/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>
#include <vector>

#include "core/error.h"

namespace canopy {
namespace {

std::string ToHex(const unsigned char* data, size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0xf];
  }
  return out;
}

}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
};

Sha256::Sha256() : impl_(new Impl) {
  if (impl_->context == nullptr || EVP_DigestInit_ex(impl_->context, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(impl_->context);
    delete impl_;
    throw Error(ErrorCode::kInternal, "OpenSSL: cannot start SHA-256");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(impl_->context);
  delete impl_;
}

Sha256& Sha256::Add(std::string_view part) {
  const std::string length = std::to_string(part.size()) + ":";
  EVP_DigestUpdate(impl_->context, length.data(), length.size());
  EVP_DigestUpdate(impl_->context, part.data(), part.size());
  return *this;
}

std::string Sha256::HexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(impl_->context, digest, &size);
  return ToHex(digest, size);
}

std::string Sha256Bytes(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL: SHA-256 failed");
  }
  return {reinterpret_cast<const char*>(digest), size};
}

std::string Sha256Hex(std::string_view bytes) {
  const std::string digest = Sha256Bytes(bytes);
  return ToHex(reinterpret_cast<const unsigned char*>(digest.data()), digest.size());
}

std::string Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kFailed, "cannot read " + path + " to checksum it");
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    EVP_DigestUpdate(context, buffer.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(context, digest, &size);
  EVP_MD_CTX_free(context);
  return ToHex(digest, size);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t length = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof out,
                &length) == nullptr) {
    throw Error(ErrorCode::kInternal, "OpenSSL: HMAC-SHA-256 failed");
  }
  return {reinterpret_cast<const char*>(out), length};
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  const std::string mac = HmacSha256(key, data);
  return ToHex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

std::string RandomHex(int bytes) {
  std::vector<unsigned char> buffer(static_cast<size_t>(bytes));
  if (RAND_bytes(buffer.data(), bytes) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL: no random bytes");
  }
  return ToHex(buffer.data(), buffer.size());
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace canopy
