#include "aggregator/forward/forwarder.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "model/incident_proto.h"

namespace tripline::forward {

Result<std::unique_ptr<Forwarder>> Forwarder::Start(rocksdb::DB* db,
                                                    rocksdb::ColumnFamilyHandle* cf,
                                                    const std::vector<ForwardTarget>& targets,
                                                    const ForwarderOptions& options,
                                                    const Clock& clock) {
  std::unique_ptr<Forwarder> f(new Forwarder(options, clock));
  std::vector<std::string> names;
  for (const ForwardTarget& t : targets) {
    auto output = std::make_unique<Output>();
    output->target = t;
    TL_ASSIGN_OR_RETURN(output->sink, MakeSink(t, options.sink));
    names.push_back(t.url);
    f->outputs_.push_back(std::move(output));
  }
  TL_ASSIGN_OR_RETURN(f->outbox_, Outbox::Open(db, cf, names, clock));
  for (size_t i = 0; i < f->outputs_.size(); ++i) {
    if (const uint64_t backlog = f->outbox_->Backlog(i); backlog > 0) {
      TL_LOG(INFO) << "forward " << targets[i].url << ": " << backlog
                   << " incident revisions still to send";
    }
    f->outputs_[i]->thread = std::thread([fp = f.get(), i] { fp->Run(i); });
  }
  return f;
}

Forwarder::~Forwarder() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  for (auto& o : outputs_) {
    if (o->thread.joinable()) o->thread.join();
  }
}

Status Forwarder::Offer(const v1::Incident& incident) {
  Result<bool> queued = outbox_->Offer(incident);
  if (!queued.ok()) {
    TL_LOG(ERROR) << "forward: incident " << incident.id() << " rev " << incident.revision()
                  << " not queued: " << queued.status().ToString();
    return queued.status();
  }
  if (*queued) {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      ++offered_;
    }
    wake_cv_.notify_all();
  }
  return Status::Ok();
}

Status Forwarder::OfferAudit(std::string_view source, const std::vector<v1::AuditEvent>& events,
                             uint64_t through) {
  TL_RETURN_IF_ERROR(outbox_->OfferAudit(source, events, through));
  if (!events.empty()) {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      ++offered_;
    }
    wake_cv_.notify_all();
  }
  return Status::Ok();
}

std::optional<ForwardRecord> Forwarder::Decode(const OutboxEntry& entry) {
  if (entry.audit) {
    v1::AuditEvent event;
    if (!event.ParseFromString(entry.record)) return std::nullopt;
    return ForwardRecord(std::move(event));
  }
  v1::Incident wire;
  if (!wire.ParseFromString(entry.record)) return std::nullopt;
  Result<Incident> incident = FromProto(wire);
  if (!incident.ok()) return std::nullopt;
  return ForwardRecord(std::move(*incident));
}

void Forwarder::Run(size_t index) {
  pthread_setname_np(pthread_self(), ("tl-fwd-" + std::to_string(index)).substr(0, 15).c_str());
  Output& out = *outputs_[index];
  int64_t backoff_ns = 0;
  size_t max_run = options_.max_run;
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(wake_mu_);
      if (backoff_ns > 0) {
        wake_cv_.wait_for(lock, std::chrono::nanoseconds(backoff_ns), [&] { return stopping_; });
      } else if (outbox_->Backlog(index) == 0) {
        wake_cv_.wait(lock, [&] { return stopping_ || offered_ != seen; });
      }
      if (stopping_) return;
      seen = offered_;
    }
    Result<std::vector<OutboxEntry>> entries = outbox_->Peek(index, max_run);
    if (!entries.ok()) {
      TL_LOG(ERROR) << "forward " << out.target.url << ": " << entries.status().ToString();
      backoff_ns = options_.max_backoff_ns;
      continue;
    }
    if (entries->empty()) {
      backoff_ns = 0;
      continue;
    }
    std::vector<ForwardRecord> records;
    records.reserve(entries->size());
    size_t undecodable = 0;
    for (const OutboxEntry& e : *entries) {
      std::optional<ForwardRecord> decoded = Decode(e);
      if (!decoded) {
        // Only the entries before it are sent now; it is then dropped, counted, on its own.
        if (records.empty()) undecodable = 1;
        break;
      }
      records.push_back(std::move(*decoded));
    }
    SendOutcome sent;
    if (undecodable == 0) sent = out.sink->Send(records);
    const size_t done = sent.delivered + sent.rejected + undecodable;
    if (done > 0) {
      const Status popped = outbox_->Pop(index, (*entries)[done - 1].seq);
      if (!popped.ok()) TL_LOG(ERROR) << "forward " << out.target.url << ": " << popped.ToString();
    }
    {
      std::lock_guard<std::mutex> lock(out.mu);
      out.delivered += sent.delivered;
      out.rejected += sent.rejected + undecodable;
      if (sent.delivered > 0) out.last_delivered_ns = clock_.NowNs();
      if (sent.error.ok()) {
        if (!out.connected && out.failures > 0) {
          TL_LOG(INFO) << "forward " << out.target.url << ": delivering again";
        }
        out.connected = true;
        out.last_error.clear();
      } else {
        if (out.connected || out.last_error.empty()) {
          TL_LOG(WARNING) << "forward " << out.target.url << ": " << sent.error.ToString()
                          << "; retrying with backoff";
        }
        ++out.failures;
        out.connected = false;
        out.last_error = sent.error.message();
      }
    }
    if (sent.rejected > 0 || undecodable > 0) {
      TL_LOG(WARNING) << "forward " << out.target.url << ": " << (sent.rejected + undecodable)
                      << " records refused by the receiver";
    }
    if (sent.error.ok()) {
      backoff_ns = 0;
      max_run = options_.max_run;
    } else {
      backoff_ns = backoff_ns == 0 ? options_.initial_backoff_ns
                                   : std::min(backoff_ns * 2, options_.max_backoff_ns);
      // A run refused whole may be refused for one record: try them one by one.
      if (sent.retry_one_by_one) max_run = 1;
    }
  }
}

std::vector<v1::ForwardStats> Forwarder::stats() const {
  std::vector<v1::ForwardStats> out;
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const Output& o = *outputs_[i];
    v1::ForwardStats s;
    s.set_url(o.target.url);
    s.set_format(o.target.format);
    s.set_backlog(outbox_->Backlog(i));
    s.set_oldest_queued_ns(outbox_->OldestQueuedNs(i));
    std::lock_guard<std::mutex> lock(o.mu);
    s.set_delivered(o.delivered);
    s.set_rejected(o.rejected);
    s.set_failures(o.failures);
    s.set_last_error(o.last_error);
    s.set_last_delivered_ns(o.last_delivered_ns);
    s.set_connected(o.connected);
    out.push_back(std::move(s));
  }
  return out;
}

void Forwarder::AddStats(v1::Stats* out) const {
  for (v1::ForwardStats& s : stats()) *out->add_forwards() = std::move(s);
}

}  // namespace tripline::forward
