// Wall-clock time as the catalog and logs write it.
#pragma once

#include <string>

namespace canopy {

// Now, as ISO 8601 UTC with milliseconds: "2026-11-25T15:49:12.345Z".
std::string NowIso8601();

// A new build id: sortable by time, unique across processes: "20261125T154912Z-3f9a1c".
std::string NewBuildId();

}  // namespace canopy
