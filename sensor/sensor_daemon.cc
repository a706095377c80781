#include "sensor/sensor_daemon.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include "common/log.h"
#include "sensor/host_addresses.h"
#include "sensor/record_decoder.h"

namespace tripline::sensor {
namespace {

// Short enough that SIGTERM is noticed well within the 2 s a supervisor gives, long
// enough that an idle sensor wakes only ten times a second.
constexpr int kPollTimeoutMs = 100;
constexpr int64_t kDecodeLogWindowNs = 10 * kNanosPerSecond;
constexpr uint32_t kDecodeLogsPerWindow = 5;
// A posture snapshot reads a few files per account; on a healthy host it takes
// milliseconds. Past this budget the remaining accounts are reported without their keys.
constexpr int64_t kPostureBudgetNs = 20 * kNanosPerSecond;

SensitivePath::Match ToProbeMatch(PathRuleSetting::Match m) {
  switch (m) {
    case PathRuleSetting::Match::kExact: return SensitivePath::Match::kExact;
    case PathRuleSetting::Match::kPrefix: return SensitivePath::Match::kPrefix;
    case PathRuleSetting::Match::kSuffix: return SensitivePath::Match::kSuffix;
  }
  return SensitivePath::Match::kExact;
}

}  // namespace

ProbeOptions MakeProbeOptions(const SensorSettings& settings, uint32_t target_uts_inum,
                              uint32_t self_tgid) {
  ProbeOptions o;
  o.target_uts_inum = target_uts_inum;
  o.self_tgid = self_tgid;
  o.libpam_path = settings.libpam_path;
  o.exec_max_args = settings.exec_max_args;
  if (!settings.host_root.empty() && settings.host_root != "/") {
    // The uprobe and the utmp table key on inodes; a bind mount of the host's /var/log
    // names the same inodes.
    o.btmp_path = settings.host_root + "/var/log/btmp";
    o.wtmp_path = settings.host_root + "/var/log/wtmp";
  }
  if (!settings.replace_default_paths) o.sensitive_paths = DefaultSensitivePaths();
  for (const PathRuleSetting& r : settings.sensitive_paths) {
    SensitivePath p;
    p.match = ToProbeMatch(r.match);
    p.path = r.path;
    if (std::find(o.sensitive_paths.begin(), o.sensitive_paths.end(), p) ==
        o.sensitive_paths.end()) {
      o.sensitive_paths.push_back(std::move(p));
    }
  }
  return o;
}

namespace {
// The running processes' privileges go with every posture snapshot: /proc is the host's
// (a sensor container runs with hostPID).
ProcessScanOptions ProcessScanFor(const SensorSettings& settings) {
  ProcessScanOptions o;
  if (!settings.runtime_sockets.empty()) o.runtime_sockets = settings.runtime_sockets;
  return o;
}
}  // namespace

SensorDaemon::SensorDaemon(const SensorSettings& settings, const HostIdentity& identity,
                           std::unique_ptr<BpfProbe> probe, const HostFiles& host_files,
                           const HostFiles& proc_files, const Clock& clock, EventSink& sink,
                           SensorMetrics* metrics)
    : health_interval_s_(settings.health_interval_s),
      posture_interval_s_(settings.posture_interval_s),
      warnings_(settings.warnings),
      clock_(clock),
      sink_(sink),
      metrics_(metrics),
      host_(identity.host),
      probe_(std::move(probe)),
      pipeline_(identity, host_files, proc_files, clock, sink),
      posture_(host_files, clock, kPostureBudgetNs, ProcessScanFor(settings),
               MakeProbeOptions(settings, 0, 0).sensitive_paths) {}

void SensorDaemon::LogDecodeError(const Status& status) {
  int64_t now = clock_.MonotonicNs();
  if (now - decode_log_window_ns_ >= kDecodeLogWindowNs) {
    if (decode_suppressed_ > 0) {
      TL_LOG(WARNING) << decode_suppressed_ << " more undecodable records not logged";
    }
    decode_log_window_ns_ = now;
    decode_logged_in_window_ = 0;
    decode_suppressed_ = 0;
  }
  if (decode_logged_in_window_ < kDecodeLogsPerWindow) {
    ++decode_logged_in_window_;
    TL_LOG(WARNING) << "undecodable record: " << status.ToString();
  } else {
    ++decode_suppressed_;
  }
}

void SensorDaemon::OnRecord(std::span<const uint8_t> record) {
  if (!sink_status_.ok()) return;
  Result<Event> event =
      DecodeRecord(record, probe_->BootToWallOffsetNs(), probe_->sensitive_paths());
  if (!event.ok()) {
    pipeline_.CountDecodeError();
    LogDecodeError(event.status());
    return;
  }
  sink_status_ = pipeline_.HandleKernelEvent(std::move(event).value());
}

Status SensorDaemon::EmitHealth() {
  ProbeCounters pc = probe_->ReadCounters();
  ExternalCounters ext;
  ext.ringbuf_drops = pc.ringbuf_drops;
  ext.ringbuf_drops_by_type = pc.drops_by_type;
  // State-map failures lose the same kind of information as helper failures (a field or a
  // whole call's context), so they are reported together.
  ext.helper_errors = pc.helper_errors + pc.state_errors;
  ext.spool_drops = sink_.dropped();
  ext.delivery_protocol_violations = sink_.protocol_violations();
  ext.disabled_programs = probe_->disabled();
  ext.warnings = warnings_;
  ext.addresses = HostAddresses();
  for (const FamilyStatus& f : probe_->families()) {
    ext.families.push_back({f.name, FamilyStateName(f.state), f.hooks, f.reason, f.remedy});
  }
  TL_ASSIGN_OR_RETURN(SensorHealth h, pipeline_.EmitHealth(ext));
  TL_LOG(INFO) << HealthReporter::Summary(h);
  return Status::Ok();
}

void SensorDaemon::UpdateMetrics() {
  const ProbeCounters pc = probe_->ReadCounters();
  SensorMetricsSnapshot m;
  m.host = host_;
  for (size_t k = 0; k < m.events_by_kind.size(); ++k) {
    m.events_by_kind[k] = pipeline_.health().events(static_cast<EventKind>(k));
  }
  m.decode_errors = pipeline_.health().decode_errors();
  m.ringbuf_drops = pc.ringbuf_drops;
  m.helper_errors = pc.helper_errors + pc.state_errors;
  for (const FamilyStatus& f : probe_->families()) {
    m.families.push_back({f.name, FamilyStateName(f.state), f.hooks, f.reason, f.remedy});
  }
  m.sink = sink_.Metrics();
  metrics_->Update(std::move(m));
}

Status SensorDaemon::ReplaceSensitivePaths(std::vector<SensitivePath> paths) {
  if (probe_ == nullptr) return Status::Aborted("probe already detached");
  return probe_->ReplaceSensitivePaths(std::move(paths));
}

Status SensorDaemon::Run(const std::atomic<bool>& stop) {
  if (probe_ == nullptr) return Status::Aborted("probe already detached");
  const int64_t health_every = static_cast<int64_t>(health_interval_s_) * kNanosPerSecond;
  const int64_t posture_every = static_cast<int64_t>(posture_interval_s_) * kNanosPerSecond;
  // The first report goes out at once: which hook families run here is news the aggregator
  // (and triplinectl stats) should have before the first interval is over.
  int64_t next_health = clock_.MonotonicNs();
  int64_t next_posture = clock_.MonotonicNs();
  int64_t next_metrics = clock_.MonotonicNs();
  const std::function<void(std::span<const uint8_t>)> on_record =
      [this](std::span<const uint8_t> r) { OnRecord(r); };

  while (!stop.load(std::memory_order_relaxed)) {
    if (reload_requested_ != nullptr && reload_requested_->exchange(false) && reload_) reload_();
    int64_t now = clock_.MonotonicNs();
    if (now >= next_posture) {
      int64_t since = 0;
      if (!posture_.Start() && posture_.running(&since)) {
        TL_LOG(WARNING) << "posture: the collection started " << (now - since) / kNanosPerSecond
                        << " s ago is still running; not starting another";
      }
      next_posture = now + posture_every;
    }
    if (std::optional<PostureSnapshot> snap = posture_.Take()) {
      TL_RETURN_IF_ERROR(pipeline_.EmitPosture(std::move(*snap)).status());
    }
    if (now >= next_health) {
      TL_RETURN_IF_ERROR(EmitHealth());
      next_health = now + health_every;
    }
    if (metrics_ != nullptr && now >= next_metrics) {
      UpdateMetrics();
      next_metrics = now + kNanosPerSecond;
    }
    Result<int> polled = probe_->Poll(kPollTimeoutMs, on_record);
    if (!polled.ok()) {
      // Poll already treats EINTR as a timeout; anything else is logged once and retried,
      // because a sensor that exits stops protecting the host.
      std::string msg = polled.status().ToString();
      if (msg != last_poll_error_) {
        TL_LOG(ERROR) << "poll: " << msg;
      }
      last_poll_error_ = std::move(msg);
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollTimeoutMs));
    }
    TL_RETURN_IF_ERROR(sink_status_);
    TL_RETURN_IF_ERROR(pipeline_.Flush());
  }
  return Status::Ok();
}

}  // namespace tripline::sensor
