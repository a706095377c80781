// AccountNames: uid -> user name and gid -> group name, from /etc/passwd and /etc/group,
// re-read when either file changes.
//
// Why not getpwuid(3): NSS may call out to LDAP/sssd and block the event loop, and the
// daemon asks for a name on every event. The files are parsed once into hash maps; a change
// is noticed by stat(2) of both files, at most once per `recheck_interval_ns` so a busy
// event stream does not turn into a stat storm. (Accounts that exist only in a directory
// service are therefore not named; the numeric id is still on the event.)
//
// Threading: not thread-safe; owned and used by the event loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "sensor/host_files.h"

namespace tripline::sensor {

class AccountNames {
 public:
  // `files` must outlive this object.
  AccountNames(const HostFiles& files, int64_t recheck_interval_ns);

  // Re-reads the files when their version changed; `now_ns` is a monotonic time used only
  // to throttle the checks. Returns true when the tables were (re)loaded.
  bool Refresh(int64_t now_ns);

  // The name, or an empty string when the id has no entry.
  const std::string& UserName(uint32_t uid) const;
  const std::string& GroupName(uint32_t gid) const;

  // Problems found by the last load: malformed lines and unreadable files.
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void Load();

  const HostFiles& files_;
  const int64_t recheck_interval_ns_;
  bool loaded_ = false;
  int64_t last_check_ns_ = 0;
  FileVersion passwd_version_;
  FileVersion group_version_;
  std::unordered_map<uint32_t, std::string> users_;
  std::unordered_map<uint32_t, std::string> groups_;
  std::vector<std::string> errors_;
};

}  // namespace tripline::sensor
