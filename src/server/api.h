// The REST API of DESIGN §6, independent of any HTTP library: a request in, a
// response out. server.cpp adapts it to the network; tests can call it directly.
//
// Thread safety: Handle may be called from many threads at once; each call uses the
// catalog its thread gets from `catalog_for_thread`.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "spec/model.h"

namespace canopy::server {

struct HttpRequest {
  std::string method;  // GET, POST, DELETE …
  std::string path;    // without the query string
  std::map<std::string, std::string> query;
  std::string body;
  std::string authorization;  // the Authorization header, as sent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // When set, the body is written by this function in pieces (chunked transfer);
  // `write` returns false when the client has gone away.
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;
  std::string principal;  // who asked, for the request log ("-" when nobody)
};

class Api {
 public:
  Api(const spec::Mesh& mesh, std::function<catalog::CatalogStore&()> catalog_for_thread,
      std::string version);

  // Answers one request under /api/v1/. Never throws: errors become
  // {"error":{"code","message"}} with the status of their ErrorCode.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  const spec::Mesh& mesh_;
  std::function<catalog::CatalogStore&()> catalog_;
  std::string version_;
};

// The OpenAPI 3 document describing every endpoint.
std::string OpenApiDocument(const std::string& version);

}  // namespace canopy::server
