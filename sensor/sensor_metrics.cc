#include "sensor/sensor_metrics.h"

#include "common/metrics/metrics_text.h"

namespace tripline::sensor {

void SensorMetrics::Update(SensorMetricsSnapshot snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(snapshot);
}

std::string SensorMetrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  return RenderSensorMetrics(snapshot_);
}

std::string RenderSensorMetrics(const SensorMetricsSnapshot& s) {
  MetricsText m;
  const auto counter = [&](const char* name, const char* help, double value) {
    m.Family(name, MetricType::kCounter, help);
    m.Sample(name, value);
  };
  const auto gauge = [&](const char* name, const char* help, double value) {
    m.Family(name, MetricType::kGauge, help);
    m.Sample(name, value);
  };
  m.Family("tripline_sensor_events_total", MetricType::kCounter,
           "Events the sensor handled since start, by kind.");
  for (size_t k = 0; k < s.events_by_kind.size(); ++k) {
    m.Sample("tripline_sensor_events_total", static_cast<double>(s.events_by_kind[k]),
             {{"kind", std::string(KindName(static_cast<EventKind>(k)))}});
  }
  counter("tripline_sensor_ringbuf_drops_total",
          "Records lost to a full BPF ring buffer since the programs were loaded.",
          static_cast<double>(s.ringbuf_drops));
  counter("tripline_sensor_helper_errors_total",
          "Failed kernel helper calls and full state maps (fields may be missing).",
          static_cast<double>(s.helper_errors));
  counter("tripline_sensor_decode_errors_total", "Ring-buffer records that did not decode.",
          static_cast<double>(s.decode_errors));
  m.Family("tripline_sensor_hook_family_live", MetricType::kGauge,
           "1 when the hook family runs fully (live), 0 when degraded or disabled.");
  uint64_t disabled = 0;
  for (const HookFamilyStatus& f : s.families) {
    m.Sample("tripline_sensor_hook_family_live", f.state == "live" ? 1 : 0,
             {{"family", f.name}, {"state", f.state}});
    if (f.state == "disabled") ++disabled;
  }
  gauge("tripline_sensor_hook_families_disabled",
        "Hook families that do not run at all on this host: what Tripline cannot see.",
        static_cast<double>(disabled));
  gauge("tripline_sensor_spool_bytes", "Bytes in the on-disk spool (events not yet acknowledged).",
        static_cast<double>(s.sink.spool_bytes));
  gauge("tripline_sensor_spool_events",
        "Events numbered but not yet acknowledged by the aggregator: the stream's lag.",
        static_cast<double>(s.sink.unacked_events));
  counter("tripline_sensor_spool_drops_total",
          "Events lost to the spool's bound or rejected by the aggregator.",
          static_cast<double>(s.sink.spool_drops));
  counter("tripline_sensor_delivery_acked_events_total",
          "Events the aggregator acknowledged as durable since start.",
          static_cast<double>(s.sink.acked_events));
  counter("tripline_sensor_delivery_reconnects_total", "Streams to the aggregator reopened.",
          static_cast<double>(s.sink.reconnects));
  gauge("tripline_sensor_delivery_connected",
        "1 while a stream to the aggregator is open and acknowledged.", s.sink.connected ? 1 : 0);
  return m.Take();
}

}  // namespace tripline::sensor
