#include "build/sandbox.h"

#include "core/text.h"
#include "governance/governed.h"

namespace canopy::build {
namespace {

engine::DatabaseOptions Options(const SandboxOptions& options) {
  engine::DatabaseOptions out;
  out.config["memory_limit"] = std::to_string(options.memory_bytes / (int64_t{1024} * 1024)) + "MB";
  if (options.threads > 0) out.config["threads"] = std::to_string(options.threads);
  out.config["autoinstall_known_extensions"] = "false";
  out.config["autoload_known_extensions"] = "false";
  out.config["allow_community_extensions"] = "false";
  return out;
}

std::string SqlList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const auto& item : items) quoted.push_back(SqlString(item));
  return "[" + Join(quoted, ", ") + "]";
}

}  // namespace

std::string InputReader(const spec::ProductInput& input, const std::string& path) {
  std::string call;
  switch (input.format) {
    case spec::FileFormat::kCsv:
      call = "read_csv(";
      break;
    case spec::FileFormat::kJson:
      call = "read_json(";
      break;
    case spec::FileFormat::kParquet:
      call = "read_parquet(";
      break;
  }
  call += SqlString(path);
  for (const auto& [key, value] : input.options) call += ", " + key + " = " + value;
  return call + ")";
}

Sandbox::Sandbox(const SandboxOptions& options)
    : database_(Options(options)), connection_(database_) {
  std::string dir = options.writable_dir;
  if (!dir.empty() && dir.back() != '/') dir += '/';
  governance::InstallGovernedFunctions(connection_, options.mask_salt);
  connection_.Execute(
      "SET allowed_paths = " + SqlList(options.readable) + ";" + "SET allowed_directories = " +
      SqlList({dir}) + ";" + "SET temp_directory = " + SqlString(dir + "tmp") + ";" +
      "SET enable_external_access = false;" +
      (options.filter_barrier
           ? "SET disabled_optimizers = 'filter_pushdown,filter_pullup,reorder_filter';"
           : "") +
      "SET lock_configuration = true;");
}

}  // namespace canopy::build
