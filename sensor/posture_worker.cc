#include "sensor/posture_worker.h"

#include <chrono>

namespace tripline::sensor {

PostureWorker::PostureWorker(const HostFiles& files, const Clock& clock, int64_t budget_ns)
    : collector_(files), clock_(clock), budget_ns_(budget_ns), thread_([this] { Loop(); }) {}

PostureWorker::~PostureWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool PostureWorker::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (requested_ || running_ || result_.has_value()) return false;
    requested_ = true;
    started_ns_ = clock_.MonotonicNs();
  }
  cv_.notify_all();
  return true;
}

std::optional<PostureSnapshot> PostureWorker::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<PostureSnapshot> out = std::move(result_);
  result_.reset();
  return out;
}

std::optional<PostureSnapshot> PostureWorker::WaitAndTake(int64_t timeout_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [this] { return result_.has_value(); });
  std::optional<PostureSnapshot> out = std::move(result_);
  result_.reset();
  return out;
}

bool PostureWorker::running(int64_t* since_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (since_ns != nullptr) *since_ns = started_ns_;
  return requested_ || running_;
}

void PostureWorker::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || requested_; });
    if (stop_) return;
    requested_ = false;
    running_ = true;
    lock.unlock();
    PostureSnapshot snap = collector_.Collect(&clock_, budget_ns_);
    lock.lock();
    running_ = false;
    result_ = std::move(snap);
    cv_.notify_all();
  }
}

}  // namespace tripline::sensor
