// Fuzzes the wire decoder for events (network messages from sensors): bytes -> v1::Event
// -> domain Event must never crash, and an accepted event must survive a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "model/event_json.h"
#include "model/event_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tripline::v1::Event wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto event = tripline::FromProto(wire);
  if (!event.ok()) return 0;
  tripline::v1::Event again;
  tripline::ToProto(*event, &again);
  auto back = tripline::FromProto(again);
  if (!back.ok() || tripline::EventToJson(*back) != tripline::EventToJson(*event)) std::abort();
  return 0;
}
