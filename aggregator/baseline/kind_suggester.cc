#include "aggregator/baseline/kind_suggester.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace tripline::baseline {
namespace {

using json = nlohmann::json;

// A terminal: utmp lines ("pts/3", "tty1") and PAM_TTY of console logins ("/dev/tty1").
// sshd's PAM_TTY is "ssh" whether or not a terminal follows, so it proves nothing.
bool IsTerminal(std::string_view tty) {
  return tty.rfind("pts/", 0) == 0 || tty.rfind("tty", 0) == 0 || tty.rfind("/dev/", 0) == 0 ||
         tty == "console";
}

std::string Duration(double seconds) {
  char buf[64];
  const long long s = std::llround(seconds);
  if (s >= 86400 && s % 3600 == 0) {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
  } else if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", s);
  }
  return buf;
}

std::string Percent(uint64_t part, uint64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%",
                whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

bool IsUInt(const json& j, const char* k) { return j.contains(k) && j[k].is_number_unsigned(); }
bool IsInt(const json& j, const char* k) { return j.contains(k) && j[k].is_number_integer(); }

}  // namespace

std::string_view SuggestionStateName(SuggestionState state) {
  switch (state) {
    case SuggestionState::kSuggested: return "suggested";
    case SuggestionState::kConfirmed: return "confirmed";
    case SuggestionState::kDismissed: return "dismissed";
  }
  return "suggested";
}

KindSuggester::Account* KindSuggester::Track(const std::string& user, int64_t time_ns) {
  auto it = accounts_.find(user);
  if (it == accounts_.end()) {
    if (accounts_.size() >= options_.max_accounts) {
      ++untracked_;
      return nullptr;
    }
    it = accounts_.emplace(user, Account{}).first;
    it->second.first_ns = time_ns;
  }
  Account& a = it->second;
  a.first_ns = std::min(a.first_ns, time_ns);
  a.last_ns = std::max(a.last_ns, time_ns);
  ++a.events;
  dirty_.insert(user);
  return &a;
}

void KindSuggester::Observe(const Event& event, const IdentityResolver& resolver) {
  if (const LoginEvent* login = event.As<LoginEvent>()) {
    if (login->user.empty() || login->user == "root" || login->outcome != Outcome::kSuccess) {
      return;
    }
    if (resolver.Resolve(login->user, nullptr).kind != IdentityKind::kHuman) return;
    Account* a = Track(login->user, event.time_ns);
    if (a == nullptr) return;
    // One login passes several stages (authentication, account, session); count it once.
    if (login->stage == LoginStage::kAuthenticate || login->stage == LoginStage::kUnspecified) {
      ++a->logins;
    }
    if (IsTerminal(login->tty) || login->service == "login") {
      if (a->interactive++ == 0) {
        a->interactive_example = "logged in on " + login->tty + " of " + event.host;
      }
    }
    return;
  }
  if (const ExecEvent* exec = event.As<ExecEvent>()) {
    const std::string& user = event.process.user;
    if (user.empty() || user == "root") return;  // root is not an account to suggest a kind for
    if (resolver.Resolve(user, &event.process).kind != IdentityKind::kHuman) return;
    Account* a = Track(user, event.time_ns);
    if (a == nullptr) return;
    if (!exec->argv.empty() && !exec->argv[0].empty() && exec->argv[0][0] == '-') {
      // A login shell ("-bash"): someone is at a terminal.
      if (a->interactive++ == 0) {
        a->interactive_example = "started login shell " + exec->argv[0] + " on " + event.host;
      }
    }
    ObserveExec(*a, exec->filename, event.time_ns);
  }
}

void KindSuggester::ObserveExec(Account& a, std::string_view exe, int64_t time_ns) {
  ++a.execs;
  if (a.last_exec_ns != 0 && time_ns >= a.last_exec_ns &&
      time_ns - a.last_exec_ns < options_.burst_gap_ns) {
    ++a.gaps;
    if (time_ns - a.last_exec_ns < options_.machine_gap_ns) ++a.machine_gaps;
  }
  a.last_exec_ns = std::max(a.last_exec_ns, time_ns);
  if (a.exes.size() < options_.min_distinct_exes) a.exes.emplace(exe);

  auto s = std::find_if(a.schedules.begin(), a.schedules.end(),
                        [&](const Schedule& x) { return x.exe == exe; });
  if (s == a.schedules.end()) {
    if (a.schedules.size() < kTrackedExes) {
      a.schedules.push_back(Schedule{std::string(exe)});
      s = a.schedules.end() - 1;
    } else {
      // Replace a program seen only once; keep schedules that have started.
      s = std::min_element(a.schedules.begin(), a.schedules.end(),
                           [](const Schedule& x, const Schedule& y) { return x.runs < y.runs; });
      if (s->runs > 1) return;
      *s = Schedule{std::string(exe)};
    }
  }
  if (s->runs > 0 && time_ns - s->last_exec_ns < options_.run_gap_ns) {
    s->last_exec_ns = std::max(s->last_exec_ns, time_ns);  // the same run
    return;
  }
  if (s->runs > 0 && time_ns > s->last_run_ns) {
    const double interval = static_cast<double>(time_ns - s->last_run_ns) / 1e9;
    ++s->n;
    const double d = interval - s->mean;
    s->mean += d / static_cast<double>(s->n);
    s->m2 += d * (interval - s->mean);
  }
  ++s->runs;
  s->last_run_ns = time_ns;
  s->last_exec_ns = time_ns;
}

bool KindSuggester::Judge(const std::string& user, const Account& a, KindSuggestion* out) const {
  (void)user;
  if (a.interactive > 0) return false;
  if (a.events < options_.min_events || a.last_ns - a.first_ns < options_.min_span_ns) return false;
  out->evidence.clear();
  const std::string never = "never interactive: none of " + std::to_string(a.logins) +
                            " logins had a terminal and no "
                            "login shell ran, over " +
                            Duration(static_cast<double>(a.last_ns - a.first_ns) / 1e9);

  const Schedule* best = nullptr;
  double best_cv = 0;
  for (const Schedule& s : a.schedules) {
    if (s.runs < options_.min_runs || s.n < 2 || s.mean <= 0) continue;
    const double cv = std::sqrt(s.m2 / static_cast<double>(s.n - 1)) / s.mean;
    if (cv > options_.max_interval_cv) continue;
    if (best == nullptr || s.runs > best->runs) {
      best = &s;
      best_cv = cv;
    }
  }
  if (best != nullptr) {
    out->kind = IdentityKind::kService;
    out->evidence.push_back(never);
    out->evidence.push_back(best->exe + " ran " + std::to_string(best->runs) + " times, every " +
                            Duration(best->mean) + " (± " + Duration(best_cv * best->mean) + ")");
    return true;
  }
  if (a.gaps >= options_.min_gaps &&
      static_cast<double>(a.machine_gaps) >=
          options_.min_machine_fraction * static_cast<double>(a.gaps) &&
      a.exes.size() >= options_.min_distinct_exes) {
    out->kind = IdentityKind::kAgent;
    out->evidence.push_back(never);
    out->evidence.push_back("issued " + std::to_string(a.execs) +
                            " commands at machine speed: " + Percent(a.machine_gaps, a.gaps) +
                            " of the gaps between them within a burst were under " +
                            Duration(static_cast<double>(options_.machine_gap_ns) / 1e9));
    out->evidence.push_back("ran at least " + std::to_string(a.exes.size()) +
                            " different programs, on no fixed schedule");
    return true;
  }
  return false;
}

Result<KindSuggestion> KindSuggester::Get(std::string_view user) const {
  const auto it = accounts_.find(user);
  if (it == accounts_.end()) {
    return Status::NotFound("no account " + std::string(user) + " has been seen");
  }
  const Account& a = it->second;
  KindSuggestion s;
  s.user = it->first;
  s.first_seen_ns = a.first_ns;
  s.last_seen_ns = a.last_ns;
  s.state = a.state;
  if (a.state != SuggestionState::kSuggested) {
    Judge(it->first, a, &s);  // the evidence as it stands, if any
    if (a.state == SuggestionState::kConfirmed) s.kind = a.decided_kind;
    s.decided_by = a.decided_by;
    s.decided_ns = a.decided_ns;
    return s;
  }
  if (!Judge(it->first, a, &s)) {
    std::string why = a.interactive > 0 ? a.interactive_example
                      : a.events < options_.min_events
                          ? "only " + std::to_string(a.events) + " events seen"
                          : "its behaviour is not a service's or an agent's";
    return Status::NotFound("no kind is suggested for " + it->first + ": " + why);
  }
  return s;
}

std::vector<KindSuggestion> KindSuggester::Suggestions() const {
  std::vector<KindSuggestion> out;
  for (const auto& [user, a] : accounts_) {
    if (a.state == SuggestionState::kSuggested && a.interactive > 0) continue;
    Result<KindSuggestion> s = Get(user);
    if (s.ok()) out.push_back(std::move(*s));
  }
  return out;
}

Result<IdentityRule> KindSuggester::Confirm(std::string_view user, IdentityKind kind,
                                            std::string_view by, int64_t now_ns) {
  if (kind != IdentityKind::kService && kind != IdentityKind::kAgent) {
    return Status::InvalidArgument("an account can be confirmed as service or agent only");
  }
  if (by.empty()) return Status::InvalidArgument("a confirmation names the person who gives it");
  const auto it = accounts_.find(user);
  if (it == accounts_.end()) {
    return Status::NotFound("no account " + std::string(user) + " has been seen");
  }
  Account& a = it->second;
  if (a.state == SuggestionState::kConfirmed) {
    return Status::AlreadyExists(it->first + " was confirmed as " +
                                 std::string(KindName(a.decided_kind)) + " by " + a.decided_by);
  }
  a.state = SuggestionState::kConfirmed;
  a.decided_kind = kind;
  a.decided_by = std::string(by);
  a.decided_ns = now_ns;
  dirty_.insert(it->first);
  IdentityRule rule;
  rule.kind = kind;
  rule.user = it->first;
  rule.exact = true;  // an account name, not a pattern: '*' in it is a character
  return rule;
}

Status KindSuggester::Dismiss(std::string_view user, std::string_view by, int64_t now_ns) {
  if (by.empty()) return Status::InvalidArgument("a dismissal names the person who gives it");
  const auto it = accounts_.find(user);
  if (it == accounts_.end()) {
    return Status::NotFound("no account " + std::string(user) + " has been seen");
  }
  Account& a = it->second;
  if (a.state == SuggestionState::kConfirmed) {
    return Status::AlreadyExists(it->first + " was confirmed as " +
                                 std::string(KindName(a.decided_kind)) +
                                 "; remove it from the declared identities instead");
  }
  a.state = SuggestionState::kDismissed;
  a.decided_by = std::string(by);
  a.decided_ns = now_ns;
  dirty_.insert(it->first);
  return Status::Ok();
}

std::vector<IdentityRule> KindSuggester::ConfirmedRules() const {
  std::vector<IdentityRule> rules;
  for (const auto& [user, a] : accounts_) {
    if (a.state != SuggestionState::kConfirmed) continue;
    IdentityRule r;
    r.kind = a.decided_kind;
    r.user = user;
    r.exact = true;
    rules.push_back(std::move(r));
  }
  return rules;
}

KindSuggesterStats KindSuggester::stats() const {
  KindSuggesterStats s;
  s.accounts = accounts_.size();
  s.accounts_untracked = untracked_;
  for (const auto& [user, a] : accounts_) {
    if (a.state == SuggestionState::kConfirmed) {
      ++s.confirmed;
    } else if (a.state == SuggestionState::kDismissed) {
      ++s.dismissed;
    } else {
      KindSuggestion tmp;
      if (Judge(user, a, &tmp)) ++s.suggested;
    }
  }
  return s;
}

std::string KindSuggester::Encode(const Account& a) {
  json schedules = json::array();
  for (const Schedule& s : a.schedules) {
    schedules.push_back(
        json::array({s.exe, s.runs, s.last_run_ns, s.last_exec_ns, s.n, s.mean, s.m2}));
  }
  json j = {{"v", 1},
            {"first_ns", a.first_ns},
            {"last_ns", a.last_ns},
            {"events", a.events},
            {"logins", a.logins},
            {"interactive", a.interactive},
            {"interactive_example", a.interactive_example},
            {"execs", a.execs},
            {"last_exec_ns", a.last_exec_ns},
            {"gaps", a.gaps},
            {"machine_gaps", a.machine_gaps},
            {"exes", a.exes},
            {"schedules", schedules},
            {"state", static_cast<int>(a.state)},
            {"decided_kind", static_cast<int>(a.decided_kind)},
            {"decided_by", a.decided_by},
            {"decided_ns", a.decided_ns}};
  const std::vector<uint8_t> bytes = json::to_msgpack(j);
  return std::string(bytes.begin(), bytes.end());
}

std::vector<std::pair<std::string, std::string>> KindSuggester::TakeDirty() {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(dirty_.size());
  for (const std::string& user : dirty_) {
    const auto it = accounts_.find(user);
    out.emplace_back(std::string(kKeyPrefix) + user,
                     it == accounts_.end() ? std::string() : Encode(it->second));
  }
  dirty_.clear();
  return out;
}

Status KindSuggester::Load(std::string_view key, std::string_view value) {
  const std::string where = "kind suggestion record " + std::string(key);
  if (key.substr(0, kKeyPrefix.size()) != kKeyPrefix || key.size() == kKeyPrefix.size()) {
    return Status::Corruption(where + ": not a kind suggestion key");
  }
  const json j = json::from_msgpack(value.begin(), value.end(), true, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(where + " is not MessagePack");
  for (const char* k : {"events", "logins", "interactive", "execs", "gaps", "machine_gaps"}) {
    if (!IsUInt(j, k)) return Status::Corruption(where + ": " + k + " is not a count");
  }
  for (const char* k : {"first_ns", "last_ns", "last_exec_ns", "decided_ns"}) {
    if (!IsInt(j, k)) return Status::Corruption(where + ": " + k + " is not a time");
  }
  if (!IsUInt(j, "state") || j["state"].get<uint64_t>() > 2 || !IsUInt(j, "decided_kind") ||
      (j["decided_kind"].get<uint64_t>() != 1 && j["decided_kind"].get<uint64_t>() != 2) ||
      !j.contains("decided_by") || !j["decided_by"].is_string() ||
      !j.contains("interactive_example") || !j["interactive_example"].is_string() ||
      !j.contains("exes") || !j["exes"].is_array() || !j.contains("schedules") ||
      !j["schedules"].is_array() || j["schedules"].size() > kTrackedExes) {
    return Status::Corruption(where + ": malformed");
  }
  Account a;
  a.first_ns = j["first_ns"].get<int64_t>();
  a.last_ns = j["last_ns"].get<int64_t>();
  a.events = j["events"].get<uint64_t>();
  a.logins = j["logins"].get<uint64_t>();
  a.interactive = j["interactive"].get<uint64_t>();
  a.interactive_example = j["interactive_example"].get<std::string>();
  a.execs = j["execs"].get<uint64_t>();
  a.last_exec_ns = j["last_exec_ns"].get<int64_t>();
  a.gaps = j["gaps"].get<uint64_t>();
  a.machine_gaps = j["machine_gaps"].get<uint64_t>();
  for (const json& e : j["exes"]) {
    if (!e.is_string()) return Status::Corruption(where + ": a program is not a string");
    a.exes.insert(e.get<std::string>());
  }
  for (const json& s : j["schedules"]) {
    if (!s.is_array() || s.size() != 7 || !s[0].is_string() || !s[1].is_number_unsigned() ||
        !s[2].is_number_integer() || !s[3].is_number_integer() || !s[4].is_number_unsigned() ||
        !s[5].is_number() || !s[6].is_number()) {
      return Status::Corruption(where + ": a schedule is malformed");
    }
    Schedule x;
    x.exe = s[0].get<std::string>();
    x.runs = s[1].get<uint64_t>();
    x.last_run_ns = s[2].get<int64_t>();
    x.last_exec_ns = s[3].get<int64_t>();
    x.n = s[4].get<uint64_t>();
    x.mean = s[5].get<double>();
    x.m2 = s[6].get<double>();
    if (!std::isfinite(x.mean) || !std::isfinite(x.m2) || x.m2 < 0) {
      return Status::Corruption(where + ": a schedule's statistics are not finite");
    }
    a.schedules.push_back(std::move(x));
  }
  a.state = static_cast<SuggestionState>(j["state"].get<uint64_t>());
  a.decided_kind = static_cast<IdentityKind>(j["decided_kind"].get<uint64_t>());
  a.decided_by = j["decided_by"].get<std::string>();
  a.decided_ns = j["decided_ns"].get<int64_t>();
  accounts_.insert_or_assign(std::string(key.substr(kKeyPrefix.size())), std::move(a));
  return Status::Ok();
}

}  // namespace tripline::baseline
