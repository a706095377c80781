// Sensor settings: command-line flags, the optional text-proto config file
// (tripline.v1.SensorConfig), and how they combine. Flags win over the file; the file wins
// over defaults. Everything here is pure except the file read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/host_port.h"
#include "common/log.h"
#include "common/status.h"
#include "sensor/host_identity.h"
#include "tripline/v1/config.pb.h"

namespace tripline::sensor {

enum class OutputMode { kGrpc, kJsonl };

// Flags exactly as given; nullopt when absent.
struct SensorFlags {
  std::optional<std::string> aggregator;
  std::optional<std::string> scope;
  std::optional<std::string> host_name;
  std::optional<std::string> output;
  std::optional<std::string> config;
  std::optional<std::string> spool_dir;
  std::optional<std::string> log_level;
  std::optional<std::string> host_root;
  std::optional<std::string> metrics;  // [HOST:]PORT of /metrics
  bool help = false;
};

// Parses argv[1..]. Accepts "--flag value" and "--flag=value". InvalidArgument naming the
// flag for unknown flags, missing values, repeated flags and stray arguments.
Result<SensorFlags> ParseSensorFlags(const std::vector<std::string>& args);

// The usage text printed for --help and (on stderr) for bad flags.
std::string SensorUsage();

// One entry of the sensitive-path table, as configured.
struct PathRuleSetting {
  enum class Match { kExact, kPrefix, kSuffix };
  Match match = Match::kExact;
  std::string path;
};

struct SensorSettings {
  std::optional<HostPort> aggregator;  // required for --output grpc
  Scope scope = Scope::kHost;
  std::string host_name;  // "" = from gethostname()
  OutputMode output = OutputMode::kGrpc;
  std::string spool_dir;
  // Where the host's /etc, home directories and /var/log are visible: "/" on a host,
  // e.g. "/host" in a container that mounts them there. /proc is always /proc (the
  // container needs hostPID so pids in kernel records are its pids).
  std::string host_root = "/";
  LogLevel log_level = LogLevel::kInfo;
  std::optional<HostPort> metrics;  // --metrics / metrics_listen: serve /metrics there
  uint32_t health_interval_s = 10;
  uint32_t posture_interval_s = 300;
  // Container runtime sockets whose reach the posture reports per process; empty: the
  // defaults (sensor/process_privileges.h).
  std::vector<std::string> runtime_sockets;
  // When `replace_default_paths`, `sensitive_paths` is the whole table; otherwise it is
  // added to the probe's defaults.
  bool replace_default_paths = false;
  std::vector<PathRuleSetting> sensitive_paths;
  std::string libpam_path;
  uint32_t exec_max_args = 16;
  // The config file with the flags applied: what the delivery client reads (TLS, batching,
  // spool limits, sensor id).
  tripline::v1::SensorConfig config;
  // What in this configuration weakens the sensor's protection (clear text off loopback):
  // logged at start and carried in every health event.
  std::vector<std::string> warnings;
};

// Loads `flags.config` (when given) and applies the flags over it. InvalidArgument for
// values that make no sense (bad scope, output, address or log level, grpc without an
// aggregator, zero intervals); config file errors keep their file:line:col.
Result<SensorSettings> ResolveSensorSettings(const SensorFlags& flags);

}  // namespace tripline::sensor
