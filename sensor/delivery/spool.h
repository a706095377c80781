// Spool: the sensor's bounded on-disk log of events the aggregator has not acknowledged.
//
// The on-disk format is documented in spool_format.h. Properties:
//
// * Numbering. Append() gives each stored event the next sequence number (Sequencer; the
//   lease in the state file makes numbers survive restarts and crashes). An event refused
//   on arrival because the spool is full gets no number.
// * Two lanes. Priority events (IsPriorityKind: login, net, health) and bulk events
//   (file_open, exec, posture) go to separate segment files, so that bulk can be evicted
//   without touching priority events. Read() merges the lanes back into seq order.
// * Bound. The segments' total size stays within max_bytes. When an append does not fit,
//   the oldest bulk segment is evicted (even for a bulk append: newer data wins); a
//   priority append with no bulk left evicts the oldest priority segment; a bulk append
//   never evicts priority data and is refused instead. Every unacknowledged event lost
//   this way is counted in SpoolCounters::drops and drops_by_kind. Evicted events keep
//   their numbers, so they leave a gap in the sequence that the aggregator sees and the
//   health counter explains. (An evicted event already sent but not yet acknowledged may
//   still reach the aggregator: the counter is then an upper bound.)
// * Durability. Append() write(2)s the record before returning, so it survives a crash
//   of the sensor process; Sync() fdatasyncs segments written since the last Sync() so
//   that they survive a crash of the host. The caller chooses the cadence (the delivery
//   client calls it every DeliveryOptions::sync_interval_ms).
// * Recovery. Open() scans every segment, verifies every CRC, truncates a torn tail,
//   skips (and counts) corrupt stretches, deletes segments that are fully acknowledged.
//
// Thread-safety: all methods may be called concurrently; a single mutex guards the state,
// and Sync() runs fdatasync outside it so that appends are not held up by the disk.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "model/event.h"
#include "sensor/delivery/sequencer.h"
#include "sensor/delivery/spool_format.h"

namespace tripline::delivery {

struct SpoolOptions {
  std::string dir;                           // created if missing
  uint64_t max_bytes = uint64_t{256} << 20;  // bound on the segments' total size
  // Size at which a segment is sealed and a new one started; also the unit of eviction.
  // 0: max_bytes / 32, clamped to [4 KiB, 8 MiB].
  uint64_t segment_bytes = 0;
  uint64_t seq_lease_step = 65536;
  // Sync() rewrites the state file (acked seq) at most this often; a stale acked seq only
  // costs resending events the aggregator deduplicates.
  int64_t state_interval_ms = 1000;
  const Clock* clock = nullptr;  // SystemClock::Get() when null
};

// What Open() found on disk.
struct SpoolRecovery {
  bool state_found = false;
  bool clean_shutdown = false;
  uint64_t segments = 0;               // kept
  uint64_t records = 0;                // unacknowledged records kept
  uint64_t acked_records_dropped = 0;  // records at or below the acked seq, skipped
  uint64_t torn_tail_bytes = 0;        // cut off the ends of segments
  uint64_t corrupt_regions = 0;        // invalid stretches skipped inside segments
  uint64_t corrupt_bytes = 0;
  uint64_t bad_segments = 0;  // segments with an unreadable header, deleted
  uint64_t acked_seq = 0;
  uint64_t next_seq = 1;
  // Numbers skipped because the last run did not shut down cleanly (the lease).
  uint64_t seq_skipped = 0;
};

struct SpoolCounters {
  uint64_t bytes = 0;  // total size of the segment files
  uint64_t segments = 0;
  uint64_t appended = 0;  // records stored since Open
  // Unacknowledged events lost to the size bound (evicted or refused), total and by kind
  // (indexed by EventKind).
  uint64_t drops = 0;
  std::array<uint64_t, kNumKinds> drops_by_kind{};
  uint64_t evicted_segments = 0;
  uint64_t refused = 0;               // events refused on arrival (part of drops)
  uint64_t write_errors = 0;          // appends that failed on I/O (also part of drops)
  uint64_t read_corrupt_regions = 0;  // corrupt records met by Read() after Open
  uint64_t acked_seq = 0;
  uint64_t next_seq = 1;
};

struct SpoolRecord {
  uint64_t seq = 0;
  EventKind kind = EventKind::kLogin;
  std::string payload;  // serialized tripline.v1.Event without its seq
};

struct AppendResult {
  bool stored = false;  // false: refused because the spool is full (counted as a drop)
  uint64_t seq = 0;     // the event's number when stored
};

class Spool {
 public:
  static Result<std::unique_ptr<Spool>> Open(const SpoolOptions& options);
  // Calls Close().
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Stores one event and numbers it, evicting older data per the policy above if needed.
  // Errors: IoError when the record could not be written (counted as a drop and a write
  // error); InvalidArgument for a payload that could never fit; Aborted after Close().
  Result<AppendResult> Append(EventKind kind, std::string_view payload);

  // Appends to *out up to max_records records with seq > after_seq, in seq order.
  // Sequential calls (after_seq = last seq returned) resume from a cached position.
  Status Read(uint64_t after_seq, size_t max_records, std::vector<SpoolRecord>* out);

  // The aggregator holds every event up to `seq`: segments wholly at or below it are
  // deleted. The acked seq is persisted by the next Sync() or Close().
  Status Ack(uint64_t seq);

  // fdatasyncs what was appended since the last call; writes the state file when the acked
  // seq changed and state_interval_ms has passed (or `force_state`).
  Status Sync(bool force_state = false);

  // Syncs and records a clean shutdown (the exact next seq). Idempotent.
  Status Close();

  SpoolCounters Counters() const;
  const SpoolRecovery& recovery() const { return recovery_; }
  uint64_t segment_bytes() const { return segment_bytes_; }

 private:
  struct Segment;
  using SegmentPtr = std::shared_ptr<Segment>;
  // Where a lane's last sequential Read() stopped.
  struct LaneCursor {
    const Segment* segment = nullptr;
    uint64_t offset = 0;    // of the next record not yet returned
    uint64_t last_seq = 0;  // seq of the record before `offset`
  };

  explicit Spool(const SpoolOptions& options);
  Status Recover();
  // Persists acked seq, next seq and `lease` (ignored when clean: the exact next seq is
  // recorded).
  Status WriteStateLocked(bool clean, uint64_t lease);
  Status EnsureActiveLocked(Lane lane, uint64_t first_seq);
  // Evicts one segment to make room for an append to `incoming`; false when policy allows
  // no eviction.
  bool EvictOneLocked(Lane incoming);
  void DropSegmentLocked(Lane lane, size_t index, bool count_as_drops);
  void CountDropsLocked(const Segment& segment);
  Status ReadLaneLocked(Lane lane, uint64_t after_seq, size_t max_records,
                        std::vector<SpoolRecord>* out, std::vector<LaneCursor>* ends);

  const SpoolOptions options_;
  const Clock& clock_;
  uint64_t segment_bytes_ = 0;
  SpoolRecovery recovery_;  // written by Open() only, then const

  mutable std::mutex mu_;
  bool closed_ = false;                                  // GUARDED_BY(mu_)
  Sequencer sequencer_{1, 1, 1};                         // GUARDED_BY(mu_)
  uint64_t acked_seq_ = 0;                               // GUARDED_BY(mu_)
  bool state_dirty_ = false;                             // GUARDED_BY(mu_)
  int64_t last_state_write_ns_ = 0;                      // GUARDED_BY(mu_)
  bool dir_dirty_ = false;                               // GUARDED_BY(mu_)
  std::array<std::deque<SegmentPtr>, kNumLanes> lanes_;  // GUARDED_BY(mu_), oldest first
  std::array<LaneCursor, kNumLanes> cursors_;            // GUARDED_BY(mu_)
  SpoolCounters counters_;                               // GUARDED_BY(mu_)
  std::string scratch_;                                  // GUARDED_BY(mu_)
};

}  // namespace tripline::delivery
