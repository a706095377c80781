#include "aggregator/correlation_engine.h"

#include <nlohmann/json.hpp>

#include "aggregator/query_service.h"
#include "common/log.h"
#include "model/incident_proto.h"

namespace tripline {
namespace {

constexpr int kSnapshotVersion = 1;

}  // namespace

CorrelationEngine::CorrelationEngine(Store* store, CorrelationEngineOptions options,
                                     const Clock& clock)
    : store_(store),
      options_(std::move(options)),
      clock_(clock),
      correlator_(options_.correlator, clock) {}

Result<std::unique_ptr<CorrelationEngine>> CorrelationEngine::Open(Store* store,
                                                                   CorrelationEngineOptions options,
                                                                   const Clock& clock) {
  std::unique_ptr<CorrelationEngine> engine(
      new CorrelationEngine(store, std::move(options), clock));
  TL_RETURN_IF_ERROR(engine->Restore());
  return engine;
}

Status CorrelationEngine::Restore() {
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(std::optional<std::string> snapshot, store_->GetCorrelatorSnapshot());
  int64_t replay_from = clock_.NowNs() - options_.replay_margin_ns;
  if (snapshot) {
    nlohmann::json j = nlohmann::json::parse(*snapshot, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("version", 0) != kSnapshotVersion || !j.contains("state") ||
        !j["state"].is_string() || !j.contains("positions") || !j["positions"].is_object() ||
        !j.contains("watermark_ns") || !j["watermark_ns"].is_number_integer()) {
      return Status::Corruption("correlator snapshot is not a version-1 snapshot");
    }
    TL_RETURN_IF_ERROR(correlator_.RestoreState(j["state"].get<std::string>())
                           .WithContext("restoring correlator snapshot"));
    for (const auto& [sensor, seq] : j["positions"].items()) {
      if (!seq.is_number_unsigned()) return Status::Corruption("snapshot position not a count");
      positions_[sensor] = seq.get<uint64_t>();
    }
    watermark_ns_ = j["watermark_ns"].get<int64_t>();
    replay_from = watermark_ns_ - options_.replay_margin_ns;
  }
  // Replay what was stored after the snapshot (or, with none, the recent past).
  EventQuery q;
  q.since_ns = std::max<int64_t>(0, replay_from);
  q.limit = Store::kMaxPageSize;
  uint64_t replayed = 0;
  while (true) {
    TL_ASSIGN_OR_RETURN(EventPage page, store_->QueryEvents(q));
    for (const StoredEvent& se : page.events) {
      auto it = positions_.find(se.sensor_id);
      if (it != positions_.end() && se.event.seq <= it->second) continue;
      WriteLocked(FeedLocked(se.sensor_id, se.event));
      ++replayed;
    }
    if (page.next_page_token.empty()) break;
    q.page_token = page.next_page_token;
  }
  stats_.replayed = replayed;
  if (replayed > 0 || snapshot) {
    TL_LOG(INFO) << "correlator restored" << (snapshot ? " from snapshot" : "") << ", " << replayed
                 << " events replayed, " << correlator_.tracked_sessions() << " sessions tracked";
  }
  return Status::Ok();
}

void CorrelationEngine::OnDurable(std::string_view sensor_id, std::span<const Event> events) {
  std::lock_guard<std::mutex> lock(mu_);
  // One chain often changes several times within a batch; only its last revision is
  // written, once, before the batch is acknowledged.
  std::map<std::string, Incident> changed;
  for (const Event& e : events) {
    for (Incident& incident : FeedLocked(sensor_id, e)) {
      std::string id = incident.id;
      changed.insert_or_assign(std::move(id), std::move(incident));
    }
  }
  std::vector<Incident> latest;
  latest.reserve(changed.size());
  for (auto& [id, incident] : changed) latest.push_back(std::move(incident));
  WriteLocked(latest);
}

std::vector<Incident> CorrelationEngine::FeedLocked(std::string_view sensor_id,
                                                    const Event& event) {
  std::vector<Incident> changed = correlator_.Handle(sensor_id, event);
  uint64_t& position = positions_[std::string(sensor_id)];
  position = std::max(position, event.seq);
  watermark_ns_ = std::max(watermark_ns_, event.time_ns);
  dirty_ = true;
  ++stats_.events_fed;
  return changed;
}

void CorrelationEngine::WriteLocked(const std::vector<Incident>& incidents) {
  for (const Incident& incident : incidents) {
    v1::Incident wire;
    ToProto(incident, &wire);
    Status s = PutIncident(*store_, wire);
    if (s.ok()) {
      ++stats_.incident_writes;
      TL_LOG(INFO) << "incident " << incident.id << " rev " << incident.revision << " "
                   << SeverityName(incident.severity) << ": " << incident.title;
    } else {
      // The store logged the cause; the next revision of the chain writes it again.
      ++stats_.incident_write_errors;
      TL_LOG(ERROR) << "incident " << incident.id << " not stored: " << s.ToString();
    }
  }
}

Status CorrelationEngine::Maintain() {
  std::lock_guard<std::mutex> lock(mu_);
  WriteLocked(correlator_.Tick());
  if (dirty_ && clock_.MonotonicNs() - last_snapshot_mono_ns_ >= options_.snapshot_interval_ns) {
    return SnapshotLocked();
  }
  return Status::Ok();
}

Status CorrelationEngine::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return SnapshotLocked();
}

Status CorrelationEngine::SnapshotLocked() {
  nlohmann::json positions = nlohmann::json::object();
  for (const auto& [sensor, seq] : positions_) positions[sensor] = seq;
  const nlohmann::json j = {{"version", kSnapshotVersion},
                            {"positions", std::move(positions)},
                            {"watermark_ns", watermark_ns_},
                            {"state", correlator_.SerializeState()}};
  TL_RETURN_IF_ERROR(store_->PutCorrelatorSnapshot(j.dump()));
  dirty_ = false;
  last_snapshot_mono_ns_ = clock_.MonotonicNs();
  ++stats_.snapshots;
  return Status::Ok();
}

CorrelationEngineStats CorrelationEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tripline
