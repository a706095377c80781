// The scaled-out mode's Prometheus families (docs/metrics.md): a worker's (what it holds,
// fed and snapshotted, how far each partition's consumer is behind, the joiner when it
// runs it), served after the store's families (AggregatorMetrics); an ingest node's (its
// ingest service's counters, the sensors it serves, the address book's writes).
#pragma once

#include <vector>

#include "aggregator/cluster/address_book.h"
#include "aggregator/cluster/worker.h"
#include "aggregator/ingest/ingest_service.h"
#include "common/metrics/metrics_text.h"

namespace tripline::cluster {

void AppendWorkerMetrics(const WorkerStats& stats, const std::vector<PartitionStatus>& partitions,
                         MetricsText* m);

// `now_ns` (wall clock) for how long ago each sensor was heard from.
void AppendIngestNodeMetrics(const IngestService& ingest, const AddressBookStats& addresses,
                             int64_t now_ns, MetricsText* m);

}  // namespace tripline::cluster
