#include "sensor/event_pipeline.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "sensor/jsonl_sink.h"
#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

// Records what the pipeline emits.
class CollectingSink final : public EventSink {
 public:
  Status Emit(Event&& event) override {
    events.push_back(std::move(event));
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  Status Close(int) override { return Status::Ok(); }
  uint64_t dropped() const override { return 3; }
  std::vector<Event> events;
};

TEST(EventPipelineTest, KernelEventsPostureAndHealth) {
  TempTree tree;
  tree.Write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
  tree.Write("/etc/group", "root:x:0:\n");
  RootedHostFiles files(tree.root());
  FakeClock clock;
  CollectingSink sink;
  EventPipeline pipeline({"hosta", "00112233445566778899aabbccddeeff"}, files, files, clock, sink);

  Event e;
  e.process.pid = e.process.tgid = 4242;
  e.process.audit_session = 9;
  e.process.comm = "cat";
  e.body = FileOpenEvent{"/etc/shadow", 0, FileAccess::kRead, 0, "exact:/etc/shadow"};
  ASSERT_TRUE(pipeline.HandleKernelEvent(std::move(e)).ok());
  pipeline.CountDecodeError();
  ASSERT_TRUE(pipeline.EmitPosture().ok());
  clock.AdvanceNs(2 * kNanosPerSecond);
  ExternalCounters ext;
  ext.ringbuf_drops = 7;
  ext.disabled_programs = {"net: test"};
  ext.warnings = {"events go to 198.51.100.7:4317 in clear text"};
  ext.delivery_protocol_violations = 5;
  ext.addresses = {"198.18.0.5", "2001:db8::5"};
  auto health = pipeline.EmitHealth(ext);
  ASSERT_TRUE(health.ok());

  ASSERT_EQ(sink.events.size(), 3u);
  const Event& file = sink.events[0];
  EXPECT_EQ(file.seq, 1u);
  EXPECT_EQ(file.host, "hosta");
  EXPECT_EQ(file.process.user, "root");
  EXPECT_EQ(file.session, "audit:9");
  EXPECT_EQ(sink.events[1].kind(), EventKind::kPosture);
  EXPECT_EQ(sink.events[1].host, "hosta");
  EXPECT_EQ(sink.events[1].As<PostureSnapshot>()->accounts.size(), 1u);
  const SensorHealth* h = sink.events[2].As<SensorHealth>();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(sink.events[2].seq, 3u);
  EXPECT_EQ(h->ringbuf_drops, 7u);
  EXPECT_EQ(h->decode_errors, 1u);
  EXPECT_EQ(h->uptime_seconds, 2u);
  EXPECT_EQ(h->disabled_programs, std::vector<std::string>{"net: test"});
  EXPECT_EQ(h->warnings, std::vector<std::string>{"events go to 198.51.100.7:4317 in clear text"});
  EXPECT_EQ(h->delivery_protocol_violations, 5u);
  EXPECT_EQ(h->addresses, (std::vector<std::string>{"198.18.0.5", "2001:db8::5"}));
  EXPECT_NE(HealthReporter::Summary(*h).find("5 aggregator acks refused"), std::string::npos);
  EXPECT_NE(Summarize(sink.events[2]).find("warning: events go to 198.51.100.7:4317 in clear text"),
            std::string::npos);
  bool saw_file_kind = false;
  for (const KindCounters& k : h->kinds) {
    if (k.kind == "file_open") {
      saw_file_kind = true;
      EXPECT_EQ(k.events, 1u);
      EXPECT_DOUBLE_EQ(k.events_per_second, 0.5);
    }
  }
  EXPECT_TRUE(saw_file_kind);
  EXPECT_NE(HealthReporter::Summary(*h).find("7 ring-buffer drops"), std::string::npos);
}

// Whatever bytes a kernel string holds, what the pipeline emits is valid UTF-8 (so the wire
// can carry it) and says which strings were escaped.
TEST(EventPipelineTest, KernelStringsThatAreNotUtf8AreEscapedAndNamed) {
  TempTree tree;
  tree.Write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
  RootedHostFiles files(tree.root());
  FakeClock clock;
  CollectingSink sink;
  EventPipeline pipeline({"hosta", "00112233445566778899aabbccddeeff"}, files, files, clock, sink);
  Event e;
  e.process.pid = e.process.tgid = 4242;
  e.process.comm =
      "ba\xff"
      "d";
  e.body = ExecEvent{"/tmp/\xc0\xaf/x", {"x", "caf\xc3\xa9", "a\\b\x80"}, false, "bash"};
  ASSERT_TRUE(pipeline.HandleKernelEvent(std::move(e)).ok());
  ASSERT_EQ(sink.events.size(), 1u);
  const Event& out = sink.events[0];
  EXPECT_EQ(out.process.comm, "ba\\xffd");
  const ExecEvent& x = *out.As<ExecEvent>();
  EXPECT_EQ(x.filename, "/tmp/\\xc0\\xaf/x");
  EXPECT_EQ(x.argv[1], "caf\xc3\xa9");  // valid UTF-8: untouched
  EXPECT_EQ(x.argv[2], "a\\\\b\\x80");
  EXPECT_EQ(out.process.exe, x.filename);  // the enricher took it from the exec
  EXPECT_EQ(out.escaped_fields, (std::vector<std::string>{"process.comm", "process.exe",
                                                          "exec.filename", "exec.argv[2]"}));
}

TEST(JsonlSinkTest, OneObjectPerLine) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* mem = open_memstream(&buf, &len);
  ASSERT_NE(mem, nullptr);
  {
    JsonlSink sink(mem);
    Event e;
    e.host = "h";
    e.process.comm = std::string("bad\xff utf8");
    e.body = FileOpenEvent{"/etc/shadow", 0, FileAccess::kRead, 0, ""};
    ASSERT_TRUE(sink.Emit(std::move(e)).ok());
    Event e2;
    e2.body = ExecEvent{};
    ASSERT_TRUE(sink.Emit(std::move(e2)).ok());
    ASSERT_TRUE(sink.Flush().ok());
  }
  std::fclose(mem);
  std::string out(buf, len);
  free(buf);
  size_t first = out.find('\n');
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(out.find("\"file_open\""), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n', first + 1), out.size() - 1);
}

}  // namespace
}  // namespace tripline::sensor
