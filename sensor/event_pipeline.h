// EventPipeline: what happens to every decoded event before it leaves the host:
// enrichment, session attribution, sequence number, counting, and the sink. Also builds
// the sensor's own posture and health events. No BPF here, so the whole path from a
// decoded Event to the JSON line is testable with canned events and a temp /etc tree.
//
// Threading: not thread-safe; owned and used by the event loop thread.
#pragma once

#include <cstdint>
#include <memory>

#include "common/clock.h"
#include "model/event.h"
#include "sensor/enricher.h"
#include "sensor/event_sink.h"
#include "sensor/health_reporter.h"
#include "sensor/posture_collector.h"
#include "sensor/session_tracker.h"

namespace tripline::sensor {

class EventPipeline {
 public:
  // `host_files` (the host's /etc and homes), `proc_files` (/proc), `clock` and `sink`
  // must outlive the pipeline.
  EventPipeline(const HostIdentity& identity, const HostFiles& host_files,
                const HostFiles& proc_files, const Clock& clock, EventSink& sink);

  // Enriches, attributes and emits one kernel event. An error is the sink's (fatal).
  Status HandleKernelEvent(Event&& event);
  // Counts a record that could not be decoded.
  void CountDecodeError() { health_.CountDecodeError(); }

  // Collects (on the calling thread) and emits a posture snapshot; returns how many errors
  // it carried.
  Result<size_t> EmitPosture();
  // Emits a snapshot collected elsewhere (PostureWorker); returns how many errors it carried.
  Result<size_t> EmitPosture(PostureSnapshot snapshot);
  // Builds and emits a health event; returns it for logging.
  Result<SensorHealth> EmitHealth(const ExternalCounters& external);

  Status Flush() { return sink_.Flush(); }

  const Enricher& enricher() const { return enricher_; }
  const SessionTracker& sessions() const { return sessions_; }
  const HealthReporter& health() const { return health_; }

 private:
  Status Emit(Event&& event);
  Event HostEvent() const;

  const Clock& clock_;
  EventSink& sink_;
  Enricher enricher_;
  SessionTracker sessions_;
  PostureCollector posture_;
  HealthReporter health_;
  uint64_t next_seq_ = 1;
  std::vector<std::string> account_errors_;
};

}  // namespace tripline::sensor
