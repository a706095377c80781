// triplinectl trust [AGENT], trust promote AGENT --by NAME [--reason TEXT],
// trust probation AGENT --by NAME --reason TEXT: AI agents' trust levels. An agent on
// probation has every anomaly escalated one level; leaving or entering probation is a
// person's act, kept with who, when and why (docs/audit.md, "Agents on probation").
#include <nlohmann/json.hpp>

#include "tools/ctl/ctl_context.h"
#include "tools/ctl/ctl_table.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

struct ListFlags {
  std::string agent;
};
struct DecideFlags {
  std::string agent, by, reason;
};

json ToJson(const v1::AgentTrust& a) {
  json history = json::array();
  for (const v1::TrustDecision& d : a.history()) {
    history.push_back({{"level", d.level()},
                       {"by", d.by()},
                       {"reason", d.reason()},
                       {"at", FormatTimeNs(d.at_ns())}});
  }
  return {{"agent", a.agent()},
          {"level", a.level()},
          {"declared_probation", a.declared_probation()},
          {"history", std::move(history)}};
}

int RunList(CtlContext& ctx, const ListFlags& f) {
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::ListAgentTrustResponse r;
  const grpc::Status s = stub->ListAgentTrust(&call, v1::ListAgentTrustRequest(), &r);
  if (!s.ok()) return ctx.RpcFailed("ListAgentTrust", s);
  std::vector<const v1::AgentTrust*> shown;
  for (const v1::AgentTrust& a : r.agents()) {
    if (f.agent.empty() || a.agent() == f.agent) shown.push_back(&a);
  }
  if (!f.agent.empty() && shown.empty()) {
    ctx.err << "triplinectl: " << CtlContext::Show(f.agent)
            << " has no trust decision and is not declared on probation (it is trusted)\n";
    return kExitNotFound;
  }
  if (ctx.json) {
    json all = json::array();
    for (const v1::AgentTrust* a : shown) all.push_back(ToJson(*a));
    ctx.out << all.dump(2) << "\n";
    return kExitOk;
  }
  if (shown.empty()) {
    ctx.out << "no agent is on probation or has a trust decision (agents are trusted unless "
               "declared on probation)\n";
    return kExitOk;
  }
  Table t({"AGENT", "LEVEL", "SINCE", "BY", "REASON"});
  for (const v1::AgentTrust* a : shown) {
    if (a->history().empty()) {
      t.AddRow({a->agent(), a->level(), "-", "(configuration)", "declared on probation"});
      continue;
    }
    const v1::TrustDecision& last = a->history(a->history_size() - 1);
    t.AddRow({a->agent(), a->level(), FormatTimeNs(last.at_ns()), last.by(), last.reason()});
  }
  t.Print(ctx.out);
  if (!f.agent.empty() && shown.size() == 1 && shown[0]->history_size() > 1) {
    ctx.out << "\nearlier decisions:\n";
    Table h({"LEVEL", "AT", "BY", "REASON"});
    for (int i = 0; i + 1 < shown[0]->history_size(); ++i) {
      const v1::TrustDecision& d = shown[0]->history(i);
      h.AddRow({d.level(), FormatTimeNs(d.at_ns()), d.by(), d.reason()});
    }
    h.Print(ctx.out);
  }
  return kExitOk;
}

int RunDecide(CtlContext& ctx, const DecideFlags& f, const char* verb, const char* level) {
  if (f.agent.empty()) return ctx.Usage(std::string(verb) + " takes AGENT", "trust");
  if (f.by.empty()) {
    return ctx.Usage(std::string(verb) + " needs --by NAME: who decides", "trust");
  }
  if (std::string_view(level) == "probation" && f.reason.empty()) {
    return ctx.Usage("probation needs --reason TEXT: why the agent is put on probation", "trust");
  }
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  v1::SetAgentTrustRequest req;
  req.set_agent(f.agent);
  req.set_level(level);
  req.set_by(f.by);
  req.set_reason(f.reason);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::AgentTrust r;
  const grpc::Status s = stub->SetAgentTrust(&call, req, &r);
  if (!s.ok()) return ctx.RpcFailed("SetAgentTrust", s);
  if (ctx.json) {
    ctx.out << ToJson(r).dump(2) << "\n";
    return kExitOk;
  }
  const std::string by = r.history().empty() ? f.by : r.history(r.history_size() - 1).by();
  ctx.out << "agent " << CtlContext::Show(r.agent()) << " is now "
          << (r.level() == "probation" ? "on probation" : "trusted") << ", set by "
          << CtlContext::Show(by) << "\n";
  return kExitOk;
}

}  // namespace

void RegisterTrustCommands(CLI::App& app, CtlContext& ctx) {
  auto list = std::make_shared<ListFlags>();
  CLI::App* trust = ctx.AddCommand(
      app, "trust",
      "AI agents' trust levels: an agent on probation has every anomaly escalated one level",
      [&ctx, list] { return RunList(ctx, *list); });
  trust->add_option("AGENT", list->agent, "one agent, with its earlier decisions")
      ->type_name("AGENT");
  ctx.AddJsonFlag(trust, "a JSON array");

  auto promote = std::make_shared<DecideFlags>();
  CLI::App* p = ctx.AddCommand(
      *trust, "promote", "take AGENT off probation: its anomalies are judged as anyone's",
      [&ctx, promote] { return RunDecide(ctx, *promote, "promote", "trusted"); });
  p->add_option("AGENT", promote->agent, "the agent identity's name")->type_name("AGENT");
  p->add_option("--by", promote->by, "the person deciding")->type_name("NAME");
  p->add_option("--reason", promote->reason, "why, kept with the decision")->type_name("TEXT");
  ctx.AddJsonFlag(p, "the agent's trust as one JSON object");

  auto probation = std::make_shared<DecideFlags>();
  CLI::App* b = ctx.AddCommand(
      *trust, "probation", "put AGENT on probation: every anomaly of it counts one level more",
      [&ctx, probation] { return RunDecide(ctx, *probation, "probation", "probation"); });
  b->add_option("AGENT", probation->agent, "the agent identity's name")->type_name("AGENT");
  b->add_option("--by", probation->by, "the person deciding")->type_name("NAME");
  b->add_option("--reason", probation->reason, "why, kept with the decision")->type_name("TEXT");
  ctx.AddJsonFlag(b, "the agent's trust as one JSON object");
}

}  // namespace tripline::ctl
