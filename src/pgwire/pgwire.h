// The governed mesh over PostgreSQL's wire protocol (v3), for psql, drivers and BI
// tools: `canopy serve --pg-listen HOST:PORT`. The user name is the mesh's; the
// password is one of the user's Canopy tokens. Every statement goes through the same
// guard, decisions, masks, row filters, limits and audit as the REST API.
//
// Each connection has a thread of its own, as PostgreSQL gives each a process: a
// connection runs one statement at a time, and a long query blocks nobody else. The
// number of connections is capped; a connection idle past its timeout is closed.
//
// What is there: startup (SSLRequest answered "yes" when a certificate is configured,
// GSSENCRequest "no"), TLS through OpenSSL, cleartext password authentication (refused
// from other than loopback addresses unless the connection is encrypted), the simple and the
// extended query protocol (text and binary parameters and results, portals with row limits),
// cursors (DECLARE, FETCH, CLOSE), session statements tools send (SET, SHOW, BEGIN/COMMIT/ROLLBACK,
// SELECT version()), pg_catalog and information_schema as this user may see the mesh, errors with
// SQLSTATEs, CancelRequest (by the session's secret key; the statement stops with 57014),
// Terminate. Not yet: SCRAM.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "catalog/catalog.h"
#include "spec/mesh_source.h"
#include "spec/model.h"

namespace canopy::pgwire {

struct PgOptions {
  std::string listen;         // HOST:PORT
  int max_connections = 64;   // more are refused with SQLSTATE 53300
  int idle_timeout_s = 3600;  // a connection that sends nothing for this long is closed
  std::string version;        // Canopy's, in server_version and version()
  std::string tls_cert;       // PEM certificate and key: SSLRequest is answered "yes"
  std::string tls_key;
  // How clients sign in: "scram-sha-256" (the token is proven, never sent; Canopy tokens
  // made since catalog schema 8), "password" (the token or an OIDC JWT, in the clear over
  // loopback or TLS only), or "" — SCRAM unless the mesh takes OIDC tokens.
  std::string auth;
};

using CatalogLease = std::function<std::shared_ptr<catalog::CatalogStore>()>;

class PgListener {
 public:
  // Binds and listens; throws Error(kFailed) when it cannot (or kUsage for a bad
  // HOST:PORT). Accepts nothing until Start.
  PgListener(std::shared_ptr<const spec::MeshSource> meshes, CatalogLease lease, PgOptions options);
  // The same over a copy of `mesh`.
  PgListener(const spec::Mesh& mesh, CatalogLease lease, PgOptions options);
  ~PgListener();
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

  // Accepts connections on a thread of its own.
  void Start();
  // Stops accepting, ends every connection (a statement in flight finishes first, then
  // its connection is closed), and waits for them.
  void Stop();
  // The port bound (useful with port 0).
  int port() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace canopy::pgwire
