#include "common/host_port.h"

#include <gtest/gtest.h>

namespace tripline {
namespace {

TEST(HostPortTest, ParsesV4NameAndV6) {
  auto a = ParseHostPort("127.0.0.1:9000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9000);
  EXPECT_TRUE(a->IsLoopback());
  auto b = ParseHostPort("localhost:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 0);
  auto c = ParseHostPort("[::1]:443");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->ToString(), "[::1]:443");
  EXPECT_TRUE(c->IsLoopback());
  EXPECT_FALSE(ParseHostPort("198.18.0.1:22")->IsLoopback());
}

// Loopback is decided from the parsed address, never from how the text begins: a name
// such as 127.x.example resolves wherever its owner likes.
TEST(HostPortTest, LoopbackOnlyForLoopbackAddresses) {
  for (const char* yes :
       {"127.0.0.1:1", "127.255.3.4:1", "[::1]:1", "[::ffff:127.0.0.9]:1", "localhost:1"}) {
    EXPECT_TRUE(ParseHostPort(yes)->IsLoopback()) << yes;
  }
  for (const char* no :
       {"127.x.example:1", "127.0.0.1.example:1", "127.evil.example.com:1", "0.0.0.0:1", "[::]:1",
        "[::ffff:10.0.0.1]:1", "128.0.0.1:1", "localhost.example:1"}) {
    EXPECT_FALSE(ParseHostPort(no)->IsLoopback()) << no;
  }
}

TEST(HostPortTest, RejectsBadInput) {
  for (const char* bad : {"", "host", ":80", "host:", "host:65536", "host:-1", "host:8o", "::1:80",
                          "[::1]80", "[::1"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

}  // namespace
}  // namespace tripline
