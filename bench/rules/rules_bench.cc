// CPU cost of the Sigma rules per event (docs/benchmarks.md, "Sigma rules").
//
//   rules_bench [RULES_DIR] [EVENTS]
//
// Loads every rule under RULES_DIR (default ../shared/data/sigma next to the repository)
// and evaluates them on (1) the ingest benchmark's mix (testing::SyntheticEvents: logins,
// execs, sensitive opens, connects in equal parts) and (2) execs alone with command lines
// of the kind a busy host runs (shells, package tools, pipelines, interpreters), a
// harder mix for process_creation rules. Prints thread CPU time per event.
#include <time.h>

#include <cstdio>
#include <string>
#include <vector>

#include "aggregator/rules/sigma.h"
#include "tests/aggregator/test_support.h"

namespace {

int64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::vector<tripline::Event> BusyExecs(size_t n) {
  static const std::vector<std::vector<std::string>> kCommands = {
      {"/usr/bin/bash", "bash", "-c", "cd /srv/app && git pull --ff-only && make -j4"},
      {"/usr/bin/python3", "python3", "/opt/app/manage.py", "migrate", "--noinput"},
      {"/usr/bin/apt-get", "apt-get", "install", "-y", "--no-install-recommends", "curl"},
      {"/usr/bin/grep", "grep", "-rn", "TODO", "src/"},
      {"/usr/bin/ls", "ls", "-la", "/var/log"},
      {"/usr/bin/systemctl", "systemctl", "status", "nginx.service"},
      {"/usr/bin/ssh", "ssh", "-o", "BatchMode=yes", "deploy@10.0.0.12", "uptime"},
      {"/usr/bin/curl", "curl", "-fsSL", "https://example.com/health", "-o", "/dev/null"},
      {"/usr/bin/tar", "tar", "-czf", "/backup/home-2026-12-06.tar.gz", "/home"},
      {"/usr/bin/sed", "sed", "-i", "s/^#Port 22/Port 22/", "/etc/ssh/sshd_config"},
  };
  std::vector<tripline::Event> out;
  for (size_t i = 0; i < n; ++i) {
    tripline::Event e = tripline::testing::MakeExec("host" + std::to_string(i % 50),
                                                    "user" + std::to_string(i % 20),
                                                    1'800'000'000'000'000'000 + int64_t(i));
    const auto& c = kCommands[i % kCommands.size()];
    tripline::ExecEvent x;
    x.filename = c[0];
    x.argv.assign(c.begin() + 1, c.end());
    e.process.tgid = static_cast<uint32_t>(1000 + i);
    e.process.ppid = static_cast<uint32_t>(1000 + i - 1);
    e.process.exe = c[0];
    e.body = x;
    out.push_back(std::move(e));
  }
  return out;
}

double Run(tripline::rules::RuleEngine& engine, const std::vector<tripline::Event>& events,
           int rounds, size_t* detections) {
  for (const auto& e : events) engine.Evaluate(e);  // warm up
  const int64_t start = ThreadCpuNs();
  for (int r = 0; r < rounds; ++r) {
    for (const auto& e : events) *detections += engine.Evaluate(e).size();
  }
  return double(ThreadCpuNs() - start) / double(events.size() * size_t(rounds));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir =
      argc > 1 ? argv[1] : std::string(TRIPLINE_SOURCE_DIR "/../shared/data/sigma");
  const size_t n = argc > 2 ? std::stoul(argv[2]) : 20000;
  auto set = tripline::rules::LoadRuleDirectory(dir);
  if (!set.ok()) {
    std::fprintf(stderr, "rules_bench: %s\n", set.status().ToString().c_str());
    return 1;
  }
  const auto counts = tripline::rules::CountRules(**set);
  std::printf("rules: %zu loaded, %zu unsupported, %zu broken (%s)\n", counts.loaded,
              counts.unsupported, counts.broken, dir.c_str());
  tripline::rules::RuleEngine engine;
  engine.Swap(*set);
  size_t detections = 0;
  const auto mix = tripline::testing::SyntheticEvents(n, 50, 20);
  const double mix_ns = Run(engine, mix, 10, &detections);
  std::printf("ingest mix (%zu events x 10): %.0f ns CPU per event, %zu detections\n", n, mix_ns,
              detections);
  detections = 0;
  const auto execs = BusyExecs(n);
  const double exec_ns = Run(engine, execs, 10, &detections);
  std::printf("busy execs (%zu events x 10): %.0f ns CPU per event, %zu detections\n", n, exec_ns,
              detections);
  // Which rules matched, so a figure dominated by one rule is visible.
  for (const auto& r : engine.Rules()) {
    if (r.hits > 0) {
      std::printf("  %llu hits: %s (%s)\n", static_cast<unsigned long long>(r.hits),
                  r.title.c_str(), r.level.c_str());
    }
  }
  tripline::rules::RuleEngine empty;
  detections = 0;
  std::printf("no rules, ingest mix: %.0f ns CPU per event\n", Run(empty, mix, 10, &detections));
  return 0;
}
