// probe_overhead: what the BPF programs cost the processes they watch.
//
//   sudo build-perf/bin/probe_overhead [--opens N] [--sensitive-opens M] [--syscalls S]
//                                      [--execs E] [--rounds R] [--cpu C]
//
// One run alternates probe OFF / ON / OFF / ... (R on-rounds, R+1 off-rounds, so drift shows
// as a difference between off-rounds). In every round, on one pinned CPU:
//   open   : open(O_RDONLY)+close of an existing NON-sensitive file, N times
//   near   : the same on a non-sensitive file the kernel's prefilter cannot tell from a
//            sensitive one (a directory named like a prefix rule's, at its depth), N times
//   sens   : the same on a file with an exact sensitive-path rule, M times (with the probe
//            on, every iteration produces a record that a drainer thread on the other CPU
//            polls and decodes; the records received are counted)
//   getppid: a syscall no program cares about, S times (the syscall-tracepoint fallback
//            runs on every syscall, so this shows the flat tax)
//   exec   : fork + execve("/bin/true") + waitpid, E times
// The loops run in a worker process forked at start (before any probe exists), pinned to
// one CPU. With the probe on, this process opens it with the default path table plus the
// exact rule and self_tgid = its own pid (as the sensor does), and a drainer thread pinned to
// another CPU polls and decodes.
// Besides OFF and ON rounds there are FLOOR rounds: a no-op tp_btf/sys_exit program
// attached instead of the probe (open, near and getppid loops only). Its cost is what any
// program on that tracepoint costs on this kernel, the lower bound of the fallback hooks.
// Figures: wall ns per iteration and thread-CPU ns per iteration (the CPU figure excludes
// time this thread was preempted by other load), medians over rounds, min..max as noise.
// Files are opened without reading: dentry cache only, no page cache involved.
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bench/probe/probe_bench_common.h"
#include "bench_noop.skel.h"

using namespace tripline::bench;

namespace {

struct Sample {
  double wall_ns = 0;  // per iteration
  double cpu_ns = 0;   // per iteration (this thread; exec: parent + children)
};

template <typename Fn>
Sample TimeLoop(uint64_t n, Fn&& fn) {
  const int64_t c0 = ThreadCpuNs(), w0 = WallNs();
  for (uint64_t i = 0; i < n; ++i) fn();
  const int64_t w1 = WallNs(), c1 = ThreadCpuNs();
  return {static_cast<double>(w1 - w0) / n, static_cast<double>(c1 - c0) / n};
}

Sample OpenLoop(const std::string& path, uint64_t n) {
  const char* p = path.c_str();
  return TimeLoop(n, [p] {
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::perror("open");
      std::exit(4);
    }
    close(fd);
  });
}

Sample SyscallLoop(uint64_t n) {
  return TimeLoop(n, [] { (void)syscall(SYS_getppid); });
}

int64_t ChildrenCpuNs() {
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  auto ns = [](const timeval& tv) { return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

Sample ExecLoop(uint64_t n) {
  static char arg0[] = "true";
  static char* const argv[] = {arg0, nullptr};
  static char* const envp[] = {nullptr};
  const int64_t cc0 = ChildrenCpuNs(), c0 = ThreadCpuNs(), w0 = WallNs();
  for (uint64_t i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      execve("/bin/true", argv, envp);
      _exit(127);
    }
    if (pid < 0) {
      std::perror("fork");
      std::exit(4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "child failed: status %d\n", status);
      std::exit(4);
    }
  }
  const int64_t w1 = WallNs(), c1 = ThreadCpuNs(), cc1 = ChildrenCpuNs();
  return {static_cast<double>(w1 - w0) / n, static_cast<double>((c1 - c0) + (cc1 - cc0)) / n};
}

enum LoopKind : int { kPlain = 0, kSecret = 1, kGetppid = 2, kExec = 3, kNear = 4, kQuit = 9 };

// The measured loops run in a separate process, forked before any probe is opened, pinned
// to one CPU: a plain process the probe watches, with none of the probe's mappings (a fork
// of the probe's own process would copy the page tables of its ring-buffer mappings).
class LoopWorker {
 public:
  LoopWorker(int cpu, const std::string& plain, const std::string& secret,
             const std::string& near) {
    int cmd[2], res[2];
    if (pipe(cmd) != 0 || pipe(res) != 0) {
      std::perror("pipe");
      std::exit(4);
    }
    pid_ = fork();
    if (pid_ == 0) {
      close(cmd[1]);
      close(res[0]);
      PinSelf(cpu);
      uint64_t req[2];
      while (read(cmd[0], req, sizeof(req)) == sizeof(req)) {
        Sample s;
        switch (req[0]) {
          case kPlain: s = OpenLoop(plain, req[1]); break;
          case kSecret: s = OpenLoop(secret, req[1]); break;
          case kNear: s = OpenLoop(near, req[1]); break;
          case kGetppid: s = SyscallLoop(req[1]); break;
          case kExec: s = ExecLoop(req[1]); break;
          default: _exit(0);
        }
        if (write(res[1], &s, sizeof(s)) != sizeof(s)) _exit(5);
      }
      _exit(0);
    }
    close(cmd[0]);
    close(res[1]);
    cmd_ = cmd[1];
    res_ = res[0];
  }
  ~LoopWorker() {
    uint64_t req[2] = {kQuit, 0};
    if (write(cmd_, req, sizeof(req)) != sizeof(req)) std::perror("worker");
    close(cmd_);
    close(res_);
    waitpid(pid_, nullptr, 0);
  }
  Sample Run(int kind, uint64_t n) {
    uint64_t req[2] = {static_cast<uint64_t>(kind), n};
    Sample s;
    if (write(cmd_, req, sizeof(req)) != sizeof(req) || read(res_, &s, sizeof(s)) != sizeof(s)) {
      std::fprintf(stderr, "loop worker died\n");
      std::exit(4);
    }
    return s;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int cmd_ = -1, res_ = -1;
};

struct Series {
  std::vector<double> wall, cpu;
  void Add(const Sample& s) {
    wall.push_back(s.wall_ns);
    cpu.push_back(s.cpu_ns);
  }
};

std::string Spread(const std::vector<double>& v) {
  char buf[96];
  const double m = Median(v);
  std::snprintf(buf, sizeof(buf), "%.0f..%.0f (+-%.1f%%)", Min(v), Max(v),
                m > 0 ? 50.0 * (Max(v) - Min(v)) / m : 0.0);
  return buf;
}

void Row(const char* name, const char* unit, const Series& off, const Series& on, bool cpu) {
  const auto& a = cpu ? off.cpu : off.wall;
  const auto& b = cpu ? on.cpu : on.wall;
  const double ma = Median(a), mb = Median(b);
  std::printf("%-9s %-4s %-6s off %8.0f  on %8.0f  overhead %+7.1f%%  | off %s, on %s\n", name,
              cpu ? "cpu" : "wall", unit, ma, mb, ma > 0 ? 100.0 * (mb - ma) / ma : 0.0,
              Spread(a).c_str(), Spread(b).c_str());
}

// Per-program attribution of one loop: BPF run-time statistics are switched on (through an
// fd, so they switch off again when it closes) only for this pass, since they add two clock
// reads per program run; the measured rounds above run without them.
void Attribute(const char* name, uint64_t n, const std::function<Sample()>& loop,
               double off_cpu_ns) {
  const auto s0 = ReadProgStats();
  const Sample s = loop();
  const auto s1 = ReadProgStats();
  double sum = 0;
  std::printf("  %s: %.0f ns CPU/iteration with stats on (off-median %.0f, +%.0f)\n", name,
              s.cpu_ns, off_cpu_ns, s.cpu_ns - off_cpu_ns);
  for (const auto& [id, st] : s1) {
    auto it = s0.find(id);
    const uint64_t runs = st.run_cnt - (it == s0.end() ? 0 : it->second.run_cnt);
    const uint64_t ns = st.run_time_ns - (it == s0.end() ? 0 : it->second.run_time_ns);
    if (runs == 0) continue;
    sum += static_cast<double>(ns) / n;
    std::printf("    %-20s %6.2f runs/iter (all tasks)  %6.0f ns/run  %6.0f ns/iter\n",
                st.name.c_str(), static_cast<double>(runs) / n, static_cast<double>(ns) / runs,
                static_cast<double>(ns) / n);
  }
  std::printf("    (run counts are system-wide: other processes' syscalls are included)\n");
  std::printf(
      "    programs' own run time %.0f ns/iter; rest of the +%.0f ns (tracepoint slow "
      "path, dispatch, stats clock reads) %.0f ns/iter\n",
      sum, s.cpu_ns - off_cpu_ns, s.cpu_ns - off_cpu_ns - sum);
}

uint64_t Arg(int argc, char** argv, const char* name, uint64_t def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t kOpens = Arg(argc, argv, "--opens", 2000000);
  const uint64_t kSens = Arg(argc, argv, "--sensitive-opens", 500000);
  const uint64_t kSyscalls = Arg(argc, argv, "--syscalls", 2000000);
  const uint64_t kExecs = Arg(argc, argv, "--execs", 2000);
  const int kRounds = static_cast<int>(Arg(argc, argv, "--rounds", 3));
  const int kCpu = static_cast<int>(Arg(argc, argv, "--cpu", NumCpus() - 1));
  const int kDrainCpu = NumCpus() > 1 ? (kCpu == 0 ? 1 : 0) : -1;

  PrintHeader("probe_overhead");
  if (geteuid() != 0) {
    std::fprintf(stderr, "needs root (loads BPF programs)\n");
    return 2;
  }
  std::printf(
      "loop CPU %d, drainer CPU %d; opens %lu, sensitive opens %lu, getppid %lu, "
      "execs %lu, %d on-rounds / %d off-rounds\n",
      kCpu, kDrainCpu, kOpens, kSens, kSyscalls, kExecs, kRounds, kRounds + 1);
  BenchFiles files;
  LoopWorker worker(kCpu, files.plain, files.secret, files.near);
  auto W = [&worker](int kind, uint64_t n) { return worker.Run(kind, n); };
  std::printf(
      "loops run in worker process %d pinned to CPU %d; the probe, its drainer and "
      "this process (self_tgid, not watched) elsewhere\n",
      worker.pid(), kCpu);

  ProbeOptions options;
  options.self_tgid = static_cast<uint32_t>(getpid());  // as the sensor does
  options.sensitive_paths = tripline::sensor::DefaultSensitivePaths();
  options.sensitive_paths.push_back({SensitivePath::Match::kExact, files.secret});
  options.sensitive_paths.push_back({SensitivePath::Match::kPrefix, files.vault_rule});

  // Warm-up: dentries, the page cache of /bin/true and its libraries, the CPU frequency.
  W(kPlain, 200000);
  W(kNear, 200000);
  W(kSecret, 50000);
  W(kGetppid, 200000);
  W(kExec, 200);

  Series open_off, open_on, sens_off, sens_on, sys_off, sys_on, exec_off, exec_on;
  Series near_off, near_on, open_floor, near_floor, sys_floor;
  std::vector<double> drainer_cpu_per_event;
  uint64_t total_sens_expected = 0, total_sens_received = 0, total_exec_expected = 0,
           total_exec_received = 0, decode_errors = 0;
  std::vector<uint64_t> drops_total(TL_REC_TYPE_SLOTS, 0);

  auto off_round = [&](int r) {
    open_off.Add(W(kPlain, kOpens));
    near_off.Add(W(kNear, kOpens));
    sens_off.Add(W(kSecret, kSens));
    sys_off.Add(W(kGetppid, kSyscalls));
    exec_off.Add(W(kExec, kExecs));
    std::printf(
        "[off %d] open %.0f ns, sens %.0f ns, getppid %.0f ns, exec %.1f us (wall)  "
        "load %s\n",
        r, open_off.wall.back(), sens_off.wall.back(), sys_off.wall.back(),
        exec_off.wall.back() / 1000, LoadAvg().c_str());
  };

  // The floor: a no-op program on the same tracepoint, nothing else.
  auto floor_round = [&](int r) {
    bench_noop* noop = bench_noop__open_and_load();
    if (noop == nullptr || bench_noop__attach(noop) != 0) {
      std::fprintf(stderr, "no-op sys_exit program: %s\n", std::strerror(errno));
      std::exit(3);
    }
    W(kPlain, 100000);
    open_floor.Add(W(kPlain, kOpens));
    near_floor.Add(W(kNear, kOpens));
    sys_floor.Add(W(kGetppid, kSyscalls));
    bench_noop__destroy(noop);
    std::printf("[flr %d] open %.0f ns, near %.0f ns, getppid %.0f ns (wall)  load %s\n", r,
                open_floor.wall.back(), near_floor.wall.back(), sys_floor.wall.back(),
                LoadAvg().c_str());
  };

  for (int r = 0; r < kRounds; ++r) {
    off_round(r);
    floor_round(r);
    // --- probe on ---
    auto probe = OpenProbeOrDie(options, /*verbose=*/r == 0);
    Watch watch;
    watch.file_path = files.secret;
    watch.exec_ppid = static_cast<uint32_t>(worker.pid());
    Drainer drainer(*probe, watch);
    drainer.Start(kDrainCpu);
    const ProbeCounters c0 = probe->ReadCounters();
    W(kPlain, 100000);  // warm-up with the programs attached
    open_on.Add(W(kPlain, kOpens));
    near_on.Add(W(kNear, kOpens));
    const uint64_t fh0 = drainer.file_hits.load();
    const int64_t dc0 = drainer.CpuNs();
    sens_on.Add(W(kSecret, kSens));
    drainer.WaitFor(drainer.file_hits, fh0 + kSens);
    const uint64_t sens_received = drainer.file_hits.load() - fh0;
    drainer_cpu_per_event.push_back(static_cast<double>(drainer.CpuNs() - dc0) /
                                    std::max<uint64_t>(1, sens_received));
    sys_on.Add(W(kGetppid, kSyscalls));
    const uint64_t eh0 = drainer.exec_hits.load();
    exec_on.Add(W(kExec, kExecs));
    drainer.WaitFor(drainer.exec_hits, eh0 + kExecs);
    const uint64_t exec_received = drainer.exec_hits.load() - eh0;
    drainer.Stop();
    const auto drops = DropsDelta(c0, probe->ReadCounters());
    for (size_t t = 0; t < drops.size(); ++t) drops_total[t] += drops[t];
    total_sens_expected += kSens;
    total_sens_received += sens_received;
    total_exec_expected += kExecs;
    total_exec_received += exec_received;
    decode_errors += drainer.decode_errors.load();
    std::printf(
        "[on  %d] open %.0f ns, near %.0f ns, sens %.0f ns, getppid %.0f ns, exec %.1f us "
        "(wall)  load %s\n"
        "         sensitive events received %lu/%lu, exec events %lu/%lu, records "
        "decoded %lu (decode errors %lu), ring drops %s\n",
        r, open_on.wall.back(), near_on.wall.back(), sens_on.wall.back(), sys_on.wall.back(),
        exec_on.wall.back() / 1000, LoadAvg().c_str(), sens_received, kSens, exec_received, kExecs,
        drainer.records.load(), drainer.decode_errors.load(), DropsString(drops).c_str());
  }
  off_round(kRounds);

  std::printf(
      "\n--- results: median over rounds (off: %d, on: %d); noise = min..max (+-half "
      "range / median) ---\n",
      kRounds + 1, kRounds);
  std::printf("hooks: see 'degraded' above (syscall tracepoints when fentry is refused)\n");
  for (bool cpu : {false, true}) {
    Row("open+close", "ns", open_off, open_on, cpu);
    Row("near open", "ns", near_off, near_on, cpu);
    Row("sens open", "ns", sens_off, sens_on, cpu);
    Row("getppid", "ns", sys_off, sys_on, cpu);
    Row("fork+exec", "ns", exec_off, exec_on, cpu);
  }
  std::printf("floor (a no-op tp_btf/sys_exit program instead of the probe):\n");
  for (bool cpu : {false, true}) {
    Row("open+close", "ns", open_off, open_floor, cpu);
    Row("near open", "ns", near_off, near_floor, cpu);
    Row("getppid", "ns", sys_off, sys_floor, cpu);
  }
  std::printf(
      "probe above the floor (cpu): open+close %+.0f ns, near open %+.0f ns, getppid %+.0f ns\n",
      Median(open_on.cpu) - Median(open_floor.cpu), Median(near_on.cpu) - Median(near_floor.cpu),
      Median(sys_on.cpu) - Median(sys_floor.cpu));
  const double drift =
      100.0 * (open_off.wall.back() - open_off.wall.front()) / open_off.wall.front();
  std::printf("drift (open+close wall, first vs last off-round): %+.1f%%\n", drift);
  std::printf(
      "cost per delivered event (sensitive open with probe, wall): %.0f ns/event, of "
      "which %.0f ns above a non-sensitive open with the probe\n",
      Median(sens_on.wall), Median(sens_on.wall) - Median(open_on.wall));
  std::printf(
      "user-space drainer (poll + DecodeRecord, other CPU): %.0f ns CPU/event "
      "(median)\n",
      Median(drainer_cpu_per_event));
  std::printf(
      "events: sensitive %lu/%lu received, exec %lu/%lu received, decode errors %lu, "
      "ring drops %s\n",
      total_sens_received, total_sens_expected, total_exec_received, total_exec_expected,
      decode_errors, DropsString(drops_total).c_str());

  if (Arg(argc, argv, "--attribution", 1) != 0) {
    std::printf(
        "\n--- attribution pass (probe on, BPF run-time stats on; not part of the "
        "figures above) ---\n");
    auto probe = OpenProbeOrDie(options, /*verbose=*/false);
    Watch watch;
    watch.file_path = files.secret;
    Drainer drainer(*probe, watch);
    drainer.Start(kDrainCpu);
    const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats_fd < 0) {
      std::printf("  bpf_enable_stats failed: %s\n", std::strerror(errno));
    } else {
      W(kPlain, 100000);
      Attribute(
          "open+close", kOpens / 2, [&] { return W(kPlain, kOpens / 2); }, Median(open_off.cpu));
      Attribute(
          "sens open", kSens / 2, [&] { return W(kSecret, kSens / 2); }, Median(sens_off.cpu));
      Attribute(
          "getppid", kSyscalls / 2, [&] { return W(kGetppid, kSyscalls / 2); },
          Median(sys_off.cpu));
      Attribute(
          "fork+exec", kExecs / 2, [&] { return W(kExec, kExecs / 2); }, Median(exec_off.cpu));
      close(stats_fd);
    }
    drainer.Stop();
  }
  std::printf("loadavg at end: %s\n", LoadAvg().c_str());
  return 0;
}
