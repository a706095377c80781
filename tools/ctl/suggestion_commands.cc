// triplinectl suggestions [--all], suggestions confirm USER --by NAME [--kind service|agent],
// suggestions dismiss USER --by NAME: accounts whose behaviour suggests a service account or
// an AI agent (docs/baselines.md, "Suggested kinds").
#include <nlohmann/json.hpp>

#include "tools/ctl/ctl_context.h"
#include "tools/ctl/ctl_table.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

struct ListFlags {
  bool all = false;
};
struct DecideFlags {
  std::string user, by, kind;
};

json ToJson(const v1::IdentitySuggestion& s) {
  return {{"user", s.user()},
          {"kind", s.kind()},
          {"state", s.state()},
          {"evidence", s.evidence()},
          {"first_seen", FormatTimeNs(s.first_seen_ns())},
          {"last_seen", FormatTimeNs(s.last_seen_ns())},
          {"decided_by", s.decided_by()},
          {"decided_at", s.decided_ns() == 0 ? "" : FormatTimeNs(s.decided_ns())}};
}

int RunList(CtlContext& ctx, const ListFlags& f) {
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  v1::ListIdentitySuggestionsRequest req;
  req.set_include_decided(f.all);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::ListIdentitySuggestionsResponse r;
  const grpc::Status s = stub->ListIdentitySuggestions(&call, req, &r);
  if (!s.ok()) return ctx.RpcFailed("ListIdentitySuggestions", s);
  if (ctx.json) {
    json all = json::array();
    for (const auto& x : r.suggestions()) all.push_back(ToJson(x));
    ctx.out << all.dump(2) << "\n";
    return kExitOk;
  }
  if (r.suggestions().empty()) {
    ctx.out << (f.all ? "no account has a suggested kind\n"
                      : "no account waits for a decision (--all shows decided ones)\n");
    return kExitOk;
  }
  Table t({"USER", "KIND", "STATE", "DECIDED BY", "EVIDENCE"});
  for (const auto& x : r.suggestions()) {
    std::vector<std::string> evidence(x.evidence().begin(), x.evidence().end());
    std::string joined;
    for (const std::string& e : evidence) joined += (joined.empty() ? "" : "; ") + e;
    t.AddRow({x.user(), x.kind(), x.state(), x.decided_by(), joined});
  }
  t.Print(ctx.out);
  return kExitOk;
}

int RunDecide(CtlContext& ctx, const DecideFlags& f, const char* decision) {
  if (f.user.empty()) return ctx.Usage(std::string(decision) + " takes USER", "suggestions");
  if (f.by.empty()) {
    return ctx.Usage(std::string(decision) + " needs --by NAME: who decides", "suggestions");
  }
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  v1::DecideIdentitySuggestionRequest req;
  req.set_user(f.user);
  req.set_decision(decision);
  req.set_kind(f.kind);
  req.set_by(f.by);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::IdentitySuggestion r;
  const grpc::Status s = stub->DecideIdentitySuggestion(&call, req, &r);
  if (!s.ok()) return ctx.RpcFailed("DecideIdentitySuggestion", s);
  if (ctx.json) {
    ctx.out << ToJson(r).dump(2) << "\n";
    return kExitOk;
  }
  if (r.state() == "confirmed") {
    ctx.out << CtlContext::Show(r.user()) << " is now declared as " << CtlContext::Show(r.kind())
            << " (" << CtlContext::Show(r.kind()) << ":" << CtlContext::Show(r.user())
            << "), confirmed by " << CtlContext::Show(r.decided_by()) << "\n";
  } else {
    ctx.out << "the suggestion for " << CtlContext::Show(r.user()) << " was dismissed by "
            << CtlContext::Show(r.decided_by()) << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterSuggestionCommands(CLI::App& app, CtlContext& ctx) {
  auto list = std::make_shared<ListFlags>();
  CLI::App* suggestions = ctx.AddCommand(
      app, "suggestions",
      "accounts whose behaviour suggests a service account or an AI agent; shown, not applied, "
      "until confirmed",
      [&ctx, list] { return RunList(ctx, *list); });
  suggestions->add_flag("--all", list->all, "also the confirmed and dismissed ones");
  ctx.AddJsonFlag(suggestions, "a JSON array");

  auto confirm = std::make_shared<DecideFlags>();
  CLI::App* c = ctx.AddCommand(
      *suggestions, "confirm",
      "declare USER as the suggested kind (or --kind): its events from now on belong to that "
      "identity",
      [&ctx, confirm] { return RunDecide(ctx, *confirm, "confirm"); });
  c->add_option("USER", confirm->user, "the account")->type_name("USER");
  c->add_option("--by", confirm->by, "the person deciding")->type_name("NAME");
  ctx.Choices(c->add_option("--kind", confirm->kind, "service or agent; default: the suggested")
                  ->type_name("KIND"),
              {"service", "agent"});
  ctx.AddJsonFlag(c, "the decided suggestion as one JSON object");

  auto dismiss = std::make_shared<DecideFlags>();
  CLI::App* d = ctx.AddCommand(*suggestions, "dismiss", "hide the suggestion for USER",
                               [&ctx, dismiss] { return RunDecide(ctx, *dismiss, "dismiss"); });
  d->add_option("USER", dismiss->user, "the account")->type_name("USER");
  d->add_option("--by", dismiss->by, "the person deciding")->type_name("NAME");
  ctx.AddJsonFlag(d, "the decided suggestion as one JSON object");
}

}  // namespace tripline::ctl
