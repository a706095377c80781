#include "aggregator/server/config_reload.h"

#include <unistd.h>

#include <algorithm>

#include "aggregator/audit/posture_auditor.h"
#include "aggregator/forward/forward_outputs.h"
#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/response/action_book.h"
#include "aggregator/rules/sigma.h"
#include "common/log.h"

namespace tripline {

Result<std::vector<baseline::IdentityRule>> IdentityRulesFromConfig(
    const v1::AggregatorConfig& config) {
  std::vector<baseline::IdentityRule> rules;
  for (int i = 0; i < config.identities_size(); ++i) {
    const v1::IdentityRule& rule = config.identities(i);
    const std::string where = "identities[" + std::to_string(i) + "]";
    baseline::IdentityRule r;
    if (!baseline::ParseKind(rule.kind(), &r.kind) || r.kind == baseline::IdentityKind::kHost ||
        r.kind == baseline::IdentityKind::kHuman) {
      return Status::InvalidArgument(where + ": kind '" + rule.kind() +
                                     "' is not service or agent");
    }
    r.user = rule.user();
    r.exe = rule.exe();
    r.cgroup = rule.cgroup();
    r.k8s_service_account = rule.k8s_service_account();
    if (!r.k8s_service_account.empty() && r.k8s_service_account.find('/') == std::string::npos) {
      return Status::InvalidArgument(where + ": k8s_service_account wants NAMESPACE/NAME, got '" +
                                     r.k8s_service_account + "'");
    }
    r.name = rule.name();
    r.mcp_server = rule.mcp_server();
    if (rule.trust() == "probation") {
      if (r.kind != baseline::IdentityKind::kAgent) {
        return Status::InvalidArgument(where + ": trust applies to agents, not to a " +
                                       rule.kind());
      }
      r.probation = true;
    } else if (!rule.trust().empty() && rule.trust() != "trusted") {
      return Status::InvalidArgument(where + ": trust '" + rule.trust() +
                                     "' is not probation or trusted");
    }
    if (r.user.empty() && r.exe.empty() && r.cgroup.empty() && r.k8s_service_account.empty()) {
      return Status::InvalidArgument(where +
                                     ": a rule needs user, exe, cgroup or k8s_service_account");
    }
    rules.push_back(std::move(r));
  }
  return rules;
}

std::map<std::string, std::string, std::less<>> DeclaredKinds(
    const std::vector<baseline::IdentityRule>& rules) {
  std::map<std::string, std::string, std::less<>> declared;
  for (const baseline::IdentityRule& rule : rules) {
    if (!rule.user.empty()) declared[rule.user] = std::string(baseline::KindName(rule.kind));
  }
  return declared;
}

std::vector<audit::ProcessRule> DeclaredProcesses(
    const std::vector<baseline::IdentityRule>& rules) {
  std::vector<audit::ProcessRule> out;
  for (const baseline::IdentityRule& rule : rules) {
    if (rule.exe.empty() && rule.cgroup.empty() && rule.k8s_service_account.empty() &&
        !rule.mcp_server) {
      continue;
    }
    out.push_back(audit::ProcessRule{rule.user, rule.exe, rule.cgroup,
                                     std::string(baseline::KindName(rule.kind)), rule.name,
                                     rule.mcp_server, rule.exact, rule.k8s_service_account});
  }
  return out;
}

forward::ForwarderOptions ForwarderOptionsFromSettings(const AggregatorSettings& settings) {
  forward::ForwarderOptions o;
  char hostname[256] = {0};
  gethostname(hostname, sizeof(hostname) - 1);
  o.sink.hostname = hostname;
  o.sink.ca_file = settings.config.forward_ca_file();
  o.sink.token = settings.forward_token;
  if (settings.config.forward_max_backoff_ms() > 0) {
    o.max_backoff_ns = int64_t{settings.config.forward_max_backoff_ms()} * kNanosPerMilli;
    o.initial_backoff_ns = std::min(o.initial_backoff_ns, o.max_backoff_ns);
  }
  return o;
}

Result<std::vector<std::string>> ApproversFromConfig(const v1::AggregatorConfig& config) {
  std::vector<std::string> approvers;
  const auto& listed = config.response().approvers();
  for (int i = 0; i < listed.size(); ++i) {
    const std::string where = "response.approvers[" + std::to_string(i) + "]";
    if (listed[i].empty()) return Status::InvalidArgument(where + " is empty");
    if (std::find(approvers.begin(), approvers.end(), listed[i]) != approvers.end()) {
      return Status::InvalidArgument(where + ": '" + listed[i] + "' is listed twice");
    }
    approvers.push_back(listed[i]);
  }
  return approvers;
}

void RegisterAggregatorReloads(const ReloadTargets& targets, AggregatorReloads* reloads) {
  if (targets.engine != nullptr) {
    CorrelationEngine* engine = targets.engine;
    audit::PostureAuditor* auditor = targets.auditor;
    reloads->Register(
        "identities",
        [engine, auditor](const AggregatorSettings& s) -> Result<AggregatorReloads::Apply> {
          TL_ASSIGN_OR_RETURN(std::vector<baseline::IdentityRule> rules,
                              IdentityRulesFromConfig(s.config));
          return AggregatorReloads::Apply([engine, auditor, rules = std::move(rules)]() mutable {
            const size_t n = rules.size();
            if (auditor != nullptr)
              auditor->SetDeclared(DeclaredKinds(rules), DeclaredProcesses(rules));
            engine->ReplaceIdentityRules(std::move(rules));
            TL_LOG(INFO) << "reload: " << n << " identity declarations";
          });
        });
  }
  if (targets.rules != nullptr) {
    // The rule files are read again from the directory the engine runs; a directory that
    // cannot be read fails the whole reload. Broken rules are not a failure: they are
    // listed as broken, as at start.
    rules::RuleEngine* engine = targets.rules;
    reloads->Register(
        "rules", [engine](const AggregatorSettings&) -> Result<AggregatorReloads::Apply> {
          TL_ASSIGN_OR_RETURN(std::shared_ptr<const rules::RuleSet> set,
                              rules::LoadRuleDirectory(engine->dir()));
          return AggregatorReloads::Apply([engine, set = std::move(set)]() mutable {
            engine->Swap(std::move(set));
            size_t loaded = 0;
            for (const rules::RuleInfo& r : engine->Rules()) {
              loaded += r.state == rules::RuleState::kLoaded ? 1 : 0;
            }
            TL_LOG(INFO) << "reload: " << loaded << " Sigma rules loaded from " << engine->dir();
          });
        });
  }
  if (targets.actions != nullptr) {
    // Who may approve, deny and revert from now on; actions already decided stay decided.
    response::ActionBook* actions = targets.actions;
    reloads->Register(
        "approvers", [actions](const AggregatorSettings& s) -> Result<AggregatorReloads::Apply> {
          TL_ASSIGN_OR_RETURN(std::vector<std::string> approvers, ApproversFromConfig(s.config));
          return AggregatorReloads::Apply([actions, approvers = std::move(approvers)]() mutable {
            const size_t n = approvers.size();
            actions->SetApprovers(std::move(approvers));
            if (n == 0) {
              TL_LOG(INFO)
                  << "reload: no approvers listed; any holder of the approver role decides";
            } else {
              TL_LOG(INFO) << "reload: " << n << " approvers";
            }
          });
        });
  }
  if (targets.outputs != nullptr) {
    // Every output of the new list is checked (its sink can be made: URL, CA and token
    // files) before anything is swapped; then the outputs are remade, also when the list is
    // the same, so that renewed CA and token files are read.
    forward::ForwardOutputs* outputs = targets.outputs;
    reloads->Register("outputs",
                      [outputs](const AggregatorSettings& s) -> Result<AggregatorReloads::Apply> {
                        const forward::ForwarderOptions options = ForwarderOptionsFromSettings(s);
                        TL_RETURN_IF_ERROR(forward::ForwardOutputs::Check(s.forwards, options));
                        return AggregatorReloads::Apply([outputs, targets = s.forwards, options] {
                          if (targets.empty() && outputs->size() == 0) return;
                          outputs->Replace(targets, options);
                          TL_LOG(INFO) << "reload: " << targets.size() << " SIEM outputs";
                        });
                      });
  }
}

Status ReloadAggregator(const std::vector<std::string>& args, const AggregatorReloads& reloads,
                        AggregatorSettings* running) {
  Result<AggregatorSettings> fresh = ParseAggregatorArgs(args);
  Status s = fresh.ok() ? reloads.ReloadAll(*fresh) : fresh.status();
  if (!s.ok()) {
    TL_LOG(ERROR) << "reload failed, nothing changed: " << s.message();
    return s;
  }
  const v1::AggregatorConfig& was = running->config;
  const v1::AggregatorConfig& now = fresh->config;
  std::vector<std::string> restart;
  if (was.listen() != now.listen()) restart.push_back("listen");
  if (was.rules_dir() != now.rules_dir()) restart.push_back("rules_dir");
  if (was.data_dir() != now.data_dir()) restart.push_back("data_dir");
  if (was.event_retention_hours() != now.event_retention_hours()) restart.push_back("retention");
  if (was.insecure() != now.insecure()) restart.push_back("insecure");
  if (was.max_batch_events() != now.max_batch_events() ||
      was.max_clock_skew_s() != now.max_clock_skew_s() ||
      was.max_event_age_h() != now.max_event_age_h() ||
      was.max_streams_per_peer() != now.max_streams_per_peer() ||
      was.memory_quota_mb() != now.memory_quota_mb()) {
    restart.push_back("ingest limits");
  }
  if (was.hop_tolerance_ms() != now.hop_tolerance_ms() ||
      !std::equal(was.ssh_ports().begin(), was.ssh_ports().end(), now.ssh_ports().begin(),
                  now.ssh_ports().end())) {
    restart.push_back("correlator settings");
  }
  const v1::ResponseConfig &rw = was.response(), &rn = now.response();
  if (rw.proposal_ttl_s() != rn.proposal_ttl_s() || rw.approval_ttl_s() != rn.approval_ttl_s() ||
      rw.action_ttl_s() != rn.action_ttl_s() ||
      rw.propose_min_severity() != rn.propose_min_severity()) {
    restart.push_back("response time limits and propose_min_severity");
  }
  if (rw.order_key_file() != rn.order_key_file()) restart.push_back("response.order_key_file");
  std::string names;
  for (const std::string& n : reloads.names()) names += (names.empty() ? "" : ", ") + n;
  TL_LOG(INFO) << "reload done (" << names << ")";
  for (const std::string& r : restart) {
    TL_LOG(WARNING) << "reload: " << r << " changed; it takes effect at the next restart";
  }
  *running = std::move(*fresh);
  return Status::Ok();
}

}  // namespace tripline
