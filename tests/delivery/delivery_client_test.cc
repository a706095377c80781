// DeliveryClient against a real gRPC server on 127.0.0.1 and a real spool in a temp dir.
//
// The in-test Ingest service stands in for the aggregator peer: it keeps every event it
// receives, in arrival order and without removing duplicates, and acknowledges the highest
// seq it holds, as the aggregator does. A correct client never sends an event at or below
// the durable seq it was told, so every seq must arrive exactly once: a client that resent
// what was acknowledged (from seq 1 after a reconnect, say) fails these tests.
#include "sensor/delivery/delivery_client.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "model/event_proto.h"
#include "tests/support/exactly_once.h"
#include "tests/support/temp_dir.h"
#include "tripline/v1/ingest.grpc.pb.h"

namespace tripline::delivery {
namespace {

namespace fs = std::filesystem;

using ::tripline::testing::TempDir;

// What the stand-in aggregator stored; outlives server restarts.
struct Store {
  std::mutex mu;
  // sensor -> every event received, in arrival order, duplicates kept (seq set).
  std::map<std::string, std::vector<Event>> events;
  std::map<std::string, uint64_t> durable;  // sensor -> highest seq received
  uint64_t hellos = 0;
  // Returns a non-empty error to reject a batch.
  std::function<std::string(const v1::EventBatch&)> reject;

  uint64_t Durable(const std::string& sensor) {
    auto it = durable.find(sensor);
    return it == durable.end() ? 0 : it->second;
  }
  size_t Count(const std::string& sensor) {
    std::lock_guard<std::mutex> lock(mu);
    return events[sensor].size();
  }
  // The events received under `seq`, in arrival order.
  std::vector<Event> At(const std::string& sensor, uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<Event> out;
    for (const Event& e : events[sensor]) {
      if (e.seq == seq) out.push_back(e);
    }
    return out;
  }
};

class IngestService final : public v1::Ingest::Service {
 public:
  explicit IngestService(Store* store) : store_(store) {}

  grpc::Status Stream(grpc::ServerContext*,
                      grpc::ServerReaderWriter<v1::IngestAck, v1::IngestRequest>* stream) override {
    v1::IngestRequest req;
    if (!stream->Read(&req) || !req.has_hello()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello first");
    }
    const std::string sensor = req.hello().sensor_id();
    v1::IngestAck ack;
    {
      std::lock_guard<std::mutex> lock(store_->mu);
      ++store_->hellos;
      ack.set_durable_seq(store_->Durable(sensor));
    }
    if (!stream->Write(ack)) return grpc::Status::OK;
    while (stream->Read(&req)) {
      if (!req.has_batch()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "batch");
      const v1::EventBatch& batch = req.batch();
      ack.Clear();
      std::lock_guard<std::mutex> lock(store_->mu);
      std::string error = store_->reject ? store_->reject(batch) : "";
      if (!error.empty()) {
        ack.set_error(error);
        ack.set_rejected_first_seq(batch.first_seq());
      } else {
        for (int i = 0; i < batch.events_size(); ++i) {
          auto ev = FromProto(batch.events(i));
          if (!ev.ok() || batch.events(i).seq() != batch.first_seq() + i) {
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad event");
          }
          ev->seq = batch.first_seq() + i;
          store_->durable[sensor] = std::max(store_->Durable(sensor), ev->seq);
          store_->events[sensor].push_back(std::move(*ev));
        }
      }
      ack.set_durable_seq(store_->Durable(sensor));
      if (!stream->Write(ack)) break;
    }
    return grpc::Status::OK;
  }

 private:
  Store* store_;
};

class TestServer {
 public:
  explicit TestServer(Store* store) : service_(store) {}
  ~TestServer() { Stop(); }
  // Port 0 picks one; a given port is reused after a restart.
  bool Start(int port = 0) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    return server_ != nullptr && port_ != 0;
  }
  void Stop() {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      server_->Wait();
      server_.reset();
    }
  }
  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  IngestService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A free port for a server that is not up yet.
int ReservePort(Store* store) {
  TestServer probe(store);
  EXPECT_TRUE(probe.Start());
  return probe.port();
}

Event MakeEvent(EventKind kind, uint64_t i) {
  Event e;
  e.time_ns = 1'700'000'000'000'000'000LL + static_cast<int64_t>(i);
  e.host = "host-a";
  e.host_id = "hid-a";
  e.process.pid = static_cast<uint32_t>(1000 + i % 50000);
  e.process.comm = "test";
  switch (kind) {
    case EventKind::kLogin: {
      LoginEvent l;
      l.service = "sshd";
      l.user = "user" + std::to_string(i);
      l.outcome = Outcome::kFailure;
      e.body = l;
      break;
    }
    case EventKind::kNet: {
      NetConnectEvent n;
      n.direction = NetDirection::kOutbound;
      n.remote_addr = "198.18.0.2";
      n.remote_port = 22;
      e.body = n;
      break;
    }
    default: {
      ExecEvent x;
      x.filename = "/usr/bin/cmd" + std::to_string(i);
      x.argv = {"cmd", "--index", std::to_string(i), std::string(60, 'a')};
      e.body = x;
    }
  }
  return e;
}

DeliveryOptions Options(const std::string& target, const std::string& dir) {
  DeliveryOptions o;
  o.target = target;
  o.spool.dir = dir;
  o.host = "host-a";
  o.host_id = "hid-a";
  o.version = "test";
  o.backoff_initial_ms = 20;
  o.backoff_max_ms = 200;
  o.batch_max_delay_ms = 10;
  return o;
}

int64_t In(int64_t seconds) { return SystemClock::Get().MonotonicNs() + seconds * kNanosPerSecond; }

// Polls until pred() or the deadline; never a fixed sleep.
bool WaitFor(const std::function<bool()>& pred, int64_t seconds) {
  const int64_t deadline = In(seconds);
  while (SystemClock::Get().MonotonicNs() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

std::unique_ptr<DeliveryClient> MakeClient(const DeliveryOptions& o) {
  auto c = DeliveryClient::Create(o, SystemClock::Get());
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// The stand-in received exactly the events of `sent` that carry a seq, each once: event
// sent[k] under the seq (k + 1) it was numbered with, unless `seqs` says otherwise
// (evictions leave gaps). Compared by (sensor, seq) and by content (time and kind).
void ExpectExactlyOnce(Store& store, const std::string& sensor, const std::vector<Event>& sent,
                       std::map<uint64_t, size_t> seqs = {}) {
  if (seqs.empty()) {
    for (size_t k = 0; k < sent.size(); ++k) seqs[k + 1] = k;
  }
  std::lock_guard<std::mutex> lock(store.mu);
  std::vector<::tripline::testing::SensorSeq> got;
  std::set<::tripline::testing::SensorSeq> want;
  for (const auto& [seq, k] : seqs) want.emplace(sensor, seq);
  size_t mismatched = 0;
  for (const auto& [name, events] : store.events) {
    for (const Event& e : events) {
      got.emplace_back(name, e.seq);
      const auto it = seqs.find(e.seq);
      if (name != sensor || it == seqs.end()) continue;
      const Event& expected = sent[it->second];
      if ((e.time_ns != expected.time_ns || e.kind() != expected.kind()) && ++mismatched <= 5) {
        ADD_FAILURE() << "seq " << e.seq << " carries another event than the one submitted";
      }
    }
  }
  EXPECT_TRUE(::tripline::testing::StoredExactlyOnce(got, want));
  EXPECT_EQ(mismatched, 0u);
}

// A TCP relay on 127.0.0.1 that holds every chunk it relays, in both directions, for
// `delay` before passing it on: a slow link (a long round trip) between sensor and
// aggregator. Counts the connections it accepted.
class SlowLink {
 public:
  SlowLink(int target_port, std::chrono::milliseconds delay)
      : target_port_(target_port), delay_(delay) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        listen(listen_fd_, 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "slow link cannot listen";
      return;
    }
    port_ = ntohs(a.sin_port);
    threads_.emplace_back([this] { AcceptLoop(); });
  }
  ~SlowLink() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    close(listen_fd_);
    for (int fd : fds_) close(fd);
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int in = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (in < 0) continue;
      const int out = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (connect(out, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(in);
        close(out);
        continue;
      }
      ++accepted_;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(in);
      fds_.push_back(out);
      threads_.emplace_back([this, in, out] { Pump(in, out); });
      threads_.emplace_back([this, in, out] { Pump(out, in); });
    }
  }
  void Pump(int from, int to) {
    char buf[16384];
    while (true) {
      const ssize_t n = read(from, buf, sizeof buf);
      if (n <= 0) break;
      std::this_thread::sleep_for(delay_);
      if (send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    shutdown(to, SHUT_WR);
  }

  const int target_port_;
  const std::chrono::milliseconds delay_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<int> fds_;              // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;  // the accept loop's own, and its pumps
};

TEST(DeliveryClientTest, DeliversEveryEventOnceInEffect) {
  TempDir dir;
  Store store;
  TestServer server(&store);
  ASSERT_TRUE(server.Start());
  auto client = MakeClient(Options(server.target(), dir.path()));
  constexpr uint64_t kN = 5000;
  std::vector<Event> sent;
  for (uint64_t i = 0; i < kN; ++i) {
    EventKind kind = i % 10 == 0 ? EventKind::kLogin : EventKind::kExec;
    sent.push_back(MakeEvent(kind, i));
    ASSERT_TRUE(client->Submit(sent.back()).ok());
  }
  ASSERT_TRUE(client->Flush(In(20)).ok()) << client->Stats().last_error;
  ExpectExactlyOnce(store, client->sensor_id(), sent);
  // Events arrive intact and in submission order.
  const std::vector<Event> eleventh = store.At(client->sensor_id(), 11);
  ASSERT_EQ(eleventh.size(), 1u);
  ASSERT_NE(eleventh[0].As<LoginEvent>(), nullptr);
  EXPECT_EQ(eleventh[0].As<LoginEvent>()->user, "user10");
  DeliveryStats s = client->Stats();
  EXPECT_EQ(s.submitted, kN);
  EXPECT_EQ(s.acked, kN);
  EXPECT_EQ(s.durable_seq, kN);
  EXPECT_EQ(s.spool_drops, 0u);
  EXPECT_EQ(s.in_flight_events, 0u);
  EXPECT_EQ(s.rejected_events, 0u);
  EXPECT_TRUE(s.connected);
}

// Over a link with a 300 ms delay each way the connection's first exchange (the HTTP/2
// settings, and with TLS the handshake) takes over half a second. gRPC gives one connection
// attempt only its minimum connect timeout: it must be the hello's time, not the short
// initial backoff (100 ms), or every early attempt times out and a link slower than that
// never connects at the first try (and, with TLS under load, not at all).
TEST(DeliveryClientTest, ASlowLinkConnectsAtTheFirstAttempt) {
  TempDir dir;
  Store store;
  TestServer server(&store);
  ASSERT_TRUE(server.Start());
  const int port = std::stoi(server.target().substr(server.target().rfind(':') + 1));
  SlowLink link(port, std::chrono::milliseconds(300));
  DeliveryOptions o = Options(link.target(), dir.path());
  o.backoff_initial_ms = 100;
  o.backoff_max_ms = 1000;
  auto client = MakeClient(o);
  ASSERT_TRUE(client->Submit(MakeEvent(EventKind::kLogin, 0)).ok());
  ASSERT_TRUE(client->Flush(In(20)).ok()) << client->Stats().last_error;
  EXPECT_EQ(link.accepted(), 1) << "connection attempts over the slow link";
  EXPECT_EQ(client->Stats().acked, 1u);
}

TEST(DeliveryClientTest, LoginIsSentWithoutWaitingForTheBatchDelay) {
  TempDir dir;
  Store store;
  TestServer server(&store);
  ASSERT_TRUE(server.Start());
  DeliveryOptions o = Options(server.target(), dir.path());
  o.batch_max_delay_ms = 60'000;  // bulk would wait a minute
  auto client = MakeClient(o);
  ASSERT_TRUE(client->Submit(MakeEvent(EventKind::kExec, 1)).ok());
  ASSERT_TRUE(client->Submit(MakeEvent(EventKind::kLogin, 2)).ok());
  // The login flushes the batch (and the exec before it) at once.
  ASSERT_TRUE(WaitFor([&] { return store.Count(client->sensor_id()) == 2; }, 5));
  // A lone bulk event waits for the delay.
  ASSERT_TRUE(client->Submit(MakeEvent(EventKind::kExec, 3)).ok());
  EXPECT_FALSE(WaitFor([&] { return store.Count(client->sensor_id()) == 3; }, 1));
}

TEST(DeliveryClientTest, ServerRestartMidStreamResendsFromLastAck) {
  TempDir dir;
  Store store;
  TestServer server(&store);
  ASSERT_TRUE(server.Start());
  const int port = server.port();
  auto client = MakeClient(Options(server.target(), dir.path()));
  constexpr uint64_t kN = 4000;
  std::vector<Event> sent;
  for (uint64_t i = 0; i < kN / 2; ++i) {
    sent.push_back(MakeEvent(EventKind::kExec, i));
    ASSERT_TRUE(client->Submit(sent.back()).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return store.Count(client->sensor_id()) > 0; }, 10));
  server.Stop();
  for (uint64_t i = kN / 2; i < kN; ++i) {
    sent.push_back(MakeEvent(i % 3 ? EventKind::kExec : EventKind::kNet, i));
    ASSERT_TRUE(client->Submit(sent.back()).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return client->Stats().reconnects > 0; }, 10));
  EXPECT_FALSE(client->Stats().connected);
  TestServer again(&store);
  ASSERT_TRUE(again.Start(port));
  ASSERT_TRUE(client->Flush(In(20)).ok()) << client->Stats().last_error;
  ExpectExactlyOnce(store, client->sensor_id(), sent);
  EXPECT_GE(store.hellos, 2u);
}

TEST(DeliveryClientTest, ClientRestartWhileServerDownDeliversEverythingLater) {
  TempDir dir;
  Store store;
  const int port = ReservePort(&store);
  const std::string target = "127.0.0.1:" + std::to_string(port);
  constexpr uint64_t kN = 3000;
  std::string sensor_id;
  std::vector<Event> sent;
  {
    auto client = MakeClient(Options(target, dir.path()));
    sensor_id = client->sensor_id();
    for (uint64_t i = 0; i < kN; ++i) {
      sent.push_back(MakeEvent(i % 5 ? EventKind::kExec : EventKind::kLogin, i));
      ASSERT_TRUE(client->Submit(sent.back()).ok());
    }
    EXPECT_EQ(client->Flush(In(0)).code(), Status::Code::kDeadlineExceeded);
    client->Stop();
  }
  auto client = MakeClient(Options(target, dir.path()));
  EXPECT_EQ(client->sensor_id(), sensor_id);  // persisted
  EXPECT_EQ(client->spool_recovery().records, kN);
  EXPECT_TRUE(client->spool_recovery().clean_shutdown);
  TestServer server(&store);
  ASSERT_TRUE(server.Start(port));
  ASSERT_TRUE(client->Flush(In(20)).ok()) << client->Stats().last_error;
  ExpectExactlyOnce(store, sensor_id, sent);
  // Numbering continues after the restart.
  sent.push_back(MakeEvent(EventKind::kLogin, kN));
  ASSERT_TRUE(client->Submit(sent.back()).ok());
  ASSERT_TRUE(client->Flush(In(10)).ok());
  ExpectExactlyOnce(store, sensor_id, sent);
}

TEST(DeliveryClientTest, TinySpoolStormStillDeliversEveryLogin) {
  TempDir dir;
  Store store;
  const int port = ReservePort(&store);
  DeliveryOptions o = Options("127.0.0.1:" + std::to_string(port), dir.path());
  o.spool.max_bytes = 64 * 1024;
  auto client = MakeClient(o);
  constexpr uint64_t kN = 20000;
  std::set<std::string> logins;
  std::vector<Event> sent;
  for (uint64_t i = 0; i < kN; ++i) {
    const EventKind kind = i % 200 == 0 ? EventKind::kLogin : EventKind::kExec;
    if (kind == EventKind::kLogin) logins.insert("user" + std::to_string(i));
    sent.push_back(MakeEvent(kind, i));
    ASSERT_TRUE(client->Submit(sent.back()).ok());
  }
  TestServer server(&store);
  ASSERT_TRUE(server.Start(port));
  ASSERT_TRUE(client->Flush(In(20)).ok()) << client->Stats().last_error;
  std::set<std::string> got_logins;
  uint64_t delivered = 0;
  {
    std::lock_guard<std::mutex> lock(store.mu);
    for (const Event& ev : store.events[client->sensor_id()]) {
      ++delivered;
      if (const auto* l = ev.As<LoginEvent>()) got_logins.insert(l->user);
    }
  }
  EXPECT_EQ(got_logins, logins);
  DeliveryStats s = client->Stats();
  EXPECT_GT(s.spool_drops, 0u);
  EXPECT_EQ(s.spool_drops_by_kind[static_cast<size_t>(EventKind::kLogin)], 0u);
  EXPECT_EQ(s.spool_drops, s.spool_drops_by_kind[static_cast<size_t>(EventKind::kExec)]);
  // Nothing vanished without a count.
  EXPECT_EQ(delivered + s.spool_drops, kN);
  // No event arrived twice: seq k + 1 is submission k (a refused event takes no number,
  // but none is refused here: the spool evicts old bulk to make room).
  std::map<uint64_t, size_t> kept;
  for (const Event& ev : store.events[client->sensor_id()]) kept[ev.seq] = ev.seq - 1;
  ExpectExactlyOnce(store, client->sensor_id(), sent, kept);
}

TEST(DeliveryClientTest, RejectedBatchIsCountedAndNotResent) {
  TempDir dir;
  Store store;
  store.reject = [](const v1::EventBatch& batch) -> std::string {
    for (const auto& e : batch.events()) {
      if (e.has_exec() && e.exec().filename() == "/usr/bin/cmd7") return "poisoned event";
    }
    return "";
  };
  TestServer server(&store);
  ASSERT_TRUE(server.Start());
  DeliveryOptions o = Options(server.target(), dir.path());
  auto client = MakeClient(o);
  // One event per batch around the poisoned one, so the rejected range is exact.
  for (uint64_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(client->Submit(MakeEvent(EventKind::kExec, i)).ok());
    ASSERT_TRUE(client->Flush(In(10)).ok()) << client->Stats().last_error;
  }
  DeliveryStats s = client->Stats();
  EXPECT_EQ(s.rejected_batches, 1u);
  EXPECT_EQ(s.rejected_events, 1u);
  EXPECT_NE(s.last_error.find("poisoned event"), std::string::npos);
  {
    std::lock_guard<std::mutex> lock(store.mu);
    const auto& got = store.events[client->sensor_id()];
    EXPECT_EQ(got.size(), 19u);                       // nothing was sent twice
    for (const Event& e : got) EXPECT_NE(e.seq, 8u);  // seq 8 carries cmd7
  }
  EXPECT_EQ(s.reconnects, 0u);
}

TEST(DeliveryClientTest, StopLeavesUnackedEventsInTheSpool) {
  TempDir dir;
  Store store;
  const int port = ReservePort(&store);
  auto client = MakeClient(Options("127.0.0.1:" + std::to_string(port), dir.path()));
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(client->Submit(MakeEvent(EventKind::kNet, i)).ok());
  client->Stop();
  EXPECT_EQ(client->Submit(MakeEvent(EventKind::kNet, 11)).code(), Status::Code::kAborted);
  EXPECT_EQ(client->Flush(In(1)).code(), Status::Code::kAborted);
  client.reset();
  SpoolOptions so;
  so.dir = dir.path();
  auto spool = Spool::Open(so);
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ((*spool)->recovery().records, 10u);
}

TEST(DeliveryClientTest, MissingTlsFilesFailAtCreate) {
  TempDir dir;
  DeliveryOptions o = Options("127.0.0.1:1", dir.path());
  o.tls.enabled = true;
  o.tls.ca_file = dir.path() + "/no-such-ca.pem";
  auto c = DeliveryClient::Create(o, SystemClock::Get());
  EXPECT_FALSE(c.ok());
  o.tls.ca_file.clear();
  o.tls.cert_file = dir.path() + "/cert.pem";
  EXPECT_TRUE(DeliveryClient::Create(o, SystemClock::Get()).status().IsInvalidArgument());
}

}  // namespace
}  // namespace tripline::delivery
