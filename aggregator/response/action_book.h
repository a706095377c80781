// ActionBook: response actions and their append-only audit trail, in the store's `actions`
// column family (docs/response.md).
//
// An action is proposed (by Tripline from an incident, or by a person), then approved or
// denied by a person, then executed by the sensor of its host, and may be reverted. Nothing
// runs until a person approves it:
//
//   proposed --approve--> approved --sensor--> executed --revert--> revert requested --> reverted
//      |                     |                    |
//      +--deny--> denied     +--revert--> reverted (never ran)
//      +--ttl--> expired     +--approval ttl--> expired
//
// Rules kept here, whoever calls: only a proposed action can be approved or denied; a
// proposal a person made cannot be approved by that person; an approval holds until
// approval_expires_ns and the action expires if its sensor has not executed it by then; a
// proposal not decided within the proposal ttl expires. Who may decide at all (roles, the
// approvers list, --by against the certificate) is the service's business (response_service.h).
//
// Storage: "a/" ID -> serialized tripline.v1.Action (its audit entries included);
//          "t/" big-endian u64 SEQ -> serialized tripline.v1.Action.AuditEntry, the trail of
//          every action, written in the same batch as the action's change and never
//          rewritten or deleted.
// Action ids are derived from what they do ("a" + 16 hex digits of FNV-1a over incident,
// kind and target for Tripline's proposals), so proposing the same thing from the same
// incident twice is one action.
//
// Threading: thread-safe; every change is serialized. DB and family are not owned.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "tripline/v1/query.pb.h"
#include "tripline/v1/response.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tripline::response {

inline constexpr std::string_view kTriplineProposer = "tripline";

struct ResponsePolicy {
  std::vector<std::string> approvers;  // empty: any holder of the approver role
  int64_t proposal_ttl_ns = 86400 * kNanosPerSecond;
  int64_t approval_ttl_ns = 900 * kNanosPerSecond;
  int64_t action_ttl_ns = 3600 * kNanosPerSecond;
  int propose_min_severity = 4;  // v1::Severity; 0 proposes nothing from incidents
};

struct Proposal {
  v1::Action::Kind kind = v1::Action::KIND_UNSPECIFIED;
  std::string target;
  std::string incident_id;
  std::string reason;
  std::string by;           // the proposer: a person's name, or kTriplineProposer
  bool by_person = true;    // false for Tripline's own proposals
  int64_t duration_ns = 0;  // 0: the policy's action_ttl
};

// Splits and checks a target for its kind: "host/user", "host/address" or "host".
// InvalidArgument naming what is wrong.
Status ParseTarget(v1::Action::Kind kind, std::string_view target, std::string* host,
                   std::string* subject);

// "lock account", "end sessions", "isolate host", "block address".
std::string_view KindText(v1::Action::Kind kind);
// "proposed", "approved", ...
std::string_view StateText(v1::Action::State state);

class ActionBook {
 public:
  ActionBook(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, ResponsePolicy policy,
             const Clock& clock = SystemClock::Get());

  // The policy the book was made with; its approvers are those at start (approvers()).
  const ResponsePolicy& policy() const { return policy_; }
  // Who may decide now: the policy's list, or the one a reload set. Empty: any holder of
  // the approver role.
  std::vector<std::string> approvers() const;
  // Replaces the approvers (SIGHUP reload, aggregator/server/config_reload.h); decisions
  // after it are checked against the new list, pending actions are unchanged.
  void SetApprovers(std::vector<std::string> approvers);

  // A new proposed action, or the existing one when Tripline proposes the same thing for
  // the same incident again (AlreadyExists is not returned for that: the existing action is).
  // `created` (may be nullptr) tells which.
  Result<v1::Action> Propose(const Proposal& p, bool* created = nullptr);
  // Tripline's proposals for one incident (ProposalsForIncident), each proposed once.
  Result<size_t> ProposeForIncident(const v1::Incident& incident);

  // NotFound; FailedPrecondition (as kAborted) when the state does not allow it;
  // PermissionDenied when `by` proposed it.
  Result<v1::Action> Approve(std::string_view id, std::string_view by, std::string_view comment);
  Result<v1::Action> Deny(std::string_view id, std::string_view by, std::string_view reason);
  // Approved and not yet executed: reverted at once (it never ran). Executed: revert
  // requested, for the sensor to carry out.
  Result<v1::Action> Revert(std::string_view id, std::string_view by);

  // The order for the host's sensor (to be signed): for an approved action whose approval
  // has not expired (revert false), or for one whose revert was requested (revert true).
  // Aborted otherwise: nothing unapproved ever leaves the aggregator. `keep_path` is the
  // aggregator's ADDRESS:PORT as the host reaches it, kept open by an isolation.
  Result<v1::ActionOrder> OrderFor(std::string_view id, bool revert, std::string_view keep_path);
  // The sensor's report: approved -> executed or failed; revert requested -> reverted (or
  // stays, with the failure in the trail). `by` names the reporting host.
  Result<v1::Action> RecordReport(const v1::ActionReport& report, std::string_view by);

  // Marks proposals and approvals past their time as expired. Returns how many.
  Result<size_t> ExpireOverdue();

  Result<std::optional<v1::Action>> Get(std::string_view id) const;
  // In id order; state STATE_UNSPECIFIED and incident "" for all.
  Result<std::vector<v1::Action>> List(v1::Action::State state, std::string_view incident_id) const;
  // The newest `limit` trail entries (of one action, or all), oldest first.
  Result<std::vector<v1::Action::AuditEntry>> Trail(std::string_view action_id, size_t limit) const;
  // Up to `max` trail entries whose seq is above `after_seq`, oldest first (the SIEM
  // outputs' feed, aggregator/forward/audit_feed.h).
  Result<std::vector<v1::Action::AuditEntry>> TrailAfter(uint64_t after_seq, size_t max) const;
  // The seq of the newest trail entry, 0 when the trail is empty.
  Result<uint64_t> LastTrailSeq();
  // Called after every trail entry is written, under the book's lock: it must return at
  // once and not call the book (the audit feed only wakes its thread).
  void SetTrailListener(std::function<void()> listener);

 private:
  Status LoadTrailSeq();
  // Writes `action` with a new trail entry (by, step, what) appended, in one batch. `step`
  // names the transition for machines ("approved", "executed", ...: AuditEntry.step).
  Status Record(v1::Action* action, std::string_view by, std::string_view step, std::string what);
  Result<v1::Action> Load(std::string_view id) const;

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  const ResponsePolicy policy_;
  const Clock& clock_;
  std::mutex mu_;
  uint64_t next_seq_ = 0;  // GUARDED_BY(mu_); 0 until loaded
  std::mutex listener_mu_;
  std::function<void()> trail_listener_;  // GUARDED_BY(listener_mu_)
  mutable std::mutex approvers_mu_;
  std::vector<std::string> approvers_;  // GUARDED_BY(approvers_mu_)
};

// What Tripline proposes for an incident at or above the policy's severity: lock each
// account that arrived on a host of the chain and end its sessions there; block each
// source address at the first host; for a critical incident, isolate the chain's last host.
// At most 8 proposals per incident.
std::vector<Proposal> ProposalsForIncident(const v1::Incident& incident,
                                           const ResponsePolicy& policy);

}  // namespace tripline::response
