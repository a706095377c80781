// Subprocess: one child process started from an argv (never through a shell), optionally
// inside existing network and UTS namespaces, with its output captured line by line.
//
//   SpawnOptions opts;
//   opts.argv = {"tripline-sensor", "--scope", "uts"};
//   opts.utsns_path = host.uts_ns_path();
//   TL_ASSIGN_OR_RETURN(Subprocess sensor, Subprocess::Spawn(std::move(opts)));
//   TL_RETURN_IF_ERROR(sensor.ReadLineUntil(OutputStream::kStderr, ContainsText("ready"),
//                                           DeadlineIn(std::chrono::seconds(10))).status());
//
// Ownership: a Subprocess owns its child. The destructor terminates a child that is still
// running (SIGTERM, then SIGKILL after a grace period) and reaps it, so a test that fails
// half-way leaves no process behind. Signals are sent by pid only; the child is held open
// by a pidfd until it is reaped, so the pid cannot be reused by an unrelated process.
//
// Threading: a Subprocess is used from one thread at a time. Captured output is drained by
// an internal reader thread, so a child never blocks on a full pipe, even when nobody reads
// its output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tripline::lab {

using Deadline = std::chrono::steady_clock::time_point;

// The deadline `timeout` from now.
Deadline DeadlineIn(std::chrono::milliseconds timeout);

// Where one output stream of the child goes.
struct OutputOptions {
  // Keep the output in memory so ReadLineUntil() and Run() can see it.
  bool capture = true;
  // When not empty, also append everything to this file (created with mode 0644). With
  // `capture` off the child writes to the file directly; neither means /dev/null.
  std::string log_path;
};

struct SpawnOptions {
  // argv[0] is looked up in PATH when it holds no '/'.
  std::vector<std::string> argv;
  // Added to (or replacing entries of) the parent's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Fed to the child's stdin; nullopt means /dev/null.
  std::optional<std::string> stdin_data;
  OutputOptions stdout_options;
  OutputOptions stderr_options;
  // Namespace files (/run/netns/<name>, a bind-mounted /proc/<pid>/ns/uts) the child joins
  // with setns(2) before exec. Empty means the parent's namespace.
  std::string netns_path;
  std::string utsns_path;
  // Working directory of the child; empty means the parent's.
  std::string working_dir;
  // PR_SET_PDEATHSIG(SIGKILL): the child dies if the spawning *thread* exits, so a crashed
  // test does not leave daemons behind. Turn it off when spawning from a short-lived thread.
  bool kill_on_parent_death = true;
};

enum class OutputStream { kStdout, kStderr };

// What a finished command produced. exit_code follows the shell convention: the exit
// status, or 128 + signal number when the child was killed by a signal.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

using LineMatcher = std::function<bool(std::string_view line)>;

// A matcher for lines that contain `text`.
LineMatcher ContainsText(std::string text);

class Subprocess {
 public:
  // Starts the child. Fails (and leaves nothing running) when the executable is missing,
  // a namespace cannot be joined or an output file cannot be opened; the error says which.
  static Result<Subprocess> Spawn(SpawnOptions options);

  // Spawns, waits up to `timeout` and collects both outputs. A child still running at the
  // deadline is terminated and the result is DeadlineExceeded, with the output so far in
  // the message.
  static Result<RunResult> Run(SpawnOptions options, std::chrono::milliseconds timeout);
  static Result<RunResult> Run(std::vector<std::string> argv, std::chrono::milliseconds timeout);

  Subprocess(Subprocess&&) noexcept;
  Subprocess& operator=(Subprocess&&) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Terminates the child if it is still running.
  ~Subprocess();

  pid_t pid() const;
  // True until the child has exited and been reaped.
  bool running();
  // The exit code (shell convention, see RunResult) once the child has been reaped.
  std::optional<int> exit_code() const;

  // Waits up to `timeout` for the child to exit, reaps it and returns its exit code.
  // DeadlineExceeded when it is still running; the child is left alone then.
  Result<int> Wait(std::chrono::milliseconds timeout);

  // SIGTERM, then SIGKILL when the child has not exited after `grace`; reaps it. Returns the
  // exit code. A child that has already exited is just reaped.
  Result<int> Terminate(std::chrono::milliseconds grace = std::chrono::seconds(3));

  // Returns the next line (without '\n') of a captured stream for which `match` is true;
  // earlier lines are consumed and dropped. DeadlineExceeded when no such line arrives by
  // `deadline`, Aborted when the stream ends first. Both errors quote the last lines seen.
  Result<std::string> ReadLineUntil(OutputStream stream, const LineMatcher& match,
                                    Deadline deadline);

  // Waits until both captured streams reach end of file (the child and every process that
  // inherited them closed them), then returns everything not yet consumed by ReadLineUntil.
  Result<RunResult> CollectOutput(Deadline deadline);

  // Wait() plus CollectOutput(): what Run() does after Spawn(). A child still running at
  // `deadline` is terminated and the result is DeadlineExceeded with its output so far.
  Result<RunResult> Finish(Deadline deadline);

 private:
  struct State;
  explicit Subprocess(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace tripline::lab
