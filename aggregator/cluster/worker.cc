#include "aggregator/cluster/worker.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "aggregator/cluster/stream_sink.h"
#include "aggregator/query/query_service.h"
#include "common/log.h"
#include "model/event_proto.h"
#include "model/incident_proto.h"

namespace tripline::cluster {
namespace {

constexpr const char* kIncidentKeyName = "incident-id-key";
constexpr size_t kIncidentKeyBytes = 32;
// Sleep between rounds in which no partition had anything.
constexpr auto kIdleWait = std::chrono::milliseconds(20);
// Partitions taken at once: a take mostly waits on the cluster (a consumer's replicas
// electing their leader), so a few together take little longer than one.
constexpr size_t kParallelTakes = 8;

std::string Hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r <= 0) return Status::FromErrno(errno, "getrandom");
    got += static_cast<size_t>(r);
  }
  return out;
}

// The cluster's incident id key: made once by the first worker, read by every other.
Result<std::string> ClusterIncidentKey(JetStream* js, int replicas) {
  TL_ASSIGN_OR_RETURN(std::unique_ptr<KeyValue> kv, js->Bucket(kClusterBucket, replicas));
  TL_ASSIGN_OR_RETURN(const std::optional<KvEntry> found, kv->Get(kIncidentKeyName));
  if (found.has_value()) {
    if (found->value.size() != kIncidentKeyBytes) {
      return Status::Corruption("cluster: the incident id key is not " +
                                std::to_string(kIncidentKeyBytes) + " bytes");
    }
    return found->value;
  }
  TL_ASSIGN_OR_RETURN(const std::string key, RandomBytes(kIncidentKeyBytes));
  const Result<uint64_t> made = kv->Create(kIncidentKeyName, key);
  if (made.ok()) return key;
  if (made.status().code() != Status::Code::kAlreadyExists) return made.status();
  // Another worker made it first: use that one.
  return ClusterIncidentKey(js, replicas);
}

std::string PartitionResource(uint32_t p) { return "partition." + std::to_string(p); }

}  // namespace

struct Worker::Partition {
  uint32_t id = 0;
  Lease lease;
  std::unique_ptr<PullConsumer> consumer;
  std::unique_ptr<baseline::Baselines> baselines;
  std::unique_ptr<correlate::Correlator> correlator;
  std::map<std::string, std::string> baseline_records;  // every record, by key
  std::map<std::string, uint64_t> positions;            // per sensor, highest seq fed
  uint64_t fed_through = 0;                             // stream sequence of the last message fed
  uint64_t snapshot_through = 0;  // ... of the last one in the cluster's snapshot
  SnapshotVersion version;
  int64_t last_snapshot_mono_ns = 0;
  int64_t last_snapshot_cost_ns = 0;
  uint64_t events_since_snapshot = 0;
  uint64_t pending = 0;            // the consumer's messages not fetched, as of the last fetch
  int fetch_failures = 0;          // in a row
  std::vector<Delivered> backlog;  // fetched, not fed yet (a store write failed)
  size_t backlog_next = 0;
  // Exported chains changed and not published yet: by chain key, the fragment ("" when
  // gone) and its message id (EdgeMessageId of the message that changed it last).
  std::map<std::string, std::pair<std::string, std::string>> unpublished;
};

Result<std::unique_ptr<Worker>> Worker::Start(JetStream* js, RocksDbStore* store,
                                              WorkerOptions options) {
  if (options.partitions == 0) return Status::InvalidArgument("worker: no partitions");
  TL_ASSIGN_OR_RETURN(const std::string suffix, RandomBytes(4));
  std::string owner = options.name + "." + Hex(suffix);
  if (!ValidLeaseName(owner)) {
    return Status::InvalidArgument("worker: name '" + options.name +
                                   "' may hold only letters, digits and -_=./");
  }
  TL_ASSIGN_OR_RETURN(options.correlator.incident_id_key, ClusterIncidentKey(js, options.replicas));
  std::unique_ptr<Worker> w(new Worker(js, store, std::move(options)));
  w->owner_ = std::move(owner);
  TL_ASSIGN_OR_RETURN(w->leases_kv_, js->Bucket(kLeasesBucket, w->options_.replicas));
  TL_ASSIGN_OR_RETURN(w->snapshots_kv_, js->Bucket(kSnapshotsBucket, w->options_.replicas));
  w->leases_ = std::make_unique<LeaseTable>(w->leases_kv_.get(), w->owner_,
                                            w->options_.lease_ttl_ms * kNanosPerMilli, &w->clock_);
  w->snapshots_ = std::make_unique<SnapshotStore>(w->snapshots_kv_.get(), w->owner_, js);
  TL_RETURN_IF_ERROR(js->EnsureStream(EdgesStreamSpec(w->options_.replicas)));
  if (w->options_.join) {
    JoinerStageOptions jo;
    jo.correlator = w->options_.correlator;
    jo.replicas = w->options_.replicas;
    jo.lease_ttl_ms = w->options_.lease_ttl_ms;
    jo.snapshot_interval_ms = w->options_.snapshot_interval_ms;
    jo.snapshot_cost_factor = w->options_.snapshot_cost_factor;
    jo.ack_wait_ms = w->options_.ack_wait_ms;
    // Not the joiner's own lease: the wait makes its consumer.
    jo.wait = [worker = w.get()](const std::function<void()>& work) {
      worker->WhileRenewing(work, /*renew_joiner=*/false, nullptr);
    };
    w->joiner_ = std::make_unique<JoinerStage>(
        js, w->leases_.get(), w->snapshots_.get(), w->clock_, std::move(jo),
        [p = w.get()](const std::vector<Incident>& incidents) { p->WriteIncidents(incidents); });
  }
  TL_ASSIGN_OR_RETURN(const std::optional<Lease> self, w->leases_->Acquire("worker." + w->owner_));
  if (!self.has_value()) return Status::AlreadyExists("worker: " + w->owner_ + " is running");
  w->self_lease_ = *self;
  TL_LOG(INFO) << "worker " << w->owner_ << " started over " << w->options_.partitions
               << " partitions";
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

Worker::Worker(JetStream* js, RocksDbStore* store, WorkerOptions options)
    : js_(js),
      store_(store),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Get()) {}

Worker::~Worker() { Stop(); }

void Worker::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Worker::Abandon() {
  abandon_ = true;
  Stop();
}

std::vector<uint32_t> Worker::partitions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_ids_;
}

std::vector<PartitionStatus> Worker::partition_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PartitionStatus> out;
  out.reserve(status_.size());
  for (const auto& [id, s] : status_) out.push_back(s);
  return out;
}

WorkerStats Worker::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  WorkerStats out = stats_;
  if (joiner_ != nullptr) out.joiner = joiner_->stats();
  return out;
}

void Worker::Run() {
  while (!stop_) {
    if (clock_.MonotonicNs() >= next_lease_round_ns_) {
      ManageLeases();
      next_lease_round_ns_ = clock_.MonotonicNs() + options_.renew_every_ms * kNanosPerMilli;
    }
    bool fed = false;
    // By id: Pump may drop partitions, its own or (lost while it waited) others.
    std::vector<uint32_t> ids;
    ids.reserve(held_.size());
    for (const auto& [id, p] : held_) ids.push_back(id);
    for (uint32_t id : ids) {
      if (stop_) break;
      const auto it = held_.find(id);
      if (it != held_.end()) fed |= Pump(*it->second);
    }
    if (joiner_ != nullptr && !stop_) fed |= joiner_->Pump();
    if (!fed && !stop_) std::this_thread::sleep_for(kIdleWait);
  }
  if (abandon_) {
    held_.clear();  // as a killed process: the cluster sees nothing more
    if (joiner_ != nullptr) joiner_->Abandon();
    return;
  }
  // Hand everything over: snapshot, acknowledge, release.
  std::vector<uint32_t> ids;
  for (const auto& [id, p] : held_) ids.push_back(id);
  for (uint32_t id : ids) {
    const auto it = held_.find(id);
    if (it != held_.end() && SnapshotAndAck(*it->second)) Drop(id, /*release=*/true);
  }
  if (joiner_ != nullptr) joiner_->Release();
  (void)leases_->Release(self_lease_);
}

void Worker::RenewHeld() {
  // A lease another worker took ends the work on it at once.
  DropLost(RenewHeldLeases());
}

void Worker::DropLost(const std::vector<uint32_t>& lost) {
  for (uint32_t id : lost) {
    if (!held_.contains(id)) continue;
    Drop(id, /*release=*/false);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.partitions_lost;
  }
}

std::vector<uint32_t> Worker::RenewHeldLeases() {
  std::vector<uint32_t> lost;
  for (auto& [id, p] : held_) {
    const auto renewed = leases_->Renew(p->lease);
    if (renewed.ok()) {
      p->lease = *renewed;
    } else if (renewed.status().code() == Status::Code::kAborted ||
               renewed.status().IsCorruption()) {
      TL_LOG(WARNING) << "worker " << owner_ << ": partition " << id
                      << " was taken over: " << renewed.status().ToString();
      lost.push_back(id);
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cluster_errors;
    }
  }
  return lost;
}

void Worker::WhileRenewing(const std::function<void()>& work, bool renew_joiner,
                           const std::function<void()>& also) {
  std::atomic<bool> done{false};
  std::thread worker_thread([&] {
    work();
    done.store(true, std::memory_order_release);
  });
  const int64_t renew_every_ns = options_.renew_every_ms * kNanosPerMilli;
  int64_t next_renewal_ns = clock_.MonotonicNs() + renew_every_ns;
  std::vector<uint32_t> lost;
  while (!done.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(kIdleWait);
    if (clock_.MonotonicNs() < next_renewal_ns) continue;
    RenewSelf();
    const std::vector<uint32_t> now_lost = RenewHeldLeases();
    lost.insert(lost.end(), now_lost.begin(), now_lost.end());
    if (renew_joiner && joiner_ != nullptr) (void)joiner_->RenewLease();
    if (also) also();
    next_renewal_ns = clock_.MonotonicNs() + renew_every_ns;
  }
  worker_thread.join();
  // Dropped only now: the work may be on one of them.
  DropLost(lost);
}

void Worker::RenewSelf() {
  const auto renewed_self = leases_->Renew(self_lease_);
  if (renewed_self.ok()) {
    self_lease_ = *renewed_self;
  } else {
    // Ended during a pause: take the name again (others count this worker as gone until).
    const auto again = leases_->Acquire("worker." + owner_);
    if (again.ok() && again->has_value()) self_lease_ = **again;
  }
}

void Worker::ManageLeases() {
  RenewSelf();
  RenewHeld();
  for (auto& [id, p] : held_) {
    WriteIncidents(p->correlator->Tick());
  }
  if (joiner_ != nullptr) {
    if (joiner_->held()) {
      joiner_->ManageLease();
    } else {
      // A take loads the joiner's snapshot and makes its consumer: the leases held are
      // renewed meanwhile (not the joiner's, which the take itself writes).
      WhileRenewing([&] { joiner_->ManageLease(); }, /*renew_joiner=*/false, nullptr);
    }
  }

  // The share: every live worker's lease counts.
  const auto all = leases_->List();
  if (!all.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.cluster_errors;
    return;
  }
  const int64_t now = clock_.NowNs();
  size_t live = 0;
  std::map<uint32_t, bool> taken;  // partitions whose lease is live and another's
  for (const auto& [resource, record] : *all) {
    if (record.expires_ns <= now) continue;
    if (resource.rfind("worker.", 0) == 0) ++live;
    if (resource.rfind("partition.", 0) == 0 && record.owner != owner_) {
      taken[static_cast<uint32_t>(std::strtoul(resource.c_str() + 10, nullptr, 10))] = true;
    }
  }
  live = std::max<size_t>(live, 1);
  const size_t share = (options_.partitions + live - 1) / live;
  // Past the share: hand the highest partitions over, each after its snapshot.
  std::vector<uint32_t> beyond;
  for (auto it = held_.rbegin(); it != held_.rend() && held_.size() - beyond.size() > share; ++it) {
    beyond.push_back(it->first);
  }
  for (uint32_t id : beyond) {
    // A snapshot that failed keeps the partition until a later round.
    const auto it = held_.find(id);
    if (it != held_.end() && SnapshotAndAck(*it->second)) {
      Drop(id, /*release=*/true);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.partitions_handed_over;
    }
  }
  // Below it: take free or ended ones, for at most half a renewal period (a take loads a
  // snapshot and makes a consumer; the leases held must be renewed in time), a few at once.
  const int64_t take_until = clock_.MonotonicNs() + options_.renew_every_ms * kNanosPerMilli / 2;
  uint32_t id = 0;
  while (id < options_.partitions && held_.size() < share && !stop_ &&
         clock_.MonotonicNs() < take_until) {
    std::vector<std::pair<uint32_t, Lease>> acquired;
    for (; id < options_.partitions && held_.size() + acquired.size() < share &&
           acquired.size() < kParallelTakes;
         ++id) {
      if (held_.contains(id) || taken.contains(id)) continue;
      const auto lease = leases_->Acquire(PartitionResource(id));
      if (!lease.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.cluster_errors;
        continue;
      }
      if (lease->has_value()) acquired.emplace_back(id, **lease);  // else another was quicker
    }
    TakeAll(acquired);
  }
}

void Worker::TakeAll(const std::vector<std::pair<uint32_t, Lease>>& acquired) {
  std::vector<Result<std::unique_ptr<Partition>>> prepared;
  prepared.reserve(acquired.size());
  for (size_t i = 0; i < acquired.size(); ++i) prepared.emplace_back(Status::Unavailable(""));
  // The leases acquired, as renewed while the wave runs; false once another worker took one.
  std::vector<Lease> leases;
  std::vector<bool> kept(acquired.size(), true);
  for (const auto& [id, lease] : acquired) leases.push_back(lease);
  // The wave mostly waits on the cluster, and a busy cluster can make it outlast a lease:
  // meanwhile the leases held and those acquired are renewed, so that none ends (and no
  // other worker counts this one gone) while it waits.
  WhileRenewing(
      [&] {
        std::vector<std::thread> threads;
        for (size_t i = 0; i < acquired.size(); ++i) {
          threads.emplace_back([&, i] {
            if (options_.on_prepare) options_.on_prepare(acquired[i].first);
            prepared[i] = Prepare(acquired[i].first, acquired[i].second);
          });
        }
        for (std::thread& t : threads) t.join();
      },
      /*renew_joiner=*/true,
      [&] {
        for (size_t i = 0; i < leases.size(); ++i) {
          if (!kept[i]) continue;
          const auto renewed = leases_->Renew(leases[i]);
          if (renewed.ok()) {
            leases[i] = *renewed;
          } else if (renewed.status().code() == Status::Code::kAborted) {
            kept[i] = false;  // reported when the wave is over
          }
        }
      });
  for (size_t i = 0; i < acquired.size(); ++i) {
    const uint32_t id = acquired[i].first;
    const Lease& lease = leases[i];
    if (!prepared[i].ok()) {
      TL_LOG(WARNING) << "worker " << owner_ << ": cannot take partition " << id << ": "
                      << prepared[i].status().ToString();
      (void)leases_->Release(lease);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cluster_errors;
      continue;
    }
    // Renewed on the revision last written: it is still this worker's only if nobody took
    // it meanwhile.
    const auto renewed =
        kept[i] ? leases_->Renew(lease)
                : Result<Lease>(Status::Aborted("cluster: taken over during the take"));
    if (!renewed.ok()) {
      TL_LOG(WARNING) << "worker " << owner_ << ": partition " << id
                      << " not taken, its lease could not be renewed: "
                      << renewed.status().ToString();
      if (renewed.status().code() != Status::Code::kAborted) (void)leases_->Release(lease);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cluster_errors;
      continue;
    }
    std::unique_ptr<Partition> p = std::move(prepared[i]).value();
    p->lease = *renewed;
    // Its feeding is paced from now (the snapshot interval counts from the take).
    p->last_snapshot_mono_ns = clock_.MonotonicNs();
    TL_LOG(INFO) << "worker " << owner_ << " took partition " << id << " (lease revision "
                 << p->lease.revision << ", fed through stream sequence " << p->fed_through << ")";
    held_[id] = std::move(p);
    std::lock_guard<std::mutex> lock(mu_);
    held_ids_.push_back(id);
    std::sort(held_ids_.begin(), held_ids_.end());
    status_[id].partition = id;
    ++stats_.partitions_taken;
  }
}

Result<std::unique_ptr<Worker::Partition>> Worker::Prepare(uint32_t id, const Lease& lease) {
  auto p = std::make_unique<Partition>();
  p->id = id;
  p->lease = lease;
  TL_ASSIGN_OR_RETURN(LoadedSnapshot loaded, snapshots_->Load(id));
  p->version = loaded.version;
  p->baselines = std::make_unique<baseline::Baselines>(
      options_.baseline, baseline::IdentityResolver(options_.identities));
  correlate::CorrelatorOptions correlator = options_.correlator;
  correlator.is_local_host = [id, partitions = options_.partitions](std::string_view host) {
    return PartitionOfHost(host, partitions) == id;
  };
  p->correlator = std::make_unique<correlate::Correlator>(std::move(correlator), clock_);
  if (options_.learn_baselines) p->correlator->AttachBaselines(p->baselines.get());
  if (loaded.snapshot.has_value()) {
    const v1::PartitionSnapshot& s = *loaded.snapshot;
    for (const v1::BaselineRecord& r : s.baselines()) {
      TL_RETURN_IF_ERROR(p->baselines->Load(r.key(), r.value()));
      p->baseline_records.emplace(r.key(), r.value());
    }
    TL_RETURN_IF_ERROR(p->correlator->RestoreState(s.correlator()));
    p->positions.insert(s.positions().begin(), s.positions().end());
    p->fed_through = p->snapshot_through = s.fed_through();
    (void)p->baselines->TakeDirty();  // loaded, not changed
  }
  // Anew after the snapshot: what the previous holder fetched and never acknowledged
  // comes at once, and it can fetch nothing more.
  TL_RETURN_IF_ERROR(Subscribe(*p));
  return p;
}

Status Worker::Subscribe(Partition& p) {
  ConsumerSpec spec;
  spec.stream = kEventsStream;
  spec.durable = "part-" + std::to_string(p.id);
  spec.filter_subject = PartitionSubject(p.id);
  spec.ack_wait_ms = options_.ack_wait_ms;
  spec.max_ack_pending = 65'536;
  spec.ack_cumulative = true;
  spec.start_sequence = p.fed_through + 1;
  p.consumer.reset();
  p.backlog.clear();
  p.backlog_next = 0;
  TL_ASSIGN_OR_RETURN(p.consumer, js_->Consume(spec));
  p.fetch_failures = 0;
  return Status::Ok();
}

bool Worker::Pump(Partition& p) {
  bool fed = false;
  if (p.backlog_next == p.backlog.size()) {
    p.backlog.clear();
    p.backlog_next = 0;
    auto got = p.consumer->Fetch(options_.fetch_messages, 0);
    if (!got.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.cluster_errors;
      }
      // Three in a row (the consumer deleted by a worker that took the partition over,
      // or lost with its servers), or a message handed out that never came: make it anew
      // after what was fed, once the lease is known to be still this worker's (the new
      // consumer replaces whatever has the name).
      const bool missed = got.status().code() == Status::Code::kAborted;
      if (missed) {
        TL_LOG(WARNING) << "worker " << owner_ << ": partition " << p.id << ": "
                        << got.status().message();
      }
      if (++p.fetch_failures >= 3 || missed) {
        const uint32_t id = p.id;
        if (!KeepLease(p, /*renew_now=*/true)) return false;
        // Made while the leases are renewed: with servers lost it can take seconds.
        Status s;
        WhileRenewing([&] { s = Subscribe(p); }, /*renew_joiner=*/true, nullptr);
        if (!s.ok()) {
          TL_LOG(WARNING) << "worker " << owner_ << ": partition " << id
                          << " consumer: " << s.ToString();
        } else {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.consumers_remade;
        }
      }
      return false;
    }
    p.fetch_failures = 0;
    p.backlog = std::move(got).value();
    // A fetch that does not wait comes back empty only when nothing is pending.
    p.pending = p.backlog.empty() ? 0 : p.backlog.back().pending;
  }
  while (p.backlog_next < p.backlog.size()) {
    if (!FeedMessage(p, p.backlog[p.backlog_next])) break;  // the store failed: later
    ++p.backlog_next;
    fed = true;
  }
  const int64_t since = clock_.MonotonicNs() - p.last_snapshot_mono_ns;
  const bool due = p.fed_through > p.snapshot_through &&
                   (since >= options_.ack_wait_ms * kNanosPerMilli / 2 ||
                    ((p.events_since_snapshot >= options_.snapshot_events ||
                      since >= options_.snapshot_interval_ms * kNanosPerMilli) &&
                     since >= options_.snapshot_cost_factor * p.last_snapshot_cost_ns));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (const auto it = status_.find(p.id); it != status_.end()) {
      it->second.pending = p.pending;
      it->second.events_since_snapshot = p.events_since_snapshot;
    }
  }
  if (due) SnapshotAndAck(p);  // drops the partition when it was lost
  return fed;
}

bool Worker::FeedMessage(Partition& p, const Delivered& d) {
  if (d.stream_sequence <= p.fed_through) return true;  // in the loaded snapshot already
  auto m = DecodePartitionBatch(d.data);
  if (!m.ok()) {
    TL_LOG(ERROR) << "worker " << owner_ << ": partition " << p.id << " message "
                  << d.stream_sequence << " (" << d.id
                  << ") passed over: " << m.status().ToString();
    p.fed_through = d.stream_sequence;
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.bad_messages;
    return true;
  }
  const auto found = p.positions.find(m->sensor_id);
  const uint64_t position = found == p.positions.end() ? 0 : found->second;
  const auto first_new = std::find_if(m->events.begin(), m->events.end(),
                                      [&](const Event& e) { return e.seq > position; });
  const size_t dropped = static_cast<size_t>(first_new - m->events.begin());
  // Copies of connections routed to another partition are stored there.
  const auto is_copy = [&](uint64_t seq) {
    return std::binary_search(m->copies.begin(), m->copies.end(), seq);
  };
  // Store the new events first, run by run of consecutive sequence numbers.
  std::vector<Event> run;
  for (auto it = first_new; it != m->events.end();) {
    run.clear();
    while (it != m->events.end() && is_copy(it->seq)) ++it;
    if (it == m->events.end()) break;
    const uint64_t first = it->seq;
    while (it != m->events.end() && it->seq == first + run.size() && !is_copy(it->seq)) {
      run.push_back(*it++);
    }
    auto stored = store_->AppendRun(m->sensor_id, first, run, {});
    if (!stored.ok()) {
      // Runs stored before this one are stored again by the retry: the same keys.
      TL_LOG(ERROR) << "worker " << owner_ << ": storing partition " << p.id << " message "
                    << d.stream_sequence << ": " << stored.status().ToString();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.store_errors;
      return false;
    }
  }
  uint64_t& pos = p.positions[m->sensor_id];
  for (auto it = first_new; it != m->events.end(); ++it) {
    const Event& e = *it;
    if (is_copy(e.seq)) {
      p.correlator->FeedRoutedCopy(m->sensor_id, e);
      pos = e.seq;
      continue;
    }
    p.correlator->Feed(m->sensor_id, e);
    if (options_.rules) {
      for (rules::Detection& det : options_.rules->Evaluate(e)) {
        p.correlator->FeedRuleHit(m->sensor_id, e,
                                  {std::move(det.rule_id), std::move(det.title),
                                   std::move(det.level), std::move(det.techniques)});
      }
    }
    if (options_.on_fed) options_.on_fed(p.id, m->sensor_id, e);
    pos = e.seq;
  }
  WriteIncidents(p.correlator->TakeChanged());
  for (correlate::ChainFragment& f : p.correlator->TakeFragments()) {
    p.unpublished[f.chain] = {std::move(f.state), EdgeMessageId(p.id, f.chain, d.stream_sequence)};
  }
  // Best effort here; the snapshot that acknowledges this message waits for them.
  if (!p.unpublished.empty()) (void)PublishFragments(p);
  const size_t fed = m->events.size() - dropped;
  p.fed_through = d.stream_sequence;
  p.events_since_snapshot += fed;
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.messages;
  stats_.events_fed += fed;
  stats_.events_dropped += dropped;
  return true;
}

bool Worker::SnapshotAndAck(Partition& p) {
  const uint32_t id = p.id;
  if (p.fed_through > p.snapshot_through) {
    if (!KeepLease(p)) return false;
    const int64_t start = clock_.MonotonicNs();
    WriteIncidents(p.correlator->TakeChanged());
    // Changes no message made (sessions that outlived their time, evicted at a renewal
    // round) are told from those of the last message fed: ".t".
    for (correlate::ChainFragment& f : p.correlator->TakeFragments()) {
      p.unpublished[f.chain] = {std::move(f.state),
                                EdgeMessageId(p.id, f.chain, p.fed_through) + ".t"};
    }
    // The messages this snapshot acknowledges are not fed again: what they exported must
    // be in the edge stream first.
    if (!PublishFragments(p)) return false;
    v1::PartitionSnapshot s;
    s.set_partition(id);
    s.set_fed_through(p.fed_through);
    for (const auto& [sensor, seq] : p.positions) (*s.mutable_positions())[sensor] = seq;
    s.set_correlator(p.correlator->SerializeState());
    for (auto& [key, value] : p.baselines->TakeDirty()) {
      if (value.empty()) {
        p.baseline_records.erase(key);
      } else {
        p.baseline_records.insert_or_assign(std::move(key), std::move(value));
      }
    }
    for (const auto& [key, value] : p.baseline_records) {
      v1::BaselineRecord* r = s.add_baselines();
      r->set_key(key);
      r->set_value(value);
    }
    const auto saved = snapshots_->Save(s, p.version);
    if (!saved.ok()) {
      if (saved.status().code() == Status::Code::kAborted) {
        TL_LOG(WARNING) << "worker " << owner_ << ": partition " << id
                        << " was snapshotted by another worker";
        Drop(id, /*release=*/false);
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.partitions_lost;
        return false;
      }
      TL_LOG(WARNING) << "worker " << owner_ << ": snapshot of partition " << id << ": "
                      << saved.status().ToString();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cluster_errors;
      return false;
    }
    p.version = *saved;
    p.snapshot_through = p.fed_through;
    p.events_since_snapshot = 0;
    p.last_snapshot_mono_ns = clock_.MonotonicNs();
    p.last_snapshot_cost_ns = p.last_snapshot_mono_ns - start;
    std::lock_guard<std::mutex> lock(mu_);
    if (const auto it = status_.find(id); it != status_.end()) {
      it->second.events_since_snapshot = 0;
    }
    ++stats_.snapshots;
    stats_.snapshot_bytes = s.ByteSizeLong();
    stats_.snapshot_correlator_bytes = s.correlator().size();
    stats_.snapshot_baselines = static_cast<uint64_t>(s.baselines_size());
    stats_.snapshot_ns = p.last_snapshot_cost_ns;
  }
  // Acknowledge what the snapshot holds (again after a failed acknowledgement).
  if (Status s = p.consumer->AckThrough(p.snapshot_through); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.cluster_errors;
    return false;
  }
  if (options_.on_snapshot) options_.on_snapshot(id);
  return true;
}

bool Worker::PublishFragments(Partition& p) {
  if (p.unpublished.empty()) return true;
  std::vector<Outgoing> messages;
  uint64_t too_large = 0;
  for (const auto& [chain, fragment] : p.unpublished) {
    const auto& [state, message_id] = fragment;
    if (state.size() > kMaxFragmentBytes) {
      TL_LOG(ERROR) << "worker " << owner_ << ": partition " << p.id << " chain " << chain
                    << " is not exported: " << state.size() << " bytes";
      ++too_large;
      continue;
    }
    Outgoing m;
    m.subject = kEdgesSubject;
    m.id = message_id;
    m.data = EncodeEdgeFragment(p.id, chain, state);
    messages.push_back(std::move(m));
  }
  const Status published = js_->PublishAll(messages, options_.lease_ttl_ms / 4);
  std::lock_guard<std::mutex> lock(mu_);
  if (!published.ok()) {
    ++stats_.cluster_errors;
    return false;
  }
  stats_.fragments_published += messages.size();
  stats_.fragments_too_large += too_large;
  p.unpublished.clear();
  return true;
}

void Worker::WriteIncidents(const std::vector<Incident>& incidents) {
  for (const Incident& incident : incidents) {
    v1::Incident wire;
    ToProto(incident, &wire);
    if (options_.before_store_incident) options_.before_store_incident(wire);
    if (Status s = PutIncident(*store_, wire); !s.ok()) {
      TL_LOG(ERROR) << "worker " << owner_ << ": incident " << incident.id
                    << " not stored: " << s.ToString();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.store_errors;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.incident_writes;
  }
}

bool Worker::KeepLease(Partition& p, bool renew_now) {
  const int64_t now = clock_.NowNs();
  if (!renew_now && p.lease.expires_ns - now > options_.lease_ttl_ms * kNanosPerMilli / 2) {
    return true;
  }
  const uint32_t id = p.id;
  if (now < p.lease.expires_ns) {
    const auto renewed = leases_->Renew(p.lease);
    if (renewed.ok()) {
      p.lease = *renewed;
      return true;
    }
    if (renewed.status().code() != Status::Code::kAborted && now < p.lease.expires_ns) {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cluster_errors;
      return true;  // not known to be lost, and still ours for now
    }
  }
  // Ended, or another worker's: nothing more of ours may land on it.
  TL_LOG(WARNING) << "worker " << owner_ << ": lease of partition " << id
                  << " ended before its snapshot";
  Drop(id, /*release=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.partitions_lost;
  return false;
}

void Worker::Drop(uint32_t id, bool release) {
  const auto it = held_.find(id);
  if (it == held_.end()) return;
  if (release) (void)leases_->Release(it->second->lease);
  held_.erase(it);  // unacknowledged messages go to the next holder
  if (options_.on_release) options_.on_release(id, !release);
  std::lock_guard<std::mutex> lock(mu_);
  held_ids_.erase(std::remove(held_ids_.begin(), held_ids_.end(), id), held_ids_.end());
  status_.erase(id);
}

}  // namespace tripline::cluster
