// The prefilter's view of the sensitive-path table: which names make an open worth matching.
//
// The kernel checks an open's own name and the names of its ancestors at chosen depths
// against these triggers before it rebuilds the path (bpf/lib/path_filter.h). Each trigger is
// a necessary condition of some rule, so an open that hits none cannot match any rule:
//   exact "/etc/shadow"         -> the file is named "shadow"
//   suffix "/authorized_keys"   -> the file is named "authorized_keys"
//   prefix "/etc/pam.d/"        -> the ancestor at depth 2 is named "pam.d"
//   prefix "/etc/ssh/ssh_host_" -> the ancestor at depth 2 is named "ssh"
// A rule that implies no such name (a suffix without '/', a prefix ending inside the first
// component such as "/et") turns the prefilter off: every open is then matched in full.
// Rules that cannot match a canonical path at all (not starting with '/') give no trigger.
#ifndef TRIPLINE_SENSOR_PATH_TRIGGERS_H_
#define TRIPLINE_SENSOR_PATH_TRIGGERS_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sensor/record_decoder.h"

namespace tripline::sensor {

struct NameTrigger {
  uint32_t depth = 0;  // 0: the file's own name; d > 0: its ancestor d components below "/"
  std::string name;

  friend bool operator==(const NameTrigger&, const NameTrigger&) = default;
};

struct PathTriggers {
  bool match_all = false;             // the prefilter is off
  std::string why_all;                // the rule that turned it off, for the log
  uint32_t depth_mask = 0;            // bit d: some trigger at depth d > 0
  uint64_t file_len_mask = 0;         // bit min(length, 63): some depth-0 trigger has that length
  uint64_t dir_len_mask = 0;          // the same for triggers at depth > 0
  std::vector<NameTrigger> triggers;  // without duplicates, in rule order
};

// Deepest directory a trigger may name (bits of depth_mask).
inline constexpr uint32_t kMaxTriggerDepth = 31;

PathTriggers CompilePathTriggers(std::span<const SensitivePath> rules);

}  // namespace tripline::sensor

#endif  // TRIPLINE_SENSOR_PATH_TRIGGERS_H_
