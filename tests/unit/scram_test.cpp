// SCRAM-SHA-256, the server's side (core/scram.h), against RFC 7677's worked example and
// against what a client may send wrong.
#include "core/scram.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace canopy::scram {
namespace {

// RFC 7677 §3: user "user", password "pencil".
constexpr const char* kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

std::string Salt() {
  return *FromBase64("W22ZaJ0SNY7soEsUEjb6gQ==");
}

TEST(Scram, TheExchangeOfRfc7677) {
  const Verifier pencil = MakeVerifier("pencil", Salt(), 4096);
  const Verifier other = MakeVerifier("crayon", Salt(), 4096);
  ServerExchange exchange;
  ASSERT_TRUE(exchange.ClientFirst(kClientFirst)) << exchange.error();
  EXPECT_EQ(exchange.ServerFirst(Salt(), 4096, kServerNonce), kServerFirst);
  // The proof is checked against each verifier in turn: the second here is the one.
  const auto match = exchange.ClientFinal(kClientFinal, {other, pencil});
  ASSERT_TRUE(match.has_value()) << exchange.error();
  EXPECT_EQ(*match, 1u);
  EXPECT_EQ(exchange.ServerFinal(pencil), kServerFinal);
}

TEST(Scram, TheClientSideMakesRfc7677sMessagesToo) {
  const auto client = MakeClientFinal("pencil", "n=user,r=rOprNGfwEbeRWgbNEkqO", kServerFirst);
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->message, kClientFinal);
  EXPECT_EQ(client->expected_server_final, kServerFinal);
  EXPECT_FALSE(MakeClientFinal("pencil", "n=,r=a", "r=a,s=***,i=4096").has_value());
  EXPECT_FALSE(MakeClientFinal("pencil", "n=,r=a", "s=YQ==,r=a,i=4096").has_value());
}

TEST(Scram, AWrongPasswordOrAnAlteredMessageProvesNothing) {
  auto final_with = [](const std::string& client_final, const std::vector<Verifier>& verifiers,
                       std::string* error = nullptr) {
    ServerExchange exchange;
    EXPECT_TRUE(exchange.ClientFirst(kClientFirst));
    exchange.ServerFirst(Salt(), 4096, kServerNonce);
    auto match = exchange.ClientFinal(client_final, verifiers);
    if (error != nullptr) *error = exchange.error();
    return match;
  };
  const Verifier pencil = MakeVerifier("pencil", Salt(), 4096);
  std::string error;
  EXPECT_FALSE(final_with(kClientFinal, {MakeVerifier("crayon", Salt(), 4096)}, &error));
  EXPECT_EQ(error, "the proof matches no password");
  EXPECT_FALSE(final_with(kClientFinal, {}, &error)) << "a user with no token";
  EXPECT_EQ(error, "the proof matches no password");
  // Another salt is another verifier.
  EXPECT_FALSE(final_with(kClientFinal, {MakeVerifier("pencil", "another salt", 4096)}));
  // One bit of the proof, the nonce, or the binding changed.
  std::string flipped = kClientFinal;
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'V' ? 'W' : 'V';
  EXPECT_FALSE(final_with(flipped, {pencil}));
  std::string nonce = kClientFinal;
  nonce.replace(nonce.find("k0,"), 2, "k1");
  EXPECT_FALSE(final_with(nonce, {pencil}, &error));
  EXPECT_EQ(error, "SCRAM nonce does not match");
  std::string binding = kClientFinal;
  binding.replace(2, 4, "cD10");
  EXPECT_FALSE(final_with(binding, {pencil}, &error));
  EXPECT_EQ(error, "SCRAM channel binding does not match");
  for (const char* malformed :
       {"", "c=biws", "c=biws,r=x", "p=abc", "c=biws,r=,p=!!!!",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=YQ=="}) {
    EXPECT_FALSE(final_with(malformed, {pencil})) << malformed;
  }
}

TEST(Scram, AClientFirstMessageOutsideTheProtocolIsRefused) {
  for (const char* message : {"", "n,,", "n,,r=abc", "n,,n=user", "n,,n=user,r=", "x,,n=,r=abc",
                              "n,,n=,r=a,b", "n,,n=,r=a\x01", "n,a=admin,n=,r=abc"}) {
    ServerExchange exchange;
    EXPECT_FALSE(exchange.ClientFirst(message)) << message;
    EXPECT_FALSE(exchange.error().empty()) << message;
  }
  ServerExchange binding;
  EXPECT_FALSE(binding.ClientFirst("p=tls-server-end-point,,n=,r=abc"));
  EXPECT_EQ(binding.error(), "channel binding is not offered by this server");
  // What libpq sends: an empty user name (the startup message's counts), "y" when it could
  // bind a channel but the server offered no -PLUS mechanism.
  ServerExchange libpq;
  EXPECT_TRUE(libpq.ClientFirst("y,,n=,r=rOprNGfwEbeRWgbNEkqO"));
}

TEST(Scram, AVerifierIsKeptInPostgresqlsOwnFormAndReadBack) {
  const Verifier verifier = MakeVerifier("pencil", Salt(), 4096);
  const std::string text = Format(verifier);
  EXPECT_EQ(text.rfind("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$", 0), 0u) << text;
  const auto back = Parse(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->iterations, 4096);
  EXPECT_EQ(back->salt, Salt());
  EXPECT_EQ(back->stored_key, verifier.stored_key);
  EXPECT_EQ(back->server_key, verifier.server_key);
  for (const char* bad : {"", "md5abc", "SCRAM-SHA-256$", "SCRAM-SHA-256$x:YQ==$YQ==:YQ==",
                          "SCRAM-SHA-256$4096:YQ==$YQ==:YQ==", "SCRAM-SHA-256$4096:YQ==$YQ=="}) {
    EXPECT_FALSE(Parse(bad).has_value()) << bad;
  }
  EXPECT_EQ(Base64("pencil"), "cGVuY2ls");
  EXPECT_EQ(FromBase64("cGVuY2ls").value_or("?"), "pencil");
  EXPECT_EQ(FromBase64("cGVuY2w=").value_or("?"), "pencl");
  EXPECT_FALSE(FromBase64("cGVuY2l").has_value());
  EXPECT_FALSE(FromBase64("cGVu*2ls").has_value());
}

}  // namespace
}  // namespace canopy::scram
