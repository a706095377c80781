#include "common/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace tripline::failpoint {

// Dynamic initialisation; until it has run (static constructors of other files) the
// value is false, so nothing fires before main().
const bool g_armed = std::getenv("TRIPLINE_FAILPOINTS") != nullptr;

namespace {

struct Point {
  uint64_t kill_at = 0;  // 0: never
  std::atomic<uint64_t> hits{0};
};

struct Spec {
  std::string error;  // non-empty: the spec did not parse
  std::map<std::string, std::unique_ptr<Point>, std::less<>> points;
};

void Say(const std::string& line) {
  const std::string out = line + "\n";
  (void)!::write(STDERR_FILENO, out.data(), out.size());
}

Spec Parse(std::string_view text) {
  Spec spec;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      spec.error = "expected name=kill[@N], got \"" + std::string(item) + "\"";
      return spec;
    }
    std::string_view action = item.substr(eq + 1);
    uint64_t at = 1;
    if (const size_t at_sign = action.find('@'); at_sign != std::string_view::npos) {
      const std::string count(action.substr(at_sign + 1));
      char* end = nullptr;
      at = std::strtoull(count.c_str(), &end, 10);
      if (count.empty() || *end != '\0' || at == 0) {
        spec.error = "bad hit count in \"" + std::string(item) + "\"";
        return spec;
      }
      action = action.substr(0, at_sign);
    }
    if (action != "kill") {
      spec.error = "unknown action \"" + std::string(action) + "\" (only kill)";
      return spec;
    }
    auto point = std::make_unique<Point>();
    point->kill_at = at;
    spec.points[std::string(item.substr(0, eq))] = std::move(point);
  }
  return spec;
}

const Spec& TheSpec() {
  static const Spec spec =
      Parse(std::getenv("TRIPLINE_FAILPOINTS") ? std::getenv("TRIPLINE_FAILPOINTS") : "");
  return spec;
}

}  // namespace

void Hit(std::string_view name) {
  const Spec& spec = TheSpec();
  if (!spec.error.empty()) {
    Say("TRIPLINE_FAILPOINTS: " + spec.error);
    ::_exit(70);
  }
  const auto it = spec.points.find(name);
  if (it == spec.points.end()) return;
  const uint64_t hit = it->second->hits.fetch_add(1) + 1;
  if (hit != it->second->kill_at) return;
  Say("failpoint " + std::string(name) + ": SIGKILL at hit " + std::to_string(hit));
  ::kill(::getpid(), SIGKILL);
  ::pause();  // SIGKILL cannot be caught; this thread goes no further meanwhile
}

}  // namespace tripline::failpoint
