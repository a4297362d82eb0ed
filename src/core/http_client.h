#pragma once

#include <cstddef>
#include <string>

// The one HTTP client Canopy has, for the two calls it makes out: a build POSTing
// OpenLineage events to the endpoint mesh.yaml names, and governance fetching the identity
// provider's JWKS. One HTTP/1.1 exchange, one deadline for all of it (resolve, connect, TLS
// handshake, write, read), no redirects. https:// is verified against the system's
// certificate authorities and must name the host; http:// is taken as given (mesh.yaml says
// where that is allowed).
namespace canopy {

struct HttpCall {
  std::string method = "GET";  // GET or POST
  std::string url;             // http://HOST[:PORT]/PATH or https://…
  std::string body;            // sent with a POST
  std::string content_type;    // of the body
  std::string accept;          // the Accept header, when not empty
  int timeout_ms = 5000;
  size_t max_bytes = size_t{1} << 20;  // the most of a response body taken
};

struct HttpAnswer {
  unsigned status = 0;
  std::string body;
};

// The exchange, whatever the status. Throws Error(kFailed) "cannot <step>: <reason>" when it
// does not complete (a bad URL, a refused connection, a certificate that does not verify, the
// deadline, a body over max_bytes).
HttpAnswer HttpExchange(const HttpCall& call);

}  // namespace canopy
