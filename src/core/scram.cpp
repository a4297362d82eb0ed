#include "core/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>

#include "core/error.h"
#include "core/hash.h"

namespace canopy::scram {
namespace {

// The client and server keys of `password` (RFC 5802 §3): HMAC(SaltedPassword, "Client Key")
// and HMAC(SaltedPassword, "Server Key"), SaltedPassword being PBKDF2-HMAC-SHA-256.
struct Keys {
  std::string client;
  std::string server;
};
Keys KeysOf(std::string_view password, std::string_view salt, int iterations) {
  unsigned char salted[32];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof salted,
                        salted) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL: PBKDF2 failed");
  }
  const std::string_view salted_password(reinterpret_cast<const char*>(salted), sizeof salted);
  Keys keys{HmacSha256(salted_password, "Client Key"), HmacSha256(salted_password, "Server Key")};
  OPENSSL_cleanse(salted, sizeof salted);
  return keys;
}

// The attributes of a SCRAM message ("a=value,b=value"), in order; nullopt when one is not
// a letter, '=' and a value.
std::optional<std::vector<std::pair<char, std::string>>> Attributes(std::string_view message) {
  std::vector<std::pair<char, std::string>> out;
  size_t at = 0;
  while (at <= message.size()) {
    const size_t comma = std::min(message.find(',', at), message.size());
    const std::string_view part = message.substr(at, comma - at);
    if (part.size() < 2 || part[1] != '=' ||
        !((part[0] >= 'a' && part[0] <= 'z') || (part[0] >= 'A' && part[0] <= 'Z'))) {
      return std::nullopt;
    }
    out.emplace_back(part[0], std::string(part.substr(2)));
    at = comma + 1;
  }
  return out;
}

// A nonce is printable ASCII but ',' (RFC 5802 §7).
bool PrintableNonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (const char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

}  // namespace

Verifier MakeVerifier(std::string_view password, std::string_view salt, int iterations) {
  const Keys keys = KeysOf(password, salt, iterations);
  Verifier verifier;
  verifier.iterations = iterations;
  verifier.salt = std::string(salt);
  verifier.stored_key = Sha256Bytes(keys.client);
  verifier.server_key = keys.server;
  return verifier;
}

std::string Format(const Verifier& verifier) {
  return "SCRAM-SHA-256$" + std::to_string(verifier.iterations) + ":" + Base64(verifier.salt) +
         "$" + Base64(verifier.stored_key) + ":" + Base64(verifier.server_key);
}

std::optional<Verifier> Parse(std::string_view text) {
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (text.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  const size_t colon = text.find(':');
  const size_t dollar = text.find('$');
  const size_t second = dollar == std::string_view::npos ? dollar : text.find(':', dollar);
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar ||
      second == std::string_view::npos || colon == 0 || colon > 9) {
    return std::nullopt;
  }
  Verifier verifier;
  for (const char c : text.substr(0, colon)) {
    if (c < '0' || c > '9') return std::nullopt;
    verifier.iterations = verifier.iterations * 10 + (c - '0');
  }
  auto salt = FromBase64(text.substr(colon + 1, dollar - colon - 1));
  auto stored = FromBase64(text.substr(dollar + 1, second - dollar - 1));
  auto server = FromBase64(text.substr(second + 1));
  if (!salt || !stored || !server || stored->size() != 32 || server->size() != 32 ||
      verifier.iterations < 1) {
    return std::nullopt;
  }
  verifier.salt = std::move(*salt);
  verifier.stored_key = std::move(*stored);
  verifier.server_key = std::move(*server);
  return verifier;
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(length));
  return out;
}

std::optional<std::string> FromBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (const char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::string out(3 * text.size() / 4 + 1, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  if (length < 0) return std::nullopt;
  size_t size = static_cast<size_t>(length);
  // EVP_DecodeBlock counts the bytes the padding stands for.
  if (!text.empty() && text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

std::optional<ClientFinal> MakeClientFinal(std::string_view password,
                                           std::string_view client_first_bare,
                                           std::string_view server_first) {
  auto attributes = Attributes(server_first);
  if (!attributes || attributes->size() < 3 || (*attributes)[0].first != 'r' ||
      (*attributes)[1].first != 's' || (*attributes)[2].first != 'i') {
    return std::nullopt;
  }
  const auto salt = FromBase64((*attributes)[1].second);
  int iterations = 0;
  for (const char c : (*attributes)[2].second) {
    if (c < '0' || c > '9' || iterations > 10000000) return std::nullopt;
    iterations = iterations * 10 + (c - '0');
  }
  if (!salt || iterations < 1) return std::nullopt;
  const Keys keys = KeysOf(password, *salt, iterations);
  const std::string& client_key = keys.client;
  const std::string& server_key = keys.server;
  const std::string without_proof = "c=biws,r=" + (*attributes)[0].second;
  const std::string auth_message =
      std::string(client_first_bare) + "," + std::string(server_first) + "," + without_proof;
  const std::string signature = HmacSha256(Sha256Bytes(client_key), auth_message);
  std::string proof(client_key.size(), '\0');
  for (size_t b = 0; b < proof.size(); ++b) {
    proof[b] = static_cast<char>(client_key[b] ^ signature[b]);
  }
  return ClientFinal{without_proof + ",p=" + Base64(proof),
                     "v=" + Base64(HmacSha256(server_key, auth_message))};
}

bool ServerExchange::ClientFirst(std::string_view message) {
  // gs2-header: "n,," (no channel binding) or "y,," (the client could bind, thinks we
  // cannot); "p=…" asks for binding, which this server does not offer. No authzid.
  if (message.substr(0, 3) != "n,," && message.substr(0, 3) != "y,,") {
    error_ = message.substr(0, 2) == "p=" ? "channel binding is not offered by this server"
                                          : "malformed SCRAM client-first message";
    return false;
  }
  client_first_bare_ = std::string(message.substr(3));
  auto attributes = Attributes(client_first_bare_);
  // n= (the user name: PostgreSQL ignores it, the startup message's counts), r= (the nonce),
  // perhaps extensions after; a mandatory extension (m= first) is not one of these.
  if (!attributes || attributes->size() < 2 || (*attributes)[0].first != 'n' ||
      (*attributes)[1].first != 'r' || !PrintableNonce((*attributes)[1].second)) {
    error_ = "malformed SCRAM client-first message";
    return false;
  }
  client_nonce_ = (*attributes)[1].second;
  return true;
}

std::string ServerExchange::ServerFirst(std::string_view salt, int iterations,
                                        std::string_view server_nonce) {
  std::string ours(server_nonce);
  if (ours.empty()) {
    unsigned char random[18];
    if (RAND_bytes(random, sizeof random) != 1) {
      throw Error(ErrorCode::kInternal, "OpenSSL: no random bytes");
    }
    ours = Base64({reinterpret_cast<const char*>(random), sizeof random});
  }
  nonce_ = client_nonce_ + ours;
  server_first_ = "r=" + nonce_ + ",s=" + Base64(salt) + ",i=" + std::to_string(iterations);
  return server_first_;
}

std::optional<size_t> ServerExchange::ClientFinal(std::string_view message,
                                                  const std::vector<Verifier>& verifiers) {
  const size_t proof_at = message.rfind(",p=");
  auto attributes = Attributes(message);
  if (proof_at == std::string_view::npos || !attributes || attributes->size() < 3 ||
      (*attributes)[0].first != 'c' || (*attributes)[1].first != 'r' ||
      attributes->back().first != 'p') {
    error_ = "malformed SCRAM client-final message";
    return std::nullopt;
  }
  // c= is the gs2 header again, base64: "biws" for "n,,", "eSws" for "y,,".
  const std::string& binding = (*attributes)[0].second;
  if (binding != "biws" && binding != "eSws") {
    error_ = "SCRAM channel binding does not match";
    return std::nullopt;
  }
  if ((*attributes)[1].second != nonce_) {
    error_ = "SCRAM nonce does not match";
    return std::nullopt;
  }
  const auto proof = FromBase64(attributes->back().second);
  if (!proof || proof->size() != 32) {
    error_ = "malformed SCRAM proof";
    return std::nullopt;
  }
  final_without_proof_ = std::string(message.substr(0, proof_at));
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + final_without_proof_;
  for (size_t i = 0; i < verifiers.size(); ++i) {
    const std::string signature = HmacSha256(verifiers[i].stored_key, auth_message);
    std::string client_key(32, '\0');
    for (size_t b = 0; b < 32; ++b) client_key[b] = static_cast<char>((*proof)[b] ^ signature[b]);
    const std::string stored = Sha256Bytes(client_key);
    if (stored.size() == verifiers[i].stored_key.size() &&
        CRYPTO_memcmp(stored.data(), verifiers[i].stored_key.data(), stored.size()) == 0) {
      return i;
    }
  }
  error_ = "the proof matches no password";
  return std::nullopt;
}

std::string ServerExchange::ServerFinal(const Verifier& verifier) const {
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + final_without_proof_;
  return "v=" + Base64(HmacSha256(verifier.server_key, auth_message));
}

}  // namespace canopy::scram
