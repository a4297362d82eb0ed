// What both catalog stores share that is not SQL: error wording, the words of a
// search, snippets on one line. Only the stores (catalog/*_catalog.cpp) include it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "core/error.h"
#include "core/hash.h"

namespace canopy::catalog {

// Runs `body`; a kFailed error from it is rethrown with `what` in front, so the
// message says what was being done as well as what the database said.
template <typename Body>
auto Doing(const std::string& what, Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kFailed) throw;
    throw Error(ErrorCode::kFailed, "catalog: cannot " + what + ": " + e.what(), e.hint());
  }
}

// The words of a search: runs of ASCII letters and digits and of non-ASCII bytes (the
// stores' tokenizers split those further), at most 16. Quotes and operators are not
// words, so no user text reaches a query language as syntax.
inline std::vector<std::string> SearchWords(const std::string& text) {
  constexpr size_t kMaxWords = 16;
  std::vector<std::string> words;
  std::string word;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= '0' && byte <= '9') || (byte >= 'a' && byte <= 'z') ||
        (byte >= 'A' && byte <= 'Z') || byte >= 0x80) {
      word += c;
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  if (words.size() > kMaxWords) words.resize(kMaxWords);
  return words;
}

// A digest of everything SyncSpec writes. Each field is length-prefixed, so no two
// different specs give the same bytes.
inline std::string SpecFingerprint(const std::vector<DomainRecord>& domains,
                                   const std::vector<ProductRecord>& products) {
  std::string bytes;
  auto add = [&](const std::string& field) { bytes += std::to_string(field.size()) + ":" + field; };
  auto add_list = [&](const std::vector<std::string>& list) {
    add(std::to_string(list.size()));
    for (const auto& item : list) add(item);
  };
  add("domains " + std::to_string(domains.size()));
  for (const DomainRecord& d : domains) {
    add(d.name);
    add(d.description);
    add_list(d.owners);
  }
  add("products " + std::to_string(products.size()));
  for (const ProductRecord& p : products) {
    for (const std::string* field : {&p.domain, &p.name, &p.version, &p.status, &p.type, &p.owner,
                                     &p.visibility, &p.purpose, &p.usage, &p.limitations}) {
      add(*field);
    }
    add_list(p.tags);
  }
  return Sha256Hex(bytes);
}

// `text` on one line: every run of whitespace becomes one space.
inline std::string OneLine(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space) {
      out += c;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The search fields, in the order both stores weigh them (names most).
inline constexpr const char* kSearchFields[] = {"name", "tag", "description", "port", "column"};

}  // namespace canopy::catalog
