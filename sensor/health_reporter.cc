#include "sensor/health_reporter.h"

#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "common/clock.h"

namespace tripline::sensor {

HealthReporter::HealthReporter(int64_t start_mono_ns)
    : start_ns_(start_mono_ns), window_start_ns_(start_mono_ns) {}

SensorHealth HealthReporter::Report(int64_t now_mono_ns, const ExternalCounters& external,
                                    uint64_t rss_bytes) {
  SensorHealth h;
  h.ringbuf_drops = external.ringbuf_drops;
  h.ringbuf_drops_by_kind = external.ringbuf_drops_by_type;
  h.helper_errors = external.helper_errors;
  h.spool_drops = external.spool_drops;
  h.delivery_protocol_violations = external.delivery_protocol_violations;
  h.disabled_programs = external.disabled_programs;
  h.families = external.families;
  h.warnings = external.warnings;
  h.addresses = external.addresses;
  h.decode_errors = decode_errors_;
  h.rss_bytes = rss_bytes;
  h.uptime_seconds = static_cast<uint64_t>((now_mono_ns - start_ns_) / kNanosPerSecond);
  double window_s = static_cast<double>(now_mono_ns - window_start_ns_) / kNanosPerSecond;
  for (size_t i = 0; i < kKinds; ++i) {
    KindCounters k;
    k.kind = std::string(KindName(static_cast<EventKind>(i)));
    k.events = totals_[i];
    k.events_per_second =
        window_s > 0 ? static_cast<double>(totals_[i] - window_base_[i]) / window_s : 0.0;
    h.kinds.push_back(std::move(k));
  }
  window_base_ = totals_;
  window_start_ns_ = now_mono_ns;
  return h;
}

std::string HealthReporter::Summary(const SensorHealth& h) {
  uint64_t events = 0;
  double rate = 0;
  std::ostringstream kinds;
  for (const KindCounters& k : h.kinds) {
    events += k.events;
    rate += k.events_per_second;
    if (k.events == 0) continue;
    kinds << " " << k.kind << "=" << k.events;
  }
  char rate_text[32];
  std::snprintf(rate_text, sizeof(rate_text), "%.1f", rate);
  std::ostringstream out;
  out << "health: " << events << " events (" << rate_text << "/s;" << kinds.str() << "), "
      << h.ringbuf_drops << " ring-buffer drops, " << h.helper_errors << " helper errors, "
      << h.decode_errors << " decode errors, " << h.spool_drops << " spool drops, rss "
      << (h.rss_bytes >> 20) << " MiB, up " << h.uptime_seconds << " s";
  if (!h.disabled_programs.empty()) out << ", " << h.disabled_programs.size() << " disabled";
  if (h.delivery_protocol_violations != 0) {
    out << ", " << h.delivery_protocol_violations
        << " aggregator acks refused (claimed events never sent)";
  }
  for (const HookFamilyStatus& f : h.families) {
    if (f.state != "live") out << ", " << f.name << " " << f.state;
  }
  for (const std::string& w : h.warnings) out << "; warning: " << w;
  return out.str();
}

uint64_t ReadSelfRssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "re");
  if (f == nullptr) return 0;
  unsigned long long size = 0;
  unsigned long long resident = 0;
  int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  long page = sysconf(_SC_PAGESIZE);
  return resident * static_cast<uint64_t>(page > 0 ? page : 4096);
}

}  // namespace tripline::sensor
