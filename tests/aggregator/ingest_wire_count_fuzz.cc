// Fuzz target: arbitrary bytes as an ingest request, counted on the wire
// (InspectIngestRequest) as the ingest service does before parsing. Must never crash, never
// count past its limit + 1, and where the request parses as one batch it must count what
// the parser decoded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "aggregator/ingest/ingest_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr size_t kLimit = 64;
  constexpr uint64_t kFields = 4096;
  const tripline::WireRequestShape shape = tripline::InspectIngestRequest(bytes, kLimit, kFields);
  if (shape.events > kLimit + 1 || shape.fields > kFields + 1 + size) std::abort();
  tripline::v1::IngestRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  // The walk refuses some encodings the parser takes (groups, deep nesting): the service
  // then refuses the request unparsed. Below, only what was walked within the budget.
  if (!shape.walked || shape.fields > kFields) return 0;
  // Only batch fields (FindEventEncodings succeeds): the count is the parser's, up to the
  // limit, and so is first_seq.
  std::vector<std::string_view> encodings;
  if (request.has_batch() && tripline::FindEventEncodings(bytes, &encodings)) {
    const auto parsed = static_cast<uint64_t>(request.batch().events_size());
    if (parsed <= kLimit && shape.events != parsed) std::abort();
    if (parsed > kLimit && shape.events != kLimit + 1) std::abort();
    if (parsed <= kLimit && shape.first_seq != request.batch().first_seq()) std::abort();
  }
  return 0;
}
