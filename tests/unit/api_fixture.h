// For suites that call the REST API in the process over a built copy of the governance test
// mesh (tests/governance/mesh): the copy, its catalog, a token per user and one Api whose
// mesh is replaced by saves, as a server's is.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "build/check_mesh.h"
#include "build/runner.h"
#include "build/storage.h"
#include "core/diagnostics.h"
#include "governance/tokens.h"
#include "server/api.h"
#include "spec/loader.h"
#include "spec/mesh_source.h"
#include "support/build_paths.h"
#include "support/test_store.h"

namespace canopy::test {

struct GovernanceMeshApi {
  std::filesystem::path dir;  // the mesh is dir/mesh
  std::unique_ptr<catalog::CatalogStore> catalog;
  std::shared_ptr<spec::MeshSource> meshes;
  std::unique_ptr<server::Api> api;
  std::map<std::string, std::string> tokens;

  ~GovernanceMeshApi() {
    api.reset();
    catalog.reset();
    std::filesystem::remove_all(dir);
  }

  // A request as `user` (their token), its streamed body gathered.
  server::HttpResponse Call(const std::string& method, const std::string& path,
                            const std::string& user, const std::string& body) const {
    server::HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.authorization = "Bearer " + tokens.at(user);
    auto response = api->Handle(request);
    if (response.stream) {
      response.stream([&](std::string_view piece) {
        response.body.append(piece);
        return true;
      });
    }
    return response;
  }
};

// Makes `out`: the copy under a temp folder named with `prefix`, `prepare` run on the mesh
// folder before it loads, checked as `canopy validate` would, built, tokens for alice, ben,
// dana, zoe and carl. Fails the calling test (ASSERT) when any step does.
inline void MakeGovernanceMeshApi(
    std::unique_ptr<GovernanceMeshApi>& out, const std::string& prefix,
    const std::function<void(const std::filesystem::path&)>& prepare = {}) {
  namespace fs = std::filesystem;
  ShareCatalogInSuite();
  auto env = std::make_unique<GovernanceMeshApi>();
  env->dir = fs::temp_directory_path() / (prefix + std::to_string(::getpid()));
  fs::remove_all(env->dir);
  fs::create_directories(env->dir);
  fs::copy(fs::path(canopy::test::kTestDir) / "governance/mesh", env->dir / "mesh",
           fs::copy_options::recursive);
  if (prepare) prepare(env->dir / "mesh");
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh((env->dir / "mesh").string(), diagnostics);
  build::CheckMesh(mesh, diagnostics);
  ASSERT_FALSE(diagnostics.HasErrors());
  env->catalog = OpenTestCatalog((env->dir / "mesh/.canopy/catalog.db").string());
  auto storage = build::NewLocalStorage();
  ASSERT_TRUE(build::RunBuild(mesh, *env->catalog, *storage, {}, nullptr).ok());
  for (const char* user : {"alice", "ben", "dana", "zoe", "carl"}) {
    env->tokens[user] = governance::IssueToken(*env->catalog, user).token;
  }
  env->meshes = std::make_shared<spec::MeshSource>(mesh);
  catalog::CatalogStore* store = env->catalog.get();
  env->api = std::make_unique<server::Api>(
      env->meshes, [store] { return std::shared_ptr<catalog::CatalogStore>(store, [](auto*) {}); },
      "test");
  out = std::move(env);
}

}  // namespace canopy::test
