// core/http_client.h: Boost.Beast over Boost.Asio, OpenSSL for https.
#include "core/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>

#include "core/error.h"

namespace canopy {
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
  bool default_port = true;
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
    throw Error(ErrorCode::kFailed, "only http:// and https:// URLs are supported, not " + url);
  }
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    out.target = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  std::string port;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:5000
    const auto close = rest.find(']');
    if (close == std::string::npos) throw Error(ErrorCode::kFailed, "bad URL " + url);
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    out.host = rest;
  }
  if (!port.empty()) {
    out.default_port = port == out.port;
    out.port = port;
  }
  if (out.host.empty() || out.port.empty()) throw Error(ErrorCode::kFailed, "bad URL " + url);
  return out;
}

using Then = std::function<void(beast::error_code)>;

// Writes `request` to `stream` and reads the answer, once `open` (resolve, connect and, for
// TLS, the handshake) has called back; all of it on `io` within `deadline`.
template <typename Stream>
HttpAnswer Exchange(net::io_context& io, Stream& stream, const Url& url, const HttpCall& call,
                    const std::function<void(Then, std::string&)>& open) {
  const auto deadline = std::chrono::milliseconds(call.timeout_ms);
  http::request<http::string_body> request{
      call.method == "POST" ? http::verb::post : http::verb::get, url.target, 11};
  request.set(http::field::host, url.default_port ? url.host : url.host + ":" + url.port);
  request.set(http::field::user_agent, "canopy");
  if (!call.accept.empty()) request.set(http::field::accept, call.accept);
  if (!call.content_type.empty()) request.set(http::field::content_type, call.content_type);
  if (call.method == "POST") {
    request.body() = call.body;
    request.prepare_payload();
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(call.max_bytes);
  beast::error_code failure;
  std::string step = "resolve " + url.host;
  bool done = false;
  open(
      [&](beast::error_code ec) {
        if (ec) {
          failure = ec;
          return;
        }
        step = "send the request to " + url.host;
        http::async_write(stream, request, [&](beast::error_code ec2, size_t) {
          if (ec2) {
            failure = ec2;
            return;
          }
          step = "read the answer of " + url.host;
          http::async_read(stream, buffer, parser, [&](beast::error_code ec3, size_t) {
            failure = ec3;
            done = !ec3;
          });
        });
      },
      step);
  // The resolver has no deadline of its own: the whole exchange is stopped in time.
  io.run_for(deadline + std::chrono::milliseconds(100));
  if (!done) {
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().close(ignored);
    if (failure && failure != beast::error::timeout) {
      throw Error(ErrorCode::kFailed, "cannot " + step + ": " + failure.message());
    }
    throw Error(ErrorCode::kFailed,
                "cannot " + step + ": timed out after " + std::to_string(call.timeout_ms) + " ms");
  }
  beast::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  return {parser.get().result_int(), parser.get().body()};
}

}  // namespace

HttpAnswer HttpExchange(const HttpCall& call) {
  const Url url = ParseUrl(call.url);
  const auto deadline = std::chrono::milliseconds(call.timeout_ms);
  net::io_context io;
  tcp::resolver resolver(io);
  if (!url.tls) {
    beast::tcp_stream stream(io);
    return Exchange(io, stream, url, call, [&](const Then& then, std::string& step) {
      resolver.async_resolve(
          url.host, url.port,
          [&, then](beast::error_code ec, const tcp::resolver::results_type& to) {
            if (ec) return then(ec);
            step = "connect to " + url.host + ":" + url.port;
            stream.expires_after(deadline);
            stream.async_connect(
                to, [then](beast::error_code ec2, const tcp::endpoint&) { then(ec2); });
          });
    });
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
  return Exchange(io, stream, url, call, [&](const Then& then, std::string& step) {
    resolver.async_resolve(
        url.host, url.port, [&, then](beast::error_code ec, const tcp::resolver::results_type& to) {
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
  });
}

}  // namespace canopy
