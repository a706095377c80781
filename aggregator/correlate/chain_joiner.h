// ChainJoiner: the stage of a cluster that joins the chains workers export into one chain
// each and raises one incident per chain, as the single node does (docs/scale-out.md,
// "Chains across partitions").
//
// A worker's correlator exports a chain that reaches past its partition (a session of
// another partition's host, or a connection routed to one) and hands it out whole, as a
// fragment, whenever it changes (Correlator::TakeFragments). The joiner keeps the latest
// fragment of every exported chain, by origin (where it was exported), and joins the
// fragments that name a common session: on every change the joined chain is rebuilt from
// its fragments (a fragment replaces its predecessor, so nothing is merged twice) and
// judged with the single node's assessment. The joined chain keeps the key of its earliest
// part; an incident a worker raised before its chain was exported keeps its id, and the
// joiner's revisions go on from the worker's.
//
// Pure logic like the correlator: no I/O, no threads; the injected clock stamps revisions
// and drives expiry. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "aggregator/correlate/correlator.h"
#include "aggregator/correlate/correlator_state.h"
#include "common/clock.h"
#include "common/status.h"
#include "model/incident.h"

namespace tripline::correlate {

struct ChainJoinerStats {
  uint64_t fragments_put = 0;
  uint64_t retractions = 0;
  uint64_t joins = 0;         // chains rebuilt and judged
  uint64_t parts_joined = 0;  // fragments those joins were rebuilt from
  uint64_t fragments_expired = 0;
};

class ChainJoiner {
 public:
  // `options` as the workers' correlators have them (the incident id key above all), but
  // for is_local_host, which the joiner does not use.
  ChainJoiner(CorrelatorOptions options, const Clock& clock);
  ~ChainJoiner();
  ChainJoiner(const ChainJoiner&) = delete;
  ChainJoiner& operator=(const ChainJoiner&) = delete;

  // Takes the latest fragment of the exported chain `origin` (a name unique in the
  // cluster: "<partition>:<chain key>"), replacing the one before. An empty fragment
  // retracts it: the chain was merged into another (whose fragment carries it on) or
  // forgotten; what was raised of it stands. InvalidArgument for an empty origin,
  // Corruption for a fragment that does not decode or holds other than one chain; the
  // joiner is then unchanged.
  Status Put(std::string_view origin, std::string_view fragment);
  // The incidents raised or changed by what was put since the last call, oldest chain
  // first; each with a higher revision than last reported.
  std::vector<Incident> TakeChanged();
  // Forgets fragments not renewed for the correlator's session and pending time to live
  // (their workers forgot the chain, or died with it), and what was reported of incidents
  // no join held for as long.
  void Tick();

  // The fragments and what was reported of each incident, as JSON text (format
  // "tripline.joiner.v1"). Take the changes first.
  std::string SerializeState() const;
  // Replaces the state with a serialized one; on any error returns Corruption naming the
  // first bad field and leaves the state unchanged.
  Status RestoreState(std::string_view bytes);

  size_t fragments() const { return fragments_.size(); }
  const ChainJoinerStats& stats() const { return stats_; }

 private:
  struct Stored {
    std::string bytes;
    std::unique_ptr<CorrelatorState> state;
    int64_t put_ns = 0;  // clock time
  };
  void Index(const std::string& origin, const CorrelatorState& s, bool add);
  std::vector<std::string> GroupOf(const std::string& origin) const;

  CorrelatorOptions options_;
  const Clock& clock_;
  std::map<std::string, Stored> fragments_;  // by origin
  // Session key or alias -> origins whose fragments hold that session.
  std::unordered_map<std::string, std::set<std::string>> by_session_;
  std::map<std::string, ReportedRevision> ledger_;  // incident id -> last reported
  std::set<std::string> dirty_;                     // origins put since the last TakeChanged
  ChainJoinerStats stats_;
};

}  // namespace tripline::correlate
