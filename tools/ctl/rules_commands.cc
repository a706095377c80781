// triplinectl rules [--json]: the Sigma rules the aggregator runs, each with its state
// (loaded, unsupported, broken), why, and its hits; triplinectl rules test FILE --events
// JSONL [--json]: a local test bench for rule authors (docs/sigma.md).
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aggregator/rules/sigma.h"
#include "model/event_json.h"
#include "tools/ctl/ctl_context.h"
#include "tools/ctl/ctl_table.h"
#include "tripline/v1/rules.grpc.pb.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

std::string Clip(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

int List(CtlContext& ctx) {
  int code = 0;
  auto channel = ctx.Channel(&code);
  if (channel == nullptr) return code;
  auto stub = v1::Rules::NewStub(channel);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::ListRulesResponse resp;
  const grpc::Status s = stub->ListRules(&call, v1::ListRulesRequest(), &resp);
  if (!s.ok()) return ctx.RpcFailed("ListRules", s);
  if (ctx.json) {
    json j = json::object();
    j["dir"] = resp.dir();
    j["events_evaluated"] = resp.events_evaluated();
    j["rules"] = json::array();
    for (const v1::RuleStatus& r : resp.rules()) {
      j["rules"].push_back(
          {{"id", r.id()},
           {"title", r.title()},
           {"level", r.level()},
           {"file", r.file()},
           {"line", r.line()},
           {"state", r.state()},
           {"reason", r.reason()},
           {"techniques", std::vector<std::string>(r.techniques().begin(), r.techniques().end())},
           {"logsource", r.logsource()},
           {"correlation", r.correlation()},
           {"hits", r.hits()}});
    }
    ctx.out << j.dump(2) << "\n";
    return kExitOk;
  }
  if (resp.dir().empty()) {
    ctx.out << "no rules (the aggregator runs without --rules)\n";
    return kExitOk;
  }
  size_t counts[3] = {0, 0, 0};
  Table t({"STATE", "HITS", "LEVEL", "TITLE", "FILE / WHY"});
  for (const v1::RuleStatus& r : resp.rules()) {
    counts[r.state() == "loaded" ? 0 : r.state() == "unsupported" ? 1 : 2]++;
    std::string where = r.file() + ":" + std::to_string(r.line());
    if (!r.reason().empty()) where += "  " + r.reason();
    t.AddRow(
        {r.state(), std::to_string(r.hits()), r.level(), Clip(r.title(), 50), Clip(where, 160)});
  }
  t.Print(ctx.out);
  ctx.out << resp.rules_size() << " rules from " << CtlContext::Show(resp.dir()) << ": "
          << counts[0] << " loaded, " << counts[1] << " unsupported, " << counts[2] << " broken; "
          << resp.events_evaluated() << " events evaluated\n";
  return kExitOk;
}

int Test(const std::string& file, const std::string& events, bool as_json, std::ostream& out,
         std::ostream& err) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    err << "triplinectl: rules test: cannot read " << file << "\n";
    return 1;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto set = rules::CompileRules({{file, text.str()}});
  rules::RuleEngine engine;
  engine.Swap(set);
  bool any_loaded = false;
  for (const rules::RuleInfo& r : rules::DescribeRules(*set)) {
    if (r.state == rules::RuleState::kLoaded) {
      any_loaded = true;
    } else {
      err << r.file << ":" << r.line << ": " << r.title << ": " << rules::RuleStateName(r.state)
          << ": " << r.reason << "\n";
    }
  }
  if (!any_loaded) {
    err << "triplinectl: rules test: no rule of " << file << " can run\n";
    return 1;
  }
  std::ifstream ev(events, std::ios::binary);
  if (!ev) {
    err << "triplinectl: rules test: cannot read " << events << "\n";
    return 1;
  }
  std::string l;
  size_t n = 0, matches = 0, bad = 0;
  json all = json::array();
  while (std::getline(ev, l)) {
    ++n;
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto e = EventFromJsonLine(l);
    if (!e.ok()) {
      err << events << ":" << n << ": " << e.status().message() << "\n";
      ++bad;
      continue;
    }
    for (const rules::Detection& d : engine.Evaluate(*e)) {
      ++matches;
      if (as_json) {
        all.push_back({{"line", n},
                       {"rule_id", d.rule_id},
                       {"title", d.title},
                       {"level", d.level},
                       {"correlation", d.correlation},
                       {"host", d.host},
                       {"seq", d.seq}});
      } else {
        out << events << ":" << n << ": " << d.title << " (" << d.rule_id << ", " << d.level
            << ") on " << d.host << "\n";
      }
    }
  }
  if (as_json) {
    out << all.dump(2) << "\n";
  } else {
    out << matches << " matches in " << n << " lines" << (bad ? ", " : "")
        << (bad ? std::to_string(bad) + " lines not events" : "") << "\n";
  }
  return bad > 0 ? 1 : 0;
}

}  // namespace

void RegisterRulesCommands(CLI::App& app, CtlContext& ctx) {
  CLI::App* rules = ctx.AddCommand(
      app, "rules",
      "the Sigma rules the aggregator runs: state (loaded, unsupported, broken), why, hits",
      [&ctx] { return List(ctx); });
  ctx.AddJsonFlag(rules, "one JSON object: dir, events_evaluated, rules");

  struct TestFlags {
    std::string file, events;
  };
  auto f = std::make_shared<TestFlags>();
  CLI::App* test = ctx.AddCommand(
      *rules, "test",
      "compile FILE and run it on recorded events (one JSON event a line, as "
      "`tripline-sensor --output jsonl` and `triplinectl events --json` write them); needs no "
      "aggregator",
      [&ctx, f] {
        if (f->file.empty() || f->events.empty()) {
          return ctx.Usage("rules test takes FILE and --events JSONL", "rules test");
        }
        return Test(f->file, f->events, ctx.json, ctx.out, ctx.err);
      });
  test->add_option("FILE", f->file, "a Sigma rule file")->type_name("FILE");
  test->add_option("--events", f->events, "recorded events, one JSON object a line")
      ->type_name("JSONL");
  ctx.AddJsonFlag(test, "a JSON array of the matches");
}

}  // namespace tripline::ctl
