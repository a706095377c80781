#include "aggregator/forward/audit_feed.h"

#include <pthread.h>

#include <chrono>

#include "common/log.h"

namespace tripline::forward {

AuditFeed::~AuditFeed() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status AuditFeed::Start() {
  for (AuditSource* source : sources_) {
    TL_ASSIGN_OR_RETURN(std::optional<uint64_t> cursor, outputs_->AuditCursor(source->name()));
    if (cursor) continue;
    TL_ASSIGN_OR_RETURN(const uint64_t last, source->Last());
    TL_RETURN_IF_ERROR(outputs_->OfferAudit(source->name(), {}, last));
  }
  Result<size_t> queued = CatchUp();
  if (!queued.ok()) return queued.status();
  if (*queued > 0) {
    TL_LOG(INFO) << "forward: " << *queued << " audit events written before the last stop queued";
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void AuditFeed::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
  }
  cv_.notify_all();
}

Result<size_t> AuditFeed::CatchUp() {
  size_t queued = 0;
  for (AuditSource* source : sources_) {
    TL_ASSIGN_OR_RETURN(std::optional<uint64_t> cursor, outputs_->AuditCursor(source->name()));
    uint64_t after = cursor.value_or(0);
    for (;;) {
      TL_ASSIGN_OR_RETURN(std::vector<v1::AuditEvent> events, source->After(after, kMaxRun));
      if (events.empty()) break;
      const uint64_t through = events.back().seq();
      if (through <= after) {
        return Status::Internal("audit source " + std::string(source->name()) + " went back from " +
                                std::to_string(after));
      }
      TL_RETURN_IF_ERROR(outputs_->OfferAudit(source->name(), events, through));
      queued += events.size();
      after = through;
      if (events.size() < kMaxRun) break;
    }
  }
  return queued;
}

void AuditFeed::Run() {
  pthread_setname_np(pthread_self(), "tl-audit-feed");
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // Once a second as well: a notification lost to an error is retried.
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || pending_; });
    if (stopping_) break;
    pending_ = false;
    lock.unlock();
    Result<size_t> queued = CatchUp();
    if (!queued.ok()) TL_LOG(ERROR) << "forward: audit events: " << queued.status().ToString();
    lock.lock();
  }
}

}  // namespace tripline::forward
