// Fuzzes the JSON event decoder (imported logs, jsonl streams): no crash, no hang, and
// whatever decodes must encode and decode again to the same event.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "model/event_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto event = tripline::EventFromJsonLine(line);
  if (!event.ok()) return 0;
  const nlohmann::json j = tripline::EventToJson(*event);
  auto again = tripline::EventFromJson(j);
  if (!again.ok() || tripline::EventToJson(*again) != j) std::abort();
  return 0;
}
