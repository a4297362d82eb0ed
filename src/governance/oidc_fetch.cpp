// The one HTTP GET governance makes: the identity provider's JWKS from the jwks_url
// mesh.yaml names. https:// is verified against the system's certificate authorities
// and the host name; http:// is taken as given (mesh.yaml allows it for loopback only).
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>

#include "core/error.h"
#include "governance/oidc.h"

namespace canopy::governance {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target = "/";
};

Url ParseUrl(const std::string& url) {
  Url out;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    out.port = "443";
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    out.port = "80";
    rest = url.substr(7);
  } else {
    throw Error(ErrorCode::kFailed, "only http:// and https:// URLs are fetched, not " + url);
  }
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    out.target = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  if (!rest.empty() && rest.front() == '[') {  // [::1]:5000
    const auto close = rest.find(']');
    if (close == std::string::npos) throw Error(ErrorCode::kFailed, "bad URL " + url);
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') out.port = rest.substr(close + 2);
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  } else {
    out.host = rest;
  }
  if (out.host.empty() || out.port.empty()) throw Error(ErrorCode::kFailed, "bad URL " + url);
  return out;
}

// One exchange over `stream` (a tcp_stream or a TLS stream over one), run on `io` with
// one deadline; `connect` opens the stream and calls back with the outcome.
template <typename Stream, typename Connect>
std::string Exchange(net::io_context& io, Stream& stream, const Url& url, Connect&& connect,
                     std::chrono::milliseconds deadline, size_t max_bytes) {
  http::request<http::empty_body> request{http::verb::get, url.target, 11};
  request.set(http::field::host, url.host);
  request.set(http::field::user_agent, "canopy");
  request.set(http::field::accept, "application/json");
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_bytes);
  beast::error_code failure;
  std::string step = "resolve " + url.host;
  bool done = false;
  connect(
      [&](beast::error_code ec) {
        if (ec) {
          failure = ec;
          return;
        }
        step = "send the request";
        http::async_write(stream, request, [&](beast::error_code ec2, size_t) {
          if (ec2) {
            failure = ec2;
            return;
          }
          step = "read the response";
          http::async_read(stream, buffer, parser, [&](beast::error_code ec3, size_t) {
            failure = ec3;
            done = !ec3;
          });
        });
      },
      step);
  io.run_for(deadline + std::chrono::milliseconds(100));
  if (!done) {
    if (failure && failure != beast::error::timeout) {
      throw Error(ErrorCode::kFailed, "cannot " + step + ": " + failure.message());
    }
    throw Error(ErrorCode::kFailed,
                "cannot " + step + ": timed out after " + std::to_string(deadline.count()) + " ms");
  }
  const unsigned status = parser.get().result_int();
  if (status != 200) {
    throw Error(ErrorCode::kFailed, "the server answered HTTP " + std::to_string(status));
  }
  return parser.get().body();
}

}  // namespace

std::string FetchUrl(const std::string& address, int timeout_ms, size_t max_bytes) {
  const Url url = ParseUrl(address);
  const auto deadline = std::chrono::milliseconds(timeout_ms);
  net::io_context io;
  tcp::resolver resolver(io);
  if (!url.tls) {
    beast::tcp_stream stream(io);
    return Exchange(
        io, stream, url,
        [&](auto&& then, std::string& step) {
          resolver.async_resolve(
              url.host, url.port,
              [&, then](beast::error_code ec, const tcp::resolver::results_type& to) {
                if (ec) return then(ec);
                step = "connect to " + url.host + ":" + url.port;
                stream.expires_after(deadline);
                stream.async_connect(
                    to, [then](beast::error_code ec2, const tcp::endpoint&) { then(ec2); });
              });
        },
        deadline, max_bytes);
  }
  ssl::context context(ssl::context::tls_client);
  context.set_default_verify_paths();
  context.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  // SNI, and the certificate must name the host.
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
    throw Error(ErrorCode::kFailed, "cannot set the TLS server name " + url.host);
  }
  stream.set_verify_callback(ssl::host_name_verification(url.host));
  return Exchange(
      io, stream, url,
      [&](auto&& then, std::string& step) {
        resolver.async_resolve(
            url.host, url.port,
            [&, then](beast::error_code ec, const tcp::resolver::results_type& to) {
              if (ec) return then(ec);
              step = "connect to " + url.host + ":" + url.port;
              beast::get_lowest_layer(stream).expires_after(deadline);
              beast::get_lowest_layer(stream).async_connect(
                  to, [&, then](beast::error_code ec2, const tcp::endpoint&) {
                    if (ec2) return then(ec2);
                    step = "verify " + url.host + " (TLS)";
                    stream.async_handshake(ssl::stream_base::client,
                                           [then](beast::error_code ec3) { then(ec3); });
                  });
            });
      },
      deadline, max_bytes);
}

}  // namespace canopy::governance
