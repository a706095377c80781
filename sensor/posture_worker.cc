#include "sensor/posture_worker.h"

#include <chrono>

#include "common/log.h"

namespace tripline::sensor {
namespace {

// How long shutdown waits for a collection in progress: far more than a healthy one takes.
constexpr auto kStopWait = std::chrono::seconds(1);

}  // namespace

PostureWorker::PostureWorker(const HostFiles& files, const Clock& clock, int64_t budget_ns,
                             std::optional<ProcessScanOptions> processes,
                             std::vector<SensitivePath> sensitive)
    : state_(std::make_shared<State>(files.Clone(), clock, budget_ns, std::move(processes),
                                     std::move(sensitive))),
      thread_([state = state_] { Loop(state); }) {}

PostureWorker::~PostureWorker() {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->stop = true;
  state_->cv.notify_all();
  const bool idle = state_->cv.wait_for(lock, kStopWait, [this] { return !state_->running; });
  lock.unlock();
  if (idle) {
    thread_.join();
  } else {
    TL_LOG(WARNING) << "posture: a collection is stuck in a read; not waiting for it";
    thread_.detach();
  }
}

bool PostureWorker::Start() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->requested || state_->running || state_->result.has_value()) return false;
    state_->requested = true;
    state_->started_ns = state_->clock.MonotonicNs();
  }
  state_->cv.notify_all();
  return true;
}

std::optional<PostureSnapshot> PostureWorker::Take() {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::optional<PostureSnapshot> out = std::move(state_->result);
  state_->result.reset();
  return out;
}

std::optional<PostureSnapshot> PostureWorker::WaitAndTake(int64_t timeout_ns) {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                      [this] { return state_->result.has_value(); });
  std::optional<PostureSnapshot> out = std::move(state_->result);
  state_->result.reset();
  return out;
}

bool PostureWorker::running(int64_t* since_ns) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (since_ns != nullptr) *since_ns = state_->started_ns;
  return state_->requested || state_->running;
}

void PostureWorker::Loop(const std::shared_ptr<State>& state) {
  std::unique_lock<std::mutex> lock(state->mu);
  while (true) {
    state->cv.wait(lock, [&] { return state->stop || state->requested; });
    if (state->stop) return;
    state->requested = false;
    state->running = true;
    lock.unlock();
    PostureSnapshot snap = state->collector.Collect(&state->clock, state->budget_ns);
    lock.lock();
    state->running = false;
    state->result = std::move(snap);
    state->cv.notify_all();
  }
}

}  // namespace tripline::sensor
