#include "aggregator/cluster/cluster_metrics.h"

#include <algorithm>
#include <string>

#include "common/clock.h"

namespace tripline::cluster {
namespace {

double D(uint64_t v) { return static_cast<double>(v); }

template <typename S>
struct Field {
  const char* name;
  MetricType type;
  const char* help;
  double (*value)(const S&);
};

}  // namespace

void AppendWorkerMetrics(const WorkerStats& stats, const std::vector<PartitionStatus>& partitions,
                         MetricsText* m) {
  m->Family("tripline_worker_partitions", MetricType::kGauge, "Partitions the worker holds.");
  m->Sample("tripline_worker_partitions", D(partitions.size()));
  static const Field<WorkerStats> kFields[] = {
      {"tripline_worker_messages_total", MetricType::kCounter, "Stream messages fed.",
       [](const WorkerStats& s) { return D(s.messages); }},
      {"tripline_worker_events_fed_total", MetricType::kCounter,
       "Events fed to the partitions' correlators and stored.",
       [](const WorkerStats& s) { return D(s.events_fed); }},
      {"tripline_worker_events_dropped_total", MetricType::kCounter,
       "Events at or below their sensor's position in the partition (fed before).",
       [](const WorkerStats& s) { return D(s.events_dropped); }},
      {"tripline_worker_bad_messages_total", MetricType::kCounter,
       "Stream messages that did not decode, passed over.",
       [](const WorkerStats& s) { return D(s.bad_messages); }},
      {"tripline_worker_snapshots_total", MetricType::kCounter,
       "Partition snapshots written to the cluster.",
       [](const WorkerStats& s) { return D(s.snapshots); }},
      {"tripline_worker_snapshot_bytes", MetricType::kGauge, "Size of the latest snapshot.",
       [](const WorkerStats& s) { return D(s.snapshot_bytes); }},
      {"tripline_worker_snapshot_correlator_bytes", MetricType::kGauge,
       "Of the latest snapshot, the correlator's state.",
       [](const WorkerStats& s) { return D(s.snapshot_correlator_bytes); }},
      {"tripline_worker_snapshot_baselines", MetricType::kGauge,
       "Of the latest snapshot, learned-baseline records.",
       [](const WorkerStats& s) { return D(s.snapshot_baselines); }},
      {"tripline_worker_snapshot_seconds", MetricType::kGauge, "How long the latest snapshot took.",
       [](const WorkerStats& s) { return static_cast<double>(s.snapshot_ns) / kNanosPerSecond; }},
      {"tripline_worker_consumers_remade_total", MetricType::kCounter,
       "Partition consumers made anew (fetches failed, or a message handed out never came).",
       [](const WorkerStats& s) { return D(s.consumers_remade); }},
      {"tripline_worker_partitions_taken_total", MetricType::kCounter, "Partitions taken.",
       [](const WorkerStats& s) { return D(s.partitions_taken); }},
      {"tripline_worker_partitions_handed_over_total", MetricType::kCounter,
       "Partitions released past the worker's share, after a snapshot.",
       [](const WorkerStats& s) { return D(s.partitions_handed_over); }},
      {"tripline_worker_partitions_lost_total", MetricType::kCounter,
       "Partitions whose lease or snapshot another worker took.",
       [](const WorkerStats& s) { return D(s.partitions_lost); }},
      {"tripline_worker_store_errors_total", MetricType::kCounter,
       "Store writes that failed (tried again).",
       [](const WorkerStats& s) { return D(s.store_errors); }},
      {"tripline_worker_incident_writes_total", MetricType::kCounter,
       "Incidents raised or grown, written to the store.",
       [](const WorkerStats& s) { return D(s.incident_writes); }},
      {"tripline_worker_cluster_errors_total", MetricType::kCounter,
       "Calls to the cluster that failed (tried again).",
       [](const WorkerStats& s) { return D(s.cluster_errors); }},
      {"tripline_worker_fragments_published_total", MetricType::kCounter,
       "Changes of chains across partitions published to the edge stream.",
       [](const WorkerStats& s) { return D(s.fragments_published); }},
      {"tripline_worker_fragments_too_large_total", MetricType::kCounter,
       "Changes of chains across partitions not published: too large.",
       [](const WorkerStats& s) { return D(s.fragments_too_large); }},
      {"tripline_worker_joiner_held", MetricType::kGauge, "1 while this worker runs the joiner.",
       [](const WorkerStats& s) { return s.joiner.held ? 1.0 : 0.0; }},
      {"tripline_worker_joiner_taken_total", MetricType::kCounter,
       "Times this worker took the joiner's lease.",
       [](const WorkerStats& s) { return D(s.joiner.taken); }},
      {"tripline_worker_joiner_lost_total", MetricType::kCounter,
       "Times the joiner's lease was lost without handing over.",
       [](const WorkerStats& s) { return D(s.joiner.lost); }},
      {"tripline_worker_joiner_edges_total", MetricType::kCounter,
       "Edge stream messages the joiner fed.",
       [](const WorkerStats& s) { return D(s.joiner.edges); }},
      {"tripline_worker_joiner_bad_edges_total", MetricType::kCounter,
       "Edge stream messages that did not decode or join, passed over.",
       [](const WorkerStats& s) { return D(s.joiner.bad_edges); }},
      {"tripline_worker_joiner_snapshots_total", MetricType::kCounter,
       "Joiner snapshots written to the cluster.",
       [](const WorkerStats& s) { return D(s.joiner.snapshots); }},
      {"tripline_worker_joiner_cluster_errors_total", MetricType::kCounter,
       "Calls of the joiner to the cluster that failed (tried again).",
       [](const WorkerStats& s) { return D(s.joiner.cluster_errors); }},
      {"tripline_worker_joiner_fragments", MetricType::kGauge, "Chain fragments the joiner holds.",
       [](const WorkerStats& s) { return D(s.joiner.fragments); }},
  };
  for (const Field<WorkerStats>& f : kFields) {
    m->Family(f.name, f.type, f.help);
    m->Sample(f.name, f.value(stats));
  }
  static const Field<PartitionStatus> kPartitionFields[] = {
      {"tripline_worker_partition_pending_messages", MetricType::kGauge,
       "Messages of the partition not fetched yet, as of the last fetch.",
       [](const PartitionStatus& p) { return D(p.pending); }},
      {"tripline_worker_partition_unsnapshotted_events", MetricType::kGauge,
       "Events of the partition fed since its last snapshot (fed again by the next holder "
       "if this worker dies).",
       [](const PartitionStatus& p) { return D(p.events_since_snapshot); }},
  };
  for (const Field<PartitionStatus>& f : kPartitionFields) {
    m->Family(f.name, f.type, f.help);
    for (const PartitionStatus& p : partitions) {
      m->Sample(f.name, f.value(p), {{"partition", std::to_string(p.partition)}});
    }
  }
}

void AppendIngestNodeMetrics(const IngestService& ingest, const AddressBookStats& addresses,
                             int64_t now_ns, MetricsText* m) {
  const IngestCounters c = ingest.counters();
  const struct {
    const char* name;
    const char* help;
    uint64_t value;
  } kCounters[] = {
      {"tripline_ingest_node_streams_total", "Sensor streams that said hello.", c.streams},
      {"tripline_ingest_node_batches_total", "Batches written to the cluster (all-duplicate too).",
       c.batches},
      {"tripline_ingest_node_events_total", "Events newly written to the cluster's stream.",
       c.events},
      {"tripline_ingest_node_duplicates_dropped_total",
       "Events dropped as duplicates (resent after a reconnect).", c.duplicates},
      {"tripline_ingest_node_batches_rejected_total", "Batches (and stray messages) rejected.",
       c.rejected_requests},
      {"tripline_ingest_node_streams_ended_total",
       "Streams ended for a protocol violation or a cluster error.", c.fatal_streams},
      {"tripline_ingest_node_gaps_total", "Batches that skipped sequence numbers.", c.gaps},
      {"tripline_ingest_node_streams_denied_total", "Streams refused for their identity.",
       c.denied_streams},
      {"tripline_ingest_node_events_time_clamped_total",
       "Events whose time was clamped into the skew window.", c.events_time_clamped},
      {"tripline_ingest_node_streams_over_peer_limit_total",
       "Streams refused: the peer had its most open.", c.streams_over_peer_limit},
      {"tripline_ingest_node_addresses_learned_total",
       "Host addresses this node wrote to the cluster's address book.", addresses.learned},
      {"tripline_ingest_node_address_write_errors_total",
       "Address book writes the cluster refused or did not answer.", addresses.write_errors},
      {"tripline_ingest_node_address_watch_errors_total",
       "Times the address book's watcher failed and was made anew.", addresses.watch_errors},
  };
  for (const auto& f : kCounters) {
    m->Family(f.name, MetricType::kCounter, f.help);
    m->Sample(f.name, D(f.value));
  }
  m->Family("tripline_ingest_node_events_per_second", MetricType::kGauge,
            "Events newly written per second over the last minute.");
  m->Sample("tripline_ingest_node_events_per_second", ingest.EventsPerSecond());
  m->Family("tripline_ingest_node_sensors_connected", MetricType::kGauge,
            "Sensors with an open stream to this node.");
  m->Sample("tripline_ingest_node_sensors_connected", ingest.SensorsConnected());
  const std::vector<SensorPresence> sensors = ingest.Sensors();
  m->Family("tripline_ingest_node_sensor_connected", MetricType::kGauge,
            "1 while the sensor has an open stream to this node.");
  for (const SensorPresence& s : sensors) {
    m->Sample("tripline_ingest_node_sensor_connected", s.streams > 0 ? 1 : 0,
              {{"sensor", s.sensor_id}, {"host", s.host}});
  }
  m->Family("tripline_ingest_node_sensor_stream_lag_seconds", MetricType::kGauge,
            "Seconds since the sensor was last heard from on this node.");
  for (const SensorPresence& s : sensors) {
    m->Sample("tripline_ingest_node_sensor_stream_lag_seconds",
              s.last_seen_ns > 0 ? std::max(0.0, static_cast<double>(now_ns - s.last_seen_ns) /
                                                     static_cast<double>(kNanosPerSecond))
                                 : 0.0,
              {{"sensor", s.sensor_id}, {"host", s.host}});
  }
}

}  // namespace tripline::cluster
