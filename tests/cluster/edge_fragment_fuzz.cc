// Fuzz target for the edge stream's messages (joiner_stage.h): every message a worker
// publishes is read by whichever worker runs the joiner, and a damaged or hostile one must
// be a clear error, never a crash, before and after the joiner takes its chain.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/cluster/joiner_stage.h"
#include "aggregator/correlate/chain_joiner.h"
#include "common/clock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline;
  using namespace tripline::cluster;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto f = DecodeEdgeFragment(bytes);
  if (!f.ok()) {
    if (!f.status().IsInvalidArgument()) __builtin_trap();
    return 0;
  }
  if (f->chain.empty()) __builtin_trap();
  const auto again = DecodeEdgeFragment(EncodeEdgeFragment(f->partition, f->chain, f->state));
  if (!again.ok() || again->origin() != f->origin() || again->state != f->state) __builtin_trap();
  FakeClock clock;
  correlate::ChainJoiner joiner({}, clock);
  const Status put = joiner.Put(f->origin(), f->state);
  if (!put.ok() && !put.IsCorruption()) __builtin_trap();
  (void)joiner.TakeChanged();
  return 0;
}
