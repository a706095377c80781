// Canned event streams for correlator tests and benchmarks: a few hosts, an attacker, and
// builders that fill in what sensors would (sequence numbers, sessions, processes).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "model/event.h"

namespace tripline::correlate::testing {

// An event as the aggregator hands it over: from one sensor, arriving at a clock time.
struct Delivery {
  std::string sensor;
  Event event;
  int64_t arrive_ns = 0;  // clock time of delivery; the event time when 0
};

class StoryBuilder {
 public:
  // 2026-11-25T03:41:00Z
  static constexpr int64_t kT0 = 1'795'578'060LL * kNanosPerSecond;

  static int64_t At(double seconds) {
    return kT0 + static_cast<int64_t>(seconds * static_cast<double>(kNanosPerSecond));
  }

  std::string Sensor(const std::string& host) const { return "sensor-" + host; }

  Event Base(const std::string& host, double t) {
    Event e;
    e.seq = ++seq_[host];
    e.time_ns = At(t);
    e.host = host;
    e.host_id = "mid-" + host;
    return e;
  }

  Delivery Wrap(const std::string& host, Event e) { return {Sensor(host), std::move(e), 0}; }

  // The seed story: five failed passwords for alice on hosta from 198.18.0.66, a success
  // from the same address, /etc/shadow read in that session, then ssh hosta -> hostb ->
  // hostc (at 0-71 s).
  std::vector<Delivery> SeedStory() {
    const std::string attacker = "198.18.0.66";
    std::vector<Delivery> s;
    for (int i = 0; i < 5; ++i) s.push_back(Failure("hosta", "alice", attacker, 40001 + i, i));
    s.push_back(Login("hosta", "alice", attacker, 40010, "audit:1", 7.2));
    s.push_back(
        Open("hosta", "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20));
    s.push_back(Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 30));
    s.push_back(Accept("hostb", 22, "198.18.0.11", 50001, 30.1));
    s.push_back(Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 31));
    s.push_back(Connect("hostb", "audit:5", "alice", 50002, "198.18.0.13", 22, 70));
    s.push_back(Accept("hostc", 22, "198.18.0.12", 50002, 70.1));
    s.push_back(Login("hostc", "alice", "198.18.0.12", 50002, "audit:9", 71));
    return s;
  }

  Delivery Failure(const std::string& host, const std::string& user, const std::string& addr,
                   uint32_t port, double t, LoginSource source = LoginSource::kPam) {
    Event e = Base(host, t);
    e.process.comm = "sshd";
    e.process.exe = "/usr/sbin/sshd";
    LoginEvent l;
    l.service = "sshd";
    l.user = user;
    l.remote_addr = addr;
    l.remote_port = port;
    l.local_addr = address_of(host);
    l.local_port = 22;
    l.outcome = Outcome::kFailure;
    l.source = source;
    l.stage = source == LoginSource::kUtmp ? LoginStage::kFailedRecord : LoginStage::kAuthenticate;
    l.auth_pid = 1000 + static_cast<uint32_t>(port % 1000);
    e.body = l;
    return Wrap(host, std::move(e));
  }

  // A successful SSH login at session-open; `session` is what the sensor assigns
  // ("audit:17"). local_port 0 leaves the sshd port unknown to the login.
  Delivery Login(const std::string& host, const std::string& user, const std::string& addr,
                 uint32_t port, const std::string& session, double t, uint32_t local_port = 0,
                 LoginStage stage = LoginStage::kSessionOpen) {
    Event e = Base(host, t);
    e.process.comm = "sshd";
    e.process.exe = "/usr/sbin/sshd";
    e.session = stage == LoginStage::kSessionOpen ? session : "";
    LoginEvent l;
    l.service = "sshd";
    l.user = user;
    l.remote_addr = addr;
    l.remote_port = port;
    l.local_addr = address_of(host);
    l.local_port = local_port;
    l.outcome = Outcome::kSuccess;
    l.source = LoginSource::kPam;
    l.stage = stage;
    l.auth_pid = 2000 + static_cast<uint32_t>(port % 1000);
    e.body = l;
    return Wrap(host, std::move(e));
  }

  Delivery Open(const std::string& host, const std::string& session, const std::string& user,
                uint32_t uid, const std::string& comm, const std::string& path, FileAccess access,
                double t, int32_t result = 0) {
    Event e = Process(host, session, user, uid, comm, t);
    FileOpenEvent f;
    f.path = path;
    f.access = access;
    f.result = result;
    e.body = f;
    return Wrap(host, std::move(e));
  }

  Delivery Exec(const std::string& host, const std::string& session, const std::string& user,
                uint32_t uid, const std::string& filename, double t) {
    std::string comm = filename.substr(filename.rfind('/') + 1);
    Event e = Process(host, session, user, uid, comm, t);
    ExecEvent x;
    x.filename = filename;
    x.argv = {comm};
    e.body = x;
    return Wrap(host, std::move(e));
  }

  // An outbound connect by `ssh` in `session` from host:src_port to dst_addr:dst_port.
  Delivery Connect(const std::string& host, const std::string& session, const std::string& user,
                   uint32_t src_port, const std::string& dst_addr, uint32_t dst_port, double t) {
    Event e = Process(host, session, user, 1000, "ssh", t);
    NetConnectEvent n;
    n.direction = NetDirection::kOutbound;
    n.local_addr = address_of(host);
    n.local_port = src_port;
    n.remote_addr = dst_addr;
    n.remote_port = dst_port;
    n.family = 2;
    e.body = n;
    return Wrap(host, std::move(e));
  }

  // sshd on `host` accepting a connection on `port`.
  Delivery Accept(const std::string& host, uint32_t port, const std::string& from_addr,
                  uint32_t from_port, double t) {
    Event e = Base(host, t);
    e.process.comm = "sshd";
    e.process.exe = "/usr/sbin/sshd";
    NetConnectEvent n;
    n.direction = NetDirection::kAccepted;
    n.local_addr = address_of(host);
    n.local_port = port;
    n.remote_addr = from_addr;
    n.remote_port = from_port;
    n.family = 2;
    e.body = n;
    return Wrap(host, std::move(e));
  }

  Delivery Health(const std::string& host, uint64_t ringbuf_drops, double t,
                  std::vector<HookFamilyStatus> families = {}) {
    Event e = Base(host, t);
    SensorHealth h;
    h.ringbuf_drops = ringbuf_drops;
    h.families = std::move(families);
    e.body = h;
    return Wrap(host, std::move(e));
  }

  std::string address_of(const std::string& host) const {
    auto it = addresses_.find(host);
    return it == addresses_.end() ? "" : it->second;
  }
  void SetAddress(const std::string& host, const std::string& addr) { addresses_[host] = addr; }

 private:
  Event Process(const std::string& host, const std::string& session, const std::string& user,
                uint32_t uid, const std::string& comm, double t) {
    Event e = Base(host, t);
    e.session = session;
    e.process.pid = e.process.tgid = 5000 + static_cast<uint32_t>(e.seq);
    e.process.uid = uid;
    e.process.user = uid == 0 ? "root" : user;
    e.process.login_user = user;
    e.process.comm = comm;
    e.process.exe = "/usr/bin/" + comm;
    return e;
  }

  std::map<std::string, uint64_t> seq_;
  std::map<std::string, std::string> addresses_ = {{"hosta", "198.18.0.11"},
                                                   {"hostb", "198.18.0.12"},
                                                   {"hostc", "198.18.0.13"},
                                                   {"hostd", "198.18.0.14"}};
};

}  // namespace tripline::correlate::testing
