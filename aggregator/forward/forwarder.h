// Forwarder: sends incidents, and audit events (OfferAudit; audit_feed.h), to every
// configured SIEM output, at least once.
//
// The correlation engine calls Offer() with every incident revision it is about to store
// (on its own thread). Offer() writes the revisions worth sending (new incident, higher
// severity, longer chain: Outbox::Offer) to the persistent outbox and wakes the outputs;
// it never waits for a network. Each output has a thread of its own that takes up to
// `max_run` revisions from the head of its queue, hands them to its Sink, and removes what
// was delivered. On failure the same run is tried again after a wait that doubles from
// `initial_backoff_ns` to `max_backoff_ns`; a dead output therefore holds back neither the
// others nor ingest, and its backlog (stats()) grows in the outbox on disk. What was queued
// and not delivered when the process stops, however it stops, is sent after the next start.
//
// Threading: Offer() and stats() from any thread. The destructor stops the output threads,
// waiting at most one network timeout for a send in progress; what it interrupts is sent
// again at the next start. The database must outlive the forwarder.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "aggregator/forward/forward_target.h"
#include "aggregator/forward/outbox.h"
#include "aggregator/forward/sink.h"
#include "common/clock.h"
#include "tripline/v1/query.pb.h"

namespace tripline::forward {

struct ForwarderOptions {
  SinkOptions sink;
  int64_t initial_backoff_ns = 200 * kNanosPerMilli;
  int64_t max_backoff_ns = 30 * kNanosPerSecond;
  size_t max_run = 64;  // revisions per send
};

class Forwarder {
 public:
  // Opens the outbox in `cf` of `db` and starts one thread per target. Fails on a sink that
  // cannot be made (a CA file that does not load). `clock` must outlive the forwarder.
  static Result<std::unique_ptr<Forwarder>> Start(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                                  const std::vector<ForwardTarget>& targets,
                                                  const ForwarderOptions& options,
                                                  const Clock& clock);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Queues the revision for every output when it is worth sending. Errors are logged and
  // returned (the engine stores the incident anyway).
  Status Offer(const v1::Incident& incident);

  // One entry per target, in the order given.
  std::vector<v1::ForwardStats> stats() const;

  // Outbox::OfferAudit, then wakes the outputs.
  Status OfferAudit(std::string_view source, const std::vector<v1::AuditEvent>& events,
                    uint64_t through);

  // Adds stats() to a Stats answer (the query service's hook).
  void AddStats(v1::Stats* out) const;

 private:
  struct Output {
    ForwardTarget target;
    std::unique_ptr<Sink> sink;
    std::thread thread;
    mutable std::mutex mu;
    uint64_t delivered = 0;         // GUARDED_BY(mu)
    uint64_t rejected = 0;          // GUARDED_BY(mu)
    uint64_t failures = 0;          // GUARDED_BY(mu)
    std::string last_error;         // GUARDED_BY(mu)
    int64_t last_delivered_ns = 0;  // GUARDED_BY(mu)
    bool connected = false;         // GUARDED_BY(mu)
  };

  Forwarder(const ForwarderOptions& options, const Clock& clock)
      : options_(options), clock_(clock) {}
  void Run(size_t index);
  // The record an outbox entry holds; nullopt when it does not decode.
  static std::optional<ForwardRecord> Decode(const OutboxEntry& entry);

  const ForwarderOptions options_;
  const Clock& clock_;
  std::unique_ptr<Outbox> outbox_;
  std::vector<std::unique_ptr<Output>> outputs_;

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  uint64_t offered_ = 0;   // GUARDED_BY(wake_mu_): revisions queued, ever
  bool stopping_ = false;  // GUARDED_BY(wake_mu_)
};

}  // namespace tripline::forward
