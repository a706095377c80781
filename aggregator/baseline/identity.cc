#include "aggregator/baseline/identity.h"

namespace tripline::baseline {

std::string_view KindName(IdentityKind kind) {
  switch (kind) {
    case IdentityKind::kHuman: return "human";
    case IdentityKind::kService: return "service";
    case IdentityKind::kAgent: return "agent";
    case IdentityKind::kHost: return "host";
  }
  return "human";
}

bool ParseKind(std::string_view name, IdentityKind* out) {
  if (name == "human" || name == "user") {
    *out = IdentityKind::kHuman;
  } else if (name == "service") {
    *out = IdentityKind::kService;
  } else if (name == "agent") {
    *out = IdentityKind::kAgent;
  } else if (name == "host") {
    *out = IdentityKind::kHost;
  } else {
    return false;
  }
  return true;
}

std::string Identity::Key() const { return std::string(KindName(kind)) + ":" + name; }

bool GlobMatch(std::string_view p, std::string_view t) {
  // Iterative matcher with one backtrack point: linear in practice, no recursion.
  size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

IdentityResolver::IdentityResolver()
    : rules_(std::make_shared<const std::vector<IdentityRule>>()) {}

IdentityResolver::IdentityResolver(std::vector<IdentityRule> rules)
    : rules_(std::make_shared<const std::vector<IdentityRule>>(std::move(rules))) {}

void IdentityResolver::Replace(std::vector<IdentityRule> rules) {
  rules_.store(std::make_shared<const std::vector<IdentityRule>>(std::move(rules)));
}

bool IdentityResolver::DeclaredOnProbation(std::string_view name) const {
  const std::shared_ptr<const std::vector<IdentityRule>> rules = rules_.load();
  for (const IdentityRule& r : *rules) {
    if (r.kind != IdentityKind::kAgent || !r.probation) continue;
    if (!r.name.empty() ? r.name == name
                        : r.user.empty() || (r.exact ? r.user == name : GlobMatch(r.user, name))) {
      return true;
    }
  }
  return false;
}

Identity IdentityResolver::Resolve(std::string_view user, const ProcessInfo* process) const {
  const std::shared_ptr<const std::vector<IdentityRule>> rules = rules_.load();
  for (const IdentityRule& r : *rules) {
    const auto match = [&r](std::string_view pattern, std::string_view text) {
      return r.exact ? pattern == text : GlobMatch(pattern, text);
    };
    if (!r.user.empty() && !match(r.user, user)) continue;
    if (!r.exe.empty() && (process == nullptr || !match(r.exe, process->exe))) continue;
    if (!r.cgroup.empty()) {
      if (process == nullptr) continue;
      if (!match(r.cgroup, process->container_id) &&
          !match(r.cgroup, std::to_string(process->cgroup_id))) {
        continue;
      }
    }
    if (!r.k8s_service_account.empty()) {
      if (process == nullptr || process->k8s_service_account.empty()) continue;
      if (!match(r.k8s_service_account,
                 process->k8s_namespace + "/" + process->k8s_service_account)) {
        continue;
      }
    }
    if (r.user.empty() && r.exe.empty() && r.cgroup.empty() && r.k8s_service_account.empty()) {
      continue;  // matches nothing
    }
    return {r.kind, r.name.empty() ? std::string(user) : r.name,
            r.kind == IdentityKind::kAgent && r.probation};
  }
  return {IdentityKind::kHuman, std::string(user)};
}

}  // namespace tripline::baseline
