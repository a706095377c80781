// FindingLedger: posture findings kept with when they were first seen and when they were
// resolved, in the store's `posture` column family (docs/audit.md, docs/storage.md).
//
// Each host's latest snapshot decides: a finding it shows is open (first seen at the
// snapshot that first showed it, last seen now); a finding of the host it no longer shows
// is resolved at that snapshot's time; a resolved finding shown again is reopened with a
// new first-seen time. A snapshot older than the newest one applied for its host is
// ignored (a sensor's spool can deliver late), so fixing something never comes undone by
// an old report.
//
// Keys: "f/" HOST \0 IDENTITY \0 CHECK \0 SUBJECT -> serialized tripline.v1.AuditFinding;
//       "h/" HOST -> big-endian int64 time of the newest snapshot applied.
// One write batch per snapshot.
//
// Threading: thread-safe (Apply calls are serialized). The DB and family are not owned and
// must outlive the ledger.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/audit/posture_findings.h"
#include "common/status.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tripline::audit {

struct StoredFinding {
  Finding finding;
  int64_t first_seen_ns = 0;
  int64_t last_seen_ns = 0;
  int64_t resolved_ns = 0;  // 0 while open
};

struct FindingFilter {
  std::string host{};      // exact; empty for every host
  std::string identity{};  // exact account name; empty for every identity
  bool include_resolved = false;
};

// What one Apply changed.
struct ApplyResult {
  bool stale = false;     // older than the host's newest snapshot: nothing changed
  size_t opened = 0;      // new or reopened
  size_t resolved = 0;    // open before, absent now
  size_t still_open = 0;  // open before and now
};

class FindingLedger {
 public:
  FindingLedger(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) : db_(db), cf_(family) {}

  // The findings of `host`'s snapshot taken at `snapshot_ns` (every one has host == host).
  Result<ApplyResult> Apply(std::string_view host, int64_t snapshot_ns,
                            const std::vector<Finding>& findings);
  // Matching findings, most severe first, then by host, identity, check and subject.
  Result<std::vector<StoredFinding>> List(const FindingFilter& filter) const;

 private:
  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  std::mutex apply_mu_;
};

}  // namespace tripline::audit
