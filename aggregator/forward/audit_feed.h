// AuditFeed: brings the audit trail to the SIEM outputs (docs/forwarding.md, "Audit
// events"): every step of a response action and every person's decision on an agent's
// trust level, as tripline.v1.AuditEvent, at least once.
//
// Each source numbers its events (the response trail's seq, the trust book's decision seq)
// and keeps them in the store. The outbox keeps, per source, a cursor: the number through
// which its events were queued, moved in the same write as the events (Outbox::OfferAudit).
// The feed's thread reads each source after its cursor and queues what it finds, when a
// source says it has something new (Notify) and once a second; so an event written just
// before a crash is queued at the next start, and none is queued twice except when the
// outbox write itself is retried. A source with no cursor yet (the first start with this
// feed) begins after its newest event: the outputs receive what happens from then on, as
// for incidents. With no output running the cursors still move: what happens while no
// output is configured is not sent later.
//
// Threading: Start() once, then Notify() from any thread (it only wakes the feed's thread,
// so a source may call it under its own lock). The destructor stops the thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "aggregator/forward/forward_outputs.h"
#include "common/status.h"
#include "tripline/v1/response.pb.h"

namespace tripline::forward {

// Where audit events come from. Called from the feed's thread only.
class AuditSource {
 public:
  virtual ~AuditSource() = default;
  // The name of its cursor in the outbox: "response", "trust".
  virtual std::string_view name() const = 0;
  // Up to `max` events numbered above `after_seq`, in order, each with its seq set.
  virtual Result<std::vector<v1::AuditEvent>> After(uint64_t after_seq, size_t max) = 0;
  // The number of its newest event, 0 when it has none.
  virtual Result<uint64_t> Last() = 0;
};

class AuditFeed {
 public:
  static constexpr size_t kMaxRun = 256;  // events read and queued in one write

  // Neither `outputs` nor the sources are owned; they must outlive the feed.
  AuditFeed(ForwardOutputs* outputs, std::vector<AuditSource*> sources)
      : outputs_(outputs), sources_(std::move(sources)) {}
  ~AuditFeed();
  AuditFeed(const AuditFeed&) = delete;
  AuditFeed& operator=(const AuditFeed&) = delete;

  // Sets the cursors of sources that have none, queues what each source holds after its
  // cursor (what a stop left unqueued), then starts the thread. An error leaves no thread.
  Status Start();
  // A source has something new.
  void Notify();
  // Reads every source after its cursor and queues what it finds (the thread's work; also
  // for tests). Returns how many events were queued.
  Result<size_t> CatchUp();

 private:
  void Run();

  ForwardOutputs* const outputs_;
  const std::vector<AuditSource*> sources_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;   // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
};

}  // namespace tripline::forward
