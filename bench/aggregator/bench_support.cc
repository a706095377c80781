#include "bench/aggregator/bench_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tripline::bench {

Flags::Flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    a = a.substr(2);
    if (const size_t eq = a.find('='); eq != std::string::npos) {
      values_[a.substr(0, eq)] = a.substr(eq + 1);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      values_[a] = argv[++i];
    } else {
      values_[a] = "1";
    }
  }
}

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Flags::GetInt(const std::string& name, int64_t fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : std::strtoll(it->second.c_str(), nullptr, 10);
}

AggregatorProcess::AggregatorProcess(const std::string& data_dir,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {std::string(TRIPLINE_BIN_DIR) + "/tripline-aggregator",
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--data-dir",
                                   data_dir,
                                   "--log-level",
                                   "warning"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int out[2];
  if (pipe(out) != 0) std::abort();
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(out[0]);
  const std::string prefix = "listening on ";
  if (line.rfind(prefix, 0) != 0) {
    std::fprintf(stderr, "aggregator did not start: '%s'\n", line.c_str());
    std::exit(1);
  }
  address_ = line.substr(prefix.size());
}

AggregatorProcess::~AggregatorProcess() {
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

namespace {
// utime + stime from a /proc stat file's contents, in seconds; comm through *comm.
double StatCpuSeconds(const std::string& stat, std::string* comm) {
  const size_t open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return 0;
  if (comm != nullptr) *comm = stat.substr(open + 1, close - open - 1);
  // Fields after the ")" that closes comm: state is field 3; utime 14, stime 15.
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}
}  // namespace

std::map<std::string, double> AggregatorProcess::CpuSecondsByRole() const {
  std::map<std::string, double> out{
      {"correlation", 0}, {"storage", 0}, {"maintenance", 0}, {"ingest", 0}};
  const std::string dir = "/proc/" + std::to_string(pid_) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(task.path() / "stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string comm;
    const double cpu = StatCpuSeconds(stat, &comm);
    if (comm.rfind("tl-correlate", 0) == 0) {
      out["correlation"] += cpu;
    } else if (comm.rfind("tl-maintain", 0) == 0) {
      out["maintenance"] += cpu;
    } else if (comm.rfind("rocksdb:", 0) == 0) {
      out["storage"] += cpu;
    } else {
      out["ingest"] += cpu;
    }
  }
  return out;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return stat.empty() ? 0 : StatCpuSeconds(stat, nullptr);
}

double AggregatorProcess::CpuSeconds() const { return ProcessCpuSeconds(pid_); }

namespace {
int64_t StatusKb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0)
      return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return -1;
}
}  // namespace

int64_t AggregatorProcess::RssKb() const { return StatusKb(pid_, "VmRSS"); }
int64_t AggregatorProcess::PeakRssKb() const { return StatusKb(pid_, "VmHWM"); }

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace tripline::bench
