// Fuzz target: the condition grammar of Sigma's detection section (condition.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/rules/condition.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)tripline::rules::ParseCondition(text);
  (void)tripline::rules::MatchNamePattern(text.substr(0, size / 2), text.substr(size / 2));
  return 0;
}
