// --forward URLs: every form of the interface contract, and a clear error for each mistake.
#include "aggregator/forward/forward_target.h"

#include <gtest/gtest.h>

namespace tripline {
namespace {

TEST(ForwardTargetTest, AcceptsTheContractForms) {
  auto t = ParseForwardUrl("syslog+tcp://127.0.0.1:514");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, ForwardTarget::Kind::kSyslogTcp);
  EXPECT_EQ(t->format, "cef");
  EXPECT_EQ(t->address.ToString(), "127.0.0.1:514");
  t = ParseForwardUrl("syslog+tls://[::1]:6514/");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, ForwardTarget::Kind::kSyslogTls);
  t = ParseForwardUrl("https://splunk.example/services/collector/event?format=hec");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->address.port, 443);
  EXPECT_EQ(t->path, "/services/collector/event");
  EXPECT_EQ(t->format, "hec");
  t = ParseForwardUrl("http://localhost:9200/tripline/_bulk?format=elastic-bulk");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, ForwardTarget::Kind::kHttp);
  t = ParseForwardUrl(
      "https://es.example:9200/_bulk?token_file=/etc/t/es.key&format=elastic-bulk&ca_file=/c.pem");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, "elastic-bulk");
  EXPECT_EQ(t->token_file, "/etc/t/es.key");
  EXPECT_EQ(t->ca_file, "/c.pem");
  EXPECT_EQ(t->path, "/_bulk");
  t = ParseForwardUrl("file:///var/log/tripline.jsonl");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/var/log/tripline.jsonl");
  EXPECT_EQ(t->format, "ocsf");
}

TEST(ForwardTargetTest, RefusesMistakesWithAReason) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"ftp://x", "scheme must be"},
      {"syslog+tcp://127.0.0.1", "port"},
      {"syslog+tcp://127.0.0.1:0", "port 0"},
      {"syslog+tcp://127.0.0.1:514/x", "HOST:PORT only"},
      {"http://example.com/x", "loopback"},
      {"https://h/x?format=cef", "format must be"},
      {"https://h/x?format=ocsf&y=1", "query parameters are"},
      {"https://h/x?token_file=relative", "absolute path"},
      {"https://h/x?ca_file=/a&ca_file=/b", "given twice"},
      {"file:///x?token_file=/t", "only query parameter"},
      {"https://h/a b", "printable ASCII"},
      {"https://h/a\nb", "printable ASCII"},
      {"file://relative.jsonl", "absolute path"},
      {"file:///var/log/?format=ocsf", "directory"},
      {"file:///x?format=hec", "format must be"},
  };
  for (const auto& [url, why] : bad) {
    auto t = ParseForwardUrl(url);
    ASSERT_FALSE(t.ok()) << url;
    EXPECT_NE(t.status().message().find(why), std::string::npos)
        << url << ": " << t.status().message();
  }
}

}  // namespace
}  // namespace tripline
