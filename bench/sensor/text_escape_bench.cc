// text_escape_bench: what the text rules of common/text_escape.h cost on the sensor's
// event path and in log lines.
//
//   text_escape_bench [--events N]
//
// 1. EscapeInvalidUtf8(Event*), which the sensor's pipeline applies to every event: a
//    realistic exec event that is valid UTF-8 (the usual case: one scan, no copy) and the
//    same event with a 0xff byte in its path and an argument (rewritten and named), next to
//    ToProto + SerializeToString of the same event, which every event pays anyway.
// 2. EscapeForDisplay on a typical log line and on a line with controls, in MB/s.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/text_escape.h"
#include "model/event.h"
#include "model/event_proto.h"

namespace tripline {
namespace {

Event ExecEvent_(bool invalid) {
  Event e;
  e.time_ns = 1'795'578'060LL * 1'000'000'000LL;
  e.host = "web-17.prod.example";
  e.host_id = "3d1219c7c4c5404aaa1f6d2a48adfda4";
  e.session = "audit:1734";
  e.process.pid = e.process.tgid = 48211;
  e.process.comm = "python3";
  e.process.exe = "/usr/bin/python3.11";
  e.process.user = e.process.login_user = "deploy";
  ExecEvent x;
  x.filename = invalid ? "/tmp/.cache/\xff/python3" : "/usr/bin/python3";
  x.argv = {"python3", "-m",     "pip",
            "install", "--user", invalid ? "requests\xfe" : "requests==2.31.0"};
  x.parent_comm = "bash";
  e.body = std::move(x);
  return e;
}

template <typename Fn>
double NsPer(size_t n, Fn fn) {
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) fn(i);
  const auto end = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(end - start).count() / static_cast<double>(n);
}

// Read at the end, so the timed work cannot be optimized away.
size_t g_sink = 0;

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) {
  using namespace tripline;
  size_t n = 1'000'000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--events") == 0) n = std::strtoull(argv[i + 1], nullptr, 10);
  }
  std::printf("events: %zu\n", n);
  {
    // Valid UTF-8 (the usual case): nothing changes, so the same event is checked again.
    Event e = ExecEvent_(false);
    const double check = NsPer(n, [&](size_t) { g_sink += EscapeInvalidUtf8(&e) + 1; });
    v1::Event wire;
    std::string bytes;
    const double serialize = NsPer(n, [&](size_t) {
      ToProto(e, &wire);
      wire.SerializeToString(&bytes);
      g_sink += bytes.size();
    });
    std::printf("%-28s EscapeInvalidUtf8 %6.1f ns/event   ToProto+Serialize %6.1f ns/event\n",
                "exec event, valid UTF-8:", check, serialize);
  }
  {
    // Two invalid bytes: each round rewrites a fresh copy; the copy alone is subtracted.
    const Event base = ExecEvent_(true);
    const double copy = NsPer(n, [&](size_t) {
      Event e = base;
      g_sink += e.host.size();
    });
    const double escape = NsPer(n, [&](size_t) {
      Event e = base;
      g_sink += EscapeInvalidUtf8(&e);
    });
    Event escaped = base;
    EscapeInvalidUtf8(&escaped);
    v1::Event wire;
    std::string bytes;
    const double serialize = NsPer(n, [&](size_t) {
      ToProto(escaped, &wire);
      wire.SerializeToString(&bytes);
      g_sink += bytes.size();
    });
    std::printf("%-28s EscapeInvalidUtf8 %6.1f ns/event   ToProto+Serialize %6.1f ns/event\n",
                "exec event, 2 invalid bytes:", escape - copy, serialize);
  }
  const std::string plain =
      "I 05:52:50.690 ingest_service.cc:95] sensor 3d1219c7c4c5404aaa1f6d2a48adfda4 (web-17) "
      "connected from ipv4:198.18.0.17:40022, durable_seq 1520";
  const std::string hostile =
      "W 05:52:50.690 ingest_service.cc:95] sensor x (evil\n\x1b]0;t\x07"
      "\xe2\x80\xae) connected, user \x1b[2J\xff";
  for (const auto& [name, line] :
       {std::pair{"log line, plain:", &plain}, std::pair{"log line, with controls:", &hostile}}) {
    const double ns = NsPer(n, [&](size_t) { g_sink += EscapeForDisplay(*line).size(); });
    std::printf("%-28s EscapeForDisplay %6.1f ns/line (%zu bytes, %.0f MB/s)\n", name, ns,
                line->size(), static_cast<double>(line->size()) / ns * 1e3);
  }
  return g_sink == 0 ? 1 : 0;
}
