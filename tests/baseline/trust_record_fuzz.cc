// TrustBook::Load on bytes read back from the baselines column family (a damaged or
// hostile record): never crashes, and what it accepts is written back as a record that
// loads again to the same decisions.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/baseline/trust_book.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline::baseline;
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  TrustBook book;
  if (!book.Load("trust/aiops", value).ok()) return 0;
  const Identity agent{IdentityKind::kAgent, "aiops", false};
  auto before = book.Get(agent);
  if (!before.ok()) __builtin_trap();
  // A decision on top of what loaded, then the records round trip.
  const TrustLevel other =
      before->level == TrustLevel::kTrusted ? TrustLevel::kProbation : TrustLevel::kTrusted;
  if (!book.Decide(agent, other, "fuzz", "", 1).ok()) __builtin_trap();
  const auto records = book.TakeDirty();
  if (records.size() != 1) __builtin_trap();
  TrustBook again;
  if (!again.Load(records[0].first, records[0].second).ok()) __builtin_trap();
  auto after = again.Get(agent);
  if (!after.ok() || after->level != other ||
      after->history.size() != book.Get(agent)->history.size()) {
    __builtin_trap();
  }
  return 0;
}
