// Fuzz target for Baselines::Load: baseline records are read back from the store at every
// start, and a damaged database must give a clear error, never a crash or a score outside
// 0..1. The first byte picks which record the rest is.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "aggregator/baseline/baselines.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline::baseline;
  if (size < 1) return 0;
  static constexpr const char* kKeys[] = {"id/human:alice", "id/host:hosta", "meta/pending",
                                          "meta/feedback"};
  const std::string_view key = kKeys[data[0] % 4];
  const std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
  Baselines b;
  if (!b.Load(key, value).ok()) return 0;
  constexpr int64_t kT = 1'795'392'000LL * 1'000'000'000LL;
  LoginFacts l;
  l.user = "alice";
  l.host = "hosta";
  l.service = "sshd";
  l.addr = "203.0.113.9";
  l.time_ns = kT;
  const Score s = b.ScoreLogin(l);
  if (!(s.value >= 0 && s.value <= 1)) __builtin_trap();
  b.ObserveLogin(l, s, "t");
  b.Commit(kT + 86400LL * 1'000'000'000LL, nullptr);
  (void)b.Feedback("inc-1", Verdict::kExpected);
  (void)b.Describe("alice");
  // What loaded must write records that load again.
  Baselines again;
  for (const auto& [k, v] : b.TakeDirty()) {
    if (v.empty()) continue;
    const tripline::Status s = again.Load(k, v);
    if (!s.ok()) {
      std::fprintf(stderr, "record %s does not load again: %s\n", k.c_str(), s.ToString().c_str());
      __builtin_trap();
    }
  }
  return 0;
}
