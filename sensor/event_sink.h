// EventSink: where the sensor's finished events go: stdout as JSON lines, or the delivery
// client that streams them to the aggregator.
//
// Threading: a sink is used by the event loop thread only.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "model/event.h"

namespace tripline::sensor {

// Delivery figures for the sensor's metrics; zero for sinks that do not deliver.
struct SinkMetrics {
  uint64_t spool_bytes = 0;
  uint64_t unacked_events = 0;  // numbered, not yet acknowledged
  uint64_t spool_drops = 0;
  uint64_t acked_events = 0;
  uint64_t reconnects = 0;
  bool connected = false;
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Takes the event (sinks may move from it). An error means the sink is broken for good
  // (stdout closed, delivery stopped); back-pressure and spooling are the sink's business.
  virtual Status Emit(Event&& event) = 0;
  // Makes what was emitted visible (stdout) or hands it on (delivery); called after every
  // poll round, so it must be cheap when there is nothing pending.
  virtual Status Flush() = 0;
  // Final flush before exit; may wait up to `timeout_ms`.
  virtual Status Close(int timeout_ms) = 0;
  // Events lost inside the sink (spool full), for the health report.
  virtual uint64_t dropped() const = 0;
  // Acknowledgements refused for claiming events never sent (delivery sinks only).
  virtual uint64_t protocol_violations() const { return 0; }
  // Thread-safe: read by the event loop for the metrics snapshot.
  virtual SinkMetrics Metrics() const { return {}; }
};

}  // namespace tripline::sensor
