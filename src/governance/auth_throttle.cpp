#include "governance/auth_throttle.h"

#include <algorithm>

namespace canopy::governance {

int64_t AuthThrottle::WaitSeconds(const std::string& address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(address);
  if (it == entries_.end() || it->second.blocked_until <= now) return 0;
  // Rounded up: a client that waits what it is told is let in.
  return std::chrono::ceil<std::chrono::seconds>(it->second.blocked_until - now).count();
}

int64_t AuthThrottle::Failed(const std::string& address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (entries_.size() >= kMaxAddresses && entries_.count(address) == 0) {
    // Forget the address whose window began longest ago (and is not blocked, if any).
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      const bool blocked = it->second.blocked_until > now;
      const bool oldest_blocked = oldest->second.blocked_until > now;
      if ((oldest_blocked && !blocked) ||
          (blocked == oldest_blocked && it->second.window_start < oldest->second.window_start)) {
        oldest = it;
      }
    }
    entries_.erase(oldest);
  }
  Entry& entry = entries_[address];
  if (entry.failures == 0 || now - entry.window_start > kWindow) {
    if (entry.blocked_until <= now) {
      entry.failures = 0;
      entry.last_wait = std::chrono::seconds(0);
    }
    entry.window_start = now;
  }
  ++entry.failures;
  if (entry.failures <= kFree) return 0;
  entry.last_wait = entry.last_wait.count() == 0
                        ? std::chrono::seconds(1)
                        : std::min<std::chrono::seconds>(entry.last_wait * 2, kMaxWait);
  entry.blocked_until = now + entry.last_wait;
  entry.window_start = now;
  return entry.last_wait.count();
}

void AuthThrottle::Succeeded(const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(address);
}

AuthThrottle& ProcessAuthThrottle() {
  static AuthThrottle throttle;
  return throttle;
}

}  // namespace canopy::governance
