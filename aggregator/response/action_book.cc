#include "aggregator/response/action_book.h"

#include <arpa/inet.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "aggregator/store/rocksdb_store.h"

namespace tripline::response {
namespace {

constexpr std::string_view kActionPrefix = "a/";
constexpr std::string_view kTrailPrefix = "t/";
constexpr size_t kMaxProposalsPerIncident = 8;

std::string TrailKey(uint64_t seq) {
  std::string k(kTrailPrefix);
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>(seq >> (8 * i)));
  return k;
}

uint64_t Fnv1a(std::string_view a, std::string_view b, std::string_view c) {
  uint64_t h = 1469598103934665603ull;
  for (std::string_view part : {a, b, c}) {
    for (unsigned char ch : part) {
      h ^= ch;
      h *= 1099511628211ull;
    }
    h ^= 0xff;  // separator: ("ab","c") and ("a","bc") differ
    h *= 1099511628211ull;
  }
  return h;
}

std::string ActionId(uint64_t h) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "a%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool ValidHost(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

// What useradd accepts by default (NAME_REGEX of adduser.conf, with upper case).
bool ValidUser(std::string_view u) {
  if (u.empty() || u.size() > 32 || u[0] == '-') return false;
  return std::all_of(u.begin(), u.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

bool ValidAddress(std::string_view a) {
  // inet_pton reads up to the first NUL: "198.18.0.66\0 ;x" must not pass as the address.
  if (a.empty() || a.size() >= INET6_ADDRSTRLEN || a.find('\0') != std::string_view::npos) {
    return false;
  }
  const std::string s(a);
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Status Aborted(const v1::Action& a, std::string_view wanted) {
  return Status::Aborted("action " + a.id() + " is " + std::string(StateText(a.state())) +
                         "; only " + std::string(wanted));
}

std::string Scope(const v1::Action& a) {
  switch (a.kind()) {
    case v1::Action::KIND_LOCK_ACCOUNT: return "account " + a.subject() + " on " + a.host();
    case v1::Action::KIND_KILL_SESSION:
      return "every process of " + a.subject() + " on " + a.host();
    case v1::Action::KIND_BLOCK_ADDRESS:
      return "traffic between " + a.subject() + " and " + a.host();
    case v1::Action::KIND_ISOLATE_HOST:
      return "all traffic of " + a.host() + " but its sensor's path to the aggregator";
    default: return "";
  }
}

}  // namespace

std::string_view KindText(v1::Action::Kind kind) {
  switch (kind) {
    case v1::Action::KIND_LOCK_ACCOUNT: return "lock account";
    case v1::Action::KIND_KILL_SESSION: return "end sessions";
    case v1::Action::KIND_ISOLATE_HOST: return "isolate host";
    case v1::Action::KIND_BLOCK_ADDRESS: return "block address";
    default: return "unknown";
  }
}

std::string_view StateText(v1::Action::State state) {
  switch (state) {
    case v1::Action::STATE_PROPOSED: return "proposed";
    case v1::Action::STATE_APPROVED: return "approved";
    case v1::Action::STATE_DENIED: return "denied";
    case v1::Action::STATE_EXECUTED: return "executed";
    case v1::Action::STATE_FAILED: return "failed";
    case v1::Action::STATE_REVERTED: return "reverted";
    case v1::Action::STATE_EXPIRED: return "expired";
    case v1::Action::STATE_REVERT_REQUESTED: return "revert requested";
    default: return "unknown";
  }
}

Status ParseTarget(v1::Action::Kind kind, std::string_view target, std::string* host,
                   std::string* subject) {
  const size_t slash = target.find('/');
  switch (kind) {
    case v1::Action::KIND_ISOLATE_HOST:
      if (!ValidHost(target)) {
        return Status::InvalidArgument("isolate host wants a host name as target, got '" +
                                       std::string(target.substr(0, 64)) + "'");
      }
      *host = std::string(target);
      subject->clear();
      return Status::Ok();
    case v1::Action::KIND_LOCK_ACCOUNT:
    case v1::Action::KIND_KILL_SESSION:
      if (slash == std::string_view::npos || !ValidHost(target.substr(0, slash)) ||
          !ValidUser(target.substr(slash + 1))) {
        return Status::InvalidArgument(std::string(KindText(kind)) +
                                       " wants HOST/USER as target, got '" +
                                       std::string(target.substr(0, 64)) + "'");
      }
      break;
    case v1::Action::KIND_BLOCK_ADDRESS:
      if (slash == std::string_view::npos || !ValidHost(target.substr(0, slash)) ||
          !ValidAddress(target.substr(slash + 1))) {
        return Status::InvalidArgument(
            "block address wants HOST/ADDRESS (IPv4 or IPv6) as target, got '" +
            std::string(target.substr(0, 64)) + "'");
      }
      break;
    default: return Status::InvalidArgument("unknown action kind");
  }
  *host = std::string(target.substr(0, slash));
  *subject = std::string(target.substr(slash + 1));
  return Status::Ok();
}

ActionBook::ActionBook(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, ResponsePolicy policy,
                       const Clock& clock)
    : db_(db),
      cf_(family),
      policy_(std::move(policy)),
      clock_(clock),
      approvers_(policy_.approvers) {}

std::vector<std::string> ActionBook::approvers() const {
  std::lock_guard<std::mutex> lock(approvers_mu_);
  return approvers_;
}

void ActionBook::SetApprovers(std::vector<std::string> approvers) {
  std::lock_guard<std::mutex> lock(approvers_mu_);
  approvers_ = std::move(approvers);
}

Status ActionBook::LoadTrailSeq() {
  if (next_seq_ != 0) return Status::Ok();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
  it->SeekForPrev(TrailKey(UINT64_MAX));
  next_seq_ = 1;
  if (it->Valid() && it->key().starts_with(kTrailPrefix) && it->key().size() == 10) {
    uint64_t seq = 0;
    for (size_t i = 2; i < 10; ++i) seq = (seq << 8) | static_cast<uint8_t>(it->key()[i]);
    next_seq_ = seq + 1;
  }
  return FromRocksDb(it->status(), "reading the response trail");
}

Status ActionBook::Record(v1::Action* action, std::string_view by, std::string_view step,
                          std::string what) {
  TL_RETURN_IF_ERROR(LoadTrailSeq());
  v1::Action::AuditEntry* e = action->add_audit();
  e->set_at_ns(clock_.NowNs());
  e->set_by(std::string(by));
  e->set_what(std::move(what));
  e->set_step(std::string(step));
  e->set_action_id(action->id());
  e->set_seq(next_seq_);
  rocksdb::WriteBatch batch;
  batch.Put(cf_, TrailKey(next_seq_), e->SerializeAsString());
  batch.Put(cf_, std::string(kActionPrefix) + action->id(), action->SerializeAsString());
  rocksdb::WriteOptions wo;
  wo.sync = true;  // a decision is acknowledged only once it cannot be lost
  TL_RETURN_IF_ERROR(FromRocksDb(db_->Write(wo, &batch), "writing response action"));
  ++next_seq_;
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (trail_listener_) trail_listener_();
  return Status::Ok();
}

Result<v1::Action> ActionBook::Load(std::string_view id) const {
  std::string bytes;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf_, std::string(kActionPrefix) + std::string(id), &bytes);
  if (s.IsNotFound()) return Status::NotFound("no action " + std::string(id.substr(0, 64)));
  TL_RETURN_IF_ERROR(FromRocksDb(s, "reading response action"));
  v1::Action a;
  if (!a.ParseFromString(bytes)) return Status::Corruption("action record does not decode");
  return a;
}

Result<std::optional<v1::Action>> ActionBook::Get(std::string_view id) const {
  auto a = Load(id);
  if (a.status().IsNotFound()) return std::optional<v1::Action>();
  if (!a.ok()) return a.status();
  return std::optional<v1::Action>(std::move(*a));
}

Result<v1::Action> ActionBook::Propose(const Proposal& p, bool* created) {
  if (created != nullptr) *created = false;
  v1::Action a;
  std::string host, subject;
  TL_RETURN_IF_ERROR(ParseTarget(p.kind, p.target, &host, &subject));
  if (p.by.empty()) return Status::InvalidArgument("a proposal needs the proposer's name");
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_.NowNs();
  // Tripline's proposals are keyed by what they do, a person's by when they were made.
  const uint64_t h = p.by_person ? Fnv1a(p.by, p.target, std::to_string(now))
                                 : Fnv1a(p.incident_id, KindText(p.kind), p.target);
  a.set_id(ActionId(h));
  if (auto existing = Load(a.id()); existing.ok()) return existing;
  a.set_kind(p.kind);
  a.set_target(p.target);
  a.set_host(host);
  a.set_subject(subject);
  a.set_incident_id(p.incident_id);
  a.set_reason(p.reason);
  a.set_state(v1::Action::STATE_PROPOSED);
  a.set_proposed_by(p.by);
  a.set_proposed_by_person(p.by_person);
  a.set_proposed_ns(now);
  a.set_approval_expires_ns(now + policy_.proposal_ttl_ns);
  // As if it ran now; moved on by the time it waited when it is approved.
  a.set_expires_ns(now + (p.duration_ns > 0 ? p.duration_ns : policy_.action_ttl_ns));
  a.set_scope(Scope(a));
  TL_RETURN_IF_ERROR(Record(&a, p.by, "proposed",
                            "proposed " + std::string(KindText(p.kind)) + " " + p.target +
                                (p.reason.empty() ? "" : ": " + p.reason)));
  if (created != nullptr) *created = true;
  return a;
}

Result<size_t> ActionBook::ProposeForIncident(const v1::Incident& incident) {
  size_t n = 0;
  for (const Proposal& p : ProposalsForIncident(incident, policy_)) {
    bool created = false;
    auto a = Propose(p, &created);
    if (!a.ok()) return a.status();
    n += created;
  }
  return n;
}

Result<v1::Action> ActionBook::Approve(std::string_view id, std::string_view by,
                                       std::string_view comment) {
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(v1::Action a, Load(id));
  const int64_t now = clock_.NowNs();
  if (a.state() == v1::Action::STATE_PROPOSED && now >= a.approval_expires_ns()) {
    a.set_state(v1::Action::STATE_EXPIRED);
    TL_RETURN_IF_ERROR(Record(&a, kTriplineProposer, "expired", "proposal expired undecided"));
  }
  if (a.state() != v1::Action::STATE_PROPOSED) return Aborted(a, "a proposed action is approved");
  if (a.proposed_by_person() && a.proposed_by() == by) {
    return Status::PermissionDenied(std::string(by) + " proposed action " + a.id() +
                                    " and cannot also approve it");
  }
  a.set_state(v1::Action::STATE_APPROVED);
  a.set_decided_by(std::string(by));
  a.set_decided_ns(now);
  a.set_decision_comment(std::string(comment));
  a.set_approval_expires_ns(now + policy_.approval_ttl_ns);
  a.set_expires_ns(a.expires_ns() + (now - a.proposed_ns()));
  TL_RETURN_IF_ERROR(Record(&a, by, "approved",
                            "approved" + (comment.empty() ? "" : ": " + std::string(comment)) +
                                "; valid until " + FormatTimeNs(a.approval_expires_ns())));
  return a;
}

Result<v1::Action> ActionBook::Deny(std::string_view id, std::string_view by,
                                    std::string_view reason) {
  if (reason.empty()) return Status::InvalidArgument("a denial needs a reason");
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(v1::Action a, Load(id));
  if (a.state() != v1::Action::STATE_PROPOSED) return Aborted(a, "a proposed action is denied");
  a.set_state(v1::Action::STATE_DENIED);
  a.set_decided_by(std::string(by));
  a.set_decided_ns(clock_.NowNs());
  a.set_decision_comment(std::string(reason));
  TL_RETURN_IF_ERROR(Record(&a, by, "denied", "denied: " + std::string(reason)));
  return a;
}

Result<v1::Action> ActionBook::Revert(std::string_view id, std::string_view by) {
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(v1::Action a, Load(id));
  if (a.state() == v1::Action::STATE_APPROVED) {
    a.set_state(v1::Action::STATE_REVERTED);
    TL_RETURN_IF_ERROR(Record(&a, by, "withdrawn", "approval withdrawn before it ran"));
    return a;
  }
  if (a.state() != v1::Action::STATE_EXECUTED) {
    return Aborted(a, "an approved or executed action is reverted");
  }
  a.set_state(v1::Action::STATE_REVERT_REQUESTED);
  TL_RETURN_IF_ERROR(Record(&a, by, "revert-requested", "revert requested"));
  return a;
}

Result<v1::ActionOrder> ActionBook::OrderFor(std::string_view id, bool revert,
                                             std::string_view keep_path) {
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(v1::Action a, Load(id));
  const int64_t now = clock_.NowNs();
  if (!revert && (a.state() != v1::Action::STATE_APPROVED || now >= a.approval_expires_ns())) {
    return Aborted(a, "an approved action within its approval's time is sent");
  }
  if (revert && a.state() != v1::Action::STATE_REVERT_REQUESTED) {
    return Aborted(a, "an action whose revert was requested is sent for revert");
  }
  v1::ActionOrder o;
  o.set_action_id(a.id());
  o.set_kind(a.kind());
  o.set_host(a.host());
  o.set_subject(a.subject());
  o.set_revert(revert);
  o.set_issued_ns(now);
  // A revert takes back what a person approved: it holds as long as the approval would.
  o.set_not_after_ns(revert ? now + policy_.approval_ttl_ns : a.approval_expires_ns());
  o.set_approved_by(a.decided_by());
  o.set_keep_path(std::string(keep_path));
  TL_RETURN_IF_ERROR(Record(&a, kTriplineProposer, revert ? "revert-sent" : "order-sent",
                            std::string(revert ? "revert" : "order") + " sent to " + a.host()));
  return o;
}

Result<v1::Action> ActionBook::RecordReport(const v1::ActionReport& report, std::string_view by) {
  std::lock_guard<std::mutex> lock(mu_);
  TL_ASSIGN_OR_RETURN(v1::Action a, Load(report.action_id()));
  if (by != a.host()) {
    return Status::PermissionDenied("action " + a.id() + " runs on host " + a.host() +
                                    ": only its sensor reports it, not " + std::string(by));
  }
  const bool revert = report.revert();
  if (!revert && a.state() != v1::Action::STATE_APPROVED) {
    return Aborted(a, "an approved action can be reported executed");
  }
  if (revert && a.state() != v1::Action::STATE_REVERT_REQUESTED) {
    return Aborted(a, "an action whose revert was requested can be reported reverted");
  }
  if (revert) {
    if (report.ok()) a.set_state(v1::Action::STATE_REVERTED);
  } else {
    a.set_state(report.ok() ? v1::Action::STATE_EXECUTED : v1::Action::STATE_FAILED);
  }
  a.set_result(report.detail());
  const std::string_view step =
      revert ? (report.ok() ? "reverted" : "revert-failed") : (report.ok() ? "executed" : "failed");
  TL_RETURN_IF_ERROR(Record(&a, by, step,
                            std::string(revert ? "revert " : "execution ") +
                                (report.ok() ? "succeeded: " : "failed: ") + report.detail()));
  return a;
}

Result<size_t> ActionBook::ExpireOverdue() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_.NowNs();
  std::vector<v1::Action> due;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
    for (it->Seek(kActionPrefix); it->Valid() && it->key().starts_with(kActionPrefix); it->Next()) {
      v1::Action a;
      if (!a.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return Status::Corruption("action record " + it->key().ToString() + " does not decode");
      }
      if ((a.state() == v1::Action::STATE_PROPOSED || a.state() == v1::Action::STATE_APPROVED) &&
          now >= a.approval_expires_ns()) {
        due.push_back(std::move(a));
      }
    }
    TL_RETURN_IF_ERROR(FromRocksDb(it->status(), "reading response actions"));
  }
  for (v1::Action& a : due) {
    const bool approved = a.state() == v1::Action::STATE_APPROVED;
    a.set_state(v1::Action::STATE_EXPIRED);
    TL_RETURN_IF_ERROR(Record(&a, kTriplineProposer, "expired",
                              approved ? "approval expired before the sensor executed it"
                                       : "proposal expired undecided"));
  }
  return due.size();
}

Result<std::vector<v1::Action>> ActionBook::List(v1::Action::State state,
                                                 std::string_view incident_id) const {
  std::vector<v1::Action> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
  for (it->Seek(kActionPrefix); it->Valid() && it->key().starts_with(kActionPrefix); it->Next()) {
    v1::Action a;
    if (!a.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("action record " + it->key().ToString() + " does not decode");
    }
    if (state != v1::Action::STATE_UNSPECIFIED && a.state() != state) continue;
    if (!incident_id.empty() && a.incident_id() != incident_id) continue;
    out.push_back(std::move(a));
  }
  TL_RETURN_IF_ERROR(FromRocksDb(it->status(), "reading response actions"));
  return out;
}

Result<std::vector<v1::Action::AuditEntry>> ActionBook::TrailAfter(uint64_t after_seq,
                                                                   size_t max) const {
  std::vector<v1::Action::AuditEntry> out;
  if (after_seq == UINT64_MAX) return out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
  for (it->Seek(TrailKey(after_seq + 1));
       it->Valid() && it->key().starts_with(kTrailPrefix) && out.size() < max; it->Next()) {
    v1::Action::AuditEntry e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("trail entry does not decode");
    }
    out.push_back(std::move(e));
  }
  TL_RETURN_IF_ERROR(FromRocksDb(it->status(), "reading the response trail"));
  return out;
}

Result<uint64_t> ActionBook::LastTrailSeq() {
  std::lock_guard<std::mutex> lock(mu_);
  TL_RETURN_IF_ERROR(LoadTrailSeq());
  return next_seq_ - 1;
}

void ActionBook::SetTrailListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  trail_listener_ = std::move(listener);
}

Result<std::vector<v1::Action::AuditEntry>> ActionBook::Trail(std::string_view action_id,
                                                              size_t limit) const {
  std::vector<v1::Action::AuditEntry> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
  for (it->SeekForPrev(TrailKey(UINT64_MAX));
       it->Valid() && it->key().starts_with(kTrailPrefix) && out.size() < limit; it->Prev()) {
    v1::Action::AuditEntry e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("trail entry does not decode");
    }
    if (!action_id.empty() && e.action_id() != action_id) continue;
    out.push_back(std::move(e));
  }
  TL_RETURN_IF_ERROR(FromRocksDb(it->status(), "reading the response trail"));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<Proposal> ProposalsForIncident(const v1::Incident& incident,
                                           const ResponsePolicy& policy) {
  std::vector<Proposal> out;
  if (policy.propose_min_severity == 0 || incident.severity() < policy.propose_min_severity) {
    return out;
  }
  const auto add = [&](v1::Action::Kind kind, std::string target, std::string reason) {
    if (out.size() >= kMaxProposalsPerIncident) return;
    std::string host, subject;
    if (!ParseTarget(kind, target, &host, &subject).ok()) return;  // not a name we act on
    for (const Proposal& p : out) {
      if (p.kind == kind && p.target == target) return;
    }
    Proposal p;
    p.kind = kind;
    p.target = std::move(target);
    p.incident_id = incident.id();
    p.reason = std::move(reason);
    p.by = std::string(kTriplineProposer);
    p.by_person = false;
    out.push_back(std::move(p));
  };
  const std::string why = "incident " + incident.id() + ": " + incident.title();
  std::vector<std::pair<std::string, std::string>> arrivals;  // (host, user)
  for (const v1::Hop& hop : incident.chain()) arrivals.emplace_back(hop.to(), hop.user());
  if (arrivals.empty() && incident.hosts_size() > 0) {
    for (const std::string& id : incident.identities()) {
      if (id.rfind("user:", 0) == 0) arrivals.emplace_back(incident.hosts(0), id.substr(5));
    }
  }
  for (const auto& [host, user] : arrivals) {
    add(v1::Action::KIND_LOCK_ACCOUNT, host + "/" + user, why);
    add(v1::Action::KIND_KILL_SESSION, host + "/" + user, why);
  }
  if (incident.hosts_size() > 0) {
    for (const std::string& id : incident.identities()) {
      if (id.rfind("source:", 0) == 0) {
        add(v1::Action::KIND_BLOCK_ADDRESS, incident.hosts(0) + "/" + id.substr(7), why);
      }
    }
    if (incident.severity() >= v1::SEVERITY_CRITICAL) {
      add(v1::Action::KIND_ISOLATE_HOST, incident.hosts(incident.hosts_size() - 1), why);
    }
  }
  return out;
}

}  // namespace tripline::response
