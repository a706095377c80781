// triplinectl events: stored events, filtered, as a table or JSON.
#include <nlohmann/json.hpp>

#include "common/text_escape.h"
#include "model/event_json.h"
#include "model/event_proto.h"
#include "tools/ctl/ctl_context.h"
#include "tools/ctl/ctl_table.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

// Events fetched per ListEvents call while paging.
constexpr uint32_t kEventPage = 1000;

struct EventFlags {
  std::string host, user, kind, since, until;
  int64_t limit = 1000;
};

std::string EventUser(const Event& e) {
  if (const auto* login = e.As<LoginEvent>(); login && !login->user.empty()) return login->user;
  if (!e.process.user.empty()) return e.process.user;
  return e.process.login_user;
}

int RunEvents(CtlContext& ctx, const EventFlags& f) {
  v1::ListEventsRequest req;
  req.set_host(f.host);
  req.set_user(f.user);
  req.set_kind(f.kind);
  int64_t since = 0, until = 0;
  if (auto e = ParseTimeFlag("--since", f.since, ctx.clock, &since); !e.empty()) {
    return ctx.Usage(e, "events");
  }
  if (auto e = ParseTimeFlag("--until", f.until, ctx.clock, &until); !e.empty()) {
    return ctx.Usage(e, "events");
  }
  req.set_since_ns(since);
  req.set_until_ns(until);
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;

  const uint64_t limit = static_cast<uint64_t>(f.limit);
  std::vector<std::pair<std::string, Event>> events;
  while (limit == 0 || events.size() < limit) {
    const uint64_t want =
        limit == 0 ? kEventPage : std::min<uint64_t>(kEventPage, limit - events.size());
    req.set_limit(static_cast<uint32_t>(want));
    grpc::ClientContext call;
    ctx.Prepare(&call);
    v1::ListEventsResponse resp;
    const grpc::Status s = stub->ListEvents(&call, req, &resp);
    if (!s.ok()) return ctx.RpcFailed("ListEvents", s);
    for (const auto& stored : resp.events()) {
      auto e = FromProto(stored.event());
      if (!e.ok()) {
        ctx.err << "triplinectl: the aggregator returned an invalid event: "
                << EscapeForDisplay(e.status().message()) << "\n";
        return kExitServerError;
      }
      events.emplace_back(stored.sensor_id(), std::move(e).value());
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }

  if (ctx.json) {
    json a = json::array();
    for (const auto& [sensor, e] : events) {
      json j = EventToJson(e);
      j["sensor_id"] = sensor;
      a.push_back(std::move(j));
    }
    ctx.out << a.dump(2) << "\n";
    return kExitOk;
  }
  Table t({"TIME", "HOST", "KIND", "USER", "SENSOR", "SEQ", "SUMMARY"});
  for (const auto& [sensor, e] : events) {
    t.AddRow({FormatTimeNs(e.time_ns), e.host, std::string(KindName(e.kind())), EventUser(e),
              sensor, std::to_string(e.seq), Summarize(e)});
  }
  t.Print(ctx.out);
  return kExitOk;
}

}  // namespace

void RegisterEventCommands(CLI::App& app, CtlContext& ctx) {
  auto f = std::make_shared<EventFlags>();
  CLI::App* events = ctx.AddCommand(app, "events", "stored events, oldest first",
                                    [&ctx, f] { return RunEvents(ctx, *f); });
  events->add_option("--host", f->host, "exact host name")->type_name("HOST");
  events->add_option("--user", f->user, "the login user or the process user")->type_name("USER");
  ctx.Choices(events->add_option("--kind", f->kind, "one kind of event")->type_name("KIND"),
              {"login", "file_open", "exec", "net", "posture", "health"});
  events->add_option("--since", f->since, "from: a duration ago (10m, 2h, 7d) or RFC 3339 time")
      ->type_name("TIME");
  events->add_option("--until", f->until, "before: a duration ago or an RFC 3339 time")
      ->type_name("TIME");
  events->add_option("--limit", f->limit, "at most N events; 0 fetches everything")
      ->type_name("N")
      ->check(kCount)
      ->default_str("1000");
  ctx.AddJsonFlag(events, "a JSON array of events");
}

}  // namespace tripline::ctl
