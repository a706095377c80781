#include "aggregator/audit/privilege_drift.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "aggregator/audit/posture_findings.h"
#include "common/clock.h"
#include "model/posture_checks.h"

namespace tripline::audit {
namespace {

using nlohmann::json;

constexpr std::string_view kProvisionedPrefix = "p/";
constexpr std::string_view kUsagePrefix = "u/";
// A privilege exercised again is written back only when its time moved this much: the
// report speaks in days, and a busy account must not cost a write per event.
constexpr int64_t kUsageWriteStepNs = 3600LL * kNanosPerSecond;

std::string RecordKey(std::string_view prefix, std::string_view host, std::string_view account) {
  std::string k(prefix);
  k.append(host);
  k.push_back('\0');
  k.append(account);
  return k;
}

std::string_view Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool OneOf(std::string_view s, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), s) != options.end();
}

// What a group grants, and how it is seen used.
struct GroupUse {
  std::string_view group;
  std::string_view exercised_by;  // for evidence; "" when not observable
};
constexpr GroupUse kGroupUses[] = {
    {"docker", "running docker, podman, nerdctl, ctr or crictl"},
    {"lxd", "running lxc or lxd"},
    {"shadow", "opening /etc/shadow or /etc/gshadow"},
    {"adm", "opening a file under /var/log"},
    {"sudo", "running sudo, su, doas or pkexec"},
    {"wheel", "running sudo, su, doas or pkexec"},
    {"disk", ""},
    {"root", ""},
};

std::string_view ExercisedBy(std::string_view group) {
  for (const GroupUse& g : kGroupUses) {
    if (g.group == group) return g.exercised_by;
  }
  return "";
}

std::string Days(int64_t ns) {
  const int64_t days = ns / (86400LL * kNanosPerSecond);
  if (days >= 1) return std::to_string(days) + (days == 1 ? " day" : " days");
  return FormatDurationNs(ns);
}

json ProvisionedJson(const Provisioned& p) {
  json j = {{"kind", p.kind},     {"login", p.login},         {"sudo", p.sudo_rules},
            {"groups", p.groups}, {"first", p.first_seen_ns}, {"seen", p.seen_ns}};
  if (!p.files.empty()) j["files"] = p.files;
  return j;
}

// An integer field: a JSON integer (a float such as 1e300 is refused, not cast, which would
// overflow).
bool IntField(const json& j, const char* name, int64_t* out) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

bool StringList(const json& j, const char* name, std::vector<std::string>* out) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_array()) return false;
  for (const json& v : *it) {
    if (!v.is_string()) return false;
    out->push_back(v.get<std::string>());
  }
  return true;
}

Result<Provisioned> ProvisionedFromJson(const json& j) {
  Provisioned p;
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string() || !j.contains("login") ||
      !j["login"].is_boolean() || !StringList(j, "sudo", &p.sudo_rules) ||
      !StringList(j, "groups", &p.groups) || !IntField(j, "first", &p.first_seen_ns) ||
      !IntField(j, "seen", &p.seen_ns)) {
    return Status::Corruption(
        "provisioned record is not {kind, login, sudo: [...], groups: [...], first, seen}");
  }
  // "files": written since readable files are reported; absent in older records.
  if (j.contains("files") && !StringList(j, "files", &p.files)) {
    return Status::Corruption("provisioned record: files is not a list of paths");
  }
  for (const std::string& f : p.files) {
    if (f.empty() || f.front() != '/') {
      return Status::Corruption("provisioned record: a file that is not an absolute path");
    }
  }
  p.kind = j["kind"].get<std::string>();
  p.login = j["login"].get<bool>();
  if (p.kind != "service" && p.kind != "agent") {
    return Status::Corruption("provisioned record: kind is not service or agent");
  }
  if (p.first_seen_ns < 0 || p.seen_ns < p.first_seen_ns) {
    return Status::Corruption("provisioned record: times out of order");
  }
  for (const std::string& g : p.groups) {
    if (!IsRootEquivalentGroup(g)) {
      return Status::Corruption("provisioned record: " + g + " is not a root-equivalent group");
    }
  }
  return p;
}

Status TimesFromJson(const json& j, std::map<std::string, int64_t>* out) {
  if (!j.is_object()) return Status::Corruption("usage record: times are not an object");
  for (const auto& [privilege, t] : j.items()) {
    if (privilege.empty() || !t.is_number_integer() || t.get<int64_t>() <= 0) {
      return Status::Corruption("usage record: a bad entry");
    }
    (*out)[privilege] = t.get<int64_t>();
  }
  return Status::Ok();
}

// {"l": {privilege: last}, "f": {privilege: first}}, or (written before first times were
// kept) {privilege: last}: then each first time is its last.
Result<Usage> UsageFromJson(const json& j) {
  if (!j.is_object()) return Status::Corruption("usage record is not an object");
  Usage u;
  if (j.contains("l")) {
    if (j.size() != 2 || !j.contains("f")) {
      return Status::Corruption("usage record: wants l and f only");
    }
    TL_RETURN_IF_ERROR(TimesFromJson(j["l"], &u.last_ns));
    TL_RETURN_IF_ERROR(TimesFromJson(j["f"], &u.first_ns));
    for (const auto& [privilege, first] : u.first_ns) {
      const auto last = u.last_ns.find(privilege);
      if (last == u.last_ns.end() || first > last->second) {
        return Status::Corruption("usage record: " + privilege + " first used after its last use");
      }
    }
  } else {
    TL_RETURN_IF_ERROR(TimesFromJson(j, &u.last_ns));
  }
  for (const auto& [privilege, last] : u.last_ns) u.first_ns.emplace(privilege, last);
  return u;
}

std::string UsageToJson(const Usage& u) { return json{{"l", u.last_ns}, {"f", u.first_ns}}.dump(); }

}  // namespace

std::vector<DriftItem> JudgeDrift(std::string_view host, std::string_view account,
                                  const Provisioned& p, const Usage& u, int64_t now_ns,
                                  int64_t min_period_ns) {
  std::vector<DriftItem> out;
  const int64_t watched = now_ns - p.first_seen_ns;
  const auto judge = [&](std::string privilege, std::string_view exercised_by, std::string granted,
                         std::string fix) {
    DriftItem d;
    d.host = std::string(host);
    d.identity = std::string(account);
    d.kind = p.kind;
    d.privilege = std::move(privilege);
    d.since_ns = p.first_seen_ns;
    const auto used = u.last_ns.find(d.privilege);
    if (used != u.last_ns.end()) {
      d.state = "used";
      d.last_used_ns = used->second;
      d.evidence = granted + ": last exercised " + FormatTimeNs(used->second);
    } else if (exercised_by.empty()) {
      d.state = "unobservable";
      d.evidence = granted + ": the sensor's events cannot show its use";
    } else if (watched < min_period_ns) {
      d.state = "watching";
      d.evidence = granted + ": not exercised in " + Days(watched) + " watched, of the " +
                   Days(min_period_ns) + " needed to judge";
    } else {
      d.state = "unused";
      d.evidence = granted + ": never exercised (" + std::string(exercised_by) + ") in " +
                   Days(watched) + " since " + FormatTimeNs(p.first_seen_ns);
      d.fix = std::move(fix);
    }
    out.push_back(std::move(d));
  };
  const std::string who = p.kind + " account " + std::string(account);
  if (p.login) {
    judge("login", "a successful login to the host", who + " may log in to " + std::string(host),
          "remove the login: usermod -s /usr/sbin/nologin " + std::string(account) +
              ", and its password (passwd -l) and authorized keys");
  }
  if (!p.sudo_rules.empty()) {
    judge("sudo", "running sudo, su, doas or pkexec",
          who + " has " + std::to_string(p.sudo_rules.size()) + " sudo rule" +
              (p.sudo_rules.size() == 1 ? "" : "s") + " on " + std::string(host),
          "remove the sudoers rules of " + std::string(account) + " (visudo; /etc/sudoers.d)");
  }
  for (const std::string& g : p.groups) {
    judge("group:" + g, ExercisedBy(g), who + " is in group " + g + " on " + std::string(host),
          "gpasswd -d " + std::string(account) + " " + g);
  }
  for (const std::string& f : p.files) {
    judge("read:" + f, "opening it", who + " may read " + f + " on " + std::string(host),
          "take the read access of " + std::string(account) + " to " + f +
              " away (its owner or group: ls -l " + f + "; chmod, chown, or gpasswd -d)");
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> PrivilegesExercised(const Event& e) {
  std::vector<std::pair<std::string, std::string>> out;
  if (const LoginEvent* l = e.As<LoginEvent>()) {
    if (l->outcome == Outcome::kSuccess && !l->user.empty()) out.emplace_back("login", l->user);
    return out;
  }
  // The account behind a process: the one it runs as, and the one its session logged in as
  // (sudo runs as root for the account that ran it).
  std::vector<std::string> accounts;
  for (const std::string* a : {&e.process.user, &e.process.login_user}) {
    if (!a->empty() && std::find(accounts.begin(), accounts.end(), *a) == accounts.end()) {
      accounts.push_back(*a);
    }
  }
  const auto add = [&](std::string_view privilege) {
    for (const std::string& a : accounts) out.emplace_back(std::string(privilege), a);
  };
  if (const ExecEvent* x = e.As<ExecEvent>()) {
    const std::string_view name = Basename(x->filename.empty() ? e.process.exe : x->filename);
    // sudo itself, or what it ran (an imported sudo log line is the command, run as root by
    // the session's account): sudo exercised, not what the command's own program needs.
    if (OneOf(name, {"sudo", "su", "doas", "pkexec"}) ||
        OneOf(x->parent_comm, {"sudo", "su", "doas", "pkexec"})) {
      add("sudo");
      add("group:sudo");
      add("group:wheel");
    } else if (OneOf(name, {"docker", "podman", "nerdctl", "ctr", "crictl"})) {
      add("group:docker");
    } else if (OneOf(name, {"lxc", "lxd"})) {
      add("group:lxd");
    }
  } else if (const FileOpenEvent* f = e.As<FileOpenEvent>()) {
    if (f->result != 0) return out;
    // A read of a sensitive file the account was given (a write-only open is not one).
    if (f->access != FileAccess::kWrite) add("read:" + f->path);
    if (f->path == "/etc/shadow" || f->path == "/etc/gshadow") {
      add("group:shadow");
    } else if (f->path.rfind("/var/log/", 0) == 0) {
      add("group:adm");
    }
  }
  return out;
}

Result<DriftRecord> DecodeDriftRecord(std::string_view key, std::string_view value) {
  DriftRecord r;
  if (key.substr(0, kProvisionedPrefix.size()) == kProvisionedPrefix) {
    r.provisioned = true;
  } else if (key.substr(0, kUsagePrefix.size()) != kUsagePrefix) {
    return Status::Corruption("drift record key has neither prefix p/ nor u/");
  }
  key.remove_prefix(2);
  const size_t nul = key.find('\0');
  if (nul == std::string_view::npos || nul == 0 || nul + 1 == key.size()) {
    return Status::Corruption("drift record key is not HOST NUL ACCOUNT");
  }
  r.host = std::string(key.substr(0, nul));
  r.account = std::string(key.substr(nul + 1));
  const json j = json::parse(value, nullptr, false);
  if (j.is_discarded()) return Status::Corruption("drift record of " + r.host + " is not JSON");
  if (r.provisioned) {
    TL_ASSIGN_OR_RETURN(r.p, ProvisionedFromJson(j));
  } else {
    TL_ASSIGN_OR_RETURN(r.u, UsageFromJson(j));
  }
  return r;
}

Result<std::unique_ptr<DriftBook>> DriftBook::Open(rocksdb::DB* db,
                                                   rocksdb::ColumnFamilyHandle* cf) {
  std::unique_ptr<DriftBook> book(new DriftBook(db, cf));
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  for (std::string_view prefix : {kProvisionedPrefix, kUsagePrefix}) {
    const rocksdb::Slice start(prefix.data(), prefix.size());
    for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
      TL_ASSIGN_OR_RETURN(
          DriftRecord r,
          DecodeDriftRecord(std::string_view(it->key().data(), it->key().size()),
                            std::string_view(it->value().data(), it->value().size())));
      Key k{std::move(r.host), std::move(r.account)};
      if (r.provisioned) {
        book->provisioned_[std::move(k)] = std::move(r.p);
      } else {
        book->usage_[std::move(k)] = std::move(r.u);
      }
    }
    if (!it->status().ok()) {
      return Status::IoError("reading drift records: " + it->status().ToString());
    }
  }
  return book;
}

Status DriftBook::SetProvisioned(std::string_view host, int64_t time_ns,
                                 const PostureSnapshot& snapshot, const AuditPolicy& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  // A snapshot older than the newest one applied for the host (a spool delivering late)
  // changes nothing.
  for (auto it = provisioned_.lower_bound(Key{std::string(host), ""});
       it != provisioned_.end() && it->first.first == host; ++it) {
    if (time_ns < it->second.seen_ns) return Status::Ok();
  }
  rocksdb::WriteBatch batch;
  std::set<std::string> present;
  for (const Account& a : snapshot.accounts) {
    const std::string kind = IdentityKind(a, policy);
    if (kind == "human" || a.name == "root") continue;
    present.insert(a.name);
    Provisioned now;
    now.kind = kind;
    now.login = a.interactive_shell && (HasUsablePassword(a) || a.authorized_keys > 0);
    now.sudo_rules = a.sudo_rules;
    for (const std::string& g : a.groups) {
      if (IsRootEquivalentGroup(g) &&
          std::find(now.groups.begin(), now.groups.end(), g) == now.groups.end()) {
        now.groups.push_back(g);
      }
    }
    std::sort(now.groups.begin(), now.groups.end());
    now.files = a.readable_files;
    std::sort(now.files.begin(), now.files.end());
    now.files.erase(std::unique(now.files.begin(), now.files.end()), now.files.end());
    const Key k{std::string(host), a.name};
    auto it = provisioned_.find(k);
    now.first_seen_ns = it == provisioned_.end() ? time_ns : it->second.first_seen_ns;
    now.seen_ns = time_ns;
    const bool changed = it == provisioned_.end() || it->second.kind != now.kind ||
                         it->second.login != now.login || it->second.sudo_rules != now.sudo_rules ||
                         it->second.groups != now.groups || it->second.files != now.files;
    if (changed) {
      batch.Put(cf_, RecordKey(kProvisionedPrefix, host, a.name), ProvisionedJson(now).dump());
    }
    provisioned_[k] = std::move(now);
  }
  // Accounts gone from the host (or now human) are no longer tracked.
  for (auto it = provisioned_.lower_bound(Key{std::string(host), ""});
       it != provisioned_.end() && it->first.first == host;) {
    if (present.count(it->first.second) != 0) {
      ++it;
      continue;
    }
    batch.Delete(cf_, RecordKey(kProvisionedPrefix, host, it->first.second));
    batch.Delete(cf_, RecordKey(kUsagePrefix, host, it->first.second));
    usage_.erase(it->first);
    it = provisioned_.erase(it);
  }
  if (batch.Count() == 0) return Status::Ok();
  const rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  return s.ok() ? Status::Ok() : Status::IoError("writing drift records: " + s.ToString());
}

Status DriftBook::Observe(const std::vector<Event>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  if (provisioned_.empty()) return Status::Ok();
  std::set<Key> changed;
  for (const Event& e : events) {
    for (auto& [privilege, account] : PrivilegesExercised(e)) {
      const Key k{e.host, account};
      const auto p = provisioned_.find(k);
      if (p == provisioned_.end()) continue;
      // Reads are kept for the files the account was given only (a service reads many a
      // sensitive file through root-owned programs, PAM's configuration for one).
      if (privilege.rfind("read:", 0) == 0 &&
          !std::binary_search(p->second.files.begin(), p->second.files.end(),
                              std::string_view(privilege).substr(5))) {
        continue;
      }
      Usage& u = usage_[k];
      int64_t& last = u.last_ns[privilege];
      if (last == 0 || e.time_ns >= last + kUsageWriteStepNs) changed.insert(k);
      last = std::max(last, e.time_ns);
      auto [first, fresh] = u.first_ns.emplace(privilege, e.time_ns);
      if (!fresh && e.time_ns < first->second) {  // an older event, imported late
        first->second = e.time_ns;
        changed.insert(k);
      }
    }
  }
  if (changed.empty()) return Status::Ok();
  rocksdb::WriteBatch batch;
  for (const Key& k : changed) {
    batch.Put(cf_, RecordKey(kUsagePrefix, k.first, k.second), UsageToJson(usage_[k]));
  }
  const rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  return s.ok() ? Status::Ok() : Status::IoError("writing drift usage: " + s.ToString());
}

correlate::UnusedPrivileges DriftBook::Unused(std::string_view host, std::string_view account,
                                              int64_t before_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  correlate::UnusedPrivileges out;
  const Key k{std::string(host), std::string(account)};
  const auto p = provisioned_.find(k);
  if (p == provisioned_.end()) return out;
  // What was used before `before_ns`: a privilege first exercised since counts as unused.
  Usage before;
  if (const auto u = usage_.find(k); u != usage_.end()) {
    for (const auto& [privilege, last] : u->second.last_ns) {
      const auto first = u->second.first_ns.find(privilege);
      const int64_t first_ns = first != u->second.first_ns.end() ? first->second : last;
      if (first_ns < before_ns) before.last_ns[privilege] = std::min(last, before_ns);
    }
  }
  for (const DriftItem& d :
       JudgeDrift(host, account, p->second, before, before_ns, watch_period_ns_.load())) {
    if (d.state == "unused") out.privileges.push_back(d.privilege);
  }
  if (!out.privileges.empty()) {
    out.kind = p->second.kind;
    out.watched_ns = before_ns - p->second.first_seen_ns;
  }
  return out;
}

std::vector<DriftItem> DriftBook::Report(std::string_view host, std::string_view identity,
                                         int64_t now_ns, int64_t min_period_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DriftItem> out;
  static const Usage kNone;
  for (const auto& [k, p] : provisioned_) {
    if ((!host.empty() && k.first != host) || (!identity.empty() && k.second != identity)) {
      continue;
    }
    const auto u = usage_.find(k);
    for (DriftItem& d : JudgeDrift(k.first, k.second, p, u == usage_.end() ? kNone : u->second,
                                   now_ns, min_period_ns)) {
      out.push_back(std::move(d));
    }
  }
  const auto rank = [](const std::string& state) {
    return state == "unused" ? 0 : state == "watching" ? 1 : state == "unobservable" ? 2 : 3;
  };
  std::stable_sort(out.begin(), out.end(), [&](const DriftItem& a, const DriftItem& b) {
    return rank(a.state) < rank(b.state);
  });
  return out;
}

}  // namespace tripline::audit
