#include "tools/lab/ssh_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tools/lab/subprocess.h"

namespace tripline::lab {
namespace {

TEST(ShellQuoteTest, QuotesEverythingIntoOneWord) {
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("plain"), "'plain'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote("$(x) `y` \"z\""), "'$(x) `y` \"z\"'");
}

TEST(SshArgvTest, PasswordLoginThatNeverPrompts) {
  std::vector<std::string> argv = SshArgv({"alice", "s3cret", "198.18.0.1", 2222}, "id -un");
  ASSERT_GE(argv.size(), 6u);
  EXPECT_EQ(argv[0], "sshpass");
  EXPECT_EQ(argv[1], "-p");
  EXPECT_EQ(argv[2], "s3cret");
  EXPECT_EQ(argv[3], "ssh");
  EXPECT_EQ(argv[argv.size() - 3], "2222");
  EXPECT_EQ(argv[argv.size() - 2], "alice@198.18.0.1");
  EXPECT_EQ(argv.back(), "id -un");
  for (const char* option : {"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
                             "PreferredAuthentications=password", "PubkeyAuthentication=no",
                             "NumberOfPasswordPrompts=1", "ConnectTimeout=5"}) {
    EXPECT_NE(std::find(argv.begin(), argv.end(), option), argv.end()) << option;
  }
}

TEST(ChainedSshCommandTest, NoHopsIsTheCommandItself) {
  EXPECT_EQ(ChainedSshCommand({}, "hostname"), "hostname");
}

// Every shell on the way must strip exactly one level of quoting. A fake sshpass that runs
// its last argument with `sh -c` (what ssh + the remote login shell do) checks that without
// a network: the final command must reach the last shell unchanged.
TEST(ChainedSshCommandTest, SurvivesOneShellPerHop) {
  char tmpl[] = "/tmp/tl-ssh-command-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    std::ofstream fake(dir + "/sshpass");
    fake << "#!/bin/sh\n"
            "for last; do :; done\n"
            "printf 'hop %s\\n' \"$2\" >&2\n"
            "exec sh -c \"$last\"\n";
  }
  ASSERT_EQ(chmod((dir + "/sshpass").c_str(), 0755), 0);

  std::vector<SshHop> hops = {{"u1", "p'w 1", "198.18.0.2", 22},
                              {"u2", "p\"w$2", "198.18.0.3", 2222},
                              {"u3", "`pw3`", "198.18.0.4", 22}};
  const std::string final_command = R"(printf '%s|' "it's" 'a "b" $c' `echo d`)";
  const std::string chain = ChainedSshCommand(hops, final_command);

  SpawnOptions options;
  options.argv = {"sh", "-c", chain};
  options.env = {
      {"PATH", dir + ":" + std::string(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin")}};
  Result<RunResult> r = Subprocess::Run(std::move(options), std::chrono::seconds(10));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "it's|a \"b\" $c|d|");
  EXPECT_EQ(r->err, "hop p'w 1\nhop p\"w$2\nhop `pw3`\n");  // passwords intact
}

}  // namespace
}  // namespace tripline::lab
