#include "spec/yaml_reader.h"

#include <algorithm>
#include <cassert>
#include <set>

#include "core/text.h"

namespace canopy::spec {

SourceLocation ReadContext::At(const YAML::Mark& mark) const {
  if (mark.is_null()) return {file, 0, 0};
  return {file, mark.line + 1, mark.column + 1};
}

SourceLocation ReadContext::At(const YAML::Node& node) const {
  return At(node.Mark());
}

void ReadContext::Error(const YAML::Node& node, std::string message, std::string hint) const {
  diagnostics->Error(At(node), std::move(message), std::move(hint));
}

void ReadContext::Warning(const YAML::Node& node, std::string message, std::string hint) const {
  diagnostics->Warning(At(node), std::move(message), std::move(hint));
}

std::string DescribeNodeType(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "something else";
}

MapReader::MapReader(const YAML::Node& node, const ReadContext& context, std::string what,
                     std::vector<std::string> known_keys, UnknownKeys unknown)
    : node_(node),
      context_(context),
      what_(std::move(what)),
      known_keys_(std::move(known_keys)),
      unknown_(unknown) {
  if (!node.IsMap()) {
    context_.Error(node,
                   what_ + " must be a mapping of keys to values, found " + DescribeNodeType(node));
    return;
  }
  valid_ = true;
  // yaml-cpp accepts a key twice and the second is silently lost; refuse it instead.
  std::set<std::string> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      context_.Error(entry.first, "keys of " + what_ + " must be plain names");
      continue;
    }
    if (!seen.insert(entry.first.Scalar()).second) {
      context_.Error(entry.first, "key '" + entry.first.Scalar() + "' appears twice in " + what_,
                     "keep one of them");
    }
  }
}

std::optional<YAML::Node> MapReader::Get(const std::string& key) const {
  assert(std::find(known_keys_.begin(), known_keys_.end(), key) != known_keys_.end());
  if (!valid_) return std::nullopt;
  for (const auto& entry : node_) {
    if (entry.first.IsScalar() && entry.first.Scalar() == key) return entry.second;
  }
  return std::nullopt;
}

SourceLocation MapReader::LocationOf(const std::string& key) const {
  auto value = Get(key);
  return value ? context_.At(*value) : location();
}

std::optional<std::string> ReadString(const YAML::Node& node, const ReadContext& context,
                                      const std::string& what) {
  if (!node.IsScalar()) {
    context.Error(node, what + " must be a text value, found " + DescribeNodeType(node));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<double> ReadNumber(const YAML::Node& node, const ReadContext& context,
                                 const std::string& what) {
  if (node.IsScalar()) {
    try {
      return node.as<double>();
    } catch (const YAML::Exception&) {
    }
  }
  context.Error(node, what + " must be a number, found " + DescribeNodeType(node));
  return std::nullopt;
}

std::string MapReader::String(const std::string& key, const std::string& fallback) const {
  auto value = Get(key);
  if (!value || value->IsNull()) return fallback;
  return ReadString(*value, context_, "'" + key + "' of " + what_).value_or(fallback);
}

std::string MapReader::RequiredString(const std::string& key, const std::string& hint) const {
  auto value = Get(key);
  if (!valid_) return {};
  if (!value || value->IsNull() || (value->IsScalar() && Trim(value->Scalar()).empty())) {
    context_.diagnostics->Error(value ? context_.At(*value) : location(),
                                what_ + " needs '" + key + "'", hint);
    return {};
  }
  return ReadString(*value, context_, "'" + key + "' of " + what_).value_or("");
}

bool MapReader::Bool(const std::string& key, bool fallback) const {
  auto value = Get(key);
  if (!value || value->IsNull()) return fallback;
  if (value->IsScalar()) {
    try {
      return value->as<bool>();
    } catch (const YAML::Exception&) {
    }
  }
  context_.Error(*value, "'" + key + "' of " + what_ + " must be true or false, found " +
                             DescribeNodeType(*value));
  return fallback;
}

std::optional<double> MapReader::Number(const std::string& key) const {
  auto value = Get(key);
  if (!value || value->IsNull()) return std::nullopt;
  return ReadNumber(*value, context_, "'" + key + "' of " + what_);
}

std::optional<int64_t> MapReader::Integer(const std::string& key) const {
  auto value = Get(key);
  if (!value || value->IsNull()) return std::nullopt;
  if (value->IsScalar()) {
    try {
      return value->as<int64_t>();
    } catch (const YAML::Exception&) {
    }
  }
  context_.Error(*value, "'" + key + "' of " + what_ + " must be a whole number, found " +
                             DescribeNodeType(*value));
  return std::nullopt;
}

std::vector<std::string> MapReader::StringList(const std::string& key) const {
  std::vector<std::string> out;
  auto value = Get(key);
  if (!value || value->IsNull()) return out;
  if (!value->IsSequence()) {
    context_.Error(
        *value, "'" + key + "' of " + what_ + " must be a list, found " + DescribeNodeType(*value),
        "write it as [a, b] or as lines starting with '- '");
    return out;
  }
  for (const auto& item : *value) {
    if (auto text = ReadString(item, context_, "each entry of '" + key + "'")) {
      out.push_back(*text);
    }
  }
  return out;
}

std::string EmitYaml(const YAML::Node& node) {
  YAML::Emitter emitter;
  emitter.SetMapFormat(YAML::Flow);
  emitter.SetSeqFormat(YAML::Flow);
  emitter << node;
  return emitter.c_str();
}

std::vector<ExtraField> MapReader::Finish() const {
  std::vector<ExtraField> extra;
  if (!valid_) return extra;
  for (const auto& entry : node_) {
    if (!entry.first.IsScalar()) continue;
    const std::string& key = entry.first.Scalar();
    if (std::find(known_keys_.begin(), known_keys_.end(), key) != known_keys_.end()) continue;
    if (std::find(ignored_keys_.begin(), ignored_keys_.end(), key) != ignored_keys_.end()) continue;
    if (unknown_ == UnknownKeys::kKeepAsOdcs &&
        std::find(standard_keys_.begin(), standard_keys_.end(), key) != standard_keys_.end()) {
      extra.push_back({key, EmitYaml(entry.second), context_.At(entry.first)});
      continue;
    }
    std::vector<std::string> candidates = known_keys_;
    candidates.insert(candidates.end(), standard_keys_.begin(), standard_keys_.end());
    std::string suggestion = DidYouMean(key, candidates);
    // `{ physicalType: DECIMAL(12,2) }` splits at the comma in a flow mapping.
    if (!key.empty() && key.back() == ')' && key.find('(') == std::string::npos) {
      suggestion =
          "a value with a comma inside { } must be quoted, e.g. physicalType: "
          "\"DECIMAL(12,2)\"";
      context_.Error(entry.first, "unknown key '" + key + "' in " + what_, suggestion);
      continue;
    }
    if (unknown_ == UnknownKeys::kError) {
      std::string hint = suggestion;
      if (hint.empty()) hint = "known keys: " + Join(known_keys_, ", ");
      context_.Error(entry.first, "unknown key '" + key + "' in " + what_, hint);
    } else {
      if (!suggestion.empty()) {
        context_.Warning(entry.first,
                         "'" + key + "' is not a key Canopy reads in " + what_ +
                             "; it is kept as an ODCS extension",
                         suggestion);
      }
      extra.push_back({key, EmitYaml(entry.second), context_.At(entry.first)});
    }
  }
  return extra;
}

}  // namespace canopy::spec
