#include "aggregator/pipeline/correlation_engine.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "aggregator/query/query_service.h"
#include "common/log.h"
#include "common/text_escape.h"
#include "model/incident_proto.h"

namespace tripline {
namespace {

// Snapshot value: a one-line JSON header {"version":3,"positions":{sensor: seq},
// "watermark_ns":N}, a newline, then the correlator state exactly as SerializeState wrote
// it. Version 3 promises exact positions, so a restart reads each sensor's events above
// its position back from the store. Version 2 (same layout) came before positions were
// exact and is replayed by time. Version 1 was a single JSON object that carried the state as an
// escaped JSON string; it is still read. A compact JSON dump never contains a raw newline,
// so the first newline tells the layouts apart.
constexpr int kSnapshotVersion = 3;
constexpr int kTimeReplaySnapshotVersion = 2;
constexpr int kLegacySnapshotVersion = 1;

struct SnapshotParts {
  int version = 0;
  nlohmann::json header;
  std::string_view state;
};

Result<SnapshotParts> SplitSnapshot(const std::string& bytes) {
  SnapshotParts parts;
  const size_t newline = bytes.find('\n');
  if (newline != std::string::npos) {
    parts.header = nlohmann::json::parse(std::string_view(bytes).substr(0, newline), nullptr,
                                         /*allow_exceptions=*/false);
    parts.version = parts.header.is_object() ? parts.header.value("version", 0) : 0;
    if (parts.version != kSnapshotVersion && parts.version != kTimeReplaySnapshotVersion) {
      return Status::Corruption("correlator snapshot header is not a version-2 or -3 header");
    }
    parts.state = std::string_view(bytes).substr(newline + 1);
    return parts;
  }
  parts.header = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!parts.header.is_object() || parts.header.value("version", 0) != kLegacySnapshotVersion ||
      !parts.header.contains("state") || !parts.header["state"].is_string()) {
    return Status::Corruption("correlator snapshot is neither a version-1 nor a version-2 one");
  }
  parts.version = kLegacySnapshotVersion;
  parts.state = parts.header["state"].get_ref<const std::string&>();
  return parts;
}

}  // namespace

CorrelationEngine::CorrelationEngine(Store* store, CorrelationEngineOptions options,
                                     const Clock& clock)
    : store_(store),
      options_(std::move(options)),
      clock_(clock),
      baselines_(options_.baseline, baseline::IdentityResolver(options_.identities)),
      correlator_(options_.correlator, clock) {
  if (options_.learn_baselines) {
    correlator_.AttachBaselines(&baselines_);
    correlator_.AttachTrust(&trust_);
  }
}

void CorrelationEngine::AttachDrift(const correlate::DriftView* drift) {
  std::lock_guard<std::mutex> lock(mu_);
  correlator_.AttachDrift(drift);
}

std::vector<baseline::AgentDecision> CorrelationEngine::TrustDecisionsAfter(uint64_t after_seq,
                                                                            size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<baseline::AgentDecision> out = trust_.DecisionsAfter(after_seq, max);
  // Only what is in the store: a decision whose snapshot failed is not announced (and its
  // number could be given again after a restart).
  while (!out.empty() && out.back().decision.seq > trust_saved_seq_) out.pop_back();
  return out;
}

uint64_t CorrelationEngine::LastTrustDecisionSeq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trust_saved_seq_;
}

void CorrelationEngine::SetTrustListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  trust_listener_ = std::move(listener);
}

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
  if (options.correlator.incident_id_key.empty()) {
    TL_ASSIGN_OR_RETURN(options.correlator.incident_id_key, store->IncidentIdKey());
  }
  std::unique_ptr<CorrelationEngine> engine(
      new CorrelationEngine(store, std::move(options), clock));
  TL_RETURN_IF_ERROR(engine->Restore());
  engine->thread_ = std::thread([e = engine.get()] { e->Run(); });
  return engine;
}

Status CorrelationEngine::Restore() {
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(std::optional<std::string> snapshot, store_->GetCorrelatorSnapshot());
  uint64_t replayed = 0;
  if (!snapshot) {
    // Nothing to resume from: the recent past is what the correlator's windows could use.
    TL_RETURN_IF_ERROR(ReplayByTimeLocked(clock_.NowNs() - options_.replay_margin_ns, &replayed));
  } else {
    TL_ASSIGN_OR_RETURN(SnapshotParts parts, SplitSnapshot(*snapshot));
    // The baselines as of the snapshot (written in its batch): the replay below teaches
    // them what came after.
    if (options_.learn_baselines) {
      TL_RETURN_IF_ERROR(store_
                             ->ForEachBaseline([&](std::string_view key, std::string_view value) {
                               if (key.substr(0, baseline::KindSuggester::kKeyPrefix.size()) ==
                                   baseline::KindSuggester::kKeyPrefix) {
                                 return suggester_.Load(key, value);
                               }
                               if (key.substr(0, baseline::TrustBook::kKeyPrefix.size()) ==
                                   baseline::TrustBook::kKeyPrefix) {
                                 return trust_.Load(key, value);
                               }
                               return baselines_.Load(key, value);
                             })
                             .WithContext("restoring baselines"));
      // Accounts a person confirmed as services or agents are declared again.
      for (baseline::IdentityRule& rule : suggester_.ConfirmedRules()) {
        baselines_.Declare(std::move(rule));
      }
      trust_saved_seq_ = trust_.last_seq();
    }
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
    // Bounded by this clock: a snapshot written before the bound (or by a clock that ran
    // ahead) must not make the replay below skip what was acknowledged after it.
    watermark_ns_ = std::clamp(j["watermark_ns"].get<int64_t>(), int64_t{0}, clock_.NowNs());
    const int64_t replay_from = watermark_ns_ - options_.replay_margin_ns;
    if (parts.version >= kSnapshotVersion) {
      // With baselines every event after the positions is fed, however old (imported
      // history): live, it would have been, and the baselines must learn it exactly once.
      TL_RETURN_IF_ERROR(
          ReplayFromStoreLocked(options_.learn_baselines ? 0 : replay_from, &replayed));
    } else {
      TL_RETURN_IF_ERROR(ReplayByTimeLocked(replay_from, &replayed));
    }
  }
  stats_.replayed = replayed;
  if (replayed > 0 || snapshot) {
    TL_LOG(INFO) << "correlator restored" << (snapshot ? " from snapshot" : "") << ", " << replayed
                 << " events replayed, " << correlator_.tracked_sessions() << " sessions tracked";
  }
  return Status::Ok();
}

Status CorrelationEngine::ReplayFromStoreLocked(int64_t skip_before_ns, uint64_t* replayed) {
  TL_ASSIGN_OR_RETURN(std::vector<SensorRecord> sensors, store_->ListSensors());
  for (const SensorRecord& r : sensors) {
    bool more = true;
    while (more) {
      TL_ASSIGN_OR_RETURN(more, ReadBackChunkLocked(r, skip_before_ns, replayed));
    }
  }
  return Status::Ok();
}

Result<bool> CorrelationEngine::ReadBackChunkLocked(const SensorRecord& sensor,
                                                    int64_t skip_before_ns, uint64_t* fed) {
  uint64_t* position = &positions_[sensor.sensor_id];
  if (*position >= sensor.durable_seq) return false;
  TL_ASSIGN_OR_RETURN(
      std::vector<Event> events,
      store_->ReadSensorEvents(sensor.sensor_id, *position, options_.read_back_chunk));
  if (events.empty()) {
    // The rest up to durable_seq are gaps or expired: nothing more to feed.
    *position = sensor.durable_seq;
    read_back_through_[sensor.sensor_id] = *position;
    dirty_ = true;
    return false;
  }
  *fed += FeedRunLocked(sensor.sensor_id, events, skip_before_ns, 0);
  read_back_through_[sensor.sensor_id] = *position;
  WriteChangedLocked();
  return *position < sensor.durable_seq;
}

Status CorrelationEngine::ReplayByTimeLocked(int64_t since_ns, uint64_t* replayed) {
  EventQuery q;
  q.since_ns = std::max<int64_t>(0, since_ns);
  q.limit = Store::kMaxPageSize;
  while (true) {
    TL_ASSIGN_OR_RETURN(EventPage page, store_->QueryEvents(q));
    for (const StoredEvent& se : page.events) {
      auto it = positions_.find(se.sensor_id);
      if (it != positions_.end() && se.event.seq <= it->second) continue;
      FeedLocked(se.sensor_id, se.event, &positions_[se.sensor_id]);
      ++*replayed;
    }
    WriteChangedLocked();
    if (page.next_page_token.empty()) break;
    q.page_token = page.next_page_token;
  }
  // Everything stored before now has been considered: older events were skipped on
  // purpose. From here on positions are exact (see the class comment).
  TL_ASSIGN_OR_RETURN(std::vector<SensorRecord> sensors, store_->ListSensors());
  for (const SensorRecord& r : sensors) {
    uint64_t& position = positions_[r.sensor_id];
    position = std::max(position, r.durable_seq);
  }
  return Status::Ok();
}

void CorrelationEngine::OnDurable(std::string_view sensor_id, std::vector<Event> events) {
  if (events.empty()) return;
  const size_t n = events.size();
  bool fell_behind = false;
  size_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    ++batches_handed_;
    // A batch larger than the whole bound is still queued when the queue is empty.
    if (!behind_ && options_.max_queued_events > 0 &&
        (queued_events_ == 0 || queued_events_ + n <= options_.max_queued_events)) {
      queue_.push_back(Batch{std::string(sensor_id), std::move(events)});
      queued_events_ += n;
    } else {
      // Durable already: the correlator thread reads it back from the store.
      fell_behind = !behind_;
      behind_ = true;
      times_fell_behind_ += fell_behind ? 1 : 0;
      ++batches_left_;
      queued = queued_events_;
    }
  }
  work_cv_.notify_one();
  if (fell_behind) {
    TL_LOG(WARNING) << "correlation fell behind ingest with " << queued
                    << " events queued; reading the backlog back from the store";
  }
}

void CorrelationEngine::Run() {
  // Named so that per-thread CPU (top -H, /proc/PID/task) tells correlation from ingest.
  pthread_setname_np(pthread_self(), "tl-correlate");
  std::unique_lock<std::mutex> lock(queue_mu_);
  bool reported_error = false;
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || behind_; });
    if (!queue_.empty()) {
      // Everything queued so far in one go: a chain that changes in several of these
      // batches is written once, with its latest revision.
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
      done_cv_.notify_all();
      continue;
    }
    // A backlog still to read back when stopping stays in the store; the snapshot's exact
    // positions make the next start replay it.
    if (stopping_) return;
    // Behind, and the queue is empty: read back.
    lock.unlock();
    bool progressed = false;
    const Status s = ReadBackStep(&progressed);
    lock.lock();
    if (!s.ok()) {
      if (!reported_error) TL_LOG(ERROR) << "correlation read-back: " << s.ToString();
      reported_error = true;
      {
        std::lock_guard<std::mutex> engine_lock(mu_);
        ++stats_.read_back_errors;
      }
      work_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
      continue;
    }
    reported_error = false;
    if (!progressed && CaughtUp()) {
      behind_ = false;
      batches_done_ += batches_left_;
      batches_left_ = 0;
      done_cv_.notify_all();
      TL_LOG(INFO) << "correlation caught up with ingest";
    }
  }
}

Status CorrelationEngine::ReadBackStep(bool* progressed) {
  TL_ASSIGN_OR_RETURN(std::vector<SensorRecord> sensors, store_->ListSensors());
  for (const SensorRecord& r : sensors) {
    // One chunk per sensor under the engine lock at a time, so that stats and maintenance
    // are not held up for a whole step and every sensor's backlog moves.
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = positions_.find(r.sensor_id);
    if (it != positions_.end() && it->second >= r.durable_seq) continue;
    uint64_t fed = 0;
    TL_ASSIGN_OR_RETURN(bool more, ReadBackChunkLocked(r, 0, &fed));
    (void)more;
    stats_.events_read_back += fed;
    *progressed = true;
  }
  return Status::Ok();
}

bool CorrelationEngine::CaughtUp() {
  auto sensors = store_->ListSensors();
  if (!sensors.ok()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const SensorRecord& r : *sensors) {
    const auto it = positions_.find(r.sensor_id);
    if ((it == positions_.end() ? 0 : it->second) < r.durable_seq) return false;
  }
  return true;
}

void CorrelationEngine::Drain() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  const uint64_t target = batches_handed_;
  done_cv_.wait(lock, [&] { return batches_done_ >= target; });
}

void CorrelationEngine::FeedBatchesLocked(const std::deque<Batch>& batches) {
  // One chain often changes several times within a hand-over; it is built and written once,
  // with its latest content.
  for (const Batch& batch : batches) {
    // A batch stored before the engine caught up but handed over after it has been read
    // back already (its store write came before the last check, its hand-over after the
    // switch back to the queue).
    const auto read_back = read_back_through_.find(batch.sensor_id);
    FeedRunLocked(batch.sensor_id, batch.events, 0,
                  read_back == read_back_through_.end() ? 0 : read_back->second);
  }
  WriteChangedLocked();
}

uint64_t CorrelationEngine::FeedRunLocked(std::string_view sensor_id,
                                          const std::vector<Event>& events, int64_t skip_before_ns,
                                          uint64_t fed_through_seq) {
  uint64_t* position = &positions_[std::string(sensor_id)];
  uint64_t fed = 0;
  for (const Event& e : events) {
    if (e.seq <= fed_through_seq) continue;
    if (e.time_ns < skip_before_ns) {
      *position = std::max(*position, e.seq);
      dirty_ = true;
      continue;
    }
    FeedLocked(sensor_id, e, position);
    ++fed;
  }
  return fed;
}

void CorrelationEngine::WriteChangedLocked() {
  // An id repeats when its chain lost a session in between; the later one is newer.
  std::map<std::string, Incident> latest;
  for (Incident& incident : correlator_.TakeChanged()) {
    std::string id = incident.id;
    latest.insert_or_assign(std::move(id), std::move(incident));
  }
  std::vector<Incident> incidents;
  incidents.reserve(latest.size());
  for (auto& [id, incident] : latest) incidents.push_back(std::move(incident));
  WriteLocked(incidents);
}

void CorrelationEngine::FeedLocked(std::string_view sensor_id, const Event& event,
                                   uint64_t* position) {
  correlator_.Feed(sensor_id, event);
  if (options_.learn_baselines) suggester_.Observe(event, baselines_.resolver());
  if (options_.rules) {
    for (rules::Detection& d : options_.rules->Evaluate(event)) {
      correlator_.FeedRuleHit(
          sensor_id, event,
          {std::move(d.rule_id), std::move(d.title), std::move(d.level), std::move(d.techniques)});
      ++stats_.rule_detections;
    }
  }
  if (options_.on_fed) options_.on_fed(sensor_id, event);
  *position = std::max(*position, event.seq);
  // The replay after a restart skips events older than watermark - replay_margin_ns, so
  // one event dated in the future (a sensor's clock, or a forged time) must not move it
  // past the aggregator's own clock and hide every acknowledged event from that replay.
  watermark_ns_ = std::max(watermark_ns_, std::min(event.time_ns, clock_.NowNs()));
  dirty_ = true;
  ++stats_.events_fed;
}

void CorrelationEngine::WriteLocked(const std::vector<Incident>& incidents) {
  for (const Incident& incident : incidents) {
    v1::Incident wire;
    ToProto(incident, &wire);
    if (options_.before_store_incident) options_.before_store_incident(wire);
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
  {
    // What is queued in memory exists nowhere else in order; a backlog being read back
    // is in the store, and the snapshot's exact positions replay it at the next start.
    std::unique_lock<std::mutex> lock(queue_mu_);
    const uint64_t target = batches_handed_;
    done_cv_.wait(lock, [&] { return batches_done_ + batches_left_ >= target; });
  }
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
  for (auto& [key, value] : baselines_.TakeDirty()) {
    unwritten_baselines_.insert_or_assign(std::move(key), std::move(value));
  }
  for (auto& [key, value] : suggester_.TakeDirty()) {
    unwritten_baselines_.insert_or_assign(std::move(key), std::move(value));
  }
  for (auto& [key, value] : trust_.TakeDirty()) {
    unwritten_baselines_.insert_or_assign(std::move(key), std::move(value));
  }
  if (unwritten_baselines_.empty()) {
    TL_RETURN_IF_ERROR(store_->PutCorrelatorSnapshot(bytes));
  } else {
    std::vector<std::pair<std::string, std::string>> records(unwritten_baselines_.begin(),
                                                             unwritten_baselines_.end());
    TL_RETURN_IF_ERROR(store_->PutCorrelatorSnapshotWithBaselines(bytes, records));
    stats_.last_snapshot_baselines = records.size();
    unwritten_baselines_.clear();
    trust_saved_seq_ = trust_.last_seq();
  }
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
  uint64_t fell_behind = 0;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    fell_behind = times_fell_behind_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  CorrelationEngineStats out = stats_;
  out.times_fell_behind = fell_behind;
  return out;
}

baseline::BaselineStats CorrelationEngine::baseline_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return baselines_.stats();
}

baseline::KindSuggesterStats CorrelationEngine::kind_suggestion_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return suggester_.stats();
}

namespace {
void ToProto(const baseline::KindSuggestion& s, v1::IdentitySuggestion* out) {
  out->set_user(s.user);
  out->set_kind(std::string(baseline::KindName(s.kind)));
  out->set_state(std::string(baseline::SuggestionStateName(s.state)));
  for (const std::string& e : s.evidence) out->add_evidence(e);
  out->set_first_seen_ns(s.first_seen_ns);
  out->set_last_seen_ns(s.last_seen_ns);
  out->set_decided_by(s.decided_by);
  out->set_decided_ns(s.decided_ns);
}
}  // namespace

grpc::Status CorrelationEngine::ListIdentitySuggestions(
    const v1::ListIdentitySuggestionsRequest& request,
    v1::ListIdentitySuggestionsResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const baseline::KindSuggestion& s : suggester_.Suggestions()) {
    if (!request.include_decided() && s.state != baseline::SuggestionState::kSuggested) continue;
    ToProto(s, response->add_suggestions());
  }
  return grpc::Status::OK;
}

grpc::Status CorrelationEngine::DecideIdentitySuggestion(
    const v1::DecideIdentitySuggestionRequest& request, v1::IdentitySuggestion* response) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!options_.learn_baselines) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "baselines are off");
  }
  const int64_t now = clock_.NowNs();
  if (request.decision() == "confirm") {
    baseline::IdentityKind kind;
    if (request.kind().empty()) {
      Result<baseline::KindSuggestion> s = suggester_.Get(request.user());
      if (!s.ok()) return ToGrpcStatus(s.status());
      kind = s->kind;
    } else if (!baseline::ParseKind(request.kind(), &kind)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "kind must be service or agent");
    }
    Result<baseline::IdentityRule> rule =
        suggester_.Confirm(request.user(), kind, request.by(), now);
    if (!rule.ok()) return ToGrpcStatus(rule.status());
    baselines_.Declare(std::move(*rule));
  } else {
    const Status s = suggester_.Dismiss(request.user(), request.by(), now);
    if (!s.ok()) return ToGrpcStatus(s);
  }
  dirty_ = true;
  const Status saved = SnapshotLocked();
  if (!saved.ok()) return ToGrpcStatus(saved);
  Result<baseline::KindSuggestion> after = suggester_.Get(request.user());
  if (!after.ok()) return ToGrpcStatus(after.status());
  ToProto(*after, response);
  TL_LOG(INFO) << "identity suggestion for " << EscapeForDisplay(request.user()) << ": "
               << request.decision() << " by " << EscapeForDisplay(request.by());
  return grpc::Status::OK;
}

namespace {
void ToProto(const baseline::TrustRecord& r, v1::AgentTrust* out) {
  out->set_agent(r.agent);
  out->set_level(std::string(baseline::TrustLevelName(r.level)));
  out->set_declared_probation(r.declared_probation);
  for (const baseline::TrustDecision& d : r.history) {
    v1::TrustDecision* h = out->add_history();
    h->set_level(std::string(baseline::TrustLevelName(d.level)));
    h->set_by(d.by);
    h->set_reason(d.reason);
    h->set_at_ns(d.at_ns);
  }
}

// Agents the rules put on probation, by name: rules that give a name, or name one account.
std::vector<std::string> DeclaredProbation(const std::vector<baseline::IdentityRule>& rules) {
  std::vector<std::string> out;
  for (const baseline::IdentityRule& r : rules) {
    if (r.kind != baseline::IdentityKind::kAgent || !r.probation) continue;
    std::string name = r.name;
    if (name.empty() && (r.exact || r.user.find_first_of("*?") == std::string::npos)) {
      name = r.user;
    }
    if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(std::move(name));
    }
  }
  return out;
}

// The agent identity named `name` under `rules` (a rule of kind agent that gives that name,
// or whose account pattern matches it); kind human when none does.
baseline::Identity AgentNamed(const std::vector<baseline::IdentityRule>& rules,
                              const std::string& name) {
  for (const baseline::IdentityRule& r : rules) {
    if (r.kind != baseline::IdentityKind::kAgent) continue;
    const bool named =
        !r.name.empty()
            ? r.name == name
            : !r.user.empty() && (r.exact ? r.user == name : baseline::GlobMatch(r.user, name));
    if (named) return {baseline::IdentityKind::kAgent, name, r.probation};
  }
  return {baseline::IdentityKind::kHuman, name, false};
}
}  // namespace

grpc::Status CorrelationEngine::ListAgentTrust(const v1::ListAgentTrustRequest& /*request*/,
                                               v1::ListAgentTrustResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const baseline::TrustRecord& r :
       trust_.List(DeclaredProbation(baselines_.resolver().rules()))) {
    ToProto(r, response->add_agents());
  }
  return grpc::Status::OK;
}

grpc::Status CorrelationEngine::SetAgentTrust(const v1::SetAgentTrustRequest& request,
                                              v1::AgentTrust* response) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!options_.learn_baselines) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "baselines are off");
  }
  baseline::TrustLevel level;
  if (!baseline::ParseTrustLevel(request.level(), &level)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "level must be trusted or probation");
  }
  baseline::Identity agent = AgentNamed(baselines_.resolver().rules(), request.agent());
  // An agent decided on before stays decidable after its rule changed.
  if (agent.kind != baseline::IdentityKind::kAgent && trust_.Get(agent).ok()) {
    agent.kind = baseline::IdentityKind::kAgent;
  }
  if (agent.kind != baseline::IdentityKind::kAgent) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "no agent is declared under the name " + request.agent());
  }
  Result<baseline::TrustRecord> r =
      trust_.Decide(agent, level, request.by(), request.reason(), clock_.NowNs());
  if (!r.ok()) return ToGrpcStatus(r.status());
  dirty_ = true;
  const Status saved = SnapshotLocked();
  if (!saved.ok()) return ToGrpcStatus(saved);
  if (trust_listener_) trust_listener_();
  WriteLocked(correlator_.Reassess());
  ToProto(*r, response);
  TL_LOG(INFO) << "agent " << EscapeForDisplay(request.agent()) << " is now "
               << baseline::TrustLevelName(level) << ", set by " << EscapeForDisplay(request.by())
               << (request.reason().empty() ? "" : ": ") << EscapeForDisplay(request.reason());
  return grpc::Status::OK;
}

grpc::Status CorrelationEngine::GetBaseline(const v1::GetBaselineRequest& request,
                                            v1::Baseline* response) {
  std::lock_guard<std::mutex> lock(mu_);
  Result<baseline::Description> d = baselines_.Describe(request.identity());
  if (!d.ok()) return ToGrpcStatus(d.status());
  response->set_identity(d->identity);
  response->set_kind(d->kind);
  response->set_observations(d->observations);
  response->set_first_seen_ns(d->first_seen_ns);
  response->set_last_seen_ns(d->last_seen_ns);
  for (const baseline::FeatureView& f : d->features) {
    v1::BaselineFeature* out = response->add_features();
    out->set_name(f.name);
    out->set_weight(f.weight);
    out->set_count(f.count);
  }
  response->set_last_score(d->last_score);
  for (const std::string& r : d->last_reasons) response->add_last_reasons(r);
  response->set_warm(d->warm);
  response->set_usual_hours(d->usual_hours);
  response->set_peer_group(d->peer_group);
  for (const std::string& s : d->suppressed) response->add_suppressed(s);
  return grpc::Status::OK;
}

grpc::Status CorrelationEngine::Feedback(const v1::FeedbackRequest& request,
                                         v1::FeedbackResponse* response) {
  std::lock_guard<std::mutex> lock(mu_);
  const baseline::Verdict verdict = request.verdict() == v1::FEEDBACK_VERDICT_EXPECTED
                                        ? baseline::Verdict::kExpected
                                        : baseline::Verdict::kBenign;
  Result<std::string> done = baselines_.Feedback(request.incident_id(), verdict);
  if (!done.ok()) return ToGrpcStatus(done.status());
  // An analyst's word is not left to the next periodic snapshot.
  dirty_ = true;
  const Status saved = SnapshotLocked();
  if (!saved.ok()) return ToGrpcStatus(saved);
  TL_LOG(INFO) << "feedback on " << request.incident_id() << ": " << *done;
  response->set_summary(*done);
  return grpc::Status::OK;
}

ObserverProgress CorrelationEngine::Progress() const {
  ObserverProgress p;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    p.behind = behind_;
    p.times_fell_behind = times_fell_behind_;
  }
  auto sensors = store_->ListSensors();
  std::lock_guard<std::mutex> lock(mu_);
  p.events_fed = stats_.events_fed;
  p.events_read_back = stats_.events_read_back;
  const baseline::BaselineStats b = baselines_.stats();
  p.baseline_identities = b.with_baseline;
  p.baseline_warming = b.warming;
  p.baseline_events_scored = b.scored;
  p.baseline_not_learned = b.withheld_anomalous + b.withheld_incident + b.withheld_budget;
  if (sensors.ok()) {
    for (const SensorRecord& r : *sensors) {
      const auto it = positions_.find(r.sensor_id);
      const uint64_t fed = it == positions_.end() ? 0 : it->second;
      if (r.durable_seq > fed) p.backlog += r.durable_seq - fed;
    }
  }
  return p;
}

void CorrelationEngine::ReplaceIdentityRules(std::vector<baseline::IdentityRule> rules) {
  std::lock_guard<std::mutex> lock(mu_);
  baselines_.ReplaceIdentityRules(std::move(rules));
}

}  // namespace tripline
