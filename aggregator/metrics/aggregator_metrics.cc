#include "aggregator/metrics/aggregator_metrics.h"

#include <rocksdb/db.h>

#include "common/log.h"
#include "model/incident.h"

namespace tripline {
namespace {

constexpr const char* kColumnFamilies[] = {"events",  "sessions", "baselines", "incidents",
                                           "posture", "actions",  "outbox",    "meta"};

double D(uint64_t v) { return static_cast<double>(v); }

}  // namespace

void AppendStatsMetrics(const v1::Stats& st, int64_t now_ns, MetricsText* m) {
  const auto counter = [&](const char* name, const char* help, uint64_t value) {
    m->Family(name, MetricType::kCounter, help);
    m->Sample(name, D(value));
  };
  const auto gauge = [&](const char* name, const char* help, double value) {
    m->Family(name, MetricType::kGauge, help);
    m->Sample(name, value);
  };
  counter("tripline_aggregator_events_stored_total", "Events stored, all sensors.",
          st.events_stored());
  gauge("tripline_aggregator_ingest_events_per_second",
        "Events stored per second over the last minute.", st.events_per_second());
  counter("tripline_aggregator_duplicates_dropped_total",
          "Events dropped as duplicates since start (resent after a reconnect).",
          st.duplicates_dropped());
  counter("tripline_aggregator_batches_rejected_total", "Batches rejected since start.",
          st.batches_rejected());
  counter("tripline_aggregator_streams_denied_total",
          "Ingest streams refused for their identity since start.", st.streams_denied());
  counter("tripline_aggregator_events_time_clamped_total",
          "Events whose time was clamped into the skew window since start.",
          st.events_time_clamped());
  gauge("tripline_aggregator_identities", "Identities (user names) indexed.", D(st.identities()));
  gauge("tripline_aggregator_sensors_connected", "Sensors with an open ingest stream.",
        D(st.sensors_connected()));
  counter("tripline_aggregator_correlation_events_total",
          "Stored events the correlator has been fed since start.", st.correlation_events_fed());
  gauge("tripline_aggregator_correlation_backlog_events",
        "Stored events not yet correlated (an upper bound).", D(st.correlation_backlog()));
  gauge("tripline_aggregator_correlation_behind",
        "1 while the correlator reads its backlog back from the store.",
        st.correlation_behind() ? 1 : 0);
  counter("tripline_aggregator_correlation_fell_behind_total",
          "Times the correlator fell behind since start.", st.correlation_fell_behind());
  counter("tripline_aggregator_incidents_evicted_total",
          "Oldest incidents evicted past the store's bound since start.", st.incidents_evicted());

  // Per sensor, labelled with its id and host (values a sensor chose: escaped by
  // MetricsText).
  struct PerSensor {
    const char* name;
    MetricType type;
    const char* help;
    double (*value)(const v1::SensorStats&, int64_t now_ns);
  };
  static const PerSensor kPerSensor[] = {
      {"tripline_aggregator_sensor_connected", MetricType::kGauge,
       "1 while the sensor has an open ingest stream.",
       [](const v1::SensorStats& s, int64_t) { return s.connected() ? 1.0 : 0.0; }},
      {"tripline_aggregator_sensor_events_total", MetricType::kCounter,
       "Events stored from the sensor.",
       [](const v1::SensorStats& s, int64_t) { return D(s.events()); }},
      {"tripline_aggregator_sensor_ringbuf_drops_total", MetricType::kCounter,
       "Ring-buffer drops the sensor reported in its latest health event.",
       [](const v1::SensorStats& s, int64_t) { return D(s.ringbuf_drops()); }},
      {"tripline_aggregator_sensor_spool_drops_total", MetricType::kCounter,
       "Spool drops the sensor reported in its latest health event.",
       [](const v1::SensorStats& s, int64_t) { return D(s.spool_drops()); }},
      {"tripline_aggregator_sensor_hook_families_disabled", MetricType::kGauge,
       "Hook families disabled on the sensor's host, from its latest health event.",
       [](const v1::SensorStats& s, int64_t) {
         double n = 0;
         for (const auto& f : s.families()) n += f.state() == "disabled" ? 1 : 0;
         return n;
       }},
      {"tripline_aggregator_sensor_last_seen_timestamp_seconds", MetricType::kGauge,
       "When the sensor last wrote or was heard from (Unix time).",
       [](const v1::SensorStats& s, int64_t) { return s.last_seen_ns() / 1e9; }},
      {"tripline_aggregator_sensor_stream_lag_seconds", MetricType::kGauge,
       "Seconds since the sensor was last heard from.",
       [](const v1::SensorStats& s, int64_t now) {
         return s.last_seen_ns() > 0 ? std::max(0.0, (now - s.last_seen_ns()) / 1e9) : 0.0;
       }},
  };
  for (const PerSensor& p : kPerSensor) {
    m->Family(p.name, p.type, p.help);
    for (const v1::SensorStats& s : st.sensors()) {
      m->Sample(p.name, p.value(s, now_ns), {{"sensor", s.sensor_id()}, {"host", s.host()}});
    }
  }
  // Per SIEM output (Stats.forwards), labelled with its URL as configured (it holds no
  // secret: tokens are named by file).
  struct PerOutput {
    const char* name;
    MetricType type;
    const char* help;
    double (*value)(const v1::ForwardStats&, int64_t now_ns);
  };
  static const PerOutput kPerOutput[] = {
      {"tripline_aggregator_outbox_backlog_records", MetricType::kGauge,
       "Incident revisions queued in the outbox for the output, not yet delivered.",
       [](const v1::ForwardStats& f, int64_t) { return D(f.backlog()); }},
      {"tripline_aggregator_outbox_oldest_age_seconds", MetricType::kGauge,
       "Age of the oldest revision queued for the output; 0 when none is.",
       [](const v1::ForwardStats& f, int64_t now) {
         return f.oldest_queued_ns() > 0 ? std::max(0.0, (now - f.oldest_queued_ns()) / 1e9) : 0.0;
       }},
      {"tripline_aggregator_forwarded_records_total", MetricType::kCounter,
       "Incident revisions delivered to the output since start.",
       [](const v1::ForwardStats& f, int64_t) { return D(f.delivered()); }},
      {"tripline_aggregator_forward_rejected_records_total", MetricType::kCounter,
       "Incident revisions the output refused for good since start.",
       [](const v1::ForwardStats& f, int64_t) { return D(f.rejected()); }},
      {"tripline_aggregator_forward_failures_total", MetricType::kCounter,
       "Delivery attempts to the output that failed and are retried, since start.",
       [](const v1::ForwardStats& f, int64_t) { return D(f.failures()); }},
      {"tripline_aggregator_forward_up", MetricType::kGauge,
       "1 when the latest delivery attempt to the output succeeded.",
       [](const v1::ForwardStats& f, int64_t) { return f.connected() ? 1.0 : 0.0; }},
  };
  for (const PerOutput& p : kPerOutput) {
    m->Family(p.name, p.type, p.help);
    for (const v1::ForwardStats& f : st.forwards()) {
      m->Sample(p.name, p.value(f, now_ns), {{"destination", f.url()}, {"format", f.format()}});
    }
  }
}

std::string RenderAggregatorMetrics(const AggregatorMetricsInput& in) {
  MetricsText m;
  AppendStatsMetrics(in.stats, in.now_ns, &m);
  m.Family("tripline_aggregator_incidents", MetricType::kGauge, "Incidents stored, by severity.");
  for (const auto& [severity, n] : in.incidents_by_severity) {
    m.Sample("tripline_aggregator_incidents", D(n), {{"severity", severity}});
  }
  const struct {
    const char* name;
    const char* help;
    uint64_t ColumnFamilySize::*field;
  } kStore[] = {
      {"tripline_aggregator_store_sst_bytes", "Bytes of RocksDB SST files, by column family.",
       &ColumnFamilySize::sst_bytes},
      {"tripline_aggregator_store_memtable_bytes", "Bytes of RocksDB memtables, by column family.",
       &ColumnFamilySize::memtable_bytes},
      {"tripline_aggregator_store_keys", "RocksDB's estimate of the keys, by column family.",
       &ColumnFamilySize::estimated_keys},
  };
  for (const auto& k : kStore) {
    m.Family(k.name, MetricType::kGauge, k.help);
    for (const ColumnFamilySize& cf : in.store) {
      m.Sample(k.name, D(cf.*(k.field)), {{"column_family", cf.name}});
    }
  }
  return m.Take();
}

std::string AggregatorMetrics::Collect() {
  AggregatorMetricsInput in;
  in.now_ns = clock_.NowNs();
  if (grpc::Status s = query_->CollectStats(&in.stats); !s.ok()) {
    TL_LOG(WARNING) << "metrics: stats: " << s.error_message();
  }
  for (int level = 1; level <= 5; ++level) {
    in.incidents_by_severity[std::string(SeverityName(static_cast<Severity>(level)))] = 0;
  }
  const Status scanned = store_->ScanIncidents([&](std::string_view bytes) {
    v1::Incident incident;
    if (incident.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) &&
        incident.severity() >= v1::SEVERITY_INFO && incident.severity() <= v1::SEVERITY_CRITICAL) {
      ++in.incidents_by_severity[std::string(
          SeverityName(static_cast<Severity>(incident.severity())))];
    }
    return true;
  });
  if (!scanned.ok()) TL_LOG(WARNING) << "metrics: incidents: " << scanned.ToString();
  if (rocks_ != nullptr && rocks_->db() != nullptr) {
    for (const char* name : kColumnFamilies) {
      rocksdb::ColumnFamilyHandle* cf = rocks_->column_family(name);
      if (cf == nullptr) continue;
      ColumnFamilySize size;
      size.name = name;
      rocks_->db()->GetIntProperty(cf, "rocksdb.total-sst-files-size", &size.sst_bytes);
      rocks_->db()->GetIntProperty(cf, "rocksdb.cur-size-all-mem-tables", &size.memtable_bytes);
      rocks_->db()->GetIntProperty(cf, "rocksdb.estimate-num-keys", &size.estimated_keys);
      in.store.push_back(std::move(size));
    }
  }
  return RenderAggregatorMetrics(in);
}

}  // namespace tripline
