#include "tools/lab/subprocess.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace tripline::lab {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

SpawnOptions Command(std::vector<std::string> argv) {
  SpawnOptions options;
  options.argv = std::move(argv);
  return options;
}

bool ProcessExists(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

TEST(SubprocessTest, RunCollectsOutputAndExitCode) {
  Result<RunResult> r =
      Subprocess::Run({"sh", "-c", "echo out; echo err >&2; exit 3"}, seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(SubprocessTest, ArgumentsAreNotInterpretedByAShell) {
  Result<RunResult> r = Subprocess::Run({"printf", "%s|", "a b", "$HOME", "'q'"}, seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->out, "a b|$HOME|'q'|");
}

TEST(SubprocessTest, StdinEnvironmentAndWorkingDirectory) {
  SpawnOptions options;
  options.argv = {"sh", "-c", "cat; echo \"$TL_LAB_TEST\"; pwd"};
  options.stdin_data = std::string(200000, 'x');  // larger than a pipe buffer
  options.env = {{"TL_LAB_TEST", "value 1"}};
  options.working_dir = "/";
  Result<RunResult> r = Subprocess::Run(std::move(options), seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->out, std::string(200000, 'x') + "value 1\n/\n");
}

TEST(SubprocessTest, StdinIsDevNullByDefault) {
  Result<RunResult> r = Subprocess::Run({"cat"}, seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "");
}

TEST(SubprocessTest, MissingExecutableIsAnError) {
  Result<Subprocess> p = Subprocess::Spawn(Command({"tl-no-such-program-xyz"}));
  EXPECT_TRUE(p.status().IsNotFound()) << p.status().ToString();
  Result<Subprocess> q = Subprocess::Spawn(Command({"/nonexistent/tl-prog"}));
  EXPECT_TRUE(q.status().IsNotFound()) << q.status().ToString();
}

TEST(SubprocessTest, BadNamespaceFileIsAnError) {
  SpawnOptions options;
  options.argv = {"true"};
  options.netns_path = "/proc/self/status";  // opens, but is no namespace
  Result<Subprocess> p = Subprocess::Spawn(std::move(options));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("setns"), std::string::npos) << p.status().ToString();
}

TEST(SubprocessTest, ExitBySignalFollowsShellConvention) {
  Result<RunResult> r = Subprocess::Run({"sh", "-c", "kill -9 $$"}, seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 128 + SIGKILL);
}

TEST(SubprocessTest, ReadLineUntilWaitsForTheMatchingLine) {
  SpawnOptions options;
  options.argv = {"sh", "-c",
                  "echo starting; echo warming >&2; echo 'listening on 1234'; "
                  "exec sleep 30"};
  Result<Subprocess> p = Subprocess::Spawn(std::move(options));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Result<std::string> line =
      p->ReadLineUntil(OutputStream::kStdout, ContainsText("listening"), DeadlineIn(seconds(10)));
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_EQ(*line, "listening on 1234");
  Result<std::string> err =
      p->ReadLineUntil(OutputStream::kStderr, ContainsText("warm"), DeadlineIn(seconds(10)));
  ASSERT_TRUE(err.ok()) << err.status().ToString();
  EXPECT_TRUE(p->running());
  Result<int> code = p->Terminate(seconds(2));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 128 + SIGTERM);
  EXPECT_FALSE(p->running());
}

TEST(SubprocessTest, ReadLineUntilHonoursTheDeadline) {
  Result<Subprocess> p = Subprocess::Spawn(Command({"sh", "-c", "echo one; exec sleep 30"}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto start = std::chrono::steady_clock::now();
  Result<std::string> line =
      p->ReadLineUntil(OutputStream::kStdout, ContainsText("never"), DeadlineIn(milliseconds(200)));
  EXPECT_EQ(line.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_NE(line.status().message().find("one"), std::string::npos) << line.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST(SubprocessTest, ReadLineUntilReportsEndOfStream) {
  Result<Subprocess> p = Subprocess::Spawn(Command({"sh", "-c", "printf 'a\\nlast'"}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Result<std::string> last =
      p->ReadLineUntil(OutputStream::kStdout, ContainsText("last"), DeadlineIn(seconds(10)));
  ASSERT_TRUE(last.ok()) << last.status().ToString();  // unterminated last line counts
  Result<std::string> none =
      p->ReadLineUntil(OutputStream::kStdout, ContainsText("x"), DeadlineIn(seconds(10)));
  EXPECT_EQ(none.status().code(), Status::Code::kAborted) << none.status().ToString();
}

TEST(SubprocessTest, WaitTimesOutThenTerminateEscalatesToSigkill) {
  // The child ignores SIGTERM, so only SIGKILL ends it.
  Result<Subprocess> p = Subprocess::Spawn(
      Command({"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(
      p->ReadLineUntil(OutputStream::kStdout, ContainsText("ready"), DeadlineIn(seconds(10))).ok());
  EXPECT_EQ(p->Wait(milliseconds(50)).status().code(), Status::Code::kDeadlineExceeded);
  Result<int> code = p->Terminate(milliseconds(100));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(SubprocessTest, RunTimeoutTerminatesTheChild) {
  auto start = std::chrono::steady_clock::now();
  Result<RunResult> r = Subprocess::Run({"sleep", "30"}, milliseconds(200));
  EXPECT_EQ(r.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST(SubprocessTest, DestructorTerminatesARunningChild) {
  pid_t pid;
  {
    Result<Subprocess> p = Subprocess::Spawn(Command({"sleep", "30"}));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    pid = p->pid();
    EXPECT_TRUE(ProcessExists(pid));
  }
  EXPECT_FALSE(ProcessExists(pid));
}

TEST(SubprocessTest, MovedSubprocessKeepsOwnership) {
  Result<Subprocess> p = Subprocess::Spawn(Command({"sh", "-c", "echo moved; exec sleep 30"}));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Subprocess owner = std::move(*p);
  Result<std::string> line =
      owner.ReadLineUntil(OutputStream::kStdout, ContainsText("moved"), DeadlineIn(seconds(10)));
  EXPECT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_TRUE(owner.Terminate().ok());
}

TEST(SubprocessTest, OutputIsDrainedEvenWhenNobodyReads) {
  // 1 MiB on each stream would block a child writing into undrained pipes.
  SpawnOptions options;
  options.argv = {"sh", "-c", "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2"};
  Result<Subprocess> p = Subprocess::Spawn(std::move(options));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Result<int> code = p->Wait(seconds(10));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 0);
}

TEST(SubprocessTest, OutputGoesToLogFilesCapturedOrNot) {
  char tmpl[] = "/tmp/tl-subprocess-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  SpawnOptions options;
  options.argv = {"sh", "-c", "echo to-out; echo to-err >&2"};
  options.stdout_options = {true, dir + "/out.log"};   // tee
  options.stderr_options = {false, dir + "/err.log"};  // file only
  Result<RunResult> r = Subprocess::Run(options, seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Run() captures both streams whatever the options say.
  EXPECT_EQ(r->out, "to-out\n");
  EXPECT_EQ(r->err, "to-err\n");

  options.stderr_options = {false, dir + "/err.log"};
  Result<Subprocess> p = Subprocess::Spawn(options);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(p->Wait(seconds(10)).ok());
  Result<RunResult> collected = p->CollectOutput(DeadlineIn(seconds(10)));
  ASSERT_TRUE(collected.ok()) << collected.status().ToString();
  EXPECT_EQ(collected->err, "");
  EXPECT_EQ(p->ReadLineUntil(OutputStream::kStderr, ContainsText("x"), DeadlineIn(seconds(1)))
                .status()
                .code(),
            Status::Code::kInvalidArgument);

  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  EXPECT_EQ(slurp(dir + "/out.log"), "to-out\nto-out\n");
  EXPECT_EQ(slurp(dir + "/err.log"), "to-err\nto-err\n");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tripline::lab
