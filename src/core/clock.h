// Wall-clock time as the catalog and logs write it, and the one seam tests move it by.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace canopy {

// Now, as ISO 8601 UTC with milliseconds: "2026-11-25T15:49:12.345Z".
std::string NowIso8601();

// Now, in whole seconds since the Unix epoch. Every expiry (tokens, OIDC tokens) is
// judged by this clock.
int64_t NowUnixSeconds();

// Tests only: every reading of the clock above (NowIso8601 and NowUnixSeconds) is moved
// by `seconds` from the system clock; 0 puts it back. Thread-safe.
void SetClockOffsetForTesting(int64_t seconds);

// A new build id: sortable by time, unique across processes: "20261125T154912Z-3f9a1c".
std::string NewBuildId();

// Seconds since the epoch as ISO 8601 UTC ("2026-11-25T15:49:12.000Z"), and back
// (nullopt when `text` does not start with YYYY-MM-DDTHH:MM:SS).
std::string IsoFromUnixSeconds(int64_t seconds);
std::optional<int64_t> UnixSecondsFromIso(const std::string& text);

// A duration written "<whole number><unit>", unit s, m, h or d ("30d", "12h"): its
// seconds; nullopt when it is not one, zero or not above 100 years.
std::optional<int64_t> ParseDurationSeconds(const std::string& text);

}  // namespace canopy
