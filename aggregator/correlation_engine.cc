#include "aggregator/correlation_engine.h"

#include <nlohmann/json.hpp>

#include "aggregator/query_service.h"
#include "common/log.h"
#include "model/incident_proto.h"

namespace tripline {
namespace {

// Snapshot value, version 2: a one-line JSON header {"version":2,"positions":{sensor: seq},
// "watermark_ns":N}, a newline, then the correlator state exactly as SerializeState wrote
// it. Version 1 was a single JSON object that carried the state as an escaped JSON string,
// which doubled the cost of writing and reading it; it is still read. A compact JSON dump
// never contains a raw newline, so the first newline tells the two apart.
constexpr int kSnapshotVersion = 2;
constexpr int kLegacySnapshotVersion = 1;

struct SnapshotParts {
  nlohmann::json header;
  std::string_view state;
};

Result<SnapshotParts> SplitSnapshot(const std::string& bytes) {
  SnapshotParts parts;
  const size_t newline = bytes.find('\n');
  if (newline != std::string::npos) {
    parts.header = nlohmann::json::parse(std::string_view(bytes).substr(0, newline), nullptr,
                                         /*allow_exceptions=*/false);
    if (!parts.header.is_object() || parts.header.value("version", 0) != kSnapshotVersion) {
      return Status::Corruption("correlator snapshot header is not a version-2 header");
    }
    parts.state = std::string_view(bytes).substr(newline + 1);
    return parts;
  }
  parts.header = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!parts.header.is_object() || parts.header.value("version", 0) != kLegacySnapshotVersion ||
      !parts.header.contains("state") || !parts.header["state"].is_string()) {
    return Status::Corruption("correlator snapshot is neither a version-1 nor a version-2 one");
  }
  parts.state = parts.header["state"].get_ref<const std::string&>();
  return parts;
}

}  // namespace

CorrelationEngine::CorrelationEngine(Store* store, CorrelationEngineOptions options,
                                     const Clock& clock)
    : store_(store),
      options_(std::move(options)),
      clock_(clock),
      correlator_(options_.correlator, clock) {}

CorrelationEngine::~CorrelationEngine() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<CorrelationEngine>> CorrelationEngine::Open(Store* store,
                                                                   CorrelationEngineOptions options,
                                                                   const Clock& clock) {
  std::unique_ptr<CorrelationEngine> engine(
      new CorrelationEngine(store, std::move(options), clock));
  TL_RETURN_IF_ERROR(engine->Restore());
  engine->thread_ = std::thread([e = engine.get()] { e->Run(); });
  return engine;
}

Status CorrelationEngine::Restore() {
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(std::optional<std::string> snapshot, store_->GetCorrelatorSnapshot());
  int64_t replay_from = clock_.NowNs() - options_.replay_margin_ns;
  if (snapshot) {
    TL_ASSIGN_OR_RETURN(SnapshotParts parts, SplitSnapshot(*snapshot));
    const nlohmann::json& j = parts.header;
    if (!j.contains("positions") || !j["positions"].is_object() || !j.contains("watermark_ns") ||
        !j["watermark_ns"].is_number_integer()) {
      return Status::Corruption("correlator snapshot header lacks positions or watermark");
    }
    TL_RETURN_IF_ERROR(
        correlator_.RestoreState(parts.state).WithContext("restoring correlator snapshot"));
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
      WriteLocked(FeedLocked(se.sensor_id, se.event, &positions_[se.sensor_id]));
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

void CorrelationEngine::OnDurable(std::string_view sensor_id, std::vector<Event> events) {
  if (events.empty()) return;
  const size_t n = events.size();
  std::unique_lock<std::mutex> lock(queue_mu_);
  // A batch larger than the whole bound is still taken, alone, so nothing waits forever.
  space_cv_.wait(lock, [&] {
    return queued_events_ == 0 || queued_events_ + n <= options_.max_queued_events;
  });
  queue_.push_back(Batch{std::string(sensor_id), std::move(events)});
  queued_events_ += n;
  ++batches_queued_;
  lock.unlock();
  work_cv_.notify_one();
}

void CorrelationEngine::Run() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has been fed
    // Everything queued so far in one go: a chain that changes in several of these batches
    // is written once, with its latest revision.
    std::deque<Batch> work;
    work.swap(queue_);
    lock.unlock();
    {
      std::lock_guard<std::mutex> engine_lock(mu_);
      FeedBatchesLocked(work);
    }
    size_t n = 0;
    for (const Batch& b : work) n += b.events.size();
    const uint64_t batches = work.size();
    work.clear();  // free the events outside the queue lock
    lock.lock();
    queued_events_ -= n;
    batches_done_ += batches;
    space_cv_.notify_all();
  }
}

void CorrelationEngine::Drain() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  const uint64_t target = batches_queued_;
  space_cv_.wait(lock, [&] { return batches_done_ >= target; });
}

void CorrelationEngine::FeedBatchesLocked(const std::deque<Batch>& batches) {
  // One chain often changes several times within a hand-over; only its last revision is
  // written, once.
  std::map<std::string, Incident> changed;
  for (const Batch& batch : batches) {
    uint64_t* position = &positions_[batch.sensor_id];
    for (const Event& e : batch.events) {
      for (Incident& incident : FeedLocked(batch.sensor_id, e, position)) {
        std::string id = incident.id;
        changed.insert_or_assign(std::move(id), std::move(incident));
      }
    }
  }
  std::vector<Incident> latest;
  latest.reserve(changed.size());
  for (auto& [id, incident] : changed) latest.push_back(std::move(incident));
  WriteLocked(latest);
}

std::vector<Incident> CorrelationEngine::FeedLocked(std::string_view sensor_id, const Event& event,
                                                    uint64_t* position) {
  std::vector<Incident> changed = correlator_.Handle(sensor_id, event);
  *position = std::max(*position, event.seq);
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
  const int64_t since = clock_.MonotonicNs() - last_snapshot_mono_ns_;
  if (dirty_ && since >= options_.snapshot_interval_ns &&
      since >= options_.snapshot_cost_factor * stats_.last_snapshot_cost_ns) {
    return SnapshotLocked();
  }
  return Status::Ok();
}

Status CorrelationEngine::Snapshot() {
  Drain();
  std::lock_guard<std::mutex> lock(mu_);
  return SnapshotLocked();
}

Status CorrelationEngine::SnapshotLocked() {
  const int64_t start = clock_.MonotonicNs();
  nlohmann::json positions = nlohmann::json::object();
  for (const auto& [sensor, seq] : positions_) positions[sensor] = seq;
  const nlohmann::json header = {{"version", kSnapshotVersion},
                                 {"positions", std::move(positions)},
                                 {"watermark_ns", watermark_ns_}};
  std::string bytes = header.dump();
  bytes.push_back('\n');
  bytes += correlator_.SerializeState();
  TL_RETURN_IF_ERROR(store_->PutCorrelatorSnapshot(bytes));
  dirty_ = false;
  last_snapshot_mono_ns_ = clock_.MonotonicNs();
  ++stats_.snapshots;
  stats_.last_snapshot_cost_ns = last_snapshot_mono_ns_ - start;
  stats_.last_snapshot_bytes = bytes.size();
  TL_LOG(DEBUG) << "correlator snapshot: " << bytes.size() << " bytes in "
                << FormatDurationNs(stats_.last_snapshot_cost_ns);
  return Status::Ok();
}

CorrelationEngineStats CorrelationEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tripline
