// Helpers shared by the probe benchmarks (bench/probe/*.cc): clocks, CPU pinning, /proc
// readers, a temporary directory with a plain and a sensitive file, opening the probe with
// its status printed, and a background drainer that polls and decodes every record.
//
// Header-only on purpose: each benchmark is one plain program built from one .cc.
#pragma once

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "events.h"
#include "sensor/bpf_probe.h"
#include "sensor/record_decoder.h"

namespace tripline::bench {

using sensor::BpfProbe;
using sensor::ProbeCounters;
using sensor::ProbeOptions;
using sensor::SensitivePath;

inline int64_t ClockNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}
inline int64_t WallNs() { return ClockNs(CLOCK_MONOTONIC); }
inline int64_t ThreadCpuNs() { return ClockNs(CLOCK_THREAD_CPUTIME_ID); }

inline int NumCpus() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

// Pins the calling thread (and whatever it forks afterwards) to `cpu`.
inline void PinSelf(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    std::fprintf(stderr, "sched_setaffinity(%d): %s\n", cpu, std::strerror(errno));
    std::exit(2);
  }
}
inline void UnpinSelf() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < NumCpus(); ++c) CPU_SET(c, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string LoadAvg() {
  std::string s = ReadFile("/proc/loadavg");
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

inline std::string KernelRelease() {
  utsname u{};
  uname(&u);
  return u.release;
}

// A "Key:   123 kB" line of /proc/<pid>/status, in kB; -1 when missing.
inline int64_t StatusKb(pid_t pid, const char* key) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status")
                            : "/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const size_t klen = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':') {
      return std::strtoll(line.c_str() + klen + 1, nullptr, 10);
    }
  }
  return -1;
}

inline void PrintHeader(const char* name) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows up when redirected
  std::printf("== %s ==\n", name);
  std::printf("kernel %s, %d online CPUs, pid %d, loadavg at start: %s\n", KernelRelease().c_str(),
              NumCpus(), getpid(), LoadAvg().c_str());
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
inline double Min(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}
inline double Max(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

// A directory under /tmp (ext4 here, not tmpfs) with an existing non-sensitive file and an
// existing file that gets an exact sensitive-path rule. Removed on destruction.
//
// `near` is the costliest kind of non-sensitive open: with `vault_rule` (a prefix rule,
// "<dir>/vault/") in the table, its path has a directory named "vault" at the rule's depth,
// under another parent, so the kernel's prefilter lets it through and the full path is
// rebuilt and matched, without a match.
struct BenchFiles {
  std::string dir, plain, secret, near_dir, near, vault_rule;
  BenchFiles() {
    dir = "/tmp/tripline-probe-bench-" + std::to_string(getpid());
    near_dir = dir + "-near";
    std::filesystem::create_directories(dir);
    std::filesystem::create_directories(near_dir + "/vault");
    plain = dir + "/plain.txt";
    secret = dir + "/secret.txt";
    near = near_dir + "/vault/plain.txt";
    vault_rule = dir + "/vault/";
    std::ofstream(plain) << "nothing to see\n";
    std::ofstream(secret) << "top secret\n";
    std::ofstream(near) << "nothing to see either\n";
  }
  ~BenchFiles() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::remove_all(near_dir, ec);
  }
  BenchFiles(const BenchFiles&) = delete;
  BenchFiles& operator=(const BenchFiles&) = delete;
};

// Opens the probe or exits. Prints what is disabled or degraded, so every run says which
// hooks it measured.
inline std::unique_ptr<BpfProbe> OpenProbeOrDie(const ProbeOptions& options, bool verbose,
                                                double* open_ms = nullptr) {
  const int64_t t0 = WallNs();
  auto probe = BpfProbe::Open(options);
  const int64_t t1 = WallNs();
  if (!probe.ok()) {
    std::fprintf(stderr, "BpfProbe::Open failed: %s\n", probe.status().ToString().c_str());
    std::exit(3);
  }
  if (open_ms) *open_ms = (t1 - t0) / 1e6;
  if (verbose) {
    std::printf("probe opened in %.0f ms (bulk ring %u B, priority ring %u B, %zu path rules)\n",
                (t1 - t0) / 1e6, options.ringbuf_bytes, options.priority_ringbuf_bytes,
                options.sensitive_paths.size());
    if ((*probe)->disabled().empty()) std::printf("  disabled: (none)\n");
    for (const auto& d : (*probe)->disabled()) std::printf("  disabled: %s\n", d.c_str());
    if ((*probe)->degraded().empty()) std::printf("  degraded: (none)\n");
    for (const auto& d : (*probe)->degraded()) std::printf("  degraded: %s\n", d.c_str());
  }
  return std::move(probe).value();
}

inline const char* TypeName(size_t t) {
  switch (t) {
    case TL_REC_LOGIN: return "login";
    case TL_REC_FILE_OPEN: return "file_open";
    case TL_REC_EXEC: return "exec";
    case TL_REC_NET_CONNECT: return "net";
    case TL_REC_LOGIN_UTMP: return "utmp";
    default: return "?";
  }
}

inline std::vector<uint64_t> DropsDelta(const ProbeCounters& before, const ProbeCounters& after) {
  std::vector<uint64_t> d(TL_REC_TYPE_SLOTS, 0);
  for (size_t t = 0; t < TL_REC_TYPE_SLOTS && t < after.drops_by_type.size(); ++t) {
    const uint64_t b = t < before.drops_by_type.size() ? before.drops_by_type[t] : 0;
    d[t] = after.drops_by_type[t] - b;
  }
  return d;
}

inline std::string DropsString(const std::vector<uint64_t>& d) {
  std::string s;
  uint64_t total = 0;
  for (size_t t = 1; t < d.size(); ++t) {
    total += d[t];
    if (t <= TL_REC_LOGIN_UTMP) {
      s += std::string(s.empty() ? "" : " ") + TypeName(t) + "=" + std::to_string(d[t]);
    }
  }
  return "total=" + std::to_string(total) + " (" + s + ")";
}

// What the drainer looks for among the decoded records. Set before Start().
struct Watch {
  std::string file_path;   // file-open records with this path count as file_hits
  uint32_t exec_ppid = 0;  // exec records of /bin/true whose parent is this tgid
  uint32_t net_port = 0;   // outbound net records to 127.0.0.1:net_port
  uint32_t net_tgid = 0;   // ... from this tgid (0: any)
};

// Polls the probe on its own thread and decodes every record, as the sensor does.
class Drainer {
 public:
  Drainer(BpfProbe& probe, Watch watch) : probe_(probe), watch_(std::move(watch)) {}
  ~Drainer() { Stop(); }

  // `cpu` < 0: not pinned.
  void Start(int cpu) {
    stop_.store(false);
    thread_ = std::thread([this, cpu] {
      if (cpu >= 0) PinSelf(cpu);
      Run();
    });
    pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_);
  }
  void Stop() {
    if (!thread_.joinable()) return;
    stop_.store(true);
    thread_.join();
    cpu_ns_at_stop_ = final_cpu_ns_.load();
  }
  void SetPaused(bool p) { paused_.store(p); }

  // CPU time the drainer thread has used so far.
  int64_t CpuNs() const {
    if (!thread_.joinable()) return cpu_ns_at_stop_;
    timespec ts{};
    clock_gettime(cpu_clock_, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
  }

  // Waits until `counter` reaches `target` or nothing new arrived for `idle_ms`.
  void WaitFor(const std::atomic<uint64_t>& counter, uint64_t target, int idle_ms = 1000) const {
    uint64_t last_records = records.load();
    int64_t last_change = WallNs();
    while (counter.load() < target) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const uint64_t r = records.load();
      if (r != last_records) {
        last_records = r;
        last_change = WallNs();
      } else if (WallNs() - last_change > idle_ms * 1000000LL) {
        return;
      }
    }
  }
  // Waits until no record arrived for `idle_ms`.
  void WaitIdle(int idle_ms) const {
    std::atomic<uint64_t> never{0};
    WaitFor(never, 1, idle_ms);
  }

  std::atomic<uint64_t> records{0}, decode_errors{0}, poll_errors{0};
  std::atomic<uint64_t> by_type[TL_REC_TYPE_SLOTS] = {};
  std::atomic<uint64_t> file_hits{0}, exec_hits{0}, net_hits{0};

 private:
  void Run() {
    const auto& rules = probe_.sensitive_paths();
    const int64_t offset = probe_.BootToWallOffsetNs();
    std::function<void(std::span<const uint8_t>)> on_record = [&](std::span<const uint8_t> b) {
      records.fetch_add(1, std::memory_order_relaxed);
      if (b.size() >= sizeof(tl_header)) {
        const uint16_t type = reinterpret_cast<const tl_header*>(b.data())->type;
        if (type < TL_REC_TYPE_SLOTS) by_type[type].fetch_add(1, std::memory_order_relaxed);
      }
      auto ev = sensor::DecodeRecord(b, offset, rules);
      if (!ev.ok()) {
        decode_errors.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      const Event& e = *ev;
      if (const auto* f = e.As<FileOpenEvent>()) {
        if (!watch_.file_path.empty() && f->path == watch_.file_path) {
          file_hits.fetch_add(1, std::memory_order_relaxed);
        }
      } else if (const auto* x = e.As<ExecEvent>()) {
        if (watch_.exec_ppid != 0 && e.process.ppid == watch_.exec_ppid &&
            x->filename == "/bin/true") {
          exec_hits.fetch_add(1, std::memory_order_relaxed);
        }
      } else if (const auto* n = e.As<NetConnectEvent>()) {
        if (watch_.net_port != 0 && n->direction == NetDirection::kOutbound &&
            n->remote_port == watch_.net_port && n->remote_addr == "127.0.0.1" &&
            (watch_.net_tgid == 0 || e.process.tgid == watch_.net_tgid)) {
          net_hits.fetch_add(1, std::memory_order_relaxed);
        }
      }
    };
    while (!stop_.load(std::memory_order_relaxed)) {
      if (paused_.load(std::memory_order_relaxed)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      auto n = probe_.Poll(50, on_record);
      if (!n.ok()) poll_errors.fetch_add(1);
    }
    final_cpu_ns_.store(ThreadCpuNs());
  }

  BpfProbe& probe_;
  Watch watch_;
  std::thread thread_;
  clockid_t cpu_clock_{};
  std::atomic<bool> stop_{false}, paused_{false};
  std::atomic<int64_t> final_cpu_ns_{0};
  int64_t cpu_ns_at_stop_ = 0;
};

// The BPF maps and programs a process holds, from /proc/<pid>/fdinfo (memlock is what the
// kernel charges for each object).
struct BpfObjects {
  struct Map {
    std::string name;
    int type = 0;
    uint64_t max_entries = 0, key_size = 0, value_size = 0, memlock = 0;
  };
  std::vector<Map> maps;
  uint64_t map_memlock = 0;
  int progs = 0;
  uint64_t prog_memlock = 0;
};

inline uint64_t FdinfoField(const std::string& text, const char* key) {
  const std::string k = std::string(key) + ":";
  size_t pos = 0;
  while ((pos = text.find(k, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      return std::strtoull(text.c_str() + pos + k.size(), nullptr, 10);
    }
    pos += k.size();
  }
  return 0;
}

// Lists the BPF objects of `pid` (0: this process). Map names come from the kernel by id.
inline BpfObjects ListBpfObjects(pid_t pid) {
  BpfObjects out;
  const std::string base = pid == 0 ? "/proc/self" : "/proc/" + std::to_string(pid);
  DIR* d = opendir((base + "/fdinfo").c_str());
  if (!d) return out;
  std::map<uint64_t, bool> seen_map_ids, seen_prog_ids;
  while (dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    const std::string text = ReadFile(base + "/fdinfo/" + de->d_name);
    if (text.find("\nmap_type:") != std::string::npos) {
      const uint64_t id = FdinfoField(text, "map_id");
      if (seen_map_ids[id]) continue;
      seen_map_ids[id] = true;
      BpfObjects::Map m;
      m.type = static_cast<int>(FdinfoField(text, "map_type"));
      m.key_size = FdinfoField(text, "key_size");
      m.value_size = FdinfoField(text, "value_size");
      m.max_entries = FdinfoField(text, "max_entries");
      m.memlock = FdinfoField(text, "memlock");
      int fd = bpf_map_get_fd_by_id(static_cast<uint32_t>(id));
      if (fd >= 0) {
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) m.name = info.name;
        close(fd);
      }
      out.map_memlock += m.memlock;
      out.maps.push_back(m);
    } else if (text.find("\nprog_type:") != std::string::npos) {
      const uint64_t id = FdinfoField(text, "prog_id");
      if (seen_prog_ids[id]) continue;
      seen_prog_ids[id] = true;
      ++out.progs;
      out.prog_memlock += FdinfoField(text, "memlock");
    }
  }
  closedir(d);
  std::sort(out.maps.begin(), out.maps.end(),
            [](const auto& a, const auto& b) { return a.memlock > b.memlock; });
  return out;
}

// Run statistics of the BPF programs this process holds (kernel.bpf_stats / BPF_ENABLE_STATS
// must be on for run_time_ns to move), keyed by program id.
struct ProgStat {
  std::string name;
  uint64_t run_cnt = 0, run_time_ns = 0;
};
inline std::map<uint32_t, ProgStat> ReadProgStats() {
  std::map<uint32_t, ProgStat> out;
  DIR* d = opendir("/proc/self/fdinfo");
  if (!d) return out;
  while (dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    const std::string text = ReadFile(std::string("/proc/self/fdinfo/") + de->d_name);
    if (text.find("\nprog_type:") == std::string::npos) continue;
    const uint32_t id = static_cast<uint32_t>(FdinfoField(text, "prog_id"));
    if (out.count(id)) continue;
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
      out[id] = {info.name, info.run_cnt, info.run_time_ns};
    }
    close(fd);
  }
  closedir(d);
  return out;
}

}  // namespace tripline::bench
