// tripline-aggregator: receives sensors' event streams, stores them and serves queries.
// Flags: aggregator/server/aggregator_settings.cc (AggregatorUsage). Exit codes: 0 after a clean
// stop, 1 when the store or the listener fails, 2 for bad flags or configuration.
#include <pthread.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "aggregator/audit/posture_auditor.h"
#include "aggregator/cluster/cluster_metrics.h"
#include "aggregator/cluster/stream_sink.h"
#include "aggregator/cluster/worker.h"
#include "aggregator/console/console_server.h"
#include "aggregator/forward/forward_outputs.h"
#include "aggregator/metrics/aggregator_metrics.h"
#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/response/response_service.h"
#include "aggregator/server/aggregator_server.h"
#include "aggregator/server/aggregator_settings.h"
#include "aggregator/server/audit_sources.h"
#include "aggregator/server/config_reload.h"
#include "aggregator/store/rocksdb_store.h"
#include "common/log.h"
#include "common/metrics/metrics_server.h"
#include "common/version.h"

namespace tripline {
namespace {

// Streams still open this long after SIGTERM are cancelled; batches being written finish.
constexpr int64_t kShutdownGraceNs = 2 * kNanosPerSecond;

// --hash-password: one line from standard input (not echoed on a terminal), hashed.
int HashPasswordFromStdin() {
  const bool tty = isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::cerr << "password: " << std::flush;
  }
  std::string password;
  std::getline(std::cin, password);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << "\n";
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  auto hash = console::HashPassword(password);
  if (!hash.ok()) {
    std::cerr << "tripline-aggregator: " << hash.status().message() << "\n";
    return 1;
  }
  std::cout << *hash << "\n";
  return 0;
}

// The console's people and sessions from the configuration, and its listener.
Result<std::unique_ptr<console::ConsoleServer>> StartConsole(
    const AggregatorSettings& settings, console::ConsoleBackend backend,
    std::unique_ptr<console::ConsoleAuth>* auth) {
  const v1::ConsoleConfig& cc = settings.config.console();
  std::vector<console::ConsoleUser> users;
  for (const v1::ConsoleUser& u : cc.users()) {
    console::ConsoleUser user;
    user.name = u.name();
    user.password_hash = u.password_hash();
    if (u.role() == "approver") {
      user.role = console::ConsoleRole::kApprover;
    } else if (u.role().empty() || u.role() == "operator") {
      user.role = console::ConsoleRole::kOperator;
    } else {
      return Status::InvalidArgument("console.users: the role of '" + u.name() + "' is '" +
                                     u.role() + "', not approver or operator");
    }
    users.push_back(std::move(user));
  }
  if (users.empty()) {
    TL_LOG(WARNING) << "console: no console.users configured: nobody can sign in";
  }
  console::SessionPolicy policy;
  if (cc.session_idle_s() > 0) policy.idle_ns = int64_t{cc.session_idle_s()} * kNanosPerSecond;
  if (cc.session_max_s() > 0) policy.max_ns = int64_t{cc.session_max_s()} * kNanosPerSecond;
  TL_ASSIGN_OR_RETURN(*auth,
                      console::ConsoleAuth::Create(std::move(users), policy, &SystemClock::Get()));
  console::ConsoleOptions options;
  options.listen = *settings.console;
  options.tls_cert_file = cc.tls_cert_file();
  options.tls_key_file = cc.tls_key_file();
  return console::ConsoleServer::Start(options, backend, auth->get());
}

// Listener, credentials and the ingest limits of the configuration.
AggregatorServerOptions ServerOptionsFrom(const AggregatorSettings& settings,
                                          std::shared_ptr<grpc::ServerCredentials> credentials) {
  AggregatorServerOptions o;
  o.listen = settings.listen;
  o.credentials = std::move(credentials);
  if (settings.config.max_batch_events() > 0) {
    o.ingest.max_batch_events = settings.config.max_batch_events();
  }
  // Client certificates are verified whenever TLS is on (MakeServerCredentials).
  o.verify_clients = !settings.config.tls().cert_file().empty();
  if (settings.config.max_clock_skew_s() > 0) {
    o.ingest.max_future_skew_ns = int64_t{settings.config.max_clock_skew_s()} * kNanosPerSecond;
  }
  o.ingest.max_event_age_ns = int64_t{settings.config.max_event_age_h()} * 3600 * kNanosPerSecond;
  if (settings.config.max_streams_per_peer() > 0) {
    o.ingest.max_streams_per_peer = settings.config.max_streams_per_peer();
  }
  if (settings.config.memory_quota_mb() > 0) {
    o.memory_quota_bytes = size_t{settings.config.memory_quota_mb()} << 20;
  }
  return o;
}

// /metrics when --metrics or metrics_listen asks for it (nullptr otherwise), gathered by
// `collect` at each scrape; says `metrics on HOST:PORT` on stdout.
Result<std::unique_ptr<MetricsServer>> StartMetrics(const AggregatorSettings& settings,
                                                    std::function<std::string()> collect) {
  if (!settings.metrics) return std::unique_ptr<MetricsServer>();
  TL_ASSIGN_OR_RETURN(std::unique_ptr<MetricsServer> server,
                      MetricsServer::Start(*settings.metrics, std::move(collect)));
  std::printf("metrics on %s\n", server->address().ToString().c_str());
  return server;
}

// What detection runs with, in the single node and in workers alike: the correlator's
// settings, the declared identities and the Sigma rules.
struct Detection {
  correlate::CorrelatorOptions correlator;
  std::vector<baseline::IdentityRule> identities;
  std::shared_ptr<rules::RuleEngine> rules;  // nullptr without --rules
};

Result<Detection> DetectionFromSettings(const AggregatorSettings& settings) {
  Detection d;
  if (settings.config.hop_tolerance_ms() > 0) {
    d.correlator.hop_tolerance_ns = int64_t{settings.config.hop_tolerance_ms()} * kNanosPerMilli;
  }
  for (uint32_t port : settings.config.ssh_ports()) {
    if (port == 0 || port > 65535) {
      return Status::InvalidArgument("ssh_ports: " + std::to_string(port) + " is not a port");
    }
    d.correlator.ssh_ports.push_back(static_cast<uint16_t>(port));
  }
  TL_ASSIGN_OR_RETURN(d.identities, IdentityRulesFromConfig(settings.config));
  if (!settings.config.rules_dir().empty()) {
    d.rules = std::make_shared<rules::RuleEngine>(settings.config.rules_dir());
    if (Status s = d.rules->Reload(); !s.ok()) {
      return Status::InvalidArgument("--rules: " + s.message());
    }
    size_t counts[3] = {0, 0, 0};
    for (const rules::RuleInfo& r : d.rules->Rules()) {
      ++counts[static_cast<int>(r.state)];
      if (r.state == rules::RuleState::kBroken) {
        TL_LOG(WARNING) << "rule " << r.file << ":" << r.line << " skipped: " << r.reason;
      }
    }
    TL_LOG(INFO) << "Sigma rules from " << settings.config.rules_dir() << ": " << counts[0]
                 << " loaded, " << counts[1] << " unsupported, " << counts[2] << " broken";
  }
  return d;
}

// --ingest-node: the ingest service alone, writing sensors' batches to the NATS JetStream
// cluster (docs/scale-out.md). Exit codes as for the single node.
int RunIngestNode(const AggregatorSettings& settings,
                  std::shared_ptr<grpc::ServerCredentials> credentials,
                  const sigset_t& stop_signals) {
  const v1::ClusterConfig& cc = settings.config.cluster();
  cluster::ClusterOptions co;
  co.servers.assign(cc.servers().begin(), cc.servers().end());
  co.name = "tripline-ingest " + settings.listen.ToString();
  const int replicas = cc.replicas() > 0 ? static_cast<int>(cc.replicas()) : 3;
  auto js = cluster::JetStream::Connect(co);
  Status ready = js.status();
  if (ready.ok()) ready = (*js)->EnsureStream(cluster::EventsStreamSpec(replicas));
  auto sensors = ready.ok() ? (*js)->Bucket(cluster::kSensorsBucket, replicas)
                            : Result<std::unique_ptr<cluster::KeyValue>>(ready);
  auto addresses = sensors.ok() ? (*js)->Bucket(cluster::kAddressesBucket, replicas)
                                : Result<std::unique_ptr<cluster::KeyValue>>(sensors.status());
  if (!addresses.ok()) {
    std::cerr << "tripline-aggregator: " << addresses.status().ToString() << "\n";
    return 1;
  }
  // The hosts' addresses the cluster knows, before the first batch is routed.
  cluster::AddressBook book(addresses->get());
  if (!book.WaitLoaded(10'000)) {
    TL_LOG(WARNING) << "address book: the cluster's addresses did not all come within 10 s; "
                       "connections to those not yet known go with their source host";
  }
  cluster::StreamSinkOptions sink_options;
  if (cc.partitions() > 0) sink_options.partitions = cc.partitions();
  sink_options.addresses = &book;
  cluster::StreamSink sink(js->get(), sensors->get(), sink_options);
  auto server =
      AggregatorServer::StartIngest(ServerOptionsFrom(settings, std::move(credentials)), &sink);
  if (!server.ok()) {
    std::cerr << "tripline-aggregator: " << server.status().message() << "\n";
    return 1;
  }
  std::printf("listening on %s\n", (*server)->address().ToString().c_str());
  // /metrics: the ingest service's counters, its sensors, the address book's writes.
  IngestService* ingest = &(*server)->ingest();
  auto metrics_server = StartMetrics(settings, [ingest, &book] {
    MetricsText m;
    cluster::AppendIngestNodeMetrics(*ingest, book.stats(), SystemClock::Get().NowNs(), &m);
    return m.Take();
  });
  if (!metrics_server.ok()) {
    std::cerr << "tripline-aggregator: " << metrics_server.status().message() << "\n";
    (*server)->Shutdown(0);
    return 1;
  }
  std::fflush(stdout);
  TL_LOG(INFO) << "ingest node on " << (*server)->address().ToString() << ": events to stream "
               << cluster::kEventsStream << " over " << sink_options.partitions << " partitions, "
               << replicas << " replicas, at " << cc.servers(0);
  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGHUP) break;
    TL_LOG(INFO) << "SIGHUP: an ingest node has nothing to reload; restart it to change it";
  }
  TL_LOG(INFO) << "signal " << sig << ": stopping";
  metrics_server->reset();
  (*server)->Shutdown(kShutdownGraceNs);
  server->reset();
  TL_LOG(INFO) << "stopped cleanly";
  return 0;
}

// A worker of the scaled-out mode: partitions of the events stream correlated here, their
// events and incidents in --data-dir, queries over them on --listen.
int RunWorker(const AggregatorSettings& settings,
              std::shared_ptr<grpc::ServerCredentials> credentials, const sigset_t& stop_signals) {
  const v1::ClusterConfig& cc = settings.config.cluster();
  auto detection = DetectionFromSettings(settings);
  if (!detection.ok()) {
    std::cerr << "tripline-aggregator: " << detection.status().message() << "\n";
    return 2;
  }
  cluster::WorkerOptions wo;
  if (!cc.name().empty()) {
    wo.name = cc.name();
  } else {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0 && cluster::ValidLeaseName(host)) {
      wo.name = host;
    }
  }
  if (cc.partitions() > 0) wo.partitions = cc.partitions();
  wo.replicas = cc.replicas() > 0 ? static_cast<int>(cc.replicas()) : 3;
  wo.correlator = std::move(detection->correlator);
  wo.identities = std::move(detection->identities);
  wo.rules = std::move(detection->rules);

  RocksDbStoreOptions store_options;
  store_options.path = settings.config.data_dir();
  store_options.sync_writes = settings.sync_writes;
  store_options.retention_ns = settings.retention_ns;
  auto store = RocksDbStore::Open(store_options);
  if (!store.ok()) {
    std::cerr << "tripline-aggregator: " << store.status().ToString() << "\n";
    return 1;
  }
  cluster::ClusterOptions co;
  co.servers.assign(cc.servers().begin(), cc.servers().end());
  co.name = "tripline-worker " + wo.name;
  auto js = cluster::JetStream::Connect(co);
  Status ready = js.status();
  if (ready.ok()) ready = (*js)->EnsureStream(cluster::EventsStreamSpec(wo.replicas));
  if (!ready.ok()) {
    std::cerr << "tripline-aggregator: " << ready.ToString() << "\n";
    return 1;
  }
  auto worker = cluster::Worker::Start(js->get(), store->get(), std::move(wo));
  if (!worker.ok()) {
    std::cerr << "tripline-aggregator: " << worker.status().ToString() << "\n";
    return 1;
  }
  auto server = AggregatorServer::StartQuery(ServerOptionsFrom(settings, std::move(credentials)),
                                             store->get());
  if (!server.ok()) {
    std::cerr << "tripline-aggregator: " << server.status().message() << "\n";
    return 1;
  }
  std::printf("worker %s\nlistening on %s\n", (*worker)->owner().c_str(),
              (*server)->address().ToString().c_str());
  // /metrics: the store's families as the single node's, then the worker's.
  AggregatorMetrics metrics(&(*server)->query(), store->get(), store->get(), SystemClock::Get());
  cluster::Worker* w = worker->get();
  auto metrics_server = StartMetrics(settings, [&metrics, w] {
    MetricsText m;
    cluster::AppendWorkerMetrics(w->stats(), w->partition_status(), &m);
    return metrics.Collect() + m.Take();
  });
  if (!metrics_server.ok()) {
    std::cerr << "tripline-aggregator: " << metrics_server.status().message() << "\n";
    (*worker)->Stop();
    (*server)->Shutdown(0);
    return 1;
  }
  std::fflush(stdout);
  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGHUP) break;
    TL_LOG(INFO) << "SIGHUP: a worker has nothing to reload; restart it to change it";
  }
  TL_LOG(INFO) << "signal " << sig << ": handing the partitions over";
  metrics_server->reset();
  (*worker)->Stop();  // snapshots, acknowledges and releases every partition
  const cluster::WorkerStats ws = (*worker)->stats();
  TL_LOG(INFO) << "worker fed " << ws.events_fed << " events of " << ws.messages << " messages; "
               << ws.snapshots << " snapshots";
  worker->reset();
  (*server)->Shutdown(kShutdownGraceNs);
  server->reset();
  TL_LOG(INFO) << "stopped cleanly";
  return 0;
}

int Run(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("tripline-aggregator %s\n", TRIPLINE_VERSION);
    return 0;
  }
  // Block the stop signals before any thread exists (RocksDB and gRPC start threads), so
  // that only the sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // reload (config_reload.h)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::vector<std::string> args(argv + 1, argv + argc);
  auto settings = ParseAggregatorArgs(args);
  if (!settings.ok()) {
    std::cerr << "tripline-aggregator: " << settings.status().message() << "\n\n"
              << AggregatorUsage();
    return 2;
  }
  if (settings->help) {
    std::cout << AggregatorUsage();
    return 0;
  }
  if (settings->hash_password) return HashPasswordFromStdin();
  if (!settings->make_order_key.empty()) {
    auto pub = response::WriteNewOrderKeyFile(settings->make_order_key);
    if (!pub.ok()) {
      std::cerr << "tripline-aggregator: " << pub.status().message() << "\n";
      return 1;
    }
    std::cout << "order key written to " << settings->make_order_key << "\n"
              << "order_public_key: \"" << *pub << "\"\n";
    return 0;
  }
  SetLogLevel(settings->log_level);
  auto credentials = MakeServerCredentials(*settings);
  if (!credentials.ok()) {
    std::cerr << "tripline-aggregator: " << credentials.status().message() << "\n";
    return 2;
  }
  if (settings->config.insecure() && settings->config.tls().cert_file().empty() &&
      !settings->listen.IsLoopback()) {
    TL_LOG(WARNING) << "listening on " << settings->listen.ToString()
                    << " without TLS (--insecure): events, queries and acknowledgements travel "
                       "in clear text, and anyone on the path can read or forge them";
  }
  if (settings->ingest_node) return RunIngestNode(*settings, *credentials, stop_signals);
  if (settings->worker) return RunWorker(*settings, *credentials, stop_signals);
  RocksDbStoreOptions store_options;
  store_options.path = settings->config.data_dir();
  store_options.sync_writes = settings->sync_writes;
  store_options.retention_ns = settings->retention_ns;
  auto store = RocksDbStore::Open(store_options);
  if (!store.ok()) {
    std::cerr << "tripline-aggregator: " << store.status().ToString() << "\n";
    return 1;
  }

  // SIEM outputs: their persistent outbox is the store's outbox column family. Replaced
  // on reload (config_reload.h).
  forward::ForwardOutputs outputs((*store)->db(), (*store)->column_family("outbox"),
                                  SystemClock::Get());
  {
    const forward::ForwarderOptions forward_options = ForwarderOptionsFromSettings(*settings);
    Status started = forward::ForwardOutputs::Check(settings->forwards, forward_options);
    if (started.ok()) started = outputs.Start(settings->forwards, forward_options);
    if (!started.ok()) {
      std::cerr << "tripline-aggregator: " << started.ToString() << "\n";
      return 2;
    }
  }

  CorrelationEngineOptions engine_options;
  engine_options.before_store_incident = [&outputs](const v1::Incident& incident) {
    (void)outputs.Offer(incident);
  };
  auto detection = DetectionFromSettings(*settings);
  if (!detection.ok()) {
    std::cerr << "tripline-aggregator: " << detection.status().message() << "\n";
    return 2;
  }
  engine_options.correlator = std::move(detection->correlator);
  // The audit judges declared accounts by their declared kind (the checked rules).
  audit::AuditPolicy audit_policy;
  audit_policy.declared = DeclaredKinds(detection->identities);
  audit_policy.processes = DeclaredProcesses(detection->identities);
  engine_options.identities = std::move(detection->identities);
  engine_options.rules = std::move(detection->rules);
  auto engine = CorrelationEngine::Open(store->get(), engine_options, SystemClock::Get());
  if (!engine.ok()) {
    std::cerr << "tripline-aggregator: " << engine.status().ToString() << "\n";
    return 1;
  }

  AggregatorServerOptions server_options = ServerOptionsFrom(*settings, *credentials);
  server_options.baselines = engine->get();
  server_options.extend_stats = [&outputs](v1::Stats* out) { outputs.AddStats(out); };
  server_options.rules = engine_options.rules;
  // Posture snapshots are audited on their way to the correlation engine.
  audit::FindingLedger findings((*store)->db(), (*store)->column_family("posture"));
  auto drift = audit::DriftBook::Open((*store)->db(), (*store)->column_family("posture"));
  if (!drift.ok()) {
    std::cerr << "tripline-aggregator: " << drift.status().ToString() << "\n";
    return 1;
  }
  (*drift)->SetWatchPeriod(audit_policy.drift_min_period_ns);
  (*engine)->AttachDrift(drift->get());
  audit::PostureAuditor auditor(&findings, std::move(audit_policy), engine->get(), drift->get());
  server_options.audit = &auditor;
  // The response workflow: actions proposed by incidents and people, decided by people.
  const v1::ResponseConfig& rc = settings->config.response();
  response::ResponsePolicy policy;
  auto approvers = ApproversFromConfig(settings->config);
  if (!approvers.ok()) {
    std::cerr << "tripline-aggregator: " << approvers.status().message() << "\n";
    return 2;
  }
  policy.approvers = std::move(*approvers);
  if (rc.proposal_ttl_s() > 0) policy.proposal_ttl_ns = rc.proposal_ttl_s() * kNanosPerSecond;
  if (rc.approval_ttl_s() > 0) policy.approval_ttl_ns = rc.approval_ttl_s() * kNanosPerSecond;
  if (rc.action_ttl_s() > 0) policy.action_ttl_ns = rc.action_ttl_s() * kNanosPerSecond;
  if (rc.propose_min_severity() == "off") {
    policy.propose_min_severity = 0;
  } else if (!rc.propose_min_severity().empty()) {
    Severity s;
    if (!ParseSeverityName(rc.propose_min_severity(), &s)) {
      std::cerr << "tripline-aggregator: response.propose_min_severity: '"
                << rc.propose_min_severity()
                << "' is not info, low, medium, high, critical or off\n";
      return 2;
    }
    policy.propose_min_severity = static_cast<int>(s);
  }
  response::ActionBook actions((*store)->db(), (*store)->column_family("actions"),
                               std::move(policy));
  AccessControl response_access(server_options.verify_clients);
  // Approved actions travel to their host's sensor as orders signed with this key.
  std::optional<sensor::OrderSecretKey> order_key;
  if (!rc.order_key_file().empty()) {
    auto key = response::ReadOrderKeyFile(rc.order_key_file());
    if (!key.ok()) {
      std::cerr << "tripline-aggregator: response.order_key_file: " << key.status().message()
                << "\n";
      return 2;
    }
    order_key = *key;
  } else {
    TL_LOG(WARNING) << "no response.order_key_file: approved actions are recorded, but no "
                       "order can be sent to a sensor";
  }
  response::OrdersService orders_service(&actions, order_key, &response_access);
  response::ResponseService response_service(&actions, store->get(), &response_access,
                                             &orders_service);
  server_options.services.push_back(&response_service);
  server_options.services.push_back(&orders_service);
  // The audit trail (response steps, agents' trust decisions) to the SIEM outputs.
  ResponseTrailSource trail_source(&actions);
  TrustDecisionSource trust_source(engine->get());
  auto audit_feed = std::make_unique<forward::AuditFeed>(
      &outputs, std::vector<forward::AuditSource*>{&trail_source, &trust_source});
  if (Status s = audit_feed->Start(); !s.ok()) {
    std::cerr << "tripline-aggregator: " << s.ToString() << "\n";
    return 1;
  }
  actions.SetTrailListener([feed = audit_feed.get()] { feed->Notify(); });
  (*engine)->SetTrustListener([feed = audit_feed.get()] { feed->Notify(); });
  auto server = AggregatorServer::Start(server_options, store->get(), &auditor);
  if (!server.ok()) {
    std::cerr << "tripline-aggregator: " << server.status().message() << "\n";
    return 1;
  }
  std::printf("listening on %s\n", (*server)->address().ToString().c_str());
  // /metrics (off unless --metrics or metrics_listen), gathered at each scrape.
  AggregatorMetrics metrics(&(*server)->query(), store->get(), store->get(), SystemClock::Get());
  auto metrics_server = StartMetrics(*settings, [&metrics] { return metrics.Collect(); });
  if (!metrics_server.ok()) {
    std::cerr << "tripline-aggregator: " << metrics_server.status().message() << "\n";
    (*server)->Shutdown(0);
    return 1;
  }
  // The analyst console (off unless --console or console.listen).
  std::unique_ptr<console::ConsoleAuth> console_auth;
  std::unique_ptr<console::ConsoleServer> console_server;
  if (settings->console) {
    auto started =
        StartConsole(*settings, {&(*server)->query(), &response_service, &auditor}, &console_auth);
    if (!started.ok()) {
      std::cerr << "tripline-aggregator: " << started.status().message() << "\n";
      (*server)->Shutdown(0);
      // A listener that cannot be bound is 1, as for the gRPC one; a bad configuration 2.
      return started.status().code() == Status::Code::kUnavailable ? 1 : 2;
    }
    console_server = std::move(*started);
    std::printf("console on %s://%s\n", console_server->tls() ? "https" : "http",
                console_server->address().ToString().c_str());
  }
  std::fflush(stdout);
  TL_LOG(INFO) << "serving on " << (*server)->address().ToString() << ", data in "
               << store_options.path << (settings->sync_writes ? " (sync writes)" : "");

  // Expiry of correlator state and its snapshots run beside the ingest threads.
  std::mutex maintain_mu;
  std::condition_variable maintain_cv;
  bool stopping = false;
  std::thread maintainer([&] {
    pthread_setname_np(pthread_self(), "tl-maintain");
    std::unique_lock<std::mutex> lock(maintain_mu);
    uint64_t ticks = 0;
    while (!maintain_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) {
      Status s = (*engine)->Maintain();
      if (!s.ok()) TL_LOG(ERROR) << "correlator maintenance: " << s.ToString();
      // Proposals scan the incidents: every 10 s is soon enough for a person to look.
      if (++ticks % 10 == 0) {
        s = response_service.Maintain();
        if (!s.ok()) TL_LOG(ERROR) << "response maintenance: " << s.ToString();
      }
    }
  });

  AggregatorReloads reloads;
  ReloadTargets reload_targets;
  reload_targets.engine = engine->get();
  reload_targets.auditor = &auditor;
  reload_targets.rules = engine_options.rules.get();
  reload_targets.actions = &actions;
  reload_targets.outputs = &outputs;
  RegisterAggregatorReloads(reload_targets, &reloads);

  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGHUP) break;
    TL_LOG(INFO) << "SIGHUP: reloading the configuration";
    (void)ReloadAggregator(args, reloads, &*settings);  // logs what happened
  }
  {
    std::lock_guard<std::mutex> lock(maintain_mu);
    stopping = true;
  }
  maintain_cv.notify_all();
  maintainer.join();
  TL_LOG(INFO) << "signal " << sig << ": stopping";
  console_server.reset();
  metrics_server->reset();
  (*server)->Shutdown(kShutdownGraceNs);
  server->reset();
  // Every acknowledged event has been fed; the snapshot saves replaying them at next start.
  const Status snapshot = (*engine)->Snapshot();
  if (!snapshot.ok()) TL_LOG(ERROR) << "correlator snapshot: " << snapshot.ToString();
  // Nothing writes to the trail any more: the feed stops before the outputs, so that it
  // never moves a cursor past an event it did not queue (the next start queues the rest).
  actions.SetTrailListener(nullptr);
  (*engine)->SetTrustListener(nullptr);
  audit_feed.reset();
  // The engine offers nothing more (its queue is drained); what is still queued for an
  // output stays in the outbox for the next start.
  outputs.Stop();
  const Status closed = (*store)->Close();
  if (!closed.ok()) {
    std::cerr << "tripline-aggregator: " << closed.ToString() << "\n";
    return 1;
  }
  TL_LOG(INFO) << "stopped cleanly";
  return 0;
}

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) { return tripline::Run(argc, argv); }
