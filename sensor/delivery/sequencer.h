// Sequence numbers of one sensor: 1, 2, 3, ... never repeated, across restarts and crashes.
//
// Persistence is by lease: before a number at or above the persisted lease is handed out,
// the owner (the spool) durably writes a larger lease. After a clean shutdown the exact next
// number is on disk; after a crash the sequence resumes at the lease, so numbers that may
// have reached the aggregator before the crash are never reused (the price is a gap of at
// most one lease step, which the aggregator sees like any other gap).
//
// Not thread-safe: the spool calls it under its own mutex.
#pragma once

#include <cstdint>

namespace tripline::delivery {

class Sequencer {
 public:
  // `next`: the first number to hand out; `lease`: numbers below it may be handed out
  // without persisting anything first.
  Sequencer(uint64_t next, uint64_t lease, uint64_t lease_step)
      : next_(next < 1 ? 1 : next), lease_(lease), step_(lease_step < 1 ? 1 : lease_step) {}

  uint64_t next() const { return next_; }
  uint64_t lease() const { return lease_; }
  // True when next() is not covered by the lease: persist ProposedLease(), then call
  // LeaseGranted() with it, before Take().
  bool NeedsLease() const { return next_ >= lease_; }
  uint64_t ProposedLease() const { return next_ + step_; }
  void LeaseGranted(uint64_t lease) {
    if (lease > lease_) lease_ = lease;
  }
  // Precondition: !NeedsLease().
  uint64_t Take() { return next_++; }

  // Where to resume after Open: the recorded next number after a clean shutdown, else
  // the lease; in both cases above everything still on disk and everything acknowledged.
  static uint64_t Resume(bool clean, uint64_t recorded_next, uint64_t lease, uint64_t acked,
                         uint64_t max_seq_on_disk) {
    uint64_t next = clean ? recorded_next : lease;
    if (acked + 1 > next) next = acked + 1;
    if (max_seq_on_disk + 1 > next) next = max_seq_on_disk + 1;
    return next < 1 ? 1 : next;
  }

 private:
  uint64_t next_;
  uint64_t lease_;
  uint64_t step_;
};

}  // namespace tripline::delivery
