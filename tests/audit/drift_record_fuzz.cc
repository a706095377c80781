// Fuzz target: arbitrary bytes as a stored privilege-drift record (DecodeDriftRecord, what
// DriftBook::Open reads at every start). The first byte picks the key: even, a provisioned
// record ("p/hosta\0aiops"); odd, a usage record ("u/hosta\0aiops"); the rest is the value.
// Must never crash; what is accepted keeps the record's rules.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "aggregator/audit/privilege_drift.h"
#include "model/posture_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string key =
      std::string(data[0] % 2 == 0 ? "p/" : "u/") + "hosta" + std::string(1, '\0') + "aiops";
  const std::string value(reinterpret_cast<const char*>(data + 1), size - 1);
  auto r = tripline::audit::DecodeDriftRecord(key, value);
  if (!r.ok()) return 0;
  if (r->host != "hosta" || r->account != "aiops") std::abort();
  if (r->provisioned) {
    if (r->p.kind != "service" && r->p.kind != "agent") std::abort();
    if (r->p.seen_ns < r->p.first_seen_ns) std::abort();
    for (const std::string& g : r->p.groups) {
      if (!tripline::IsRootEquivalentGroup(g)) std::abort();
    }
  } else {
    for (const auto& [privilege, t] : r->u.last_ns) {
      if (privilege.empty() || t <= 0) std::abort();
      // Every privilege used has a first use, no later than its last.
      const auto first = r->u.first_ns.find(privilege);
      if (first == r->u.first_ns.end() || first->second > t) std::abort();
    }
    if (r->u.first_ns.size() != r->u.last_ns.size()) std::abort();
  }
  return 0;
}
