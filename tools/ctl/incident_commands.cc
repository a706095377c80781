// triplinectl incidents [--watch] and incident ID [--graph dot|svg].
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/incident.h"
#include "model/incident_proto.h"
#include "tools/ctl/ctl_context.h"
#include "tools/ctl/ctl_table.h"
#include "tools/ctl/incident_graph.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

struct IncidentsFlags {
  std::string min_severity;
  int64_t limit = 0;
  bool watch = false;
  std::string interval = "2s";
};

struct IncidentFlags {
  std::vector<std::string> id;
  std::string graph;
};

int BadAnswer(CtlContext& ctx, const char* rpc, const Status& why) {
  ctx.err << "triplinectl: " << rpc
          << " returned an incident it cannot read: " << CtlContext::Show(why.ToString()) << "\n";
  return kExitServerError;
}

// Follows the pages up to `limit` (0: one page). Exit code, 0 when fine.
int FetchIncidents(CtlContext& ctx, v1::Query::Stub& stub, v1::ListIncidentsRequest req,
                   uint64_t limit, std::vector<Incident>* incidents) {
  // The aggregator answers at most a page (1000) per call: a larger --limit follows the
  // pages; no --limit is one page.
  do {
    req.set_limit(static_cast<uint32_t>(
        std::min<uint64_t>(limit == 0 ? 0 : limit - incidents->size(), UINT32_MAX)));
    grpc::ClientContext call;
    ctx.Prepare(&call);
    v1::ListIncidentsResponse resp;
    const grpc::Status s = stub.ListIncidents(&call, req, &resp);
    if (!s.ok()) return ctx.RpcFailed("ListIncidents", s);
    for (const auto& wire : resp.incidents()) {
      auto i = FromProto(wire);
      if (!i.ok()) return BadAnswer(ctx, "ListIncidents", i.status());
      incidents->push_back(std::move(*i));
    }
    req.set_page_token(resp.next_page_token());
  } while (limit > incidents->size() && !req.page_token().empty());
  return kExitOk;
}

void PrintIncidentTable(CtlContext& ctx, const std::vector<Incident>& incidents) {
  Table t({"ID", "SEVERITY", "LAST_SEEN", "HOSTS", "TITLE"});
  for (const auto& i : incidents) {
    t.AddRow({i.id, std::string(SeverityName(i.severity)), FormatTimeNs(i.last_seen_ns),
              CtlContext::Join(i.hosts, " → "), i.title});
  }
  t.Print(ctx.out);
}

std::atomic<bool> g_stop_watch{false};
void OnWatchSignal(int) { g_stop_watch.store(true); }

// The live view. On a terminal (and without --json) the table is redrawn every interval.
// Otherwise every incident is printed once when first seen and again whenever it grows (a
// higher revision): a line of text, or with --json one JSON object a line. Ends on SIGINT
// or SIGTERM (exit 0). A failure before the first answer ends it with that failure's code;
// later ones are reported and retried.
int Watch(CtlContext& ctx, v1::Query::Stub& stub, const v1::ListIncidentsRequest& req,
          uint64_t limit, int64_t interval_ns) {
  g_stop_watch.store(false);
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = OnWatchSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  const bool redraw = !ctx.json && &ctx.out == &std::cout && isatty(STDOUT_FILENO);
  std::map<std::string, uint32_t> seen;  // id -> revision printed
  bool answered = false, failing = false;
  int code = kExitOk;
  while (!g_stop_watch.load()) {
    std::vector<Incident> incidents;
    const int rc = FetchIncidents(ctx, stub, req, limit, &incidents);
    if (rc != kExitOk) {
      if (!answered) {
        code = rc;
        break;
      }
      if (!failing)
        ctx.err << "triplinectl: retrying every " << FormatDurationNs(interval_ns) << "\n";
      failing = true;
    } else {
      answered = true;
      if (failing) ctx.err << "triplinectl: the aggregator answers again\n";
      failing = false;
      if (redraw) {
        ctx.out << "\x1b[H\x1b[2J"
                << "incidents on " << CtlContext::Show(ctx.connection.aggregator) << " at "
                << FormatTimeNs(ctx.clock.NowNs()) << " (every " << FormatDurationNs(interval_ns)
                << "; Ctrl-C ends)\n\n";
        PrintIncidentTable(ctx, incidents);
      } else {
        // Oldest activity first, so that a reader sees the order things happened in.
        for (auto it = incidents.rbegin(); it != incidents.rend(); ++it) {
          const Incident& i = *it;
          const auto prev = seen.find(i.id);
          if (prev != seen.end() && prev->second >= i.revision) continue;
          const bool grew = prev != seen.end();
          seen[i.id] = i.revision;
          if (ctx.json) {
            ctx.out << IncidentToJson(i).dump() << "\n";
          } else {
            ctx.out << (grew ? "grew " : "new  ") << CtlContext::Show(i.id) << "  "
                    << SeverityName(i.severity) << "  revision " << i.revision << "  "
                    << FormatTimeNs(i.last_seen_ns) << "  " << CtlContext::Join(i.hosts, " → ")
                    << "  " << CtlContext::Show(i.title) << "\n";
          }
        }
      }
      ctx.out.flush();
    }
    for (int64_t slept = 0; slept < interval_ns && !g_stop_watch.load();
         slept += 50 * kNanosPerMilli) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return code;
}

int RunIncidents(CtlContext& ctx, const IncidentsFlags& f) {
  v1::ListIncidentsRequest req;
  if (!f.min_severity.empty()) {
    Severity min = Severity::kInfo;
    ParseSeverityName(f.min_severity, &min);  // CLI11 checked it
    req.set_min_severity(static_cast<v1::Severity>(min));
  }
  int64_t interval_ns = 0;
  if (f.watch) {
    auto t = ParseDurationNs(f.interval);
    if (!t.ok() || *t < 100 * kNanosPerMilli) {
      return ctx.Usage("--interval wants a duration of 100ms or more, got '" + f.interval + "'",
                       "incidents");
    }
    interval_ns = *t;
  }
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  if (f.watch) return Watch(ctx, *stub, req, f.limit, interval_ns);
  std::vector<Incident> incidents;
  if (int rc = FetchIncidents(ctx, *stub, req, f.limit, &incidents); rc != kExitOk) return rc;
  if (ctx.json) {
    json a = json::array();
    for (const auto& i : incidents) a.push_back(IncidentToJson(i));
    ctx.out << a.dump(2) << "\n";
    return kExitOk;
  }
  PrintIncidentTable(ctx, incidents);
  return kExitOk;
}

// The chain as a person draws it: one line per hop, the arrow labelled with the account
// that logged in, the time, and the gap since the previous hop.
//
//   hosta ──alice──▶ hostb   03:41:12.301Z
//   hostb ──root───▶ hostc   03:41:15.880Z  (+3 s)
std::string DrawChain(const Incident& i) {
  using C = CtlContext;
  size_t from_width = 0, user_width = 0, to_width = 0;
  for (const auto& h : i.chain) {
    from_width = std::max(from_width, DisplayWidth(C::Show(h.from)));
    user_width = std::max(user_width, DisplayWidth(C::Show(h.user)));
    to_width = std::max(to_width, DisplayWidth(C::Show(h.to)));
  }
  std::string out = "  " + C::Join(i.hosts, " → ") + "\n\n";
  int64_t previous = 0;
  for (const auto& h : i.chain) {
    const std::string from = C::Show(h.from), user = C::Show(h.user), to = C::Show(h.to);
    std::string line =
        "  " + from + std::string(from_width - DisplayWidth(from), ' ') + " ──" + user;
    for (size_t k = DisplayWidth(user); k < user_width; ++k) line += "─";
    line +=
        "──▶ " + to + std::string(to_width - DisplayWidth(to), ' ') + "   " + FormatTimeNs(h.at_ns);
    if (h.port != 0 && h.port != 22) line += "  port " + std::to_string(h.port);
    if (previous != 0) line += "  (+" + FormatDurationNs(h.at_ns - previous) + ")";
    previous = h.at_ns;
    out += line + "\n";
  }
  return out;
}

int RunIncident(CtlContext& ctx, const IncidentFlags& f) {
  if (f.id.size() != 1) return ctx.Usage("incident takes one ID", "incident");
  if (!f.graph.empty() && ctx.json) {
    return ctx.Usage("--graph and --json go one at a time", "incident");
  }
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  v1::GetIncidentRequest req;
  req.set_id(f.id[0]);
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::Incident wire;
  const grpc::Status s = stub->GetIncident(&call, req, &wire);
  if (!s.ok()) return ctx.RpcFailed("GetIncident", s);
  auto parsed = FromProto(wire);
  if (!parsed.ok()) return BadAnswer(ctx, "GetIncident", parsed.status());
  const Incident& i = *parsed;
  if (!f.graph.empty()) {
    auto drawn = RenderIncidentGraph(i, f.graph == "svg" ? GraphFormat::kSvg : GraphFormat::kDot);
    if (!drawn.ok()) {
      ctx.err << "triplinectl: cannot draw the chain: " << drawn.status().message() << "\n";
      return kExitServerError;
    }
    ctx.out << *drawn;
    return kExitOk;
  }
  if (ctx.json) {
    ctx.out << IncidentToJson(i).dump(2) << "\n";
    return kExitOk;
  }
  using C = CtlContext;
  char confidence[16];
  std::snprintf(confidence, sizeof(confidence), "%.2f", i.confidence);
  ctx.out << "incident " << C::Show(i.id) << "  " << SeverityName(i.severity) << ", confidence "
          << confidence << ", revision " << i.revision << "\n"
          << C::Show(i.title) << "\n\n"
          << "first seen   " << FormatTimeNs(i.first_seen_ns) << "\n"
          << "last seen    " << FormatTimeNs(i.last_seen_ns) << "\n"
          << "identities   " << C::Join(i.identities, ", ") << "\n"
          << "techniques   " << C::Join(i.techniques, ", ") << "\n";
  if (!i.chain.empty()) ctx.out << "\nchain\n" << DrawChain(i);
  if (!i.explanation.empty()) {
    ctx.out << "\nexplanation\n";
    for (const auto& line : i.explanation) ctx.out << "  - " << C::Show(line) << "\n";
  }
  if (!i.events.empty()) {
    ctx.out << "\nevents\n";
    Table t({"  TIME", "HOST", "KIND", "SUMMARY"});
    for (const auto& e : i.events) {
      t.AddRow({"  " + FormatTimeNs(e.time_ns), e.host, e.kind, e.summary});
    }
    t.Print(ctx.out);
  }
  return kExitOk;
}

}  // namespace

void RegisterIncidentCommands(CLI::App& app, CtlContext& ctx) {
  auto list = std::make_shared<IncidentsFlags>();
  CLI::App* incidents = ctx.AddCommand(app, "incidents", "incidents, most recent activity first",
                                       [&ctx, list] { return RunIncidents(ctx, *list); });
  ctx.Choices(incidents
                  ->add_option("--min-severity", list->min_severity,
                               "only incidents at or above this severity")
                  ->type_name("LEVEL"),
              {"info", "low", "medium", "high", "critical"});
  incidents->add_option("--limit", list->limit, "at most N (default: one page of 1000)")
      ->type_name("N")
      ->check(kCount);
  incidents->add_flag("--watch", list->watch,
                      "live view: redraw on a terminal; otherwise print each incident when it "
                      "appears and again when it grows (with --json one object a line)");
  incidents->add_option("--interval", list->interval, "how often --watch asks")
      ->type_name("DURATION")
      ->default_str("2s");
  ctx.AddJsonFlag(incidents, "a JSON array of incidents");

  auto one = std::make_shared<IncidentFlags>();
  CLI::App* incident = ctx.AddCommand(app, "incident", "one incident: its chain, story, evidence",
                                      [&ctx, one] { return RunIncident(ctx, *one); });
  incident->add_option("ID", one->id, "the incident's id (inc-...)")->type_name("ID");
  ctx.Choices(incident
                  ->add_option("--graph", one->graph,
                               "draw the chain with Graphviz: DOT text or an SVG picture")
                  ->type_name("FORMAT"),
              {"dot", "svg"});
  ctx.AddJsonFlag(incident, "one JSON object");
}

}  // namespace tripline::ctl
