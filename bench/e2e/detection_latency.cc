// Detection latency of the whole system: the seed story played for real on lab hosts
// (real sshd, one real sensor per host, a real aggregator), timed from the last hop to the
// moment its incident is visible through the query API.
//
//   detection_latency [--runs N] [--failures N] [--bin-dir DIR]
//
// Two figures per run, both against the kernel timestamps the sensors reported:
//   login->visible:   from the login on the last host (the event that completes the chain)
//                     to the first ListIncidents answer that shows the chain reaching it;
//   connect->visible: from the outbound connect() on the previous host (the last hop's
//                     first syscall), which adds the SSH handshake and authentication.
// The query API is polled every 2 ms over one gRPC channel from a thread of its own while
// the attack plays, so figures carry up to 2 ms of polling granularity.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/clock.h"
#include "tools/scenario/fleet.h"
#include "tools/scenario/story.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

struct Sample {
  double login_to_visible_ms;
  double connect_to_visible_ms;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

// Time of the outbound connect from `from_host` to `to_addr`:`port` of `user`'s chain.
Result<int64_t> ConnectTime(v1::Query::Stub& query, const std::string& from_host,
                            const std::string& to_addr, int64_t since_ns) {
  v1::ListEventsRequest req;
  req.set_host(from_host);
  req.set_kind("net");
  req.set_since_ns(since_ns);
  req.set_limit(1000);
  v1::ListEventsResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = query.ListEvents(&ctx, req, &resp);
  if (!s.ok()) return Status::Unavailable("ListEvents: " + s.error_message());
  for (const auto& se : resp.events()) {
    const auto& e = se.event();
    if (e.has_net() && e.net().direction() == v1::NetConnectEvent::DIRECTION_OUTBOUND &&
        e.net().remote_addr() == to_addr) {
      return e.time_ns();
    }
  }
  return Status::NotFound("no connect from " + from_host + " to " + to_addr);
}

Status Main(int runs, int failures, const std::string& bin_dir) {
  TL_RETURN_IF_ERROR(lab::Lab::CheckPrerequisites());
  char tmpl[] = "/tmp/tripline-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return Status::FromErrno(errno, "mkdtemp");
  const std::string work = tmpl;
  lab::LabOptions options;
  options.hosts = {
      {"hosta", "198.18.0.1", 22}, {"hostb", "198.18.0.2", 22}, {"hostc", "198.18.0.3", 22}};
  options.clients = {{"attacker", "198.18.0.66", 22}};
  TL_ASSIGN_OR_RETURN(std::unique_ptr<lab::Lab> lab, lab::Lab::Create(options));
  scenario::FleetOptions fleet_options;
  fleet_options.bin_dir = bin_dir;
  fleet_options.work_dir = work;
  TL_ASSIGN_OR_RETURN(std::unique_ptr<scenario::Fleet> fleet,
                      scenario::Fleet::Start(*lab, fleet_options));
  auto channel =
      grpc::CreateChannel(fleet->aggregator_address(), grpc::InsecureChannelCredentials());
  auto query = v1::Query::NewStub(channel);

  std::vector<Sample> samples;
  for (int run = 0; run < runs; ++run) {
    // A new victim each run, so each run adds its own hops (to the same incident: one
    // attacking address).
    TL_ASSIGN_OR_RETURN(
        lab::LabUser victim,
        lab->AddUser("v" + std::to_string(run), "Pw-bench-" + std::to_string(run), {"shadow"}));
    scenario::AttackStory story;
    story.victim = victim;
    story.failures = failures;
    story.hops = {{"hostb", victim}, {"hostc", victim}};
    // The query API is polled from another thread while the attack plays: the incident is
    // complete as soon as the login on hostc is correlated, well before the attacker's ssh
    // chain exits, so polling only afterwards would measure the client, not the detector.
    std::atomic<bool> stop{false};
    std::atomic<int64_t> visible_ns{0};
    v1::Incident found;
    int64_t hop_to_c_ns = 0;
    const int64_t since_ns = SystemClock::Get().NowNs() - 60 * kNanosPerSecond;
    std::thread poller([&] {
      while (!stop.load()) {
        v1::ListIncidentsRequest req;
        req.set_since_ns(since_ns);
        v1::ListIncidentsResponse resp;
        grpc::ClientContext ctx;
        if (query->ListIncidents(&ctx, req, &resp).ok()) {
          // Every run attacks from the same address, so the correlator rightly folds the
          // runs into one incident; this run is done when its victim's hop into hostc is in.
          for (const auto& inc : resp.incidents()) {
            for (const auto& hop : inc.chain()) {
              if (hop.to() == "hostc" && hop.user() == victim.login) {
                hop_to_c_ns = hop.at_ns();
                found = inc;
                visible_ns.store(SystemClock::Get().NowNs());
                return;
              }
            }
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    auto played = scenario::PlayAttack(*lab, story);
    const int64_t give_up = SystemClock::Get().MonotonicNs() + 30 * kNanosPerSecond;
    while (visible_ns.load() == 0 && SystemClock::Get().MonotonicNs() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop.store(true);
    poller.join();
    if (!played.ok()) return played.status();
    if (visible_ns.load() == 0) {
      return Status::DeadlineExceeded("run " + std::to_string(run) + ": no incident");
    }
    const int64_t login_ns = hop_to_c_ns;
    TL_ASSIGN_OR_RETURN(int64_t connect_ns,
                        ConnectTime(*query, "hostb", "198.18.0.3", played->started_ns));
    samples.push_back(
        {(visible_ns.load() - login_ns) / 1e6, (visible_ns.load() - connect_ns) / 1e6});
    std::printf("run %2d: login->visible %8.2f ms   connect->visible %8.2f ms   severity %s\n", run,
                samples.back().login_to_visible_ms, samples.back().connect_to_visible_ms,
                v1::Severity_Name(found.severity()).c_str());
    std::fflush(stdout);
  }
  std::vector<double> a, b;
  for (const auto& s : samples) {
    a.push_back(s.login_to_visible_ms);
    b.push_back(s.connect_to_visible_ms);
  }
  std::printf(
      "\nruns %zu\nlogin->visible   p50 %.2f ms  p99 %.2f ms  max %.2f ms\n"
      "connect->visible p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
      samples.size(), Percentile(a, 0.5), Percentile(a, 0.99),
      *std::max_element(a.begin(), a.end()), Percentile(b, 0.5), Percentile(b, 0.99),
      *std::max_element(b.begin(), b.end()));
  TL_RETURN_IF_ERROR(fleet->Stop());
  fleet.reset();
  TL_RETURN_IF_ERROR(lab->Close());
  std::filesystem::remove_all(work);
  return Status::Ok();
}

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) {
  int runs = 10, failures = 3;
  std::string bin_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--failures" && i + 1 < argc) {
      failures = std::atoi(argv[++i]);
    } else if (a == "--bin-dir" && i + 1 < argc) {
      bin_dir = argv[++i];
    } else {
      std::cerr << "usage: detection_latency [--runs N] [--failures N] [--bin-dir DIR]\n";
      return 2;
    }
  }
  if (runs < 1) {
    std::cerr << "--runs must be at least 1\n";
    return 2;
  }
  tripline::Status s = tripline::Main(runs, failures, bin_dir);
  if (!s.ok()) {
    std::cerr << "detection_latency: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}
