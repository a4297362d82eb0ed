// The one HTTP client call Canopy makes: POSTing an OpenLineage event to the
// endpoint mesh.yaml names. Plain http:// only, no redirects, one deadline for
// everything (resolve, connect, write, read).
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "build/openlineage_events.h"
#include "core/error.h"

namespace canopy::build {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Url {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

Url ParseUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    throw Error(ErrorCode::kFailed, "only http:// URLs are supported, not " + url);
  }
  Url out;
  std::string rest = url.substr(scheme.size());
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

}  // namespace

void PostJson(const std::string& url, const std::string& body, int timeout_ms) {
  const Url target = ParseUrl(url);
  net::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  http::request<http::string_body> request{http::verb::post, target.target, 11};
  request.set(http::field::host, target.host + ":" + target.port);
  request.set(http::field::user_agent, "canopy");
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  beast::error_code failure;
  std::string step = "resolve " + target.host;
  bool done = false;

  const auto deadline = std::chrono::milliseconds(timeout_ms);
  resolver.async_resolve(
      target.host, target.port, [&](beast::error_code ec, const tcp::resolver::results_type& to) {
        if (ec) {
          failure = ec;
          return;
        }
        step = "connect to " + target.host + ":" + target.port;
        stream.expires_after(deadline);
        stream.async_connect(to, [&](beast::error_code ec2, const tcp::endpoint&) {
          if (ec2) {
            failure = ec2;
            return;
          }
          step = "send the event";
          http::async_write(stream, request, [&](beast::error_code ec3, size_t) {
            if (ec3) {
              failure = ec3;
              return;
            }
            step = "read the response";
            http::async_read(stream, buffer, response, [&](beast::error_code ec4, size_t) {
              failure = ec4;
              done = !ec4;
            });
          });
        });
      });
  // The resolver has no deadline of its own: stop the whole exchange in time.
  io.run_for(deadline + std::chrono::milliseconds(100));
  if (!done) {
    beast::error_code ignored;
    stream.socket().close(ignored);
    const std::string after = std::to_string(timeout_ms) + " ms";
    if (failure && failure != beast::error::timeout) {
      throw Error(ErrorCode::kFailed, "cannot " + step + ": " + failure.message());
    }
    throw Error(ErrorCode::kFailed, "cannot " + step + ": timed out after " + after);
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  const unsigned status = response.result_int();
  if (status < 200 || status >= 300) {
    throw Error(ErrorCode::kFailed, "the endpoint answered HTTP " + std::to_string(status));
  }
}

}  // namespace canopy::build
