// A NATS JetStream cluster for tests and benchmarks: `n` real nats-server processes
// (Debian's nats-server) clustered on loopback, each with JetStream and its own store
// directory in a temporary directory. Ended (SIGKILL, by pid) and removed with the object.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/aggregator/subprocess.h"
#include "tests/support/temp_dir.h"

namespace tripline::testing {

inline constexpr const char* kNatsServer = "/usr/sbin/nats-server";

class NatsCluster {
 public:
  explicit NatsCluster(int n = 3) : n_(n) {
    // Free ports, held open until all are picked so that none is picked twice.
    std::vector<int> socks;
    for (int i = 0; i < 2 * n; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        for (int s : socks) ::close(s);
        if (fd >= 0) ::close(fd);
        return;  // not started: started() is false
      }
      socks.push_back(fd);
      (i < n ? client_ports_ : cluster_ports_).push_back(ntohs(a.sin_port));
    }
    for (int fd : socks) ::close(fd);
    servers_.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) Start(i);
  }
  ~NatsCluster() {
    for (auto& s : servers_) s.reset();  // SIGKILL and reap
  }
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  static bool Installed() { return std::filesystem::exists(kNatsServer); }
  bool started() const { return !servers_.empty(); }
  int size() const { return n_; }
  // nats://127.0.0.1:PORT of every server, or of server i.
  std::vector<std::string> urls() const {
    std::vector<std::string> u;
    for (int i = 0; i < n_; ++i) u.push_back(url(i));
    return u;
  }
  // The same, comma-separated: what --ingest-node and --worker take.
  std::string url_list() const {
    std::string out;
    for (const std::string& u : urls()) out += (out.empty() ? "" : ",") + u;
    return out;
  }
  std::string url(int i) const {
    return "nats://127.0.0.1:" + std::to_string(client_ports_[static_cast<size_t>(i)]);
  }
  // Waits until every running server accepts clients.
  bool WaitReady(int timeout_ms = 15000) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (int i = 0; i < n_; ++i) {
      if (!servers_[static_cast<size_t>(i)]) continue;
      while (!Accepts(client_ports_[static_cast<size_t>(i)])) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return true;
  }
  // kill -9 of server i (its pid), reaped.
  void Kill(int i) {
    auto& s = servers_[static_cast<size_t>(i)];
    if (!s) return;
    s->Signal(SIGKILL);
    (void)s->Wait(5000);
    s.reset();
  }
  // Starts server i again on its ports and store.
  void Start(int i) {
    const std::string dir = dir_.Sub("s" + std::to_string(i));
    std::filesystem::create_directories(dir);
    std::string routes;
    for (int j = 0; j < n_; ++j) {
      if (j == i) continue;
      if (!routes.empty()) routes += ",";
      routes += "nats://127.0.0.1:" + std::to_string(cluster_ports_[static_cast<size_t>(j)]);
    }
    servers_[static_cast<size_t>(i)] = std::make_unique<Child>(
        std::vector<std::string>{
            kNatsServer, "-a", "127.0.0.1", "-p",
            std::to_string(client_ports_[static_cast<size_t>(i)]), "-n", "s" + std::to_string(i),
            "-js", "-sd", dir, "--cluster_name", "tripline-test", "--cluster",
            "nats://127.0.0.1:" + std::to_string(cluster_ports_[static_cast<size_t>(i)]),
            "--routes", routes},
        dir + ".log");
  }
  pid_t pid(int i) const {
    const auto& s = servers_[static_cast<size_t>(i)];
    return s ? s->pid() : -1;
  }
  std::string Log(int i) const { return ReadWholeFile(dir_.Sub("s" + std::to_string(i)) + ".log"); }

 private:
  static bool Accepts(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }

  int n_;
  TempDir dir_;
  std::vector<int> client_ports_;
  std::vector<int> cluster_ports_;
  std::vector<std::unique_ptr<Child>> servers_;
};

}  // namespace tripline::testing
