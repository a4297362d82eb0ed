#include "core/fault.h"

#include <unistd.h>

#include <string>

namespace canopy::fault::detail {

std::atomic<Armed*> g_armed{nullptr};

int Reach(Armed& armed, Point point) {
  if (point != armed.point) return 0;
  const int64_t hit = armed.hits.fetch_add(1, std::memory_order_relaxed) + 1;
  if (hit < armed.nth) return 0;
  if (armed.error != 0) return armed.error;
  if (hit > armed.nth) return 0;  // cannot happen: the process ended at the nth
  std::string line = "fault: the process dies at ";
  for (const auto& info : kPoints) {
    if (info.point == point) line += std::string(info.name);
  }
  line += " (hit " + std::to_string(hit) + ")\n";
  // Only what kill -9 would leave: nothing flushed, nothing unwound.
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
  ::_exit(kCrashExitCode);
}

}  // namespace canopy::fault::detail
