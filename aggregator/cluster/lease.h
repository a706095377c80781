// Leases: which worker owns which partition (and which one runs the chain-joining stage),
// kept in a JetStream key-value bucket and changed only by compare-and-set.
//
// A lease is one key (the resource, "partition.17") whose value names the owner and when
// the lease ends. A worker takes a resource that has no lease, whose lease has ended or
// that is its own, by writing its lease with the revision it read: of two workers racing
// for one resource exactly one write lands. It renews before the end, again by revision;
// a renewal that fails means another worker took the resource over (the lease had ended:
// a pause, a partition of the network), and the worker must stop working on it at once.
// The revision a lease was written at is its fencing token: it grows with every owner.
//
// Ends are wall-clock times of the writer; workers' clocks are assumed synchronized to well
// under the lease's length (NTP), which is seconds.
//
// Threading: not thread-safe; one per worker thread that manages leases.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregator/cluster/jetstream.h"
#include "common/clock.h"
#include "common/status.h"

namespace tripline::cluster {

// The value of a lease key.
struct LeaseRecord {
  std::string owner;
  int64_t expires_ns = 0;  // wall clock
};

// "<expires_ns> <owner>"; owners are 1-128 printable ASCII characters without spaces.
std::string EncodeLease(const LeaseRecord& r);
// Corruption naming what is wrong for anything EncodeLease does not write.
Result<LeaseRecord> DecodeLease(std::string_view bytes);
// Whether `name` may be a lease's owner or resource (key-value keys allow [-_=.a-zA-Z0-9/]).
bool ValidLeaseName(std::string_view name);

struct Lease {
  std::string resource;
  std::string owner;
  uint64_t revision = 0;  // the fencing token
  int64_t expires_ns = 0;
};

class LeaseTable {
 public:
  // `kv` is not owned and must outlive the table.
  LeaseTable(KeyValue* kv, std::string owner, int64_t ttl_ns, const Clock* clock = nullptr);

  // Takes `resource` when nobody holds it, its lease ended, or it is this owner's already
  // (then renewed). nullopt when another owner holds it; an error only when the cluster
  // could not be asked or the stored lease is damaged.
  Result<std::optional<Lease>> Acquire(std::string_view resource);
  // Extends the lease by the table's length; Aborted when another owner took it over.
  Result<Lease> Renew(const Lease& lease);
  // Ends the lease now so that another owner may take the resource without waiting.
  // Aborted when it had been taken over already (nothing to give up).
  Status Release(const Lease& lease);
  // Every lease stored, ended or not, by resource.
  Result<std::vector<std::pair<std::string, LeaseRecord>>> List();

  const std::string& owner() const { return owner_; }
  int64_t ttl_ns() const { return ttl_ns_; }

 private:
  KeyValue* kv_;
  std::string owner_;
  int64_t ttl_ns_;
  const Clock* clock_;
};

}  // namespace tripline::cluster
