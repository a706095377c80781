// Fuzzes the auth log parser (triplinectl import): no crash, no hang, and every event it
// produces is one the aggregator accepts: it converts to the wire form and back (valid
// UTF-8, bounded strings, ports in range) and serializes as protobuf.
//
// The input is a log file; its first byte picks the format (odd: journal-json, so a seed
// starting with '{' is read as JSON and one starting with a month name as syslog).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/text_lines.h"
#include "model/event_proto.h"
#include "tools/import/auth_log_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tripline;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  import::AuthLogOptions options;
  options.format =
      size > 0 && (data[0] & 1) ? import::LogFormat::kJournalJson : import::LogFormat::kSshdSyslog;
  options.host = "fuzz";
  options.now_ns = 1'765'000'000LL * kNanosPerSecond;
  import::AuthLogParser parser(options);
  std::vector<Event> events;
  std::string why;
  ForEachLine(text, [&](std::string_view line, size_t) {
    events.clear();
    const import::LineKind kind = parser.Parse(line, &events, &why);
    if ((kind == import::LineKind::kEvents) != !events.empty()) std::abort();
    if ((kind == import::LineKind::kMalformed || kind == import::LineKind::kUnrecognized) &&
        why.empty()) {
      std::abort();
    }
    for (const Event& e : events) {
      v1::Event wire;
      ToProto(e, &wire);
      std::string bytes;
      if (!wire.SerializeToString(&bytes)) std::abort();
      v1::Event back;
      if (!back.ParseFromString(bytes)) std::abort();
      if (!FromProto(back).ok()) std::abort();
    }
  });
  return 0;
}
