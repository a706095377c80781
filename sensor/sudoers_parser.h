// A deliberately partial sudoers(5) parser: enough to say who may run what as root, with
// or without a password, for the posture snapshot.
//
// Understood: comments, line continuation ("\"), `#include`/`@include` and
// `#includedir`/`@includedir` (followed, depth-limited, sudo's rule of skipping names that
// contain '.' or end in '~'), `User_Alias` (expanded recursively), user specifications
// "USERS HOSTS = (RUNAS) [TAGS:] COMMANDS [: HOSTS = ...]" where USERS lists names, %group,
// #uid, ALL, aliases and !negations, and the NOPASSWD/PASSWD tags.
// Recognised but not interpreted: `Defaults` lines (so `Defaults !authenticate`, which makes
// every rule password-less, is not reflected), Host_Alias, Runas_Alias and Cmnd_Alias (the
// rule text is reported as written), %:nonunix_group and +netgroup entries (kept as
// written, matched to no account). Anything else that does not parse is an error entry.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sensor/host_files.h"

namespace tripline::sensor {

// One principal of a rule's user list after alias expansion.
struct SudoPrincipal {
  enum class Kind { kUser, kGroup, kUid, kAll, kOther };
  Kind kind = Kind::kUser;
  std::string name;  // user, group (without '%'), uid digits, or the entry as written
  bool negated = false;
};

struct SudoRule {
  std::vector<SudoPrincipal> principals;
  std::string text;       // the whole specification, whitespace collapsed
  std::string source;     // "/etc/sudoers.d/ops:3"
  bool nopasswd = false;  // some command of the rule runs without a password
};

struct SudoersPolicy {
  std::vector<SudoRule> rules;
  std::vector<std::string> errors;
  // User_Alias definitions seen so far (sudo requires them before use), by name.
  std::map<std::string, std::vector<std::string>> user_aliases;
};

// Parses `path` (normally /etc/sudoers) and everything it includes.
SudoersPolicy ParseSudoers(const HostFiles& files, const std::string& path);

// Parses one file's text; includes are followed through `files` (may be null: then include
// lines are reported as errors). For tests and for ParseSudoers.
void ParseSudoersText(std::string_view text, const std::string& source, const HostFiles* files,
                      int depth, SudoersPolicy* policy);

}  // namespace tripline::sensor
