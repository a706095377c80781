// tripline-demo: plays the story Tripline exists for on simulated hosts built on this
// machine, with the real sensor, aggregator and triplinectl, and shows the incident.
//
//   hosts hosta, hostb, hostc (network + UTS namespaces, a real sshd each), clients
//   attacker and admin-ws; one tripline-sensor --scope uts per host; one aggregator on an
//   embedded RocksDB in a temp dir.
//
// Needs root. Removes everything it created before it exits.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "tools/scenario/fleet.h"
#include "tools/scenario/story.h"

namespace tripline::scenario {
namespace {

void Say(const std::string& text) { std::cout << "\n== " << text << std::endl; }

// The hook families the story needs on every host, and whether each is running there, from
// the sensors' health as triplinectl stats reports it. A disabled family is an error: the
// story would be told with a hole in it. A degraded one (a fallback) is said, not fatal.
Status CheckFamilies(const Fleet& fleet, size_t sensors) {
  const int64_t deadline = SystemClock::Get().MonotonicNs() + 20LL * 1000 * 1000 * 1000;
  nlohmann::json stats;
  for (;;) {
    TL_ASSIGN_OR_RETURN(lab::RunResult r, fleet.Ctl({"stats", "--json"}));
    stats = nlohmann::json::parse(r.out, nullptr, false);
    size_t reported = 0;
    if (stats.is_object() && stats.contains("sensors") && stats["sensors"].is_array()) {
      for (const auto& s : stats["sensors"]) {
        if (s.contains("families") && s["families"].is_array() && !s["families"].empty()) {
          ++reported;
        }
      }
    }
    if (reported >= sensors) break;
    if (SystemClock::Get().MonotonicNs() > deadline) {
      return Status::Unavailable("the sensors did not report their hook families in 20 s");
    }
    usleep(200 * 1000);
  }
  std::vector<std::string> missing;
  for (const auto& s : stats["sensors"]) {
    const std::string host = s.value("host", "?");
    bool login = false;
    std::map<std::string, std::string> state;
    for (const auto& f : s["families"]) {
      const std::string name = f.value("name", "");
      state[name] = f.value("state", "");
      if (state[name] == "degraded") {
        std::cout << host << ": " << name << " degraded to " << f.value("hooks", "")
                  << " (still sees the story; " << f.value("reason", "") << ")" << std::endl;
      } else if (state[name] == "disabled") {
        std::cout << host << ": " << name << " DISABLED: " << f.value("reason", "")
                  << "\n  remedy: " << f.value("remedy", "") << std::endl;
      }
      if ((name == "login-pam" || name == "login-utmp") && state[name] != "disabled") login = true;
    }
    for (const char* needed : {"file", "exec", "net"}) {
      if (state[needed] != "live" && state[needed] != "degraded") {
        missing.push_back(host + ": " + needed);
      }
    }
    if (!login) missing.push_back(host + ": login (neither login-pam nor login-utmp)");
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Status::Unavailable("the story needs hook families that are not running: " + list);
  }
  std::cout << "every hook family the story needs runs on every host" << std::endl;
  return Status::Ok();
}

std::string SelfDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : exe.parent_path().string();
}

Status Run(const std::string& bin_dir, const std::string& work_dir) {
  lab::LabOptions options;
  options.hosts = {
      {"hosta", "198.18.0.1", 22}, {"hostb", "198.18.0.2", 22}, {"hostc", "198.18.0.3", 22}};
  options.clients = {{"attacker", "198.18.0.66", 22}, {"admin-ws", "198.18.0.10", 22}};
  Say("building hosts hosta (198.18.0.1), hostb (198.18.0.2), hostc (198.18.0.3), "
      "attacker (198.18.0.66) and admin-ws (198.18.0.10), each with its own network and "
      "UTS namespace and a real sshd");
  TL_ASSIGN_OR_RETURN(std::unique_ptr<lab::Lab> lab, lab::Lab::Create(options));
  // alice is in group shadow, as an operator who reads password ageing might be; the
  // attacker who takes over her account can therefore read /etc/shadow.
  TL_ASSIGN_OR_RETURN(lab::LabUser alice, lab->AddUser("alice", "Tr1pl1ne-alice!", {"shadow"}));
  TL_ASSIGN_OR_RETURN(lab::LabUser ops, lab->AddUser("ops", "Tr1pl1ne-ops!"));

  Say("starting tripline-aggregator (embedded RocksDB in " + work_dir +
      ") and one tripline-sensor per host");
  FleetOptions fleet_options;
  fleet_options.bin_dir = bin_dir;
  fleet_options.work_dir = work_dir;
  TL_ASSIGN_OR_RETURN(std::unique_ptr<Fleet> fleet, Fleet::Start(*lab, fleet_options));
  std::cout << "aggregator listening on " << fleet->aggregator_address() << ", 3 sensors ready"
            << std::endl;
  TL_RETURN_IF_ERROR(CheckFamilies(*fleet, options.hosts.size()));

  Say("daily work: " + ops.login + " logs in to hosta from admin-ws and hops to hostb");
  TL_RETURN_IF_ERROR(PlayBenignAdmin(*lab, "admin-ws", ops, "hosta", "hostb"));
  TL_RETURN_IF_ERROR(PlayBenignAdmin(*lab, "admin-ws", ops, "hostc", ""));

  AttackStory story;
  story.victim = alice;
  story.hops = {{"hostb", alice}, {"hostc", alice}};
  Say("the attack: 5 wrong passwords for " + alice.login +
      " on hosta from 198.18.0.66, then the right one, a read of /etc/shadow, and SSH "
      "hosta -> hostb -> hostc");
  TL_ASSIGN_OR_RETURN(StoryResult played, PlayAttack(*lab, story));
  std::cout << played.failed_logins << " logins refused, chain completed, last hop at "
            << FormatTimeNs(played.last_hop_ns) << std::endl;

  Say("waiting for the incident");
  TL_ASSIGN_OR_RETURN(nlohmann::json incident, WaitForIncident(
                                                   *fleet,
                                                   [](const nlohmann::json& i) {
                                                     return i.value("severity", "") == "critical" &&
                                                            i.contains("hosts") &&
                                                            i["hosts"].size() >= 3;
                                                   },
                                                   std::chrono::seconds(30)));
  const int64_t seen_ns = SystemClock::Get().NowNs();
  std::cout << "incident " << incident.value("id", "?") << " visible through the query API "
            << FormatDurationNs(seen_ns - played.last_hop_ns) << " after the last hop" << std::endl;

  Say("triplinectl incidents");
  TL_ASSIGN_OR_RETURN(lab::RunResult list, fleet->Ctl({"incidents"}));
  std::cout << list.out << list.err;
  Say("triplinectl incident " + incident.value("id", ""));
  TL_ASSIGN_OR_RETURN(lab::RunResult shown, fleet->Ctl({"incident", incident.value("id", "")}));
  std::cout << shown.out << shown.err;
  Say("triplinectl stats");
  TL_ASSIGN_OR_RETURN(lab::RunResult stats, fleet->Ctl({"stats"}));
  std::cout << stats.out << stats.err;

  Say("stopping sensors and aggregator, removing hosts, users and files");
  TL_RETURN_IF_ERROR(fleet->Stop());
  fleet.reset();
  return lab->Close();
}

}  // namespace
}  // namespace tripline::scenario

int main(int argc, char** argv) {
  std::string bin_dir = tripline::scenario::SelfDir();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--bin-dir" && i + 1 < argc) {
      bin_dir = argv[++i];
    } else {
      std::cerr << "usage: tripline-demo [--bin-dir DIR]\n";
      return 2;
    }
  }
  tripline::Status ready = tripline::lab::Lab::CheckPrerequisites();
  if (!ready.ok()) {
    std::cerr << "tripline-demo cannot build its hosts here: " << ready.ToString() << "\n";
    return 1;
  }
  char tmpl[] = "/tmp/tripline-demo-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string work_dir = tmpl;
  tripline::Status s = tripline::scenario::Run(bin_dir, work_dir);
  if (!s.ok()) {
    std::cerr << "\ndemo failed: " << s.ToString() << "\nlogs kept in " << work_dir << "\n";
    return 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(work_dir, ec);
  std::cout << "\ndone: everything the demo created has been removed" << std::endl;
  return 0;
}
