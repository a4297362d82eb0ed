// Internal to standards: documents are built as ordered JSON values and written as
// block YAML, with strings quoted wherever a YAML reader would take them for a
// number, boolean, null or date. Kept ODCS keys (ExtraField: flow YAML text) are read
// back into JSON values with the YAML 1.2 core schema.
#pragma once

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/hash.h"
#include "core/text.h"
#include "spec/model.h"

namespace canopy::standards::detail {

using Json = nlohmann::ordered_json;

// A YAML plain scalar → the JSON value a YAML 1.2 (core schema) reader sees.
inline Json ScalarToJson(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  static const std::regex integer(R"(^[-+]?[0-9]+$)");
  static const std::regex real(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  if (std::regex_match(text, integer)) {
    int64_t value = 0;
    const char* begin = text.data() + (text[0] == '+' ? 1 : 0);
    auto [end, error] = std::from_chars(begin, text.data() + text.size(), value);
    if (error == std::errc() && end == text.data() + text.size()) return value;
  }
  if (std::regex_match(text, real)) {
    try {
      return std::stod(text);
    } catch (const std::exception&) {
      return text;
    }
  }
  return text;
}

// A yaml-cpp node → JSON. Quoted scalars (tag "!") stay strings.
inline Json NodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!") return node.Scalar();
      return ScalarToJson(node.Scalar());
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(NodeToJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& entry : node) {
        out[entry.first.IsScalar() ? entry.first.Scalar() : std::string("?")] =
            NodeToJson(entry.second);
      }
      return out;
    }
  }
  return nullptr;
}

// The value of a kept ODCS key (flow YAML text, as spec::EmitYaml wrote it).
inline Json ExtraToJson(const spec::ExtraField& extra) {
  try {
    return NodeToJson(YAML::Load(extra.yaml));
  } catch (const YAML::Exception&) {
    return extra.yaml;
  }
}

// True when a YAML 1.1 or 1.2 reader would not read `text`, written plain, as this string.
inline bool NeedsQuotes(const std::string& text) {
  if (text.empty()) return true;
  static const std::regex special(R"(^(~|null|true|false|yes|no|on|off|y|n)$)", std::regex::icase);
  static const std::regex number(
      R"(^[-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$)");
  static const std::regex other_number(
      R"(^([-+]?0x[0-9a-fA-F_]+|0o[0-7]+|[-+]?0b[01_]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$)");
  static const std::regex sexagesimal(R"(^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$)");
  static const std::regex date(R"(^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?$)");
  return std::regex_match(text, special) || std::regex_match(text, number) ||
         std::regex_match(text, other_number) || std::regex_match(text, sexagesimal) ||
         std::regex_match(text, date) || text.front() == ' ' || text.back() == ' ';
}

inline std::string NumberText(const Json& value) {
  if (value.is_number_integer()) return value.dump();
  const double number = value.get<double>();
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, number);
  if (error != std::errc()) return value.dump();
  return std::string(buffer, end);
}

inline void Emit(YAML::Emitter& out, const Json& value) {
  switch (value.type()) {
    case Json::value_t::object:
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        if (NeedsQuotes(key)) {
          out << YAML::DoubleQuoted << key;
        } else {
          out << key;
        }
        out << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      return;
    case Json::value_t::array: {
      // Short lists of scalars read best on one line. (Measured with invalid UTF-8
      // replaced: dump() would throw on a string a document gave with bad bytes.)
      bool flat = value.dump(-1, ' ', false, Json::error_handler_t::replace).size() <= 72;
      for (const auto& item : value) flat = flat && !item.is_structured();
      if (flat) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : value) Emit(out, item);
      out << YAML::EndSeq;
      return;
    }
    case Json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (NeedsQuotes(text)) {
        out << YAML::DoubleQuoted << text;
      } else {
        out << text;
      }
      return;
    }
    case Json::value_t::boolean:
      out << (value.get<bool>() ? "true" : "false");
      return;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      out << NumberText(value);
      return;
    default:
      out << YAML::Null;
      return;
  }
}

// The document as block YAML, ending in a newline.
inline std::string ToYaml(const Json& document, const std::string& header_comment = {}) {
  YAML::Emitter out;
  out.SetIndent(2);
  Emit(out, document);
  std::string text;
  if (!header_comment.empty()) text = "# " + header_comment + "\n";
  text += out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

// A UUID-shaped id (version 8, RFC 9562 variant) from SHA-256 of `text`.
inline std::string UuidFromText(const std::string& text) {
  std::string hex = Sha256Hex(text).substr(0, 32);
  hex[12] = '8';
  const int nibble = std::stoi(hex.substr(16, 1), nullptr, 16);
  hex[16] = "0123456789abcdef"[(nibble & 0x3) | 0x8];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

// `text` made a valid SQL name ([a-z_][a-z0-9_]{0,62}): lowercase, runs of other
// characters become one '_', no '_' at the ends, '_' before a leading digit.
inline std::string MakeSqlName(const std::string& text) {
  std::string out;
  for (char c : ToLower(text)) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (keep) {
      out += c;
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out = "_" + out;
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

// The ODCS/ODPS team of a product: its owner, its domain's owners, then the members a
// kept contract file lists (`file_extras`).
inline Json TeamJson(const spec::Mesh& mesh, const spec::Product& product,
                     const std::vector<spec::ExtraField>& file_extras = {}) {
  Json team = Json::object();
  team["name"] = product.domain;
  const spec::Domain* domain = mesh.FindDomain(product.domain);
  if (domain != nullptr && !domain->description.empty()) {
    team["description"] = "Domain " + product.domain + ": " + domain->description;
  }
  Json members = Json::array();
  std::set<std::string> usernames;
  auto add = [&](const std::string& name, const std::string& role) {
    if (name.empty() || !usernames.insert(name).second) return;
    members.push_back({{"username", name}, {"role", role}});
  };
  add(product.owner, "owner");
  if (domain != nullptr) {
    for (const auto& owner : domain->owners) add(owner, "domain owner");
  }
  // The members the contract file lists are kept after Canopy's.
  for (const auto& extra : file_extras) {
    if (extra.key != "team") continue;
    Json given = ExtraToJson(extra);
    Json list = given.is_object() && given.contains("members") ? given["members"] : given;
    if (!list.is_array()) continue;
    for (const auto& member : list) {
      if (!member.is_object() || !member.contains("username") || !member["username"].is_string()) {
        continue;
      }
      if (usernames.insert(member["username"].get<std::string>()).second) {
        members.push_back(member);
      }
    }
  }
  team["members"] = members;
  return team;
}

}  // namespace canopy::standards::detail
