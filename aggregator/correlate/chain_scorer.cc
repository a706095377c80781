#include "aggregator/correlate/chain_scorer.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "aggregator/correlate/attack_stages.h"
#include "common/clock.h"

namespace tripline::correlate {
namespace {

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// "alice", "alice and bob", "alice, bob and carol".
std::string JoinAnd(const std::vector<std::string>& parts) {
  if (parts.size() <= 1) return Join(parts, "");
  std::vector<std::string> head(parts.begin(), parts.end() - 1);
  return Join(head, ", ") + " and " + parts.back();
}

bool HasFile(const Chain& c, std::string_view technique) {
  return std::any_of(c.files.begin(), c.files.end(),
                     [&](const FileFinding& f) { return f.technique == technique; });
}

bool CredentialAttack(const Chain& c) { return c.brute_force || c.spraying || c.stuffing; }

std::string FormatConfidence(double c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", c);
  return buf;
}

std::string MovementPath(const Chain& c) { return Join(c.hosts, " → "); }

std::string FileSentence(const FileFinding& f) {
  std::string who = f.user.empty() ? "A process" : f.user;
  std::string with = f.process.empty() ? "" : " with " + f.process;
  if (f.technique == kShadowDump) {
    return f.succeeded
               ? who + " read " + f.path + " on " + f.host + with +
                     ": the password hashes of every local account."
               : who + " tried to read " + f.path + " on " + f.host + with + " and was denied.";
  }
  if (f.technique == kPrivateKeys) {
    return who + " read the SSH private key " + f.path + " on " + f.host + with +
           (f.succeeded ? "." : " (the open failed).");
  }
  return who + " opened " + f.path + " on " + f.host + " for writing" + with +
         ": a key added there lets the intruder back in without a password.";
}

// Points of one Sigma rule hit by the rule's level.
double RuleLevelPoints(const std::string& level) {
  if (level == "critical") return 35;
  if (level == "high") return 25;
  if (level == "medium") return 15;
  if (level == "low") return 5;
  return 0;
}

std::string RuleSentence(const RuleFinding& r) {
  std::string who = r.user.empty() ? "a process" : r.user;
  return "Sigma rule \"" + r.title + "\" (" + (r.level.empty() ? "no level" : r.level) + ", " +
         r.rule_id + ") matched on " + r.host + " as " + who + " at " + TimeOfDay(r.at_ns) + ": " +
         r.what + ".";
}

}  // namespace

std::string TimeOfDay(int64_t ns) {
  std::string t = FormatTimeNs(ns);  // 2026-11-25T03:41:07.123Z
  return t.size() >= 19 ? t.substr(11, 8) + " UTC" : t;
}

Severity SeverityForScore(double score) {
  if (score < 20) return Severity::kInfo;
  if (score < 40) return Severity::kLow;
  if (score < 60) return Severity::kMedium;
  if (score < 80) return Severity::kHigh;
  return Severity::kCritical;
}

// What a hook family lets Tripline see, for explanations.
std::string HookFamilySees(const std::string& family) {
  if (family == "file") return "sensitive file opens";
  if (family == "exec") return "process executions";
  if (family == "net") return "network connections (SSH hops)";
  if (family == "io_uring") return "opens and connections made through io_uring";
  if (family == "login-utmp") return "logins recorded in utmp (btmp, wtmp)";
  if (family == "login-pam") return "PAM logins";
  return "the " + family + " events";
}

Assessment AssessChain(const Chain& c, const std::vector<HostDataGap>& gaps,
                       const Standing& standing) {
  Assessment a;
  std::set<std::string> techniques;
  bool raising = false;
  const ChainBaseline& b = c.baseline;
  a.typo = c.success_after_failures && !c.spraying && !c.stuffing &&
           c.failures_before_success < kBruteForceRaiseFailures &&
           c.failures < kBruteForceRaiseFailures && b.warm && b.entry_usual &&
           b.login < kBaselineTypoLogin;
  if (c.brute_force) {
    // Three or four failures are a person's old password as often as a guess; from five on
    // (sshd's MaxAuthTries is six) a source that gets nowhere is raised on its own, low.
    // Followed by a login the warm baseline finds ordinary, they are a typo: not raising.
    a.score += c.failures >= kBruteForceRaiseFailures ? 20 : 15;
    techniques.emplace(kBruteForce);
    if (!a.typo) raising = true;
  }
  if (c.spraying) {
    a.score += 20;
    techniques.emplace(kPasswordSpraying);
    raising = true;
  }
  if (c.stuffing) {
    a.score += 20;
    techniques.emplace(kCredentialStuffing);
    raising = true;
  }
  if (a.typo) {
    // The owner's network, hour and host: the old password, not a guess.
    a.score += 5;
    techniques.emplace(kValidAccounts);
  } else if (c.success_after_failures) {
    a.score += 25;
    techniques.emplace(kValidAccounts);
    raising = true;
  } else if (b.warm && b.login >= kBaselineLoginRaise) {
    // A valid account used the way its owner never does: a stage even without failures.
    a.score += 20 + 30 * b.login;
    techniques.emplace(kValidAccounts);
    raising = true;
  } else if (b.warm && b.login >= kBaselineUnusualLogin) {
    a.score += 20 * b.login;
    techniques.emplace(kValidAccounts);
  } else if (c.new_source_login && !b.warm) {
    a.score += 5;
    techniques.emplace(kValidAccounts);
  }
  bool shadow_read = false, shadow_tried = false;
  for (const FileFinding& f : c.files) {
    if (f.technique == kShadowDump) (f.succeeded ? shadow_read : shadow_tried) = true;
  }
  if (shadow_read || shadow_tried) {
    a.score += shadow_read ? 30 : 20;
    techniques.emplace(kShadowDump);
    raising = true;
  }
  if (HasFile(c, kPrivateKeys)) {
    a.score += 25;
    techniques.emplace(kPrivateKeys);
    raising = true;
  }
  if (HasFile(c, kAuthorizedKeys)) {
    a.score += 30;
    techniques.emplace(kAuthorizedKeys);
    raising = true;
  }
  if (!c.discovery.empty()) {
    a.score += 10;
    techniques.emplace(kDiscovery);
  }
  double rule_points = 0;
  for (const RuleFinding& r : c.rules) {
    rule_points += RuleLevelPoints(r.level);
    raising = raising || RuleLevelPoints(r.level) >= 15;
    techniques.insert(r.techniques.begin(), r.techniques.end());
  }
  a.score += std::min(45.0, rule_points);
  if (!c.hops.empty()) {
    if (b.scored_hops == 0) {
      a.score += std::min<double>(30, 10.0 * static_cast<double>(c.hops.size()));
    } else {
      const size_t unjudged = c.hops.size() > b.scored_hops ? c.hops.size() - b.scored_hops : 0;
      a.score += std::min<double>(40, 10.0 * static_cast<double>(unjudged) +
                                          5.0 * static_cast<double>(b.scored_hops) + 20.0 * b.hops);
    }
    if (b.hops >= kBaselineQuietHops) {
      // Quiet hops by a valid account that no rule catches, each far from its habits.
      raising = true;
      techniques.emplace(kValidAccounts);
    }
    techniques.emplace(kSshHop);
    // Mean gap between consecutive logins along the chain: people pause to look around,
    // scripted intruders and worms chain hops within seconds.
    int64_t last_hop = 0;
    for (const Hop& h : c.hops) last_hop = std::max(last_hop, h.at_ns);
    int64_t start = c.first_login_ns > 0 ? c.first_login_ns : c.hops.front().at_ns;
    a.movement_ns = std::max<int64_t>(0, last_hop - start);
    if (a.movement_ns / static_cast<int64_t>(c.hops.size()) <= kFastHopGapNs) {
      a.fast_movement = true;
      a.score += 10;
    }
    if (c.success_after_failures && !a.typo) a.score += 15;
  }
  if (!c.privileged.empty()) a.score += 10;
  if (b.activity >= kBaselineNotable) a.score += 10;
  if (b.stages >= kBaselineChainStages && b.chain >= kBaselineChainRaise) {
    // Several things the account never does, in one chain: each alone has an innocent
    // reading, together they are someone else at the keyboard.
    a.corroborated = true;
    a.score += 10;
    techniques.emplace(kValidAccounts);
    raising = true;
  }

  a.techniques.assign(techniques.begin(), techniques.end());
  if (!standing.on_probation.empty() && ProbationAnomaly(b)) {
    // An agent on probation: what its baselines find unusual is worth a person's look.
    a.probation_anomaly = !raising;
    raising = true;
  }
  a.scored_severity = SeverityForScore(a.score);
  a.severity = a.scored_severity;
  const auto one_up = [&a](bool* flag) {
    if (a.severity == Severity::kCritical) return;
    a.severity = static_cast<Severity>(static_cast<uint8_t>(a.severity) + 1);
    *flag = true;
  };
  if (!standing.risks.empty()) one_up(&a.posture_raised);
  if (!standing.on_probation.empty()) one_up(&a.probation_raised);
  a.raise = (raising && a.score >= kRaiseScore) || a.score >= kRaiseScoreMovementOnly;
  for (const HostDataGap& g : gaps) {
    if (g.drops > 0) a.confidence *= g.drops >= 1000 ? 0.5 : 0.75;
    // A family that sees nothing hides whole stages; a fallback misses some cases.
    bool disabled = false;
    for (const HookFamilyStatus& f : g.blind) disabled = disabled || f.state == "disabled";
    if (!g.blind.empty()) a.confidence *= disabled ? 0.6 : 0.9;
  }
  a.confidence = std::max(0.1, a.confidence);
  return a;
}

bool ProbationAnomaly(const ChainBaseline& b) {
  return (b.warm && b.login >= kBaselineUnusualLogin) || b.activity >= kBaselineNotable ||
         b.hops >= kBaselineNotable;
}

std::vector<Stage> Stages(const Chain& c, const Assessment& a) {
  std::vector<Stage> out;
  const std::string entry = c.hosts.empty() ? "" : c.hosts.front();
  if (c.brute_force || c.spraying || c.stuffing) {
    const std::string_view t = c.spraying   ? kPasswordSpraying
                               : c.stuffing ? kCredentialStuffing
                                            : kBruteForce;
    out.push_back({c.failure_host.empty() ? entry : c.failure_host, std::string(t),
                   std::to_string(c.failures) + " failed logins" +
                       (c.failure_source.empty() ? "" : " from " + c.failure_source),
                   c.first_ns});
  }
  const bool valid_account =
      std::find(a.techniques.begin(), a.techniques.end(), kValidAccounts) != a.techniques.end();
  if (valid_account && (c.compromise_ns != 0 || c.first_login_ns != 0)) {
    const std::string user = !c.compromised_user.empty() ? c.compromised_user
                             : c.users.empty()           ? ""
                                                         : c.users.front();
    out.push_back({c.compromised_host.empty() ? entry : c.compromised_host,
                   std::string(kValidAccounts), "logged in as " + user,
                   c.compromise_ns != 0 ? c.compromise_ns : c.first_login_ns});
  }
  for (const FileFinding& f : c.files) {
    const std::string verb = f.technique == kAuthorizedKeys
                                 ? (f.succeeded ? "wrote " : "tried to write ")
                                 : (f.succeeded ? "read " : "tried to read ");
    out.push_back({f.host, f.technique,
                   verb + f.path + (f.process.empty() ? "" : " (" + f.process + ")"), f.at_ns});
  }
  for (const RuleFinding& r : c.rules) {
    out.push_back(
        {r.host, r.techniques.empty() ? "" : r.techniques.front(), "Sigma: " + r.title, r.at_ns});
  }
  for (const Hop& h : c.hops) {
    out.push_back({h.to, std::string(kSshHop), "hop from " + h.from + " as " + h.user, h.at_ns});
  }
  for (const std::string& d : c.discovery) {  // "user@host"
    const size_t at = d.rfind('@');
    out.push_back({at == std::string::npos ? d : d.substr(at + 1), std::string(kDiscovery),
                   "looked around as " + (at == std::string::npos ? d : d.substr(0, at)), 0});
  }
  // By time; the untimed ones (discovery) after the rest.
  std::stable_sort(out.begin(), out.end(), [](const Stage& x, const Stage& y) {
    const int64_t tx = x.at_ns == 0 ? INT64_MAX : x.at_ns;
    const int64_t ty = y.at_ns == 0 ? INT64_MAX : y.at_ns;
    return tx < ty;
  });
  if (out.size() > kMaxStages) out.resize(kMaxStages);
  return out;
}

Incident BuildIncident(const Chain& c, const Assessment& a, const std::vector<HostDataGap>& gaps,
                       const Standing& standing) {
  Incident in;
  in.id = c.incident_id;
  in.severity = a.severity;
  in.score = a.score;
  in.confidence = a.confidence;
  in.techniques = a.techniques;
  in.hosts = c.hosts;
  in.first_seen_ns = c.first_ns;
  in.last_seen_ns = c.last_ns;
  in.chain = c.hops;
  std::sort(in.chain.begin(), in.chain.end(),
            [](const Hop& x, const Hop& y) { return x.at_ns < y.at_ns; });
  in.events = c.events;
  // Evidence is usually collected in time order already; the check is much cheaper than the
  // sort's buffer, and this runs every time a raised chain changes.
  const auto by_time = [](const EventRef& x, const EventRef& y) { return x.time_ns < y.time_ns; };
  if (!std::is_sorted(in.events.begin(), in.events.end(), by_time)) {
    std::stable_sort(in.events.begin(), in.events.end(), by_time);
  }

  for (const std::string& u : c.users) in.identities.push_back("user:" + u);
  for (const std::string& h : c.hosts) in.identities.push_back("host:" + h);
  for (const std::string& s : c.sources) in.identities.push_back("source:" + s);

  // Title: what happened to whom, then where it went.
  std::vector<std::string> how;
  if (c.brute_force) how.emplace_back("brute-forced");
  if (c.spraying) how.emplace_back("password-sprayed");
  if (c.stuffing) how.emplace_back("credential-stuffed");
  std::string moving = c.hops.empty() ? "" : "moving laterally " + MovementPath(c);
  std::string first_user = c.users.empty() ? "unknown" : c.users.front();
  if (c.success_after_failures) {
    std::string user = c.compromised_user.empty() ? first_user : c.compromised_user;
    if (how.empty()) how.emplace_back("logged in after failed passwords");
    if (!moving.empty()) how.push_back(moving);
    in.title = "Account " + user + " compromised: " + Join(how, ", ");
  } else if (CredentialAttack(c) && c.members.empty()) {
    std::string target = c.sprayed_accounts > 1 ? std::to_string(c.sprayed_accounts) + " accounts"
                                                : "account " + c.failure_user;
    std::string kind = c.spraying   ? "Password spraying"
                       : c.stuffing ? "Credential stuffing"
                                    : "Brute force";
    in.title = kind + " from " + c.failure_source + " against " + target +
               (c.failure_host.empty() ? "" : " on " + c.failure_host);
  } else {
    std::vector<std::string> what = how;
    if (HasFile(c, kShadowDump)) what.emplace_back("read password hashes");
    if (HasFile(c, kPrivateKeys)) what.emplace_back("took SSH private keys");
    if (HasFile(c, kAuthorizedKeys)) what.emplace_back("planted an SSH key");
    if (c.baseline.warm && c.baseline.login >= kBaselineLoginRaise) {
      what.emplace_back("logged in unlike ever before");
    }
    if (c.baseline.hops >= kBaselineQuietHops) what.emplace_back("hopped where it never goes");
    if (a.corroborated && !(c.baseline.warm && c.baseline.login >= kBaselineLoginRaise) &&
        c.baseline.hops < kBaselineQuietHops) {
      what.emplace_back("acted unlike its habits");
    }
    if (!c.discovery.empty()) what.emplace_back("explored the system");
    for (const RuleFinding& r : c.rules) {
      if (RuleLevelPoints(r.level) >= 15) what.push_back("matched \"" + r.title + "\"");
    }
    if (!moving.empty()) what.push_back(moving);
    std::string where = c.hosts.empty() ? "" : " on " + c.hosts.front();
    in.title = "Suspicious activity by " + first_user + where +
               (what.empty() ? "" : ": " + Join(what, ", "));
  }

  // Explanation: the story in order, then what is uncertain, then what to do.
  std::vector<std::string>& ex = in.explanation;
  if (c.spraying || c.stuffing) {
    std::string pattern = c.spraying
                              ? "going round the accounts again and again (password spraying)"
                              : "each once or twice (credential stuffing)";
    ex.push_back(c.failure_source + " tried " + std::to_string(c.sprayed_accounts) + " accounts" +
                 (c.failure_host.empty() ? "" : " on " + c.failure_host) + ", " + pattern + ".");
  }
  bool compromise_told = false;
  if (c.brute_force && !c.failure_user.empty()) {
    std::string s = c.failure_user + " failed " + std::to_string(c.failures) + " passwords from " +
                    c.failure_source + " on " + c.failure_host;
    if (c.success_after_failures && c.compromised_user == c.failure_user &&
        c.compromised_host == c.failure_host) {
      s += ", then logged in from the same address at " + TimeOfDay(c.compromise_ns);
      compromise_told = true;
    }
    ex.push_back(s + ".");
  }
  if (c.success_after_failures && !compromise_told) {
    ex.push_back(c.compromised_user + " then logged in on " + c.compromised_host + " from " +
                 c.failure_source + " at " + TimeOfDay(c.compromise_ns) + " after " +
                 std::to_string(c.failures_before_success) + " failed passwords.");
  }
  if (!c.baseline.facts.empty()) {
    char score[16];
    std::snprintf(score, sizeof score, "%.2f",
                  std::max({c.baseline.login, c.baseline.activity, c.baseline.chain,
                            c.baseline.hops / std::max<double>(1, c.baseline.scored_hops)}));
    std::vector<std::string> facts;
    for (const BaselineFact& f : c.baseline.facts) facts.push_back(f.sentence);
    std::string s = Join(facts, "; ");
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    ex.push_back(s + " (learned baseline, anomaly " + score + ").");
  } else if (!c.success_after_failures && c.new_source_login && !c.new_source_detail.empty()) {
    ex.push_back("First login of " + c.new_source_detail + ".");
  }
  for (const FileFinding& f : c.files) ex.push_back(FileSentence(f));
  for (const RuleFinding& r : c.rules) ex.push_back(RuleSentence(r));
  if (!c.discovery.empty()) {
    ex.push_back("A burst of discovery commands (ls, id, uname, ps, ...) ran as " +
                 JoinAnd(c.discovery) + ".");
  }
  if (!c.hops.empty()) {
    std::string s = "Then moved " + MovementPath(c) + " over SSH";
    if (c.first_login_ns > 0) {
      s += ", the last hop " + FormatDurationNs(a.movement_ns) + " after the first login";
    }
    std::vector<std::string> changes;
    for (const Hop& h : in.chain) {
      if (!h.from_user.empty() && h.user != h.from_user) {
        changes.push_back(h.from_user + " on " + h.from + " logged in as " + h.user + " on " +
                          h.to);
      }
    }
    if (!changes.empty()) s += " (" + Join(changes, "; ") + ")";
    if (a.fast_movement) s += ", faster than a person usually works";
    ex.push_back(s + ".");
  }
  if (!c.privileged.empty()) {
    ex.push_back("Privileged access in the chain: " + JoinAnd(c.privileged) +
                 ", with full control of " +
                 (c.privileged.size() > 1 ? "those hosts." : "that host."));
  }
  for (const IdentityRisk& r : standing.risks) {
    std::vector<std::string> what = r.root_powers;
    if (r.never_expires) what.emplace_back("has a password that never expires");
    const std::string who = r.kind == "agent"     ? "agent account "
                            : r.kind == "service" ? "service account "
                                                  : "account ";
    if (!what.empty()) {
      ex.push_back("The " + who + r.user + " on " + r.host + " " + JoinAnd(what) +
                   " (privilege audit): whoever holds it " +
                   (r.root_powers.empty() ? "keeps its password for good"
                    : r.never_expires     ? "holds root's power for good"
                                          : "holds root's power") +
                   ".");
    }
    if (!r.unused.empty()) {
      const int64_t days = r.watched_ns / (86400 * kNanosPerSecond);
      ex.push_back("The " + who + r.user + " on " + r.host + " holds " + JoinAnd(r.unused) +
                   " and never used " + (r.unused.size() == 1 ? "it" : "them") + " in the " +
                   std::to_string(days) + (days == 1 ? " day" : " days") +
                   " it was watched (privilege drift): privileges nobody needs are what an "
                   "intruder in that account uses.");
    }
  }
  for (const std::string& agent : standing.on_probation) {
    ex.push_back("The agent " + agent +
                 " is on probation: its anomalies count one level more until a person "
                 "promotes it (triplinectl trust promote " +
                 agent + ")" +
                 (a.probation_anomaly ? ", and what its baselines found unusual is raised "
                                        "as an incident on its own"
                                      : "") +
                 ".");
  }
  if (a.posture_raised || a.probation_raised) {
    std::vector<std::string> why;
    if (a.posture_raised) why.emplace_back("one level for those standing privileges");
    if (a.probation_raised) why.emplace_back("one for an agent on probation");
    ex.push_back("Severity raised from " + std::string(SeverityName(a.scored_severity)) + " to " +
                 std::string(SeverityName(a.severity)) + ": " + JoinAnd(why) + ".");
  }
  for (const HostDataGap& g : gaps) {
    if (g.drops > 0) {
      ex.push_back(g.host + "'s sensor reported " + std::to_string(g.drops) +
                   " dropped events while this chain was active, so parts of the chain on " +
                   g.host + " may be missing (confidence " + FormatConfidence(a.confidence) + ").");
    }
    std::vector<std::string> unseen, unseen_why, partly, partly_hooks;
    for (const HookFamilyStatus& f : g.blind) {
      if (f.state == "disabled") {
        unseen.push_back(HookFamilySees(f.name));
        unseen_why.push_back(f.name + ": " + f.reason);
      } else {
        partly.push_back(HookFamilySees(f.name));
        if (std::find(partly_hooks.begin(), partly_hooks.end(), f.hooks) == partly_hooks.end()) {
          partly_hooks.push_back(f.hooks);
        }
      }
    }
    if (!unseen.empty()) {
      ex.push_back("Tripline cannot see " + JoinAnd(unseen) + " on " + g.host +
                   ", whose sensor has those hooks disabled (" + Join(unseen_why, "; ") +
                   "), so such steps of the chain there would be missing (confidence " +
                   FormatConfidence(a.confidence) + ").");
    }
    if (!partly.empty()) {
      ex.push_back("On " + g.host + " the sensor sees " + JoinAnd(partly) +
                   " through fallback hooks (" + Join(partly_hooks, ", ") +
                   ") that can miss some of them (confidence " + FormatConfidence(a.confidence) +
                   ").");
    }
  }
  std::vector<std::string> act;
  std::vector<std::string> lock;
  for (const std::string& u : c.users) {
    if (u != "root") lock.push_back(u);
  }
  if (!lock.empty()) act.push_back("lock " + JoinAnd(lock));
  if (lock.size() != c.users.size()) act.emplace_back("refuse SSH logins as root");
  if (!c.hosts.empty()) act.push_back("end the chain's sessions on " + JoinAnd(c.hosts));
  if (HasFile(c, kAuthorizedKeys)) act.emplace_back("remove keys added to authorized_keys");
  if (HasFile(c, kShadowDump)) act.emplace_back("rotate the passwords stored on those hosts");
  if (HasFile(c, kPrivateKeys)) act.emplace_back("revoke the SSH keys that were read");
  if (!c.sources.empty()) act.push_back("block " + JoinAnd(c.sources));
  if (!act.empty()) {
    std::string s = JoinAnd(act);
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    ex.push_back(s + ".");
  }
  in.stages = Stages(c, a);
  return in;
}

}  // namespace tripline::correlate
