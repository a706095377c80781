// Pieces the aggregator benchmarks share: flags, a real tripline-aggregator child process,
// its CPU time and memory from /proc, and percentiles.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tripline::bench {

// --name=value or --name value; Get returns `fallback` when absent.
class Flags {
 public:
  Flags(int argc, char** argv);
  std::string Get(const std::string& name, const std::string& fallback) const;
  int64_t GetInt(const std::string& name, int64_t fallback) const;
  bool Has(const std::string& name) const { return values_.count(name) > 0; }

 private:
  std::map<std::string, std::string> values_;
};

// tripline-aggregator on 127.0.0.1:0 over `data_dir`, stopped with SIGTERM on destruction.
class AggregatorProcess {
 public:
  AggregatorProcess(const std::string& data_dir, const std::vector<std::string>& extra = {});
  ~AggregatorProcess();
  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  double CpuSeconds() const;  // user + system of the child, from /proc/PID/stat
  // The same per thread role, from /proc/PID/task/*/stat: "correlation" (the correlator
  // thread, named tl-correlate), "maintenance" (tl-maintain: the correlator's expiry and
  // snapshots), "storage" (RocksDB's flush and compaction threads) and "ingest"
  // (everything else: gRPC's threads, which parse, validate, write and ack).
  std::map<std::string, double> CpuSecondsByRole() const;
  int64_t RssKb() const;      // VmRSS
  int64_t PeakRssKb() const;  // VmHWM

 private:
  pid_t pid_ = -1;
  std::string address_;
};

double SelfCpuSeconds();  // getrusage(RUSAGE_SELF)
// User + system CPU of another process (from /proc/PID/stat); 0 when it is gone.
double ProcessCpuSeconds(pid_t pid);
double NowSeconds();  // monotonic
// q in [0, 1]; sorts `v`.
double Percentile(std::vector<double>& v, double q);

}  // namespace tripline::bench
