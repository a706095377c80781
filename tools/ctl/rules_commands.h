// triplinectl rules: the Sigma rules an aggregator runs, and a local test bench for rule
// authors (docs/sigma.md).
//
//   triplinectl --aggregator HOST:PORT rules [--json]
//       every rule with its state (loaded, unsupported, broken), why, and its hits
//   triplinectl rules test FILE --events JSONL [--json]
//       compiles FILE and runs it on recorded events (one JSON event a line, as
//       `tripline-sensor --output jsonl` and `triplinectl events --json` write them)
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace tripline::ctl {

// Runs the rules command when `args` (triplinectl's arguments) ask for it and returns its
// exit code (0 ok, 1 failed, 2 usage); nullopt when the command is another one.
std::optional<int> RunRulesCommand(const std::vector<std::string>& args, std::ostream& out,
                                   std::ostream& err);

}  // namespace tripline::ctl
