#include "aggregator/server/aggregator_settings.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>
#include <sstream>

#include "aggregator/cluster/lease.h"
#include "common/clock.h"
#include "common/config_file.h"
#include "common/metrics/metrics_server.h"
#include "common/tls_reload.h"

namespace tripline {
namespace {

constexpr int64_t kNanosPerHour = 3600 * kNanosPerSecond;

Result<std::string> ReadPem(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read " + std::string(what) + " " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().empty()) return Status::InvalidArgument(std::string(what) + " " + path + " is empty");
  return s.str();
}

// The cluster section: a known role, servers as nats://HOST:PORT, sane sizes.
Status CheckClusterConfig(const v1::ClusterConfig& cc) {
  if (cc.role() != "" && cc.role() != "ingest" && cc.role() != "worker") {
    return Status::InvalidArgument("cluster.role is '" + cc.role() +
                                   "', not ingest or worker (or empty)");
  }
  if (cc.role() == "ingest" && cc.servers().empty()) {
    return Status::InvalidArgument("an ingest node needs cluster.servers (--ingest-node)");
  }
  if (cc.role() == "worker" && cc.servers().empty()) {
    return Status::InvalidArgument("a worker needs cluster.servers (--worker)");
  }
  if (!cc.name().empty() && !cluster::ValidLeaseName(cc.name())) {
    return Status::InvalidArgument("cluster.name '" + cc.name() +
                                   "' may hold only letters, digits and -_=./");
  }
  for (const std::string& url : cc.servers()) {
    constexpr std::string_view kScheme = "nats://";
    auto hp = url.rfind(kScheme, 0) == 0 ? ParseHostPort(url.substr(kScheme.size()))
                                         : Result<HostPort>(Status::InvalidArgument("no scheme"));
    if (!hp.ok() || hp->port == 0) {
      return Status::InvalidArgument("cluster server '" + url + "' is not nats://HOST:PORT");
    }
  }
  if (cc.replicas() > 5) {
    return Status::InvalidArgument("cluster.replicas is " + std::to_string(cc.replicas()) +
                                   "; JetStream keeps 1 to 5");
  }
  if (cc.partitions() > 65536) {
    return Status::InvalidArgument("cluster.partitions is " + std::to_string(cc.partitions()) +
                                   "; at most 65536");
  }
  return Status::Ok();
}

}  // namespace

std::string AggregatorUsage() {
  return R"(usage: tripline-aggregator --listen HOST:PORT --data-dir DIR [options]

  --listen HOST:PORT      address to serve on; port 0 picks a free port
  --data-dir DIR          RocksDB data directory (created when missing)
  --config FILE           tripline.v1.AggregatorConfig in protobuf text format;
                          flags win over the file
  --forward URL           SIEM output (repeatable): syslog+tcp://H:P, syslog+tls://H:P,
                          https://H[:P]/PATH?format=ocsf|ecs|hec|elastic-bulk,
                          http://LOOPBACK[:P]/PATH?format=..., file:///PATH?format=ocsf|ecs;
                          an http(s) URL may add &token_file=/F and &ca_file=/F
  --forward-ca FILE       PEM CA that signs the syslog+tls and https receivers
                          (default: the system's trusted CAs)
  --forward-token-file FILE  token for https outputs (HEC, Elasticsearch API key, bearer)
  --insecure              allow a non-loopback listener without TLS
  --retention DURATION    drop events older than this (e.g. 7d, 12h); 0 keeps them
  --sync-writes           fsync the WAL before acknowledging each batch
  --max-batch-events N    largest batch accepted (default 4096)
  --max-clock-skew DURATION  event times further ahead of this clock are clamped
                          (default 5m)
  --max-event-age DURATION   event times older than this are clamped (default: none)
  --max-streams-per-peer N   ingest streams open at once per client (default 64)
  --rules DIR             Sigma rules (*.yml, recursively) evaluated on every event;
                          SIGHUP reloads them (docs/sigma.md)
  --log-level LEVEL       debug, info, warning or error (default info)
  --metrics [HOST:]PORT   serve Prometheus metrics on http://HOST:PORT/metrics (off by
                          default; HOST defaults to 127.0.0.1; docs/metrics.md)
  --console [HOST:]PORT   serve the analyst console there (off by default; HOST defaults
                          to 127.0.0.1; any other address needs console.tls_cert_file and
                          console.tls_key_file; docs/console.md)
  --ingest-node NATS_URL[,NATS_URL...]
                          run as an ingest node of the scaled-out mode: sensors' batches
                          go to the NATS JetStream cluster at nats://HOST:PORT (cluster
                          in the configuration file); no --data-dir; docs/scale-out.md
  --worker NATS_URL[,NATS_URL...]
                          run as a worker of the scaled-out mode: hold partitions of the
                          cluster's events stream, correlate them and keep their events
                          in --data-dir; --listen serves queries over them
                          (cluster.name names it; docs/scale-out.md)
  --help                  this text

  tripline-aggregator --make-order-key FILE
                          write a new Ed25519 key for signing action orders to FILE
                          (mode 0600, never over an existing file; set it as
                          response.order_key_file) and print the public key to give
                          the sensors (order_public_key); docs/response.md
  tripline-aggregator --hash-password
                          read a password on standard input and print its Argon2id
                          hash, for console.users[].password_hash; docs/console.md

Prints "listening on HOST:PORT" once it accepts connections; SIGTERM or SIGINT stop it.
)";
}

Result<AggregatorSettings> ParseAggregatorArgs(const std::vector<std::string>& args) {
  AggregatorSettings s;
  // Flags are collected first so that the config file (wherever --config appears) is the
  // base they override.
  std::string config_path, listen, data_dir, retention, log_level, max_batch;
  std::string max_skew, max_age, max_streams, metrics, forward_ca, forward_token_file, rules_dir;
  std::string console, ingest_node, worker;
  std::vector<std::string> forwards;
  bool insecure = false, have_listen = false, have_data_dir = false;

  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_inline = false;
    if (const size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline = true;
    }
    const auto take = [&](std::string* out) -> Status {
      if (has_inline) {
        *out = value;
        return Status::Ok();
      }
      if (i + 1 >= args.size()) return Status::InvalidArgument(flag + " needs a value");
      *out = args[++i];
      return Status::Ok();
    };
    const auto no_value = [&]() -> Status {
      return has_inline ? Status::InvalidArgument(flag + " takes no value") : Status::Ok();
    };
    if (flag == "--listen") {
      TL_RETURN_IF_ERROR(take(&listen));
      have_listen = true;
    } else if (flag == "--data-dir") {
      TL_RETURN_IF_ERROR(take(&data_dir));
      have_data_dir = true;
    } else if (flag == "--rules") {
      TL_RETURN_IF_ERROR(take(&rules_dir));
    } else if (flag == "--config") {
      TL_RETURN_IF_ERROR(take(&config_path));
    } else if (flag == "--forward") {
      std::string url;
      TL_RETURN_IF_ERROR(take(&url));
      forwards.push_back(url);
    } else if (flag == "--forward-ca") {
      TL_RETURN_IF_ERROR(take(&forward_ca));
    } else if (flag == "--forward-token-file") {
      TL_RETURN_IF_ERROR(take(&forward_token_file));
    } else if (flag == "--insecure") {
      TL_RETURN_IF_ERROR(no_value());
      insecure = true;
    } else if (flag == "--sync-writes") {
      TL_RETURN_IF_ERROR(no_value());
      s.sync_writes = true;
    } else if (flag == "--retention") {
      TL_RETURN_IF_ERROR(take(&retention));
    } else if (flag == "--max-batch-events") {
      TL_RETURN_IF_ERROR(take(&max_batch));
    } else if (flag == "--max-clock-skew") {
      TL_RETURN_IF_ERROR(take(&max_skew));
    } else if (flag == "--max-event-age") {
      TL_RETURN_IF_ERROR(take(&max_age));
    } else if (flag == "--max-streams-per-peer") {
      TL_RETURN_IF_ERROR(take(&max_streams));
    } else if (flag == "--metrics") {
      TL_RETURN_IF_ERROR(take(&metrics));
      if (metrics.empty()) return Status::InvalidArgument("--metrics wants [HOST:]PORT");
    } else if (flag == "--console") {
      TL_RETURN_IF_ERROR(take(&console));
      if (console.empty()) return Status::InvalidArgument("--console wants [HOST:]PORT");
    } else if (flag == "--ingest-node") {
      TL_RETURN_IF_ERROR(take(&ingest_node));
      if (ingest_node.empty()) {
        return Status::InvalidArgument(
            "--ingest-node wants nats://HOST:PORT[,nats://HOST:PORT...]");
      }
    } else if (flag == "--worker") {
      TL_RETURN_IF_ERROR(take(&worker));
      if (worker.empty()) {
        return Status::InvalidArgument("--worker wants nats://HOST:PORT[,nats://HOST:PORT...]");
      }
    } else if (flag == "--hash-password") {
      TL_RETURN_IF_ERROR(no_value());
      s.hash_password = true;
      return s;
    } else if (flag == "--log-level") {
      TL_RETURN_IF_ERROR(take(&log_level));
    } else if (flag == "--help" || flag == "-h") {
      s.help = true;
      return s;
    } else if (flag == "--make-order-key") {
      TL_RETURN_IF_ERROR(take(&s.make_order_key));
      if (s.make_order_key.empty()) return Status::InvalidArgument("--make-order-key wants a FILE");
      return s;
    } else {
      return Status::InvalidArgument("unknown argument '" + args[i] + "'");
    }
  }

  if (!config_path.empty()) {
    TL_RETURN_IF_ERROR(LoadTextConfigFile(config_path, &s.config));
  }
  if (have_listen) s.config.set_listen(listen);
  if (have_data_dir) s.config.set_data_dir(data_dir);
  if (insecure) s.config.set_insecure(true);
  if (!rules_dir.empty()) s.config.set_rules_dir(rules_dir);
  if (!metrics.empty()) s.config.set_metrics_listen(metrics);
  if (!console.empty()) s.config.mutable_console()->set_listen(console);
  if (!s.config.console().listen().empty()) {
    auto hp = ParseMetricsAddress(s.config.console().listen());
    if (!hp.ok()) return hp.status().WithContext("--console");
    s.console = *hp;
  }
  if (!s.config.metrics_listen().empty()) {
    auto hp = ParseMetricsAddress(s.config.metrics_listen());
    if (!hp.ok()) return hp.status().WithContext("--metrics");
    s.metrics = *hp;
  }
  if (!forwards.empty()) {
    s.config.clear_forward();
    for (const auto& f : forwards) s.config.add_forward(f);
  }
  if (!forward_ca.empty()) s.config.set_forward_ca_file(forward_ca);
  if (!forward_token_file.empty()) s.config.set_forward_token_file(forward_token_file);
  if (!max_batch.empty()) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(max_batch.c_str(), &end, 10);
    if (*end != '\0' || n == 0 || n > 1'000'000) {
      return Status::InvalidArgument("--max-batch-events wants a number from 1 to 1000000");
    }
    s.config.set_max_batch_events(static_cast<uint32_t>(n));
  }

  if (!max_skew.empty()) {
    auto ns = ParseDurationNs(max_skew);
    if (!ns.ok() || *ns < kNanosPerSecond || *ns / kNanosPerSecond > UINT32_MAX) {
      return Status::InvalidArgument("--max-clock-skew wants a duration of 1s or more, got '" +
                                     max_skew + "'");
    }
    s.config.set_max_clock_skew_s(static_cast<uint32_t>(*ns / kNanosPerSecond));
  }
  if (!max_age.empty()) {
    auto ns = max_age == "0" ? Result<int64_t>(int64_t{0}) : ParseDurationNs(max_age);
    if (!ns.ok() || *ns < 0 || (*ns > 0 && *ns < kNanosPerHour) ||
        *ns / kNanosPerHour > UINT32_MAX) {
      return Status::InvalidArgument("--max-event-age wants 0 or a duration of 1h or more, got '" +
                                     max_age + "'");
    }
    s.config.set_max_event_age_h(static_cast<uint32_t>(*ns / kNanosPerHour));
  }
  if (!max_streams.empty()) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(max_streams.c_str(), &end, 10);
    if (*end != '\0' || n == 0 || n > 100'000) {
      return Status::InvalidArgument("--max-streams-per-peer wants a number from 1 to 100000");
    }
    s.config.set_max_streams_per_peer(static_cast<uint32_t>(n));
  }

  if (!ingest_node.empty() && !worker.empty()) {
    return Status::InvalidArgument("--ingest-node and --worker: a process is one or the other");
  }
  if (!ingest_node.empty() || !worker.empty()) {
    v1::ClusterConfig* cc = s.config.mutable_cluster();
    cc->set_role(ingest_node.empty() ? "worker" : "ingest");
    cc->clear_servers();
    std::stringstream urls(ingest_node.empty() ? worker : ingest_node);
    std::string url;
    while (std::getline(urls, url, ',')) cc->add_servers(url);
  }
  TL_RETURN_IF_ERROR(CheckClusterConfig(s.config.cluster()));
  s.ingest_node = s.config.cluster().role() == "ingest";
  s.worker = s.config.cluster().role() == "worker";
  if (s.config.listen().empty()) return Status::InvalidArgument("--listen is required");
  if (s.config.data_dir().empty() && !s.ingest_node) {
    return Status::InvalidArgument("--data-dir is required");
  }
  TL_ASSIGN_OR_RETURN(s.listen, ParseHostPort(s.config.listen()));

  s.retention_ns = static_cast<int64_t>(s.config.event_retention_hours()) * kNanosPerHour;
  if (!retention.empty()) {
    if (retention == "0") {
      s.retention_ns = 0;
    } else {
      auto ns = ParseDurationNs(retention);
      if (!ns.ok() || *ns <= 0) {
        return Status::InvalidArgument("--retention wants a duration such as 7d or 12h, got '" +
                                       retention + "'");
      }
      s.retention_ns = *ns;
    }
    s.config.set_event_retention_hours(
        static_cast<uint32_t>((s.retention_ns + kNanosPerHour - 1) / kNanosPerHour));
  }
  if (!log_level.empty() && !ParseLogLevel(log_level, &s.log_level)) {
    return Status::InvalidArgument("--log-level wants debug, info, warning or error");
  }
  for (const auto& url : s.config.forward()) {
    TL_ASSIGN_OR_RETURN(ForwardTarget t, ParseForwardUrl(url));
    s.forwards.push_back(std::move(t));
  }
  if (!s.config.forward_ca_file().empty()) {
    TL_RETURN_IF_ERROR(ReadPem(s.config.forward_ca_file(), "forward_ca_file").status());
  }
  if (!s.config.forward_token_file().empty()) {
    TL_ASSIGN_OR_RETURN(s.forward_token, ReadForwardToken(s.config.forward_token_file()));
  }
  return s;
}

Result<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const AggregatorSettings& settings) {
  const v1::TlsConfig& tls = settings.config.tls();
  const bool have_cert = !tls.cert_file().empty(), have_key = !tls.key_file().empty();
  if (have_cert != have_key) {
    return Status::InvalidArgument("tls needs both cert_file and key_file");
  }
  if (!have_cert) {
    if (tls.require_client_cert() || !tls.ca_file().empty()) {
      return Status::InvalidArgument("tls.ca_file/require_client_cert need cert_file and key_file");
    }
    if (!settings.listen.IsLoopback() && !settings.config.insecure()) {
      return Status::InvalidArgument(
          "refusing to listen on " + settings.listen.ToString() +
          " without TLS: sensors would send events in clear text. Set tls.cert_file and "
          "tls.key_file in the config file, listen on a loopback address, or pass --insecure");
    }
    return grpc::InsecureServerCredentials();
  }
  // Read once here so that a missing or empty file is a clear error at start; from then on
  // gRPC's file watcher reads them again every reload_interval_s, so a renewed certificate,
  // key or CA bundle is used by new connections without a restart (docs/operating.md).
  TL_RETURN_IF_ERROR(ReadPem(tls.cert_file(), "tls.cert_file").status());
  TL_RETURN_IF_ERROR(ReadPem(tls.key_file(), "tls.key_file").status());
  // With TLS every client proves who it is: the roles and the sensor binding come from its
  // certificate (aggregator/ingest/peer_identity.h), so a listener that would take anyone is not
  // offered. require_client_cert is implied and kept only so that old files still load.
  if (tls.ca_file().empty()) {
    return Status::InvalidArgument(
        "tls needs ca_file: with TLS every client (sensor, triplinectl) must present a "
        "certificate issued by that CA (see docs/security.md)");
  }
  TL_RETURN_IF_ERROR(ReadPem(tls.ca_file(), "tls.ca_file").status());
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file(), tls.cert_file(), tls.ca_file(),
      TlsReloadIntervalSeconds(tls.reload_interval_s()));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace tripline
