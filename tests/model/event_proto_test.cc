#include "model/event_proto.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/event_json.h"
#include "tests/model/sample_events.h"

namespace tripline {
namespace {

// Domain events compare through their JSON form, which names every field.
void ExpectSame(const Event& a, const Event& b) { EXPECT_EQ(EventToJson(a), EventToJson(b)); }

TEST(EventProtoTest, EveryKindRoundTripsThroughBytes) {
  for (const Event& e : testing::SampleEvents()) {
    v1::Event wire;
    ToProto(e, &wire);
    std::string bytes;
    ASSERT_TRUE(wire.SerializeToString(&bytes));
    v1::Event parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    auto back = FromProto(parsed);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSame(e, *back);
    EXPECT_EQ(back->kind(), e.kind());
  }
}

v1::Event ValidWire() {
  v1::Event w;
  ToProto(testing::SampleEvents()[0], &w);
  return w;
}

TEST(EventProtoTest, RejectsHostileInput) {
  struct Case {
    const char* what;
    void (*mutate)(v1::Event*);
    const char* expect;
  };
  const Case cases[] = {
      {"no body", [](v1::Event* w) { w->clear_body(); }, "no body"},
      {"no host", [](v1::Event* w) { w->clear_host(); }, "no host"},
      {"zero time", [](v1::Event* w) { w->set_time_ns(0); }, "time"},
      {"huge string", [](v1::Event* w) { w->set_host(std::string(5000, 'h')); }, "host"},
      {"bad enum",
       [](v1::Event* w) {
         w->mutable_login()->set_outcome(static_cast<v1::LoginEvent::Outcome>(9));
       },
       "login.outcome"},
      {"bad port", [](v1::Event* w) { w->mutable_login()->set_remote_port(70000); }, "port"},
      {"empty path", [](v1::Event* w) { w->mutable_file_open()->set_path(""); }, "path"},
      {"nan rate",
       [](v1::Event* w) {
         auto* k = w->mutable_health()->add_kinds();
         k->set_kind("login");
         k->set_events_per_second(std::nan(""));
       },
       "events_per_second"},
      {"too many args",
       [](v1::Event* w) {
         for (int i = 0; i < 300; ++i) w->mutable_exec()->add_argv("x");
       },
       "exec.argv"},
      // Built in memory, not parsed: the edge still refuses what the wire cannot carry.
      {"invalid utf-8", [](v1::Event* w) { w->set_host("host\xff"); }, "host is not valid UTF-8"},
  };
  for (const auto& c : cases) {
    v1::Event w = ValidWire();
    c.mutate(&w);
    auto r = FromProto(w);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << c.what;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.what << ": " << r.status().message();
  }
}

// A posture snapshot of a host whose account names and homes are not UTF-8 names more
// escaped strings than any other list holds; it still crosses the wire.
TEST(EventProtoTest, APostureWithManyEscapedStringsRoundTrips) {
  Event e = testing::SampleEvents()[0];
  PostureSnapshot p;
  for (int i = 0; i < 1000; ++i) {
    Account a;
    a.name = "u\xff" + std::to_string(i);
    a.home = "/home/\xfe" + std::to_string(i);
    a.shell = "/bin/sh\x80";
    a.groups = {"g\xff", "h\xfe"};
    p.accounts.push_back(std::move(a));
  }
  e.body = std::move(p);
  ASSERT_EQ(EscapeInvalidUtf8(&e), 5000u);
  v1::Event wire;
  ToProto(e, &wire);
  std::string bytes;
  ASSERT_TRUE(wire.SerializeToString(&bytes));
  v1::Event parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  auto back = FromProto(parsed);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->escaped_fields.size(), 5000u);
  EXPECT_EQ(back->escaped_fields[4], "posture.accounts[0].groups[1]");
  ExpectSame(e, *back);
}

TEST(EventProtoTest, SummariesReadWell) {
  const auto events = testing::SampleEvents();
  EXPECT_EQ(Summarize(events[0]),
            "login sshd alice from 198.18.0.66:40022 authenticate failure "
            "(authentication failure)");
  EXPECT_EQ(Summarize(events[1]), "alice (sshd) opened /etc/shadow for read, failed with errno 13");
  EXPECT_EQ(Summarize(events[3]), "sshd connected 198.18.0.1:51000 -> 198.18.0.2:22");
}

}  // namespace
}  // namespace tripline
