// Internal to server: what the builder's and the dashboards' endpoints share — rows of a
// governed query kept as JSON, and writing a mesh's files so that an invalid result is
// taken back.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/diagnostics.h"
#include "governance/query.h"
#include "spec/model.h"

namespace canopy::server {

// One value of a result as JSON (null, a boolean, a number or text).
nlohmann::ordered_json ValueJson(const governance::Value& value);

// Every row of a result, kept (the query's max_rows bounds them).
class CollectRows : public governance::ResultSink {
 public:
  void Begin(const std::vector<governance::ResultColumn>& columns) override { columns_ = columns; }
  void Row(const std::vector<governance::Value>& row) override;
  const std::vector<governance::ResultColumn>& columns() const { return columns_; }
  const nlohmann::ordered_json& rows() const { return rows_; }

 private:
  std::vector<governance::ResultColumn> columns_;
  nlohmann::ordered_json rows_ = nlohmann::ordered_json::array();
};

// The file's content, or nullopt when it cannot be read.
std::optional<std::string> ReadText(const std::filesystem::path& path);

// [{severity, file, line, column, message, hint}].
nlohmann::ordered_json DiagnosticsJson(const Diagnostics& diagnostics);

// Writes `files` (absolute paths, content) into the mesh at `root`, each atomically, then
// loads and checks the whole mesh as `canopy validate` does. With errors, every file is
// put back as it was (new ones removed, and `new_folders` when left empty) and the
// diagnostics are returned with no mesh; otherwise the new mesh. `removals` are files taken
// away in the same step (put back as they were on errors too). The caller holds the
// MeshSource's writer lock.
struct Applied {
  std::optional<spec::Mesh> mesh;
  Diagnostics diagnostics;
};
Applied ApplyFiles(const std::string& root,
                   const std::vector<std::pair<std::filesystem::path, std::string>>& files,
                   const std::vector<std::filesystem::path>& new_folders = {},
                   const std::vector<std::filesystem::path>& removals = {});

}  // namespace canopy::server
