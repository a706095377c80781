// Forwarding throughput and what it costs the path that stores incidents.
//
//   forward_bench [--incidents 20000]
//
// 1. Formatting alone, one thread: incidents/s per format (the seed story's incident, two
//    hops and a dozen pieces of evidence).
// 2. Delivery end to end through Forwarder, per output: N distinct incidents are offered
//    (queued in the outbox on a real RocksDB) and the clock stops when the output's backlog
//    is empty. Receivers on loopback: a file; a TCP reader that discards what it reads
//    (syslog+tcp); an HTTP server answering success (HEC, _bulk, webhook).
// 3. The cost on the correlator thread, which is where forwarding touches ingest: the
//    microseconds per incident revision of Offer() (outbox write for every output) beside
//    those of storing the revision (PutIncident), with 1 and 3 outputs, one of them dead.
//    Ingest acknowledgements never wait for correlation (CorrelationEngine), so this is
//    what forwarding takes from correlation, not from the acks.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "aggregator/forward/forwarder.h"
#include "aggregator/forward/incident_formats.h"
#include "aggregator/query/query_service.h"
#include "aggregator/store/rocksdb_store.h"
#include "bench/aggregator/bench_support.h"
#include "model/incident_proto.h"
#include "tests/forward/forward_test_support.h"
#include "tests/forward/test_http_server.h"
#include "tests/support/temp_dir.h"

namespace tripline::forward {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

Incident BigStory(int n) {
  Incident i = testing::StoryIncident();
  char id[40];
  std::snprintf(id, sizeof(id), "inc-%032x", n);
  i.id = id;
  for (int k = 0; k < 10; ++k) {
    i.events.push_back({"sensor-hostb", static_cast<uint64_t>(10 + k), "hostb",
                        testing::kT0 + k * kNanosPerSecond, "exec",
                        "alice ran /usr/bin/find / -name id_rsa -type f"});
  }
  return i;
}

// Accepts one connection at a time and discards what it reads.
class DiscardServer {
 public:
  DiscardServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 4);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      char buf[1 << 16];
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        while (::recv(c, buf, sizeof(buf), 0) > 0) {
        }
        ::close(c);
      }
    });
  }
  ~DiscardServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
  std::thread thread_;
};

void FormatRates(int n) {
  const Incident incident = BigStory(1);
  struct Format {
    const char* name;
    std::function<size_t()> run;
  };
  const std::vector<Format> formats = {
      {"cef+syslog", [&] { return FrameOctetCounting(FormatSyslog(incident, "agg")).size(); }},
      {"ocsf", [&] { return JsonLine(ToOcsf(incident)).size(); }},
      {"ecs", [&] { return JsonLine(ToEcs(incident)).size(); }},
      {"hec", [&] { return HecEvent(incident, "agg").size(); }},
      {"elastic-bulk", [&] { return BulkIndexLines(incident, "").size(); }},
  };
  std::printf("formatting, one thread (%d incidents)\n", n);
  for (const Format& f : formats) {
    size_t bytes = 0;
    const auto start = Clock::now();
    for (int k = 0; k < n; ++k) bytes += f.run();
    const double s = Seconds(start);
    std::printf("  %-13s %9.0f incidents/s  %5zu bytes each\n", f.name, n / s, bytes / n);
  }
}

void DeliveryRates(int n) {
  DiscardServer syslog;
  tripline::testing::TestHttpServer http([](const tripline::testing::HttpRequest& r) {
    if (r.path.find("_bulk") != std::string::npos) {
      nlohmann::json items = nlohmann::json::array();
      size_t lines = 0;
      for (char c : r.body) lines += c == '\n';
      for (size_t k = 0; k < lines / 2; ++k) items.push_back({{"index", {{"status", 201}}}});
      return tripline::testing::HttpResponse{
          200, nlohmann::json{{"errors", false}, {"items", items}}.dump()};
    }
    return tripline::testing::HttpResponse{200, R"({"text":"Success","code":0})"};
  });
  tripline::testing::TempDir dir;
  const std::string h = "http://127.0.0.1:" + std::to_string(http.port());
  const std::vector<std::string> urls = {
      "file://" + dir.Sub("out.jsonl") + "?format=ocsf",
      "file://" + dir.Sub("out-ecs.jsonl") + "?format=ecs",
      "syslog+tcp://127.0.0.1:" + std::to_string(syslog.port()),
      h + "/services/collector/event?format=hec",
      h + "/tripline/_bulk?format=elastic-bulk",
      h + "/hook?format=ocsf",
  };
  std::vector<v1::Incident> wire(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) ToProto(BigStory(k), &wire[static_cast<size_t>(k)]);
  std::printf("delivery through the outbox, one output at a time (%d incidents)\n", n);
  for (size_t u = 0; u < urls.size(); ++u) {
    auto store = RocksDbStore::Open({.path = dir.Sub("data" + std::to_string(u))});
    ForwarderOptions options;
    options.sink.hostname = "agg";
    auto f = Forwarder::Start((*store)->db(), (*store)->column_family("outbox"),
                              {*ParseForwardUrl(urls[u])}, options, SystemClock::Get());
    const auto start = Clock::now();
    for (const v1::Incident& i : wire) (void)(*f)->Offer(i);
    while ((*f)->stats()[0].backlog() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double s = Seconds(start);
    const std::string kind = urls[u].substr(0, urls[u].find(':'));
    std::printf("  %-10s %-13s %9.0f incidents/s\n", kind.c_str(),
                (*ParseForwardUrl(urls[u])).format.c_str(), n / s);
  }
}

void CorrelatorCost(int n) {
  tripline::testing::TempDir dir;
  std::vector<v1::Incident> wire(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) ToProto(BigStory(k), &wire[static_cast<size_t>(k)]);
  std::printf("cost per incident revision on the correlator thread (%d revisions, best of 3)\n", n);
  for (int outputs : {0, 1, 3}) {
    double best_store = 1e9, best_offer = 1e9;
    for (int round = 0; round < 3; ++round) {
      auto store = RocksDbStore::Open(
          {.path = dir.Sub("cost" + std::to_string(outputs) + "-" + std::to_string(round))});
      std::vector<ForwardTarget> targets;
      // Dead outputs (nothing listens on ports 1-3): Offer never touches the network.
      for (int k = 0; k < outputs; ++k) {
        targets.push_back(*ParseForwardUrl("syslog+tcp://127.0.0.1:" + std::to_string(k + 1)));
      }
      std::unique_ptr<Forwarder> f;
      if (outputs > 0) {
        auto started = Forwarder::Start((*store)->db(), (*store)->column_family("outbox"), targets,
                                        ForwarderOptions(), SystemClock::Get());
        f = std::move(*started);
      }
      double offer = 0, put = 0;
      for (const v1::Incident& i : wire) {
        const auto t0 = Clock::now();
        if (f) (void)f->Offer(i);
        const auto t1 = Clock::now();
        (void)PutIncident(**store, i);
        offer += std::chrono::duration<double>(t1 - t0).count();
        put += std::chrono::duration<double>(Clock::now() - t1).count();
      }
      best_store = std::min(best_store, put * 1e6 / n);
      best_offer = std::min(best_offer, offer * 1e6 / n);
    }
    std::printf("  %d outputs: store %5.1f us + outbox %5.1f us per revision\n", outputs,
                best_store, best_offer);
  }
}

}  // namespace
}  // namespace tripline::forward

int main(int argc, char** argv) {
  const tripline::bench::Flags flags(argc, argv);
  const int n = static_cast<int>(flags.GetInt("incidents", 20000));
  tripline::forward::FormatRates(n);
  tripline::forward::DeliveryRates(n);
  tripline::forward::CorrelatorCost(n);
  return 0;
}
