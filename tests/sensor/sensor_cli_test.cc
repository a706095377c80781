// The real tripline-sensor binary's command line, unprivileged: --help, every kind of bad
// flag and bad configuration file (exit 2, the reason and the usage on stderr, nothing on
// stdout), and a sensor that cannot start its output (exit 1, the reason on stderr). Every
// case ends before the sensor would load BPF programs, so none needs root; should one get
// that far, it is killed after the timeout and fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/aggregator/subprocess.h"
#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using tripline::testing::RunCommand;
using tripline::testing::RunResult;

constexpr int kTimeoutMs = 20000;

RunResult Sensor(std::vector<std::string> args) {
  args.insert(args.begin(), TRIPLINE_SENSOR_BIN);
  return RunCommand(args, kTimeoutMs);
}

// Exit 2, "tripline-sensor: <message>" then the usage on stderr, nothing on stdout.
void ExpectUsageError(const std::vector<std::string>& args, const std::string& message) {
  SCOPED_TRACE(::testing::PrintToString(args));
  RunResult r = Sensor(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, StartsWith("tripline-sensor: " + message));
  EXPECT_THAT(r.err, HasSubstr("\n\nusage: tripline-sensor --aggregator HOST:PORT"));
  EXPECT_EQ(r.out, "");
}

TEST(SensorCliTest, HelpPrintsTheUsageOnStdout) {
  RunResult r = Sensor({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("usage: tripline-sensor --aggregator HOST:PORT"));
  for (const char* flag : {"--scope", "--host-name", "--output", "--config", "--spool-dir",
                           "--log-level", "--host-root"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  EXPECT_EQ(r.err, "");
}

TEST(SensorCliTest, BadFlagsExitTwoWithTheReason) {
  ExpectUsageError({"--frobnicate"}, "unknown flag --frobnicate\n");
  ExpectUsageError({"--aggregator"}, "--aggregator needs a value\n");
  ExpectUsageError({"--scope="}, "--scope needs a value\n");
  ExpectUsageError({"127.0.0.1:7000"}, "unexpected argument '127.0.0.1:7000'\n");
  ExpectUsageError({"--output", "jsonl", "--output", "grpc"}, "--output given twice\n");
  ExpectUsageError({"--aggregator", "nocolon"}, "--aggregator");
  ExpectUsageError({"--aggregator", "127.0.0.1:1", "--scope", "galaxy"},
                   "--scope must be 'host' or 'uts', not 'galaxy'\n");
  ExpectUsageError({"--aggregator", "127.0.0.1:1", "--output", "xml"},
                   "--output must be 'grpc' or 'jsonl', not 'xml'\n");
  ExpectUsageError({"--output", "grpc"}, "--aggregator HOST:PORT is required with --output grpc\n");
  ExpectUsageError({}, "--aggregator HOST:PORT is required with --output grpc\n");
  ExpectUsageError({"--aggregator", "127.0.0.1:1", "--log-level", "loud"},
                   "--log-level must be debug, info, warning or error, not 'loud'\n");
  ExpectUsageError({"--output", "jsonl", "--host-root", "host"},
                   "--host-root must be an absolute path\n");
}

TEST(SensorCliTest, BadConfigFilesExitTwoWithTheReason) {
  TempTree tree;
  const std::string dir = tree.root();
  ExpectUsageError({"--config", dir + "/missing.textproto"},
                   "cannot open configuration file " + dir + "/missing.textproto\n");

  tree.Write("/syntax.textproto", "aggregator: \"127.0.0.1:1\"\nhealth_interval_s: \"x\"\n");
  ExpectUsageError({"--config", dir + "/syntax.textproto"}, dir + "/syntax.textproto:2:");

  tree.Write("/unknown.textproto", "aggregator: \"127.0.0.1:1\"\nhealth_intervall_s: 5\n");
  {
    RunResult r = Sensor({"--config", dir + "/unknown.textproto"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(dir + "/unknown.textproto:2:"));
    EXPECT_THAT(r.err, HasSubstr("health_intervall_s"));
    EXPECT_EQ(r.out, "");
  }

  tree.Write("/scope.textproto", "aggregator: \"127.0.0.1:1\"\nscope: \"galaxy\"\n");
  ExpectUsageError({"--config", dir + "/scope.textproto"},
                   "--scope must be 'host' or 'uts', not 'galaxy'\n");
  tree.Write("/relative.textproto",
             "aggregator: \"127.0.0.1:1\"\nsensitive_paths { match: MATCH_EXACT path: \"etc/x\" "
             "}\n");
  ExpectUsageError({"--config", dir + "/relative.textproto"},
                   "sensitive_paths[0]: path must be absolute: etc/x\n");
  tree.Write("/args.textproto", "aggregator: \"127.0.0.1:1\"\nexec_max_args: 1000\n");
  ExpectUsageError({"--config", dir + "/args.textproto"}, "exec_max_args must be at most 64\n");
  tree.Write("/aggregator.textproto", "aggregator: \"no-port\"\n");
  ExpectUsageError({"--config", dir + "/aggregator.textproto"}, "--aggregator");
}

// Settings that parse but name an output that cannot work: exit 1 with the reason, before
// the probes are loaded, and never "sensor ready".
TEST(SensorCliTest, AnOutputThatCannotStartExitsOne) {
  TempTree tree;
  tree.Write("/file", "a regular file where the spool directory should be");
  RunResult spool = Sensor({"--aggregator", "127.0.0.1:1", "--host-name", "cli-test", "--spool-dir",
                            tree.root() + "/file/spool"});
  EXPECT_EQ(spool.exit_code, 1) << spool.err;
  EXPECT_THAT(spool.err, HasSubstr("output: "));
  EXPECT_THAT(spool.err, HasSubstr(tree.root() + "/file/spool"));
  EXPECT_THAT(spool.err, HasSubstr("Not a directory"));
  EXPECT_EQ(spool.out, "");

  tree.Write("/tls.textproto",
             "aggregator: \"127.0.0.1:1\"\ntls { ca_file: \"" + tree.root() + "/no-ca.pem\" }\n");
  RunResult tls = Sensor({"--config", tree.root() + "/tls.textproto", "--host-name", "cli-test",
                          "--spool-dir", tree.root() + "/spool"});
  EXPECT_EQ(tls.exit_code, 1) << tls.err;
  EXPECT_THAT(tls.err, HasSubstr("output: "));
  EXPECT_THAT(tls.err, HasSubstr(tree.root() + "/no-ca.pem does not exist"));
  EXPECT_EQ(tls.out, "");
}

}  // namespace
}  // namespace tripline::sensor
