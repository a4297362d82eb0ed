#include "core/clock.h"

#include <chrono>
#include <ctime>

#include "core/hash.h"

namespace canopy {
namespace {

std::tm UtcNow(long long* millis) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  *millis = ms.count() % 1000;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return utc;
}

}  // namespace

std::string NowIso8601() {
  long long millis = 0;
  std::tm utc = UtcNow(&millis);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03lldZ", buffer, millis);
  return out;
}

std::string NewBuildId() {
  long long millis = 0;
  std::tm utc = UtcNow(&millis);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &utc);
  return std::string(buffer) + "-" + RandomHex(3);
}

}  // namespace canopy
