// Small text helpers shared by every part.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canopy {

// Edit distance between two strings (case-sensitive); a swap of neighbours counts one.
int EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is plausibly a typo of it (distance at most
// max(1, len/3)); nullopt otherwise. Used for "did you mean" hints.
std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

// "did you mean 'x'?" or an empty string.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

std::string Join(const std::vector<std::string>& parts, std::string_view separator);
std::string ToLower(std::string_view text);
std::string Trim(std::string_view text);
// Whether `text` is well-formed UTF-8 (by the shape of its sequences).
bool ValidUtf8(std::string_view text);

// Quotes a string as an SQL string literal ('it''s').
std::string SqlString(std::string_view text);

// Quotes an SQL identifier ("my ""col""").
std::string SqlIdentifier(std::string_view text);

}  // namespace canopy
