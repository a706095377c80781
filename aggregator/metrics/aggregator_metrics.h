// The aggregator's Prometheus metrics (docs/metrics.md), gathered at scrape time.
//
// Most come from the same tripline.v1.Stats message that `triplinectl stats` shows
// (QueryService::CollectStats), rendered by AppendStatsMetrics: a field added to Stats
// becomes a metric there, in a few lines. Beside it: incidents by severity (a scan of the
// incidents, which the store bounds) and RocksDB's sizes per column family.
//
// Threading: Collect runs on the metrics server's thread, concurrently with ingest and
// queries; everything it reads is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "aggregator/query/query_service.h"
#include "aggregator/store/rocksdb_store.h"
#include "common/clock.h"
#include "common/metrics/metrics_text.h"
#include "tripline/v1/query.pb.h"

namespace tripline {

struct ColumnFamilySize {
  std::string name;
  uint64_t sst_bytes = 0;       // rocksdb.total-sst-files-size
  uint64_t memtable_bytes = 0;  // rocksdb.cur-size-all-mem-tables
  uint64_t estimated_keys = 0;  // rocksdb.estimate-num-keys
};

struct AggregatorMetricsInput {
  v1::Stats stats;
  std::map<std::string, uint64_t> incidents_by_severity;  // "critical" -> n, every level
  std::vector<ColumnFamilySize> store;
  int64_t now_ns = 0;
};

// The families of `stats` (and its per-sensor entries) into `m`.
void AppendStatsMetrics(const v1::Stats& stats, int64_t now_ns, MetricsText* m);
// Everything, as the Prometheus text format.
std::string RenderAggregatorMetrics(const AggregatorMetricsInput& input);

class AggregatorMetrics {
 public:
  // None owned; `rocks` may be nullptr (no sizes then). All must outlive this object.
  AggregatorMetrics(QueryService* query, Store* store, RocksDbStore* rocks, const Clock& clock)
      : query_(query), store_(store), rocks_(rocks), clock_(clock) {}
  // One scrape.
  std::string Collect();

 private:
  QueryService* const query_;
  Store* const store_;
  RocksDbStore* const rocks_;
  const Clock& clock_;
};

}  // namespace tripline
