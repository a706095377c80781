// Child processes for the process-level tests: the real tripline-aggregator and
// triplinectl binaries, started with fork/exec, stdout on a pipe, stderr to a file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace tripline::testing {

std::string BinPath(const std::string& name);  // TRIPLINE_BIN_DIR/name

class Child {
 public:
  // Starts argv[0] with argv; stderr goes to `stderr_path`.
  Child(const std::vector<std::string>& argv, const std::string& stderr_path);
  ~Child();  // SIGKILLs and reaps a child still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // The next line of stdout, without the newline; nullopt on EOF or after timeout_ms.
  std::optional<std::string> ReadLine(int timeout_ms);
  // Sends `sig` to the child.
  void Signal(int sig);
  // Waits for the exit; the exit code, 128+signal when killed, nullopt on timeout.
  std::optional<int> Wait(int timeout_ms);

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs a command to completion (at most timeout_ms) and captures both streams.
RunResult RunCommand(const std::vector<std::string>& argv, int timeout_ms = 30000);
// triplinectl --aggregator ADDRESS ARGS..., run to completion.
RunResult RunCtl(const std::string& address, const std::vector<std::string>& args);

std::string ReadWholeFile(const std::string& path);

}  // namespace tripline::testing
