#include "sensor/posture_collector.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "common/text_lines.h"
#include "model/posture_checks.h"
#include "sensor/account_files.h"
#include "sensor/sudoers_parser.h"

namespace tripline::sensor {
namespace {

constexpr size_t kMaxAccountFileBytes = 16 << 20;
constexpr size_t kMaxAuthorizedKeysBytes = 1 << 20;
// shadow(5): a maximum this large is how "never" is written in practice.
constexpr int64_t kNeverExpiresDays = 99999;

struct KeyCount {
  uint32_t keys = 0;
  uint32_t unrestricted = 0;  // keys without a from= option
};

// Whether the options field of an authorized_keys line (sshd(8), AUTHORIZED_KEYS FILE
// FORMAT: comma-separated, values in double quotes may hold commas and blanks, the field
// ends at the first blank outside quotes) holds from="...".
bool HasFromOption(std::string_view options) {
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i <= options.size(); ++i) {
    const bool end = i == options.size();
    if (!end && options[i] == '"') quoted = !quoted;
    if (end || (!quoted && options[i] == ',')) {
      std::string_view opt = options.substr(start, i - start);
      if (opt.size() > 5 && (opt[0] | 0x20) == 'f' && (opt[1] | 0x20) == 'r' &&
          (opt[2] | 0x20) == 'o' && (opt[3] | 0x20) == 'm' && opt[4] == '=') {
        return true;
      }
      start = i + 1;
    }
  }
  return false;
}

// Keys in an authorized_keys text: lines that are not blank or comments. A line that
// starts with a key type has no options; anything else starts with its options field.
KeyCount CountKeys(std::string_view text) {
  KeyCount n;
  ForEachLine(text, [&n](std::string_view line, size_t) {
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') return;
    ++n.keys;
    line.remove_prefix(first);
    for (std::string_view type : {"ssh-", "ecdsa-", "sk-"}) {
      if (line.substr(0, type.size()) == type) {
        ++n.unrestricted;
        return;
      }
    }
    bool quoted = false;
    size_t end = 0;
    while (end < line.size() && (quoted || (line[end] != ' ' && line[end] != '\t'))) {
      if (line[end] == '"') quoted = !quoted;
      ++end;
    }
    if (!HasFromOption(line.substr(0, end))) ++n.unrestricted;
  });
  return n;
}

bool RuleAppliesTo(const SudoRule& rule, const Account& account) {
  bool match = false;
  // sudo reads a user list left to right; the last entry that matches decides.
  for (const SudoPrincipal& p : rule.principals) {
    bool hit = false;
    switch (p.kind) {
      case SudoPrincipal::Kind::kAll: hit = true; break;
      case SudoPrincipal::Kind::kUser: hit = p.name == account.name; break;
      case SudoPrincipal::Kind::kUid: hit = p.name == std::to_string(account.uid); break;
      case SudoPrincipal::Kind::kGroup:
        hit =
            std::find(account.groups.begin(), account.groups.end(), p.name) != account.groups.end();
        break;
      case SudoPrincipal::Kind::kOther: break;
    }
    if (hit) match = !p.negated;
  }
  return match;
}

// A sensitive file and the directories above it, as stat(2) saw them.
struct SensitiveFile {
  std::string path;
  FileVersion file;
  std::vector<FileVersion> dirs;  // "/" first
};

// The files the sensitive path rules name on this host (see the header), at most `max`.
std::vector<SensitiveFile> SensitiveFiles(const HostFiles& files,
                                          const std::vector<SensitivePath>& rules, size_t max,
                                          std::vector<std::string>* errors) {
  std::set<std::string> paths;
  size_t beyond = 0;
  const auto add = [&](std::string path) {
    if (paths.size() < max) {
      paths.insert(std::move(path));
    } else if (paths.count(path) == 0) {
      ++beyond;
    }
  };
  for (const SensitivePath& r : rules) {
    if (r.path.empty() || r.path.front() != '/') continue;
    if (r.match == SensitivePath::Match::kExact) {
      add(r.path);
    } else if (r.match == SensitivePath::Match::kPrefix) {
      const size_t slash = r.path.rfind('/');
      const std::string dir = slash == 0 ? "/" : r.path.substr(0, slash);
      const std::string stem = r.path.substr(slash + 1);
      Result<std::vector<std::string>> names = files.ListDir(dir);
      if (!names.ok()) continue;  // not on this host
      for (const std::string& n : *names) {
        if (n.compare(0, stem.size(), stem) == 0) {
          add((dir == "/" ? "" : dir) + "/" + n);
        }
      }
    }
  }
  if (beyond > 0) {
    errors->push_back("sensitive files: " + std::to_string(beyond) + " beyond " +
                      std::to_string(max) + " not judged");
  }
  std::map<std::string, std::optional<FileVersion>> dir_cache;
  const auto stat_dir = [&](const std::string& d) -> std::optional<FileVersion> {
    auto [it, inserted] = dir_cache.try_emplace(d);
    if (inserted) {
      Result<FileVersion> v = files.Stat(d);
      if (v.ok()) it->second = *v;
    }
    return it->second;
  };
  std::vector<SensitiveFile> out;
  for (const std::string& path : paths) {
    Result<FileVersion> st = files.Stat(path);
    if (!st.ok() || !S_ISREG(st->mode)) continue;
    SensitiveFile f;
    f.path = path;
    f.file = *st;
    bool complete = true;
    for (size_t at = 0; at != std::string::npos && at < path.size(); at = path.find('/', at + 1)) {
      std::optional<FileVersion> d = stat_dir(at == 0 ? "/" : path.substr(0, at));
      if (!d) {
        complete = false;
        break;
      }
      f.dirs.push_back(*d);
    }
    if (complete) out.push_back(std::move(f));
  }
  return out;
}

// What `who` (an account but root, no capabilities) may read of `sensitive` as their owner
// or through one of `plain_gids` (its groups that are not root-equivalent), every directory
// above searchable to it.
std::vector<std::string> ReadableBy(const ProcessCredentials& who,
                                    const std::vector<uint32_t>& plain_gids,
                                    const std::vector<SensitiveFile>& sensitive) {
  std::vector<std::string> out;
  for (const SensitiveFile& f : sensitive) {
    if (!std::all_of(f.dirs.begin(), f.dirs.end(),
                     [&](const FileVersion& d) { return MaySearch(who, d.mode, d.uid, d.gid); })) {
      continue;
    }
    const bool as_owner = f.file.uid == who.uid && (f.file.mode & S_IRUSR) != 0;
    const bool as_group =
        f.file.uid != who.uid && (f.file.mode & S_IRGRP) != 0 &&
        std::find(plain_gids.begin(), plain_gids.end(), f.file.gid) != plain_gids.end();
    if (as_owner || as_group) out.push_back(f.path);
  }
  return out;
}

}  // namespace

PostureSnapshot PostureCollector::Collect() const { return Collect(nullptr, 0); }

PostureSnapshot PostureCollector::Collect(const Clock* clock, int64_t budget_ns) const {
  const int64_t deadline = clock != nullptr ? clock->MonotonicNs() + budget_ns : 0;
  size_t keys_skipped = 0;
  PostureSnapshot snap;
  std::vector<PasswdEntry> passwd;
  std::vector<GroupEntry> groups;
  std::vector<ShadowEntry> shadow;

  auto passwd_text = files_.ReadFile("/etc/passwd", kMaxAccountFileBytes);
  if (passwd_text.ok()) {
    passwd = ParsePasswd(*passwd_text, "/etc/passwd", &snap.errors);
  } else {
    snap.errors.push_back(passwd_text.status().ToString());
  }
  auto group_text = files_.ReadFile("/etc/group", kMaxAccountFileBytes);
  if (group_text.ok()) {
    groups = ParseGroup(*group_text, "/etc/group", &snap.errors);
  } else {
    snap.errors.push_back(group_text.status().ToString());
  }
  auto shadow_text = files_.ReadFile("/etc/shadow", kMaxAccountFileBytes);
  if (shadow_text.ok()) {
    shadow = ParseShadow(*shadow_text, "/etc/shadow", &snap.errors);
  } else {
    // Without root the sensor cannot read it; say so rather than report "no passwords".
    snap.errors.push_back(shadow_text.status().ToString());
  }
  SudoersPolicy sudo = ParseSudoers(files_, "/etc/sudoers");
  snap.errors.insert(snap.errors.end(), sudo.errors.begin(), sudo.errors.end());

  std::unordered_map<uint32_t, const GroupEntry*> group_by_gid;
  for (const GroupEntry& g : groups) group_by_gid.try_emplace(g.gid, &g);
  std::unordered_map<std::string, const ShadowEntry*> shadow_by_name;
  for (const ShadowEntry& s : shadow) shadow_by_name.try_emplace(s.name, &s);

  std::set<std::string> root_members;
  if (auto root = group_by_gid.find(0); root != group_by_gid.end()) {
    root_members.insert(root->second->members.begin(), root->second->members.end());
  }

  for (const PasswdEntry& pw : passwd) {
    Account a;
    a.name = pw.name;
    a.uid = pw.uid;
    a.gid = pw.gid;
    a.shell = pw.shell;
    a.home = pw.home;
    a.interactive_shell = IsInteractiveShell(pw.shell);
    if (auto g = group_by_gid.find(pw.gid); g != group_by_gid.end()) {
      a.groups.push_back(g->second->name);
    }
    for (const GroupEntry& g : groups) {
      if (g.gid == pw.gid) continue;
      if (std::find(g.members.begin(), g.members.end(), pw.name) != g.members.end() &&
          std::find(a.groups.begin(), a.groups.end(), g.name) == a.groups.end()) {
        a.groups.push_back(g.name);
      }
    }
    if (pw.gid == 0) root_members.insert(pw.name);

    if (auto s = shadow_by_name.find(pw.name); s != shadow_by_name.end()) {
      const std::string& hash = s->second->hash;
      a.password_locked = !hash.empty() && (hash[0] == '!' || hash[0] == '*');
      std::string_view usable = hash;
      while (!usable.empty() && usable.front() == '!') usable.remove_prefix(1);
      // "*" and "!" alone mean no password can ever match; "" means no password at all
      // (password_set false and not locked: the riskiest state, visible as such).
      a.password_set = !usable.empty() && usable != "*";
      a.max_password_age_days =
          (s->second->max_days < 0 || s->second->max_days >= kNeverExpiresDays)
              ? -1
              : s->second->max_days;
      a.last_password_change_days = s->second->last_change_days;
    }

    for (const SudoRule& rule : sudo.rules) {
      if (!RuleAppliesTo(rule, a)) continue;
      a.sudo_rules.push_back(rule.text + " (" + rule.source + ")");
      a.sudo_nopasswd = a.sudo_nopasswd || rule.nopasswd;
    }

    if (clock != nullptr && clock->MonotonicNs() >= deadline) {
      // Out of time: the accounts are still reported, their keys no longer read.
      ++keys_skipped;
    } else if (!pw.home.empty() && pw.home.front() == '/') {
      // The home directory and everything in it belong to the account: read as root,
      // nothing there is followed through a link or opened if it could block.
      for (const char* name : {".ssh/authorized_keys", ".ssh/authorized_keys2"}) {
        auto keys = files_.ReadAccountFile(pw.home, name, pw.uid, kMaxAuthorizedKeysBytes);
        if (keys.ok()) {
          const KeyCount n = CountKeys(*keys);
          a.authorized_keys += n.keys;
          a.authorized_keys_unrestricted += n.unrestricted;
        } else if (!keys.status().IsNotFound()) {
          snap.errors.push_back(keys.status().ToString());
        }
      }
    }
    snap.accounts.push_back(std::move(a));
  }
  if (keys_skipped > 0) {
    snap.errors.push_back("posture time budget of " + std::to_string(budget_ns / 1'000'000) +
                          " ms used up: authorized keys of " + std::to_string(keys_skipped) +
                          " accounts not counted");
  }
  snap.root_group_members.assign(root_members.begin(), root_members.end());
  if (!sensitive_.empty()) {
    const std::vector<SensitiveFile> sensitive =
        SensitiveFiles(files_, sensitive_, kMaxSensitiveFiles, &snap.errors);
    std::unordered_map<std::string, uint32_t> gid_by_name;
    for (const GroupEntry& g : groups) gid_by_name.try_emplace(g.name, g.gid);
    for (Account& a : snap.accounts) {
      if (a.uid == 0) continue;  // root reads everything; being root is not a finding
      // Every group of the account, and those that are not root-equivalent (a file read
      // through group shadow or adm is that group's finding and drift already).
      ProcessCredentials who;
      who.uid = a.uid;
      who.gid = a.gid;
      std::vector<uint32_t> plain_gids;
      for (const std::string& name : a.groups) {
        auto g = gid_by_name.find(name);
        if (g == gid_by_name.end()) continue;
        who.groups.push_back(g->second);
        if (!IsRootEquivalentGroup(name)) plain_gids.push_back(g->second);
      }
      a.readable_files = ReadableBy(who, plain_gids, sensitive);
    }
  }
  if (processes_) {
    std::map<uint32_t, std::string> names;
    for (const Account& a : snap.accounts) names.emplace(a.uid, a.name);
    // The kubelet's files on this node name each pod's service account.
    PodDirectory pods(files_);
    snap.processes = ScanProcessPrivileges(*processes_, names, &pods, &snap.errors);
  }
  return snap;
}

}  // namespace tripline::sensor
