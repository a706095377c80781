// Command line and configuration file of tripline-aggregator.
//
// The configuration file (--config, tripline.v1.AggregatorConfig in protobuf text format)
// is read first; flags given on the command line win over it. A repeated flag
// (--forward) replaces the file's list when given at least once.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/forward/forward_target.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/status.h"
#include "tripline/v1/config.pb.h"

namespace tripline {

struct AggregatorSettings {
  v1::AggregatorConfig config;  // the merged configuration
  HostPort listen;
  int64_t retention_ns = 0;  // 0 keeps events forever
  bool sync_writes = false;
  LogLevel log_level = LogLevel::kInfo;
  std::vector<ForwardTarget> forwards;
  std::optional<HostPort> metrics;  // --metrics / metrics_listen: serve /metrics there
  std::string forward_token;        // read from config.forward_token_file
  bool help = false;                // --help: print usage and exit 0
  std::string make_order_key;       // --make-order-key FILE: write a key there and exit
  bool hash_password = false;       // --hash-password: hash a password read on stdin, exit
  std::optional<HostPort> console;  // --console / console.listen: serve the console there
  // --ingest-node / cluster.role "ingest": run as an ingest node of the scaled-out mode.
  bool ingest_node = false;
  // --worker / cluster.role "worker": run as a worker of the scaled-out mode.
  bool worker = false;
};

std::string AggregatorUsage();

// args excludes the program name. InvalidArgument for bad flags and bad values; the
// configuration file's own errors (with line and column) as LoadTextConfigFile reports them.
Result<AggregatorSettings> ParseAggregatorArgs(const std::vector<std::string>& args);

// Server credentials from config.tls. Refuses a listener on a non-loopback address without
// TLS unless `insecure` (flag or config) is set, and refuses half a TLS configuration.
Result<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const AggregatorSettings& settings);

}  // namespace tripline
