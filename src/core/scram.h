// SCRAM-SHA-256 (RFC 5802, RFC 7677), the server's side, as PostgreSQL speaks it: a client
// proves it knows a password without sending it. The server keeps a verifier per password
// (PostgreSQL's own text form, "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>",
// base64), from which the password cannot be recovered. No channel binding (-PLUS).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canopy::scram {

// PostgreSQL's default (scram_iterations).
constexpr int kIterations = 4096;

struct Verifier {
  int iterations = 0;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw bytes: H(HMAC(SaltedPassword, "Client Key"))
  std::string server_key;  // raw bytes: HMAC(SaltedPassword, "Server Key")
};

// The verifier of `password` with `salt` (raw bytes).
Verifier MakeVerifier(std::string_view password, std::string_view salt,
                      int iterations = kIterations);
// PostgreSQL's text form, and back (nullopt when `text` is not one).
std::string Format(const Verifier& verifier);
std::optional<Verifier> Parse(std::string_view text);

std::string Base64(std::string_view bytes);
std::optional<std::string> FromBase64(std::string_view text);

// The client's side, for tests and tools: from the password, the client-first message
// without its gs2 header ("n=,r=<nonce>") and the server-first message, the client-final
// message to send (without channel binding) and the server-final message to expect;
// nullopt when the server-first message is malformed.
struct ClientFinal {
  std::string message;
  std::string expected_server_final;
};
std::optional<ClientFinal> MakeClientFinal(std::string_view password,
                                           std::string_view client_first_bare,
                                           std::string_view server_first);

// One exchange, the server's side:
//   ClientFirst(SASLInitialResponse's data) -> ServerFirst(salt, iterations) to send
//   -> ClientFinal(SASLResponse's data, verifiers) -> ServerFinal(the verifier that matched).
// Each step returns false / nullopt with error() set when the message is not what the
// protocol allows; ClientFinal also when no verifier matches the client's proof.
class ServerExchange {
 public:
  bool ClientFirst(std::string_view message);
  // `server_nonce`: the server's part of the nonce (empty: 18 random bytes, base64).
  std::string ServerFirst(std::string_view salt, int iterations,
                          std::string_view server_nonce = {});
  // The index in `verifiers` of the one the proof is for (each has the salt and iterations
  // ServerFirst sent).
  std::optional<size_t> ClientFinal(std::string_view message,
                                    const std::vector<Verifier>& verifiers);
  std::string ServerFinal(const Verifier& verifier) const;
  const std::string& error() const { return error_; }

 private:
  std::string client_first_bare_;
  std::string client_nonce_;
  std::string server_first_;
  std::string nonce_;  // the client's and the server's
  std::string final_without_proof_;
  std::string error_;
};

}  // namespace canopy::scram
