// Root tests of the BPF programs: real programs, real syscalls, every field checked.
// Skipped (visibly) when not root or when the kernel refuses to load BPF.
#include "sensor/bpf_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "events.h"
#include "sensor/record_decoder.h"

namespace tripline::sensor {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kNobody = 65534;

// Events decoded but not yet asked for, per probe: one Poll can bring several records.
std::map<const BpfProbe*, std::deque<Event>>& Backlog() {
  static std::map<const BpfProbe*, std::deque<Event>> backlog;
  return backlog;
}

// Polls `probe` until a decoded event satisfies `pred` or 5 s pass; never sleeps blindly.
std::optional<Event> WaitFor(BpfProbe& probe, const std::function<bool(const Event&)>& pred,
                             std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  std::deque<Event>& backlog = Backlog()[&probe];
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    for (auto it = backlog.begin(); it != backlog.end(); ++it) {
      if (pred(*it)) {
        Event e = std::move(*it);
        backlog.erase(it);
        return e;
      }
    }
    // Events nobody asked for are dropped once they are many (other processes' opens).
    while (backlog.size() > 10000) backlog.pop_front();
    if (std::chrono::steady_clock::now() >= deadline) {
      // What did arrive, for the failure message: the file opens and connects of the backlog.
      int shown = 0;
      for (const Event& e : backlog) {
        if ((e.As<FileOpenEvent>() != nullptr || e.As<NetConnectEvent>() != nullptr) &&
            shown++ < 20) {
          std::printf("  seen instead: pid %u %s\n", e.process.tgid, Summarize(e).c_str());
        }
      }
      return std::nullopt;
    }
    auto n = probe.Poll(100, [&](std::span<const uint8_t> bytes) {
      auto e = DecodeRecord(bytes, probe.BootToWallOffsetNs(), probe.sensitive_paths());
      EXPECT_TRUE(e.ok()) << e.status().ToString();
      if (e.ok()) backlog.push_back(std::move(e).value());
    });
    EXPECT_TRUE(n.ok()) << n.status().ToString();
  }
}

// Runs `fn` in a forked child, returns its pid after it exited with `fn`'s code.
pid_t RunChild(const std::function<int()>& fn, int* status_out = nullptr) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int status = 0;
  waitpid(pid, &status, 0);
  if (status_out) *status_out = status;
  return pid;
}

class BpfProbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      skip_reason_ = "needs root to load BPF programs";
      return;
    }
    dir_ = new fs::path("/tmp/tripline-bpf-test-" + std::to_string(getpid()));
    fs::create_directories(*dir_ / "sub");
    fs::permissions(*dir_, fs::perms(0755));
    secret_ = new std::string((*dir_ / "secret").string());
    std::ofstream(*secret_) << "top secret\n";
    chmod(secret_->c_str(), 0600);
    btmp_ = new std::string((*dir_ / "btmp").string());
    std::ofstream(*btmp_).flush();

    ProbeOptions options;
    options.self_tgid = 0;  // this process's own events are what the tests look for
    options.sensitive_paths = DefaultSensitivePaths();
    options.sensitive_paths.push_back({SensitivePath::Match::kExact, *secret_});
    options.sensitive_paths.push_back({SensitivePath::Match::kSuffix, "/tripline-test-suffix"});
    options.sensitive_paths.push_back({SensitivePath::Match::kPrefix, (*dir_ / "vault/").string()});
    options.sensitive_paths.push_back(
        {SensitivePath::Match::kExact, (*dir_ / "a-name-longer-than-fifteen.key").string()});
    options.exec_max_args = 8;
    options.listener_tgids = {static_cast<uint32_t>(getpid())};
    options.btmp_path = *btmp_;
    options.wtmp_path = "";
    // The suite runs once per variant the ctest registration names (tests/bpf/CMakeLists.txt):
    // "best" (what this kernel picks), "probe-reads" (no kfunc), "fallback" (syscall
    // tracepoints), "fallback-probe-reads".
    const std::string variant = Variant();
    options.avoid_kfuncs = variant.find("probe-reads") != std::string::npos;
    options.avoid_trampolines = variant.rfind("fallback", 0) == 0;
    auto probe = BpfProbe::Open(options);
    if (!probe.ok()) {
      // As root, nothing that loads none of the programs is a reason to skip: the verifier
      // reports most rejections as EACCES, which would read as "not allowed here".
      if (probe.status().code() == Status::Code::kUnsupported &&
          probe.status().message().find("kernel BTF") != std::string::npos) {
        skip_reason_ = "this kernel has no BTF: " + probe.status().ToString();
        return;
      }
      FAIL() << probe.status().ToString();
    }
    probe_ = std::move(probe).value().release();
  }

  static std::string Variant() {
    const char* v = std::getenv("TRIPLINE_TEST_PROBE_VARIANT");
    return v != nullptr ? v : "best";
  }

  static void TearDownTestSuite() {
    delete probe_;
    probe_ = nullptr;
    if (dir_) {
      fs::remove_all(*dir_);
      fs::remove_all(dir_->string() + "-twin");
    }
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_NE(probe_, nullptr);
  }

  static void ExpectSelf(const Event& e) {
    EXPECT_EQ(e.process.tgid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(e.process.pid, static_cast<uint32_t>(gettid()));
    EXPECT_EQ(e.process.ppid, static_cast<uint32_t>(getppid()));
    EXPECT_EQ(e.process.uid, 0u);
    EXPECT_EQ(e.process.gid, 0u);
    struct stat sb {};
    ASSERT_EQ(stat("/proc/self/ns/uts", &sb), 0);
    EXPECT_EQ(e.process.uts_inum, sb.st_ino);
    EXPECT_NE(e.process.cgroup_id, 0u);
    EXPECT_FALSE(e.process.comm.empty());
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    EXPECT_LT(std::llabs(now - e.time_ns), 10LL * 1000 * 1000 * 1000);
  }

  static inline BpfProbe* probe_ = nullptr;
  static inline std::string skip_reason_;
  static inline fs::path* dir_ = nullptr;
  static inline std::string* secret_ = nullptr;
  static inline std::string* btmp_ = nullptr;
};

bool IsFile(const Event& e, uint32_t tgid, const std::string& path, int flags_accmode) {
  const FileOpenEvent* f = e.As<FileOpenEvent>();
  return f != nullptr && e.process.tgid == tgid && f->path == path &&
         static_cast<int>(f->flags & O_ACCMODE) == flags_accmode;
}

// Families the kernel matrix knows this kernel cannot run (TRIPLINE_EXPECT_OFF=a,b; the
// reasons are in docs/kernel-matrix.md).
bool ExpectedOff(const std::string& family) {
  const char* v = std::getenv("TRIPLINE_EXPECT_OFF");
  const std::string list = "," + std::string(v != nullptr ? v : "") + ",";
  return list.find("," + family + ",") != std::string::npos;
}

TEST_F(BpfProbeTest, ReportsDisabledParts) {
  for (const std::string& d : probe_->disabled()) {
    std::printf("disabled: %s\n", d.c_str());
    EXPECT_TRUE(ExpectedOff(d.substr(0, d.find(':')))) << d;
  }
  EXPECT_FALSE(probe_->libpam_path().empty());
}

// Every family runs, on the variant this suite asked for; TRIPLINE_EXPECT_HOOKS=fentry (the
// kernel matrix, on kernels whose configuration allows trampolines) makes the preferred
// hooks required where the suite did not avoid them.
TEST_F(BpfProbeTest, EveryFamilyRunsOnTheVariantAsked) {
  const std::string variant = Variant();
  const char* expect = std::getenv("TRIPLINE_EXPECT_HOOKS");
  const bool fentry_expected = expect != nullptr && std::string(expect) == "fentry";
  std::map<std::string, FamilyStatus> by_name;
  for (const FamilyStatus& f : probe_->families()) {
    std::printf("%-10s %-8s %-33s %s\n", f.name.c_str(), FamilyStateName(f.state), f.hooks.c_str(),
                f.reason.c_str());
    by_name[f.name] = f;
  }
  ASSERT_EQ(by_name.size(), 6u);
  for (const auto& [name, f] : by_name) {
    if (ExpectedOff(name)) {
      EXPECT_EQ(f.state, FamilyStatus::State::kDisabled) << name << " runs: update the matrix";
      EXPECT_FALSE(f.reason.empty()) << name;
      continue;
    }
    EXPECT_NE(f.state, FamilyStatus::State::kDisabled) << name << ": " << f.reason;
    if (f.state != FamilyStatus::State::kLive) {
      EXPECT_FALSE(f.reason.empty()) << name;
      EXPECT_FALSE(f.remedy.empty()) << name;
    }
  }
  const bool probe_reads = variant.find("probe-reads") != std::string::npos;
  for (const char* name : {"file", "io_uring"}) {
    if (ExpectedOff(name)) continue;
    const bool on_probe_reads = by_name[name].hooks.find("probe reads") != std::string::npos;
    if (probe_reads) {
      EXPECT_TRUE(on_probe_reads) << name;
    } else if (on_probe_reads) {  // only where the kernel lacks the kfunc
      EXPECT_NE(by_name[name].reason.find("bpf_rdonly_cast"), std::string::npos) << name;
    }
  }
  if (variant.rfind("fallback", 0) == 0) {
    for (const char* name : {"file", "net", "login-utmp"}) {
      if (ExpectedOff(name)) continue;
      EXPECT_EQ(by_name[name].hooks.rfind("syscall tracepoints", 0), 0u) << name;
      EXPECT_EQ(by_name[name].state, FamilyStatus::State::kDegraded) << name;
    }
  } else if (fentry_expected) {
    for (const char* name : {"file", "net", "login-utmp"}) {
      if (ExpectedOff(name)) continue;
      EXPECT_EQ(by_name[name].hooks.rfind("fentry", 0), 0u) << name << ": " << by_name[name].reason;
      EXPECT_EQ(by_name[name].state, FamilyStatus::State::kLive) << name;
    }
  }
}

TEST_F(BpfProbeTest, FileOpenReadAndWrite) {
  int fd = open(secret_->c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  close(fd);
  auto e = WaitFor(*probe_, [](const Event& e) { return IsFile(e, getpid(), *secret_, O_RDONLY); });
  ASSERT_TRUE(e) << "no read event";
  ExpectSelf(*e);
  const FileOpenEvent* f = e->As<FileOpenEvent>();
  EXPECT_EQ(f->result, 0);
  EXPECT_EQ(f->access, FileAccess::kRead);
  EXPECT_EQ(f->flags & (O_CLOEXEC | O_ACCMODE), static_cast<uint32_t>(O_CLOEXEC | O_RDONLY));
  EXPECT_EQ(f->rule, "exact:" + *secret_);

  fd = open(secret_->c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  close(fd);
  e = WaitFor(*probe_, [](const Event& e) { return IsFile(e, getpid(), *secret_, O_WRONLY); });
  ASSERT_TRUE(e) << "no write event";
  EXPECT_EQ(e->As<FileOpenEvent>()->access, FileAccess::kWrite);
  EXPECT_EQ(e->As<FileOpenEvent>()->result, 0);
  EXPECT_TRUE(e->As<FileOpenEvent>()->flags & O_APPEND);
}

TEST_F(BpfProbeTest, FileOpenRefusedIsAnEventToo) {
  int status = 0;
  pid_t child = RunChild(
      [] {
        if (setgid(kNobody) != 0 || setuid(kNobody) != 0) return 10;
        int fd = open(secret_->c_str(), O_RDONLY);
        return (fd < 0 && errno == EACCES) ? 0 : 11;
      },
      &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  auto e = WaitFor(*probe_, [&](const Event& e) { return IsFile(e, child, *secret_, O_RDONLY); });
  ASSERT_TRUE(e) << "no EACCES event";
  EXPECT_EQ(e->process.pid, static_cast<uint32_t>(child));
  EXPECT_EQ(e->process.ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(e->process.uid, kNobody);
  EXPECT_EQ(e->process.gid, kNobody);
  EXPECT_EQ(e->As<FileOpenEvent>()->result, -EACCES);
  EXPECT_EQ(e->As<FileOpenEvent>()->access, FileAccess::kRead);
}

// A refused open never resolves, so there is no file to name: a relative argument is joined
// to its directory (working directory, or openat's dirfd) and "." / ".." resolved.
TEST_F(BpfProbeTest, RefusedRelativeOpensAreJoinedToTheirDirectory) {
  int status = 0;
  pid_t child = RunChild(
      [] {
        if (chdir((*dir_ / "sub").c_str()) != 0) return 9;
        if (setgid(kNobody) != 0 || setuid(kNobody) != 0) return 10;
        if (open("../secret", O_RDONLY) >= 0 || errno != EACCES) return 11;
        if (chdir("..") != 0) return 12;
        if (open("./sub/.././/secret", O_WRONLY) >= 0 || errno != EACCES) return 13;
        int dirfd = open((*dir_ / "sub").c_str(), O_RDONLY | O_DIRECTORY);
        if (dirfd < 0) return 14;
        if (openat(dirfd, "../secret", O_RDWR) >= 0 || errno != EACCES) return 15;
        return 0;
      },
      &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  for (int accmode : {O_RDONLY, O_WRONLY, O_RDWR}) {
    auto e = WaitFor(*probe_, [&](const Event& e) { return IsFile(e, child, *secret_, accmode); });
    ASSERT_TRUE(e) << "refused relative open (access mode " << accmode << ") not reported";
    EXPECT_EQ(e->As<FileOpenEvent>()->result, -EACCES);
    EXPECT_EQ(e->As<FileOpenEvent>()->rule, "exact:" + *secret_);
  }
}

TEST_F(BpfProbeTest, RelativeAndDotDotPathsResolveToCanonical) {
  pid_t child = RunChild([] {
    if (chdir(dir_->c_str()) != 0) return 10;
    int fd = open("secret", O_RDONLY);
    if (fd < 0) return 11;
    close(fd);
    fd = open("sub/../secret", O_RDWR);
    if (fd < 0) return 12;
    close(fd);
    return 0;
  });
  auto e = WaitFor(*probe_, [&](const Event& e) { return IsFile(e, child, *secret_, O_RDONLY); });
  ASSERT_TRUE(e) << "relative open not seen";
  EXPECT_EQ(e->As<FileOpenEvent>()->result, 0);
  e = WaitFor(*probe_, [&](const Event& e) { return IsFile(e, child, *secret_, O_RDWR); });
  ASSERT_TRUE(e) << "dot-dot open not seen";
  EXPECT_EQ(e->As<FileOpenEvent>()->access, FileAccess::kReadWrite);
}

TEST_F(BpfProbeTest, SuffixRuleAndNonSensitiveFiles) {
  const std::string plain = (*dir_ / "plain").string();
  const std::string suffixed = (*dir_ / "sub" / "tripline-test-suffix").string();
  std::ofstream(plain) << "x";
  std::ofstream(suffixed) << "x";
  int fd = open(plain.c_str(), O_RDONLY);
  close(fd);
  fd = open(suffixed.c_str(), O_RDONLY);
  close(fd);
  bool saw_plain = false;
  auto e = WaitFor(*probe_, [&](const Event& e) {
    const FileOpenEvent* f = e.As<FileOpenEvent>();
    if (f && f->path == plain) saw_plain = true;
    return f && f->path == suffixed;
  });
  for (const Event& rest : Backlog()[probe_]) {
    const FileOpenEvent* f = rest.As<FileOpenEvent>();
    if (f && f->path == plain) saw_plain = true;
  }
  ASSERT_TRUE(e) << "suffix rule did not match";
  EXPECT_EQ(e->As<FileOpenEvent>()->rule, "suffix:/tripline-test-suffix");
  EXPECT_FALSE(saw_plain) << "a file outside the table reached the ring buffer";
}

// Opens `path` read-only and closes it; false when the open failed.
bool OpenClose(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// Whether a file-open event for `path` is waiting or arrives within `limit`.
bool SawFile(BpfProbe& probe, const std::string& path, std::chrono::milliseconds limit) {
  return WaitFor(
             probe,
             [&](const Event& e) {
               const FileOpenEvent* f = e.As<FileOpenEvent>();
               return f != nullptr && f->path == path;
             },
             limit)
      .has_value();
}

// The kernel's prefilter lets an open through on the names of the file and of the ancestor
// at the rule's depth; these cases pin down that it is exact: deep descendants of a prefix
// directory match, look-alikes (same name at the same depth elsewhere, same first 15 bytes
// of a long name) are matched in full and rejected.
TEST_F(BpfProbeTest, PrefixRuleMatchesDeepDescendantsOnly) {
  const fs::path deep = *dir_ / "vault" / "a" / "b" / "c";
  const fs::path twin = dir_->string() + "-twin";  // also at depth 2, holds its own "vault"
  fs::create_directories(deep);
  fs::create_directories(twin / "vault");
  const std::string inside = (deep / "key.pem").string();
  const std::string lookalike = (twin / "vault" / "key.pem").string();
  std::ofstream(inside) << "k";
  std::ofstream(lookalike) << "k";
  ASSERT_TRUE(OpenClose(lookalike));
  ASSERT_TRUE(OpenClose(inside));
  auto e = WaitFor(*probe_, [&](const Event& e) { return IsFile(e, getpid(), inside, O_RDONLY); });
  ASSERT_TRUE(e) << "open four levels below a prefix rule not seen";
  EXPECT_EQ(e->As<FileOpenEvent>()->rule, "prefix:" + (*dir_ / "vault/").string());
  EXPECT_FALSE(SawFile(*probe_, lookalike, std::chrono::milliseconds(300)))
      << "a directory of the same name elsewhere matched";
}

TEST_F(BpfProbeTest, LongNamesAreComparedInFull) {
  // Same length and same first 15 bytes as the rule's file name.
  const std::string real = (*dir_ / "a-name-longer-than-fifteen.key").string();
  const std::string lookalike = (*dir_ / "a-name-longer-than-sixteen.key").string();
  ASSERT_EQ(fs::path(real).filename().string().size(),
            fs::path(lookalike).filename().string().size());
  std::ofstream(real) << "k";
  std::ofstream(lookalike) << "k";
  ASSERT_TRUE(OpenClose(lookalike));
  ASSERT_TRUE(OpenClose(real));
  ASSERT_TRUE(SawFile(*probe_, real, std::chrono::seconds(5))) << "long exact name not matched";
  EXPECT_FALSE(SawFile(*probe_, lookalike, std::chrono::milliseconds(300)));
}

// A path that crosses a mount point: the name the file has in its own file system ("store")
// is not the name it has in the path ("m"); both the prefilter and the path rebuild must
// follow the mount to its mount point.
TEST_F(BpfProbeTest, PathsAcrossABindMount) {
  const fs::path store = *dir_ / "store";
  const fs::path mountpoint = *dir_ / "vault" / "m";
  fs::create_directories(store);
  fs::create_directories(mountpoint);
  std::ofstream(store / "key") << "k";
  const std::string via_mount = (mountpoint / "key").string();
  int status = 0;
  pid_t child = RunChild(
      [&] {
        // A mount namespace of its own, so the bind mount never shows on the host.
        if (unshare(CLONE_NEWNS) != 0) return 10;
        if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 11;
        if (mount(store.c_str(), mountpoint.c_str(), nullptr, MS_BIND, nullptr) != 0) return 12;
        // Relative, so only the path rebuilt from the file can match.
        if (chdir(mountpoint.c_str()) != 0) return 13;
        return OpenClose("key") ? 0 : 14;
      },
      &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  auto e = WaitFor(*probe_, [&](const Event& e) { return IsFile(e, child, via_mount, O_RDONLY); });
  ASSERT_TRUE(e) << "open through a bind mount not reported under its path";
}

// A TCP listener on 127.0.0.1 and a kernel-chosen port, its address in `addr`; -1 on error.
int LoopbackListener(sockaddr_in* addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  *addr = {};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(*addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof(*addr)) != 0 ||
      listen(fd, 4) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// A minimal io_uring (no liburing): one submission, wait for its completion.
class IoUring {
 public:
  IoUring() {
    io_uring_params p{};
    fd_ = static_cast<int>(syscall(__NR_io_uring_setup, 4, &p));
    if (fd_ < 0) return;
    sq_size_ = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    cq_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    sq_ = mmap(nullptr, sq_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_,
               IORING_OFF_SQ_RING);
    cq_ = mmap(nullptr, cq_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_,
               IORING_OFF_CQ_RING);
    sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
    sqes_ = static_cast<io_uring_sqe*>(mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE,
                                            MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES));
    if (sq_ == MAP_FAILED || cq_ == MAP_FAILED || sqes_ == MAP_FAILED) {
      close(fd_);
      fd_ = -1;
      return;
    }
    p_ = p;
  }
  ~IoUring() {
    if (fd_ < 0) return;
    munmap(sq_, sq_size_);
    munmap(cq_, cq_size_);
    munmap(sqes_, sqes_size_);
    close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  // Submits `sqe` and returns its completion's result.
  int32_t Run(const io_uring_sqe& sqe) {
    auto* sq = static_cast<char*>(sq_);
    auto* cq = static_cast<char*>(cq_);
    auto* tail = reinterpret_cast<std::atomic<uint32_t>*>(sq + p_.sq_off.tail);
    const uint32_t mask = *reinterpret_cast<uint32_t*>(sq + p_.sq_off.ring_mask);
    const uint32_t t = tail->load(std::memory_order_relaxed);
    sqes_[t & mask] = sqe;
    reinterpret_cast<uint32_t*>(sq + p_.sq_off.array)[t & mask] = t & mask;
    tail->store(t + 1, std::memory_order_release);
    if (syscall(__NR_io_uring_enter, fd_, 1, 1, IORING_ENTER_GETEVENTS, nullptr, 0) < 0) {
      return -errno;
    }
    auto* head = reinterpret_cast<std::atomic<uint32_t>*>(cq + p_.cq_off.head);
    const uint32_t cmask = *reinterpret_cast<uint32_t*>(cq + p_.cq_off.ring_mask);
    const uint32_t h = head->load(std::memory_order_acquire);
    const int32_t res = reinterpret_cast<io_uring_cqe*>(cq + p_.cq_off.cqes)[h & cmask].res;
    head->store(h + 1, std::memory_order_release);
    return res;
  }

 private:
  int fd_ = -1;
  io_uring_params p_{};
  void* sq_ = MAP_FAILED;
  void* cq_ = MAP_FAILED;
  io_uring_sqe* sqes_ = static_cast<io_uring_sqe*>(MAP_FAILED);
  size_t sq_size_ = 0, cq_size_ = 0, sqes_size_ = 0;
};

// Opens and connects submitted through io_uring never enter a syscall hook.
TEST_F(BpfProbeTest, IoUringOpenAndConnect) {
  IoUring ring;
  if (!ring.ok()) GTEST_SKIP() << "io_uring not available: " << std::strerror(errno);
  io_uring_sqe open_sqe{};
  open_sqe.opcode = IORING_OP_OPENAT;
  open_sqe.fd = AT_FDCWD;
  open_sqe.addr = reinterpret_cast<uint64_t>(secret_->c_str());
  open_sqe.open_flags = O_RDWR;
  const int32_t fd = ring.Run(open_sqe);
  ASSERT_GE(fd, 0) << std::strerror(-fd);
  close(fd);
  auto e = WaitFor(*probe_, [&](const Event& e) { return IsFile(e, getpid(), *secret_, O_RDWR); });
  ASSERT_TRUE(e) << "io_uring open of a sensitive file not seen";
  EXPECT_EQ(e->As<FileOpenEvent>()->result, 0);
  EXPECT_EQ(e->As<FileOpenEvent>()->access, FileAccess::kReadWrite);

  sockaddr_in addr{};
  const int listener = LoopbackListener(&addr);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  const uint16_t server_port = ntohs(addr.sin_port);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  io_uring_sqe connect_sqe{};
  connect_sqe.opcode = IORING_OP_CONNECT;
  connect_sqe.fd = client;
  connect_sqe.addr = reinterpret_cast<uint64_t>(&addr);
  connect_sqe.off = sizeof(addr);
  ASSERT_EQ(ring.Run(connect_sqe), 0);
  close(client);
  close(listener);
  auto out = WaitFor(*probe_, [&](const Event& e) {
    const NetConnectEvent* n = e.As<NetConnectEvent>();
    return n && n->direction == NetDirection::kOutbound && n->remote_port == server_port;
  });
  ASSERT_TRUE(out) << "io_uring connect not seen";
  EXPECT_EQ(out->process.tgid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(out->As<NetConnectEvent>()->remote_addr, "127.0.0.1");
}

TEST_F(BpfProbeTest, ExecWithArguments) {
  pid_t child = RunChild([] {
    execl("/bin/true", "/bin/true", "--tripline", "arg two", static_cast<char*>(nullptr));
    return 127;
  });
  auto e = WaitFor(*probe_, [&](const Event& e) {
    return e.As<ExecEvent>() != nullptr && e.process.tgid == static_cast<uint32_t>(child);
  });
  ASSERT_TRUE(e) << "no exec event";
  const ExecEvent* x = e->As<ExecEvent>();
  EXPECT_EQ(x->filename, "/bin/true");
  EXPECT_EQ(x->argv, (std::vector<std::string>{"/bin/true", "--tripline", "arg two"}));
  EXPECT_FALSE(x->argv_truncated);
  EXPECT_EQ(e->process.ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(e->process.uid, 0u);
  EXPECT_EQ(e->process.comm, "true");
  EXPECT_EQ(e->process.exe, "/bin/true");
  EXPECT_FALSE(x->parent_comm.empty());
}

TEST_F(BpfProbeTest, ExecArgumentsAreCapped) {
  pid_t child = RunChild([] {
    execl("/bin/true", "true", "1", "2", "3", "4", "5", "6", "7", "8", "9",
          static_cast<char*>(nullptr));
    return 127;
  });
  auto e = WaitFor(*probe_, [&](const Event& e) {
    return e.As<ExecEvent>() != nullptr && e.process.tgid == static_cast<uint32_t>(child);
  });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->As<ExecEvent>()->argv.size(), 8u);  // exec_max_args
  EXPECT_TRUE(e->As<ExecEvent>()->argv_truncated);
}

TEST_F(BpfProbeTest, TcpConnectAndAccept) {
  sockaddr_in addr{};
  const int listener = LoopbackListener(&addr);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  const uint16_t server_port = ntohs(addr.sin_port);

  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(client, reinterpret_cast<sockaddr*>(&local), &len);
  const uint16_t client_port = ntohs(local.sin_port);
  int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  close(accepted);
  close(client);
  close(listener);

  auto out = WaitFor(*probe_, [&](const Event& e) {
    const NetConnectEvent* n = e.As<NetConnectEvent>();
    return n && n->direction == NetDirection::kOutbound && n->remote_port == server_port &&
           e.process.tgid == static_cast<uint32_t>(getpid());
  });
  ASSERT_TRUE(out) << "no outbound event";
  ExpectSelf(*out);
  const NetConnectEvent* n = out->As<NetConnectEvent>();
  EXPECT_EQ(n->local_addr, "127.0.0.1");
  EXPECT_EQ(n->local_port, client_port);
  EXPECT_EQ(n->remote_addr, "127.0.0.1");
  EXPECT_EQ(n->family, static_cast<uint32_t>(AF_INET));
  EXPECT_EQ(n->protocol, 6u);

  auto in = WaitFor(*probe_, [&](const Event& e) {
    const NetConnectEvent* n = e.As<NetConnectEvent>();
    return n && n->direction == NetDirection::kAccepted && n->remote_port == client_port;
  });
  ASSERT_TRUE(in) << "no accept event (listener tgid configured)";
  EXPECT_EQ(in->As<NetConnectEvent>()->local_port, server_port);
  EXPECT_EQ(in->As<NetConnectEvent>()->local_addr, "127.0.0.1");
  EXPECT_EQ(in->As<NetConnectEvent>()->remote_addr, "127.0.0.1");
}

TEST_F(BpfProbeTest, UtmpWriteToBtmp) {
  tl_utmp ut{};
  ut.ut_type = 6;
  ut.ut_pid = getpid();
  std::memcpy(ut.ut_line, "ssh:notty", 9);
  std::memcpy(ut.ut_user, "mallory", 7);
  std::memcpy(ut.ut_host, "198.18.0.66", 11);
  inet_pton(AF_INET, "198.18.0.66", ut.ut_addr_v6);
  int fd = open(btmp_->c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, &ut, sizeof(ut)), static_cast<ssize_t>(sizeof(ut)));
  close(fd);
  auto e = WaitFor(*probe_, [](const Event& e) {
    const LoginEvent* l = e.As<LoginEvent>();
    return l && l->source == LoginSource::kUtmp &&
           e.process.tgid == static_cast<uint32_t>(getpid());
  });
  ASSERT_TRUE(e) << "no utmp event";
  const LoginEvent* l = e->As<LoginEvent>();
  EXPECT_EQ(l->user, "mallory");
  EXPECT_EQ(l->remote_addr, "198.18.0.66");
  EXPECT_EQ(l->tty, "ssh:notty");
  EXPECT_EQ(l->stage, LoginStage::kFailedRecord);
  EXPECT_EQ(l->outcome, Outcome::kFailure);
  EXPECT_EQ(l->auth_pid, static_cast<uint32_t>(getpid()));
}

TEST_F(BpfProbeTest, UtsScopeFilter) {
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  if (child == 0) {
    char c = 0;
    if (unshare(CLONE_NEWUTS) != 0) _exit(10);
    if (write(ready[1], "r", 1) != 1) _exit(11);
    if (read(go[0], &c, 1) != 1) _exit(12);
    int fd = open(secret_->c_str(), O_RDONLY);
    _exit(fd >= 0 ? 0 : 13);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  struct stat sb {};
  ASSERT_EQ(stat(("/proc/" + std::to_string(child) + "/ns/uts").c_str(), &sb), 0);
  const uint32_t child_uts = static_cast<uint32_t>(sb.st_ino);

  ProbeOptions options;
  options.target_uts_inum = child_uts;
  options.sensitive_paths = {{SensitivePath::Match::kExact, *secret_}};
  options.btmp_path = options.wtmp_path = "";
  auto scoped = BpfProbe::Open(options);
  ASSERT_TRUE(scoped.ok()) << scoped.status().ToString();

  int fd = open(secret_->c_str(), O_RDONLY);  // the host's namespace: must not be seen
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  bool saw_parent = false;
  auto e = WaitFor(**scoped, [&](const Event& e) {
    if (e.process.tgid == static_cast<uint32_t>(getpid())) saw_parent = true;
    return e.process.tgid == static_cast<uint32_t>(child) && e.As<FileOpenEvent>() != nullptr;
  });
  for (const Event& rest : Backlog()[scoped->get()]) {
    if (rest.process.tgid == static_cast<uint32_t>(getpid())) saw_parent = true;
  }
  Backlog().erase(scoped->get());
  ASSERT_TRUE(e) << "child in the target UTS namespace not seen";
  EXPECT_EQ(e->process.uts_inum, child_uts);
  EXPECT_FALSE(saw_parent) << "event from outside the target UTS namespace";
  for (int f : {ready[0], ready[1], go[0], go[1]}) close(f);
}

TEST_F(BpfProbeTest, PamAuthenticationFailure) {
  if (probe_->libpam_path().empty()) GTEST_SKIP() << "login-pam disabled on this host";
  const std::string service = "tripline-test-" + std::to_string(getpid());
  const std::string conf = "/etc/pam.d/" + service;
  {
    std::ofstream out(conf);
    out << "auth required pam_unix.so nodelay\naccount required pam_unix.so\n";
  }
  int status = 0;
  pid_t child = RunChild(
      [&] {
        execl(TL_PAM_HELPER_PATH, TL_PAM_HELPER_PATH, service.c_str(), "nobody", "198.18.0.66",
              "wrong-password", static_cast<char*>(nullptr));
        return 127;
      },
      &status);
  fs::remove(conf);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  const int rc = WEXITSTATUS(status);
  ASSERT_LT(rc, 100) << "helper failed before pam_authenticate: " << rc;
  ASSERT_NE(rc, 0) << "wrong password accepted?";

  auto e = WaitFor(*probe_, [&](const Event& e) {
    const LoginEvent* l = e.As<LoginEvent>();
    return l && l->source == LoginSource::kPam && e.process.tgid == static_cast<uint32_t>(child);
  });
  ASSERT_TRUE(e) << "no PAM login event";
  const LoginEvent* l = e->As<LoginEvent>();
  EXPECT_EQ(l->service, service);
  EXPECT_EQ(l->user, "nobody");
  EXPECT_EQ(l->remote_addr, "198.18.0.66");
  EXPECT_EQ(l->stage, LoginStage::kAuthenticate);
  EXPECT_EQ(l->outcome, Outcome::kFailure);
  EXPECT_EQ(l->pam_code, rc);
  EXPECT_EQ(l->reason, PamReasonText(rc));
  EXPECT_EQ(l->auth_pid, static_cast<uint32_t>(child));
  EXPECT_EQ(e->process.ppid, static_cast<uint32_t>(getpid()));
}

// The drop counters are the kernel's, and exact. A probe of its own with the smallest bulk
// ring (one page) and one rule starts with no file drop and no helper or state error; a
// storm of opens of the rule's file, with nobody polling, overflows the ring; then every
// open is either received or counted as a file_open drop: produced = received + dropped.
// (Other processes' execs share the ring and may be dropped too; they are counted under
// their own type.)
TEST_F(BpfProbeTest, CountersStartClean) {
  const std::string target = (*dir_ / "storm-target.txt").string();
  std::ofstream(target) << "storm\n";
  ProbeOptions options;
  options.sensitive_paths = {{SensitivePath::Match::kExact, target}};
  options.btmp_path = *btmp_;
  options.wtmp_path = "";
  options.ringbuf_bytes = 4096;
  const std::string variant = Variant();
  options.avoid_kfuncs = variant.find("probe-reads") != std::string::npos;
  options.avoid_trampolines = variant.rfind("fallback", 0) == 0;
  auto opened = BpfProbe::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<BpfProbe> probe = std::move(opened).value();

  const ProbeCounters start = probe->ReadCounters();
  ASSERT_EQ(start.drops_by_type.size(), static_cast<size_t>(TL_REC_TYPE_SLOTS));
  EXPECT_EQ(start.drops_by_type[TL_REC_FILE_OPEN], 0u);
  EXPECT_EQ(start.helper_errors, 0u);
  EXPECT_EQ(start.state_errors, 0u);

  constexpr uint64_t kOpens = 20000;
  for (uint64_t i = 0; i < kOpens; ++i) {
    const int fd = open(target.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  uint64_t received = 0;
  while (true) {
    auto n = probe->Poll(0, [&](std::span<const uint8_t> bytes) {
      auto e = DecodeRecord(bytes, probe->BootToWallOffsetNs(), probe->sensitive_paths());
      ASSERT_TRUE(e.ok()) << e.status().ToString();
      if (IsFile(*e, getpid(), target, O_RDONLY)) ++received;
    });
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
  }
  const ProbeCounters end = probe->ReadCounters();
  const uint64_t dropped = end.drops_by_type[TL_REC_FILE_OPEN];
  EXPECT_GT(dropped, 0u) << "a one-page ring took " << kOpens << " opens";
  EXPECT_GT(received, 0u);
  EXPECT_EQ(received + dropped, kOpens)
      << "received " << received << " + counted drops " << dropped;
  uint64_t sum = 0;
  for (uint64_t d : end.drops_by_type) sum += d;
  EXPECT_EQ(end.ringbuf_drops, sum);
  EXPECT_EQ(end.state_errors, 0u);
}

}  // namespace
}  // namespace tripline::sensor
