#include "tools/ctl/response_commands.h"

#include <memory>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/text_escape.h"
#include "tools/ctl/ctl_table.h"
#include "tripline/v1/response.grpc.pb.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

struct KindName {
  v1::Action::Kind kind;
  const char* name;
};
constexpr KindName kKinds[] = {{v1::Action::KIND_LOCK_ACCOUNT, "lock"},
                               {v1::Action::KIND_KILL_SESSION, "end-sessions"},
                               {v1::Action::KIND_BLOCK_ADDRESS, "block"},
                               {v1::Action::KIND_ISOLATE_HOST, "isolate"}};

std::string KindOf(v1::Action::Kind k) {
  for (const auto& kn : kKinds) {
    if (kn.kind == k) return kn.name;
  }
  return "unknown";
}

std::string StateOf(v1::Action::State s) {
  switch (s) {
    case v1::Action::STATE_PROPOSED: return "proposed";
    case v1::Action::STATE_APPROVED: return "approved";
    case v1::Action::STATE_DENIED: return "denied";
    case v1::Action::STATE_EXECUTED: return "executed";
    case v1::Action::STATE_FAILED: return "failed";
    case v1::Action::STATE_REVERTED: return "reverted";
    case v1::Action::STATE_EXPIRED: return "expired";
    case v1::Action::STATE_REVERT_REQUESTED: return "revert-requested";
    default: return "unknown";
  }
}

bool ParseState(const std::string& text, v1::Action::State* out) {
  for (int s = v1::Action::STATE_PROPOSED; s <= v1::Action::STATE_REVERT_REQUESTED; ++s) {
    if (StateOf(static_cast<v1::Action::State>(s)) == text) {
      *out = static_cast<v1::Action::State>(s);
      return true;
    }
  }
  return false;
}

std::string Time(int64_t ns) { return ns == 0 ? "" : FormatTimeNs(ns); }

json EntryJson(const v1::Action::AuditEntry& e) {
  return json{{"seq", e.seq()},
              {"at", Time(e.at_ns())},
              {"by", e.by()},
              {"action", e.action_id()},
              {"what", e.what()}};
}

json ActionJson(const v1::Action& a) {
  json trail = json::array();
  for (const auto& e : a.audit()) trail.push_back(EntryJson(e));
  return json{{"id", a.id()},
              {"kind", KindOf(a.kind())},
              {"target", a.target()},
              {"host", a.host()},
              {"subject", a.subject()},
              {"scope", a.scope()},
              {"state", StateOf(a.state())},
              {"incident", a.incident_id()},
              {"reason", a.reason()},
              {"proposed_by", a.proposed_by()},
              {"proposed_by_person", a.proposed_by_person()},
              {"proposed", Time(a.proposed_ns())},
              {"decided_by", a.decided_by()},
              {"decided", Time(a.decided_ns())},
              {"comment", a.decision_comment()},
              {"approval_expires", Time(a.approval_expires_ns())},
              {"expires", Time(a.expires_ns())},
              {"result", a.result()},
              {"trail", std::move(trail)}};
}

std::string Dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

// One call of the Response service with --timeout: 0, or the exit code of a channel that
// could not be made or of the failed call (said on stderr).
template <typename Request, typename Reply>
int Call(CtlContext& ctx, const char* rpc,
         grpc::Status (v1::Response::Stub::*method)(grpc::ClientContext*, const Request&, Reply*),
         const Request& req, Reply* reply) {
  int code = 0;
  auto channel = ctx.Channel(&code);
  if (!channel) return code;
  auto stub = v1::Response::NewStub(channel);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  if (grpc::Status s = ((*stub).*method)(&call, req, reply); !s.ok()) return ctx.RpcFailed(rpc, s);
  return 0;
}

void PrintAction(const v1::Action& a, std::ostream& out) {
  out << a.id() << "  " << StateOf(a.state()) << "  " << KindOf(a.kind()) << " "
      << EscapeForDisplay(a.target()) << "\n  scope: " << EscapeForDisplay(a.scope())
      << "\n  proposed by " << EscapeForDisplay(a.proposed_by()) << " at " << Time(a.proposed_ns());
  if (!a.reason().empty()) out << ": " << EscapeForDisplay(a.reason());
  out << "\n";
  if (!a.decided_by().empty()) {
    out << "  decided by " << EscapeForDisplay(a.decided_by()) << " at " << Time(a.decided_ns());
    if (!a.decision_comment().empty()) out << ": " << EscapeForDisplay(a.decision_comment());
    out << "\n";
  }
  for (const auto& e : a.audit()) {
    out << "  " << Time(e.at_ns()) << "  " << EscapeForDisplay(e.by()) << "  "
        << EscapeForDisplay(e.what()) << "\n";
  }
}

// One action, as JSON with --json or for a person.
int ShowAction(CtlContext& ctx, const v1::Action& action) {
  if (ctx.json) {
    ctx.out << Dump(ActionJson(action));
  } else {
    PrintAction(action, ctx.out);
  }
  return 0;
}

}  // namespace

int RunActions(CtlContext& ctx, const ActionsArgs& a) {
  std::ostream& out = ctx.out;
  v1::ListActionsRequest req;
  if (!a.state.empty()) {
    v1::Action::State s;
    if (!ParseState(a.state, &s)) {
      return ctx.Usage(
          "--state wants proposed, approved, denied, executed, failed, reverted, "
          "expired or revert-requested, got '" +
          EscapeForDisplay(a.state) + "'");
    }
    req.set_state(s);
  }
  req.set_incident_id(a.incident);
  v1::ListActionsResponse resp;
  if (int code = Call(ctx, "Response.List", &v1::Response::Stub::List, req, &resp)) return code;
  if (ctx.json) {
    json list = json::array();
    for (const auto& action : resp.actions()) list.push_back(ActionJson(action));
    out << Dump(list);
    return 0;
  }
  Table t({"ID", "STATE", "ACTION", "TARGET", "PROPOSED BY", "DECIDED BY", "INCIDENT"});
  for (const auto& action : resp.actions()) {
    t.AddRow({action.id(), StateOf(action.state()), KindOf(action.kind()), action.target(),
              action.proposed_by(), action.decided_by(), action.incident_id()});
  }
  if (t.rows() == 0) {
    out << "no actions\n";
  } else {
    t.Print(out);
  }
  return 0;
}

int RunPropose(CtlContext& ctx, const ProposeArgs& a) {
  v1::ProposeRequest req;
  bool known = false;
  for (const auto& kn : kKinds) {
    if (a.kind == kn.name) {
      req.set_kind(kn.kind);
      known = true;
    }
  }
  if (!known) {
    return ctx.Usage("propose wants lock, end-sessions, block or isolate, got '" +
                     EscapeForDisplay(a.kind) + "'");
  }
  if (!a.duration.empty()) {
    auto d = ParseDurationNs(a.duration);
    if (!d.ok() || *d < kNanosPerSecond || *d / kNanosPerSecond > UINT32_MAX) {
      return ctx.Usage("--duration wants a duration such as 30m");
    }
    req.set_duration_s(static_cast<uint32_t>(*d / kNanosPerSecond));
  }
  req.set_target(a.target);
  req.set_by(a.by);
  req.set_reason(a.reason);
  req.set_incident_id(a.incident);
  v1::Action action;
  if (int code = Call(ctx, "Response.Propose", &v1::Response::Stub::Propose, req, &action)) {
    return code;
  }
  return ShowAction(ctx, action);
}

int RunDecide(CtlContext& ctx, const std::string& verb, const DecideArgs& a) {
  if (verb != "revert" && a.by.empty()) return ctx.Usage(verb + " needs --by NAME", verb);
  if (verb == "deny" && a.reason.empty()) return ctx.Usage("deny needs --reason TEXT", verb);
  v1::DecideRequest req;
  req.set_id(a.action);
  req.set_by(a.by);
  req.set_comment(a.reason);
  v1::Action action;
  int code = 0;
  if (verb == "approve") {
    code = Call(ctx, "Response.Approve", &v1::Response::Stub::Approve, req, &action);
  } else if (verb == "deny") {
    code = Call(ctx, "Response.Deny", &v1::Response::Stub::Deny, req, &action);
  } else {
    code = Call(ctx, "Response.Revert", &v1::Response::Stub::Revert, req, &action);
  }
  return code != 0 ? code : ShowAction(ctx, action);
}

int RunTrail(CtlContext& ctx, const TrailArgs& a) {
  std::ostream& out = ctx.out;
  v1::TrailRequest req;
  req.set_action_id(a.action);
  req.set_limit(a.limit);
  v1::TrailResponse resp;
  if (int code = Call(ctx, "Response.Trail", &v1::Response::Stub::Trail, req, &resp)) return code;
  if (ctx.json) {
    json list = json::array();
    for (const auto& e : resp.entries()) list.push_back(EntryJson(e));
    out << Dump(list);
    return 0;
  }
  Table t({"SEQ", "AT", "ACTION", "BY", "WHAT"});
  for (const auto& e : resp.entries()) {
    t.AddRow({std::to_string(e.seq()), Time(e.at_ns()), e.action_id(), e.by(), e.what()});
  }
  t.Print(out);
  return 0;
}

void RegisterResponseCommands(CLI::App& app, CtlContext& ctx) {
  auto actions = std::make_shared<ActionsArgs>();
  CLI::App* list =
      ctx.AddCommand(app, "actions", "response actions and their trail (docs/response.md)",
                     [&ctx, actions] { return RunActions(ctx, *actions); });
  ctx.Choices(list->add_option("--state", actions->state, "only actions in this state"),
              {"proposed", "approved", "denied", "executed", "failed", "reverted", "expired",
               "revert-requested"});
  list->add_option("--incident", actions->incident, "only this incident's")->type_name("ID");
  ctx.AddJsonFlag(list, "a JSON array of actions");

  auto p = std::make_shared<ProposeArgs>();
  CLI::App* propose = ctx.AddCommand(
      app, "propose",
      "propose an action: lock HOST/USER, end-sessions HOST/USER, block HOST/ADDRESS, "
      "isolate HOST; nothing runs until another person approves it",
      [&ctx, p] { return RunPropose(ctx, *p); });
  ctx.Choices(propose->add_option("KIND", p->kind, "what to do")->required(),
              {"lock", "end-sessions", "block", "isolate"});
  propose->add_option("TARGET", p->target, "HOST/USER, HOST/ADDRESS or HOST")->required();
  propose->add_option("--by", p->by, "who proposes (with mutual TLS: your certificate's name)");
  propose->add_option("--reason", p->reason, "why");
  propose->add_option("--incident", p->incident, "the incident it answers")->type_name("ID");
  propose->add_option("--duration", p->duration, "how long its effect lasts (1h)");
  ctx.AddJsonFlag(propose, "the action as JSON");

  for (const char* verb : {"approve", "deny", "revert"}) {
    auto d = std::make_shared<DecideArgs>();
    const std::string v = verb;
    CLI::App* c = ctx.AddCommand(
        app, v,
        v == "approve" ? "approve ACTION as --by NAME (with mutual TLS: your certificate's name)"
        : v == "deny"  ? "deny ACTION as --by NAME, with --reason"
                       : "revert ACTION: withdraw an approval, or undo what ran",
        [&ctx, d, v] { return RunDecide(ctx, v, *d); });
    c->add_option("ACTION", d->action, "the action's id")->required();
    c->add_option("--by", d->by, "the person deciding");
    if (v == "approve") c->add_option("--comment", d->reason, "a note for the trail");
    if (v == "deny") c->add_option("--reason", d->reason, "why not");
    ctx.AddJsonFlag(c, "the action as JSON");
  }

  auto t = std::make_shared<TrailArgs>();
  CLI::App* trail = ctx.AddCommand(
      app, "trail", "the append-only trail of every step of every action (or of one)",
      [&ctx, t] { return RunTrail(ctx, *t); });
  trail->add_option("ACTION", t->action, "one action only");
  trail->add_option("--limit", t->limit, "the newest N entries (1000)");
  ctx.AddJsonFlag(trail, "a JSON array of entries");
}

}  // namespace tripline::ctl
