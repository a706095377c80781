// Fuzz target for DecodePartitionBatch: the events stream's messages are read by every
// worker, and whatever a damaged or hostile message holds must be a clear error. What
// decodes must encode to a message that decodes to the same sensor, sequence numbers,
// events and copies.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/cluster/stream_sink.h"
#include "model/event_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline;
  using namespace tripline::cluster;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto r = DecodePartitionBatch(bytes);
  if (!r.ok()) {
    if (!r.status().IsInvalidArgument()) __builtin_trap();
    return 0;
  }
  if (r->events.empty() || r->sensor_id.empty()) __builtin_trap();
  std::vector<uint64_t> seqs;
  std::vector<std::string> encoded;
  v1::Event pb;
  for (const Event& e : r->events) {
    if (!seqs.empty() && e.seq <= seqs.back()) __builtin_trap();
    seqs.push_back(e.seq);
    ToProto(e, &pb);
    encoded.push_back(pb.SerializeAsString());
  }
  const std::vector<std::string_view> views(encoded.begin(), encoded.end());
  const auto twice =
      DecodePartitionBatch(EncodePartitionBatch(r->sensor_id, seqs, views, r->copies));
  if (!twice.ok() || twice->sensor_id != r->sensor_id || twice->events.size() != r->events.size() ||
      twice->copies != r->copies) {
    __builtin_trap();
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (twice->events[i].seq != seqs[i] || twice->events[i].time_ns != r->events[i].time_ns ||
        twice->events[i].host != r->events[i].host ||
        twice->events[i].kind() != r->events[i].kind()) {
      __builtin_trap();
    }
  }
  return 0;
}
