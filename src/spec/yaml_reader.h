// Internal to spec: typed, located reading of yaml-cpp nodes.
//
// A MapReader reads one YAML mapping against the list of keys it may hold. Every
// problem (wrong type, missing key, unknown key) becomes a Diagnostic at the node's
// file:line:column and reading goes on, so one run reports every mistake.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "core/diagnostics.h"
#include "spec/model.h"

namespace canopy::spec {

// The file being read and where its problems go. Not owned; outlives the readers.
struct ReadContext {
  std::string file;  // relative to the mesh root
  Diagnostics* diagnostics = nullptr;

  SourceLocation At(const YAML::Node& node) const;
  SourceLocation At(const YAML::Mark& mark) const;
  void Error(const YAML::Node& node, std::string message, std::string hint = {}) const;
  void Warning(const YAML::Node& node, std::string message, std::string hint = {}) const;
};

// What to do with keys that are not in the known list.
enum class UnknownKeys {
  kError,       // Canopy's own objects: an error with "did you mean"
  kKeepAsOdcs,  // ODCS objects: kept as ExtraField; a warning when it looks like a typo
};

// "a mapping", "a list", "a string" ... for messages.
std::string DescribeNodeType(const YAML::Node& node);

class MapReader {
 public:
  // `what` names the object in messages ("product", "output port").
  MapReader(const YAML::Node& node, const ReadContext& context, std::string what,
            std::vector<std::string> known_keys, UnknownKeys unknown = UnknownKeys::kError);

  // False when the node is not a mapping (already reported); getters then return nothing.
  bool valid() const { return valid_; }
  SourceLocation location() const { return context_.At(node_); }
  const ReadContext& context() const { return context_; }

  // The node at `key`, or nullopt. `key` must be one of the known keys.
  std::optional<YAML::Node> Get(const std::string& key) const;
  bool Has(const std::string& key) const { return Get(key).has_value(); }

  // Scalars. Missing: the default (or, for Required*, an error and an empty value).
  std::string String(const std::string& key, const std::string& fallback = {}) const;
  std::string RequiredString(const std::string& key, const std::string& hint = {}) const;
  bool Bool(const std::string& key, bool fallback) const;
  std::optional<double> Number(const std::string& key) const;
  std::optional<int64_t> Integer(const std::string& key) const;
  std::vector<std::string> StringList(const std::string& key) const;

  // The located node for error messages about `key` (the map itself when absent).
  SourceLocation LocationOf(const std::string& key) const;

  // For kKeepAsOdcs: keys the standard defines that Canopy keeps without reading.
  // They are kept silently; other unknown keys close to a known one get a warning.
  void SetStandardKeys(std::vector<std::string> keys) { standard_keys_ = std::move(keys); }

  // A key already reported by the caller; Finish() passes over it.
  void Ignore(const std::string& key) { ignored_keys_.push_back(key); }

  // Unknown keys: errors (kError) or ExtraFields (kKeepAsOdcs), in file order.
  std::vector<ExtraField> Finish() const;

 private:
  YAML::Node node_;
  const ReadContext& context_;
  std::string what_;
  std::vector<std::string> known_keys_;
  std::vector<std::string> standard_keys_;
  std::vector<std::string> ignored_keys_;
  UnknownKeys unknown_;
  bool valid_ = false;
};

// Scalar helpers usable on any node; report and return nullopt on a wrong type.
std::optional<std::string> ReadString(const YAML::Node& node, const ReadContext& context,
                                      const std::string& what);
std::optional<double> ReadNumber(const YAML::Node& node, const ReadContext& context,
                                 const std::string& what);

// The YAML text of a node, for ExtraField.
std::string EmitYaml(const YAML::Node& node);

}  // namespace canopy::spec
