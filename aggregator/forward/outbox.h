// Outbox: the persistent queue of incident revisions waiting for each SIEM output, in the
// store's `outbox` column family (layout in docs/storage.md, "Outbox").
//
// Offer() decides whether a revision is worth sending (the incident is new, its severity
// rose, or its chain gained a hop) and, if so, queues it for every output in one RocksDB
// write batch, together with the record of what was last queued for that incident. Each
// output's queue is ordered by a sequence number of its own; Peek() reads from its head and
// Pop() removes what was delivered. The writes go through the WAL (like every store write),
// so a queued revision survives a crash or SIGKILL of the process: delivery is at least once.
//
// Audit events (the response trail, agents' trust decisions: tripline.v1.AuditEvent) are
// queued in the same queues, each source with a cursor in the outbox that moves in the same
// write as its events (OfferAudit), so a feed that reads its source after the cursor
// (audit_feed.h) queues each event at least once whatever stops the process.
//
// A queue of an output that is no longer configured is deleted at Open (and logged).
//
// Threading: every method may be called from any thread. Offer() is called by the
// correlator thread only; Peek()/Pop() of one output by that output's thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "tripline/v1/query.pb.h"
#include "tripline/v1/response.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tripline::forward {

struct OutboxEntry {
  uint64_t seq = 0;
  int64_t queued_ns = 0;  // wall clock when it was queued
  bool audit = false;     // an audit event, not an incident revision
  std::string record;     // serialized tripline.v1.Incident, or tripline.v1.AuditEvent
};

class Outbox {
 public:
  // `destinations` are stable names of the outputs (their URLs); their index is the
  // `destination` argument of the other methods. Neither pointer is owned.
  static Result<std::unique_ptr<Outbox>> Open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                              const std::vector<std::string>& destinations,
                                              const Clock& clock);

  // Queues `incident` for every destination when it is new or its severity rose or its
  // chain grew since the revision last queued; returns whether it was queued.
  Result<bool> Offer(const v1::Incident& incident);

  // Queues `events` (audit events of one source, in order) for every destination and sets
  // the source's cursor to `through` (the source's seq of the last of them), in one write,
  // so that the cursor never passes an event that was not queued. With no destination only
  // the cursor moves.
  Status OfferAudit(std::string_view source, const std::vector<v1::AuditEvent>& events,
                    uint64_t through);
  // The source's cursor: the seq through which its events were queued; nullopt when it was
  // never set. Static, as the cursor is kept (and moved, with no output running) without
  // an open outbox.
  static Result<std::optional<uint64_t>> ReadAuditCursor(rocksdb::DB* db,
                                                         rocksdb::ColumnFamilyHandle* cf,
                                                         std::string_view source);
  static Status WriteAuditCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                 std::string_view source, uint64_t through);

  // Up to `max` entries from the head of the destination's queue, in order.
  Result<std::vector<OutboxEntry>> Peek(size_t destination, size_t max);
  // Removes the head of the queue through `seq`.
  Status Pop(size_t destination, uint64_t seq);

  uint64_t Backlog(size_t destination) const;
  // Wall clock of the oldest queued entry, 0 when the queue is empty.
  int64_t OldestQueuedNs(size_t destination) const;

  // The key prefix of a destination's queue ("q/" + 16 hex digits + "/").
  static std::string QueuePrefix(const std::string& destination);

 private:
  struct Queue {
    std::string prefix;
    uint64_t head = 0;  // first seq still queued (== tail when empty)
    uint64_t tail = 0;  // next seq to assign
    int64_t oldest_ns = 0;
  };
  Outbox(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const Clock& clock)
      : db_(db), cf_(cf), clock_(clock) {}
  Status Load(const std::vector<std::string>& destinations);

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::vector<Queue> queues_;  // GUARDED_BY(mu_)
};

}  // namespace tripline::forward
