// Time: an injectable Clock, and the formats Tripline reads and writes.
//
// All event times are int64 nanoseconds since the Unix epoch (UTC). Logic that depends on
// time takes a Clock& so tests can drive it; production code uses SystemClock.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tripline {

constexpr int64_t kNanosPerMicro = 1000;
constexpr int64_t kNanosPerMilli = 1000 * 1000;
constexpr int64_t kNanosPerSecond = 1000 * 1000 * 1000;

// Thread-safe: implementations must allow concurrent calls.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall clock, nanoseconds since the Unix epoch.
  virtual int64_t NowNs() const = 0;
  // Monotonic clock, for intervals and timeouts.
  virtual int64_t MonotonicNs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowNs() const override;
  int64_t MonotonicNs() const override;
  // A process-wide instance.
  static SystemClock& Get();
};

// A clock that moves only when told to. Both readings advance together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ns = 1'700'000'000LL * kNanosPerSecond) : now_(start_ns) {}
  int64_t NowNs() const override { return now_.load(); }
  int64_t MonotonicNs() const override { return now_.load(); }
  void AdvanceNs(int64_t d) { now_.fetch_add(d); }
  void SetNs(int64_t t) { now_.store(t); }

 private:
  std::atomic<int64_t> now_;
};

// "2026-11-25T03:41:07.123Z" (UTC, milliseconds).
std::string FormatTimeNs(int64_t ns);
// Parses RFC 3339 ("2026-11-25T03:41:07Z", fractional seconds and "+01:00" allowed).
Result<int64_t> ParseTimeNs(std::string_view text);
// "500ms", "30s", "10m", "2h", "7d", or a bare number of seconds. Returns nanoseconds.
Result<int64_t> ParseDurationNs(std::string_view text);
// "40 s", "3 min 5 s", "250 ms": a duration as a person reads it.
std::string FormatDurationNs(int64_t ns);

}  // namespace tripline
