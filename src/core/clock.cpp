#include "core/clock.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <ctime>

#include "core/hash.h"

namespace canopy {
namespace {

std::atomic<int64_t> clock_offset_seconds{0};

std::chrono::system_clock::time_point Now() {
  return std::chrono::system_clock::now() +
         std::chrono::seconds(clock_offset_seconds.load(std::memory_order_relaxed));
}

std::tm UtcNow(long long* millis) {
  const auto now = Now();
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

int64_t NowUnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(Now().time_since_epoch()).count();
}

void SetClockOffsetForTesting(int64_t seconds) {
  clock_offset_seconds.store(seconds, std::memory_order_relaxed);
}

std::string NewBuildId() {
  long long millis = 0;
  std::tm utc = UtcNow(&millis);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &utc);
  return std::string(buffer) + "-" + RandomHex(3);
}

std::string IsoFromUnixSeconds(int64_t seconds) {
  const auto time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&time, &utc);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S.000Z", &utc);
  return buffer;
}

std::optional<int64_t> UnixSecondsFromIso(const std::string& text) {
  std::tm tm{};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<int64_t> ParseDurationSeconds(const std::string& text) {
  if (text.size() < 2) return std::nullopt;
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  int64_t number = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size() - 1;
  auto [end, error] = std::from_chars(first, last, number);
  if (error != std::errc() || end != last || number <= 0) return std::nullopt;
  constexpr int64_t kMax = int64_t{100} * 365 * 86400;
  if (number > kMax / unit) return std::nullopt;
  return number * unit;
}

}  // namespace canopy
