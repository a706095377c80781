// triplinectl: talks to the aggregator's query service.
//
//   triplinectl --aggregator HOST:PORT [--ca F [--cert F --key F] [--server-name N]]
//               [--timeout 10s] SUBCOMMAND [flags]
//
// Subcommands: events, stats, incidents, incident ID, baseline IDENTITY, feedback INCIDENT
// benign|expected, import FILE (CtlUsage() has the flags). Tables by default; --json prints
// one JSON array for lists (events, incidents) and one object for single things (stats,
// incident, baseline).
//
// Exit codes: 0 success, 1 the RPC failed (the message names the gRPC status), 2 usage;
// import also 3 (events rejected) and 4 (no line in the format), see CtlUsage().
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"

namespace tripline::ctl {

std::string CtlUsage();
// args excludes the program name.
int RunCtl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           const Clock& clock = SystemClock::Get());

}  // namespace tripline::ctl
