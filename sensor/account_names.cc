#include "sensor/account_names.h"

#include "sensor/account_files.h"

namespace tripline::sensor {
namespace {

constexpr size_t kMaxAccountFileBytes = 16 << 20;
const std::string kEmpty;

FileVersion VersionOf(const HostFiles& files, const char* path) {
  auto v = files.Stat(path);
  // A missing file has version {} and is reloaded (as empty) once it appears.
  return v.ok() ? *v : FileVersion{};
}

}  // namespace

AccountNames::AccountNames(const HostFiles& files, int64_t recheck_interval_ns)
    : files_(files), recheck_interval_ns_(recheck_interval_ns) {}

bool AccountNames::Refresh(int64_t now_ns) {
  if (loaded_ && now_ns - last_check_ns_ < recheck_interval_ns_) return false;
  last_check_ns_ = now_ns;
  FileVersion passwd = VersionOf(files_, "/etc/passwd");
  FileVersion group = VersionOf(files_, "/etc/group");
  if (loaded_ && passwd == passwd_version_ && group == group_version_) return false;
  passwd_version_ = passwd;
  group_version_ = group;
  Load();
  loaded_ = true;
  return true;
}

void AccountNames::Load() {
  errors_.clear();
  users_.clear();
  groups_.clear();
  auto passwd = files_.ReadFile("/etc/passwd", kMaxAccountFileBytes);
  if (passwd.ok()) {
    for (auto& e : ParsePasswd(*passwd, "/etc/passwd", &errors_)) {
      // The first entry for a uid wins, as getpwuid(3) returns it.
      users_.try_emplace(e.uid, std::move(e.name));
    }
  } else {
    errors_.push_back(passwd.status().ToString());
  }
  auto group = files_.ReadFile("/etc/group", kMaxAccountFileBytes);
  if (group.ok()) {
    for (auto& e : ParseGroup(*group, "/etc/group", &errors_)) {
      groups_.try_emplace(e.gid, std::move(e.name));
    }
  } else {
    errors_.push_back(group.status().ToString());
  }
}

const std::string& AccountNames::UserName(uint32_t uid) const {
  auto it = users_.find(uid);
  return it == users_.end() ? kEmpty : it->second;
}

const std::string& AccountNames::GroupName(uint32_t gid) const {
  auto it = groups_.find(gid);
  return it == groups_.end() ? kEmpty : it->second;
}

}  // namespace tripline::sensor
