// The joiner stage: see joiner_stage.h.
#include "aggregator/cluster/joiner_stage.h"

#include <cstdio>
#include <utility>

#include "common/fnv.h"
#include "common/log.h"
#include "tripline/v1/cluster.pb.h"

namespace tripline::cluster {
namespace {

constexpr size_t kMaxChainKeyBytes = 4096;

}  // namespace

StreamSpec EdgesStreamSpec(int replicas) {
  StreamSpec s;
  s.name = kEdgesStream;
  s.subjects = {kEdgesSubject};
  s.replicas = replicas;
  s.duplicate_window_ms = 10 * 60 * 1000;
  return s;
}

std::string EdgeMessageId(uint32_t partition, std::string_view chain, uint64_t fed_through) {
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(Fnv1a64(chain)));
  return std::to_string(partition) + ":" + hash + ":" + std::to_string(fed_through);
}

std::string EncodeEdgeFragment(uint32_t partition, std::string_view chain, std::string_view state) {
  v1::ChainFragment f;
  f.set_partition(partition);
  f.set_chain(std::string(chain));
  f.set_state(std::string(state));
  return f.SerializeAsString();
}

Result<EdgeFragment> DecodeEdgeFragment(std::string_view bytes) {
  const auto bad = [](const std::string& why) {
    return Status::InvalidArgument("edge message: " + why);
  };
  v1::ChainFragment f;
  if (bytes.size() > 2 * kMaxFragmentBytes ||
      !f.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return bad("not a tripline.v1.ChainFragment");
  }
  if (f.chain().empty() || f.chain().size() > kMaxChainKeyBytes) {
    return bad("the chain key is empty or over 4 KiB");
  }
  if (f.state().size() > kMaxFragmentBytes) return bad("the chain is over 512 KiB");
  EdgeFragment out;
  out.partition = f.partition();
  out.chain = std::move(*f.mutable_chain());
  out.state = std::move(*f.mutable_state());
  return out;
}

struct JoinerStage::Held {
  Lease lease;
  std::unique_ptr<correlate::ChainJoiner> joiner;
  std::unique_ptr<PullConsumer> consumer;
  SnapshotVersion version;
  uint64_t fed_through = 0;
  uint64_t snapshot_through = 0;
  int64_t last_snapshot_mono_ns = 0;
  int64_t last_snapshot_cost_ns = 0;
  int fetch_failures = 0;
};

JoinerStage::JoinerStage(JetStream* js, LeaseTable* leases, SnapshotStore* snapshots,
                         const Clock& clock, JoinerStageOptions options,
                         std::function<void(const std::vector<Incident>&)> write)
    : js_(js),
      leases_(leases),
      snapshots_(snapshots),
      clock_(clock),
      options_(std::move(options)),
      write_(std::move(write)) {}

JoinerStage::~JoinerStage() = default;

JoinerStageStats JoinerStage::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void JoinerStage::Lost(const std::string& why) {
  TL_LOG(WARNING) << "joiner stopped: " << why;
  held_.reset();  // unacknowledged messages go to the next holder
  std::lock_guard<std::mutex> lock(mu_);
  stats_.held = false;
  stats_.fragments = 0;
  ++stats_.lost;
}

bool JoinerStage::RenewLease() {
  if (held_ == nullptr) return false;
  const auto renewed = leases_->Renew(held_->lease);
  if (renewed.ok()) {
    held_->lease = *renewed;
  } else if (renewed.status().code() == Status::Code::kAborted ||
             clock_.NowNs() >= held_->lease.expires_ns) {
    Lost("lease: " + renewed.status().ToString());
    return false;
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.cluster_errors;
  }
  return true;
}

void JoinerStage::ManageLease() {
  if (held_ != nullptr) {
    if (!RenewLease()) return;
    held_->joiner->Tick();
    std::lock_guard<std::mutex> lock(mu_);
    stats_.fragments = held_->joiner->fragments();
    return;
  }
  const auto lease = leases_->Acquire(kJoinerLease);
  if (!lease.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.cluster_errors;
    return;
  }
  if (!lease->has_value()) return;  // another worker joins
  if (Status s = Take(**lease); !s.ok()) {
    TL_LOG(WARNING) << "cannot take the joiner: " << s.ToString();
    held_.reset();
    (void)leases_->Release(**lease);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.cluster_errors;
  }
}

Status JoinerStage::Take(const Lease& lease) {
  held_ = std::make_unique<Held>();
  held_->lease = lease;
  held_->joiner = std::make_unique<correlate::ChainJoiner>(options_.correlator, clock_);
  TL_ASSIGN_OR_RETURN(LoadedSnapshot loaded, snapshots_->Load(kJoinerSnapshot));
  held_->version = loaded.version;
  if (loaded.snapshot.has_value()) {
    TL_RETURN_IF_ERROR(held_->joiner->RestoreState(loaded.snapshot->correlator()));
    held_->fed_through = held_->snapshot_through = loaded.snapshot->fed_through();
  }
  TL_RETURN_IF_ERROR(Subscribe());
  // The lease may have been held up by the load: still ours only if it renews.
  TL_ASSIGN_OR_RETURN(held_->lease, leases_->Renew(held_->lease));
  held_->last_snapshot_mono_ns = clock_.MonotonicNs();
  TL_LOG(INFO) << "took the joiner (lease revision " << held_->lease.revision
               << ", fed through edge sequence " << held_->fed_through << ")";
  std::lock_guard<std::mutex> lock(mu_);
  stats_.held = true;
  stats_.fragments = held_->joiner->fragments();
  ++stats_.taken;
  return Status::Ok();
}

Status JoinerStage::Subscribe() {
  ConsumerSpec spec;
  spec.stream = kEdgesStream;
  spec.durable = "joiner";
  spec.filter_subject = kEdgesSubject;
  spec.ack_wait_ms = options_.ack_wait_ms;
  spec.ack_cumulative = true;
  spec.start_sequence = held_->fed_through + 1;
  held_->consumer.reset();
  TL_ASSIGN_OR_RETURN(held_->consumer, js_->Consume(spec));
  held_->fetch_failures = 0;
  return Status::Ok();
}

bool JoinerStage::Pump() {
  if (held_ == nullptr) return false;
  Held& h = *held_;
  auto got = h.consumer->Fetch(options_.fetch_messages, 0);
  if (!got.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.cluster_errors;
    }
    // Three failures in a row, or a message handed out that never came: anew after what
    // was joined.
    const bool missed = got.status().code() == Status::Code::kAborted;
    if (missed) TL_LOG(WARNING) << "joiner: " << got.status().message();
    if (++h.fetch_failures >= 3 || missed) {
      Status s;
      const auto remake = [&] { s = Subscribe(); };
      if (options_.wait) {
        options_.wait(remake);
      } else {
        remake();
      }
      if (!s.ok()) TL_LOG(WARNING) << "joiner consumer: " << s.ToString();
    }
    return false;
  }
  h.fetch_failures = 0;
  uint64_t fed = 0;
  uint64_t bad = 0;
  for (const Delivered& d : *got) {
    if (d.stream_sequence <= h.fed_through) continue;
    auto f = DecodeEdgeFragment(d.data);
    Status put = f.ok() ? h.joiner->Put(f->origin(), f->state) : f.status();
    if (!put.ok()) {
      TL_LOG(ERROR) << "joiner: edge message " << d.stream_sequence << " (" << d.id
                    << ") passed over: " << put.ToString();
      ++bad;
    }
    h.fed_through = d.stream_sequence;
    ++fed;
  }
  if (fed > 0) write_(h.joiner->TakeChanged());
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.edges += fed;
    stats_.bad_edges += bad;
    stats_.fragments = h.joiner->fragments();
  }
  const int64_t since = clock_.MonotonicNs() - h.last_snapshot_mono_ns;
  const bool due = h.fed_through > h.snapshot_through &&
                   (since >= options_.ack_wait_ms * kNanosPerMilli / 2 ||
                    (since >= options_.snapshot_interval_ms * kNanosPerMilli &&
                     since >= options_.snapshot_cost_factor * h.last_snapshot_cost_ns));
  if (due) SnapshotAndAck();
  return fed > 0;
}

bool JoinerStage::SnapshotAndAck() {
  Held& h = *held_;
  if (h.fed_through > h.snapshot_through) {
    // Renewed first when less than half of it is left: a snapshot after the lease ended
    // could land over a successor's (the compare-and-set would refuse it, but the time is
    // better spent handing over).
    if (h.lease.expires_ns - clock_.NowNs() < options_.lease_ttl_ms * kNanosPerMilli / 2) {
      const auto renewed = leases_->Renew(h.lease);
      if (!renewed.ok()) {
        if (renewed.status().code() == Status::Code::kAborted ||
            clock_.NowNs() >= h.lease.expires_ns) {
          Lost("lease ended before its snapshot");
        }
        return false;
      }
      h.lease = *renewed;
    }
    const int64_t start = clock_.MonotonicNs();
    write_(h.joiner->TakeChanged());
    v1::PartitionSnapshot s;
    s.set_partition(kJoinerSnapshot);
    s.set_fed_through(h.fed_through);
    s.set_correlator(h.joiner->SerializeState());
    const auto saved = snapshots_->Save(s, h.version);
    if (!saved.ok()) {
      if (saved.status().code() == Status::Code::kAborted) {
        Lost("its snapshot was replaced by another worker's");
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.cluster_errors;
      }
      return false;
    }
    h.version = *saved;
    h.snapshot_through = h.fed_through;
    h.last_snapshot_mono_ns = clock_.MonotonicNs();
    h.last_snapshot_cost_ns = h.last_snapshot_mono_ns - start;
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.snapshots;
  }
  if (Status s = h.consumer->AckThrough(h.snapshot_through); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.cluster_errors;
    return false;
  }
  return true;
}

void JoinerStage::Release() {
  if (held_ == nullptr) return;
  if (SnapshotAndAck() && held_ != nullptr) (void)leases_->Release(held_->lease);
  held_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.held = false;
}

void JoinerStage::Abandon() {
  held_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.held = false;
}

}  // namespace tripline::cluster
