// libFuzzer target for the ring-buffer record decoder: any bytes in, an Event or a Status
// out, never a crash, a hang or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <span>

#include "sensor/record_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tripline::sensor::SensitivePath kRules[] = {
      {tripline::sensor::SensitivePath::Match::kExact, "/etc/shadow"},
      {tripline::sensor::SensitivePath::Match::kPrefix, "/etc/pam.d/"},
  };
  std::span<const uint8_t> bytes(data, size);
  auto event = tripline::sensor::DecodeRecord(bytes, 1'700'000'000'000'000'000LL);
  if (event.ok()) {
    // Touch the decoded strings so sanitizers see every byte the decoder produced.
    volatile size_t sink = event->process.comm.size();
    (void)sink;
  }
  auto with_rules = tripline::sensor::DecodeRecord(bytes, 0, kRules);
  (void)with_rules;
  return 0;
}
