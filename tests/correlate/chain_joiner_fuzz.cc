// Fuzz target for the chain joiner (aggregator/correlate/chain_joiner.h): fragments come
// from workers over the cluster's edge stream and the joiner's state back from the
// cluster after a takeover. A bad one must give a clear error, never a crash, and a
// hostile fragment that decodes (sessions naming each other as parents, aliases of
// another part's sessions, chains without evidence) must still join with real ones.
// Whatever the joiner holds must serialize to a state that restores.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregator/correlate/chain_joiner.h"
#include "aggregator/correlate/correlator.h"
#include "tests/correlate/story_builder.h"

namespace {

using tripline::correlate::ChainJoiner;
using tripline::correlate::Correlator;
using tripline::correlate::CorrelatorOptions;
using tripline::correlate::testing::StoryBuilder;

// hosta's and hostb's fragments of the seed story's first hop, each host its own partition.
std::vector<std::pair<std::string, std::string>> RealFragments() {
  tripline::FakeClock clock(StoryBuilder::kT0);
  CorrelatorOptions a_options;
  a_options.is_local_host = [](std::string_view host) { return host == "hosta"; };
  CorrelatorOptions b_options;
  b_options.is_local_host = [](std::string_view host) { return host == "hostb"; };
  Correlator a(a_options, clock);
  Correlator b(b_options, clock);
  StoryBuilder s;
  for (int i = 0; i < 4; ++i) {
    auto d = s.Failure("hosta", "alice", "198.18.0.66", 40001 + i, i);
    a.Feed(d.sensor, d.event);
  }
  auto login = s.Login("hosta", "alice", "198.18.0.66", 40010, "audit:1", 7);
  a.Feed(login.sensor, login.event);
  auto connect = s.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 30);
  a.FeedRoutedCopy(connect.sensor, connect.event);
  b.Feed(connect.sensor, connect.event);
  auto hop = s.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 31);
  b.Feed(hop.sensor, hop.event);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, c] : {std::pair{"a", &a}, std::pair{"b", &b}}) {
    (void)c->TakeChanged();
    for (auto& f : c->TakeFragments()) out.emplace_back(std::string(name) + ":" + f.chain, f.state);
  }
  return out;
}

void CheckRestores(const ChainJoiner& joiner, const CorrelatorOptions& options,
                   const tripline::Clock& clock) {
  ChainJoiner again(options, clock);
  if (!again.RestoreState(joiner.SerializeState()).ok()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* real = new std::vector<std::pair<std::string, std::string>>(RealFragments());
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  tripline::FakeClock clock(StoryBuilder::kT0 + 60 * tripline::kNanosPerSecond);
  CorrelatorOptions options;
  options.incident_id_key = "fuzz";

  // As a fragment, put between real ones.
  ChainJoiner joiner(options, clock);
  for (size_t i = 0; i < real->size(); ++i) {
    if (!joiner.Put((*real)[i].first, (*real)[i].second).ok()) __builtin_trap();
    if (i == 0) (void)joiner.Put("fuzz:chain", bytes);
    (void)joiner.TakeChanged();
  }
  CheckRestores(joiner, options, clock);
  (void)joiner.Put("fuzz:chain", "");
  (void)joiner.TakeChanged();
  clock.AdvanceNs(int64_t{48} * 3600 * tripline::kNanosPerSecond);
  joiner.Tick();

  // As a joiner's state.
  ChainJoiner restored(options, clock);
  if (restored.RestoreState(bytes).ok()) {
    CheckRestores(restored, options, clock);
    for (const auto& [origin, fragment] : *real) (void)restored.Put(origin, fragment);
    (void)restored.TakeChanged();
  }
  return 0;
}
