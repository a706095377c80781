// Fuzz target: arbitrary bytes as an ingest request, through the same parse and validation
// the ingest service applies. Must never crash, and validation must hold its promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "aggregator/ingest/ingest_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tripline::v1::IngestRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (request.has_hello()) {
    auto id = tripline::ValidateHello(request.hello());
    if (id.ok() && (id->sensor_id.empty() || id->sensor_id.size() > tripline::kMaxSensorIdBytes)) {
      std::abort();
    }
  }
  // Where the scan finds the events' bytes, they are exactly what the parser decoded.
  std::vector<std::string_view> encodings;
  if (tripline::FindEventEncodings(std::string_view(reinterpret_cast<const char*>(data), size),
                                   &encodings) &&
      request.has_batch() &&
      encodings.size() == static_cast<size_t>(request.batch().events_size())) {
    for (size_t i = 0; i < encodings.size(); ++i) {
      tripline::v1::Event again;
      if (!again.ParseFromArray(encodings[i].data(), static_cast<int>(encodings[i].size())) ||
          again.SerializeAsString() !=
              request.batch().events(static_cast<int>(i)).SerializeAsString()) {
        std::abort();
      }
    }
  }
  if (request.has_batch()) {
    for (const std::string& stream : {request.batch().sensor_id(), std::string("sensor-1")}) {
      auto batch = tripline::ValidateBatch(request.batch(), stream, 64);
      if (!batch.ok()) continue;
      if (batch->events.size() > 64 || batch->first_seq == 0) std::abort();
      for (size_t i = 0; i < batch->events.size(); ++i) {
        if (batch->events[i].seq != batch->first_seq + i || batch->events[i].time_ns <= 0) {
          std::abort();
        }
      }
    }
  }
  return 0;
}
