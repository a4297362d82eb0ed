// Fuzz target: the REST API, canopy::server::Api::Handle, on requests made from the
// bytes, over a copy of tests/governance/mesh with a SQLite catalog synced with its
// specs (nothing built, so queries find no live version).
//
// The input is text:
//   line 1: METHOD PATH[?name=value&name=value…]
//   line 2: the Authorization header as sent; "@token" stands for "Bearer " and a real
//           token of erin (an admin), so inputs with and without a valid token both reach
//           the handlers (the seeds hold each request both ways)
//   the rest: the body.
// POST /api/v1/builds is left out: it runs a real build of a domain (seconds, files
// written), which is not what this target is for.
//
// Findings: crashes and sanitizer reports, hangs, an exception out of Handle (it must
// never throw), a status outside {200, 201, 400, 401, 403, 404, 409, 413} other than a
// 500 whose error code is "failed" (a 500 "internal" is a bug), and a JSON response
// whose body is not JSON.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "build/runner.h"
#include "catalog/catalog.h"
#include "core/diagnostics.h"
#include "fuzz/fuzz_support.h"
#include "governance/tokens.h"
#include "server/api.h"
#include "spec/loader.h"
#include "spec/validate.h"
#include "support/build_paths.h"

namespace fs = std::filesystem;
using namespace canopy;
using nlohmann::json;

namespace {

struct Fixture {
  std::unique_ptr<catalog::CatalogStore> catalog;
  std::unique_ptr<server::Api> api;
  std::string token;
};

Fixture& Setup() {
  static Fixture* fixture = [] {
    const fs::path folder = fuzz::TempFolder("api");
    fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", folder / "mesh",
             fs::copy_options::recursive);
    Diagnostics diagnostics;
    spec::Mesh mesh = spec::LoadMesh((folder / "mesh").string(), diagnostics);
    spec::ValidateMesh(mesh, diagnostics);
    if (diagnostics.HasErrors()) fuzz::Finding("the governance mesh does not load");
    auto* f = new Fixture;
    fs::create_directories(folder / "mesh/.canopy");
    f->catalog = catalog::OpenCatalog((folder / "mesh/.canopy/catalog.db").string(),
                                      (folder / "mesh/.canopy").string());
    build::SyncCatalogWithSpec(mesh, *f->catalog);
    f->token = governance::IssueToken(*f->catalog, "erin").token;
    catalog::CatalogStore* store = f->catalog.get();
    f->api = std::make_unique<server::Api>(
        mesh, [store] { return std::shared_ptr<catalog::CatalogStore>(store, [](auto*) {}); },
        "fuzz");
    return f;
  }();
  return *fixture;
}

std::string_view Line(std::string_view& text) {
  const size_t end = text.find('\n');
  const std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  return line;
}

server::HttpRequest Request(std::string_view text, const std::string& token) {
  server::HttpRequest request;
  std::string_view first = Line(text);
  const size_t space = first.find(' ');
  request.method = std::string(first.substr(0, space));
  std::string_view target = space == std::string_view::npos ? "" : first.substr(space + 1);
  const size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      const size_t eq = pair.find('=');
      request.query[std::string(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
      query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    }
  }
  const std::string_view authorization = Line(text);
  request.authorization =
      authorization == "@token" ? "Bearer " + token : std::string(authorization);
  request.body = std::string(text);
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& fixture = Setup();
  const server::HttpRequest request =
      Request(std::string_view(reinterpret_cast<const char*>(data), size), fixture.token);
  if (request.method == "POST" && request.path.rfind("/api/v1/builds", 0) == 0) return 0;

  server::HttpResponse response = fixture.api->Handle(request);  // never throws
  if (response.stream) {
    response.stream([&](std::string_view piece) {
      if (response.body.size() < (1u << 20)) response.body.append(piece);
      return true;
    });
  }
  const std::string what =
      request.method + " " + request.path + " answered " + std::to_string(response.status);
  static const std::set<int> kExpected = {200, 201, 400, 401, 403, 404, 409, 413};
  if (kExpected.count(response.status) == 0) {
    fuzz::Check(response.status == 500, what + ": " + response.body);
    const json error = json::parse(response.body, nullptr, false);
    fuzz::Check(error.is_object() && error.contains("error") && error["error"].is_object() &&
                    error["error"].value("code", "") == "failed",
                what + ": " + response.body);
  }
  if (response.content_type.rfind("application/json", 0) == 0 && !response.stream) {
    fuzz::Check(json::accept(response.body), what + " with a body that is not JSON");
  }
  return 0;
}
