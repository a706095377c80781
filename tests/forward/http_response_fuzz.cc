// Fuzzes the reading of HTTP collectors' answers (outside input: whatever answers on the
// configured address): the first two bytes pick a status code, the rest is the body. The
// readers never crash or throw, and the _bulk reader gives one verdict per record sent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "aggregator/forward/http_responses.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const long status = 100 + (data[0] << 8 | data[1]) % 500;
  const size_t sent = data[2] % 8 + 1;
  const std::string body(reinterpret_cast<const char*>(data) + 3, size - 3);
  std::string why;
  (void)tripline::forward::HecVerdict(status, body, &why);
  why.clear();
  if (tripline::forward::BulkVerdicts(status, body, sent, &why).size() != sent) std::abort();
  (void)tripline::forward::VerdictOfStatus(status);
  return 0;
}
