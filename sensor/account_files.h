// Parsers for the account databases in /etc: passwd, group and shadow.
//
// Pure functions over file text. A malformed line is skipped and described in `errors`
// ("/etc/passwd:7: expected 7 fields, got 5"), never dropped silently: posture reports
// these to the aggregator and the enricher logs them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tripline::sensor {

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string gecos;
  std::string home;
  std::string shell;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;  // supplementary members as listed
};

struct ShadowEntry {
  std::string name;
  std::string hash;              // "" no password, "!..."/"*" locked
  int64_t last_change_days = 0;  // days since the epoch; 0 = must change, -1 = unset
  int64_t max_days = -1;         // -1 when empty (no maximum)
};

// `source` names the file in error messages.
std::vector<PasswdEntry> ParsePasswd(std::string_view text, std::string_view source,
                                     std::vector<std::string>* errors);
std::vector<GroupEntry> ParseGroup(std::string_view text, std::string_view source,
                                   std::vector<std::string>* errors);
std::vector<ShadowEntry> ParseShadow(std::string_view text, std::string_view source,
                                     std::vector<std::string>* errors);

// True for a shell a person can log in with (not nologin, false, sync, halt, shutdown).
bool IsInteractiveShell(std::string_view shell);

}  // namespace tripline::sensor
