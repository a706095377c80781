// Correlator throughput and memory.
//
// BM_HandleMixedStream: events/s through Correlator::Handle on a synthetic recorded stream of
// a 100-host fleet with 10,000 concurrent sessions: logins (with occasional failures), execs,
// file opens (a few sensitive), outbound connects and SSH hops (connect on A + login on B),
// plus a small attacker chain so incidents are built and re-scored. The stream is generated
// once; each iteration feeds all of it to a fresh Correlator.
//
// BM_HandleIngestMix: the shape of the aggregator's synthetic ingest stream
// (tests/aggregator/test_support.cc SyntheticEvents, as ingest_bench sends it: 50 hosts, 500
// users, a quarter each logins, execs, /etc/shadow opens and outbound SSH connects, all in
// one audit session per host). Nearly every user looks compromised, so almost every event
// revises a raised incident: the worst case for building and fingerprinting incidents.
//
// BM_FeedIngestMixWithBaselines: BM_FeedIngestMix with learned baselines attached.
//
// BM_Feed*: the same streams through Feed, taking the changed incidents once per 512
// events, as the aggregator's correlation engine does once per hand-over.
//
// BM_PartitionedMixedStream/P: the mixed stream as a cluster of P partitions correlates it
// (docs/scale-out.md): each host's events in the partition FNV-1a(host) mod P, an outbound
// connection to a fleet host's address in that host's partition and a copy in its
// source's, a correlator per partition knowing its own hosts, the exported chains'
// fragments taken once per 512 events. Counters: fragments per 1,000 events (the edge
// stream's rate for this mix, where one event in 17 is an SSH hop), their mean size in bytes,
// the hops stitched (all partitions together) and the copies fed.
// BM_JoinFragments/P: those fragments put into a ChainJoiner in order, the changes taken
// once per 256 fragments (as the joiner stage fetches them): fragments/s it takes on one core.
//
// Memory per tracked session is printed before the benchmarks run: the heap bytes in use
// (glibc mallinfo2, exact for this process's allocations) and the RSS growth (/proc/self/statm,
// includes allocator slack), both divided by the number of sessions tracked, for sessions that
// each have a login, two execs, a file open and a pending connect.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "aggregator/baseline/baselines.h"
#include "aggregator/correlate/chain_joiner.h"
#include "aggregator/correlate/correlator.h"
#include "common/fnv.h"
#include "tests/aggregator/test_support.h"
#include "tests/correlate/story_builder.h"

namespace tripline::correlate {
namespace {

using testing::Delivery;
using testing::StoryBuilder;

constexpr int kHosts = 100;
constexpr int kConcurrentSessions = 10000;
constexpr int kEvents = 300000;

std::string HostName(int i) { return "h" + std::to_string(i); }
std::string HostAddr(int i) {
  return "10.20." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}

std::vector<Delivery> MakeStream(int events, int sessions) {
  StoryBuilder b;
  for (int i = 0; i < kHosts; ++i) b.SetAddress(HostName(i), HostAddr(i));
  std::mt19937 rng(42);
  std::vector<Delivery> out;
  out.reserve(static_cast<size_t>(events) + 64);
  struct Live {
    int host;
    std::string session;
    std::string user;
  };
  std::vector<Live> live;
  int next_session = 0;
  double t = 0;
  auto new_login = [&](int host, const std::string& from, uint32_t port) {
    Live l{host, "audit:" + std::to_string(++next_session), "u" + std::to_string(rng() % 2000)};
    out.push_back(b.Login(HostName(host), l.user, from, port, l.session, t));
    return l;
  };
  for (int i = 0; i < sessions; ++i) {
    t += 0.001;
    live.push_back(
        new_login(static_cast<int>(rng() % kHosts),
                  "172.16." + std::to_string(rng() % 200) + "." + std::to_string(rng() % 250),
                  30000 + static_cast<uint32_t>(i % 30000)));
  }
  // One attacker chain early on, so an incident exists and is re-assessed.
  for (int i = 0; i < 4; ++i)
    out.push_back(b.Failure(HostName(0), "victim", "198.18.0.66", 40000 + i, t += 0.01));
  out.push_back(b.Login(HostName(0), "victim", "198.18.0.66", 40010, "audit:attacker", t += 0.01));
  out.push_back(b.Open(HostName(0), "audit:attacker", "victim", 1000, "cat", "/etc/shadow",
                       FileAccess::kRead, t += 0.01));
  live.push_back({0, "audit:attacker", "victim"});
  static const char* kCommands[] = {"/usr/bin/ls",      "/usr/bin/vim", "/usr/bin/git",
                                    "/usr/bin/python3", "/usr/bin/id",  "/usr/bin/make",
                                    "/usr/bin/grep",    "/usr/bin/ps"};
  static const char* kFiles[] = {"/etc/passwd",
                                 "/etc/hosts",
                                 "/etc/ssh/sshd_config",
                                 "/etc/shadow",
                                 "/home/u/.ssh/authorized_keys",
                                 "/etc/sudoers"};
  uint32_t port = 40000;
  while (static_cast<int>(out.size()) < events) {
    t += 0.0005;
    Live& s = live[rng() % live.size()];
    std::string host = HostName(s.host);
    uint32_t roll = rng() % 100;
    if (roll < 50) {
      out.push_back(b.Exec(host, s.session, s.user, 1000, kCommands[rng() % 8], t));
    } else if (roll < 75) {
      // Mostly ordinary files; sensitive ones by ordinary processes now and then.
      const char* path = kFiles[rng() % 100 < 97 ? rng() % 3 : 3 + rng() % 3];
      out.push_back(b.Open(host, s.session, s.user, 1000, "python3", path, FileAccess::kRead, t));
    } else if (roll < 88) {
      out.push_back(b.Connect(host, s.session, s.user, port = port % 60000 + 1,
                              "93.184." + std::to_string(rng() % 250) + ".1", 443, t));
    } else if (roll < 95) {
      // An SSH hop to another host: connect, sshd accept, login; the new session goes live.
      int to = static_cast<int>(rng() % kHosts);
      if (to == s.host) to = (to + 1) % kHosts;
      port = port % 60000 + 1;
      out.push_back(b.Connect(host, s.session, s.user, port, HostAddr(to), 22, t));
      out.push_back(b.Accept(HostName(to), 22, HostAddr(s.host), port, t + 0.0001));
      Live hop = new_login(to, HostAddr(s.host), port);
      live[rng() % live.size()] = hop;  // keeps the number of concurrent sessions steady
    } else if (roll < 98) {
      live[rng() % live.size()] =
          new_login(static_cast<int>(rng() % kHosts), "172.16.9." + std::to_string(rng() % 250),
                    20000 + rng() % 10000);
    } else {
      out.push_back(b.Failure(host, "u" + std::to_string(rng() % 2000),
                              "172.16.8." + std::to_string(rng() % 250), 20000 + rng() % 10000, t));
    }
  }
  return out;
}

const std::vector<Delivery>& Stream() {
  static const std::vector<Delivery> stream = MakeStream(kEvents, kConcurrentSessions);
  return stream;
}

void BM_HandleMixedStream(benchmark::State& state) {
  const std::vector<Delivery>& stream = Stream();
  size_t incidents = 0, sessions = 0, hops = 0;
  for (auto _ : state) {
    FakeClock clock(StoryBuilder::kT0);
    Correlator c(CorrelatorOptions{}, clock);
    for (const Delivery& d : stream) {
      clock.SetNs(d.event.time_ns);
      incidents += c.Handle(d.sensor, d.event).size();
    }
    sessions = c.tracked_sessions();
    hops = c.stats().hops;
    benchmark::DoNotOptimize(incidents);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["sessions_tracked"] = static_cast<double>(sessions);
  state.counters["hops"] = static_cast<double>(hops);
}
BENCHMARK(BM_HandleMixedStream)->Unit(benchmark::kMillisecond)->MinTime(2.0);

std::vector<Delivery> MakeIngestMix(size_t n, size_t batch, int hosts, int users) {
  // The events ingest_bench sends: one synthetic batch, repeated with time and sequence
  // moving forward (event seq-1 at base + (seq-1) ms).
  const std::vector<Event> events = tripline::testing::SyntheticEvents(batch, hosts, users);
  std::vector<Delivery> out;
  out.reserve(n);
  for (size_t seq = 1; seq <= n; ++seq) {
    Event e = events[(seq - 1) % batch];
    e.seq = seq;
    e.time_ns = tripline::testing::kBaseTimeNs + static_cast<int64_t>(seq - 1) * kNanosPerMilli;
    out.push_back({"bench-0", std::move(e), 0});
  }
  return out;
}

const std::vector<Delivery>& IngestMix() {
  static const std::vector<Delivery> stream = MakeIngestMix(200000, 512, 50, 500);
  return stream;
}

void BM_HandleIngestMix(benchmark::State& state) {
  const std::vector<Delivery>& stream = IngestMix();
  size_t incidents = 0;
  for (auto _ : state) {
    FakeClock clock(stream.front().event.time_ns);
    Correlator c(CorrelatorOptions{}, clock);
    for (const Delivery& d : stream) {
      clock.SetNs(d.event.time_ns);
      incidents += c.Handle(d.sensor, d.event).size();
    }
    benchmark::DoNotOptimize(incidents);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["incidents_per_event"] =
      static_cast<double>(incidents) / static_cast<double>(state.iterations() * stream.size());
}
BENCHMARK(BM_HandleIngestMix)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Feed with TakeChanged every kHandOver events, as the aggregator's correlation engine
// feeds one hand-over of queued batches (ingest_bench sends 512-event batches).
constexpr size_t kHandOver = 512;

size_t FeedInHandOvers(const std::vector<Delivery>& stream, FakeClock& clock, Correlator& c) {
  size_t incidents = 0;
  size_t fed = 0;
  for (const Delivery& d : stream) {
    clock.SetNs(d.event.time_ns);
    c.Feed(d.sensor, d.event);
    if (++fed % kHandOver == 0) incidents += c.TakeChanged().size();
  }
  return incidents + c.TakeChanged().size();
}

void BM_FeedMixedStream(benchmark::State& state) {
  const std::vector<Delivery>& stream = Stream();
  size_t incidents = 0;
  for (auto _ : state) {
    FakeClock clock(StoryBuilder::kT0);
    Correlator c(CorrelatorOptions{}, clock);
    incidents += FeedInHandOvers(stream, clock, c);
    benchmark::DoNotOptimize(incidents);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_FeedMixedStream)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_FeedIngestMix(benchmark::State& state) {
  const std::vector<Delivery>& stream = IngestMix();
  size_t incidents = 0;
  for (auto _ : state) {
    FakeClock clock(stream.front().event.time_ns);
    Correlator c(CorrelatorOptions{}, clock);
    incidents += FeedInHandOvers(stream, clock, c);
    benchmark::DoNotOptimize(incidents);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["incidents_per_event"] =
      static_cast<double>(incidents) / static_cast<double>(state.iterations() * stream.size());
}
BENCHMARK(BM_FeedIngestMix)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// The same with learned baselines attached, as the aggregator runs it: the difference to
// BM_FeedIngestMix is what scoring and learning add per event.
void BM_FeedIngestMixWithBaselines(benchmark::State& state) {
  const std::vector<Delivery>& stream = IngestMix();
  size_t incidents = 0;
  for (auto _ : state) {
    FakeClock clock(stream.front().event.time_ns);
    baseline::Baselines baselines;
    Correlator c(CorrelatorOptions{}, clock);
    c.AttachBaselines(&baselines);
    incidents += FeedInHandOvers(stream, clock, c);
    benchmark::DoNotOptimize(incidents);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_FeedIngestMixWithBaselines)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// The mixed stream through P partitions' correlators; the fragments they export, in order.
struct Partitioned {
  std::vector<std::pair<std::string, std::string>> fragments;  // origin, state
  size_t events_fed = 0;                                       // copies included
  uint64_t hops = 0;
};

Partitioned FeedPartitioned(const std::vector<Delivery>& stream, uint32_t partitions) {
  const auto partition_of = [partitions](std::string_view host) {
    return static_cast<uint32_t>(Fnv1a64(host) % partitions);
  };
  std::map<std::string, std::string> host_of;  // the address book
  for (int i = 0; i < kHosts; ++i) host_of[HostAddr(i)] = HostName(i);
  FakeClock clock(StoryBuilder::kT0);
  std::vector<std::unique_ptr<Correlator>> parts;
  for (uint32_t p = 0; p < partitions; ++p) {
    CorrelatorOptions o;
    o.is_local_host = [p, partition_of](std::string_view host) { return partition_of(host) == p; };
    parts.push_back(std::make_unique<Correlator>(std::move(o), clock));
  }
  Partitioned out;
  const auto take = [&] {
    for (uint32_t p = 0; p < partitions; ++p) {
      (void)parts[p]->TakeChanged();
      for (ChainFragment& f : parts[p]->TakeFragments()) {
        out.fragments.emplace_back(std::to_string(p) + ":" + f.chain, std::move(f.state));
      }
    }
  };
  size_t n = 0;
  for (const Delivery& d : stream) {
    clock.SetNs(d.event.time_ns);
    const uint32_t source = partition_of(d.event.host);
    uint32_t to = source;
    if (const auto* c = d.event.As<NetConnectEvent>();
        c != nullptr && c->direction == NetDirection::kOutbound) {
      if (auto it = host_of.find(c->remote_addr); it != host_of.end())
        to = partition_of(it->second);
    }
    parts[to]->Feed(d.sensor, d.event);
    ++out.events_fed;
    if (to != source) {
      parts[source]->FeedRoutedCopy(d.sensor, d.event);
      ++out.events_fed;
    }
    if (++n % 512 == 0) take();
  }
  take();
  for (const auto& p : parts) out.hops += p->stats().hops;
  return out;
}

void BM_PartitionedMixedStream(benchmark::State& state) {
  const std::vector<Delivery>& stream = Stream();
  const auto partitions = static_cast<uint32_t>(state.range(0));
  Partitioned last;
  for (auto _ : state) {
    last = FeedPartitioned(stream, partitions);
    benchmark::DoNotOptimize(last.fragments.data());
  }
  size_t bytes = 0;
  for (const auto& [origin, fragment] : last.fragments) bytes += fragment.size();
  const double fragments = static_cast<double>(last.fragments.size());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["fragments_per_1k_events"] = fragments * 1000 / static_cast<double>(stream.size());
  state.counters["fragment_bytes"] = fragments > 0 ? static_cast<double>(bytes) / fragments : 0;
  state.counters["hops"] = static_cast<double>(last.hops);
  state.counters["copies"] = static_cast<double>(last.events_fed - stream.size());
}
BENCHMARK(BM_PartitionedMixedStream)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_JoinFragments(benchmark::State& state) {
  static std::map<int64_t, Partitioned> made;
  if (!made.contains(state.range(0))) {
    made[state.range(0)] = FeedPartitioned(Stream(), static_cast<uint32_t>(state.range(0)));
  }
  const auto& fragments = made.at(state.range(0)).fragments;
  size_t incidents = 0;
  size_t held = 0;
  double parts_per_join = 0;
  for (auto _ : state) {
    FakeClock clock(StoryBuilder::kT0);
    ChainJoiner joiner(CorrelatorOptions{}, clock);
    size_t n = 0;
    for (const auto& [origin, fragment] : fragments) {
      if (!joiner.Put(origin, fragment).ok()) state.SkipWithError("a fragment did not decode");
      if (++n % 256 == 0) incidents += joiner.TakeChanged().size();
    }
    incidents += joiner.TakeChanged().size();
    held = joiner.fragments();
    parts_per_join = static_cast<double>(joiner.stats().parts_joined) /
                     static_cast<double>(std::max<uint64_t>(1, joiner.stats().joins));
    benchmark::DoNotOptimize(incidents);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fragments.size()));
  state.counters["fragments_held"] = static_cast<double>(held);
  state.counters["parts_per_join"] = parts_per_join;
  state.counters["incident_revisions"] =
      static_cast<double>(incidents) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_JoinFragments)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_SerializeState(benchmark::State& state) {
  const std::vector<Delivery>& stream = Stream();
  FakeClock clock(StoryBuilder::kT0);
  Correlator c(CorrelatorOptions{}, clock);
  for (const Delivery& d : stream) {
    clock.SetNs(d.event.time_ns);
    (void)c.Handle(d.sensor, d.event);
  }
  size_t bytes = 0;
  for (auto _ : state) {
    std::string s = c.SerializeState();
    bytes = s.size();
    benchmark::DoNotOptimize(s);
  }
  state.counters["state_bytes"] = static_cast<double>(bytes);
  state.counters["bytes_per_session"] =
      static_cast<double>(bytes) / static_cast<double>(c.tracked_sessions());
}
BENCHMARK(BM_SerializeState)->Unit(benchmark::kMillisecond);

long RssBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

void PrintMemoryPerSession() {
  constexpr int kSessions = 100000;
  StoryBuilder b;
  std::vector<Delivery> events;
  for (int i = 0; i < 50; ++i) b.SetAddress(HostName(i), HostAddr(i));
  for (int i = 0; i < kSessions; ++i) {
    std::string host = HostName(i % 50);
    std::string session = "audit:" + std::to_string(i);
    std::string user = "u" + std::to_string(i % 3000);
    double t = i * 0.001;
    events.push_back(b.Login(
        host, user, "172.17." + std::to_string(i / 250 % 250) + "." + std::to_string(i % 250),
        20000 + i % 40000, session, t));
    events.push_back(b.Exec(host, session, user, 1000, "/usr/bin/vim", t));
    events.push_back(b.Exec(host, session, user, 1000, "/usr/bin/ls", t));
    events.push_back(b.Open(host, session, user, 1000, "vim", "/etc/hosts", FileAccess::kRead, t));
    events.push_back(b.Connect(host, session, user, 30000 + i % 30000, "93.184.1.1", 443, t));
  }
  FakeClock clock(StoryBuilder::kT0);
  CorrelatorOptions o;
  o.max_sessions = kSessions;
  o.max_pending = 2 * kSessions;
  malloc_trim(0);
  long rss0 = RssBytes();
  size_t heap0 = mallinfo2().uordblks;
  {
    Correlator c(o, clock);
    for (const Delivery& d : events) {
      clock.SetNs(d.event.time_ns);
      (void)c.Handle(d.sensor, d.event);
    }
    size_t heap1 = mallinfo2().uordblks;
    long rss1 = RssBytes();
    double n = static_cast<double>(c.tracked_sessions());
    std::printf(
        "memory: %zu sessions tracked, %zu pending items; heap %.0f B/session "
        "(incl. its pending login+connect, trackers, chain); RSS +%.0f B/session; "
        "serialized %.0f B/session\n",
        c.tracked_sessions(), c.pending_items(), static_cast<double>(heap1 - heap0) / n,
        static_cast<double>(rss1 - rss0) / n, static_cast<double>(c.SerializeState().size()) / n);
  }
}

}  // namespace
}  // namespace tripline::correlate

int main(int argc, char** argv) {
  tripline::correlate::PrintMemoryPerSession();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("stream: %zu events, %d hosts, %d concurrent sessions\n",
              tripline::correlate::Stream().size(), tripline::correlate::kHosts,
              tripline::correlate::kConcurrentSessions);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
