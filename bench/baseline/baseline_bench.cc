// Learned baselines at fleet scale: how many bytes each identity costs, and how much CPU
// scoring and observing one event costs on the ingest mix, the way the correlator calls
// them (Score*, then Observe*, then Commit).
//
//   baseline_bench [--identities 100000,1000000] [--events 2000000] [--sessions 0,10000]
//
// Each identity gets three weeks of history first: 20 office-hour logins from two
// addresses of one /24 to one of its two usual hosts, and 8 programs run 3 times each.
// The mix then is 60% exec (1 in 100 a program the identity never ran), 20% outbound
// connect, 10% sensitive-file open, 10% login (1 in 10 of them failed), 1 ms of event time
// apart, each measured after the 30-minute learning delay's worth of events (1.8 M) so
// that queued observations are learned as fast as they come, run once for each --sessions value: 0
// draws each event's identity uniformly (no locality at all: the worst case for caches); S > 0
// draws it from S sessions going on at once, as an ingest stream interleaves a fleet's sessions
// (each ends after 10 events on average and a session of another identity, drawn uniformly, takes
// its place). CPU is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other load on the machine
// does not count. The same stream is also drawn and built without the baselines, and what
// that costs (the bench's own strings and random numbers) is printed and taken off.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "aggregator/baseline/baselines.h"

namespace {

using namespace tripline;
using namespace tripline::baseline;

constexpr int64_t kHour = 3600LL * kNanosPerSecond;
constexpr int64_t kStart = 1'795'392'000LL * kNanosPerSecond;  // a Monday, 00:00 UTC

int64_t CpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * kNanosPerSecond + ts.tv_nsec;
}

size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, rss = 0;
  statm >> pages >> rss;
  return rss * 4096;
}

const std::vector<std::string>& Programs() {
  static const std::vector<std::string> p = [] {
    std::vector<std::string> v;
    for (const char* name :
         {"ls",   "cat", "grep", "ssh",     "git",    "vim",  "python3", "make", "cc",
          "ps",   "top", "less", "tail",    "find",   "awk",  "sed",     "curl", "tar",
          "gzip", "du",  "df",   "kubectl", "docker", "bash", "sudo"}) {
      v.push_back(std::string("/usr/bin/") + name);
    }
    return v;
  }();
  return p;
}

std::string User(size_t i) { return "user" + std::to_string(i); }
std::string Host(size_t i, int which) { return "host" + std::to_string((i * 7 + which) % 20000); }
std::string Addr(size_t i, int which) {
  return "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
         std::to_string(which + 1);
}

// The measured stream: who acts next and what. With `active` 0, any identity (uniformly:
// no locality at all); else one of `active` sessions going on at once, each ending after
// 1 in 10 of its events (10 events on average, one login's worth at the mix's 10% logins)
// and replaced by a session of an identity drawn uniformly.
class Stream {
 public:
  enum Kind { kExec, kConnect, kFile, kLogin };
  struct Event {
    Kind kind = kExec;
    Identity who;
    std::string host;
    std::string addr;
    const std::string* exe = nullptr;
    bool success = true;
  };

  Stream(size_t identities, size_t active, uint64_t seed)
      : rng_(seed), pick_(0, identities - 1), pick_session_(0, active == 0 ? 0 : active - 1) {
    sessions_.resize(active);
    for (size_t& s : sessions_) s = pick_(rng_);
    ev_.who.kind = IdentityKind::kHuman;
  }

  const Event& Next(size_t e) {
    size_t i = 0;
    if (sessions_.empty()) {
      i = pick_(rng_);
    } else {
      size_t& s = sessions_[pick_session_(rng_)];
      if (percent_(rng_) < 10) s = pick_(rng_);
      i = s;
    }
    const int kind = percent_(rng_);
    ev_.who.name = User(i);
    ev_.host = Host(i, static_cast<int>(e & 1));
    ev_.addr.clear();
    ev_.exe = &kNoExe;
    if (kind < 60) {
      ev_.kind = kExec;
      const bool novel = percent_(rng_) == 0;
      ev_.exe = novel ? &Programs()[(i + 13) % Programs().size()]
                      : &Programs()[(i + (e % 8) * 3) % Programs().size()];
    } else if (kind < 80) {
      ev_.kind = kConnect;
    } else if (kind < 90) {
      ev_.kind = kFile;
    } else {
      ev_.kind = kLogin;
      ev_.addr = Addr(i, static_cast<int>(e & 1));
      ev_.success = percent_(rng_) >= 10;
    }
    return ev_;
  }

 private:
  static inline const std::string kNoExe;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<size_t> pick_;
  std::uniform_int_distribution<size_t> pick_session_;
  std::uniform_int_distribution<int> percent_{0, 99};
  std::vector<size_t> sessions_;
  Event ev_;
};

void Run(size_t identities, size_t events, const std::vector<size_t>& actives) {
  BaselineOptions options;
  options.max_identities = identities * 2 + 100000;
  const size_t rss_before = RssBytes();
  Baselines b(options);
  std::mt19937_64 rng(42);
  const int64_t fill_start = CpuNs();
  for (size_t i = 0; i < identities; ++i) {
    const Identity who{IdentityKind::kHuman, User(i)};
    for (int d = 0; d < 20; ++d) {
      LoginFacts l;
      l.user = who.name;
      l.host = Host(i, d % 2);
      l.service = "sshd";
      l.addr = Addr(i, d % 2);
      l.time_ns = kStart + (d + d / 5 * 2) * kNanosPerDay + (9 + d % 3) * kHour;
      b.ObserveLogin(l, Score{}, "");
      b.Commit(l.time_ns, nullptr);
      for (int k = 0; k < 8 && d < 3; ++k) {
        const std::string& exe = Programs()[(i + k * 3) % Programs().size()];
        b.ObserveExec(who, l.host, exe, l.time_ns + k, Score{}, "");
      }
    }
  }
  const int64_t history_end = kStart + 30 * kNanosPerDay;
  b.Commit(history_end, nullptr);
  const double fill_s = static_cast<double>(CpuNs() - fill_start) / 1e9;
  const size_t rss_after = RssBytes();
  const size_t accounted = b.MemoryBytes();
  const BaselineStats st = b.stats();
  size_t record_bytes = 0;
  for (const auto& [key, value] : b.TakeDirty()) record_bytes += key.size() + value.size();

  std::printf("identities %zu (profiles incl. hosts and peer groups: %zu)\n", identities,
              static_cast<size_t>(st.identities));
  std::printf("  history: %.1f s CPU to learn %zu observations\n", fill_s,
              static_cast<size_t>(st.learned));
  std::printf(
      "  state: %.0f bytes/identity accounted, %.0f bytes/identity RSS growth, "
      "%.0f bytes/identity as records\n",
      static_cast<double>(accounted) / static_cast<double>(identities),
      static_cast<double>(rss_after - rss_before) / static_cast<double>(identities),
      static_cast<double>(record_bytes) / static_cast<double>(identities));
  std::fflush(stdout);

  std::uniform_int_distribution<size_t> pick(0, identities - 1);
  int64_t t = history_end + 9 * kHour;
  for (size_t active : actives) {
    // First the learning delay's worth of events unmeasured, so that the measured ones run
    // with the queue of observations waiting to be learned in its steady state (full, one
    // learned for each one queued), as on a long-running aggregator.
    const size_t warmup = static_cast<size_t>(BaselineOptions{}.learn_delay_ns / 1'000'000);
    // The stream is drawn twice from the same seed: once only built (what the bench itself
    // spends making each event's strings), once built and scored, observed and committed.
    const uint64_t seed = rng();
    int64_t build_ns = 0;
    int64_t score_ns = 0;
    size_t logins = 0, execs = 0, nets = 0, files = 0;
    for (const bool with_baselines : {false, true}) {
      Stream stream(identities, active, seed);
      int64_t te = t;
      int64_t start = CpuNs();
      size_t sink = 0;
      for (size_t e = 0; e < warmup + events; ++e) {
        if (e == warmup) {
          start = CpuNs();
          logins = execs = nets = files = 0;
        }
        te += 1'000'000;  // 1 ms of event time per event: the learning delay passes in the run
        const Stream::Event& ev = stream.Next(e);
        if (!with_baselines) {
          sink += ev.who.name.size() + ev.host.size() + ev.addr.size() + ev.exe->size();
          continue;
        }
        switch (ev.kind) {
          case Stream::kExec: {
            const Score s = b.ScoreExec(ev.who, ev.host, *ev.exe, te);
            b.ObserveExec(ev.who, ev.host, *ev.exe, te, s, "sess");
            ++execs;
            break;
          }
          case Stream::kConnect: {
            const Score s = b.ScoreConnect(ev.who, ev.host, "192.0.2.10", 443, te);
            b.ObserveConnect(ev.who, ev.host, "192.0.2.10", 443, te, s, "sess");
            ++nets;
            break;
          }
          case Stream::kFile: {
            const Score s = b.ScoreFile(ev.who, ev.host, "/home/u/.ssh/id_ed25519", te);
            b.ObserveFile(ev.who, ev.host, "/home/u/.ssh/id_ed25519", te, s, "sess");
            ++files;
            break;
          }
          case Stream::kLogin: {
            LoginFacts l;
            l.user = ev.who.name;
            l.host = ev.host;
            l.service = "sshd";
            l.addr = ev.addr;
            l.success = ev.success;
            l.time_ns = te;
            const Score s = b.ScoreLogin(l);
            b.ObserveLogin(l, s, "sess");
            ++logins;
            break;
          }
        }
        b.Commit(te, nullptr);
      }
      (with_baselines ? score_ns : build_ns) = CpuNs() - start;
      if (with_baselines) t = te;
      if (sink == 1) std::printf(" ");  // keeps the build-only loop from being optimized away
    }
    const double per_event = static_cast<double>(score_ns) / static_cast<double>(events);
    const double per_build = static_cast<double>(build_ns) / static_cast<double>(events);
    std::printf(
        "  ingest mix, %s (%zu events: %zu exec, %zu connect, %zu file, %zu login): "
        "%.0f ns CPU/event (score + observe + commit), of which %.0f building the events, "
        "%.0f the baselines\n",
        active == 0 ? "uniform over identities"
                    : (std::to_string(active) + " sessions at once").c_str(),
        events, execs, nets, files, logins, per_event, per_build, per_event - per_build);
    std::fflush(stdout);
  }

  // Scoring alone (no learning) on logins, the most expensive kind.
  const int64_t login_start = CpuNs();
  const size_t login_runs = events / 10;
  double sink = 0;
  for (size_t e = 0; e < login_runs; ++e) {
    const size_t i = pick(rng);
    LoginFacts l;
    l.user = User(i);
    l.host = Host(i, 0);
    l.service = "sshd";
    l.addr = Addr(i, 0);
    l.time_ns = t;
    sink += b.ScoreLogin(l).value;
  }
  const double per_login =
      static_cast<double>(CpuNs() - login_start) / static_cast<double>(login_runs);

  std::printf("  login scoring alone: %.0f ns CPU/login (checksum %.3f)\n", per_login,
              sink / static_cast<double>(login_runs));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes = {100000, 1000000};
  size_t events = 2000000;
  std::vector<size_t> actives = {0, 10000};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--identities" && i + 1 < argc) {
      sizes.clear();
      std::stringstream ss(argv[++i]);
      std::string item;
      while (std::getline(ss, item, ',')) sizes.push_back(std::strtoull(item.c_str(), nullptr, 10));
    } else if (a == "--events" && i + 1 < argc) {
      events = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--sessions" && i + 1 < argc) {
      actives.clear();
      std::stringstream ss(argv[++i]);
      std::string item;
      while (std::getline(ss, item, ','))
        actives.push_back(std::strtoull(item.c_str(), nullptr, 10));
    } else {
      std::fprintf(stderr,
                   "usage: baseline_bench [--identities N[,N...]] [--events M] "
                   "[--sessions S[,S...]]\n");
      return 2;
    }
  }
  for (size_t n : sizes) {
    if (n == 0) {
      std::fprintf(stderr, "baseline_bench: --identities wants positive counts\n");
      return 2;
    }
    Run(n, events, actives);
  }
  return 0;
}
