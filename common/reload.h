// Configuration reload on SIGHUP, in two phases.
//
// Each part of a program that can take a new configuration while running registers one
// step: given the freshly parsed configuration, Prepare checks and builds everything it
// needs without changing anything, and returns the Apply that swaps it in. ReloadAll
// prepares every step first and applies only when all of them prepared, so an invalid file
// (or a certificate that does not load) is reported and changes nothing at all.
//
//   ReloadRegistry<AggregatorSettings> reloads;
//   reloads.Register("identities", [&](const AggregatorSettings& s)
//       -> Result<ReloadRegistry<AggregatorSettings>::Apply> { ...; return Apply{...}; });
//   Status s = reloads.ReloadAll(fresh_settings);  // "identities: ..." on error
//
// Apply runs on the reloading thread while the program keeps working: it must be safe
// against the component's other threads (swap a shared_ptr, take the component's lock).
// ReloadAll itself is called from one thread at a time.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tripline {

template <typename Config>
class ReloadRegistry {
 public:
  using Apply = std::function<void()>;
  using Prepare = std::function<Result<Apply>(const Config&)>;

  void Register(std::string name, Prepare prepare) {
    steps_.push_back({std::move(name), std::move(prepare)});
  }

  // The registered steps' names, in registration order (what a reload re-reads).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const Step& s : steps_) out.push_back(s.name);
    return out;
  }

  // Prepares every step with `config`; on the first failure returns it, prefixed with the
  // step's name, and applies nothing. Otherwise applies every step in order.
  Status ReloadAll(const Config& config) const {
    std::vector<Apply> applies;
    applies.reserve(steps_.size());
    for (const Step& s : steps_) {
      Result<Apply> a = s.prepare(config);
      if (!a.ok()) {
        return a.status().WithContext(s.name);
      }
      applies.push_back(std::move(*a));
    }
    for (Apply& a : applies) {
      if (a) a();
    }
    return Status::Ok();
  }

 private:
  struct Step {
    std::string name;
    Prepare prepare;
  };
  std::vector<Step> steps_;
};

}  // namespace tripline
