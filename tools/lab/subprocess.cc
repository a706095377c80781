#include "tools/lab/subprocess.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "common/log.h"

extern char** environ;

namespace tripline::lab {
namespace {

using std::chrono::milliseconds;

// Captured output beyond this is dropped from the front: a chatty daemon whose output
// nobody reads must not grow the test process without bound.
constexpr size_t kMaxBufferedBytes = 16 << 20;
// How many consumed lines are kept to explain a failed ReadLineUntil().
constexpr size_t kRecentLines = 12;

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

int MillisUntil(Deadline deadline) {
  auto left = std::chrono::ceil<milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// execvpe(3) is not async-signal-safe, so the PATH search happens before fork().
Result<std::string> ResolveExecutable(const std::string& name, const std::string& path_var) {
  if (name.empty()) return Status::InvalidArgument("empty argv[0]");
  if (name.find('/') != std::string::npos) {
    if (!IsExecutable(name)) return Status::NotFound(name + " is not an executable file");
    return name;
  }
  size_t begin = 0;
  while (begin <= path_var.size()) {
    size_t end = path_var.find(':', begin);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(begin, end - begin);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (IsExecutable(candidate)) return candidate;
    begin = end + 1;
  }
  return Status::NotFound(name + " not found in PATH (" + path_var + ")");
}

std::vector<std::string> MergeEnvironment(
    const std::vector<std::pair<std::string, std::string>>& additions) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view key = entry.substr(0, entry.find('='));
    bool replaced = std::any_of(additions.begin(), additions.end(),
                                [&](const auto& kv) { return kv.first == key; });
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [key, value] : additions) env.push_back(key + "=" + value);
  return env;
}

std::string LookupEnv(const std::vector<std::string>& env, std::string_view key) {
  for (const std::string& entry : env) {
    if (entry.size() > key.size() && entry.compare(0, key.size(), key) == 0 &&
        entry[key.size()] == '=') {
      return entry.substr(key.size() + 1);
    }
  }
  return "";
}

Result<int> OpenOrError(const std::string& path, int flags, mode_t mode = 0) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  return fd;
}

// The child reports a failure before exec through a close-on-exec pipe; end of file on
// that pipe means exec succeeded.
struct ChildError {
  int stage;
  int err;
};
enum ChildStage : int { kStageNetns = 1, kStageUtsns, kStageChdir, kStageDup, kStageExec };

const char* StageName(int stage) {
  switch (stage) {
    case kStageNetns: return "setns(network namespace)";
    case kStageUtsns: return "setns(UTS namespace)";
    case kStageChdir: return "chdir";
    case kStageDup: return "dup2";
    case kStageExec: return "execve";
  }
  return "child setup";
}

[[noreturn]] void ChildFail(int error_fd, int stage) {
  ChildError e{stage, errno};
  ssize_t ignored = write(error_fd, &e, sizeof(e));
  (void)ignored;
  _exit(127);
}

// dup2() onto itself keeps FD_CLOEXEC set, which would close the stream at exec.
bool MoveFdTo(int fd, int target) {
  if (fd == target) return fcntl(fd, F_SETFD, 0) == 0;
  return dup2(fd, target) == target;
}

std::string Tail(const std::deque<std::string>& recent, const std::string& pending) {
  std::string out;
  for (const std::string& line : recent) out += "\n  | " + line;
  if (!pending.empty()) out += "\n  | " + pending.substr(0, 400);
  return out.empty() ? " (no output)" : out;
}

}  // namespace

Deadline DeadlineIn(milliseconds timeout) { return std::chrono::steady_clock::now() + timeout; }

LineMatcher ContainsText(std::string text) {
  return [text = std::move(text)](std::string_view line) {
    return line.find(text) != std::string_view::npos;
  };
}

struct Subprocess::State {
  struct Stream {
    bool captured = false;
    int pipe_fd = -1;     // read end; owned by the reader thread while it runs
    int log_fd = -1;      // tee target when both captured and logged
    std::string pending;  // captured and not yet consumed
    std::deque<std::string> recent;
    bool eof = true;
  };

  pid_t pid = -1;
  int pidfd = -1;
  std::optional<int> exit_code;
  std::string name;  // argv[0], for messages

  int wake_fd = -1;
  std::thread reader;
  std::mutex mu;
  std::condition_variable cv;
  std::array<Stream, 2> streams;  // guarded by mu, except pipe_fd/log_fd (reader thread)

  ~State() {
    if (reader.joinable()) {
      uint64_t one = 1;
      ssize_t ignored = write(wake_fd, &one, sizeof(one));
      (void)ignored;
      reader.join();
    }
    for (Stream& s : streams) {
      CloseFd(s.pipe_fd);
      CloseFd(s.log_fd);
    }
    CloseFd(wake_fd);
    CloseFd(pidfd);
  }

  // Drains both pipes until end of file or until woken to stop.
  void ReadLoop() {
    std::array<char, 65536> buf;
    while (true) {
      std::array<pollfd, 3> fds{};
      nfds_t n = 0;
      std::array<int, 3> which{};
      for (int i = 0; i < 2; ++i) {
        if (streams[i].pipe_fd >= 0) {
          fds[n] = {streams[i].pipe_fd, POLLIN, 0};
          which[n++] = i;
        }
      }
      if (n == 0) return;
      fds[n] = {wake_fd, POLLIN, 0};
      which[n++] = -1;
      if (poll(fds.data(), n, -1) < 0) {
        if (errno == EINTR) continue;
        TL_LOG(ERROR) << "subprocess " << name << ": poll: " << std::strerror(errno);
        return;
      }
      for (nfds_t k = 0; k < n; ++k) {
        if (fds[k].revents == 0) continue;
        if (which[k] < 0) return;  // asked to stop
        Stream& s = streams[which[k]];
        ssize_t got = read(s.pipe_fd, buf.data(), buf.size());
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) {
          CloseFd(s.pipe_fd);
          CloseFd(s.log_fd);
          std::lock_guard<std::mutex> lock(mu);
          s.eof = true;
          cv.notify_all();
          continue;
        }
        if (s.log_fd >= 0) {
          // Best effort: a full disk must not stop the draining that keeps the child alive.
          ssize_t ignored = write(s.log_fd, buf.data(), static_cast<size_t>(got));
          (void)ignored;
        }
        std::lock_guard<std::mutex> lock(mu);
        s.pending.append(buf.data(), static_cast<size_t>(got));
        if (s.pending.size() > kMaxBufferedBytes) {
          s.pending.erase(0, s.pending.size() - kMaxBufferedBytes / 2);
        }
        cv.notify_all();
      }
    }
  }
};

Subprocess::Subprocess(std::unique_ptr<State> state) : state_(std::move(state)) {}
Subprocess::Subprocess(Subprocess&&) noexcept = default;
Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (state_ && !state_->exit_code.has_value()) (void)Terminate();
    state_ = std::move(other.state_);
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (!state_ || state_->exit_code.has_value()) return;
  Result<int> r = Terminate();
  if (!r.ok()) {
    TL_LOG(ERROR) << "subprocess " << state_->name << ": " << r.status().ToString();
  }
}

pid_t Subprocess::pid() const { return state_->pid; }

std::optional<int> Subprocess::exit_code() const { return state_->exit_code; }

bool Subprocess::running() {
  if (state_->exit_code.has_value()) return false;
  return !Wait(milliseconds(0)).ok();
}

Result<Subprocess> Subprocess::Spawn(SpawnOptions options) {
  if (options.argv.empty()) return Status::InvalidArgument("Spawn: empty argv");
  std::vector<std::string> env = MergeEnvironment(options.env);
  TL_ASSIGN_OR_RETURN(std::string path, ResolveExecutable(options.argv[0], LookupEnv(env, "PATH")));

  auto state = std::make_unique<State>();
  state->name = options.argv[0];

  // Every descriptor the child needs is opened here; `owned` closes them on every path.
  std::vector<int> owned;
  struct Closer {
    std::vector<int>& fds;
    ~Closer() {
      for (int fd : fds) close(fd);
    }
  } closer{owned};
  auto keep = [&owned](int fd) {
    owned.push_back(fd);
    return fd;
  };

  int netns_fd = -1;
  int utsns_fd = -1;
  if (!options.netns_path.empty()) {
    TL_ASSIGN_OR_RETURN(int fd, OpenOrError(options.netns_path, O_RDONLY));
    netns_fd = keep(fd);
  }
  if (!options.utsns_path.empty()) {
    TL_ASSIGN_OR_RETURN(int fd, OpenOrError(options.utsns_path, O_RDONLY));
    utsns_fd = keep(fd);
  }

  int stdin_fd;
  if (options.stdin_data.has_value()) {
    // A memfd rather than a pipe: the whole input is written before fork, whatever its size.
    int fd = memfd_create("tripline-lab-stdin", MFD_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "memfd_create");
    keep(fd);
    const std::string& data = *options.stdin_data;
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = write(fd, data.data() + off, data.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Status::FromErrno(errno, "write stdin memfd");
      off += static_cast<size_t>(w);
    }
    if (lseek(fd, 0, SEEK_SET) != 0) return Status::FromErrno(errno, "lseek stdin memfd");
    stdin_fd = fd;
  } else {
    TL_ASSIGN_OR_RETURN(int fd, OpenOrError("/dev/null", O_RDONLY));
    stdin_fd = keep(fd);
  }

  std::array<int, 2> child_out{-1, -1};
  const std::array<const OutputOptions*, 2> outs{&options.stdout_options, &options.stderr_options};
  for (int i = 0; i < 2; ++i) {
    const OutputOptions& o = *outs[i];
    State::Stream& s = state->streams[i];
    if (o.capture) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
      s.pipe_fd = p[0];
      s.captured = true;
      s.eof = false;
      child_out[i] = keep(p[1]);
      if (!o.log_path.empty()) {
        TL_ASSIGN_OR_RETURN(s.log_fd, OpenOrError(o.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644));
      }
    } else if (!o.log_path.empty()) {
      TL_ASSIGN_OR_RETURN(int fd, OpenOrError(o.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644));
      child_out[i] = keep(fd);
    } else {
      TL_ASSIGN_OR_RETURN(int fd, OpenOrError("/dev/null", O_WRONLY));
      child_out[i] = keep(fd);
    }
  }

  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  keep(error_pipe[0]);
  keep(error_pipe[1]);

  std::vector<char*> argv_ptrs;
  for (std::string& a : options.argv) argv_ptrs.push_back(a.data());
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (std::string& e : env) env_ptrs.push_back(e.data());
  env_ptrs.push_back(nullptr);
  const char* working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
  const bool pdeathsig = options.kill_on_parent_death;
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    // Child: async-signal-safe calls only, the parent may have other threads.
    if (pdeathsig) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) ChildFail(error_pipe[1], kStageNetns);
    if (utsns_fd >= 0 && setns(utsns_fd, CLONE_NEWUTS) != 0) ChildFail(error_pipe[1], kStageUtsns);
    if (working_dir != nullptr && chdir(working_dir) != 0) ChildFail(error_pipe[1], kStageChdir);
    if (!MoveFdTo(stdin_fd, 0) || !MoveFdTo(child_out[0], 1) || !MoveFdTo(child_out[1], 2)) {
      ChildFail(error_pipe[1], kStageDup);
    }
    // Descriptors the parent opened without O_CLOEXEC (other libraries) must not leak into
    // daemons; marking them close-on-exec keeps the error pipe usable until execve.
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    execve(path.c_str(), argv_ptrs.data(), env_ptrs.data());
    ChildFail(error_pipe[1], kStageExec);
  }

  state->pid = pid;
  // The pidfd pins the pid: until we reap the child, no other process can get its number.
  state->pidfd = PidfdOpen(pid);
  close(error_pipe[1]);
  owned.erase(std::find(owned.begin(), owned.end(), error_pipe[1]));
  ChildError child_error{};
  ssize_t got;
  do {
    got = read(error_pipe[0], &child_error, sizeof(child_error));
  } while (got < 0 && errno == EINTR);
  if (got > 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    state->exit_code = DecodeWaitStatus(status);
    return Status::FromErrno(child_error.err,
                             std::string(StageName(child_error.stage)) + " for " + path);
  }
  if (state->pidfd < 0) {
    // Only on kernels without pidfd (< 5.3): Wait() then falls back to waitpid polling.
    TL_LOG(WARNING) << "pidfd_open: " << std::strerror(errno);
  }

  int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    Status st = Status::FromErrno(errno, "eventfd");
    Subprocess doomed(std::move(state));  // terminates and reaps the child
    return st;
  }
  state->wake_fd = wake;
  if (state->streams[0].captured || state->streams[1].captured) {
    State* raw = state.get();
    state->reader = std::thread([raw] { raw->ReadLoop(); });
  }
  return Subprocess(std::move(state));
}

Result<int> Subprocess::Wait(milliseconds timeout) {
  State& s = *state_;
  if (s.exit_code.has_value()) return *s.exit_code;
  const Deadline deadline = DeadlineIn(timeout);
  while (true) {
    int status = 0;
    pid_t r = waitpid(s.pid, &status, WNOHANG);
    if (r < 0 && errno != EINTR) return Status::FromErrno(errno, "waitpid");
    if (r == s.pid) {
      s.exit_code = DecodeWaitStatus(status);
      CloseFd(s.pidfd);
      return *s.exit_code;
    }
    const int wait_ms = MillisUntil(deadline);
    if (r == 0 && wait_ms == 0) {
      return Status::DeadlineExceeded(s.name + " (pid " + std::to_string(s.pid) +
                                      ") still running");
    }
    if (s.pidfd >= 0) {
      // The pidfd turns readable when the child exits: no polling interval.
      pollfd p{s.pidfd, POLLIN, 0};
      if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) return Status::FromErrno(errno, "poll");
    } else {
      std::this_thread::sleep_for(milliseconds(std::min(wait_ms, 10)));
    }
  }
}

Result<int> Subprocess::Terminate(milliseconds grace) {
  State& s = *state_;
  if (s.exit_code.has_value()) return *s.exit_code;
  // Safe by pid: the child is not reaped yet, so the number still names it.
  if (kill(s.pid, SIGTERM) != 0 && errno != ESRCH) return Status::FromErrno(errno, "kill");
  Result<int> r = Wait(grace);
  if (r.ok()) return r;
  if (kill(s.pid, SIGKILL) != 0 && errno != ESRCH) return Status::FromErrno(errno, "kill");
  return Wait(std::chrono::seconds(30));
}

Result<std::string> Subprocess::ReadLineUntil(OutputStream stream, const LineMatcher& match,
                                              Deadline deadline) {
  State& s = *state_;
  State::Stream& out = s.streams[stream == OutputStream::kStdout ? 0 : 1];
  const char* stream_name = stream == OutputStream::kStdout ? "stdout" : "stderr";
  if (!out.captured) {
    return Status::InvalidArgument(std::string(stream_name) + " of " + s.name + " is not captured");
  }
  std::unique_lock<std::mutex> lock(s.mu);
  while (true) {
    size_t nl;
    while ((nl = out.pending.find('\n')) != std::string::npos ||
           (out.eof && !out.pending.empty())) {
      std::string line = out.pending.substr(0, nl);
      out.pending.erase(0, nl == std::string::npos ? std::string::npos : nl + 1);
      if (match(line)) return line;
      out.recent.push_back(std::move(line));
      if (out.recent.size() > kRecentLines) out.recent.pop_front();
    }
    if (out.eof) {
      return Status::Aborted(
          std::string(stream_name) + " of " + s.name +
          " ended without the expected line; last lines:" + Tail(out.recent, out.pending));
    }
    if (s.cv.wait_until(lock, deadline) == std::cv_status::timeout &&
        out.pending.find('\n') == std::string::npos && !out.eof) {
      return Status::DeadlineExceeded(std::string("no expected line on ") + stream_name + " of " +
                                      s.name +
                                      " in time; last lines:" + Tail(out.recent, out.pending));
    }
  }
}

Result<RunResult> Subprocess::CollectOutput(Deadline deadline) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  const bool done =
      s.cv.wait_until(lock, deadline, [&s] { return s.streams[0].eof && s.streams[1].eof; });
  if (!done) {
    return Status::DeadlineExceeded("output of " + s.name + " still open (held by a descendant?)");
  }
  RunResult r;
  r.exit_code = s.exit_code.value_or(-1);
  r.out = std::move(s.streams[0].pending);
  r.err = std::move(s.streams[1].pending);
  s.streams[0].pending.clear();
  s.streams[1].pending.clear();
  return r;
}

Result<RunResult> Subprocess::Finish(Deadline deadline) {
  Result<int> code = Wait(std::chrono::ceil<milliseconds>(deadline - DeadlineIn({})));
  if (!code.ok()) {
    (void)Terminate(milliseconds(500));
    Result<RunResult> partial = CollectOutput(DeadlineIn(milliseconds(500)));
    std::string detail = code.status().message();
    if (partial.ok()) {
      detail +=
          "; stdout: " + partial->out.substr(0, 2000) + "; stderr: " + partial->err.substr(0, 2000);
    }
    return Status::DeadlineExceeded(detail);
  }
  // The child has exited; its output ends as soon as the last inherited copy is closed.
  TL_ASSIGN_OR_RETURN(RunResult result,
                      CollectOutput(std::max(deadline, DeadlineIn(std::chrono::seconds(1)))));
  result.exit_code = *code;
  return result;
}

Result<RunResult> Subprocess::Run(SpawnOptions options, milliseconds timeout) {
  options.stdout_options.capture = true;
  options.stderr_options.capture = true;
  const Deadline deadline = DeadlineIn(timeout);
  TL_ASSIGN_OR_RETURN(Subprocess child, Spawn(std::move(options)));
  return child.Finish(deadline);
}

Result<RunResult> Subprocess::Run(std::vector<std::string> argv, milliseconds timeout) {
  SpawnOptions options;
  options.argv = std::move(argv);
  return Run(std::move(options), timeout);
}

}  // namespace tripline::lab
