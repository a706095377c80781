#include "sensor/config.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "common/config_file.h"
#include "common/metrics/metrics_server.h"

namespace tripline::sensor {
namespace {

// exec_max_args must fit the BPF side's fixed bound (TL_MAX_ARGS_LIMIT in events.h).
constexpr uint32_t kMaxExecArgs = 64;

struct FlagSpec {
  std::string_view name;
  std::optional<std::string> SensorFlags::*field;
};

constexpr std::array<FlagSpec, 9> kFlags = {{
    {"--aggregator", &SensorFlags::aggregator},
    {"--scope", &SensorFlags::scope},
    {"--host-name", &SensorFlags::host_name},
    {"--output", &SensorFlags::output},
    {"--config", &SensorFlags::config},
    {"--spool-dir", &SensorFlags::spool_dir},
    {"--log-level", &SensorFlags::log_level},
    {"--host-root", &SensorFlags::host_root},
    {"--metrics", &SensorFlags::metrics},
}};

Result<PathRuleSetting> ConvertPathRule(const tripline::v1::PathRule& rule, int index,
                                        std::string_view field) {
  PathRuleSetting out;
  std::string where = std::string(field) + "[" + std::to_string(index) + "]";
  switch (rule.match()) {
    case tripline::v1::PathRule::MATCH_EXACT: out.match = PathRuleSetting::Match::kExact; break;
    case tripline::v1::PathRule::MATCH_PREFIX: out.match = PathRuleSetting::Match::kPrefix; break;
    case tripline::v1::PathRule::MATCH_SUFFIX: out.match = PathRuleSetting::Match::kSuffix; break;
    default: return Status::InvalidArgument(where + ": match must be set");
  }
  if (rule.path().empty()) return Status::InvalidArgument(where + ": empty path");
  // The kernel table compares against absolute canonical paths (suffix rules excepted).
  if (out.match != PathRuleSetting::Match::kSuffix && rule.path().front() != '/') {
    return Status::InvalidArgument(where + ": path must be absolute: " + rule.path());
  }
  out.path = rule.path();
  return out;
}

}  // namespace

std::string SensorUsage() {
  return "usage: tripline-sensor --aggregator HOST:PORT [--scope host|uts] [--host-name NAME]\n"
         "                       [--output grpc|jsonl] [--config FILE] [--spool-dir DIR]\n"
         "                       [--log-level debug|info|warning|error] [--host-root DIR]\n"
         "                       [--metrics [HOST:]PORT]\n"
         "\n"
         "  --aggregator HOST:PORT  where events are streamed (needed for --output grpc)\n"
         "  --scope host|uts        watch the whole host (default) or only this UTS namespace\n"
         "  --host-name NAME        host name to report (default: gethostname())\n"
         "  --output grpc|jsonl     stream to the aggregator (default) or print JSON lines\n"
         "  --config FILE           tripline.v1.SensorConfig in protobuf text format\n"
         "  --spool-dir DIR         on-disk spool while the aggregator is unreachable\n"
         "  --log-level LEVEL       log verbosity on stderr (default info)\n"
         "  --host-root DIR         where the host's /etc, /home, /root, /var/log are mounted\n"
         "                          (default /; e.g. /host in a container)\n"
         "  --metrics [HOST:]PORT   serve Prometheus metrics on http://HOST:PORT/metrics\n"
         "                          (off by default; HOST defaults to 127.0.0.1)\n"
         "Flags win over the config file. Prints 'sensor ready' once the probes are attached.\n";
}

Result<SensorFlags> ParseSensorFlags(const std::vector<std::string>& args) {
  SensorFlags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& f : kFlags) {
      if (f.name == name) spec = &f;
    }
    if (spec == nullptr) {
      if (!arg.starts_with("-")) {
        return Status::InvalidArgument("unexpected argument '" + std::string(arg) + "'");
      }
      return Status::InvalidArgument("unknown flag " + std::string(name));
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return Status::InvalidArgument(std::string(name) + " needs a value");
      }
      value = args[++i];
    }
    if (value->empty()) return Status::InvalidArgument(std::string(name) + " needs a value");
    std::optional<std::string>& slot = flags.*(spec->field);
    if (slot) return Status::InvalidArgument(std::string(name) + " given twice");
    slot = std::move(value);
  }
  return flags;
}

Result<SensorSettings> ResolveSensorSettings(const SensorFlags& flags) {
  SensorSettings s;
  tripline::v1::SensorConfig& c = s.config;
  if (flags.config) TL_RETURN_IF_ERROR(LoadTextConfigFile(*flags.config, &c));
  if (flags.aggregator) c.set_aggregator(*flags.aggregator);
  if (flags.host_name) c.set_host_name(*flags.host_name);
  if (flags.scope) c.set_scope(*flags.scope);
  if (flags.spool_dir) c.set_spool_dir(*flags.spool_dir);
  if (flags.metrics) c.set_metrics_listen(*flags.metrics);
  if (!c.metrics_listen().empty()) {
    auto hp = ParseMetricsAddress(c.metrics_listen());
    if (!hp.ok()) return hp.status().WithContext("--metrics");
    s.metrics = *hp;
  }

  if (!c.aggregator().empty()) {
    auto hp = ParseHostPort(c.aggregator());
    if (!hp.ok()) return hp.status().WithContext("--aggregator");
    s.aggregator = *hp;
  }
  if (c.scope().empty() || c.scope() == "host") {
    s.scope = Scope::kHost;
  } else if (c.scope() == "uts") {
    s.scope = Scope::kUts;
  } else {
    return Status::InvalidArgument("--scope must be 'host' or 'uts', not '" + c.scope() + "'");
  }
  s.host_name = c.host_name();
  if (flags.output) {
    if (*flags.output == "grpc") {
      s.output = OutputMode::kGrpc;
    } else if (*flags.output == "jsonl") {
      s.output = OutputMode::kJsonl;
    } else {
      return Status::InvalidArgument("--output must be 'grpc' or 'jsonl', not '" + *flags.output +
                                     "'");
    }
  }
  if (s.output == OutputMode::kGrpc && !s.aggregator) {
    return Status::InvalidArgument("--aggregator HOST:PORT is required with --output grpc");
  }
  if (flags.log_level && !ParseLogLevel(*flags.log_level, &s.log_level)) {
    return Status::InvalidArgument("--log-level must be debug, info, warning or error, not '" +
                                   *flags.log_level + "'");
  }
  s.spool_dir = c.spool_dir();
  if (flags.host_root) {
    if (flags.host_root->front() != '/') {
      return Status::InvalidArgument("--host-root must be an absolute path");
    }
    s.host_root = *flags.host_root;
    while (s.host_root.size() > 1 && s.host_root.back() == '/') s.host_root.pop_back();
  }
  if (c.health_interval_s() != 0) s.health_interval_s = c.health_interval_s();
  if (c.posture_interval_s() != 0) s.posture_interval_s = c.posture_interval_s();
  if (c.exec_max_args() != 0) {
    if (c.exec_max_args() > kMaxExecArgs) {
      return Status::InvalidArgument("exec_max_args must be at most " +
                                     std::to_string(kMaxExecArgs));
    }
    s.exec_max_args = c.exec_max_args();
  }
  for (int i = 0; i < c.runtime_sockets_size(); ++i) {
    const std::string& path = c.runtime_sockets(i);
    if (path.empty() || path.front() != '/' || path.size() > 4096) {
      return Status::InvalidArgument("runtime_sockets[" + std::to_string(i) +
                                     "] must be an absolute path, not '" + path + "'");
    }
    s.runtime_sockets.push_back(path);
  }
  s.libpam_path = c.libpam_path();
  s.replace_default_paths = c.sensitive_paths_size() > 0;
  for (int i = 0; i < c.sensitive_paths_size(); ++i) {
    TL_ASSIGN_OR_RETURN(PathRuleSetting r,
                        ConvertPathRule(c.sensitive_paths(i), i, "sensitive_paths"));
    s.sensitive_paths.push_back(std::move(r));
  }
  for (int i = 0; i < c.extra_sensitive_paths_size(); ++i) {
    TL_ASSIGN_OR_RETURN(PathRuleSetting r,
                        ConvertPathRule(c.extra_sensitive_paths(i), i, "extra_sensitive_paths"));
    s.sensitive_paths.push_back(std::move(r));
  }
  if (!c.order_public_key().empty() &&
      (c.order_public_key().size() != 64 ||
       !std::all_of(c.order_public_key().begin(), c.order_public_key().end(),
                    [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; }))) {
    return Status::InvalidArgument(
        "order_public_key must be 64 hex digits (what tripline-aggregator --make-order-key "
        "printed)");
  }
  if (!c.order_public_key().empty() && s.output != OutputMode::kGrpc) {
    return Status::InvalidArgument(
        "order_public_key needs --output grpc (orders come from the "
        "aggregator)");
  }
  if (!c.order_net_namespace().empty() && c.order_net_namespace().front() != '/') {
    return Status::InvalidArgument(
        "order_net_namespace must be an absolute path, such as "
        "/proc/1/ns/net");
  }
  if (s.output == OutputMode::kGrpc && !c.has_tls() && !s.aggregator->IsLoopback()) {
    s.warnings.push_back(
        "events go to " + s.aggregator->ToString() +
        " in clear text (no tls block in the sensor config): anyone on the path can read "
        "them, and a man in the middle can acknowledge events that never arrived");
  }
  return s;
}

}  // namespace tripline::sensor
