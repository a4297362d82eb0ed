#include "scaffold/scaffold.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"
#include "scaffold/embedded.h"
#include "spec/validate.h"

namespace fs = std::filesystem;

namespace canopy::scaffold {
namespace {

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Lowercases and replaces what is not allowed, so a folder or login name becomes a name.
std::string Sanitize(const std::string& raw, bool principal) {
  std::string out;
  for (char c : ToLower(raw)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                    (principal && (c == '-' || c == '.'));
    out += ok ? c : '_';
  }
  if (out.empty() || !(out[0] >= 'a' && out[0] <= 'z')) out = (principal ? "u" : "m") + out;
  return out.substr(0, 63);
}

void RefuseExistingMesh(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "mesh.yaml", ec)) {
    throw Error(ErrorCode::kConflict, dir.string() + " already holds a mesh (mesh.yaml exists)",
                "choose another folder; nothing was written");
  }
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw Error(ErrorCode::kConflict, dir.string() + " exists and is not a folder");
  }
}

void WriteFile(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw Error(ErrorCode::kFailed, "cannot write " + path.string());
}

std::string HumanSize(uintmax_t bytes) {
  std::ostringstream out;
  if (bytes >= 1'000'000) {
    out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  } else {
    out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e3 << " kB";
  }
  return out.str();
}

}  // namespace

std::vector<std::string> WriteInitMesh(const std::string& dir_name, const InitOptions& options) {
  const fs::path dir = fs::absolute(dir_name).lexically_normal();
  RefuseExistingMesh(dir);
  std::string mesh = options.mesh_name;
  if (mesh.empty()) mesh = Sanitize(dir.filename().string(), false);
  std::string owner = options.owner;
  if (owner.empty()) {
    const char* user = std::getenv("USER");
    owner = user != nullptr && *user != '\0' && std::string(user) != "root" ? Sanitize(user, true)
                                                                            : "owner";
  }
  if (!spec::IsSqlName(mesh)) {
    throw Error(ErrorCode::kInvalidInput, "mesh name '" + mesh + "' is not valid",
                "use lowercase letters, digits and _");
  }
  if (!spec::IsSqlName(options.domain)) {
    throw Error(ErrorCode::kInvalidInput, "domain name '" + options.domain + "' is not valid",
                "use lowercase letters, digits and _, starting with a letter");
  }
  if (!spec::IsPrincipalName(owner)) {
    throw Error(ErrorCode::kInvalidInput, "owner name '" + owner + "' is not valid",
                "use lowercase letters, digits, '.', '_' and '-'");
  }
  std::vector<std::string> written;
  for (const auto& file : InitFiles()) {
    std::string path = ReplaceAll(file.path, "__domain__", options.domain);
    std::string content(reinterpret_cast<const char*>(file.data), file.size);
    content = ReplaceAll(content, "{{mesh}}", mesh);
    content = ReplaceAll(content, "{{domain}}", options.domain);
    content = ReplaceAll(content, "{{owner}}", owner);
    WriteFile(dir / path, content);
    written.push_back(path);
  }
  return written;
}

ExampleReport WriteExampleMesh(const std::string& dir_name, double scale, bool overwrite) {
  if (!(scale > 0) || scale > 1000) {
    throw Error(ErrorCode::kUsage, "--scale must be above 0 and at most 1000",
                "1 is about a million order lines; 0.01 is quick for tests");
  }
  const fs::path dir = fs::absolute(dir_name).lexically_normal();
  if (!overwrite) RefuseExistingMesh(dir);
  ExampleReport report;
  std::string script;
  for (const auto& file : AcmeFiles()) {
    std::string content(reinterpret_cast<const char*>(file.data), file.size);
    if (std::string(file.path) == "generate.sql") {
      script = content;
      continue;
    }
    WriteFile(dir / file.path, content);
    report.files.emplace_back(file.path);
  }
  if (script.empty()) throw Error(ErrorCode::kInternal, "the example has no generate.sql");

  std::ostringstream scale_text;
  scale_text << std::setprecision(12) << scale;
  // {{dir}} lands inside SQL string literals: double any quote in the path.
  std::string quoted_dir = SqlString(dir.string());
  quoted_dir = quoted_dir.substr(1, quoted_dir.size() - 2);
  script = ReplaceAll(script, "{{scale}}", scale_text.str());
  script = ReplaceAll(script, "{{dir}}", quoted_dir);

  const auto start = std::chrono::steady_clock::now();
  for (const char* folder : {"domains"}) fs::create_directories(dir / folder);
  engine::Database database;
  engine::Connection connection(database);
  try {
    connection.Execute(script);
  } catch (const Error& e) {
    throw Error(ErrorCode::kInternal,
                std::string("generating the example data failed: ") + e.what());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string relative = entry.path().lexically_relative(dir).generic_string();
    if (relative.find("/data/") == std::string::npos || entry.path().extension() == ".md") continue;
    report.data.push_back(relative + " (" + HumanSize(entry.file_size()) + ")");
  }
  std::sort(report.data.begin(), report.data.end());
  return report;
}

}  // namespace canopy::scaffold
