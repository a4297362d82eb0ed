// The REST API of DESIGN §6, independent of any HTTP library: a request in, a
// response out. server.cpp adapts it to the network; tests can call it directly.
//
// Thread safety: Handle may be called from many threads at once; each call leases
// its own catalog connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "spec/mesh_source.h"
#include "spec/model.h"

namespace canopy::server {

struct HttpRequest {
  std::string method;  // GET, POST, DELETE …
  std::string path;    // without the query string
  std::map<std::string, std::string> query;
  std::string body;
  std::string authorization;  // the Authorization header, as sent
  std::string peer;           // the client's address (empty in-process: then never throttled)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // When set, the body is written by this function in pieces (chunked transfer);
  // `write` returns false when the client has gone away; an empty piece sends what is
  // gathered at once (bodies are otherwise sent in pieces of 16 KiB or more).
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;
  int64_t retry_after = 0;     // seconds, for a 429: sent as Retry-After
  std::string principal;       // who asked, for the request log ("-" when nobody)
  std::shared_ptr<void> hold;  // kept alive until the response is written (e.g. a catalog lease)
};

// Lends a catalog connection for the duration of one request; returned when the last
// copy of the pointer goes.
using CatalogLease = std::function<std::shared_ptr<catalog::CatalogStore>()>;

// A fixed set of catalog connections shared by the server's workers: opened up front,
// lent one at a time, waited for when all are out. Thread-safe.
class CatalogPool {
 public:
  CatalogPool(const std::string& location, int size, const std::string& seal_folder = "");
  std::shared_ptr<catalog::CatalogStore> Lease();
  // The same, waiting at most `wait`: then Error(kFailed), the server being busy.
  std::shared_ptr<catalog::CatalogStore> Lease(std::chrono::milliseconds wait);

 private:
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<catalog::CatalogStore>> free_;
};

class ResponseCache;

class Api {
 public:
  // `watch`, when given, says the catalog's generation without a query (a server on
  // PostgreSQL); without it each kept answer asks the leased catalog.
  Api(std::shared_ptr<spec::MeshSource> meshes, CatalogLease lease, std::string version,
      std::shared_ptr<const catalog::GenerationWatch> watch = nullptr);
  // The same over a copy of `mesh`.
  Api(const spec::Mesh& mesh, CatalogLease lease, std::string version,
      std::shared_ptr<const catalog::GenerationWatch> watch = nullptr);

  // Answers one request under /api/v1/. Never throws: errors become
  // {"error":{"code","message"}} with the status of their ErrorCode.
  HttpResponse Handle(const HttpRequest& request) const;

  // The largest file a member may upload into a domain (POST …/uploads); 64 MiB unless set.
  void set_max_upload_bytes(size_t bytes) { max_upload_bytes_ = bytes; }
  size_t max_upload_bytes() const { return max_upload_bytes_; }

 private:
  std::shared_ptr<spec::MeshSource> meshes_;  // replaced whole when the builder saves a product
  CatalogLease lease_;
  std::string version_;
  // Catalog reads answered before, by principal and URL, reused while the catalog's
  // generation is unchanged (and for at most a second: freshness depends on the clock).
  std::shared_ptr<ResponseCache> cache_;
  std::shared_ptr<const catalog::GenerationWatch> watch_;
  size_t max_upload_bytes_ = size_t{64} << 20;
};

// The OpenAPI 3 document describing every endpoint.
std::string OpenApiDocument(const std::string& version);

}  // namespace canopy::server
