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
  auto chosen_format = [&] { return format == "json" ? OutputFormat::kJson : OutputFormat::kTable; };
  validate->callback([&] { exit_code = RunValidate(with_mesh(), chosen_format()); });

  std::vector<std::string> build_targets;
  bool force = false;
  int jobs = 0;
  auto* build = app.add_subcommand(
      "build", "Build products and their upstreams; check contracts; publish what passes");
  build->add_option("targets", build_targets, "Domains or domain.product (default: everything)");
  build->add_flag("--force", force, "Rebuild products even when nothing changed");
  build->add_option("--jobs", jobs, "Products built in parallel (default: one per core)")
      ->check(CLI::Range(1, 64));
  build->callback([&] { exit_code = RunBuildCommand(with_mesh(), build_targets, force, jobs); });

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
  search->add_option("--limit", search_limit, "At most this many results")->check(CLI::Range(1, 1000));
  add_format(search);
  search->callback([&] {
    exit_code = RunSearch(with_mesh(), search_text, chosen_format(), search_limit);
  });

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
