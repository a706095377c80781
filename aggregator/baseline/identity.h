// Identities: who a baseline is about. An identity is (kind, name); the kind is a
// dimension of every model (an agent's normal is judged against agents, a person's
// against people).
//
// Service accounts and AI agents are declared in the aggregator's configuration
// (tripline.v1.IdentityRule: by user name, executable or cgroup pattern), or confirmed from a
// suggestion (kind_suggester.h); every other account is a human, and every host is its own identity
// of kind host.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/event.h"

namespace tripline::baseline {

enum class IdentityKind : uint8_t { kHuman = 0, kService = 1, kAgent = 2, kHost = 3 };

// "human", "service", "agent", "host".
std::string_view KindName(IdentityKind kind);
// Accepts the names above (and "user" for human). False for anything else.
bool ParseKind(std::string_view name, IdentityKind* out);

struct Identity {
  IdentityKind kind = IdentityKind::kHuman;
  std::string name;
  // The declaring rule puts the identity on probation (trust_book.h); agents only.
  bool probation = false;
  // "human:alice", "host:db1": the key of the identity's record.
  std::string Key() const;
};

// One declared identity. Patterns are globs ('*' matches any run, '?' one character);
// an empty pattern matches anything; every non-empty pattern must match.
struct IdentityRule {
  IdentityKind kind = IdentityKind::kService;
  std::string user;    // account name
  std::string exe;     // executable path of the acting process
  std::string cgroup;  // matched against the process's container id and its cgroup id
  std::string name;    // identity name to give; the account name when empty
  // Patterns are compared as they are, not as globs (rules made from an account name, as
  // a confirmed suggestion's, where '*' is a character of the name).
  bool exact = false;
  // Matched against "<namespace>/<service account>" of the process's pod (the sensor reads
  // the account from the token the kubelet mounts; sensor/kube_pod.h).
  std::string k8s_service_account;
  // An agent that starts on probation (tripline.v1.IdentityRule.trust, trust_book.h).
  bool probation = false;
  // Its processes are MCP servers (tripline.v1.IdentityRule.mcp_server): named so in the
  // privilege audit's process findings.
  bool mcp_server = false;
};

// True when `text` matches the glob `pattern` ('*', '?').
bool GlobMatch(std::string_view pattern, std::string_view text);

class IdentityResolver {
 public:
  IdentityResolver();
  explicit IdentityResolver(std::vector<IdentityRule> rules);
  IdentityResolver(const IdentityResolver& other) : rules_(other.rules_.load()) {}
  IdentityResolver& operator=(const IdentityResolver& other) {
    rules_.store(other.rules_.load());
    return *this;
  }

  // The identity of `user` acting through `process` (nullptr when only the account is
  // known, as for a login). The first matching rule wins; human otherwise. Rules that
  // name only an executable or cgroup need the process.
  Identity Resolve(std::string_view user, const ProcessInfo* process) const;
  static Identity Host(std::string_view host) { return {IdentityKind::kHost, std::string(host)}; }

  std::vector<IdentityRule> rules() const { return *rules_.load(); }
  // Whether a rule that may name an agent `name` declares it on probation: a rule whose
  // `name` is it, or one without a name (the agent is then named after the account) whose
  // user pattern, if any, matches it. For an agent known by name alone (a baseline fact's
  // identity), whatever rule made it.
  bool DeclaredOnProbation(std::string_view name) const;
  // Appends a rule (it matches after the ones before it).
  void Add(IdentityRule rule) {
    auto next = std::make_shared<std::vector<IdentityRule>>(*rules_.load());
    next->push_back(std::move(rule));
    rules_.store(std::move(next));
  }

  // Replaces the rules at once (configuration reload); safe while other threads resolve.
  // Identities resolved before keep their names; later events use the new rules.
  void Replace(std::vector<IdentityRule> rules);

 private:
  std::atomic<std::shared_ptr<const std::vector<IdentityRule>>> rules_;
};

}  // namespace tripline::baseline
