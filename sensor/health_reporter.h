// HealthReporter: counts what the sensor handled and builds the periodic SensorHealth event.
//
// The kernel-side counters (ring-buffer drops, helper errors) and the delivery spool drops
// are read by the daemon from their owners and passed in, so this class has no BPF or
// network dependency and is testable with canned numbers.
//
// Threading: not thread-safe; owned and used by the event loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/event.h"

namespace tripline::sensor {

// Counters owned by other components, as of the moment of the report.
struct ExternalCounters {
  uint64_t ringbuf_drops = 0;
  std::vector<uint64_t> ringbuf_drops_by_type;  // indexed by record type
  uint64_t helper_errors = 0;
  uint64_t spool_drops = 0;
  uint64_t delivery_protocol_violations = 0;
  std::vector<std::string> disabled_programs;
  std::vector<HookFamilyStatus> families;  // every hook family and how it runs
  std::vector<std::string> warnings;       // configuration that weakens protection
  std::vector<std::string> addresses;      // the host's own (HostAddresses)
};

class HealthReporter {
 public:
  explicit HealthReporter(int64_t start_mono_ns);

  void CountEvent(EventKind kind) { ++totals_[static_cast<size_t>(kind)]; }
  void CountDecodeError() { ++decode_errors_; }
  uint64_t decode_errors() const { return decode_errors_; }
  uint64_t events(EventKind kind) const { return totals_[static_cast<size_t>(kind)]; }

  // The health body for `now_mono_ns`: totals since start and rates since the previous
  // report (since start for the first). Advances the rate window.
  SensorHealth Report(int64_t now_mono_ns, const ExternalCounters& external, uint64_t rss_bytes);

  // One line for the log: "health: 1520 events (12.0/s), 0 drops, 0 decode errors, ...".
  static std::string Summary(const SensorHealth& health);

 private:
  static constexpr size_t kKinds = 6;  // EventKind values

  const int64_t start_ns_;
  int64_t window_start_ns_;
  uint64_t decode_errors_ = 0;
  std::array<uint64_t, kKinds> totals_{};
  std::array<uint64_t, kKinds> window_base_{};
};

// Resident set size of this process from /proc/self/statm; 0 when unreadable.
uint64_t ReadSelfRssBytes();

}  // namespace tripline::sensor
