// SensorMetrics: what the sensor's /metrics shows (docs/metrics.md), as a snapshot the
// event loop refreshes about once a second and the metrics server's thread renders.
//
// Threading: Update (event loop) and Render (metrics server) may run concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "model/event.h"
#include "sensor/event_sink.h"

namespace tripline::sensor {

struct SensorMetricsSnapshot {
  std::string host;
  std::array<uint64_t, 6> events_by_kind{};  // indexed by EventKind
  uint64_t decode_errors = 0;
  uint64_t ringbuf_drops = 0;
  uint64_t helper_errors = 0;
  std::vector<HookFamilyStatus> families;
  SinkMetrics sink;
};

class SensorMetrics {
 public:
  void Update(SensorMetricsSnapshot snapshot);
  // The Prometheus text of the latest snapshot.
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  SensorMetricsSnapshot snapshot_;
};

// The text for one snapshot (pure; what Render uses).
std::string RenderSensorMetrics(const SensorMetricsSnapshot& s);

}  // namespace tripline::sensor
