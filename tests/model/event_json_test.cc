#include "model/event_json.h"

#include <gtest/gtest.h>

#include "tests/model/sample_events.h"

namespace tripline {
namespace {

TEST(EventJsonTest, EveryKindRoundTrips) {
  for (const Event& e : testing::SampleEvents()) {
    const nlohmann::json j = EventToJson(e);
    const std::string line = j.dump();
    auto back = EventFromJsonLine(line);
    ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << line;
    EXPECT_EQ(EventToJson(*back), j);
  }
}

TEST(EventJsonTest, ShapeOfALoginEvent) {
  const nlohmann::json j = EventToJson(testing::SampleEvents()[0]);
  EXPECT_EQ(j["kind"], "login");
  EXPECT_EQ(j["host"], "hosta");
  EXPECT_EQ(j["time"], "2025-11-25T03:41:07.123Z");
  EXPECT_EQ(j["session"], "audit:17");
  EXPECT_EQ(j["process"]["comm"], "sshd");
  EXPECT_EQ(j["login"]["user"], "alice");
  EXPECT_EQ(j["login"]["outcome"], "failure");
  EXPECT_EQ(j["login"]["source"], "pam");
  EXPECT_EQ(j["login"]["remote_port"], 40022);
}

TEST(EventJsonTest, TimeTextIsAcceptedWithoutTimeNs) {
  auto e = EventFromJsonLine(R"({"kind":"file_open","time":"2025-11-25T03:41:07Z","host":"h",)"
                             R"("file_open":{"path":"/etc/shadow","access":"read"}})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->time_ns, 1'764'042'067'000'000'000LL);
  EXPECT_EQ(e->As<FileOpenEvent>()->access, FileAccess::kRead);
}

TEST(EventJsonTest, RejectsHostileInput) {
  const char* bad[] = {
      "",
      "not json",
      "[]",
      R"({"kind":"login"})",
      R"({"kind":"teleport","time_ns":1,"host":"h"})",
      R"({"kind":"login","time_ns":1,"host":"h","login":{"outcome":"maybe"}})",
      R"({"kind":"login","time_ns":1,"host":"h","login":{"remote_port":70000}})",
      R"({"kind":"login","time_ns":1,"host":"h","login":{"user":5}})",
      R"({"kind":"login","time_ns":-1e3,"host":"h","login":{}})",
      R"({"kind":"exec","time_ns":1,"host":"h","exec":{"argv":[1,2]}})",
      R"({"kind":"net","time_ns":1,"host":"h","process":{"pid":-4},"net":{}})",
      R"({"kind":"file_open","time_ns":1,"host":"h","file_open":{"path":""}})",
      R"({"kind":"health","time_ns":1,"host":"h","health":{"ringbuf_drops_by_kind":[-1]}})",
  };
  for (const char* line : bad) {
    auto r = EventFromJsonLine(line);
    EXPECT_FALSE(r.ok()) << line;
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty());
    }
  }
}

}  // namespace
}  // namespace tripline
