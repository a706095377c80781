// tripline-eval: plays synthetic fleets (fleet_sim.h) through a real aggregator and scores
// what it raises against the ground truth.
//
//   build/bin/tripline-eval [--seed N] [--warmup-days 0,7,14,28] [--test-days 14]
//                           [--compromises 64] [--people 80] [--servers 40] [--json]
//                           [--truth FILE] [--verbose]
//
// For each warm-up length: a fresh aggregator (RocksDB in a temp dir, the correlation
// engine, gRPC on 127.0.0.1:0), the fleet's events sent through the ingest API, one stream
// per host's sensor, interleaved by the hour as live sensors would deliver them; then the
// incidents read back through the query API and matched to the compromises (an incident
// matches a compromise when it cites one of the compromise's events or names its source).
//
// Figures:
//   detection rate   compromises raised as exactly one incident / compromises
//   ≥1 incident      compromises named by at least one incident
//   false incidents  incidents first seen in the test period that match no compromise, per
//                    10,000 benign sessions of the test period
//   login AUC        ROC AUC of the per-event login score, compromise entry logins against
//                    benign session logins of the test period; "n/a" when the build's
//                    events carry no score (found by name through protobuf reflection, so
//                    this program needs no change when one is added)
//
// Exit codes: 0 done, 1 the aggregator failed, 2 usage.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <variant>

#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/server/aggregator_server.h"
#include "aggregator/store/rocksdb_store.h"
#include "model/event_proto.h"
#include "model/incident_proto.h"
#include "tools/eval/eval_metrics.h"
#include "tools/eval/fleet_sim.h"
#include "tripline/v1/ingest.grpc.pb.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline::eval {
namespace {

using nlohmann::json;

struct Args {
  FleetSpec spec;
  std::vector<int> warmups = {0, 7, 14, 28};
  bool json = false;
  bool verbose = false;
  std::string truth_path;
  std::vector<bool> baselines = {true};  // runs with learned baselines on, off or both
};

class TempDirectory {
 public:
  TempDirectory() {
    char tmpl[] = "/tmp/tripline-eval-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDirectory() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One simulated sensor's ingest stream.
class SimSensor {
 public:
  SimSensor(const std::shared_ptr<grpc::Channel>& channel, std::string id, const std::string& host)
      : id_(std::move(id)), stub_(v1::Ingest::NewStub(channel)) {
    stream_ = stub_->Stream(&ctx_);
    v1::IngestRequest req;
    req.mutable_hello()->set_sensor_id(id_);
    req.mutable_hello()->set_host(host);
    req.mutable_hello()->set_version("tripline-eval");
    v1::IngestAck ack;
    ok_ = stream_->Write(req) && stream_->Read(&ack) && ack.error().empty();
  }
  ~SimSensor() {
    if (stream_) {
      stream_->WritesDone();
      (void)stream_->Finish();
    }
  }
  bool Send(const std::vector<Event>& events, size_t begin, size_t end) {
    if (!ok_) return false;
    v1::IngestRequest req;
    auto* b = req.mutable_batch();
    b->set_sensor_id(id_);
    b->set_first_seq(events[begin].seq);
    for (size_t i = begin; i < end; ++i) ToProto(events[i], b->add_events());
    v1::IngestAck ack;
    ok_ = stream_->Write(req) && stream_->Read(&ack);
    if (ok_ && !ack.error().empty()) {
      std::cerr << "tripline-eval: batch of " << id_ << " rejected: " << ack.error() << "\n";
      ok_ = false;
    }
    return ok_;
  }

 private:
  std::string id_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestRequest, v1::IngestAck>> stream_;
  bool ok_ = false;
};

struct Trait {
  const char* name;
  bool (*has)(const Compromise&);
};

struct RunResult {
  int warmup_days = 0;
  bool baselines = true;
  uint64_t events = 0;
  uint64_t benign_sessions = 0;
  size_t compromises = 0;
  size_t exactly_one = 0;
  size_t at_least_one = 0;
  size_t incidents = 0;
  size_t false_incidents = 0;
  std::optional<double> auc;
  double seconds = 0;
  std::map<std::string, std::pair<int, int>> by_trait;  // name → (raised once, total)
  int hops_played = 0;    // SSH hops of the compromises raised exactly once
  int hops_in_chain = 0;  // of which their incident's chain shows
  std::vector<std::string> missed;
  std::vector<std::string> false_titles;
};

Status Run(const Args& args, int warmup, bool baselines, RunResult* out, std::ostream& log) {
  FleetSpec spec = args.spec;
  spec.warmup_days = warmup;
  const Fleet fleet = GenerateFleet(spec);
  RunResult& r = *out;
  r.warmup_days = warmup;
  r.baselines = baselines;
  r.events = fleet.events;
  r.benign_sessions = fleet.benign_sessions_test;
  r.compromises = fleet.compromises.size();

  if (!args.truth_path.empty()) {
    json truth = json::array();
    for (const auto& c : fleet.compromises) {
      json events = json::array();
      for (const auto& [s, q] : c.events) events.push_back({{"sensor_id", s}, {"seq", q}});
      truth.push_back({{"id", c.id},
                       {"label", c.Label()},
                       {"victim", c.victim},
                       {"source", c.source},
                       {"entry_host", c.entry_host},
                       {"failures", c.failures},
                       {"unusual_hour", c.unusual_hour},
                       {"new_network", c.new_network},
                       {"hops", c.hops},
                       {"start", FormatTimeNs(c.start_ns)},
                       {"events", std::move(events)}});
    }
    std::ofstream(args.truth_path + ".warmup" + std::to_string(warmup) + ".json")
        << truth.dump(1) << "\n";
  }

  const int64_t started = SystemClock::Get().MonotonicNs();
  TempDirectory dir;
  if (dir.path().empty()) return Status::IoError("cannot make a temp dir");
  auto store = RocksDbStore::Open({.path = dir.path() + "/db"});
  if (!store.ok()) return store.status();
  // The login score of every successful login the baselines judged, as the correlator
  // computed it (on its thread). The correlator judges a login at its first successful
  // stage, the ground truth labels its session-open event: both name the same sshd
  // process and peer.
  std::mutex scores_mu;
  std::map<std::string, double> login_scores;
  const auto login_of = [](std::string_view sensor, const Event& e) -> std::string {
    const auto* l = std::get_if<LoginEvent>(&e.body);
    if (l == nullptr) return "";
    return std::string(sensor) + "|" + std::to_string(e.process.pid) + "|" + l->remote_addr + ":" +
           std::to_string(l->remote_port);
  };
  CorrelationEngineOptions engine_options;
  engine_options.learn_baselines = baselines;
  engine_options.correlator.on_login_scored = [&](std::string_view sensor, const Event& e,
                                                  double score) {
    std::lock_guard<std::mutex> lock(scores_mu);
    login_scores.emplace(login_of(sensor, e), score);
  };
  auto engine = CorrelationEngine::Open(store->get(), engine_options, SystemClock::Get());
  if (!engine.ok()) return engine.status();
  AggregatorServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  auto server = AggregatorServer::Start(options, store->get(), engine->get());
  if (!server.ok()) return server.status();
  auto channel =
      grpc::CreateChannel((*server)->address().ToString(), grpc::InsecureChannelCredentials());
  {
    std::map<std::string, std::unique_ptr<SimSensor>> sensors;
    std::map<std::string, size_t> cursor;
    int64_t last = fleet.first_ns;
    for (const auto& [id, events] : fleet.sensors) {
      sensors[id] = std::make_unique<SimSensor>(channel, id, fleet.sensor_host.at(id));
      cursor[id] = 0;
      if (!events.empty()) last = std::max(last, events.back().time_ns);
    }
    // Hour by hour, every sensor's events of that hour.
    for (int64_t until = fleet.first_ns; until <= last + kNanosPerSecond * 3600;
         until += 3600 * kNanosPerSecond) {
      for (const auto& [id, events] : fleet.sensors) {
        size_t& i = cursor[id];
        while (i < events.size() && events[i].time_ns < until) {
          size_t end = i;
          while (end < events.size() && end - i < 2048 && events[end].time_ns < until) ++end;
          if (!sensors[id]->Send(events, i, end)) {
            return Status::Unavailable("ingest of " + id + " failed");
          }
          i = end;
        }
      }
      // Live sensors deliver an hour in an hour: the correlator keeps up. Sent all at
      // once, it would fall behind and read the backlog back from the store sensor by
      // sensor, an order that depends on the machine's load (and so would the figures).
      (*engine)->Drain();
    }
  }
  (*engine)->Drain();

  auto query = v1::Query::NewStub(channel);
  v1::ListIncidentsRequest req;
  req.set_limit(1'000'000);
  v1::ListIncidentsResponse resp;
  grpc::ClientContext ctx;
  const grpc::Status s = query->ListIncidents(&ctx, req, &resp);
  if (!s.ok()) return Status::Unavailable("ListIncidents: " + s.error_message());

  std::map<EventKey, int> event_owner;
  std::map<std::string, std::vector<int>> source_owner;
  for (const auto& c : fleet.compromises) {
    for (const auto& k : c.events) event_owner[k] = c.id;
    source_owner["source:" + c.source].push_back(c.id);
  }
  std::map<int, int> incidents_per;
  std::map<int, int> chain_hops;  // compromise → hops of the (last) incident naming it
  std::map<int, std::vector<std::string>> titles;  // compromise → its incidents' titles
  for (const auto& wire : resp.incidents()) {
    auto inc = FromProto(wire);
    if (!inc.ok()) return inc.status();
    ++r.incidents;
    std::set<int> owners;
    for (const auto& ref : inc->events) {
      auto it = event_owner.find({ref.sensor_id, ref.seq});
      if (it != event_owner.end()) owners.insert(it->second);
    }
    for (const auto& id : inc->identities) {
      auto it = source_owner.find(id);
      if (it != source_owner.end()) owners.insert(it->second.begin(), it->second.end());
    }
    for (int o : owners) {
      ++incidents_per[o];
      titles[o].push_back(inc->title);
      chain_hops[o] = static_cast<int>(inc->chain.size());
    }
    if (owners.empty() && inc->first_seen_ns >= spec.test_start_ns) {
      ++r.false_incidents;
      if (r.false_titles.size() < 10) {
        // The title and, for a person to judge, the facts that made it (the explanation's
        // lines before the advice).
        std::string t = inc->title;
        for (size_t i = 0; i + 1 < inc->explanation.size(); ++i)
          t += "\n      " + inc->explanation[i];
        r.false_titles.push_back(t);
      }
    }
  }
  static const Trait kTraits[] = {
      {"with failures", [](const Compromise& c) { return c.failures; }},
      {"without failures", [](const Compromise& c) { return !c.failures; }},
      {"unusual hour", [](const Compromise& c) { return c.unusual_hour; }},
      {"usual hour", [](const Compromise& c) { return !c.unusual_hour; }},
      {"new network", [](const Compromise& c) { return c.new_network; }},
      {"known network", [](const Compromise& c) { return !c.new_network; }},
      {"1 hop", [](const Compromise& c) { return c.hops == 1; }},
      {"2 hops", [](const Compromise& c) { return c.hops == 2; }},
      {"3 hops", [](const Compromise& c) { return c.hops == 3; }},
      {"4 hops", [](const Compromise& c) { return c.hops == 4; }},
  };
  // The score the baselines gave a login the ground truth labels, if any.
  const auto score_of = [&](const EventKey& k) -> std::optional<double> {
    const auto events = fleet.sensors.find(k.first);
    if (events == fleet.sensors.end() || k.second == 0 || k.second > events->second.size()) {
      return std::nullopt;
    }
    std::lock_guard<std::mutex> lock(scores_mu);
    const auto it = login_scores.find(login_of(k.first, events->second[k.second - 1]));
    if (it == login_scores.end()) return std::nullopt;
    return it->second;
  };
  for (const auto& c : fleet.compromises) {
    const int n = incidents_per.count(c.id) ? incidents_per[c.id] : 0;
    if (n == 1) {
      ++r.exactly_one;
      r.hops_played += c.hops;
      r.hops_in_chain += std::min(c.hops, chain_hops[c.id]);
    }
    if (n >= 1) ++r.at_least_one;
    if (n != 1) {
      std::string why = n == 0 ? ": no incident" : ": " + std::to_string(n) + " incidents";
      if (const auto v = score_of(c.entry_login)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " (login score %.2f)", *v);
        why += buf;
      }
      if (n > 1) {
        for (const std::string& t : titles[c.id]) why += "\n      " + t;
      }
      r.missed.push_back(c.Label() + why);
    }
    for (const Trait& t : kTraits) {
      if (!t.has(c)) continue;
      auto& [once, total] = r.by_trait[t.name];
      ++total;
      if (n == 1) ++once;
    }
  }

  // Login scores: from the stored events if they carry one, else as the correlator
  // reported them.
  if (!HasScoreField(v1::StoredEvent::descriptor())) {
    std::vector<double> pos, neg;
    for (const auto& c : fleet.compromises) {
      if (auto v = score_of(c.entry_login)) pos.push_back(*v);
    }
    for (const auto& [k, test] : fleet.benign_logins) {
      if (!test) continue;
      if (auto v = score_of(k)) neg.push_back(*v);
    }
    log << "login scores: " << pos.size() << " of " << fleet.compromises.size()
        << " compromise entries, " << neg.size() << " benign session logins\n";
    if (!pos.empty() && !neg.empty()) r.auc = Auc(pos, neg);
  } else {
    std::set<EventKey> positives, negatives;
    for (const auto& c : fleet.compromises) positives.insert(c.entry_login);
    for (const auto& [k, test] : fleet.benign_logins) {
      if (test) negatives.insert(k);
    }
    std::vector<double> pos, neg;
    v1::ListEventsRequest le;
    le.set_kind("login");
    le.set_since_ns(spec.test_start_ns);
    le.set_limit(Store::kMaxPageSize);
    while (true) {
      grpc::ClientContext c;
      v1::ListEventsResponse page;
      const grpc::Status ls = query->ListEvents(&c, le, &page);
      if (!ls.ok()) return Status::Unavailable("ListEvents: " + ls.error_message());
      for (const auto& e : page.events()) {
        const EventKey k{e.sensor_id(), e.event().seq()};
        const bool p = positives.count(k) > 0, n = negatives.count(k) > 0;
        if (!p && !n) continue;
        const auto score = ScoreOf(e);
        if (!score) continue;
        (p ? pos : neg).push_back(*score);
      }
      if (page.next_page_token().empty()) break;
      le.set_page_token(page.next_page_token());
    }
    if (!pos.empty() && !neg.empty()) r.auc = Auc(pos, neg);
  }
  (*server)->Shutdown(kNanosPerSecond);
  engine->reset();
  r.seconds = static_cast<double>(SystemClock::Get().MonotonicNs() - started) / 1e9;
  log << "warm-up " << warmup << " d" << (baselines ? "" : " (rules only)") << ": " << r.events
      << " events, " << r.incidents << " incidents, " << r.seconds << " s\n";
  return Status::Ok();
}

std::string Percent(size_t a, size_t b) {
  char s[32];
  std::snprintf(s, sizeof(s), "%.1f%%", b == 0 ? 0.0 : 100.0 * static_cast<double>(a) / b);
  return s;
}

int Usage(const std::string& why) {
  std::cerr << "tripline-eval: " << why
            << "\nusage: tripline-eval [--seed N] [--warmup-days 0,7,14,28] [--test-days N]\n"
               "                     [--compromises N] [--people N] [--servers N] [--json]\n"
               "                     [--truth FILE_PREFIX] [--baselines on|off|both] [--verbose]\n";
  return 2;
}

int Main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    const auto number = [&](int lo, int hi, int* out) -> bool {
      auto v = value();
      if (!v) return false;
      char* end = nullptr;
      const long n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < lo || n > hi) return false;
      *out = static_cast<int>(n);
      return true;
    };
    int n = 0;
    if (flag == "--json") {
      args.json = true;
    } else if (flag == "--verbose") {
      args.verbose = true;
    } else if (flag == "--seed") {
      if (!number(0, 1 << 30, &n)) return Usage("--seed wants a number");
      args.spec.seed = static_cast<uint64_t>(n);
    } else if (flag == "--test-days") {
      if (!number(1, 365, &args.spec.test_days)) return Usage("--test-days wants 1..365");
    } else if (flag == "--compromises") {
      if (!number(0, 10000, &args.spec.compromises)) return Usage("--compromises wants 0..10000");
    } else if (flag == "--people") {
      if (!number(1, 100000, &args.spec.people)) return Usage("--people wants 1..100000");
    } else if (flag == "--servers") {
      if (!number(2, 60000, &args.spec.servers)) return Usage("--servers wants 2..60000");
    } else if (flag == "--baselines") {
      auto v = value();
      if (!v || (*v != "on" && *v != "off" && *v != "both")) {
        return Usage("--baselines wants on, off or both");
      }
      args.baselines.clear();
      if (*v != "on") args.baselines.push_back(false);
      if (*v != "off") args.baselines.push_back(true);
    } else if (flag == "--truth") {
      auto v = value();
      if (!v) return Usage("--truth wants a file prefix");
      args.truth_path = *v;
    } else if (flag == "--warmup-days") {
      auto v = value();
      if (!v) return Usage("--warmup-days wants a list such as 0,7,28");
      args.warmups.clear();
      std::stringstream ss(*v);
      std::string item;
      while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        const long d = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || d < 0 || d > 365) {
          return Usage("--warmup-days wants days 0..365, comma-separated");
        }
        args.warmups.push_back(static_cast<int>(d));
      }
    } else {
      return Usage("unknown flag " + flag);
    }
  }
  std::vector<RunResult> results;
  for (bool b : args.baselines) {
    for (int w : args.warmups) {
      RunResult r;
      const Status s = Run(args, w, b, &r, std::cerr);
      if (!s.ok()) {
        std::cerr << "tripline-eval: " << s.ToString() << "\n";
        return 1;
      }
      results.push_back(std::move(r));
    }
  }
  if (args.json) {
    json a = json::array();
    for (const auto& r : results) {
      json traits = json::object();
      for (const auto& [name, v] : r.by_trait)
        traits[name] = {{"raised_once", v.first}, {"of", v.second}};
      a.push_back({{"warmup_days", r.warmup_days},
                   {"baselines", r.baselines},
                   {"events", r.events},
                   {"benign_sessions", r.benign_sessions},
                   {"compromises", r.compromises},
                   {"raised_exactly_once", r.exactly_one},
                   {"raised_at_least_once", r.at_least_one},
                   {"incidents", r.incidents},
                   {"false_incidents", r.false_incidents},
                   {"false_per_10k_sessions", r.benign_sessions == 0
                                                  ? 0.0
                                                  : 1e4 * static_cast<double>(r.false_incidents) /
                                                        static_cast<double>(r.benign_sessions)},
                   {"login_auc", r.auc ? json(*r.auc) : json(nullptr)},
                   {"hops_played", r.hops_played},
                   {"hops_in_incident_chains", r.hops_in_chain},
                   {"by_trait", std::move(traits)}});
    }
    std::cout << a.dump(2) << "\n";
    return 0;
  }
  std::printf("%-10s %-8s %9s %9s %11s %9s %9s %12s %9s\n", "BASELINES", "WARM-UP", "EVENTS",
              "SESSIONS", "DETECTED", "≥1 INC", "FALSE", "FALSE/10k", "AUC");
  for (const auto& r : results) {
    char per10k[32], auc[32];
    std::snprintf(per10k, sizeof(per10k), "%.2f",
                  r.benign_sessions == 0 ? 0.0
                                         : 1e4 * static_cast<double>(r.false_incidents) /
                                               static_cast<double>(r.benign_sessions));
    if (r.auc) {
      std::snprintf(auc, sizeof(auc), "%.3f", *r.auc);
    } else {
      std::snprintf(auc, sizeof(auc), "n/a");
    }
    std::printf("%-10s %-8s %9llu %9llu %11s %9s %9zu %12s %9s\n", r.baselines ? "on" : "off",
                (std::to_string(r.warmup_days) + " d").c_str(),
                static_cast<unsigned long long>(r.events),
                static_cast<unsigned long long>(r.benign_sessions),
                Percent(r.exactly_one, r.compromises).c_str(),
                Percent(r.at_least_one, r.compromises).c_str(), r.false_incidents, per10k, auc);
  }
  const RunResult& last = results.back();
  std::printf("\nhops of the detected compromises shown in their incident's chain: %d of %d\n",
              last.hops_in_chain, last.hops_played);
  std::printf("\ndetection by trait (warm-up %d d, baselines %s): raised as exactly one incident\n",
              last.warmup_days, last.baselines ? "on" : "off");
  for (const auto& [name, v] : last.by_trait) {
    std::printf("  %-18s %3d of %3d  %s\n", name.c_str(), v.first, v.second,
                Percent(static_cast<size_t>(v.first), static_cast<size_t>(v.second)).c_str());
  }
  if (args.verbose) {
    std::printf("\nnot raised as exactly one incident:\n");
    for (const auto& m : last.missed) std::printf("  %s\n", m.c_str());
    std::printf("\nfalse incidents (first %zu):\n", last.false_titles.size());
    for (const auto& t : last.false_titles) std::printf("  %s\n", t.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace tripline::eval

int main(int argc, char** argv) { return tripline::eval::Main(argc, argv); }
