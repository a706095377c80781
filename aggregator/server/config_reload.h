// SIGHUP reload of the aggregator: what is re-read while it runs, registered in one place.
//
// On SIGHUP the aggregator parses its command line and configuration file again
// (ParseAggregatorArgs) and hands the result to every registered step (common/reload.h):
// all steps check their part first, and only when every one of them accepted it is
// anything swapped in. A file that does not parse, an identity rule without a pattern or
// a certificate that does not load is logged with the reason and changes nothing.
//
// Reloaded today: identity declarations ("identities"), the Sigma rules ("rules", from
// the directory the aggregator started with; a new rules_dir needs a restart) and the
// response approvers ("approvers") and the SIEM outputs ("outputs": the forward list,
// forward_ca_file, the token files and forward_max_backoff_ms; the outputs are remade on
// every reload, so renewed CA and token files are read). TLS files are not part of this:
// gRPC re-reads them every tls.reload_interval_s (common/tls_reload.h). Everything else
// (listen, data_dir, limits) takes effect at the next restart; a reload that changes it
// says so in a warning.
//
// To make a new part reloadable: give
// ReloadTargets a pointer to it and add one Register call in RegisterAggregatorReloads
// (config_reload.cc). Nothing else needs to change.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "aggregator/audit/posture_findings.h"
#include "aggregator/baseline/identity.h"
#include "aggregator/server/aggregator_settings.h"
#include "common/reload.h"
#include "common/status.h"

namespace tripline {

class CorrelationEngine;
namespace rules {
class RuleEngine;
}  // namespace rules
namespace response {
class ActionBook;
}  // namespace response
namespace audit {
class PostureAuditor;
}  // namespace audit
namespace forward {
class ForwardOutputs;
struct ForwarderOptions;
}  // namespace forward

using AggregatorReloads = ReloadRegistry<AggregatorSettings>;

// What the reload steps act on; a null member has no step.
struct ReloadTargets {
  CorrelationEngine* engine = nullptr;         // identities
  audit::PostureAuditor* auditor = nullptr;    // declared kinds, with the identities
  rules::RuleEngine* rules = nullptr;          // Sigma rules, re-read from their directory
  response::ActionBook* actions = nullptr;     // approvers
  forward::ForwardOutputs* outputs = nullptr;  // SIEM outputs
};

// The forwarder's options from the settings: this host's name, forward_ca_file, the token,
// forward_max_backoff_ms.
forward::ForwarderOptions ForwarderOptionsFromSettings(const AggregatorSettings& settings);

// The configuration's identity declarations, checked: kind "service" or "agent", at
// least one of user, exe, cgroup. InvalidArgument naming the rule otherwise.
Result<std::vector<baseline::IdentityRule>> IdentityRulesFromConfig(
    const v1::AggregatorConfig& config);

// Account -> declared kind ("service", "agent") for the privilege audit, from the checked
// identity rules (rules without a user pattern declare no account by name).
std::map<std::string, std::string, std::less<>> DeclaredKinds(
    const std::vector<baseline::IdentityRule>& rules);

// The rules that declare processes (by executable, or as MCP servers), for the privilege
// audit's process checks.
std::vector<audit::ProcessRule> DeclaredProcesses(const std::vector<baseline::IdentityRule>& rules);

// The configuration's response approvers, checked: no empty name, none twice.
// InvalidArgument naming the entry otherwise.
Result<std::vector<std::string>> ApproversFromConfig(const v1::AggregatorConfig& config);

// The one registration point of the aggregator's reloadable parts.
void RegisterAggregatorReloads(const ReloadTargets& targets, AggregatorReloads* reloads);

// Parses `args` again and runs every step of `reloads`. Logs what was reloaded, or the
// error and that nothing changed; warns about options that need a restart, comparing
// with `running` (updated to the new settings on success).
Status ReloadAggregator(const std::vector<std::string>& args, const AggregatorReloads& reloads,
                        AggregatorSettings* running);

}  // namespace tripline
