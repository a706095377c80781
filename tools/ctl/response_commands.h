// triplinectl actions, propose, approve, deny, revert, trail: the response workflow
// (docs/response.md).
//
// Exit codes as the rest of triplinectl (refusals, PERMISSION_DENIED or ABORTED for an
// action in the wrong state, are kExitServerError).
#pragma once

#include <string>

#include "tools/ctl/ctl_context.h"

namespace tripline::ctl {

struct ActionsArgs {
  std::string state;     // --state proposed|approved|...; "" for all
  std::string incident;  // --incident ID
};
struct ProposeArgs {
  std::string kind;    // lock|end-sessions|block|isolate
  std::string target;  // HOST/USER, HOST/ADDRESS or HOST
  std::string by, reason, incident;
  std::string duration;  // --duration 30m; "" for the aggregator's default
};
struct DecideArgs {
  std::string action;
  std::string by;      // --by NAME
  std::string reason;  // deny --reason, approve --comment
};
struct TrailArgs {
  std::string action;  // "" for every action
  uint32_t limit = 0;
};

int RunActions(CtlContext& ctx, const ActionsArgs& a);
int RunPropose(CtlContext& ctx, const ProposeArgs& a);
// `verb`: "approve", "deny" or "revert".
int RunDecide(CtlContext& ctx, const std::string& verb, const DecideArgs& a);
int RunTrail(CtlContext& ctx, const TrailArgs& a);

// actions, propose, approve, deny, revert, trail
void RegisterResponseCommands(CLI::App& app, CtlContext& ctx);

}  // namespace tripline::ctl
