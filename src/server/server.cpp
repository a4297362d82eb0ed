// canopy serve over Boost.Beast: an io_context run by a few threads accepts and reads
// requests (every limit decided while reading, so a client never makes the server hold
// more than its limits), and Api::Handle runs on a separate worker pool, because
// governed queries block. Each connection is a Session on its own strand.
//
// Beast stays in this one file: no other translation unit pays for its headers.
#include "server/server.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/error.h"
#include "pgwire/pgwire.h"
#include "scaffold/embedded.h"
#include "server/api.h"

#ifndef CANOPY_VERSION
#define CANOPY_VERSION "0.0.0"
#endif

namespace canopy::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// Limits of one request, and how long the server waits for a client.
constexpr size_t kHeaderLimit = 16384;  // request line + headers; more gets 431
constexpr auto kReadTimeout = 30s;      // to read one request's headers and body
constexpr auto kWriteTimeout = 60s;     // to write one response (or one chunk of it)
constexpr size_t kChunkBytes = 16384;   // streamed results are written in pieces of this
constexpr auto kStopTimeout = 30s;      // in-flight requests may finish within this
constexpr auto kLingerTimeout = 2s;     // after refusing a request, see below
constexpr const char* kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
    "data: blob:; connect-src 'self'";

std::string_view View(beast::string_view s) {
  return {s.data(), s.size()};
}

const char* ContentType(const std::string& path) {
  auto ends = [&](const char* suffix) {
    const std::string s(suffix);
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  if (ends(".woff2")) return "font/woff2";
  if (ends(".ico")) return "image/x-icon";
  return "application/octet-stream";
}

const scaffold::EmbeddedFile* FindWebFile(const std::string& path) {
  for (const auto& file : scaffold::WebFiles()) {
    if (path == file.path) return &file;
  }
  return nullptr;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Appends code point `cp` as UTF-8.
void AppendUtf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Percent-decoding as cpp-httplib did it: %XX, %uXXXX, and '+' as a space in queries.
std::string DecodeUrl(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 5 < s.size() && s[i + 1] == 'u') {
      unsigned cp = 0;
      bool ok = true;
      for (size_t k = 2; k < 6 && ok; ++k) {
        const int d = HexDigit(s[i + k]);
        ok = d >= 0;
        cp = cp * 16 + static_cast<unsigned>(d < 0 ? 0 : d);
      }
      if (ok) {
        AppendUtf8(out, cp);
        i += 5;
        continue;
      }
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 &&
               HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
      continue;
    }
    out += plus_is_space && s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

// "a=1&b=x+y": the decoded parameters; a repeated name keeps its last value.
std::map<std::string, std::string> ParseQuery(std::string_view text) {
  std::map<std::string, std::string> query;
  while (!text.empty()) {
    const size_t amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string key = DecodeUrl(pair.substr(0, eq), true);
    if (key.empty()) continue;
    query[std::move(key)] =
        eq == std::string_view::npos ? std::string() : DecodeUrl(pair.substr(eq + 1), true);
  }
  return query;
}

// The methods cpp-httplib knew; any other is a malformed request.
bool KnownMethod(std::string_view method) {
  for (const char* known :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI"}) {
    if (method == known) return true;
  }
  return false;
}

std::string ErrorBody(const char* code, const char* message) {
  return std::string("{\"error\":{\"code\":\"") + code + "\",\"message\":\"" + message + "\"}}";
}

template <class Fields>
void SetCommonHeaders(Fields& fields) {
  fields.set("X-Content-Type-Options", "nosniff");
  fields.set("Referrer-Policy", "no-referrer");
  fields.set(http::field::cache_control, "no-store");
}

using Response = http::response<http::string_body>;

// State shared by the acceptor, the sessions and Serve: who is connected, whether we
// are stopping, and the log.
struct Server {
  Server(const Api& a, size_t limit, size_t upload_limit)
      : api(a), max_body_bytes(limit), max_upload_bytes(upload_limit) {}

  const Api& api;
  size_t max_body_bytes;
  size_t max_upload_bytes;  // POST /api/v1/domains/{d}/uploads
  net::thread_pool* workers = nullptr;

  std::atomic<bool> stopping{false};
  std::atomic<bool> abandoned{false};  // the io threads are gone: stop waiting for writes

  std::mutex mutex;  // guards the fields below
  std::condition_variable changed;
  bool stop_requested = false;
  std::unordered_map<const void*, std::function<void()>> idle_cancellers;

  std::mutex log_mutex;

  // One line per request: never a token, never result data.
  void Log(const std::string& method, const std::string& path, int status,
           std::chrono::steady_clock::time_point started, const std::string& principal) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    char line[512];
    std::snprintf(line, sizeof line, "%s %s %s %d %.1fms %s\n", NowIso8601().c_str(),
                  method.empty() ? "-" : method.c_str(), path.empty() ? "-" : path.c_str(), status,
                  ms, principal.c_str());
    std::lock_guard<std::mutex> lock(log_mutex);
    std::fputs(line, stderr);
  }
};

// One connection: reads requests one after the other (keep-alive), answers each, and
// closes on an error, on "Connection: close", or when the server stops. Everything but
// the worker's part runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)), strand_(stream_.get_executor()) {}

  ~Session() {
    std::lock_guard<std::mutex> lock(server_.mutex);
    server_.idle_cancellers.erase(this);
    server_.changed.notify_all();
  }

  void Start() {
    {
      // Registered, so that a stop can end this connection while it waits for a request.
      std::weak_ptr<Session> weak = weak_from_this();
      std::lock_guard<std::mutex> lock(server_.mutex);
      server_.idle_cancellers[this] = [weak] {
        if (auto self = weak.lock()) {
          net::post(self->strand_, [self] {
            if (self->idle_) self->stream_.cancel();
          });
        }
      };
    }
    net::post(strand_, [self = shared_from_this()] { self->ReadRequest(); });
  }

 private:
  // Writes a streamed response from a worker thread: the pieces are gathered into
  // chunks of at least kChunkBytes; each chunk is written from the strand while the
  // next is gathered, and the worker waits for the previous write before starting
  // the next (so memory stays at two chunks, and a slow client slows the query).
  class ChunkWriter {
   public:
    ChunkWriter(Session& session, std::string head, bool chunked)
        : session_(session), head_(std::move(head)), chunked_(chunked) {}
    ~ChunkWriter() { Wait(); }
    ChunkWriter(const ChunkWriter&) = delete;
    ChunkWriter& operator=(const ChunkWriter&) = delete;

    // An empty piece sends what is gathered now (a stream of progress events).
    bool Write(std::string_view piece) {
      if (failed_) return false;
      if (piece.empty()) return body_.empty() || Flush(false);
      if (chunked_ && body_.empty()) body_.reserve(kChunkBytes + 1024);
      body_.append(piece);
      return body_.size() < kChunkBytes || Flush(false);
    }
    // Writes what is left and the end of the body; true when all of it went out.
    bool Finish() { return Flush(true) && Wait(); }

   private:
    bool Flush(bool last) {
      if (!Wait()) return false;
      out_.clear();
      if (!head_.empty()) out_.swap(head_);  // the header goes with the first chunk
      if (!body_.empty()) {
        if (chunked_) {
          char size[32];
          std::snprintf(size, sizeof size, "%zx\r\n", body_.size());
          out_ += size;
        }
        out_ += body_;
        if (chunked_) out_ += "\r\n";
        body_.clear();
      }
      if (last && chunked_) out_ += "0\r\n\r\n";
      if (out_.empty()) return true;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        writing_ = true;
      }
      net::post(session_.strand_, [this, self = session_.shared_from_this()] {
        self->stream_.expires_after(kWriteTimeout);
        net::async_write(self->stream_, net::buffer(out_),
                         [this, self](beast::error_code ec, size_t) {
                           std::lock_guard<std::mutex> lock(mutex_);
                           writing_ = false;
                           if (ec) failed_ = true;
                           done_.notify_all();
                         });
      });
      return true;
    }
    // Waits for the write in progress; false when a write failed.
    bool Wait() {
      std::unique_lock<std::mutex> lock(mutex_);
      while (writing_) {
        if (!done_.wait_for(lock, 100ms, [this] { return !writing_; }) &&
            session_.server_.abandoned) {
          failed_ = true;
          return false;  // the io threads are gone: the write will never complete
        }
      }
      return !failed_;
    }

    Session& session_;
    std::string head_;  // the response header, until the first write
    std::string body_;  // gathered pieces
    std::string out_;   // what is being written
    const bool chunked_;
    std::mutex mutex_;
    std::condition_variable done_;
    bool writing_ = false;
    std::atomic<bool> failed_{false};
  };

  void ReadRequest() {
    if (server_.stopping) return Close();
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // Also bounds chunked bodies. Large enough for an upload until the header says what
    // the request is; lowered to max_body_bytes for every other one before its body.
    parser_->body_limit(std::max(server_.max_body_bytes, server_.max_upload_bytes));
    idle_ = true;
    stream_.expires_after(kReadTimeout);  // for headers and body together
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    started_ = std::chrono::steady_clock::now();
    const auto& header = parser_->get();
    version_ = header.version() == 10 ? 10 : 11;
    method_ = std::string(View(header.method_string()));
    const std::string_view target = View(header.target());
    path_ = DecodeUrl(target.substr(0, target.find('?')), false);
    if (ec == http::error::body_limit) {  // from Content-Length: the body is never read
      return Refuse(413, "payload_too_large", "the request body is too large");
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return Refuse(431, "header_too_large", "the request header is too large");
    }
    if (ec) {
      // Malformed: say so. Closed, reset or timed out: just drop the connection.
      const bool malformed =
          ec.category() == http::make_error_code(http::error::bad_method).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message;
      if (malformed) return Refuse(400, "bad_request", "the request could not be served");
      return Close();
    }
    if ((header.version() != 10 && header.version() != 11) || !KnownMethod(method_)) {
      return Refuse(400, "bad_request", "the request could not be served");
    }
    if (!IsUpload()) {
      const auto length = parser_->content_length();
      if (length && *length > server_.max_body_bytes) {
        return Refuse(413, "payload_too_large", "the request body is too large");
      }
      parser_->body_limit(server_.max_body_bytes);
    }
    if (parser_->is_done()) return Dispatch();
    if (version_ == 11 && beast::iequals(header[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(kContinue),
                              [self = shared_from_this()](beast::error_code write_ec, size_t) {
                                if (write_ec) return self->Close();
                                self->ReadBody();
                              });
    }
    ReadBody();
  }

  // POST /api/v1/domains/{d}/uploads: the one request whose body may be a file.
  bool IsUpload() const {
    constexpr std::string_view kPrefix = "/api/v1/domains/";
    constexpr std::string_view kSuffix = "/uploads";
    const std::string_view path = path_;
    return method_ == "POST" && path.size() > kPrefix.size() + kSuffix.size() &&
           path.substr(0, kPrefix.size()) == kPrefix &&
           path.substr(path.size() - kSuffix.size()) == kSuffix &&
           path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size()).find('/') ==
               std::string_view::npos;
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (ec == http::error::body_limit) {  // a chunked body, as soon as it passes the limit
      return Refuse(413, "payload_too_large", "the request body is too large");
    }
    if (ec) {
      const bool malformed =
          ec.category() == http::make_error_code(http::error::bad_method).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message;
      if (malformed) return Refuse(400, "bad_request", "the request could not be served");
      return Close();
    }
    Dispatch();
  }

  void Dispatch() {
    auto& request = parser_->get();
    keep_alive_ = request.keep_alive() && !server_.stopping;
    head_ = method_ == "HEAD";
    const bool api = path_.rfind("/api/", 0) == 0 &&
                     (method_ == "GET" || method_ == "HEAD" || method_ == "POST" ||
                      method_ == "PUT" || method_ == "DELETE");
    if (api) {
      HttpRequest call;
      call.method = method_;
      call.path = path_;
      const std::string_view target = View(request.target());
      if (const size_t q = target.find('?'); q != std::string_view::npos) {
        call.query = ParseQuery(target.substr(q + 1));
      }
      call.body = std::move(request.body());
      call.authorization = std::string(View(request[http::field::authorization]));
      beast::error_code ec;
      const auto remote = stream_.socket().remote_endpoint(ec);
      if (!ec) call.peer = remote.address().to_string();
      parser_.reset();
      net::post(*server_.workers,
                [self = shared_from_this(), call = std::move(call)] { self->Work(call); });
      return;
    }
    parser_.reset();
    if ((method_ == "GET" || method_ == "HEAD") && !path_.empty() && path_[0] == '/') {
      return WebUi();
    }
    Reply(NewResponse(404, ErrorBody("not_found", "the request could not be served")), 404, "-");
  }

  // On a worker thread: the API call, and a streamed response written from here.
  void Work(const HttpRequest& call) {
    HttpResponse response;
    try {
      response = server_.api.Handle(call);
    } catch (...) {
      response = HttpResponse();
      response.status = 500;
      response.body = ErrorBody("internal", "internal error");
      response.principal = "-";
    }
    if (!response.stream || head_) {
      response.stream = nullptr;
      net::post(strand_, [self = shared_from_this(), response = std::move(response)]() mutable {
        Response res = self->NewResponse(response.status, std::move(response.body));
        res.set(http::field::content_type, response.content_type);
        if (response.retry_after > 0) {
          res.set(http::field::retry_after, std::to_string(response.retry_after));
        }
        self->hold_ = std::move(response.hold);  // until the response is written
        self->Reply(std::move(res), response.status, response.principal);
      });
      return;
    }
    // A streamed body: chunked for HTTP/1.1; for HTTP/1.0, until the connection closes.
    const bool chunked = version_ == 11;
    if (!chunked) keep_alive_ = false;
    http::response<http::empty_body> header;
    header.version(version_);
    header.result(static_cast<unsigned>(response.status));
    header.set(http::field::content_type, response.content_type);
    SetCommonHeaders(header);
    if (chunked) header.set(http::field::transfer_encoding, "chunked");
    header.keep_alive(keep_alive_);
    std::string head = (version_ == 11 ? "HTTP/1.1 " : "HTTP/1.0 ") +
                       std::to_string(response.status) + " " + std::string(View(header.reason())) +
                       "\r\n";
    for (const auto& field : header) {
      head.append(View(field.name_string()));
      head += ": ";
      head.append(View(field.value()));
      head += "\r\n";
    }
    head += "\r\n";
    bool ok = false;
    try {
      ChunkWriter writer(*this, std::move(head), chunked);
      response.stream([&writer](std::string_view piece) { return writer.Write(piece); });
      ok = writer.Finish();
    } catch (...) {
      ok = false;  // the body is cut short: closing the connection tells the client
    }
    response.stream = nullptr;
    net::post(strand_, [self = shared_from_this(), response = std::move(response), ok] {
      self->server_.Log(self->method_, self->path_, response.status, self->started_,
                        response.principal);
      // The hold (a catalog lease) is released with `response`, after the last write.
      if (!ok || !self->keep_alive_) return self->Close();
      self->ReadRequest();
    });
  }

  // The web UI: embedded files; any other path is the single-page app.
  void WebUi() {
    std::string path = path_.substr(1);
    if (const char* folder = std::getenv("CANOPY_WEB_DIR"); folder != nullptr && *folder != '\0') {
      return WebUiFromFolder(folder, path);
    }
    const scaffold::EmbeddedFile* file = path.empty() ? nullptr : FindWebFile(path);
    if (file == nullptr) {
      file = FindWebFile("index.html");
      path = "index.html";
    }
    if (file == nullptr) {
      Response res =
          NewResponse(200,
                      "<!doctype html><title>Canopy</title><p>This canopy was built without "
                      "its web UI (npm was missing at build time). The REST API is at "
                      "/api/v1/.</p>");
      res.set(http::field::content_type, "text/html; charset=utf-8");
      return Reply(std::move(res), 200, "-");
    }
    Response res =
        NewResponse(200, std::string(reinterpret_cast<const char*>(file->data), file->size));
    res.set(http::field::content_type, ContentType(path));
    res.set("Content-Security-Policy", kCsp);
    Reply(std::move(res), 200, "-");
  }

  // For work on the UI: its files read from `folder` (a web/dist) at each request, so a
  // rebuilt UI shows without rebuilding the server. Paths stay inside the folder.
  void WebUiFromFolder(const std::string& folder, std::string path) {
    std::error_code ec;
    const std::filesystem::path root = std::filesystem::weakly_canonical(folder, ec);
    std::filesystem::path file = std::filesystem::weakly_canonical(root / path, ec);
    const std::string inside = root.string() + "/";
    if (path.empty() || ec || file.string().rfind(inside, 0) != 0 ||
        !std::filesystem::is_regular_file(file, ec)) {
      file = root / "index.html";
      path = "index.html";
    }
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    Response res = NewResponse(in ? 200 : 404, text.str());
    res.set(http::field::content_type, ContentType(path));
    res.set("Content-Security-Policy", kCsp);
    Reply(std::move(res), in ? 200 : 404, "-");
  }

  // A response with the common headers; JSON unless the caller sets another type.
  Response NewResponse(int status, std::string body) const {
    Response res;
    res.version(version_);
    res.result(static_cast<unsigned>(status));
    res.set(http::field::content_type, "application/json");
    SetCommonHeaders(res);
    res.body() = std::move(body);
    return res;
  }

  // Refuses a request that cannot be read (too large, malformed) and closes.
  void Refuse(int status, const char* code, const char* message) {
    parser_.reset();
    keep_alive_ = false;
    head_ = false;
    linger_ = true;
    Reply(NewResponse(status, ErrorBody(code, message)), status, "-");
  }

  void Reply(Response res, int status, std::string principal) {
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    response_ = std::make_unique<Response>(std::move(res));
    status_ = status;
    principal_ = std::move(principal);
    stream_.expires_after(kWriteTimeout);
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWritten(ec); };
    if (head_) {
      serializer_ = std::make_unique<http::response_serializer<http::string_body>>(*response_);
      http::async_write_header(stream_, *serializer_, std::move(done));
    } else {
      http::async_write(stream_, *response_, std::move(done));
    }
  }

  void OnWritten(beast::error_code ec) {
    server_.Log(method_, path_, status_, started_, principal_);
    serializer_.reset();
    response_.reset();
    hold_.reset();
    if (ec) return Close();
    if (linger_) return Linger();
    if (!keep_alive_) return Close();
    ReadRequest();
  }

  // After refusing a request whose body (or header) is still arriving, closing at once
  // would reset the connection and the client might never read the answer. So stop
  // sending, then read and discard, into one small buffer, until the client closes,
  // for at most kLingerTimeout and max_body_bytes: nothing of it is kept.
  void Linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    scratch_ = std::make_unique<std::array<char, 16384>>();
    lingered_ = 0;
    stream_.expires_after(kLingerTimeout);
    DiscardSome();
  }

  void DiscardSome() {
    stream_.async_read_some(
        net::buffer(*scratch_), [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->lingered_ += n;
          if (ec || self->lingered_ > std::max<size_t>(self->server_.max_body_bytes, 1 << 20)) {
            return self->Close();
          }
          self->DiscardSome();
        });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  Server& server_;
  beast::tcp_stream stream_;
  net::any_io_executor strand_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool idle_ = false;  // waiting for a request: a stop may close the connection
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool linger_ = false;
  std::string method_;
  std::string path_;
  std::chrono::steady_clock::time_point started_;
  std::unique_ptr<Response> response_;
  std::shared_ptr<void> hold_;  // HttpResponse::hold, until the response is written
  std::unique_ptr<http::response_serializer<http::string_body>> serializer_;
  int status_ = 0;
  std::string principal_;
  std::unique_ptr<std::array<char, 16384>> scratch_;
  size_t lingered_ = 0;
};

// Accepts connections until the acceptor is closed.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(Server& server, net::io_context& ioc, tcp::acceptor acceptor)
      : server_(server),
        ioc_(ioc),
        acceptor_(std::move(acceptor)),
        retry_(acceptor_.get_executor()) {}

  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec,
                                                                               tcp::socket socket) {
      if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
      if (ec) {  // e.g. out of file descriptors: try again shortly, without spinning
        self->retry_.expires_after(50ms);
        self->retry_.async_wait([self](beast::error_code) {
          if (self->acceptor_.is_open()) self->Accept();
        });
        return;
      }
      beast::error_code ignored;
      // Without it, Nagle and delayed ACKs add 40 ms to each response.
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(self->server_, std::move(socket))->Start();
      self->Accept();
    });
  }

  void Close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_.cancel();
    });
  }

 private:
  Server& server_;
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
};

}  // namespace

// PostgreSQL sessions may hold catalog connections while a cursor or portal stays open:
// together they take at most `limit` of the pool, so the HTTP API always has the rest.
// Past it a statement waits up to 10 s, then fails with the server being busy.
class PgShare {
 public:
  PgShare(CatalogPool& pool, int limit) : pool_(pool), limit_(limit) {}
  std::shared_ptr<catalog::CatalogStore> Lease() {
    constexpr auto kWait = std::chrono::seconds(10);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!freed_.wait_for(lock, kWait, [this] { return held_ < limit_; })) {
        throw Error(ErrorCode::kFailed,
                    "the catalog connections for PostgreSQL clients are all in use",
                    "try again in a moment; close cursors and portals left open");
      }
      ++held_;
    }
    std::shared_ptr<catalog::CatalogStore> store;
    try {
      store = pool_.Lease(kWait);
    } catch (...) {
      Release();
      throw;
    }
    catalog::CatalogStore* raw = store.get();
    return {raw, [this, store](catalog::CatalogStore*) mutable {
              store.reset();
              Release();
            }};
  }

 private:
  void Release() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      --held_;
    }
    freed_.notify_one();
  }
  CatalogPool& pool_;
  const int limit_;
  std::mutex mutex_;
  std::condition_variable freed_;
  int held_ = 0;
};

int Serve(const spec::Mesh& mesh, const std::string& catalog_location,
          const ServeOptions& options) {
  const auto colon = options.listen.rfind(':');
  if (colon == std::string::npos) {
    throw Error(ErrorCode::kUsage, "--listen takes HOST:PORT, e.g. 127.0.0.1:8080");
  }
  std::string host = options.listen.substr(0, colon);
  const std::string port_text = options.listen.substr(colon + 1);
  int port = 0;
  const auto parsed = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (parsed.ec != std::errc() || parsed.ptr != port_text.data() + port_text.size() || port <= 0 ||
      port > 65535) {
    throw Error(ErrorCode::kUsage, "invalid port in --listen");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:8080
  }

  // Catalog connections are opened up front (a wrong location fails at start) and
  // lent to requests; a request holds one only while it runs.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int pool_size = std::max(8, 4 * cores);
  CatalogPool pool(catalog_location, pool_size, options.seal_folder);
  // On PostgreSQL the generation is followed by notification: a kept answer then costs
  // no round trip to the database (docs/BENCHMARKS.md, "Many servers on one catalog").
  std::shared_ptr<const catalog::GenerationWatch> watch = pool.Lease()->WatchGeneration();
  // One mesh for the REST API and the PostgreSQL sessions: a product or dashboard saved
  // through the API is there for both at once.
  auto meshes = std::make_shared<spec::MeshSource>(mesh);
  Api api(
      meshes, [&pool] { return pool.Lease(); }, CANOPY_VERSION, watch);

  // Network threads only read and write; the API (which may run a governed query and
  // block on DuckDB) runs on the workers.
  const int io_threads = options.io_threads > 0 ? options.io_threads : std::max(4, 2 * cores);
  const size_t workers_count =
      static_cast<size_t>(options.threads > 0 ? options.threads : std::max(16, 8 * cores));

  api.set_max_upload_bytes(options.max_upload_bytes);
  Server server(api, options.max_body_bytes, options.max_upload_bytes);
  net::io_context ioc(io_threads);

  // Listen: the first address of HOST that binds, with the system's maximum backlog.
  tcp::acceptor acceptor(net::make_strand(ioc));
  {
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(
        host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    bool bound = false;
    if (!ec) {
      for (const auto& entry : endpoints) {
        beast::error_code bind_ec;
        tcp::acceptor candidate(net::make_strand(ioc));
        candidate.open(entry.endpoint().protocol(), bind_ec);
        if (!bind_ec) candidate.set_option(net::socket_base::reuse_address(true), bind_ec);
        if (!bind_ec) candidate.bind(entry.endpoint(), bind_ec);
        if (!bind_ec) candidate.listen(SOMAXCONN, bind_ec);
        if (!bind_ec) {
          acceptor = std::move(candidate);
          bound = true;
          break;
        }
      }
    }
    if (!bound) {
      throw Error(ErrorCode::kFailed, "cannot listen on " + options.listen,
                  "is the port taken? choose another with --listen");
    }
  }
  auto listener = std::make_shared<Listener>(server, ioc, std::move(acceptor));

  // PostgreSQL's protocol, beside HTTP, on the same catalog pool and the same guard.
  PgShare pg_share(pool, pool_size / 2);
  std::unique_ptr<pgwire::PgListener> pg;
  if (!options.pg_listen.empty()) {
    pgwire::PgOptions pg_options;
    pg_options.listen = options.pg_listen;
    pg_options.max_connections = options.pg_max_connections;
    pg_options.idle_timeout_s = options.pg_idle_timeout_s;
    pg_options.tls_cert = options.pg_tls_cert;
    pg_options.tls_key = options.pg_tls_key;
    pg_options.auth = options.pg_auth;
    pg_options.version = CANOPY_VERSION;
    pg = std::make_unique<pgwire::PgListener>(
        meshes, [&pg_share] { return pg_share.Lease(); }, pg_options);
  }

  // SIGTERM or SIGINT: stop accepting, close connections that wait for a request, let
  // the requests in flight finish.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&server, &listener](beast::error_code ec, int signal) {
    if (ec) return;
    std::fprintf(stderr, "%s received %s: finishing requests in flight, then stopping\n",
                 NowIso8601().c_str(), signal == SIGINT ? "SIGINT" : "SIGTERM");
    server.stopping = true;
    listener->Close();
    // Called without the lock: a canceller may drop the last reference to a session.
    std::vector<std::function<void()>> cancellers;
    {
      std::lock_guard<std::mutex> lock(server.mutex);
      for (const auto& [session, cancel] : server.idle_cancellers) cancellers.push_back(cancel);
      server.stop_requested = true;
    }
    for (const auto& cancel : cancellers) cancel();
    server.changed.notify_all();
  });

  net::thread_pool workers(workers_count);
  server.workers = &workers;
  auto work = net::make_work_guard(ioc);  // the io threads stay while workers may post
  listener->Accept();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(io_threads));
  for (int i = 0; i < io_threads; ++i) {
    threads.emplace_back([&ioc] {
      for (;;) {
        try {
          ioc.run();
          return;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "%s error in the server: %s\n", NowIso8601().c_str(), e.what());
        }
      }
    });
  }
  std::fprintf(stderr, "canopy %s serving mesh '%s' on http://%s (%zu workers); the UI is at /\n",
               CANOPY_VERSION, mesh.name.c_str(), options.listen.c_str(), workers_count);
  if (pg != nullptr) {
    pg->Start();
    std::fprintf(stderr, "PostgreSQL clients on %s (user: a mesh user; password: a token)\n",
                 options.pg_listen.c_str());
  }

  {
    std::unique_lock<std::mutex> lock(server.mutex);
    server.changed.wait(lock, [&server] { return server.stop_requested; });
    // Every connection ends after its request in flight (a stream included).
    server.changed.wait_for(lock, kStopTimeout,
                            [&server] { return server.idle_cancellers.empty(); });
  }
  if (pg != nullptr) pg->Stop();
  work.reset();
  ioc.stop();
  for (auto& thread : threads) thread.join();
  server.abandoned = true;  // a worker still writing gives up; one still querying finishes
  workers.join();
  std::fprintf(stderr, "%s stopped\n", NowIso8601().c_str());
  return 0;
}

}  // namespace canopy::server
