// Polling for a condition in a test: what another thread or process makes true.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

namespace tripline::testing {

// Whether `done` became true within `seconds` (asked every 20 ms, and once more at the end).
inline bool WaitFor(const std::function<bool()>& done, int64_t seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

}  // namespace tripline::testing
