// probe_memory: resident memory of a process that runs the probe, and of the sensor daemon.
//
//   sudo build-perf/bin/probe_memory [--idle-seconds I] [--load-seconds L] [--sensor PATH]
//
// 1. This process: VmRSS / VmHWM (and RssAnon / RssFile / RssShmem) before BpfProbe::Open,
//    after it, after I s of idle polling (drainer thread, Poll + DecodeRecord), during L s of
//    load (a child storming a non-sensitive file on one CPU and a file with an exact rule on
//    the other; sampled every 100 ms, max reported) and after.
// 2. Kernel memory of the probe's BPF maps and programs (memlock from /proc/self/fdinfo):
//    not in RSS, except the ring buffers' data pages, which are mmap'd into the process and
//    count once touched.
// 3. The daemon (default: tripline-sensor next to this binary; skipped when absent): started
//    with --scope host --output jsonl, stdout drained through a pipe (lines counted), VmRSS /
//    VmHWM at idle (I s after "sensor ready") and during L s of opens of /etc/shadow (a
//    default rule) plus a non-sensitive storm.
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>

#include "bench/probe/probe_bench_common.h"

using namespace tripline::bench;

namespace {

uint64_t Arg(int argc, char** argv, const char* name, uint64_t def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  }
  return def;
}
std::string StrArg(int argc, char** argv, const char* name, std::string def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return def;
}

struct Mem {
  int64_t rss = 0, hwm = 0, anon = 0, file = 0, shmem = 0;  // kB
};
Mem ReadMem(pid_t pid) {
  return {StatusKb(pid, "VmRSS"), StatusKb(pid, "VmHWM"), StatusKb(pid, "RssAnon"),
          StatusKb(pid, "RssFile"), StatusKb(pid, "RssShmem")};
}
void PrintMem(const char* label, const Mem& m) {
  std::printf("  %-34s VmRSS %7.1f MB  VmHWM %7.1f MB  (anon %.1f, file %.1f, shmem %.1f MB)\n",
              label, m.rss / 1024.0, m.hwm / 1024.0, m.anon / 1024.0, m.file / 1024.0,
              m.shmem / 1024.0);
}

// Rss and Pss of `pid` by kind of mapping, from /proc/<pid>/smaps (kB).
struct Breakdown {
  int64_t ring_rss = 0, ring_pss = 0;  // anon_inode:bpf-map (ring buffers mmap'd by libbpf)
  int64_t heap_rss = 0, anon_rss = 0;  // [heap]; other anonymous (thread stacks, mmap'd malloc)
  int64_t file_rss = 0;                // binary and shared libraries
  int64_t total_rss = 0, total_pss = 0;
};
Breakdown ReadBreakdown(pid_t pid) {
  Breakdown b;
  std::ifstream in(pid == 0 ? std::string("/proc/self/smaps")
                            : "/proc/" + std::to_string(pid) + "/smaps");
  std::string line, name;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string first;
    ls >> first;
    // A mapping header: "start-end perms offset dev inode [name]"; fields end with ':'.
    if (first.find('-') != std::string::npos && first.back() != ':') {
      std::string perms, offset, dev, inode;
      ls >> perms >> offset >> dev >> inode;
      name.clear();
      std::getline(ls, name);
      name.erase(0, name.find_first_not_of(' '));
      continue;
    }
    int64_t kb = 0;
    ls >> kb;
    if (first == "Rss:") {
      b.total_rss += kb;
      if (name.find("bpf-map") != std::string::npos)
        b.ring_rss += kb;
      else if (name == "[heap]")
        b.heap_rss += kb;
      else if (name.empty() || name[0] == '[')
        b.anon_rss += kb;
      else
        b.file_rss += kb;
    } else if (first == "Pss:") {
      b.total_pss += kb;
      if (name.find("bpf-map") != std::string::npos) b.ring_pss += kb;
    }
  }
  return b;
}
void PrintBreakdown(const char* label, const Breakdown& b) {
  std::printf(
      "  %-34s Rss %.1f MB = ring-buffer mappings %.1f (Pss %.1f) + heap %.1f + other "
      "anon %.1f + binary/libs %.1f; total Pss %.1f MB\n",
      label, b.total_rss / 1024.0, b.ring_rss / 1024.0, b.ring_pss / 1024.0, b.heap_rss / 1024.0,
      b.anon_rss / 1024.0, b.file_rss / 1024.0, b.total_pss / 1024.0);
}

// Samples `pid`'s memory every 100 ms while `running` is true; keeps the max VmRSS sample.
class Sampler {
 public:
  Sampler(pid_t pid) : pid_(pid) {
    thread_ = std::thread([this] {
      while (running_.load()) {
        Mem m = ReadMem(pid_);
        if (m.rss > max_.rss) max_ = m;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  Mem Stop() {
    running_.store(false);
    thread_.join();
    return max_;
  }

 private:
  pid_t pid_;
  std::atomic<bool> running_{true};
  Mem max_;
  std::thread thread_;
};

// A child that opens+closes `plain` on CPU 0 and `sensitive` on the last CPU for `seconds`.
pid_t StartLoad(const std::string& plain, const std::string& sensitive, double seconds) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  const int64_t deadline = WallNs() + static_cast<int64_t>(seconds * 1e9);
  auto loop = [deadline](const std::string& path, int cpu) {
    PinSelf(cpu);
    while (WallNs() < deadline) {
      for (int i = 0; i < 256; ++i) {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) close(fd);
      }
    }
  };
  std::thread a(loop, plain, 0);
  std::thread b(loop, sensitive, NumCpus() - 1);
  a.join();
  b.join();
  _exit(0);
}

void PrintBpfObjects(const BpfObjects& o) {
  std::printf("  BPF maps: %zu, memlock %.2f MB; programs: %d, memlock %.2f MB\n", o.maps.size(),
              o.map_memlock / 1048576.0, o.progs, o.prog_memlock / 1048576.0);
  for (const auto& m : o.maps) {
    if (m.memlock < 64 * 1024) continue;
    std::printf("    %-16s type %2d  max_entries %9lu  key %3lu  value %5lu  memlock %8.2f MB\n",
                m.name.c_str(), m.type, m.max_entries, m.key_size, m.value_size,
                m.memlock / 1048576.0);
  }
  std::printf("    (+ %zu smaller maps)\n",
              static_cast<size_t>(std::count_if(o.maps.begin(), o.maps.end(),
                                                [](const auto& m) { return m.memlock < 65536; })));
}

void ThisProcess(const BenchFiles& files, double idle_s, double load_s) {
  std::printf("\n[1] this process (BpfProbe + drainer thread doing Poll + DecodeRecord)\n");
  const Mem before = ReadMem(0);
  ProbeOptions o;
  o.self_tgid = 0;
  o.sensitive_paths = tripline::sensor::DefaultSensitivePaths();
  o.sensitive_paths.push_back({SensitivePath::Match::kExact, files.secret});
  auto probe = OpenProbeOrDie(o, /*verbose=*/true);
  const Mem opened = ReadMem(0);
  Watch w;
  w.file_path = files.secret;
  Drainer d(*probe, w);
  d.Start(-1);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(idle_s * 1000)));
  const Mem idle = ReadMem(0);
  const uint64_t idle_records = d.records.load();

  const ProbeCounters c0 = probe->ReadCounters();
  Sampler sampler(getpid());
  pid_t load = StartLoad(files.plain, files.secret, load_s);
  waitpid(load, nullptr, 0);
  d.WaitIdle(500);
  const Mem peak = sampler.Stop();
  const Mem after = ReadMem(0);
  const Breakdown bd = ReadBreakdown(0);
  const auto drops = DropsDelta(c0, probe->ReadCounters());
  malloc_trim(0);
  const Mem trimmed = ReadMem(0);

  PrintMem("before Open", before);
  PrintMem("after Open", opened);
  char label[64];
  std::snprintf(label, sizeof(label), "idle %.0f s (%lu records)", idle_s, idle_records);
  PrintMem(label, idle);
  std::snprintf(label, sizeof(label), "under load, max sample");
  PrintMem(label, peak);
  PrintMem("after load", after);
  PrintBreakdown("after load, by mapping", bd);
  PrintMem("after load + malloc_trim(0)", trimmed);
  std::printf("  load: %lu sensitive events decoded (%.0f/s), ring drops %s\n", d.file_hits.load(),
              d.file_hits.load() / load_s, DropsString(drops).c_str());
  PrintBpfObjects(ListBpfObjects(0));
  d.Stop();
}

void Daemon(const std::string& bin, const BenchFiles& files, double idle_s, double load_s) {
  std::printf("\n[2] sensor daemon: %s --scope host --output jsonl\n", bin.c_str());
  if (access(bin.c_str(), X_OK) != 0) {
    std::printf("  not built (%s missing): skipped\n", bin.c_str());
    return;
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return;
  const std::string log = files.dir + "/sensor.stderr";
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    int errfd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (errfd >= 0) dup2(errfd, 2);
    execl(bin.c_str(), bin.c_str(), "--scope", "host", "--output", "jsonl",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::atomic<uint64_t> lines{0};
  std::atomic<bool> ready{false};
  std::thread reader([&] {
    std::string buf(1 << 16, '\0'), partial;
    while (true) {
      ssize_t n = read(out[0], buf.data(), buf.size());
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          if (!ready.load() && partial.find("sensor ready") != std::string::npos) ready = true;
          partial.clear();
          lines.fetch_add(1);
        } else if (partial.size() < 256) {
          partial.push_back(buf[i]);
        }
      }
    }
  });
  const int64_t t0 = WallNs();
  while (!ready.load() && WallNs() - t0 < 20e9) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (waitpid(pid, nullptr, WNOHANG) == pid) break;
  }
  if (!ready.load()) {
    std::printf("  no 'sensor ready' within 20 s (or it exited); stderr: %s\n",
                ReadFile(log).substr(0, 800).c_str());
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    reader.join();
    close(out[0]);
    return;
  }
  std::printf("  ready after %.0f ms\n", (WallNs() - t0) / 1e6);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(idle_s * 1000)));
  const Mem idle = ReadMem(pid);
  const uint64_t idle_lines = lines.load();
  Sampler sampler(pid);
  pid_t load = StartLoad(files.plain, "/etc/shadow", load_s);
  waitpid(load, nullptr, 0);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const Mem peak = sampler.Stop();
  const Mem after = ReadMem(pid);
  const BpfObjects objs = ListBpfObjects(pid);
  const Breakdown bd = ReadBreakdown(pid);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  reader.join();
  close(out[0]);
  char label[64];
  std::snprintf(label, sizeof(label), "idle %.0f s after ready (%lu lines)", idle_s, idle_lines);
  PrintMem(label, idle);
  std::snprintf(label, sizeof(label), "/etc/shadow storm, max sample");
  PrintMem(label, peak);
  PrintMem("1 s after the storm", after);
  PrintBreakdown("after the storm, by mapping", bd);
  std::printf("  stdout lines during the storm: %lu (%.0f/s); exit status after SIGTERM: %d\n",
              lines.load() - idle_lines, (lines.load() - idle_lines) / load_s,
              WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
  std::printf("  goal VmHWM < 30 MB: %s\n", after.hwm < 30 * 1024 ? "met" : "NOT met");
  PrintBpfObjects(objs);
  const std::string err = ReadFile(log);
  if (!err.empty()) {
    std::printf("  daemon stderr (first 600 bytes):\n%s\n", err.substr(0, 600).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const double idle_s = static_cast<double>(Arg(argc, argv, "--idle-seconds", 5));
  const double load_s = static_cast<double>(Arg(argc, argv, "--load-seconds", 5));
  const std::string sensor =
      StrArg(argc, argv, "--sensor", std::string(TRIPLINE_BIN_DIR) + "/tripline-sensor");
  PrintHeader("probe_memory");
  if (geteuid() != 0) {
    std::fprintf(stderr, "needs root (loads BPF programs)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  BenchFiles files;
  ThisProcess(files, idle_s, load_s);
  Daemon(sensor, files, idle_s, load_s);
  std::printf("\nloadavg at end: %s\n", LoadAvg().c_str());
  return 0;
}
