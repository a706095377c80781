// tripline-sensor: loads the BPF probes, enriches what they report and streams it to the
// aggregator (or prints it as JSON lines). See sensor/config.h for the flags.
//
// Exit codes: 0 after SIGTERM/SIGINT, 1 when the sensor cannot start or its output breaks,
// 2 for bad flags or configuration.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/metrics/metrics_server.h"
#include "common/reload.h"
#include "common/version.h"
#include "sensor/bpf_probe.h"
#include "sensor/config.h"
#include "sensor/host_files.h"
#include "sensor/host_identity.h"
#include "sensor/jsonl_sink.h"
#include "sensor/sensor_daemon.h"
#ifdef TRIPLINE_HAVE_DELIVERY
#include "sensor/delivery_sink.h"
#endif

namespace tripline::sensor {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void OnStopSignal(int /*sig*/) { g_stop.store(true); }
void OnReloadSignal(int /*sig*/) { g_reload.store(true); }

// What the sensor re-reads on SIGHUP (common/reload.h): every step checks the new
// configuration first, and nothing changes unless all of them accept it.
using SensorReloads = ReloadRegistry<SensorSettings>;

// The one registration point of the sensor's reloadable parts.
void RegisterSensorReloads(SensorDaemon* daemon, SensorReloads* reloads) {
  reloads->Register("sensitive paths",
                    [daemon](const SensorSettings& s) -> Result<SensorReloads::Apply> {
                      std::vector<SensitivePath> paths = MakeProbeOptions(s, 0, 0).sensitive_paths;
                      TL_RETURN_IF_ERROR(BpfProbe::CheckSensitivePaths(paths));
                      return SensorReloads::Apply([daemon, paths = std::move(paths)]() mutable {
                        const size_t n = paths.size();
                        Status st = daemon->ReplaceSensitivePaths(std::move(paths));
                        if (st.ok()) {
                          TL_LOG(INFO) << "reload: " << n << " sensitive paths";
                        } else {
                          TL_LOG(ERROR) << "reload: sensitive-path table kept: " << st.ToString();
                        }
                      });
                    });
}

Status InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking epoll_wait returns EINTR and the loop sees the flag at once.
  for (int sig : {SIGTERM, SIGINT}) {
    if (sigaction(sig, &sa, nullptr) != 0) return Status::FromErrno(errno, "sigaction");
  }
  sa.sa_handler = OnReloadSignal;
  if (sigaction(SIGHUP, &sa, nullptr) != 0) return Status::FromErrno(errno, "sigaction");
  // A closed stdout (reader gone) must surface as a write error, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  return Status::Ok();
}

Result<uint32_t> OwnUtsNamespaceInode() {
  struct stat st {};
  if (stat("/proc/self/ns/uts", &st) != 0) {
    return Status::FromErrno(errno, "stat /proc/self/ns/uts");
  }
  return static_cast<uint32_t>(st.st_ino);
}

Result<std::unique_ptr<EventSink>> MakeSink(const SensorSettings& settings,
                                            const HostIdentity& identity) {
  if (settings.output == OutputMode::kJsonl) {
    return std::unique_ptr<EventSink>(std::make_unique<JsonlSink>(stdout));
  }
#ifdef TRIPLINE_HAVE_DELIVERY
  return MakeDeliverySink(settings, identity);
#else
  (void)identity;
  return Status::Unsupported(
      "this build has no delivery library (sensor/delivery); use --output jsonl");
#endif
}

int UsageError(const Status& status) {
  std::fprintf(stderr, "tripline-sensor: %s\n\n%s", status.message().c_str(),
               SensorUsage().c_str());
  return 2;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--version") {
    std::printf("tripline-sensor %s\n", TRIPLINE_VERSION);
    return 0;
  }
  Result<SensorFlags> flags = ParseSensorFlags(args);
  if (!flags.ok()) return UsageError(flags.status());
  if (flags->help) {
    std::fputs(SensorUsage().c_str(), stdout);
    return 0;
  }
  Result<SensorSettings> settings = ResolveSensorSettings(*flags);
  if (!settings.ok()) return UsageError(settings.status());
  SetLogLevel(settings->log_level);
  for (const std::string& w : settings->warnings) TL_LOG(WARNING) << w;

  if (Status s = InstallSignalHandlers(); !s.ok()) {
    TL_LOG(ERROR) << s.ToString();
    return 1;
  }

  RootedHostFiles host_files(settings->host_root);
  RootedHostFiles proc_files("/");
  Result<std::string> hostname = LocalHostname();
  if (!hostname.ok()) {
    TL_LOG(ERROR) << hostname.status().ToString();
    return 1;
  }
  Result<HostIdentity> identity =
      ResolveHostIdentity(settings->scope, settings->host_name, *hostname, host_files);
  if (!identity.ok()) {
    TL_LOG(ERROR) << identity.status().ToString();
    return 1;
  }
  uint32_t target_uts = 0;
  if (settings->scope == Scope::kUts) {
    Result<uint32_t> inum = OwnUtsNamespaceInode();
    if (!inum.ok()) {
      TL_LOG(ERROR) << inum.status().ToString();
      return 1;
    }
    target_uts = *inum;
  }
  TL_LOG(INFO) << "host " << identity->host << " (" << identity->host_id << "), scope "
               << (settings->scope == Scope::kUts ? "uts" : "host");

  Result<std::unique_ptr<EventSink>> sink = MakeSink(*settings, *identity);
  if (!sink.ok()) {
    TL_LOG(ERROR) << "output: " << sink.status().ToString();
    return 1;
  }

  ProbeOptions probe_options =
      MakeProbeOptions(*settings, target_uts, static_cast<uint32_t>(getpid()));
  Result<std::unique_ptr<BpfProbe>> probe = BpfProbe::Open(probe_options);
  if (!probe.ok()) {
    TL_LOG(ERROR) << "cannot load the BPF probes: " << probe.status().ToString();
    return 1;
  }
  // Disabled and degraded families were logged as errors, with the remedy, by the probe.
  std::string families;
  for (const FamilyStatus& f : (*probe)->families()) {
    families += (families.empty() ? "" : ", ") + f.name + " " + FamilyStateName(f.state);
    if (!f.hooks.empty()) families += " (" + f.hooks + ")";
  }
  TL_LOG(INFO) << "probes attached: " << families << "; " << (*probe)->sensitive_paths().size()
               << " sensitive paths, libpam "
               << ((*probe)->libpam_path().empty() ? "(none)" : (*probe)->libpam_path());

  // /metrics (off unless --metrics or metrics_listen): a snapshot the loop refreshes.
  SensorMetrics metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  if (settings->metrics) {
    auto started =
        MetricsServer::Start(*settings->metrics, [&metrics] { return metrics.Render(); });
    if (!started.ok()) {
      TL_LOG(ERROR) << started.status().ToString();
      return 1;
    }
    metrics_server = std::move(*started);
  }
  SensorDaemon daemon(*settings, *identity, std::move(*probe), host_files, proc_files,
                      SystemClock::Get(), **sink, metrics_server ? &metrics : nullptr);
  SensorReloads reloads;
  RegisterSensorReloads(&daemon, &reloads);
  daemon.OnReload(&g_reload, [&] {
    TL_LOG(INFO) << "SIGHUP: reloading the configuration";
    Result<SensorSettings> fresh = ResolveSensorSettings(*flags);
    Status s = fresh.ok() ? reloads.ReloadAll(*fresh) : fresh.status();
    if (!s.ok()) {
      TL_LOG(ERROR) << "reload failed, nothing changed: " << s.message();
    } else {
      TL_LOG(INFO) << "reload done";
    }
  });
#ifdef TRIPLINE_HAVE_DELIVERY
  // Response actions a person approved, for this host (off without order_public_key).
  std::unique_ptr<OrderClient> orders;
  if (settings->output == OutputMode::kGrpc) {
    auto started = StartOrderClient(*settings, *identity);
    if (!started.ok()) {
      TL_LOG(ERROR) << "action orders: " << started.status().ToString();
      return 1;
    }
    orders = std::move(*started);
  }
#endif
  std::fputs("sensor ready\n", stdout);
  if (metrics_server) {
    TL_LOG(INFO) << "metrics on http://" << metrics_server->address().ToString() << "/metrics";
    // With --output jsonl stdout carries events only.
    if (settings->output != OutputMode::kJsonl) {
      std::printf("metrics on %s\n", metrics_server->address().ToString().c_str());
    }
  }
  std::fflush(stdout);

  Status run = daemon.Run(g_stop);
#ifdef TRIPLINE_HAVE_DELIVERY
  if (orders) orders->Stop();
#endif
  metrics_server.reset();
  // Detach first: nothing new arrives while the sink drains.
  daemon.Detach();
  Status closed = (*sink)->Close(1500);
  if (!run.ok()) {
    TL_LOG(ERROR) << run.ToString();
    return 1;
  }
  if (!closed.ok()) {
    TL_LOG(WARNING) << "final flush: " << closed.ToString();
  }
  TL_LOG(INFO) << "stopped";
  return 0;
}

}  // namespace
}  // namespace tripline::sensor

int main(int argc, char** argv) { return tripline::sensor::Main(argc, argv); }
