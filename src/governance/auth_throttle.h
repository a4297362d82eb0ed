// Repeated authentication failures from one address are slowed down (a token guessed by
// brute force, a script with a revoked token in a loop): after `kFree` failures within a
// minute, that address must wait before trying again — 1 s, then twice as long at each
// further failure, at most 5 minutes — and is told how long (HTTP 429 Retry-After; a
// PostgreSQL ErrorResponse). A success forgets the address. Thread-safe; bounded memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace canopy::governance {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kFree = 10;  // failures allowed in a window
  static constexpr auto kWindow = std::chrono::seconds(60);
  static constexpr auto kMaxWait = std::chrono::seconds(300);
  static constexpr size_t kMaxAddresses = 10000;  // then the quietest are forgotten

  // Seconds `address` must still wait before its next attempt; 0 when it may try now.
  int64_t WaitSeconds(const std::string& address, Clock::time_point now = Clock::now());
  // A failed attempt; returns the seconds the address must now wait (0: not yet slowed).
  int64_t Failed(const std::string& address, Clock::time_point now = Clock::now());
  // A successful one: the address's failures are forgotten.
  void Succeeded(const std::string& address);

 private:
  struct Entry {
    int failures = 0;                // in the current window
    Clock::time_point window_start;  // of the current window
    Clock::time_point blocked_until;
    std::chrono::seconds last_wait{0};
  };
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

// The one throttle of this process (the REST API and the PostgreSQL listener share it: a
// guesser switching protocols gains nothing).
AuthThrottle& ProcessAuthThrottle();

}  // namespace canopy::governance
