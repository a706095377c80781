#include "aggregator/forward/forward_outputs.h"

#include <mutex>

#include "aggregator/forward/sink.h"
#include "common/log.h"

namespace tripline::forward {

Status ForwardOutputs::Check(const std::vector<ForwardTarget>& targets,
                             const ForwarderOptions& options) {
  for (const ForwardTarget& t : targets) {
    Result<std::unique_ptr<Sink>> sink = MakeSink(t, options.sink);
    if (!sink.ok()) {
      return Status::InvalidArgument("forward " + t.url + ": " + sink.status().message());
    }
  }
  return Status::Ok();
}

Status ForwardOutputs::Start(const std::vector<ForwardTarget>& targets,
                             const ForwarderOptions& options) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  forwarder_.reset();
  outputs_ = 0;
  if (targets.empty()) return Status::Ok();
  TL_ASSIGN_OR_RETURN(forwarder_, Forwarder::Start(db_, cf_, targets, options, clock_));
  outputs_ = targets.size();
  for (const ForwardTarget& f : targets) {
    TL_LOG(INFO) << "forwarding incidents to " << f.url << " (" << f.format << ")";
  }
  return Status::Ok();
}

void ForwardOutputs::Replace(const std::vector<ForwardTarget>& targets,
                             const ForwarderOptions& options) {
  const Status s = Start(targets, options);
  if (!s.ok()) {
    TL_LOG(ERROR) << "forward: the new outputs did not start, none runs until the next reload "
                     "or restart (what is queued stays in the outbox): "
                  << s.ToString();
  } else if (targets.empty()) {
    TL_LOG(INFO) << "forward: no outputs";
  }
}

void ForwardOutputs::Stop() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  forwarder_.reset();
  outputs_ = 0;
}

Status ForwardOutputs::Offer(const v1::Incident& incident) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return forwarder_ ? forwarder_->Offer(incident) : Status::Ok();
}

Status ForwardOutputs::OfferAudit(std::string_view source,
                                  const std::vector<v1::AuditEvent>& events, uint64_t through) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (forwarder_) return forwarder_->OfferAudit(source, events, through);
  return Outbox::WriteAuditCursor(db_, cf_, source, through);
}

Result<std::optional<uint64_t>> ForwardOutputs::AuditCursor(std::string_view source) const {
  return Outbox::ReadAuditCursor(db_, cf_, source);
}

void ForwardOutputs::AddStats(v1::Stats* out) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (forwarder_) forwarder_->AddStats(out);
}

size_t ForwardOutputs::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return outputs_;
}

}  // namespace tripline::forward
