// Fuzz target for Correlator::RestoreState: persisted state is read back after a restart
// and a damaged database must give a clear error, never a crash. Whatever restores must
// also serialize to bytes that restore again, and must survive the events that follow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aggregator/correlate/correlator.h"
#include "tests/correlate/story_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tripline::correlate::Correlator;
  using tripline::correlate::CorrelatorOptions;
  tripline::FakeClock clock(tripline::correlate::testing::StoryBuilder::kT0);
  CorrelatorOptions options;
  options.max_sessions = 64;
  options.max_pending = 64;
  options.max_trackers = 64;
  Correlator c(options, clock);
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!c.RestoreState(bytes).ok()) return 0;
  std::string again = c.SerializeState();
  Correlator d(options, clock);
  if (!d.RestoreState(again).ok()) __builtin_trap();
  // Drive the restored state through every kind of event and an expiry pass.
  tripline::correlate::testing::StoryBuilder b;
  const auto stream = {
      b.Failure("hosta", "alice", "198.18.0.66", 40001, 0),
      b.Login("hosta", "alice", "198.18.0.66", 40010, "audit:1", 1),
      b.Open("hosta", "audit:1", "alice", 0, "cat", "/etc/shadow", tripline::FileAccess::kRead, 2),
      b.Exec("hosta", "audit:1", "alice", 0, "/usr/bin/id", 3),
      b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, 4),
      b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", 5),
      b.Health("hostb", 10, 6),
  };
  for (const auto& delivery : stream) (void)d.Handle(delivery.sensor, delivery.event);
  clock.AdvanceNs(int64_t{48} * 3600 * tripline::kNanosPerSecond);
  (void)d.Tick();
  return 0;
}
