// PostureWorker: collects posture snapshots on a thread of its own, so that nothing posture
// reads (a home directory on a hung network file system, a file an account planted to be
// slow) can hold up the event loop and with it the delivery of every other event.
//
// The loop asks for a snapshot with Start() and picks it up with Take() on a later turn; a
// collection has a time budget (PostureCollector::Collect), and while one is still running
// a new Start() is refused rather than queued.
//
// Threading: Start, Take and running are called from one thread (the event loop); the
// collection runs on the worker's thread, with its own copy of the HostFiles. The
// destructor waits up to 1 s for a collection in progress; one stuck longer (a read that
// never returns) is left to end on its own, so it cannot hold up shutdown either.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
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
  // `files` is copied (HostFiles::Clone). `clock` must outlive the worker, and outlive the
  // process's main function if a collection can get stuck (SystemClock does).
  // With `processes`, each snapshot lists the running processes' privileges too.
  // With `sensitive`, each account's readable sensitive files (posture_collector.h).
  PostureWorker(const HostFiles& files, const Clock& clock, int64_t budget_ns,
                std::optional<ProcessScanOptions> processes = std::nullopt,
                std::vector<SensitivePath> sensitive = {});
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
  // Everything the worker's thread touches: shared, so a thread left running at shutdown
  // never touches a destroyed worker.
  struct State {
    State(std::unique_ptr<HostFiles> f, const Clock& c, int64_t budget,
          std::optional<ProcessScanOptions> processes, std::vector<SensitivePath> sensitive)
        : files(std::move(f)),
          collector(*files, std::move(processes), std::move(sensitive)),
          clock(c),
          budget_ns(budget) {}
    const std::unique_ptr<HostFiles> files;
    const PostureCollector collector;
    const Clock& clock;
    const int64_t budget_ns;
    std::mutex mu;
    std::condition_variable cv;
    bool requested = false;                 // GUARDED_BY(mu)
    bool running = false;                   // GUARDED_BY(mu)
    bool stop = false;                      // GUARDED_BY(mu)
    int64_t started_ns = 0;                 // GUARDED_BY(mu)
    std::optional<PostureSnapshot> result;  // GUARDED_BY(mu)
  };

  static void Loop(const std::shared_ptr<State>& state);

  const std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace tripline::sensor
