// SensorDaemon: the sensor's event loop. Polls the BPF probe, decodes each record, runs it
// through the EventPipeline, and on timers emits health and posture events. Posture is
// collected on the PostureWorker's thread and emitted by the loop when it is ready, so a
// slow home directory never stops events.
//
// Ownership: owns the probe and the pipeline; borrows the sink and the stop flag.
// Threading: Run() is the only thread touching the daemon; `stop` may be set from a signal
// handler (it is polled at least every poll timeout).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/clock.h"
#include "sensor/bpf_probe.h"
#include "sensor/config.h"
#include "sensor/event_pipeline.h"
#include "sensor/event_sink.h"
#include "sensor/posture_worker.h"
#include "sensor/sensor_metrics.h"

namespace tripline::sensor {

class SensorDaemon {
 public:
  // `host_files`, `proc_files`, `clock`, `sink` and `metrics` must outlive the daemon;
  // `metrics` (nullptr: none) gets a fresh snapshot about once a second.
  SensorDaemon(const SensorSettings& settings, const HostIdentity& identity,
               std::unique_ptr<BpfProbe> probe, const HostFiles& host_files,
               const HostFiles& proc_files, const Clock& clock, EventSink& sink,
               SensorMetrics* metrics = nullptr);

  // Runs until `stop` is true or the sink fails; emits a posture snapshot first. Returns the
  // sink's error, if any. Does not detach: destroy the daemon (or call Detach) for that.
  Status Run(const std::atomic<bool>& stop);

  // Run calls `reload` on its own thread whenever `*requested` was set (a SIGHUP), after
  // clearing it. Set before Run.
  void OnReload(std::atomic<bool>* requested, std::function<void()> reload) {
    reload_requested_ = requested;
    reload_ = std::move(reload);
  }

  // Replaces the probe's sensitive-path table (from the reload callback).
  Status ReplaceSensitivePaths(std::vector<SensitivePath> paths);

  // Detaches the programs (destroys the probe). Later Run() calls fail.
  void Detach() { probe_.reset(); }

 private:
  void OnRecord(std::span<const uint8_t> record);
  Status EmitHealth();
  void UpdateMetrics();
  void LogDecodeError(const Status& status);

  const uint32_t health_interval_s_;
  const uint32_t posture_interval_s_;
  const std::vector<std::string> warnings_;
  const Clock& clock_;
  EventSink& sink_;
  SensorMetrics* const metrics_;
  const std::string host_;
  std::unique_ptr<BpfProbe> probe_;
  std::atomic<bool>* reload_requested_ = nullptr;
  std::function<void()> reload_;
  EventPipeline pipeline_;
  PostureWorker posture_;
  Status sink_status_;
  // Decode errors are logged with a budget so a corrupt stream cannot flood the log.
  int64_t decode_log_window_ns_ = 0;
  uint32_t decode_logged_in_window_ = 0;
  uint64_t decode_suppressed_ = 0;
  // Poll errors are rare (epoll failure); logged once per distinct message.
  std::string last_poll_error_;
};

// The probe options for `settings` (sensitive paths: defaults, replaced or extended).
ProbeOptions MakeProbeOptions(const SensorSettings& settings, uint32_t target_uts_inum,
                              uint32_t self_tgid);

}  // namespace tripline::sensor
