#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"

#ifndef CANOPY_VERSION
#define CANOPY_VERSION "0.0.0"
#endif

namespace canopy::cli {

int RunCli(int argc, char** argv) {
  CLI::App app{
      "Canopy: a data mesh platform in one binary.\n"
      "Domains own their data products; the platform builds, governs and serves them.",
      "canopy"};
  app.set_version_flag("--version", std::string("canopy ") + CANOPY_VERSION);
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok, 1 failed, 2 usage error, 3 permission denied.");
  app.fallthrough();

  GlobalOptions global;
  std::string mesh;
  auto with_mesh = [&] {
    if (!mesh.empty()) global.mesh = mesh;
    return global;
  };
  app.add_option("--mesh", mesh,
                 "The mesh folder (default: $CANOPY_MESH, or the nearest folder with a mesh.yaml "
                 "from here upward)");

  int exit_code = 0;
  std::string format = "table";
  auto add_format = [&](CLI::App* command) {
    command->add_option("--format", format, "Output format")
        ->check(CLI::IsMember({"table", "json"}));
  };

  auto* validate = app.add_subcommand("validate", "Parse and check every spec of the mesh");
  add_format(validate);
  auto chosen_format = [&] {
    return format == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  };
  validate->callback([&] { exit_code = RunValidate(with_mesh(), chosen_format()); });

  std::vector<std::string> build_targets;
  bool force = false;
  int jobs = 0;
  auto* build = app.add_subcommand(
      "build", "Build products and their upstreams; check contracts; publish what passes");
  build->add_option("targets", build_targets, "Domains or domain.product (default: everything)");
  std::vector<std::string> build_domains;
  build->add_option("--domain", build_domains,
                    "Only this domain's products (repeatable): a domain's runner; what they read "
                    "from other domains comes from those domains' published versions");
  build->add_flag("--force", force, "Rebuild products even when nothing changed");
  build->add_option("--jobs", jobs, "Products built in parallel (default: one per core)")
      ->check(CLI::Range(1, 64));
  build->callback(
      [&] { exit_code = RunBuildCommand(with_mesh(), build_targets, build_domains, force, jobs); });

  auto* products = app.add_subcommand("products", "List the data products of the mesh");
  add_format(products);
  products->callback([&] { exit_code = RunProducts(with_mesh(), chosen_format()); });

  std::string address;
  auto* show = app.add_subcommand("show", "Show one data product: contract, live version, quality");
  show->add_option("product", address, "domain.product")->required();
  add_format(show);
  show->callback([&] { exit_code = RunShow(with_mesh(), address, chosen_format()); });

  std::string search_text;
  int search_limit = 20;
  auto* search = app.add_subcommand("search", "Search products by name, description, tag, column");
  search->add_option("text", search_text, "Words to look for")->required();
  search->add_option("--limit", search_limit, "At most this many results")
      ->check(CLI::Range(1, 1000));
  add_format(search);
  search->callback(
      [&] { exit_code = RunSearch(with_mesh(), search_text, chosen_format(), search_limit); });

  std::string init_dir = ".";
  std::string init_domain = "sales";
  std::string init_owner;
  std::string init_name;
  auto* init = app.add_subcommand("init", "Scaffold a mesh with one domain and one product");
  init->add_option("dir", init_dir, "Folder to create the mesh in (default: here)");
  init->add_option("--domain", init_domain, "Name of the first domain");
  init->add_option("--owner", init_owner, "The first user, owner of the domain (default: $USER)");
  init->add_option("--name", init_name, "Mesh name (default: the folder's name)");
  init->callback([&] { exit_code = RunInit(init_dir, init_domain, init_owner, init_name); });

  std::string example_dir = "acme";
  double scale = 1;
  bool overwrite = false;
  auto* example = app.add_subcommand(
      "example", "Write the example mesh (5 domains, cross-domain products, PII) with data");
  example->add_option("dir", example_dir, "Folder to write it to (default: acme)");
  example->add_option("--scale", scale, "Data size: 1 is about a million order lines")
      ->check(CLI::Range(0.0001, 1000.0));
  example->add_flag("--force", overwrite, "Overwrite an existing mesh in the folder");
  example->callback([&] { exit_code = RunExample(example_dir, scale, overwrite); });

  // canopy query --as USER [--format …] [--output FILE] [--max-rows N] SQL
  std::string as;
  std::string query_sql;
  std::string query_format = "table";
  std::string output;
  int64_t max_rows = 0;
  auto* query = app.add_subcommand("query", "Run a governed SQL query as a principal");
  query->add_option("--as", as, "The principal: a user name, or domain:NAME")->required();
  query->add_option("sql", query_sql, "One SELECT over output ports (domain.port)")->required();
  query->add_option("--format", query_format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json", "parquet"}));
  query->add_option("--output", output, "Write the result to FILE instead of stdout");
  query->add_option("--max-rows", max_rows, "At most this many rows (default: the mesh's limit)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  query->callback(
      [&] { exit_code = RunQuery(with_mesh(), as, query_sql, query_format, output, max_rows); });

  std::string grant_target;
  std::string grantee;
  for (const bool revoke : {false, true}) {
    auto* command = app.add_subcommand(
        revoke ? "revoke" : "grant", revoke ? "Revoke a runtime grant (owners and admins)"
                                            : "Grant read access to a product (owners and admins)");
    command->add_option("product", grant_target, "domain.product")->required();
    command->add_option(revoke ? "--from" : "--to", grantee, "user:NAME, group:NAME or domain:NAME")
        ->required();
    command->add_option("--as", as, "Who grants: an owner of the domain or an admin")->required();
    command->callback(
        [&, revoke] { exit_code = RunGrant(with_mesh(), grant_target, grantee, as, revoke); });
  }

  auto* access = app.add_subcommand("access", "Request access, and decide requests");
  access->require_subcommand(1);
  std::string purpose;
  std::string note;
  int64_t request_id = 0;
  auto* request = access->add_subcommand("request", "Ask for read access to a product");
  request->add_option("product", grant_target, "domain.product")->required();
  request->add_option("--as", as, "Who asks")->required();
  request->add_option("--purpose", purpose, "Why you need it")->required();
  request->callback([&] { exit_code = RunAccessRequest(with_mesh(), grant_target, as, purpose); });
  for (const bool approve : {true, false}) {
    auto* decide = access->add_subcommand(
        approve ? "approve" : "deny",
        approve ? "Approve a request (owners and admins)" : "Deny a request (owners and admins)");
    decide->add_option("id", request_id, "The request's id (canopy access list)")->required();
    decide->add_option("--as", as, "Who decides")->required();
    decide->add_option("--note", note, "A reason, kept with the decision");
    decide->callback([&, approve] {
      exit_code = RunAccessDecision(with_mesh(), request_id, as, approve, note);
    });
  }
  auto* list = access->add_subcommand("list", "List access requests, newest first");
  add_format(list);
  list->callback([&] { exit_code = RunAccessList(with_mesh(), chosen_format()); });

  bool verify = false;
  int audit_limit = 100;
  auto* audit = app.add_subcommand("audit", "Show the audit log, or verify its hash chain");
  audit->add_flag("--verify", verify, "Check the chain; exit 1 at the first entry that fails");
  bool seal = false;
  audit->add_flag("--seal", seal,
                  "Make the audit key of a catalog from before keys, and checkpoint its head");
  audit->add_option("--limit", audit_limit, "Show the last N entries (0: all)");
  add_format(audit);
  audit->callback(
      [&] { exit_code = RunAudit(with_mesh(), verify, seal, chosen_format(), audit_limit); });

  auto* contract = app.add_subcommand("contract", "Data contracts");
  contract->require_subcommand(1);
  std::string diff_target;
  auto* diff = contract->add_subcommand(
      "diff", "Changes between the published contract and the one in the folder");
  diff->add_option("product", diff_target, "domain.product")->required();
  diff->callback([&] { exit_code = RunContractDiff(with_mesh(), diff_target); });

  auto* export_command = app.add_subcommand(
      "export", "A product in an open standard, or a dashboard's file, on stdout");
  export_command->require_subcommand(1);
  std::string export_target;
  for (const char* standard : {"odcs", "odps"}) {
    auto* sub = export_command->add_subcommand(
        standard, std::string(standard) == "odcs" ? "The product's contract as ODCS v3.1 (YAML)"
                                                  : "The product as ODPS v1.0 (YAML)");
    sub->add_option("product", export_target, "domain.product")->required();
    sub->callback([&, standard] { exit_code = RunExport(with_mesh(), standard, export_target); });
  }
  std::string export_output;
  auto* export_dashboard = export_command->add_subcommand(
      "dashboard", "A dashboard's file (kind: Dashboard, YAML), to keep or move to another mesh");
  export_dashboard->add_option("dashboard", export_target, "domain.dashboard")->required();
  export_dashboard->add_option("--output", export_output, "Write it to FILE instead of stdout");
  export_dashboard->callback(
      [&] { exit_code = RunExportDashboard(with_mesh(), export_target, export_output); });
  auto* export_ol = export_command->add_subcommand(
      "openlineage", "Every recorded build's OpenLineage RunEvents, as JSON Lines");
  export_ol->add_option("--output", export_output, "Write them to FILE instead of stdout");
  export_ol->callback([&] { exit_code = RunExportOpenLineage(with_mesh(), export_output); });

  std::string lineage_target;
  std::string direction = "both";
  std::string lineage_format = "text";
  auto* lineage = app.add_subcommand(
      "lineage", "Where a product's or a column's data comes from and where it goes");
  lineage->add_option("target", lineage_target, "domain.product or domain.product.column")
      ->required();
  lineage
      ->add_option("--direction", direction, "up (sources), down (consumers) or both (the default)")
      ->check(CLI::IsMember({"up", "down", "both"}));
  lineage->add_option("--format", lineage_format, "Output format")
      ->check(CLI::IsMember({"text", "json", "dot"}));
  lineage->callback(
      [&] { exit_code = RunLineage(with_mesh(), lineage_target, direction, lineage_format); });

  auto* import_command = app.add_subcommand("import", "A new draft product from an open standard");
  import_command->require_subcommand(1);
  std::string import_file;
  std::string import_domain;
  std::string import_name;
  auto* import_odcs = import_command->add_subcommand("odcs", "From an ODCS contract");
  import_odcs->add_option("file", import_file, "The ODCS document (YAML)")->required();
  import_odcs->add_option("--domain", import_domain, "The domain that will own it")->required();
  import_odcs->add_option("--name", import_name, "Product name (default: from the document)");
  import_odcs->callback(
      [&] { exit_code = RunImport(with_mesh(), import_file, import_domain, import_name); });

  std::string listen = "127.0.0.1:8080";
  int serve_threads = 0;
  auto* serve = app.add_subcommand("serve", "Serve the REST API and the web UI");
  serve->add_option("--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
  serve->add_option("--threads", serve_threads, "API workers (default: 8 per core, at least 16)")
      ->check(CLI::Range(1, 1024));
  PgServeOptions pg;
  serve->add_option("--pg-listen", pg.listen,
                    "Also speak PostgreSQL's wire protocol on HOST:PORT (e.g. 127.0.0.1:5433): "
                    "psql and drivers, user = a mesh user, password = one of their tokens");
  serve
      ->add_option("--pg-max-connections", pg.max_connections,
                   "PostgreSQL connections at most (default 64)")
      ->check(CLI::Range(1, 10000));
  serve
      ->add_option("--pg-idle-timeout", pg.idle_timeout_s,
                   "Close a PostgreSQL connection idle this many seconds (default 3600)")
      ->check(CLI::Range(1, 86400 * 7));
  serve
      ->add_option("--pg-tls-cert", pg.tls_cert,
                   "TLS certificate (PEM) for PostgreSQL clients; with --pg-tls-key, clients "
                   "may encrypt (sslmode=require) and log in from other machines")
      ->check(CLI::ExistingFile);
  serve->add_option("--pg-tls-key", pg.tls_key, "The certificate's private key (PEM)")
      ->check(CLI::ExistingFile);
  serve
      ->add_option("--pg-auth", pg.auth,
                   "How PostgreSQL clients sign in: scram-sha-256 (the token is proven, never "
                   "sent) or password (a token or an OIDC JWT in the clear, over loopback or "
                   "TLS only); default: scram-sha-256 unless mesh.yaml takes OIDC tokens")
      ->check(CLI::IsMember({"scram-sha-256", "password"}));
  int max_upload_mb = 64;
  serve
      ->add_option("--max-upload-mb", max_upload_mb,
                   "The largest file a domain member may upload for the builder, in MiB "
                   "(default 64)")
      ->check(CLI::Range(1, 4096));
  serve->callback(
      [&] { exit_code = RunServe(with_mesh(), listen, serve_threads, pg, max_upload_mb); });

  auto* token = app.add_subcommand("token", "API tokens for canopy serve");
  token->require_subcommand(1);
  std::string token_user;
  int64_t token_id = 0;
  auto* create = token->add_subcommand("create", "Print a new token for USER, once");
  std::string token_expires;
  create->add_option("user", token_user, "A user of the mesh")->required();
  create->add_option("--expires", token_expires,
                     "Lifetime: a number and s, m, h or d (e.g. 30d); default: mesh.yaml's "
                     "auth.tokens.default_expiry, else never");
  create->callback([&] { exit_code = RunTokenCreate(with_mesh(), token_user, token_expires); });
  auto* token_list = token->add_subcommand("list", "List tokens (never their secrets)");
  add_format(token_list);
  token_list->callback([&] { exit_code = RunTokenList(with_mesh(), chosen_format()); });
  auto* token_revoke = token->add_subcommand("revoke", "Revoke a token");
  token_revoke->add_option("id", token_id, "The token's id")->required();
  token_revoke->callback([&] { exit_code = RunTokenRevoke(with_mesh(), token_id); });

  auto* catalog_command = app.add_subcommand("catalog", "The catalog store");
  catalog_command->require_subcommand(1);
  auto* catalog_info =
      catalog_command->add_subcommand("info", "Which store, its schema version, what it holds");
  add_format(catalog_info);
  catalog_info->callback([&] { exit_code = RunCatalogInfo(with_mesh(), chosen_format()); });
  std::string migrate_to;
  auto* migrate = catalog_command->add_subcommand(
      "migrate", "Copy the SQLite catalog into an empty PostgreSQL one");
  migrate->add_option("--to", migrate_to, "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
      ->required();
  migrate->callback([&] { exit_code = RunCatalogMigrate(with_mesh(), migrate_to); });
  catalog_command
      ->add_subcommand("upgrade",
                       "Apply the schema migrations an older catalog lacks (stop the servers and "
                       "runners that use it first)")
      ->callback([&] { exit_code = RunCatalogUpgrade(with_mesh()); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n  hint: run `canopy --help` for usage\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    if (!e.hint().empty()) std::cerr << "  hint: " << e.hint() << "\n";
    return ExitCodeFor(e.code());
  } catch (const std::exception& e) {
    std::cerr << "error: internal: " << e.what() << "\n";
    return 1;
  }
  return exit_code;
}

}  // namespace canopy::cli
