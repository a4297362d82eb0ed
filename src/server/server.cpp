#include "server/server.h"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/error.h"
#include "scaffold/embedded.h"
#include "server/api.h"

#ifndef CANOPY_VERSION
#define CANOPY_VERSION "0.0.0"
#endif

namespace canopy::server {
namespace {

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

// Who made the request, and when it started: set by the handler, read by the logger
// (both run on the worker thread that serves the request).
thread_local std::string t_principal = "-";
thread_local std::chrono::steady_clock::time_point t_started;

}  // namespace

int Serve(const spec::Mesh& mesh, const std::string& catalog_location,
          const ServeOptions& options) {
  const auto colon = options.listen.rfind(':');
  if (colon == std::string::npos) {
    throw Error(ErrorCode::kUsage, "--listen takes HOST:PORT, e.g. 127.0.0.1:8080");
  }
  const std::string host = options.listen.substr(0, colon);
  const int port = std::atoi(options.listen.substr(colon + 1).c_str());
  if (port <= 0 || port > 65535) throw Error(ErrorCode::kUsage, "invalid port in --listen");

  // Catalog connections are opened up front (a wrong location fails at start) and
  // lent to requests; a request holds one only while it runs.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CatalogPool pool(catalog_location, std::max(8, 4 * cores));
  Api api(
      mesh, [&pool] { return pool.Lease(); }, CANOPY_VERSION);

  // Signals are taken by one thread only; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  httplib::Server http;
  // cpp-httplib gives each keep-alive connection a worker while it lasts: size the
  // pool for the connections expected, not for the cores (idle workers cost little).
  const size_t workers =
      static_cast<size_t>(options.threads > 0 ? options.threads : std::max(128, 32 * cores));
  http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  http.set_payload_max_length(options.max_body_bytes);
  http.set_keep_alive_max_count(1000);
  http.set_tcp_nodelay(true);  // without it, Nagle and delayed ACKs add 40 ms per response
  http.set_read_timeout(30, 0);
  http.set_write_timeout(60, 0);
  http.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                            {"Referrer-Policy", "no-referrer"},
                            {"Cache-Control", "no-store"}});

  http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    t_started = std::chrono::steady_clock::now();
    t_principal = "-";
    return httplib::Server::HandlerResponse::Unhandled;
  });

  auto api_handler = [&api](const httplib::Request& req, httplib::Response& res) {
    HttpRequest request;
    request.method = req.method;
    request.path = req.path;
    for (const auto& [key, value] : req.params) request.query[key] = value;
    request.body = req.body;
    request.authorization = req.get_header_value("Authorization");
    HttpResponse response = api.Handle(request);
    t_principal = response.principal;
    res.status = response.status;
    if (response.stream) {
      auto stream = std::make_shared<decltype(response.stream)>(std::move(response.stream));
      auto hold = response.hold;
      res.set_chunked_content_provider(
          response.content_type, [stream, hold](size_t, httplib::DataSink& sink) {
            (*stream)([&sink](std::string_view piece) {
              return sink.is_writable() && sink.write(piece.data(), piece.size());
            });
            sink.done();
            return true;
          });
    } else {
      res.set_content(response.body, response.content_type);
    }
  };
  const std::string api_pattern = R"(/api/.*)";
  http.Get(api_pattern, api_handler);
  http.Post(api_pattern, api_handler);
  http.Delete(api_pattern, api_handler);
  http.Put(api_pattern, api_handler);

  // The web UI: embedded files; any other path is the single-page app.
  http.Get(R"(/(.*))", [](const httplib::Request& req, httplib::Response& res) {
    std::string path = req.path.substr(1);
    const scaffold::EmbeddedFile* file = path.empty() ? nullptr : FindWebFile(path);
    if (file == nullptr) {
      file = FindWebFile("index.html");
      path = "index.html";
    }
    if (file == nullptr) {
      res.set_content(
          "<!doctype html><title>Canopy</title><p>This canopy was built without "
          "its web UI (npm was missing at build time). The REST API is at "
          "/api/v1/.</p>",
          "text/html; charset=utf-8");
      return;
    }
    res.set_content(std::string(reinterpret_cast<const char*>(file->data), file->size),
                    ContentType(path));
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; script-src 'self'; style-src 'self' "
                   "'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'");
  });

  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* code = res.status == 413   ? "payload_too_large"
                       : res.status == 404 ? "not_found"
                                           : "bad_request";
    const std::string message =
        res.status == 413 ? "the request body is too large" : "the request could not be served";
    res.set_content(
        "{\"error\":{\"code\":\"" + std::string(code) + "\",\"message\":\"" + message + "\"}}",
        "application/json");
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content(R"({"error":{"code":"internal","message":"internal error"}})",
                        "application/json");
      });

  // One line per request: never a token, never result data.
  std::mutex log_mutex;
  http.set_logger([&log_mutex](const httplib::Request& req, const httplib::Response& res) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_started)
            .count();
    char line[512];
    std::snprintf(line, sizeof line, "%s %s %s %d %.1fms %s\n", NowIso8601().c_str(),
                  req.method.c_str(), req.path.c_str(), res.status, ms, t_principal.c_str());
    std::lock_guard<std::mutex> lock(log_mutex);
    std::fputs(line, stderr);
  });

  // Debian's cpp-httplib is built with a listen backlog of 5: a burst of new
  // connections overflows it and clients wait a second for a SYN retry. Keep the
  // listening socket, and once bound, listen again with the system's maximum.
  int listening = -1;
  http.set_socket_options([&listening](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listening = sock;
  });
  if (!http.bind_to_port(host, port)) {
    throw Error(ErrorCode::kFailed, "cannot listen on " + options.listen,
                "is the port taken? choose another with --listen");
  }
  if (listening >= 0) ::listen(listening, SOMAXCONN);
  std::atomic<bool> stopping{false};
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    stopping = true;
    std::fprintf(stderr, "%s received %s: finishing requests in flight, then stopping\n",
                 NowIso8601().c_str(), signal == SIGINT ? "SIGINT" : "SIGTERM");
    http.stop();
  });
  std::fprintf(stderr, "canopy %s serving mesh '%s' on http://%s (%zu workers); the UI is at /\n",
               CANOPY_VERSION, mesh.name.c_str(), options.listen.c_str(), workers);
  const bool listened = http.listen_after_bind();
  if (!stopping) {
    // The listener failed on its own: wake the waiter so it can be joined.
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  std::fprintf(stderr, "%s stopped\n", NowIso8601().c_str());
  return listened || stopping ? 0 : 1;
}

}  // namespace canopy::server
