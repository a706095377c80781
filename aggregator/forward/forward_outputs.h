// ForwardOutputs: the aggregator's running SIEM outputs, which a configuration reload
// (SIGHUP) replaces while the aggregator runs.
//
// It owns the Forwarder (forwarder.h) and stands between it and its callers: the
// correlation engine's Offer() and the query service's AddStats() go through it, so the
// forwarder behind them can be swapped. Replace() first checks every output of the new
// list (Check(): the URL's sink can be made, its CA and token files load), then stops the
// running forwarder (waiting at most one send timeout for a send in progress) and starts
// one for the new list. The outbox keeps each output's queue by its URL: an output that
// stays keeps its backlog and sends it; the queue of one that was removed is deleted (and
// logged) when the new forwarder opens the outbox; an added one receives incidents from
// then on. A reload also re-reads the CA and token files of outputs that did not change.
//
// Threading: every method from any thread. Offer() waits while a Replace() runs.
#pragma once

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "aggregator/forward/forward_target.h"
#include "aggregator/forward/forwarder.h"
#include "common/clock.h"
#include "common/status.h"
#include "tripline/v1/query.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tripline::forward {

class ForwardOutputs {
 public:
  // Neither pointer is owned; both and `clock` must outlive this.
  ForwardOutputs(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const Clock& clock)
      : db_(db), cf_(cf), clock_(clock) {}
  ~ForwardOutputs() { Stop(); }
  ForwardOutputs(const ForwardOutputs&) = delete;
  ForwardOutputs& operator=(const ForwardOutputs&) = delete;

  // InvalidArgument naming the output whose sink cannot be made; nothing is started.
  static Status Check(const std::vector<ForwardTarget>& targets, const ForwarderOptions& options);

  // Starts the outputs of `targets` (none: nothing runs). An error leaves none running.
  Status Start(const std::vector<ForwardTarget>& targets, const ForwarderOptions& options);
  // Stops the running outputs and starts those of `targets`. Call Check() first: what can
  // still fail here is the store, and then no output runs (logged).
  void Replace(const std::vector<ForwardTarget>& targets, const ForwarderOptions& options);
  // Stops the outputs; what is queued stays in the outbox for the next start.
  void Stop();

  // Forwarder::Offer on the running outputs; Ok when none run.
  Status Offer(const v1::Incident& incident);
  // Forwarder::OfferAudit on the running outputs; when none run, only the source's cursor
  // moves (audit_feed.h).
  Status OfferAudit(std::string_view source, const std::vector<v1::AuditEvent>& events,
                    uint64_t through);
  // Outbox::ReadAuditCursor.
  Result<std::optional<uint64_t>> AuditCursor(std::string_view source) const;
  void AddStats(v1::Stats* out) const;
  size_t size() const;

 private:
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  const Clock& clock_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<Forwarder> forwarder_;  // GUARDED_BY(mu_); null when none run
  size_t outputs_ = 0;                    // GUARDED_BY(mu_)
};

}  // namespace tripline::forward
