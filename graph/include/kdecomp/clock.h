// Wall-clock helpers every stage uses for its timings and records.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace kdecomp {

// Seconds from `start` to now on the steady clock (stage timings).
inline double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Now as an ISO 8601 UTC timestamp, "2026-12-06T13:20:00Z" (records and reports).
inline std::string utcTimestamp() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace kdecomp
