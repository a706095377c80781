// triplinectl audit: the posture findings of the fleet (docs/audit.md).
#pragma once

#include <string>

#include "tools/ctl/ctl_context.h"

namespace tripline::ctl {

struct AuditArgs {
  std::string host;               // --host: one host only
  std::string identity;           // --identity: one account only
  bool include_resolved = false;  // --all: resolved findings too
  bool drift = false;             // --drift: the privilege drift instead of the findings
};

// Prints the findings (ctx.json for JSON); the exit code.
int RunAudit(CtlContext& ctx, const AuditArgs& args);

// audit
void RegisterAuditCommands(CLI::App& app, CtlContext& ctx);

}  // namespace tripline::ctl
