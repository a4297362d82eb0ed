// What both catalog stores share that is not SQL: error wording, the words of a
// search, snippets on one line. Only the stores (catalog/*_catalog.cpp) include it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

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
