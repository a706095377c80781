// triplinectl baseline IDENTITY and feedback INCIDENT benign|expected.
#include <nlohmann/json.hpp>

#include "tools/ctl/ctl_context.h"
#include "tools/ctl/ctl_table.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

struct FeedbackFlags {
  std::string incident, verdict;
};

int RunBaseline(CtlContext& ctx, const std::vector<std::string>& identity) {
  if (identity.size() != 1) return ctx.Usage("baseline takes one IDENTITY", "baseline");
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  v1::GetBaselineRequest req;
  req.set_identity(identity[0]);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::Baseline b;
  const grpc::Status s = stub->GetBaseline(&call, req, &b);
  if (!s.ok()) return ctx.RpcFailed("GetBaseline", s);
  if (ctx.json) {
    json features = json::array();
    for (const auto& f : b.features()) {
      features.push_back({{"name", f.name()}, {"weight", f.weight()}, {"count", f.count()}});
    }
    const json j = {{"identity", b.identity()},
                    {"kind", b.kind()},
                    {"observations", b.observations()},
                    {"first_seen", FormatTimeNs(b.first_seen_ns())},
                    {"last_seen", FormatTimeNs(b.last_seen_ns())},
                    {"warm", b.warm()},
                    {"usual_hours", b.usual_hours()},
                    {"peer_group", b.peer_group()},
                    {"features", features},
                    {"last_score", b.last_score()},
                    {"last_reasons", b.last_reasons()},
                    {"suppressed", b.suppressed()}};
    ctx.out << j.dump(2) << "\n";
    return 0;
  }
  char score[16];
  std::snprintf(score, sizeof score, "%.2f", b.last_score());
  ctx.out << "baseline " << CtlContext::Show(b.identity()) << "  " << CtlContext::Show(b.kind())
          << ", " << b.observations() << " observations, " << (b.warm() ? "warm" : "warming up")
          << "\n"
          << "first seen   " << FormatTimeNs(b.first_seen_ns()) << "\n"
          << "last seen    " << FormatTimeNs(b.last_seen_ns()) << "\n";
  if (!b.usual_hours().empty()) ctx.out << "usual hours  " << b.usual_hours() << " UTC\n";
  if (!b.peer_group().empty()) ctx.out << "peer group   " << b.peer_group() << "\n";
  ctx.out << "last score   " << score << "\n";
  for (const auto& r : b.last_reasons()) ctx.out << "  - " << CtlContext::Show(r) << "\n";
  for (const auto& p : b.suppressed()) ctx.out << "suppressed   " << CtlContext::Show(p) << "\n";
  ctx.out << "\n";
  Table t({"FEATURE", "WEIGHT", "COUNT"});
  for (const auto& f : b.features()) {
    char w[32];
    std::snprintf(w, sizeof w, "%.2f", f.weight());
    t.AddRow({f.name(), w, std::to_string(f.count())});
  }
  t.Print(ctx.out);
  return 0;
}

int RunFeedback(CtlContext& ctx, const FeedbackFlags& f) {
  if (f.incident.empty() || f.verdict.empty()) {
    return ctx.Usage("feedback takes INCIDENT benign|expected", "feedback");
  }
  const std::string& verdict = f.verdict;
  if (verdict != "benign" && verdict != "expected") {
    return ctx.Usage("feedback wants benign or expected, got '" + verdict + "'", "feedback");
  }
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  v1::FeedbackRequest req;
  req.set_incident_id(f.incident);
  req.set_verdict(verdict == "expected" ? v1::FEEDBACK_VERDICT_EXPECTED
                                        : v1::FEEDBACK_VERDICT_BENIGN);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::FeedbackResponse r;
  const grpc::Status s = stub->Feedback(&call, req, &r);
  if (!s.ok()) return ctx.RpcFailed("Feedback", s);
  ctx.out << CtlContext::Show(f.incident) << ": " << CtlContext::Show(r.summary()) << "\n";
  return kExitOk;
}

}  // namespace

void RegisterBaselineCommands(CLI::App& app, CtlContext& ctx) {
  auto identity = std::make_shared<std::vector<std::string>>();
  CLI::App* baseline = ctx.AddCommand(
      app, "baseline",
      "what is learned for an identity: NAME, or KIND:NAME (human, service, agent, host)",
      [&ctx, identity] { return RunBaseline(ctx, *identity); });
  baseline->add_option("IDENTITY", *identity, "alice, service:backup, host:db1")
      ->type_name("IDENTITY");
  ctx.AddJsonFlag(baseline, "one JSON object");

  auto f = std::make_shared<FeedbackFlags>();
  CLI::App* feedback = ctx.AddCommand(
      app, "feedback",
      "fold an incident's baseline facts back into the baselines; expected also suppresses "
      "the same pattern from then on",
      [&ctx, f] { return RunFeedback(ctx, *f); });
  feedback->add_option("INCIDENT", f->incident, "the incident's id")->type_name("INCIDENT");
  ctx.Suggest(
      feedback->add_option("VERDICT", f->verdict, "benign or expected")->type_name("VERDICT"),
      {"benign", "expected"});
}

}  // namespace tripline::ctl
