#include "tools/ctl/ctl_commands.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/host_port.h"
#include "common/text_escape.h"
#include "model/event_json.h"
#include "model/event_proto.h"
#include "model/incident.h"
#include "model/incident_proto.h"
#include "tools/ctl/ctl_table.h"
#include "tools/import/log_importer.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

// Events fetched per ListEvents call while paging.
constexpr uint32_t kEventPage = 1000;
constexpr uint64_t kDefaultEventLimit = 1000;

struct UsageError {
  std::string message;
};

struct Options {
  std::string aggregator;
  std::string ca, cert, key, server_name;
  int64_t timeout_ns = 10 * kNanosPerSecond;
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // subcommand flags, "" for switches
};

// Which flags each subcommand takes; true when the flag takes a value.
const std::map<std::string, std::map<std::string, bool>>& CommandFlags() {
  static const auto* flags = new std::map<std::string, std::map<std::string, bool>>{
      {"events",
       {{"--host", true},
        {"--user", true},
        {"--kind", true},
        {"--since", true},
        {"--until", true},
        {"--limit", true},
        {"--json", false}}},
      {"stats", {{"--json", false}}},
      {"incidents", {{"--json", false}, {"--min-severity", true}, {"--limit", true}}},
      {"incident", {{"--json", false}}},
      {"baseline", {{"--json", false}}},
      {"feedback", {}},
      {"import",
       {{"--format", true},
        {"--host", true},
        {"--year", true},
        {"--utc-offset", true},
        {"--dry-run", false},
        {"--json", false}}},
  };
  return *flags;
}

std::optional<UsageError> ParseArgs(const std::vector<std::string>& args, Options* o) {
  static const std::map<std::string, std::string Options::*> kGlobal = {
      {"--aggregator", &Options::aggregator},
      {"--ca", &Options::ca},
      {"--cert", &Options::cert},
      {"--key", &Options::key},
      {"--server-name", &Options::server_name}};
  std::string timeout;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool inline_value = false;
    if (const size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    const auto take = [&]() -> std::optional<UsageError> {
      if (inline_value) return std::nullopt;
      if (i + 1 >= args.size()) return UsageError{flag + " needs a value"};
      value = args[++i];
      return std::nullopt;
    };
    if (flag.rfind("-", 0) != 0 || flag == "-") {
      if (o->command.empty()) {
        o->command = flag;
        if (!CommandFlags().count(o->command)) {
          return UsageError{"unknown subcommand '" + o->command + "'"};
        }
      } else {
        o->positional.push_back(args[i]);
      }
      continue;
    }
    if (auto g = kGlobal.find(flag); g != kGlobal.end()) {
      if (auto e = take()) return e;
      o->*(g->second) = value;
      continue;
    }
    if (flag == "--timeout") {
      if (auto e = take()) return e;
      timeout = value;
      continue;
    }
    if (flag == "--help" || flag == "-h") return UsageError{""};
    if (o->command.empty()) return UsageError{"unknown flag '" + flag + "'"};
    const auto& allowed = CommandFlags().at(o->command);
    const auto f = allowed.find(flag);
    if (f == allowed.end()) {
      return UsageError{"unknown flag '" + flag + "' for " + o->command};
    }
    if (f->second) {
      if (auto e = take()) return e;
    } else if (inline_value) {
      return UsageError{flag + " takes no value"};
    }
    o->flags[flag] = value;
  }
  if (o->command.empty()) return UsageError{"no subcommand"};
  const bool dry_run = o->command == "import" && o->flags.count("--dry-run") > 0;
  if (o->aggregator.empty() && !dry_run) {
    return UsageError{"--aggregator HOST:PORT is required"};
  }
  if (auto hp = ParseHostPort(o->aggregator); !dry_run && !hp.ok()) {
    return UsageError{hp.status().message()};
  }
  if (o->cert.empty() != o->key.empty()) return UsageError{"--cert and --key go together"};
  if (!o->cert.empty() && o->ca.empty()) return UsageError{"--cert/--key need --ca"};
  if (!timeout.empty()) {
    auto t = ParseDurationNs(timeout);
    if (!t.ok() || *t <= 0) return UsageError{"--timeout wants a duration such as 10s"};
    o->timeout_ns = *t;
  }
  const size_t want_positional =
      o->command == "incident" || o->command == "baseline" || o->command == "import" ? 1
      : o->command == "feedback"                                                     ? 2
                                                                                     : 0;
  if (o->positional.size() != want_positional) {
    return UsageError{o->command == "incident"   ? "incident takes one ID"
                      : o->command == "baseline" ? "baseline takes one IDENTITY"
                      : o->command == "feedback" ? "feedback takes INCIDENT benign|expected"
                      : o->command == "import"   ? "import takes one FILE"
                                                 : o->command + " takes no arguments"};
  }
  if (o->command == "feedback" && o->positional[1] != "benign" && o->positional[1] != "expected") {
    return UsageError{"feedback wants benign or expected, got '" + o->positional[1] + "'"};
  }
  return std::nullopt;
}

std::optional<UsageError> ParseTimeFlag(const Options& o, const std::string& flag,
                                        const Clock& clock, int64_t* out) {
  const auto it = o.flags.find(flag);
  if (it == o.flags.end()) return std::nullopt;
  if (auto d = ParseDurationNs(it->second); d.ok()) {
    *out = clock.NowNs() - *d;
    return std::nullopt;
  }
  auto t = ParseTimeNs(it->second);
  if (!t.ok()) {
    return UsageError{flag + " wants a duration ago (10m) or an RFC 3339 time, got '" + it->second +
                      "'"};
  }
  *out = *t;
  return std::nullopt;
}

std::optional<UsageError> ParseCount(const Options& o, const std::string& flag, uint64_t* out) {
  const auto it = o.flags.find(flag);
  if (it == o.flags.end()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno != 0 || it->second[0] == '-') {
    return UsageError{flag + " wants a number, got '" + it->second + "'"};
  }
  *out = n;
  return std::nullopt;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::shared_ptr<grpc::Channel>> MakeChannel(const Options& o) {
  if (o.ca.empty()) {
    return grpc::CreateChannel(o.aggregator, grpc::InsecureChannelCredentials());
  }
  grpc::SslCredentialsOptions ssl;
  TL_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(o.ca));
  if (!o.cert.empty()) {
    TL_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFile(o.cert));
    TL_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile(o.key));
  }
  grpc::ChannelArguments args;
  if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
  return grpc::CreateCustomChannel(o.aggregator, grpc::SslCredentials(ssl), args);
}

std::string EventUser(const Event& e) {
  if (const auto* login = e.As<LoginEvent>(); login && !login->user.empty()) return login->user;
  if (!e.process.user.empty()) return e.process.user;
  return e.process.login_user;
}

class Ctl {
 public:
  Ctl(Options options, std::ostream& out, std::ostream& err, const Clock& clock)
      : o_(std::move(options)), out_(out), err_(err), clock_(clock) {}

  int Run() {
    if (o_.command == "import") return Import();
    auto channel = MakeChannel(o_);
    if (!channel.ok()) {
      err_ << "triplinectl: " << channel.status().message() << "\n";
      return 2;
    }
    stub_ = v1::Query::NewStub(*channel);
    if (o_.command == "events") return Events();
    if (o_.command == "stats") return Stats();
    if (o_.command == "incidents") return Incidents();
    if (o_.command == "baseline") return Baseline();
    if (o_.command == "feedback") return Feedback();
    return IncidentDetail();
  }

 private:
  bool want_json() const { return o_.flags.count("--json") > 0; }

  void Prepare(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::nanoseconds(o_.timeout_ns));
  }

  int RpcFailed(const char* rpc, const grpc::Status& s) {
    err_ << "triplinectl: " << rpc << " on " << o_.aggregator
         << " failed: " << StatusCodeName(s.error_code()) << ": "
         << EscapeForDisplay(s.error_message()) << "\n";
    return 1;
  }

  int Usage(const UsageError& e) {
    err_ << "triplinectl: " << e.message << "\n\n" << CtlUsage();
    return 2;
  }

  static const char* StatusCodeName(grpc::StatusCode c) {
    switch (c) {
      case grpc::StatusCode::CANCELLED: return "CANCELLED";
      case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
      case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
      case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
      case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
      case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
      case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
      case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
      case grpc::StatusCode::INTERNAL: return "INTERNAL";
      case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
      case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
      case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
      default: return "ERROR";
    }
  }

  int Events() {
    v1::ListEventsRequest req;
    if (auto it = o_.flags.find("--host"); it != o_.flags.end()) req.set_host(it->second);
    if (auto it = o_.flags.find("--user"); it != o_.flags.end()) req.set_user(it->second);
    if (auto it = o_.flags.find("--kind"); it != o_.flags.end()) {
      EventKind kind;
      if (!ParseKindName(it->second, &kind)) {
        return Usage({"--kind wants login, file_open, exec, net, posture or health"});
      }
      req.set_kind(it->second);
    }
    int64_t since = 0, until = 0;
    if (auto e = ParseTimeFlag(o_, "--since", clock_, &since)) return Usage(*e);
    if (auto e = ParseTimeFlag(o_, "--until", clock_, &until)) return Usage(*e);
    uint64_t limit = kDefaultEventLimit;
    if (auto e = ParseCount(o_, "--limit", &limit)) return Usage(*e);
    req.set_since_ns(since);
    req.set_until_ns(until);

    std::vector<std::pair<std::string, Event>> events;
    while (limit == 0 || events.size() < limit) {
      const uint64_t want =
          limit == 0 ? kEventPage : std::min<uint64_t>(kEventPage, limit - events.size());
      req.set_limit(static_cast<uint32_t>(want));
      grpc::ClientContext ctx;
      Prepare(&ctx);
      v1::ListEventsResponse resp;
      const grpc::Status s = stub_->ListEvents(&ctx, req, &resp);
      if (!s.ok()) return RpcFailed("ListEvents", s);
      for (const auto& stored : resp.events()) {
        auto e = FromProto(stored.event());
        if (!e.ok()) {
          err_ << "triplinectl: the aggregator returned an invalid event: "
               << EscapeForDisplay(e.status().message()) << "\n";
          return 1;
        }
        events.emplace_back(stored.sensor_id(), std::move(e).value());
      }
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }

    if (want_json()) {
      json a = json::array();
      for (const auto& [sensor, e] : events) {
        json j = EventToJson(e);
        j["sensor_id"] = sensor;
        a.push_back(std::move(j));
      }
      out_ << a.dump(2) << "\n";
      return 0;
    }
    Table t({"TIME", "HOST", "KIND", "USER", "SENSOR", "SEQ", "SUMMARY"});
    for (const auto& [sensor, e] : events) {
      t.AddRow({FormatTimeNs(e.time_ns), e.host, std::string(KindName(e.kind())), EventUser(e),
                sensor, std::to_string(e.seq), Summarize(e)});
    }
    t.Print(out_);
    return 0;
  }

  int Stats() {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::Stats st;
    const grpc::Status s = stub_->GetStats(&ctx, v1::GetStatsRequest(), &st);
    if (!s.ok()) return RpcFailed("GetStats", s);
    const auto when = [](int64_t ns) { return ns > 0 ? FormatTimeNs(ns) : std::string("-"); };
    if (want_json()) {
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
      out_ << json{{"events_stored", st.events_stored()},
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
    summary.Print(out_);
    out_ << "\n";
    Table sensors({"SENSOR", "HOST", "CONNECTED", "DURABLE_SEQ", "EVENTS", "RINGBUF_DROPS",
                   "SPOOL_DROPS", "DECODE_ERRORS", "LAST_SEEN", "HOOKS"});
    std::vector<std::string> blind;  // one paragraph per family that is not live
    for (const auto& x : st.sensors()) {
      std::string hooks;
      for (const auto& f : x.families()) {
        if (f.state() == "live") continue;
        hooks += (hooks.empty() ? "" : ", ") + f.name() + " " + f.state();
        std::string line = Show(x.host()) + " (" + Show(x.sensor_id()) + "): " + Show(f.name()) +
                           " " + Show(f.state());
        if (!f.hooks().empty()) line += " to " + Show(f.hooks());
        line += ": " + Show(f.reason());
        if (!f.remedy().empty()) line += "\n    remedy: " + Show(f.remedy());
        blind.push_back(std::move(line));
      }
      if (hooks.empty()) hooks = x.families().empty() ? "-" : "all live";
      sensors.AddRow({x.sensor_id(), x.host(), x.connected() ? "yes" : "no",
                      std::to_string(x.durable_seq()), std::to_string(x.events()),
                      std::to_string(x.ringbuf_drops()), std::to_string(x.spool_drops()),
                      std::to_string(x.decode_errors()), when(x.last_seen_ns()), hooks});
    }
    sensors.Print(out_);
    if (!blind.empty()) {
      out_ << "\nHook families not live (what Tripline cannot fully see on these hosts):\n";
      for (const std::string& b : blind) out_ << "  " << b << "\n";
    }
    return 0;
  }

  int Incidents() {
    v1::ListIncidentsRequest req;
    if (auto it = o_.flags.find("--min-severity"); it != o_.flags.end()) {
      bool found = false;
      for (int s = v1::SEVERITY_INFO; s <= v1::SEVERITY_CRITICAL; ++s) {
        if (SeverityName(static_cast<Severity>(s)) == it->second) {
          req.set_min_severity(static_cast<v1::Severity>(s));
          found = true;
        }
      }
      if (!found) return Usage({"--min-severity wants info, low, medium, high or critical"});
    }
    uint64_t limit = 0;
    if (auto e = ParseCount(o_, "--limit", &limit)) return Usage(*e);
    // The aggregator answers at most a page (1000) per call: a larger --limit follows the
    // pages; no --limit is one page.
    std::vector<Incident> incidents;
    do {
      req.set_limit(static_cast<uint32_t>(
          std::min<uint64_t>(limit == 0 ? 0 : limit - incidents.size(), UINT32_MAX)));
      grpc::ClientContext ctx;
      Prepare(&ctx);
      v1::ListIncidentsResponse resp;
      const grpc::Status s = stub_->ListIncidents(&ctx, req, &resp);
      if (!s.ok()) return RpcFailed("ListIncidents", s);
      for (const auto& wire : resp.incidents()) {
        auto i = FromProto(wire);
        if (!i.ok()) return BadAnswer("ListIncidents", i.status());
        incidents.push_back(std::move(*i));
      }
      req.set_page_token(resp.next_page_token());
    } while (limit > incidents.size() && !req.page_token().empty());
    if (want_json()) {
      json a = json::array();
      for (const auto& i : incidents) a.push_back(IncidentToJson(i));
      out_ << a.dump(2) << "\n";
      return 0;
    }
    Table t({"ID", "SEVERITY", "LAST_SEEN", "HOSTS", "TITLE"});
    for (const auto& i : incidents) {
      t.AddRow({i.id, std::string(SeverityName(i.severity)), FormatTimeNs(i.last_seen_ns),
                Join(i.hosts, " → "), i.title});
    }
    t.Print(out_);
    return 0;
  }

  int IncidentDetail() {
    v1::GetIncidentRequest req;
    req.set_id(o_.positional[0]);
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::Incident wire;
    const grpc::Status s = stub_->GetIncident(&ctx, req, &wire);
    if (!s.ok()) return RpcFailed("GetIncident", s);
    auto parsed = FromProto(wire);
    if (!parsed.ok()) return BadAnswer("GetIncident", parsed.status());
    const Incident& i = *parsed;
    if (want_json()) {
      out_ << IncidentToJson(i).dump(2) << "\n";
      return 0;
    }
    char confidence[16];
    std::snprintf(confidence, sizeof(confidence), "%.2f", i.confidence);
    out_ << "incident " << Show(i.id) << "  " << SeverityName(i.severity) << ", confidence "
         << confidence << ", revision " << i.revision << "\n"
         << Show(i.title) << "\n\n"
         << "first seen   " << FormatTimeNs(i.first_seen_ns) << "\n"
         << "last seen    " << FormatTimeNs(i.last_seen_ns) << "\n"
         << "identities   " << Join(i.identities, ", ") << "\n"
         << "techniques   " << Join(i.techniques, ", ") << "\n";
    if (!i.chain.empty()) out_ << "\nchain\n" << DrawChain(i);
    if (!i.explanation.empty()) {
      out_ << "\nexplanation\n";
      for (const auto& line : i.explanation) out_ << "  - " << Show(line) << "\n";
    }
    if (!i.events.empty()) {
      out_ << "\nevents\n";
      Table t({"  TIME", "HOST", "KIND", "SUMMARY"});
      for (const auto& e : i.events) {
        t.AddRow({"  " + FormatTimeNs(e.time_ns), e.host, e.kind, e.summary});
      }
      t.Print(out_);
    }
    return 0;
  }

  int Baseline() {
    v1::GetBaselineRequest req;
    req.set_identity(o_.positional[0]);
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::Baseline b;
    const grpc::Status s = stub_->GetBaseline(&ctx, req, &b);
    if (!s.ok()) return RpcFailed("GetBaseline", s);
    if (want_json()) {
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
      out_ << j.dump(2) << "\n";
      return 0;
    }
    char score[16];
    std::snprintf(score, sizeof score, "%.2f", b.last_score());
    out_ << "baseline " << b.identity() << "  " << b.kind() << ", " << b.observations()
         << " observations, " << (b.warm() ? "warm" : "warming up") << "\n"
         << "first seen   " << FormatTimeNs(b.first_seen_ns()) << "\n"
         << "last seen    " << FormatTimeNs(b.last_seen_ns()) << "\n";
    if (!b.usual_hours().empty()) out_ << "usual hours  " << b.usual_hours() << " UTC\n";
    if (!b.peer_group().empty()) out_ << "peer group   " << b.peer_group() << "\n";
    out_ << "last score   " << score << "\n";
    for (const auto& r : b.last_reasons()) out_ << "  - " << r << "\n";
    for (const auto& p : b.suppressed()) out_ << "suppressed   " << p << "\n";
    out_ << "\n";
    Table t({"FEATURE", "WEIGHT", "COUNT"});
    for (const auto& f : b.features()) {
      char w[32];
      std::snprintf(w, sizeof w, "%.2f", f.weight());
      t.AddRow({f.name(), w, std::to_string(f.count())});
    }
    t.Print(out_);
    return 0;
  }

  int Feedback() {
    v1::FeedbackRequest req;
    req.set_incident_id(o_.positional[0]);
    req.set_verdict(o_.positional[1] == "expected" ? v1::FEEDBACK_VERDICT_EXPECTED
                                                   : v1::FEEDBACK_VERDICT_BENIGN);
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v1::FeedbackResponse r;
    const grpc::Status s = stub_->Feedback(&ctx, req, &r);
    if (!s.ok()) return RpcFailed("Feedback", s);
    out_ << o_.positional[0] << ": " << r.summary() << "\n";
    return 0;
  }

  // The chain as a person draws it: one line per hop, the arrow labelled with the account
  // that logged in, the time, and the gap since the previous hop.
  //
  //   hosta ──alice──▶ hostb   03:41:12.301Z
  //   hostb ──root───▶ hostc   03:41:15.880Z  (+3 s)
  static std::string DrawChain(const Incident& i) {
    size_t from_width = 0, user_width = 0, to_width = 0;
    for (const auto& h : i.chain) {
      from_width = std::max(from_width, DisplayWidth(Show(h.from)));
      user_width = std::max(user_width, DisplayWidth(Show(h.user)));
      to_width = std::max(to_width, DisplayWidth(Show(h.to)));
    }
    std::string out = "  " + Join(i.hosts, " → ") + "\n\n";
    int64_t previous = 0;
    for (const auto& hop : i.chain) {
      const std::string from = Show(hop.from), user = Show(hop.user), to = Show(hop.to);
      const auto& h = hop;
      std::string line =
          "  " + from + std::string(from_width - DisplayWidth(from), ' ') + " ──" + user;
      for (size_t k = DisplayWidth(user); k < user_width; ++k) line += "─";
      line += "──▶ " + to + std::string(to_width - DisplayWidth(to), ' ') + "   " +
              FormatTimeNs(h.at_ns);
      if (h.port != 0 && h.port != 22) line += "  port " + std::to_string(h.port);
      if (previous != 0) line += "  (+" + FormatDurationNs(h.at_ns - previous) + ")";
      previous = h.at_ns;
      out += line + "\n";
    }
    return out;
  }

  // Exit codes of import: 0 done, 1 the aggregator failed (what it acknowledged stays; run
  // again to resume), 2 usage or unreadable file, 3 the aggregator rejected events, 4 no
  // line of the file is in the given format.
  int Import() {
    import::ImportOptions io;
    io.path = o_.positional[0];
    io.timeout_ns = o_.timeout_ns;
    const auto flag = [&](const char* name) -> const std::string* {
      const auto it = o_.flags.find(name);
      return it == o_.flags.end() ? nullptr : &it->second;
    };
    const std::string* format = flag("--format");
    if (format == nullptr || !import::ParseLogFormat(*format, &io.parse.format)) {
      return Usage({"import needs --format sshd-syslog or --format journal-json"});
    }
    const std::string* host = flag("--host");
    if (host == nullptr || host->empty()) {
      return Usage({"import needs --host NAME, the host the log was written on"});
    }
    // Host names are ASCII (RFC 1123); anything else would reach the store and the
    // incidents as is.
    if (host->size() > 255 ||
        !std::all_of(host->begin(), host->end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return Usage({"--host wants a host name (printable ASCII, at most 255 bytes)"});
    }
    io.parse.host = *host;
    if (const std::string* year = flag("--year")) {
      char* end = nullptr;
      const long y = std::strtol(year->c_str(), &end, 10);
      if (year->empty() || *end != '\0' || y < 1971 || y > 9999) {
        return Usage({"--year wants a year such as 2026, got '" + *year + "'"});
      }
      io.parse.year = static_cast<int>(y);
    }
    if (const std::string* offset = flag("--utc-offset")) {
      auto t = ParseTimeNs("1970-01-02T00:00:00" + *offset);
      if (!t.ok()) return Usage({"--utc-offset wants +HH:MM or -HH:MM, got '" + *offset + "'"});
      io.parse.utc_offset_s = 86400 - *t / kNanosPerSecond;
    }
    io.parse.now_ns = clock_.NowNs();
    const bool dry_run = o_.flags.count("--dry-run") > 0;
    std::shared_ptr<grpc::Channel> channel;
    if (!dry_run) {
      auto c = MakeChannel(o_);
      if (!c.ok()) {
        err_ << "triplinectl: " << c.status().message() << "\n";
        return 2;
      }
      channel = *c;
    }
    import::ImportReport report;
    const Status s =
        import::RunImport(io, channel, isatty(STDERR_FILENO) ? &err_ : nullptr, clock_, &report);
    if (!s.ok() && report.sensor_id.empty()) {  // the file could not be opened
      err_ << "triplinectl: import: " << s.message() << "\n";
      return 2;
    }
    if (want_json()) {
      out_ << import::ImportReportJson(report, io, dry_run) << "\n";
    } else {
      import::PrintImportReport(report, io, dry_run, out_);
    }
    if (!s.ok()) {
      err_ << "triplinectl: import: " << s.message() << "\n";
      const bool file = s.code() == Status::Code::kIoError || s.IsInvalidArgument();
      return file ? 2 : 1;
    }
    if (report.rejected > 0) return 3;
    if (report.lines > 0 && report.lines_malformed + report.lines_empty == report.lines) {
      err_ << "triplinectl: import: no line of " << io.path << " is " << *format
           << "; is --format right?\n";
      return 4;
    }
    return 0;
  }

  int BadAnswer(const char* rpc, const Status& why) {
    err_ << "triplinectl: " << rpc
         << " returned an incident it cannot read: " << EscapeForDisplay(why.ToString()) << "\n";
    return 1;
  }

  // Text from the aggregator, as it may be shown to a person (common/text_escape.h).
  static std::string Show(const std::string& text) { return EscapeForDisplay(text); }

  // The items, each escaped for display, joined by `sep`.
  static std::string Join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& item : items) {
      if (!out.empty()) out += sep;
      out += Show(item);
    }
    return out;
  }

  const Options o_;
  std::ostream& out_;
  std::ostream& err_;
  const Clock& clock_;
  std::unique_ptr<v1::Query::Stub> stub_;
};

}  // namespace

std::string CtlUsage() {
  return R"(usage: triplinectl --aggregator HOST:PORT [connection flags] SUBCOMMAND [flags]

subcommands:
  events     [--host H] [--user U] [--kind K] [--since T] [--until T] [--limit N] [--json]
             T is a duration ago (10m, 2h, 7d) or an RFC 3339 time; --limit 0 fetches
             everything (default 1000). K: login, file_open, exec, net, posture, health
  stats      [--json]
  incidents  [--min-severity info|low|medium|high|critical] [--limit N] [--json]
  incident ID [--json]
  baseline IDENTITY [--json]
             what is learned for an identity: NAME, or KIND:NAME (human, service,
             agent, host)
  feedback INCIDENT benign|expected
             fold the incident's baseline facts back into the baselines; expected
             also suppresses the same pattern from then on
  import     --format sshd-syslog|journal-json --host NAME [--year Y] [--utc-offset +HH:MM]
             [--dry-run] [--json] FILE
             sends the logins, failures, sessions and sudo commands of an auth log as
             the sensor would have reported them; importing a file again adds nothing
             (docs/import.md). --dry-run parses and reports without an aggregator.

connection flags:
  --ca FILE            verify the aggregator with TLS against these roots
  --cert FILE --key FILE   client certificate for mTLS (with --ca)
  --server-name NAME   name to verify in the aggregator's certificate
  --timeout DURATION   per call (default 10s)

--json prints a JSON array for events and incidents, an object for stats and incident.
Exit codes: 0 ok, 1 the aggregator call failed, 2 usage (import: or unreadable FILE),
3 import: the aggregator rejected events, 4 import: no line of FILE is in --format.
)";
}

int RunCtl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           const Clock& clock) {
  Options o;
  if (auto e = ParseArgs(args, &o)) {
    if (e->message.empty()) {
      out << CtlUsage();
      return 0;
    }
    err << "triplinectl: " << e->message << "\n\n" << CtlUsage();
    return 2;
  }
  return Ctl(std::move(o), out, err, clock).Run();
}

}  // namespace tripline::ctl
