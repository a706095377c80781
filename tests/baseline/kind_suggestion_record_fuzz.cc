// Fuzz target for KindSuggester::Load: records are read back from the store at every start;
// a damaged one must give a clear error, never a crash, and what loads must write records
// that load again.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/baseline/kind_suggester.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline;
  using namespace tripline::baseline;
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  KindSuggester s;
  if (!s.Load("kind-suggestion/backup", value).ok()) return 0;
  (void)s.Suggestions();
  (void)s.stats();
  Event e;
  e.time_ns = 1'795'392'000LL * 1'000'000'000LL;
  e.process.user = "backup";
  ExecEvent x;
  x.filename = "/usr/bin/true";
  e.body = x;
  s.Observe(e, IdentityResolver{});
  (void)s.Confirm("backup", IdentityKind::kService, "fuzz", e.time_ns);
  KindSuggester again;
  for (const auto& [k, v] : s.TakeDirty()) {
    if (!v.empty() && !again.Load(k, v).ok()) __builtin_trap();
  }
  return 0;
}
