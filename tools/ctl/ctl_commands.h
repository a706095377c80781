// triplinectl: talks to the aggregator's query service.
//
//   triplinectl --aggregator HOST:PORT [--ca F [--cert F --key F] [--server-name N]]
//               [--timeout 10s] SUBCOMMAND [flags]
//
// Flags are parsed by CLI11. Each subcommand group registers itself from its own file
// (tools/ctl/ctl_context.h); `triplinectl --help` and `triplinectl SUBCOMMAND --help` list
// them, docs/triplinectl.md describes them. Tables by default; --json prints one JSON array
// for lists (events, incidents) and one object for single things (stats, incident,
// baseline).
//
// Exit codes (ExitCode in ctl_context.h): 0 ok, 1 the aggregator answered with an error,
// 2 usage, 3 import: events rejected, 4 import: no line in the format, 5 not found,
// 6 the aggregator cannot be reached.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"

namespace CLI {
class App;
}

namespace tripline::ctl {

class CtlContext;

// The top-level help text.
std::string CtlUsage();
// Builds the whole command tree on `app`, flags bound into `ctx`.
void ConfigureCtl(CLI::App& app, CtlContext& ctx);
// args excludes the program name.
int RunCtl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           const Clock& clock = SystemClock::Get());

}  // namespace tripline::ctl
