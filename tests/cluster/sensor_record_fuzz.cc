// Fuzz target for DecodeSensorRecord: sensors' records come from the cluster's key-value
// store, written by any ingest node (or damaged); a bad one must be a clear error, and
// whatever decodes must encode to a record that decodes the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregator/cluster/stream_sink.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline::cluster;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto r = DecodeSensorRecord(bytes, "sensor-a");
  if (!r.ok()) {
    if (!r.status().IsCorruption()) __builtin_trap();
    return 0;
  }
  const auto twice = DecodeSensorRecord(EncodeSensorRecord(*r), "sensor-a");
  if (!twice.ok() || twice->host != r->host || twice->durable_seq != r->durable_seq ||
      twice->events != r->events || twice->missing != r->missing ||
      twice->last_write_ns != r->last_write_ns) {
    __builtin_trap();
  }
  std::string sensor;
  uint64_t first = 0;
  uint64_t last = 0;
  if (ParseBatchMessageId(bytes, &sensor, &first, &last)) {
    if (first == 0 || last < first) __builtin_trap();
    // Only canonical decimals read back byte for byte; leading zeros do not.
    if (BatchMessageId(sensor, first, last) != std::string(bytes) &&
        bytes.find(":0") == std::string_view::npos && bytes.find("-0") == std::string_view::npos) {
      __builtin_trap();
    }
  }
  return 0;
}
