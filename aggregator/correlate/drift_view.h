// DriftView: what the privilege audit knows of the standing privileges an account holds
// on a host and was never seen exercising (aggregator/audit/privilege_drift.h). A chain
// that involves such a drifted identity is judged more severely, and its explanation says
// which privileges lay unused for how long (chain_scorer.h).
//
// An interface here, implemented by the audit's DriftBook, so that correlation does not
// depend on the audit. Implementations must be thread-safe: the correlator asks from its
// own thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tripline::correlate {

struct UnusedPrivileges {
  std::string kind;                     // "service" or "agent"; "" when not tracked
  std::vector<std::string> privileges;  // "sudo", "group:docker", "login", ...
  int64_t watched_ns = 0;               // how long the account was watched on the host
};

class DriftView {
 public:
  virtual ~DriftView() = default;
  // The privileges `account` holds on `host` that it had never exercised before
  // `before_ns` (a chain's first event: the chain's own first use of a privilege does not
  // count as use), over a full watch period by then; none when it is not tracked, was
  // watched too briefly or had used all it holds.
  virtual UnusedPrivileges Unused(std::string_view host, std::string_view account,
                                  int64_t before_ns) const = 0;
};

}  // namespace tripline::correlate
