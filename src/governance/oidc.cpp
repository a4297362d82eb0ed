// The only file that includes the JWT library (cpp-jwt: header-only, heavy templates).
#include "governance/oidc.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <jwt/jwt.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/clock.h"
#include "core/error.h"
#include "core/http_client.h"

namespace canopy::governance {
namespace {

using nlohmann::json;

constexpr size_t kMaxTokenBytes = 16 * 1024;
constexpr size_t kMaxJwksBytes = 1 << 20;
constexpr int kFetchTimeoutMs = 5000;
constexpr auto kMaxKeyAge = std::chrono::hours(1);  // a URL's keys are fetched again after

// One usable key of the provider's JWKS.
struct Jwk {
  std::string algorithm;  // RS256 | ES256: what a token signed by it must say
  std::string pem;        // the public key, as the JWT library takes it
};

// RAII over the OpenSSL handles a JWK becomes.
struct FreeBn {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct FreeParamBld {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct FreeParams {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct FreePkeyCtx {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct FreePkey {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct FreeBio {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Bn = std::unique_ptr<BIGNUM, FreeBn>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, FreeParamBld>;
using Params = std::unique_ptr<OSSL_PARAM, FreeParams>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, FreePkeyCtx>;
using Pkey = std::unique_ptr<EVP_PKEY, FreePkey>;
using Bio = std::unique_ptr<BIO, FreeBio>;

std::string Base64UrlDecode(const json& value) {
  if (!value.is_string()) throw std::runtime_error("not base64url text");
  const auto& text = value.get_ref<const std::string&>();
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) throw std::runtime_error("not base64url text");
  }
  return jwt::base64_uri_decode(text.data(), text.size());
}

const unsigned char* Bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// A public key made from OSSL_PARAMs of `type` ("RSA" | "EC"), as PEM.
std::string PemFrom(const char* type, OSSL_PARAM_BLD* bld) {
  Params params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    throw std::runtime_error("OpenSSL refuses the key");
  }
  Pkey key(raw);
  if (std::string(type) == "RSA" && EVP_PKEY_get_bits(key.get()) < 2048) {
    throw std::runtime_error("an RSA key under 2048 bits");
  }
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    throw std::runtime_error("cannot write the key as PEM");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// A JWK (RFC 7517) of an RSA or P-256 signing key, as PEM; throws saying why not.
Jwk KeyFromJwk(const json& jwk) {
  const std::string kty = jwk.value("kty", "");
  if (jwk.contains("use") && jwk.at("use") != "sig") throw std::runtime_error("not a signing key");
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld) throw std::runtime_error("out of memory");
  Jwk key;
  if (kty == "RSA") {
    const std::string n = Base64UrlDecode(jwk.at("n"));
    const std::string e = Base64UrlDecode(jwk.at("e"));
    Bn bn_n(BN_bin2bn(Bytes(n), static_cast<int>(n.size()), nullptr));
    Bn bn_e(BN_bin2bn(Bytes(e), static_cast<int>(e.size()), nullptr));
    if (!bn_n || !bn_e ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
      throw std::runtime_error("bad RSA parameters");
    }
    key.algorithm = "RS256";
    key.pem = PemFrom("RSA", bld.get());
  } else if (kty == "EC") {
    if (jwk.value("crv", "") != "P-256") throw std::runtime_error("an EC key not on P-256");
    const std::string x = Base64UrlDecode(jwk.at("x"));
    const std::string y = Base64UrlDecode(jwk.at("y"));
    if (x.size() != 32 || y.size() != 32) throw std::runtime_error("bad P-256 coordinates");
    const std::string point = std::string(1, '\x04') + x + y;  // uncompressed
    static const char kGroup[] = "prime256v1";
    if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, kGroup, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1) {
      throw std::runtime_error("bad EC parameters");
    }
    key.algorithm = "ES256";
    key.pem = PemFrom("EC", bld.get());
  } else {
    throw std::runtime_error("key type '" + kty + "' (RSA and EC P-256 are taken)");
  }
  if (jwk.contains("alg") && jwk.at("alg") != key.algorithm) {
    throw std::runtime_error("alg " + jwk.at("alg").dump() + " for a key of type " + kty);
  }
  return key;
}

// The usable keys of a JWKS document by kid; keys without a kid or of other kinds are
// passed over (a JWKS may hold encryption keys). Throws when it is not a JWKS at all.
std::map<std::string, Jwk> ParseJwks(const std::string& text) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") ||
      !doc.at("keys").is_array()) {
    throw Error(ErrorCode::kFailed, "not a JWKS document (an object with a \"keys\" list)");
  }
  std::map<std::string, Jwk> keys;
  for (const json& jwk : doc.at("keys")) {
    if (!jwk.is_object() || !jwk.contains("kid") || !jwk.at("kid").is_string()) continue;
    try {
      keys[jwk.at("kid").get<std::string>()] = KeyFromJwk(jwk);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s oidc: JWKS key %s passed over: %s\n", NowIso8601().c_str(),
                   jwk.at("kid").dump().c_str(), e.what());
    }
  }
  return keys;
}

// Text from a token (a kid, a claim's type) fit for a log line: printable ASCII, short.
std::string Printable(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

std::string ReasonFor(const std::error_code& ec) {
  // RS256/ES256 report a signature that does not verify as the algorithm's error.
  if (ec == jwt::VerificationErrc::InvalidSignature || ec == jwt::AlgorithmErrc::VerificationErr) {
    return "bad signature";
  }
  if (ec == jwt::VerificationErrc::TokenExpired) return "expired";
  if (ec == jwt::VerificationErrc::ImmatureSignature) return "not yet valid";
  if (ec == jwt::VerificationErrc::InvalidAlgorithm) return "algorithm not accepted";
  if (ec == jwt::VerificationErrc::TypeConversionError) return "malformed claims";
  return "malformed: " + ec.message();
}

}  // namespace

bool LooksLikeJwt(std::string_view token) {
  size_t dots = 0;
  for (char c : token) {
    if (c == '.') {
      ++dots;
    } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_')) {
      return false;
    }
  }
  return dots == 2 && !token.empty() && token.front() != '.';
}

struct OidcVerifier::State {
  spec::OidcSettings settings;
  std::string jwks_path;  // absolute, for a jwks_file

  std::mutex mutex;
  std::map<std::string, Jwk> keys;
  std::string load_error;  // why the last read or fetch failed ("" when it did not)
  std::filesystem::file_time_type file_time{};
  uintmax_t file_size = 0;
  bool loaded = false;
  std::chrono::steady_clock::time_point fetched_at{};
  int64_t loads = 0;

  // Reads the file again when it changed. Under `mutex`.
  void RefreshFile() {
    std::error_code error;
    const auto time = std::filesystem::last_write_time(jwks_path, error);
    const auto size = error ? 0 : std::filesystem::file_size(jwks_path, error);
    if (error) {
      keys.clear();  // a provider's keys that are gone are not trusted any longer
      load_error = "cannot read " + settings.jwks_file + ": " + error.message();
      loaded = false;
      return;
    }
    if (loaded && time == file_time && size == file_size) return;
    std::ifstream in(jwks_path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    ++loads;
    try {
      keys = ParseJwks(text.str());
      load_error.clear();
    } catch (const std::exception& e) {
      keys.clear();
      load_error = settings.jwks_file + ": " + e.what();
    }
    file_time = time;
    file_size = size;
    loaded = true;
  }

  // Fetches the URL when never fetched, when `kid` is unknown and the last fetch is
  // older than jwks_refresh, or when the keys are older than kMaxKeyAge. Under `mutex`.
  void RefreshUrl(const std::string& kid) {
    const auto now = std::chrono::steady_clock::now();
    const bool unknown = keys.find(kid) == keys.end();
    const bool due =
        !loaded || now - fetched_at >= kMaxKeyAge ||
        (unknown && now - fetched_at >= std::chrono::seconds(settings.jwks_refresh_seconds));
    if (!due) return;
    fetched_at = now;
    loaded = true;
    ++loads;
    try {
      keys = ParseJwks(FetchUrl(settings.jwks_url, kFetchTimeoutMs, kMaxJwksBytes));
      load_error.clear();
    } catch (const std::exception& e) {  // the keys of the last good fetch stay until kMaxKeyAge
      load_error = "cannot fetch " + settings.jwks_url + ": " + e.what();
      std::fprintf(stderr, "%s oidc: %s\n", NowIso8601().c_str(), load_error.c_str());
      if (now - fetched_at >= kMaxKeyAge) keys.clear();
    }
  }

  // The key `kid` names, or nullopt with `reason`.
  std::optional<Jwk> Find(const std::string& kid, std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex);
    if (settings.jwks_url.empty()) {
      RefreshFile();
    } else {
      RefreshUrl(kid);
    }
    auto it = keys.find(kid);
    if (it != keys.end()) return it->second;
    reason = "unknown kid '" + Printable(kid) + "'";
    if (!load_error.empty()) reason += " (" + load_error + ")";
    return std::nullopt;
  }
};

OidcVerifier::OidcVerifier(spec::OidcSettings settings, std::string mesh_root)
    : state_(std::make_unique<State>()) {
  state_->settings = std::move(settings);
  if (!state_->settings.jwks_file.empty()) {
    state_->jwks_path =
        (std::filesystem::path(mesh_root) / state_->settings.jwks_file).lexically_normal();
  }
}

OidcVerifier::~OidcVerifier() = default;

int64_t OidcVerifier::jwks_loads() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->loads;
}

OidcVerdict OidcVerifier::Verify(const std::string& token) {
  OidcVerdict verdict;
  if (token.size() > kMaxTokenBytes || !LooksLikeJwt(token)) {
    verdict.reason = "malformed";
    return verdict;
  }
  const spec::OidcSettings& settings = state_->settings;
  try {
    // The header, unverified, only to choose the key and the one algorithm it allows.
    std::error_code ec;
    jwt::jwt_object unverified = jwt::decode(token, jwt::params::algorithms({"RS256", "ES256"}), ec,
                                             jwt::params::verify(false));
    if (ec) {
      verdict.reason = ReasonFor(ec);
      return verdict;
    }
    const json header = unverified.header().create_json_obj();
    const json alg = header.value("alg", json());
    // Exactly these two, case and all: "none", HS256 (a public key as an HMAC secret) and
    // anything else are refused before any key is looked at.
    if (alg != "RS256" && alg != "ES256") {
      verdict.reason = "algorithm " + Printable(alg.is_string() ? alg.get<std::string>() : "?") +
                       " not accepted (RS256 and ES256 are)";
      return verdict;
    }
    const std::string algorithm = alg.get<std::string>();
    if (!header.contains("kid") || !header.at("kid").is_string()) {
      verdict.reason = "no kid in the header";
      return verdict;
    }
    const std::string kid = header.at("kid").get<std::string>();
    auto key = state_->Find(kid, verdict.reason);
    if (!key) return verdict;
    if (key->algorithm != algorithm) {
      verdict.reason =
          "key '" + Printable(kid) + "' is for " + key->algorithm + ", the token says " + algorithm;
      return verdict;
    }
    // The signature (and the library's own exp/nbf check against the system clock).
    jwt::jwt_object verified =
        jwt::decode(token, jwt::params::algorithms({algorithm}), ec, jwt::params::secret(key->pem),
                    jwt::params::verify(true),
                    jwt::params::leeway(static_cast<uint32_t>(settings.leeway_seconds)));
    if (ec) {
      verdict.reason = ReasonFor(ec);
      return verdict;
    }
    // The claims, against Canopy's clock.
    const json claims = verified.payload().create_json_obj();
    const int64_t now = NowUnixSeconds();
    const json exp = claims.value("exp", json());
    if (!exp.is_number()) {
      verdict.reason = "no exp claim";
      return verdict;
    }
    if (now > exp.get<int64_t>() + settings.leeway_seconds) {
      verdict.reason = "expired";
      return verdict;
    }
    if (claims.contains("nbf")) {
      const json& nbf = claims.at("nbf");
      if (!nbf.is_number() || nbf.get<int64_t>() - settings.leeway_seconds > now) {
        verdict.reason = "not yet valid";
        return verdict;
      }
    }
    if (claims.value("iss", json()) != settings.issuer) {
      verdict.reason = "wrong issuer";
      return verdict;
    }
    const json aud = claims.value("aud", json());
    bool audience = aud == settings.audience;
    if (aud.is_array()) {
      for (const json& a : aud) audience = audience || a == settings.audience;
    }
    if (!audience) {
      verdict.reason = "wrong audience";
      return verdict;
    }
    const json user = claims.value(settings.user_claim, json());
    if (!user.is_string() || user.get<std::string>().empty()) {
      verdict.reason = "no " + settings.user_claim + " claim";
      return verdict;
    }
    OidcIdentity identity;
    identity.user = user.get<std::string>();
    identity.expires_at = exp.get<int64_t>();
    if (!settings.groups_claim.empty()) {
      const json groups = claims.value(settings.groups_claim, json());
      if (groups.is_string()) identity.groups.push_back(groups.get<std::string>());
      if (groups.is_array()) {
        for (const json& g : groups) {
          if (g.is_string()) identity.groups.push_back(g.get<std::string>());
        }
      }
    }
    verdict.identity = std::move(identity);
  } catch (const std::exception& e) {  // claims of the wrong JSON type, a bad header
    verdict.reason = "malformed";
  }
  return verdict;
}

std::shared_ptr<OidcVerifier> OidcVerifierFor(const spec::Mesh& mesh) {
  if (!mesh.auth.oidc) return nullptr;
  const spec::OidcSettings& s = *mesh.auth.oidc;
  std::string key;
  for (const std::string& part :
       {mesh.root, s.issuer, s.audience, s.jwks_file, s.jwks_url, s.user_claim, s.groups_claim,
        std::to_string(s.leeway_seconds), std::to_string(s.jwks_refresh_seconds)}) {
    key += std::to_string(part.size()) + ":" + part;
  }
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<OidcVerifier>> verifiers;
  std::lock_guard<std::mutex> lock(mutex);
  auto& verifier = verifiers[key];
  if (!verifier) verifier = std::make_shared<OidcVerifier>(s, mesh.root);
  return verifier;
}

std::string FetchUrl(const std::string& url, int timeout_ms, size_t max_bytes) {
  HttpCall call;
  call.url = url;
  call.accept = "application/json";
  call.timeout_ms = timeout_ms;
  call.max_bytes = max_bytes;
  HttpAnswer answer = HttpExchange(call);
  if (answer.status != 200) {
    throw Error(ErrorCode::kFailed, "the server answered HTTP " + std::to_string(answer.status));
  }
  return std::move(answer.body);
}

}  // namespace canopy::governance
