#include "tools/eval/fleet_sim.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "common/clock.h"

namespace tripline::eval {
namespace {

constexpr int64_t kSecond = kNanosPerSecond;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(SplitMix(seed)) {}
  // Uniform in [lo, hi].
  int64_t Int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(g_); }
  double Real() { return std::uniform_real_distribution<double>(0, 1)(g_); }
  bool Chance(double p) { return Real() < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Int(0, static_cast<int64_t>(v.size()) - 1))];
  }

 private:
  std::mt19937_64 g_;
};

struct Person {
  std::string name;
  uint32_t uid = 0;
  int start_hour = 9, end_hour = 17;
  std::vector<std::string> nets;  // "100.64.3" (a /24 without the last octet)
  std::vector<std::string> hosts;
  bool admin = false;
};

struct Scheduled {
  std::string name;
  uint32_t uid = 0;
  std::string from;  // host
  std::vector<std::string> targets;
  int64_t period_ns = kHour;
  int64_t offset_ns = 0;
  std::string command;
  bool agent = false;
};

// What an event is part of, for the labels.
struct Tag {
  int compromise = -1;  // id, or -1
  int benign = 0;       // 1: the session-open of a benign session
};

struct Raw {
  std::string host;
  Event event;
  Tag tag;
  size_t order = 0;
};

class Builder {
 public:
  std::string Ip(const std::string& host) const { return ips_.at(host); }
  void AddHost(const std::string& host, const std::string& ip) {
    ips_[host] = ip;
    hosts_.push_back(host);
  }
  const std::vector<std::string>& hosts() const { return hosts_; }

  // A successful SSH login (after `failures` wrong passwords) on `host` as `user` from
  // addr:port at `t`. Returns the session the sensor gives it.
  std::string Login(const std::string& host, const std::string& user, const std::string& addr,
                    uint32_t port, int64_t t, int failures, bool key, Tag tag) {
    const uint32_t pid = NextPid(host);
    const int64_t start = t - failures * 4 * kSecond - kSecond;
    {
      Event e = Sshd(host, pid, start);
      NetConnectEvent n;
      n.direction = NetDirection::kAccepted;
      n.local_addr = Ip(host);
      n.local_port = 22;
      n.remote_addr = addr;
      n.remote_port = port;
      n.family = 2;
      e.body = n;
      Add(host, std::move(e), Tag{tag.compromise, 0});
    }
    for (int i = 0; i < failures; ++i) {
      Event e = Sshd(host, pid, start + kSecond + i * 4 * kSecond);
      LoginEvent l = LoginBody(host, user, addr, port, pid);
      l.outcome = Outcome::kFailure;
      l.stage = LoginStage::kAuthenticate;
      l.reason = "authentication failure";
      l.pam_code = 7;
      e.body = l;
      Add(host, std::move(e), Tag{tag.compromise, 0});
    }
    {
      Event e = Sshd(host, pid, t);
      LoginEvent l = LoginBody(host, user, addr, port, pid);
      l.outcome = Outcome::kSuccess;
      l.stage = key ? LoginStage::kAccount : LoginStage::kAuthenticate;
      e.body = l;
      Add(host, std::move(e), Tag{tag.compromise, 0});
    }
    const std::string session = "audit:" + std::to_string(++sessions_[host]);
    Event e = Sshd(host, pid, t + 50'000'000);
    e.session = session;
    LoginEvent l = LoginBody(host, user, addr, port, pid);
    l.outcome = Outcome::kSuccess;
    l.stage = LoginStage::kSessionOpen;
    e.body = l;
    Add(host, std::move(e), tag);
    last_login_pid_ = pid;
    return session;
  }

  void Close(const std::string& host, const std::string& user, const std::string& session,
             int64_t t, Tag tag) {
    Event e = Sshd(host, last_login_pid_, t);
    e.session = session;
    LoginEvent l;
    l.service = "sshd";
    l.user = user;
    l.outcome = Outcome::kSuccess;
    l.source = LoginSource::kUtmp;
    l.stage = LoginStage::kSessionClose;
    e.body = l;
    Add(host, std::move(e), Tag{tag.compromise, 0});
  }

  void Exec(const std::string& host, const std::string& session, const std::string& user,
            uint32_t uid, const std::vector<std::string>& argv, int64_t t, Tag tag) {
    Event e;
    e.time_ns = t;
    e.host = host;
    e.host_id = "mid-" + host;
    e.session = session;
    e.process.pid = e.process.tgid = NextPid(host);
    e.process.uid = uid;
    e.process.user = uid == 0 ? "root" : user;
    e.process.login_user = user;
    e.process.exe = argv[0];
    e.process.comm = argv[0].substr(argv[0].rfind('/') + 1).substr(0, 15);
    ExecEvent x;
    x.filename = argv[0];
    x.argv = argv;
    x.parent_comm = uid == 0 ? "sudo" : "bash";
    e.body = x;
    Add(host, std::move(e), Tag{tag.compromise, 0});
  }

  // ssh from `session` on `from` (or from no session, for schedulers) to `to`: the outbound
  // connect there, the login here. Returns the new session on `to`.
  std::string Hop(const std::string& from, const std::string& session, const std::string& user,
                  uint32_t uid, const std::string& to, int64_t t, bool key, Rng& rng, Tag tag) {
    const auto port = static_cast<uint32_t>(rng.Int(32768, 60999));
    Event e;
    e.time_ns = t;
    e.host = from;
    e.host_id = "mid-" + from;
    e.session = session;
    e.process.pid = e.process.tgid = NextPid(from);
    e.process.uid = uid;
    e.process.user = user;
    e.process.login_user = session.empty() ? "" : user;
    e.process.comm = "ssh";
    e.process.exe = "/usr/bin/ssh";
    NetConnectEvent n;
    n.direction = NetDirection::kOutbound;
    n.local_addr = Ip(from);
    n.local_port = port;
    n.remote_addr = Ip(to);
    n.remote_port = 22;
    n.family = 2;
    e.body = n;
    Add(from, std::move(e), Tag{tag.compromise, 0});
    return Login(to, user, Ip(from), port, t + 300'000'000, 0, key, tag);
  }

  std::vector<Raw>& raw() { return raw_; }

 private:
  Event Sshd(const std::string& host, uint32_t pid, int64_t t) {
    Event e;
    e.time_ns = t;
    e.host = host;
    e.host_id = "mid-" + host;
    e.process.pid = e.process.tgid = pid;
    e.process.comm = "sshd";
    e.process.exe = "/usr/sbin/sshd";
    return e;
  }
  LoginEvent LoginBody(const std::string& host, const std::string& user, const std::string& addr,
                       uint32_t port, uint32_t pid) {
    LoginEvent l;
    l.service = "sshd";
    l.user = user;
    l.remote_addr = addr;
    l.remote_port = port;
    l.local_addr = Ip(host);
    l.local_port = 22;
    l.source = LoginSource::kPam;
    l.auth_pid = pid;
    return l;
  }
  uint32_t NextPid(const std::string& host) { return 1000 + (++pids_[host] % 4000000); }
  void Add(const std::string& host, Event e, Tag tag) {
    raw_.push_back({host, std::move(e), tag, raw_.size()});
  }

  std::map<std::string, std::string> ips_;
  std::vector<std::string> hosts_;
  std::map<std::string, uint64_t> sessions_;
  std::map<std::string, uint32_t> pids_;
  uint32_t last_login_pid_ = 0;
  std::vector<Raw> raw_;
};

const std::vector<std::string>& WorkCommands() {
  static const auto* v = new std::vector<std::string>{
      "/usr/bin/git",  "/usr/bin/vim", "/usr/bin/make", "/usr/bin/python3", "/usr/bin/less",
      "/usr/bin/grep", "/usr/bin/ls",  "/usr/bin/tail", "/usr/bin/docker",  "/usr/bin/top"};
  return *v;
}

const std::vector<std::string>& AdminCommands() {
  static const auto* v =
      new std::vector<std::string>{"/usr/bin/systemctl", "/usr/bin/journalctl", "/usr/bin/apt-get",
                                   "/usr/bin/df", "/usr/sbin/ss"};
  return *v;
}

const std::vector<std::vector<std::string>>& Discovery() {
  static const auto* v = new std::vector<std::vector<std::string>>{
      {"/usr/bin/id"},        {"/usr/bin/uname", "-a"}, {"/usr/bin/cat", "/etc/passwd"},
      {"/usr/bin/ps", "aux"}, {"/usr/bin/whoami"},      {"/usr/bin/hostname"}};
  return *v;
}

std::string AddressIn(const std::string& net, Rng& rng) {
  return net + "." + std::to_string(rng.Int(2, 250));
}

// An address in no network the fleet's people use.
std::string NewNetworkAddress(Rng& rng) {
  return std::to_string(rng.Int(31, 90)) + "." + std::to_string(rng.Int(0, 255)) + "." +
         std::to_string(rng.Int(0, 255)) + "." + std::to_string(rng.Int(2, 250));
}

bool Weekday(int64_t day_start_ns) {
  // 1970-01-01 was a Thursday: day 0 → Thursday.
  const int64_t dow = ((day_start_ns / kDay) % 7 + 7 + 3) % 7;  // 0 = Monday
  return dow < 5;
}

}  // namespace

std::string Compromise::Label() const {
  char head[16];
  std::snprintf(head, sizeof(head), "c%02d", id);
  return std::string(head) + " " + victim + " " + (failures ? "guessing" : "no-failures") + "/" +
         (unusual_hour ? "unusual-hour" : "usual-hour") + "/" +
         (new_network ? "new-net" : "known-net") + "/" + std::to_string(hops) +
         (hops == 1 ? " hop" : " hops");
}

Fleet GenerateFleet(const FleetSpec& spec) {
  Fleet fleet;
  fleet.spec = spec;
  fleet.first_ns = spec.test_start_ns - spec.warmup_days * kDay;
  Builder b;
  Rng habits(spec.seed * 7 + 1);

  // Hosts.
  std::vector<std::string> servers;
  for (int i = 0; i < spec.servers; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "srv%02d", i + 1);
    servers.push_back(name);
    b.AddHost(name, "10.20." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250));
  }
  b.AddHost("bastion", "10.20.0.1");
  b.AddHost("ci", "10.20.0.2");
  b.AddHost("backup", "10.20.0.3");
  const std::string office = "172.16.10";

  // People and admins.
  std::vector<Person> people;
  for (int i = 0; i < spec.people + spec.admins; ++i) {
    Person p;
    p.admin = i >= spec.people;
    p.name = (p.admin ? "admin" : "user") + std::to_string(p.admin ? i - spec.people + 1 : i + 1);
    p.uid = 1000 + static_cast<uint32_t>(i);
    p.start_hour = static_cast<int>(habits.Int(7, 10));
    p.end_hour = static_cast<int>(habits.Int(16, 19));
    if (p.admin || habits.Chance(0.4)) {
      p.nets.push_back(office);
    } else {
      p.nets.push_back("100.64." + std::to_string(i % 256));
      if (habits.Chance(0.3)) p.nets.push_back("100.65." + std::to_string(i % 256));
    }
    const int n = static_cast<int>(habits.Int(1, 3));
    while (static_cast<int>(p.hosts.size()) < n) {
      const std::string& h = habits.Pick(servers);
      if (std::find(p.hosts.begin(), p.hosts.end(), h) == p.hosts.end()) p.hosts.push_back(h);
    }
    people.push_back(std::move(p));
  }

  // Service accounts and agents.
  std::vector<Scheduled> scheduled;
  static const char* kServices[] = {"backup", "monitor", "deploy", "logship", "certbot", "dbsync"};
  for (int i = 0; i < spec.service_accounts + spec.agents; ++i) {
    Scheduled s;
    s.agent = i >= spec.service_accounts;
    s.uid = 900 + static_cast<uint32_t>(i);
    if (s.agent) {
      s.name = "agent-ci" + std::to_string(i - spec.service_accounts + 1);
      s.from = "ci";
      s.period_ns = 30 * kMinute;
      s.command = "/usr/bin/python3";
    } else {
      s.name = std::string("svc-") + kServices[i % 6] + (i >= 6 ? std::to_string(i) : "");
      s.from = i % 2 == 0 ? "backup" : habits.Pick(servers);
      s.period_ns = habits.Pick(std::vector<int64_t>{kHour, 2 * kHour, 4 * kHour});
      s.command = "/usr/bin/rsync";
    }
    s.offset_ns = habits.Int(0, s.period_ns / kMinute - 1) * kMinute;
    const int n = static_cast<int>(habits.Int(2, s.agent ? 5 : 3));
    while (static_cast<int>(s.targets.size()) < n) {
      const std::string& h = habits.Pick(servers);
      if (h != s.from && std::find(s.targets.begin(), s.targets.end(), h) == s.targets.end()) {
        s.targets.push_back(h);
      }
    }
    scheduled.push_back(std::move(s));
  }

  // Ordinary days.
  for (int d = -spec.warmup_days; d < spec.test_days; ++d) {
    const int64_t day = spec.test_start_ns + d * kDay;
    Rng rng(spec.seed * 1'000'003 + static_cast<uint64_t>(d + 100'000));
    const Tag benign{-1, 1};
    for (const Person& p : people) {
      if (!Weekday(day) && !rng.Chance(0.1)) continue;
      if (p.admin) {
        // Office → bastion, then two to four servers, sudo on each.
        int64_t t = day + p.start_hour * kHour + rng.Int(0, 60) * kMinute;
        const std::string from = AddressIn(office, rng);
        const std::string bs =
            b.Login("bastion", p.name, from, static_cast<uint32_t>(rng.Int(1024, 65000)), t,
                    rng.Chance(0.03) ? 1 : 0, false, benign);
        const int hops = static_cast<int>(rng.Int(2, 4));
        for (int h = 0; h < hops; ++h) {
          t += rng.Int(2, 25) * kMinute;
          const std::string& to = rng.Pick(servers);
          const std::string s = b.Hop("bastion", bs, p.name, p.uid, to, t, true, rng, benign);
          b.Exec(to, s, p.name, 0, {rng.Pick(AdminCommands())}, t + rng.Int(5, 60) * kSecond,
                 benign);
          t += rng.Int(3, 20) * kMinute;
          b.Close(to, p.name, s, t, benign);
        }
        b.Close("bastion", p.name, bs, t + kMinute, benign);
        continue;
      }
      const int sessions = static_cast<int>(rng.Int(1, 3));
      for (int k = 0; k < sessions; ++k) {
        const int64_t t =
            day + p.start_hour * kHour + rng.Int(0, (p.end_hour - p.start_hour) * 60 - 1) * kMinute;
        const std::string addr =
            rng.Chance(0.02) ? NewNetworkAddress(rng) : AddressIn(rng.Pick(p.nets), rng);
        // One or two typos in 5% of logins; three or four (the old password, after a
        // change) in 0.5%, which is what a brute force followed by a login looks like too.
        const double slip = rng.Real();
        const int typos = slip < 0.005  ? (rng.Chance(0.3) ? 4 : 3)
                          : slip < 0.05 ? (rng.Chance(0.2) ? 2 : 1)
                                        : 0;
        const std::string& host = rng.Pick(p.hosts);
        const std::string s =
            b.Login(host, p.name, addr, static_cast<uint32_t>(rng.Int(1024, 65000)), t, typos,
                    false, benign);
        const int execs = static_cast<int>(rng.Int(2, 6));
        int64_t at = t;
        for (int x = 0; x < execs; ++x) {
          at += rng.Int(20, 600) * kSecond;
          b.Exec(host, s, p.name, p.uid, {rng.Pick(WorkCommands())}, at, benign);
        }
        b.Close(host, p.name, s, at + rng.Int(1, 60) * kMinute, benign);
      }
    }
    for (const Scheduled& s : scheduled) {
      for (int64_t t = day + s.offset_ns; t < day + kDay; t += s.period_ns) {
        for (const std::string& to : s.targets) {
          const int64_t at = t + rng.Int(0, 20) * kSecond;
          const std::string session = b.Hop(s.from, "", s.name, s.uid, to, at, true, rng, benign);
          b.Exec(to, session, s.name, s.uid, {s.command, "--server"}, at + kSecond, benign);
          b.Close(to, s.name, session, at + rng.Int(30, 180) * kSecond, benign);
        }
      }
    }
  }

  // Compromises, in the test period only. Combination i % 32 of the four stealth traits,
  // so every combination is played as often as every other.
  Rng attack(spec.seed * 31 + 17);
  std::set<std::string> attacker_addresses;
  std::vector<const Person*> victims;
  for (const Person& p : people) victims.push_back(&p);
  for (int i = 0; i < spec.compromises && spec.test_days > 0; ++i) {
    Compromise c;
    c.id = i + 1;
    const int combo = i % 32;
    c.failures = combo & 1;
    c.unusual_hour = combo & 2;
    c.new_network = combo & 4;
    c.hops = 1 + ((combo >> 3) & 3);
    const Person& v =
        *victims[static_cast<size_t>(attack.Int(0, static_cast<int64_t>(victims.size()) - 1))];
    c.victim = v.name;
    int64_t day = 0;
    do {
      day = spec.test_start_ns + attack.Int(0, spec.test_days - 1) * kDay;
    } while (!Weekday(day) && spec.test_days >= 7);
    c.start_ns = c.unusual_hour ? day + attack.Int(1, 4) * kHour + attack.Int(0, 59) * kMinute
                                : day + v.start_hour * kHour +
                                      attack.Int(0, (v.end_hour - v.start_hour) * 60 - 1) * kMinute;
    // One address per attacker: two compromises from one address would be one story to the
    // correlator (and to anyone), which is not what is being measured.
    do {
      c.source = c.new_network ? NewNetworkAddress(attack) : AddressIn(attack.Pick(v.nets), attack);
    } while (!attacker_addresses.insert(c.source).second);
    c.entry_host = v.admin ? "bastion" : attack.Pick(v.hosts);
    const Tag tag{c.id, 0};
    const size_t first = b.raw().size();
    const int failures = c.failures ? static_cast<int>(attack.Int(3, 8)) : 0;
    std::string session =
        b.Login(c.entry_host, v.name, c.source, static_cast<uint32_t>(attack.Int(1024, 65000)),
                c.start_ns, failures, false, tag);
    const size_t entry_index = b.raw().size() - 1;
    int64_t t = c.start_ns;
    std::string host = c.entry_host;
    std::vector<std::pair<std::string, std::string>> open = {{host, session}};
    for (int h = 0; h < c.hops; ++h) {
      // A little discovery first (half of them in a burst the rules call T1083).
      const int looks = attack.Chance(0.5) ? 5 : 2;
      for (int x = 0; x < looks; ++x) {
        t += attack.Int(2, 10) * kSecond;
        b.Exec(host, session, v.name, v.uid,
               Discovery()[static_cast<size_t>(x) % Discovery().size()], t, tag);
      }
      t += attack.Int(30, 600) * kSecond;
      std::string to;
      do {
        to = attack.Pick(b.hosts());
      } while (to == host || to == "ci" || to == "backup");
      session = b.Hop(host, session, v.name, v.uid, to, t, false, attack, tag);
      host = to;
      open.emplace_back(host, session);
    }
    t += attack.Int(1, 10) * kMinute;
    for (auto it = open.rbegin(); it != open.rend(); ++it) {
      b.Close(it->first, v.name, it->second, t, tag);
      t += kSecond;
    }
    for (size_t k = first; k < b.raw().size(); ++k) b.raw()[k].tag.compromise = c.id;
    b.raw()[entry_index].tag.benign = -1;  // marks the entry login until keys are known
    fleet.compromises.push_back(std::move(c));
  }

  // Sequence numbers per sensor in time order; labels to (sensor, seq).
  auto& raw = b.raw();
  std::sort(raw.begin(), raw.end(), [](const Raw& a, const Raw& c) {
    if (a.host != c.host) return a.host < c.host;
    if (a.event.time_ns != c.event.time_ns) return a.event.time_ns < c.event.time_ns;
    return a.order < c.order;
  });
  std::map<int, size_t> by_id;
  for (size_t i = 0; i < fleet.compromises.size(); ++i) by_id[fleet.compromises[i].id] = i;
  for (Raw& r : raw) {
    const std::string sensor = "sim-" + r.host;
    auto& events = fleet.sensors[sensor];
    fleet.sensor_host[sensor] = r.host;
    r.event.seq = events.size() + 1;
    const EventKey key{sensor, r.event.seq};
    if (r.tag.compromise > 0) {
      Compromise& c = fleet.compromises[by_id.at(r.tag.compromise)];
      c.events.push_back(key);
      if (r.tag.benign == -1) c.entry_login = key;
    } else if (r.tag.benign > 0) {
      const bool test = r.event.time_ns >= spec.test_start_ns;
      fleet.benign_logins.emplace_back(key, test);
      ++(test ? fleet.benign_sessions_test : fleet.benign_sessions_warmup);
    }
    events.push_back(std::move(r.event));
    ++fleet.events;
  }
  return fleet;
}

}  // namespace tripline::eval
