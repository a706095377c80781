// Prometheus text exposition format (version 0.0.4), written by hand because it is small:
// "# HELP" and "# TYPE" once per family, then one line per sample with its labels.
//
//   MetricsText m;
//   m.Family("tripline_sensor_events_total", MetricType::kCounter, "Events the sensor sent.");
//   m.Sample("tripline_sensor_events_total", 42, {{"kind", "login"}});
//   std::string body = m.Take();
//
// Names follow Prometheus's conventions (docs/metrics.md): the tripline_ prefix, base units
// (seconds, bytes), _total for counters. Label values are escaped as the format says
// (backslash, double quote, newline), so a host name cannot forge a sample; HELP text is
// escaped likewise. Not thread-safe; one per scrape.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tripline {

enum class MetricType { kCounter, kGauge };

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsText {
 public:
  void Family(std::string_view name, MetricType type, std::string_view help);
  void Sample(std::string_view name, double value, const MetricLabels& labels = {});
  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Content-Type of the format.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tripline
