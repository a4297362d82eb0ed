#include "server/server_util.h"

#include <fstream>
#include <sstream>

#include "build/check_mesh.h"
#include "core/error.h"
#include "core/hash.h"
#include "spec/loader.h"

namespace fs = std::filesystem;

namespace canopy::server {
namespace {

void WriteText(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  const fs::path staging = path.parent_path() / (".canopy-save-" + RandomHex(8));
  {
    std::ofstream out(staging, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(staging, ec);
      throw Error(ErrorCode::kFailed, "could not write " + path.string(),
                  "check that the server may write the mesh folder and the disk has room");
    }
  }
  fs::rename(staging, path);
}

}  // namespace

nlohmann::ordered_json ValueJson(const governance::Value& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::ordered_json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else {
          return v;
        }
      },
      value);
}

void CollectRows::Row(const std::vector<governance::Value>& row) {
  nlohmann::ordered_json values = nlohmann::ordered_json::array();
  for (const auto& value : row) values.push_back(ValueJson(value));
  rows_.push_back(std::move(values));
}

std::optional<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::ordered_json DiagnosticsJson(const Diagnostics& diagnostics) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& d : diagnostics.items()) {
    out.push_back({{"severity", d.severity == Severity::kError ? "error" : "warning"},
                   {"file", d.location.file},
                   {"line", d.location.line},
                   {"column", d.location.column},
                   {"message", d.message},
                   {"hint", d.hint}});
  }
  return out;
}

Applied ApplyFiles(const std::string& root,
                   const std::vector<std::pair<fs::path, std::string>>& files,
                   const std::vector<fs::path>& new_folders,
                   const std::vector<fs::path>& removals) {
  std::vector<std::pair<fs::path, std::optional<std::string>>> before;
  for (const auto& [path, content] : files) before.emplace_back(path, ReadText(path));
  for (const auto& path : removals) before.emplace_back(path, ReadText(path));
  auto restore = [&] {
    std::error_code ec;
    for (const auto& [path, content] : before) {
      if (content) {
        WriteText(path, *content);
      } else {
        fs::remove(path, ec);
      }
    }
    for (const auto& folder : new_folders) fs::remove(folder, ec);  // only when left empty
  };
  Applied applied;
  try {
    for (const auto& [path, content] : files) WriteText(path, content);
    for (const auto& path : removals) {
      std::error_code ec;
      fs::remove(path, ec);
      if (ec)
        throw Error(ErrorCode::kFailed, "cannot remove " + path.string() + ": " + ec.message());
    }
    spec::Mesh mesh = spec::LoadMesh(root, applied.diagnostics);
    build::CheckMesh(mesh, applied.diagnostics);
    if (!applied.diagnostics.HasErrors()) applied.mesh = std::move(mesh);
  } catch (...) {
    restore();
    throw;
  }
  if (!applied.mesh) restore();
  return applied;
}

}  // namespace canopy::server
