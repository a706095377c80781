// triplinectl stats: the aggregator's counters and every sensor's state.
#include <nlohmann/json.hpp>

#include "tools/ctl/ctl_context.h"
#include "tools/ctl/ctl_table.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

int RunStats(CtlContext& ctx) {
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  grpc::ClientContext call;
  ctx.Prepare(&call);
  v1::Stats st;
  const grpc::Status s = stub->GetStats(&call, v1::GetStatsRequest(), &st);
  if (!s.ok()) return ctx.RpcFailed("GetStats", s);
  const auto when = [](int64_t ns) { return ns > 0 ? FormatTimeNs(ns) : std::string("-"); };
  if (ctx.json) {
    json sensors = json::array();
    for (const auto& x : st.sensors()) {
      json families = json::array();
      for (const auto& f : x.families()) {
        families.push_back({{"name", f.name()},
                            {"state", f.state()},
                            {"hooks", f.hooks()},
                            {"reason", f.reason()},
                            {"remedy", f.remedy()}});
      }
      sensors.push_back({{"sensor_id", x.sensor_id()},
                         {"host", x.host()},
                         {"connected", x.connected()},
                         {"durable_seq", x.durable_seq()},
                         {"events", x.events()},
                         {"ringbuf_drops", x.ringbuf_drops()},
                         {"spool_drops", x.spool_drops()},
                         {"decode_errors", x.decode_errors()},
                         {"last_seen", when(x.last_seen_ns())},
                         {"families", std::move(families)}});
    }
    json forwards = json::array();
    for (const auto& f : st.forwards()) {
      forwards.push_back({{"url", f.url()},
                          {"format", f.format()},
                          {"backlog", f.backlog()},
                          {"oldest_queued", when(f.oldest_queued_ns())},
                          {"delivered", f.delivered()},
                          {"rejected", f.rejected()},
                          {"failures", f.failures()},
                          {"last_error", f.last_error()},
                          {"last_delivered", when(f.last_delivered_ns())},
                          {"connected", f.connected()}});
    }
    ctx.out << json{{"events_stored", st.events_stored()},
                    {"events_per_second", st.events_per_second()},
                    {"identities", st.identities()},
                    {"sensors_connected", st.sensors_connected()},
                    {"incidents", st.incidents()},
                    {"duplicates_dropped", st.duplicates_dropped()},
                    {"batches_rejected", st.batches_rejected()},
                    {"correlation_events_fed", st.correlation_events_fed()},
                    {"correlation_backlog", st.correlation_backlog()},
                    {"correlation_behind", st.correlation_behind()},
                    {"correlation_fell_behind", st.correlation_fell_behind()},
                    {"baseline_identities", st.baseline_identities()},
                    {"baseline_warming", st.baseline_warming()},
                    {"baseline_events_scored", st.baseline_events_scored()},
                    {"baseline_not_learned", st.baseline_not_learned()},
                    {"forwards", std::move(forwards)},
                    {"sensors", std::move(sensors)}}
                   .dump(2)
            << "\n";
    return 0;
  }
  char rate[32];
  std::snprintf(rate, sizeof(rate), "%.1f", st.events_per_second());
  Table summary({"STAT", "VALUE"});
  summary.AddRow({"events stored", std::to_string(st.events_stored())});
  summary.AddRow({"events/s (last minute)", rate});
  summary.AddRow({"identities", std::to_string(st.identities())});
  summary.AddRow({"sensors connected", std::to_string(st.sensors_connected())});
  summary.AddRow({"incidents", std::to_string(st.incidents())});
  summary.AddRow({"duplicates dropped", std::to_string(st.duplicates_dropped())});
  summary.AddRow({"batches rejected", std::to_string(st.batches_rejected())});
  summary.AddRow({"events correlated", std::to_string(st.correlation_events_fed())});
  summary.AddRow({"correlation backlog",
                  std::to_string(st.correlation_backlog()) +
                      (st.correlation_behind() ? " (behind: reading back from the store)" : "")});
  summary.AddRow({"baselines (warming up)", std::to_string(st.baseline_identities()) + " (" +
                                                std::to_string(st.baseline_warming()) + ")"});
  summary.AddRow({"baseline: scored / not learned", std::to_string(st.baseline_events_scored()) +
                                                        " / " +
                                                        std::to_string(st.baseline_not_learned())});
  summary.Print(ctx.out);
  ctx.out << "\n";
  Table sensors({"SENSOR", "HOST", "CONNECTED", "DURABLE_SEQ", "EVENTS", "RINGBUF_DROPS",
                 "SPOOL_DROPS", "DECODE_ERRORS", "LAST_SEEN", "HOOKS"});
  std::vector<std::string> blind;  // one paragraph per family that is not live
  for (const auto& x : st.sensors()) {
    std::string hooks;
    for (const auto& f : x.families()) {
      if (f.state() == "live") continue;
      hooks += (hooks.empty() ? "" : ", ") + f.name() + " " + f.state();
      std::string line = CtlContext::Show(x.host()) + " (" + CtlContext::Show(x.sensor_id()) +
                         "): " + CtlContext::Show(f.name()) + " " + CtlContext::Show(f.state());
      if (!f.hooks().empty()) line += " to " + CtlContext::Show(f.hooks());
      line += ": " + CtlContext::Show(f.reason());
      if (!f.remedy().empty()) line += "\n    remedy: " + CtlContext::Show(f.remedy());
      blind.push_back(std::move(line));
    }
    if (hooks.empty()) hooks = x.families().empty() ? "-" : "all live";
    sensors.AddRow({x.sensor_id(), x.host(), x.connected() ? "yes" : "no",
                    std::to_string(x.durable_seq()), std::to_string(x.events()),
                    std::to_string(x.ringbuf_drops()), std::to_string(x.spool_drops()),
                    std::to_string(x.decode_errors()), when(x.last_seen_ns()), hooks});
  }
  sensors.Print(ctx.out);
  if (st.forwards_size() > 0) {
    ctx.out << "\n";
    Table outputs({"OUTPUT", "FORMAT", "BACKLOG", "OLDEST_QUEUED", "DELIVERED", "REJECTED",
                   "FAILURES", "LAST_ERROR"});
    for (const auto& f : st.forwards()) {
      outputs.AddRow({f.url(), f.format(), std::to_string(f.backlog()),
                      f.oldest_queued_ns() == 0 ? "-" : when(f.oldest_queued_ns()),
                      std::to_string(f.delivered()), std::to_string(f.rejected()),
                      std::to_string(f.failures()), f.last_error()});
    }
    outputs.Print(ctx.out);
  }
  if (!blind.empty()) {
    ctx.out << "\nHook families not live (what Tripline cannot fully see on these hosts):\n";
    for (const std::string& b : blind) ctx.out << "  " << b << "\n";
  }
  return 0;
}

}  // namespace

void RegisterStatsCommands(CLI::App& app, CtlContext& ctx) {
  CLI::App* stats = ctx.AddCommand(app, "stats", "the aggregator's counters and its sensors",
                                   [&ctx] { return RunStats(ctx); });
  ctx.AddJsonFlag(stats, "one JSON object");
}

}  // namespace tripline::ctl
