// Identity from the company's provider (OIDC JWTs) and the expiry of Canopy's own tokens,
// through the REST API as a client meets them. Every key is made here with OpenSSL, and
// tokens are signed here with OpenSSL directly (not with the JWT library under test).
#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/clock.h"
#include "governance/oidc.h"
#include "pgwire/pgwire.h"
#include "unit/api_fixture.h"
#include "unit/cli_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kIssuer = "https://idp.example.test/realms/acme";
constexpr const char* kAudience = "canopy";

std::string Base64Url(const std::string& bytes) {
  static const char* const kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    const uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::string BnBytes(const BIGNUM* bn) {
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

// A signing key of the test's provider, with its JWK.
struct TestKey {
  std::string kid;
  std::string alg;  // RS256 | ES256
  std::shared_ptr<EVP_PKEY> pkey;

  static TestKey Rsa(const std::string& kid) {
    return {kid, "RS256", std::shared_ptr<EVP_PKEY>(EVP_RSA_gen(2048), EVP_PKEY_free)};
  }
  static TestKey Ec(const std::string& kid) {
    return {kid, "ES256", std::shared_ptr<EVP_PKEY>(EVP_EC_gen("P-256"), EVP_PKEY_free)};
  }

  json Jwk() const {
    if (alg == "RS256") {
      BIGNUM* n = nullptr;
      BIGNUM* e = nullptr;
      EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N, &n);
      EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E, &e);
      json jwk = {{"kty", "RSA"},
                  {"kid", kid},
                  {"use", "sig"},
                  {"alg", "RS256"},
                  {"n", Base64Url(BnBytes(n))},
                  {"e", Base64Url(BnBytes(e))}};
      BN_free(n);
      BN_free(e);
      return jwk;
    }
    unsigned char point[65];
    size_t size = 0;
    EVP_PKEY_get_octet_string_param(pkey.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
                                    &size);
    EXPECT_EQ(size, 65u);
    const std::string bytes(reinterpret_cast<char*>(point), size);
    return {{"kty", "EC"},
            {"kid", kid},
            {"crv", "P-256"},
            {"x", Base64Url(bytes.substr(1, 32))},
            {"y", Base64Url(bytes.substr(33, 32))}};
  }

  std::string PublicPem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(size));
    BIO_free(bio);
    return pem;
  }

  // The JWS signature of `input` (ES256: r || s, 32 bytes each, as JOSE writes it).
  std::string Sign(const std::string& input) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey.get());
    size_t size = 0;
    EVP_DigestSign(ctx, nullptr, &size, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string signature(size, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &size,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    signature.resize(size);
    EVP_MD_CTX_free(ctx);
    if (alg == "RS256") return signature;
    const unsigned char* der = reinterpret_cast<const unsigned char*>(signature.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(signature.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(sig);
    return raw;
  }
};

std::string Jwks(const std::vector<TestKey>& keys) {
  json out = {{"keys", json::array()}};
  for (const auto& key : keys) out["keys"].push_back(key.Jwk());
  return out.dump();
}

// Claims that pass: this issuer and audience, valid for the next hour.
json GoodClaims(const std::string& user) {
  const int64_t now = canopy::NowUnixSeconds();
  return {{"iss", kIssuer},      {"aud", json::array({"account", kAudience})},
          {"sub", "id-" + user}, {"preferred_username", user},
          {"iat", now},          {"nbf", now - 5},
          {"exp", now + 3600}};
}

std::string Token(const TestKey& key, const json& claims, json header = json::object()) {
  if (!header.contains("alg")) header["alg"] = key.alg;
  if (!header.contains("kid")) header["kid"] = key.kid;
  header["typ"] = "JWT";
  const std::string input = Base64Url(header.dump()) + "." + Base64Url(claims.dump());
  return input + "." + Base64Url(key.Sign(input));
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A JWKS server on 127.0.0.1 (a port of its own), counting the requests it answers.
class JwksServer {
 public:
  JwksServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listener_, 8);
    socklen_t length = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~JwksServer() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/jwks.json"; }
  void set_body(std::string body) {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = std::move(body);
  }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(client, buffer, sizeof buffer);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      std::string body;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        body = body_;
      }
      ++requests_;
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      (void)!::write(client, response.data(), response.size());
      ::close(client);
    }
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::string body_ = R"({"keys":[]})";
};

class ApiOidcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rsa_ = TestKey::Rsa("rsa-1");
    ec_ = TestKey::Ec("ec-1");
    const std::string jwks = Jwks({rsa_, ec_});
    canopy::test::MakeGovernanceMeshApi(env_, "canopy-oidc-", [&](const fs::path& mesh) {
      WriteFile(mesh / "keys/jwks.json", jwks);
      std::ofstream(mesh / "mesh.yaml", std::ios::app)
          << "auth:\n  oidc:\n    issuer: " << kIssuer << "\n    audience: " << kAudience
          << "\n    jwks_file: keys/jwks.json\n    groups_claim: groups\n    leeway: 30s\n";
    });
    ASSERT_TRUE(env_);
    ASSERT_TRUE(env_->meshes->Current()->auth.oidc);
  }
  void TearDown() override { canopy::SetClockOffsetForTesting(0); }

  canopy::server::HttpResponse Call(const std::string& method, const std::string& path,
                                    const std::string& token, const std::string& body = "") {
    canopy::server::HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.authorization = "Bearer " + token;
    auto response = env_->api->Handle(request);
    if (response.stream) {
      response.stream([&](std::string_view piece) {
        response.body.append(piece);
        return true;
      });
    }
    return response;
  }

  std::vector<canopy::catalog::AuditEntry> AuditAfter(int64_t seq) {
    return env_->catalog->Audit(seq, 1000);
  }
  int64_t LastSeq() {
    auto all = env_->catalog->Audit(0, 1'000'000);
    return all.empty() ? 0 : all.back().seq;
  }

  std::unique_ptr<canopy::test::GovernanceMeshApi> env_;
  TestKey rsa_;
  TestKey ec_;
};

const std::string kCountCustomers = R"({"sql": "select count(*) from crm.customers"})";

TEST_F(ApiOidcTest, ValidRs256AndEs256TokensActAsTheNamedUserWithTheirGrants) {
  // dana (analysts, who hold a grant on crm.customers) by RS256; zoe (no grants) by ES256.
  const std::string dana = Token(rsa_, GoodClaims("dana"));
  const std::string zoe = Token(ec_, GoodClaims("zoe"));
  auto me = Call("GET", "/api/v1/me", dana);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(json::parse(me.body)["principal"], "user:dana");
  EXPECT_EQ(me.principal, "user:dana");
  EXPECT_EQ(Call("POST", "/api/v1/query", dana, kCountCustomers).status, 200);
  auto zoe_me = Call("GET", "/api/v1/me", zoe);
  ASSERT_EQ(zoe_me.status, 200) << zoe_me.body;
  EXPECT_EQ(json::parse(zoe_me.body)["principal"], "user:zoe");
  EXPECT_EQ(Call("POST", "/api/v1/query", zoe, kCountCustomers).status, 403);
  // A kept answer (GET /me again) is as right as the first.
  EXPECT_EQ(json::parse(Call("GET", "/api/v1/me", dana).body)["principal"], "user:dana");
}

TEST_F(ApiOidcTest, GroupsFromTheProviderCountButNeverMakeAnAdmin) {
  json claims = GoodClaims("zoe");
  claims["groups"] = {"analysts", "platform", "no-such-group"};
  const std::string zoe = Token(rsa_, claims);
  auto me = json::parse(Call("GET", "/api/v1/me", zoe).body);
  EXPECT_EQ(me["groups"], json::array({"analysts"}));
  EXPECT_EQ(me["admin"], false);  // platform is an admin group: mesh.yaml alone makes admins
  EXPECT_EQ(Call("POST", "/api/v1/query", zoe, kCountCustomers).status, 200);
  // The same user without the group: her answers are not the group's kept ones.
  const std::string plain = Token(rsa_, GoodClaims("zoe"));
  EXPECT_EQ(json::parse(Call("GET", "/api/v1/me", plain).body)["groups"], json::array());
  EXPECT_EQ(Call("POST", "/api/v1/query", plain, kCountCustomers).status, 403);
}

TEST_F(ApiOidcTest, OnlyTheValidTokenIsAcceptedEveryOtherIsRefusedAndAudited) {
  const int64_t now = canopy::NowUnixSeconds();
  const TestKey stranger = TestKey::Rsa("rsa-1");  // the provider's kid, another key
  const TestKey unknown = TestKey::Rsa("rsa-9");
  auto with = [&](json patch) {
    json claims = GoodClaims("dana");
    claims.merge_patch(patch);
    return claims;
  };
  std::string tampered = Token(rsa_, GoodClaims("dana"));
  {  // the payload changed after signing: another user
    const auto first = tampered.find('.');
    const auto second = tampered.find('.', first + 1);
    tampered = tampered.substr(0, first + 1) + Base64Url(GoodClaims("erin").dump()) +
               tampered.substr(second);
  }
  const std::string none_header = Base64Url(R"({"alg":"none","typ":"JWT","kid":"rsa-1"})");
  const std::string alg_none = none_header + "." + Base64Url(GoodClaims("dana").dump()) + ".";
  const std::string alg_none_signed =
      none_header + "." + Base64Url(GoodClaims("dana").dump()) + "." + Base64Url("x");
  // HS256 keyed with the provider's public key, as the PEM a library would load.
  std::string hs256;
  {
    const std::string pem = rsa_.PublicPem();
    const std::string input = Base64Url(R"({"alg":"HS256","typ":"JWT","kid":"rsa-1"})") + "." +
                              Base64Url(GoodClaims("dana").dump());
    unsigned char mac[32];
    unsigned int size = 0;
    HMAC(EVP_sha256(), pem.data(), static_cast<int>(pem.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
    hs256 = input + "." + Base64Url(std::string(reinterpret_cast<char*>(mac), size));
  }
  json no_exp = GoodClaims("dana");
  no_exp.erase("exp");

  const std::vector<std::pair<std::string, std::pair<std::string, std::string>>> cases = {
      {"expired", {Token(rsa_, with({{"exp", now - 120}})), "expired"}},
      {"not yet valid", {Token(rsa_, with({{"nbf", now + 600}})), "not yet valid"}},
      {"wrong audience", {Token(rsa_, with({{"aud", "someone-else"}})), "wrong audience"}},
      {"wrong issuer", {Token(rsa_, with({{"iss", "https://evil.example"}})), "wrong issuer"}},
      {"unknown kid", {Token(unknown, GoodClaims("dana")), "unknown kid 'rsa-9'"}},
      {"another key, same kid", {Token(stranger, GoodClaims("dana")), "bad signature"}},
      {"tampered payload", {tampered, "bad signature"}},
      {"alg none", {alg_none, "algorithm none not accepted"}},
      {"alg none, signed", {alg_none_signed, "algorithm none not accepted"}},
      {"HS256 with the public key", {hs256, "algorithm HS256 not accepted"}},
      {"RS256 naming the EC key",
       {Token(rsa_, GoodClaims("dana"), {{"kid", "ec-1"}}), "key 'ec-1' is for ES256"}},
      {"no exp", {Token(rsa_, no_exp), "no exp claim"}},
      {"user not in the mesh", {Token(rsa_, GoodClaims("mallory")), "not declared"}},
  };
  // The one valid token is accepted.
  ASSERT_EQ(Call("GET", "/api/v1/me", Token(rsa_, GoodClaims("dana"))).status, 200);
  for (const auto& [name, token_and_reason] : cases) {
    const auto& [token, reason] = token_and_reason;
    const int64_t before = LastSeq();
    auto response = Call("GET", "/api/v1/me", token);
    EXPECT_EQ(response.status, 401) << name << ": " << response.body;
    EXPECT_EQ(json::parse(response.body)["error"]["code"], "unauthenticated") << name;
    auto entries = AuditAfter(before);
    ASSERT_EQ(entries.size(), 1u) << name;
    EXPECT_EQ(entries[0].action, "auth") << name;
    EXPECT_EQ(entries[0].outcome, "denied") << name;
    const json details = json::parse(entries[0].details);
    EXPECT_NE(details["reason"].get<std::string>().find(reason), std::string::npos)
        << name << ": " << entries[0].details;
    const std::string signature = token.substr(token.rfind('.') + 1);
    if (signature.size() >= 16) {
      EXPECT_EQ(entries[0].details.find(signature.substr(0, 16)), std::string::npos)
          << name << ": the token itself is never audited";
    }
    // The query endpoint refuses it just the same.
    EXPECT_EQ(Call("POST", "/api/v1/query", token, kCountCustomers).status, 401) << name;
  }
}

TEST_F(ApiOidcTest, AnExpiredTokenStopsWorkingEvenWhileItsAnswersAreKept) {
  const std::string dana = Token(rsa_, GoodClaims("dana"));  // exp in an hour
  ASSERT_EQ(Call("GET", "/api/v1/me", dana).status, 200);
  ASSERT_EQ(Call("GET", "/api/v1/me", dana).status, 200);  // a kept answer
  canopy::SetClockOffsetForTesting(3600 + 31);             // past exp and the 30 s leeway
  auto late = Call("GET", "/api/v1/me", dana);
  EXPECT_EQ(late.status, 401) << late.body;
  EXPECT_NE(late.body.find("expired"), std::string::npos) << late.body;
  canopy::SetClockOffsetForTesting(3600 + 20);  // within the leeway: still taken
  EXPECT_EQ(Call("GET", "/api/v1/me", dana).status, 200);
}

// Over PostgreSQL's wire the token is the password, checked at login and again before every
// statement: a provider's token that expires while its session is open ends the session at
// the next statement, with the reason.
TEST_F(ApiOidcTest, AnOidcTokenExpiringDuringAWireSessionEndsItAtTheNextStatement) {
  canopy::catalog::CatalogStore* store = env_->catalog.get();
  canopy::pgwire::PgOptions options;
  options.listen = "127.0.0.1:0";
  options.version = "test";
  canopy::pgwire::PgListener listener(
      env_->meshes,
      [store] { return std::shared_ptr<canopy::catalog::CatalogStore>(store, [](auto*) {}); },
      options);
  listener.Start();
  const std::string dana = Token(rsa_, GoodClaims("dana"));  // exp in an hour
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(listener.port()) +
                               " user=dana dbname=mesh sslmode=disable password=" + dana;
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* first = PQexec(conn, "select count(*) from crm.customers");
  EXPECT_EQ(PQresultStatus(first), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  PQclear(first);
  canopy::SetClockOffsetForTesting(3600 + 31);  // past exp and the 30 s leeway
  // Results read one by one: the ErrorResponse, then the connection's end.
  ASSERT_EQ(PQsendQuery(conn, "select count(*) from crm.customers"), 1);
  std::string states;
  while (PGresult* late = PQgetResult(conn)) {
    EXPECT_NE(PQresultStatus(late), PGRES_TUPLES_OK);
    const char* state = PQresultErrorField(late, PG_DIAG_SQLSTATE);
    if (state != nullptr) states += std::string(state) + " ";
    PQclear(late);
  }
  const std::string said = PQerrorMessage(conn);
  EXPECT_NE(said.find("expired"), std::string::npos) << said;
  EXPECT_EQ(states, "28000 ") << said;
  EXPECT_EQ(PQstatus(conn), CONNECTION_BAD) << "the session ends";
  PQfinish(conn);
  listener.Stop();
}

TEST_F(ApiOidcTest, KeysRotateByKidInTheJwksFile) {
  const TestKey next = TestKey::Rsa("rsa-2");
  const std::string old_token = Token(rsa_, GoodClaims("dana"));
  const std::string new_token = Token(next, GoodClaims("dana"));
  EXPECT_EQ(Call("GET", "/api/v1/me", old_token).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/me", new_token).status, 401);  // not published yet
  // The provider rotates: the new key in, the old one gone.
  const fs::path file = env_->dir / "mesh/keys/jwks.json";
  const auto written = fs::last_write_time(file);
  WriteFile(file, Jwks({next, ec_}));
  fs::last_write_time(file, written + std::chrono::seconds(2));
  EXPECT_EQ(Call("GET", "/api/v1/me", new_token).status, 200);
  auto old = Call("GET", "/api/v1/me", old_token);
  EXPECT_EQ(old.status, 401);
  EXPECT_NE(old.body.find("unknown kid 'rsa-1'"), std::string::npos) << old.body;
}

TEST_F(ApiOidcTest, AMeshWithoutOidcRefusesJwts) {
  canopy::spec::Mesh plain = *env_->meshes->Current();
  plain.auth.oidc.reset();
  auto auth =
      canopy::governance::Authenticate(*env_->catalog, plain, Token(rsa_, GoodClaims("dana")));
  EXPECT_FALSE(auth.accepted());
  EXPECT_NE(auth.reason.find("takes no OIDC tokens"), std::string::npos) << auth.reason;
}

TEST(OidcJwksUrl, UnknownKidRefetchesAtMostOncePerRefreshAndRotates) {
  JwksServer server;
  const TestKey first = TestKey::Rsa("k1");
  const TestKey second = TestKey::Ec("k2");
  server.set_body(Jwks({first}));
  canopy::spec::OidcSettings settings;
  settings.issuer = kIssuer;
  settings.audience = kAudience;
  settings.jwks_url = server.url();
  settings.jwks_refresh_seconds = 3600;
  canopy::governance::OidcVerifier slow(settings, "/");
  EXPECT_TRUE(slow.Verify(Token(first, GoodClaims("dana"))).identity);
  EXPECT_TRUE(slow.Verify(Token(first, GoodClaims("dana"))).identity);
  EXPECT_EQ(server.requests(), 1);  // kept
  // An unknown kid right after a fetch: no new fetch (a flood of made-up kids costs nothing).
  auto unknown = slow.Verify(Token(second, GoodClaims("dana")));
  EXPECT_FALSE(unknown.identity);
  EXPECT_NE(unknown.reason.find("unknown kid 'k2'"), std::string::npos) << unknown.reason;
  EXPECT_EQ(server.requests(), 1);

  // With no wait between fetches, rotation is picked up at the first token of the new key.
  settings.jwks_refresh_seconds = 0;
  canopy::governance::OidcVerifier quick(settings, "/");
  EXPECT_TRUE(quick.Verify(Token(first, GoodClaims("dana"))).identity);
  const int before = server.requests();
  server.set_body(Jwks({second}));  // rotated: k1 gone
  auto rotated = quick.Verify(Token(second, GoodClaims("dana")));
  EXPECT_TRUE(rotated.identity) << rotated.reason;
  EXPECT_EQ(server.requests(), before + 1);
  auto gone = quick.Verify(Token(first, GoodClaims("dana")));
  EXPECT_FALSE(gone.identity);
  EXPECT_NE(gone.reason.find("unknown kid 'k1'"), std::string::npos) << gone.reason;
}

TEST(OidcJwksUrl, AnUnreachableProviderRefusesWithTheReason) {
  canopy::spec::OidcSettings settings;
  settings.issuer = kIssuer;
  settings.audience = kAudience;
  settings.jwks_url = "http://127.0.0.1:1/jwks.json";  // nothing listens there
  canopy::governance::OidcVerifier verifier(settings, "/");
  auto verdict = verifier.Verify(Token(TestKey::Rsa("k1"), GoodClaims("dana")));
  EXPECT_FALSE(verdict.identity);
  EXPECT_NE(verdict.reason.find("cannot fetch"), std::string::npos) << verdict.reason;
}

// --- Canopy's own tokens expire ----------------------------------------------------

class ApiTokenExpiryTest : public ::testing::Test {
 protected:
  void SetUp() override { canopy::test::MakeGovernanceMeshApi(env_, "canopy-expiry-"); }
  void TearDown() override { canopy::SetClockOffsetForTesting(0); }
  int Status(const std::string& token) {
    canopy::server::HttpRequest request{"GET", "/api/v1/me", {}, "", "Bearer " + token, ""};
    return env_->api->Handle(request).status;
  }
  std::unique_ptr<canopy::test::GovernanceMeshApi> env_;
};

TEST_F(ApiTokenExpiryTest, AnExpiredTokenIsRefusedOverRestAndAudited) {
  auto issued = canopy::governance::IssueToken(*env_->catalog, "dana", 3600);
  EXPECT_FALSE(issued.expires_at.empty());
  auto forever = canopy::governance::IssueToken(*env_->catalog, "dana");
  EXPECT_TRUE(forever.expires_at.empty());
  EXPECT_EQ(Status(issued.token), 200);
  EXPECT_EQ(Status(issued.token), 200);  // kept
  canopy::SetClockOffsetForTesting(3600);
  canopy::server::HttpRequest request{"GET", "/api/v1/me", {}, "", "Bearer " + issued.token, ""};
  auto response = env_->api->Handle(request);
  EXPECT_EQ(response.status, 401);
  EXPECT_NE(response.body.find("expired"), std::string::npos) << response.body;
  EXPECT_EQ(Status(forever.token), 200);
  auto audit = env_->catalog->Audit(0, 1'000'000);
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit.back().action, "auth");
  EXPECT_NE(audit.back().details.find(R"("reason":"expired")"), std::string::npos)
      << audit.back().details;
  // The record keeps the expiry, as ISO 8601.
  auto record = env_->catalog->GetToken(issued.id);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->expires_at, issued.expires_at);
}

TEST(TokenExpiryParsing, DurationsInSecondsMinutesHoursAndDays) {
  EXPECT_EQ(canopy::ParseDurationSeconds("45s"), 45);
  EXPECT_EQ(canopy::ParseDurationSeconds("30m"), 1800);
  EXPECT_EQ(canopy::ParseDurationSeconds("12h"), 43200);
  EXPECT_EQ(canopy::ParseDurationSeconds("30d"), 2592000);
  for (const char* bad :
       {"", "d", "30", "30x", "-1d", "0d", "1.5h", "30 d", " 30d", "99999999999d"}) {
    EXPECT_FALSE(canopy::ParseDurationSeconds(bad)) << bad;
  }
  EXPECT_EQ(canopy::IsoFromUnixSeconds(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(canopy::UnixSecondsFromIso("2026-12-07T02:30:00.000Z"), 1796610600);
}

// --- https: the one HTTP client (core/http_client.h) fetching a JWKS ---

// OpenSSL's own test server (`openssl s_server -WWW`, serving files of `folder` over TLS with
// `cert`), on a free loopback port; stopped when this ends.
class TlsFileServer {
 public:
  TlsFileServer(const fs::path& folder, const fs::path& cert, const fs::path& key) {
    port_ = canopy::test::FreePort();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
      if (::chdir(folder.c_str()) != 0) ::_exit(127);
      const std::string accept = "127.0.0.1:" + std::to_string(port_);
      ::execlp("openssl", "openssl", "s_server", "-quiet", "-WWW", "-accept", accept.c_str(),
               "-cert", cert.c_str(), "-key", key.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Ready once it takes a connection (at most 10 s).
    for (int i = 0; i < 200 && !ready_; ++i) {
      const int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address.sin_port = htons(static_cast<uint16_t>(port_));
      ready_ = ::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
      ::close(s);
      if (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~TlsFileServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  TlsFileServer(const TlsFileServer&) = delete;
  TlsFileServer& operator=(const TlsFileServer&) = delete;
  bool ready() const { return ready_; }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  bool ready_ = false;
};

// A self-signed certificate for `name` (an IP address or a DNS name) in `folder`.
void MakeCertificate(const fs::path& folder, const std::string& file, const std::string& name) {
  const bool ip = name.find_first_not_of("0123456789.") == std::string::npos;
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + name +
      " -addext subjectAltName=" + (ip ? "IP:" : "DNS:") + name + " -keyout " +
      (folder / (file + ".key")).string() + " -out " + (folder / (file + ".pem")).string() +
      " >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// Sets an environment variable for the scope, and puts back what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* was = std::getenv(name)) was_ = was;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (was_) {
      ::setenv(name_, was_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> was_;
};

// FetchUrl(url) must fail where TLS verifies the server.
void ExpectRefusedAtTls(const std::string& url, const std::string& server) {
  try {
    canopy::governance::FetchUrl(url, 5000, 1 << 20);
    ADD_FAILURE() << "fetched from " << server;
  } catch (const canopy::Error& e) {
    EXPECT_NE(std::string(e.what()).find("verify 127.0.0.1 (TLS)"), std::string::npos) << e.what();
  }
}

TEST(HttpsFetch, AJwksIsFetchedOnlyFromAServerWhoseCertificateVerifiesForItsName) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs the openssl program (scripts/setup --test installs it)";
  }
  const fs::path dir = fs::temp_directory_path() / ("canopy-https-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  MakeCertificate(dir, "loopback", "127.0.0.1");
  MakeCertificate(dir, "other", "other.example");
  const std::string jwks = R"({"keys": []})";
  WriteFile(dir / "jwks.json", jwks);
  using canopy::governance::FetchUrl;
  {
    TlsFileServer server(dir, dir / "loopback.pem", dir / "loopback.key");
    ASSERT_TRUE(server.ready());
    const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/jwks.json";
    // Its certificate is signed by no authority this machine trusts: refused.
    ExpectRefusedAtTls(url, "a server whose certificate no authority signed");
    // Trusted (OpenSSL's SSL_CERT_FILE names it as an authority) and naming this host: taken.
    ScopedEnv trust("SSL_CERT_FILE", (dir / "loopback.pem").string());
    EXPECT_EQ(FetchUrl(url, 5000, 1 << 20), jwks);
    // …but never more than asked for.
    EXPECT_THROW(FetchUrl(url, 5000, 4), canopy::Error);
  }
  {
    // Trusted, but made for another name: refused.
    TlsFileServer server(dir, dir / "other.pem", dir / "other.key");
    ASSERT_TRUE(server.ready());
    ScopedEnv trust("SSL_CERT_FILE", (dir / "other.pem").string());
    ExpectRefusedAtTls("https://127.0.0.1:" + std::to_string(server.port()) + "/jwks.json",
                       "a server whose certificate names another host");
  }
  fs::remove_all(dir);
}

}  // namespace
