// canopy serve: the REST API and the web UI over HTTP.
#pragma once

#include <cstddef>
#include <string>

#include "spec/model.h"

namespace canopy::server {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";       // HOST:PORT
  int threads = 0;                             // API workers; 0: 8 per core (at least 16)
  size_t max_body_bytes = 1 << 20;             // larger request bodies get 413
  size_t max_upload_bytes = size_t{64} << 20;  // the same for a file uploaded into a domain
  int io_threads = 0;                          // network threads; 0: 2 per core (at least 4)
  std::string seal_folder;  // where a PostgreSQL catalog's audit key is (OpenCatalog)
  std::string pg_listen;    // HOST:PORT for the PostgreSQL protocol; "": none
  int pg_max_connections = 64;
  int pg_idle_timeout_s = 3600;
  std::string pg_tls_cert;  // PEM certificate and key: TLS for PostgreSQL clients
  std::string pg_tls_key;
  std::string pg_auth;  // pgwire::PgOptions::auth
};

// Serves until SIGTERM or SIGINT, then stops accepting, lets in-flight requests
// finish, and returns 0. Throws Error(kFailed) when it cannot listen.
int Serve(const spec::Mesh& mesh, const std::string& catalog_location, const ServeOptions& options);

}  // namespace canopy::server
