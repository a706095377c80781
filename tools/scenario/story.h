// The stories Tripline must get right, played for real on a Lab: password logins with
// sshpass + ssh into real sshd, commands in the resulting login shells, and SSH hops from
// one host's session to the next.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/lab/lab.h"

namespace tripline::scenario {

// One hop of the chain: log in to `host` as `user`.
struct StoryHop {
  std::string host;
  lab::LabUser user;
};

// The seed story: `failures` wrong passwords for `victim` on `entry_host` from `attacker`,
// then the right one; in that session `entry_command` (a read of /etc/shadow by default),
// then SSH from the entry host over every hop in turn.
struct AttackStory {
  std::string attacker = "attacker";
  std::string entry_host = "hosta";
  lab::LabUser victim;
  int failures = 5;
  std::string wrong_password_prefix = "Summer202";
  std::string entry_command = "cat /etc/shadow > /dev/null 2>&1";
  std::vector<StoryHop> hops;
  // Run in the login shell on the last host before it prints its clock ("" none).
  std::string last_host_command;
};

struct StoryResult {
  int failed_logins = 0;     // attempts that were refused, as they should be
  int64_t started_ns = 0;    // wall clock before the first attempt
  int64_t last_hop_ns = 0;   // wall clock on the last host once its login shell ran
  std::string final_output;  // what the last host's shell printed
};

// Plays the story. Fails when a wrong password is accepted or a right one refused, or
// when the chain does not reach its last host.
Result<StoryResult> PlayAttack(lab::Lab& lab, const AttackStory& story);

// Daily work: `admin` logs in to `first` from `from` with the right password, runs a few
// harmless commands, and hops on to `second` (if not empty).
Status PlayBenignAdmin(lab::Lab& lab, const std::string& from, const lab::LabUser& admin,
                       const std::string& first, const std::string& second);

}  // namespace tripline::scenario
