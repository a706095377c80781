// PostureWorker: collects posture snapshots on a thread of its own, so that nothing posture
// reads (a home directory on a hung network file system, a file an account planted to be
// slow) can hold up the event loop and with it the delivery of every other event.
//
// The loop asks for a snapshot with Start() and picks it up with Take() on a later turn; a
// collection has a time budget (PostureCollector::Collect), and while one is still running
// a new Start() is refused rather than queued.
//
// Threading: Start, Take and running are called from one thread (the event loop); the
// collection runs on the worker's thread. The destructor waits for a collection in
// progress: posture reads only regular files, without blocking opens, so that wait is as
// long as the slowest read of one file.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "model/event.h"
#include "sensor/host_files.h"
#include "sensor/posture_collector.h"

namespace tripline::sensor {

class PostureWorker {
 public:
  // `files` and `clock` must outlive the worker.
  PostureWorker(const HostFiles& files, const Clock& clock, int64_t budget_ns);
  ~PostureWorker();
  PostureWorker(const PostureWorker&) = delete;
  PostureWorker& operator=(const PostureWorker&) = delete;

  // Starts a collection; false (and nothing started) while the previous one still runs or
  // its result has not been taken.
  bool Start();
  // The finished snapshot, once; nullopt while a collection runs or none was started.
  std::optional<PostureSnapshot> Take();
  // Waits up to `timeout_ns` of wall time for the result (tests and shutdown).
  std::optional<PostureSnapshot> WaitAndTake(int64_t timeout_ns);
  // Whether a collection is in progress, and since when (monotonic ns of `clock`).
  bool running(int64_t* since_ns = nullptr) const;

 private:
  void Loop();

  const PostureCollector collector_;
  const Clock& clock_;
  const int64_t budget_ns_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;                 // GUARDED_BY(mu_)
  bool running_ = false;                   // GUARDED_BY(mu_)
  bool stop_ = false;                      // GUARDED_BY(mu_)
  int64_t started_ns_ = 0;                 // GUARDED_BY(mu_)
  std::optional<PostureSnapshot> result_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace tripline::sensor
