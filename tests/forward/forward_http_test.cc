// The HTTP outputs: Splunk's HTTP Event Collector, Elasticsearch's _bulk API and a generic
// webhook. Neither Splunk nor Elasticsearch can run here, so the receivers are small HTTP/1.1
// servers in this test that check each request as the collectors document it and answer
// as they do:
// - HEC (Splunk, "Format events for HTTP Event Collector" and "HTTP Event Collector REST API
//   endpoints"): POST /services/collector/event, "Authorization: Splunk <token>", a body of
//   JSON event objects each with "event" and optional "time" (epoch seconds), "host",
//   "source", "sourcetype"; answers 200 {"text":"Success","code":0}, 503
//   {"text":"Server is busy","code":9}, 403 {"text":"Invalid token","code":4}.
// - _bulk (Elasticsearch, "Bulk API"): POST /<index>/_bulk, "Content-Type:
//   application/x-ndjson", action and source lines each ending in a newline (the last one
//   too); external versioning refuses a version at or below the stored one with 409; the
//   answer is 200 {"took","errors","items":[{"index":{"_id","status",...}}]} with a status
//   per action (201 created, 200 updated, 409 conflict, 400 mapping error, 429 busy).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "aggregator/forward/forwarder.h"
#include "aggregator/forward/incident_formats.h"
#include "aggregator/store/rocksdb_store.h"
#include "model/incident_proto.h"
#include "tests/aggregator/test_pki.h"
#include "tests/forward/forward_test_support.h"
#include "tests/forward/test_http_server.h"
#include "tests/support/temp_dir.h"

namespace tripline::forward {
namespace {

using tripline::testing::HttpRequest;
using tripline::testing::HttpResponse;
using tripline::testing::TempDir;
using tripline::testing::TestHttpServer;

bool WaitFor(const std::function<bool()>& done, int timeout_ms = 10000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

std::vector<std::string> SplitLines(const std::string& body) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl = body.find('\n'); nl != std::string::npos; nl = body.find('\n', start)) {
    out.push_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  if (start != body.size()) out.push_back(body.substr(start));  // no final newline
  return out;
}

class ForwardHttpTest : public ::testing::Test {
 protected:
  std::unique_ptr<Forwarder> Start(const std::string& url, const std::string& ca_file = "") {
    auto store = RocksDbStore::Open({.path = dir_.Sub("data" + std::to_string(stores_.size()))});
    EXPECT_TRUE(store.ok());
    stores_.push_back(std::move(*store));
    ForwarderOptions options;
    options.sink.hostname = "aggregator-1";
    options.sink.token = "s3cret-token";
    options.sink.ca_file = ca_file;
    options.sink.timeout_ns = 5 * kNanosPerSecond;
    options.initial_backoff_ns = 20 * kNanosPerMilli;
    options.max_backoff_ns = 100 * kNanosPerMilli;
    auto target = ParseForwardUrl(url);
    EXPECT_TRUE(target.ok()) << target.status().ToString();
    auto f = Forwarder::Start(stores_.back()->db(), stores_.back()->column_family("outbox"),
                              {*target}, options, SystemClock::Get());
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return std::move(*f);
  }
  static v1::Incident Wire(const Incident& i) {
    v1::Incident out;
    ToProto(i, &out);
    return out;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<RocksDbStore>> stores_;
};

TEST_F(ForwardHttpTest, SplunkHecGetsEveryEventOnceRetriedWhenBusy) {
  std::mutex mu;
  std::vector<nlohmann::json> events;
  int requests = 0;
  TestHttpServer hec([&](const HttpRequest& r) -> HttpResponse {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/services/collector/event");
    if (r.headers.count("authorization") == 0)
      return {401, R"({"text":"Token is required","code":2})"};
    if (r.headers.at("authorization") != "Splunk s3cret-token") {
      return {403, R"({"text":"Invalid token","code":4})"};
    }
    if (++requests == 1) return {503, R"({"text":"Server is busy","code":9})"};
    for (const std::string& line : SplitLines(r.body)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("event"))
        return {400, R"({"text":"Event field is required","code":12})"};
      if (j.contains("time") && !j["time"].is_number()) {
        return {400, R"({"text":"Invalid data format","code":6})"};
      }
      events.push_back(j);
    }
    return {200, R"({"text":"Success","code":0})"};
  });
  auto f = Start("http://127.0.0.1:" + std::to_string(hec.port()) +
                 "/services/collector/event?format=hec");
  ASSERT_TRUE(f->Offer(Wire(testing::StoryIncident())).ok());
  ASSERT_TRUE(f->Offer(Wire(testing::HostileIncident(true))).ok());
  ASSERT_TRUE(WaitFor([&] { return f->stats()[0].delivered() == 2; }));
  const auto s = f->stats()[0];
  EXPECT_EQ(s.backlog(), 0u);
  EXPECT_GE(s.failures(), 1u);  // the 503
  EXPECT_EQ(s.format(), "hec");
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["host"], "aggregator-1");
  EXPECT_EQ(events[0]["sourcetype"], "tripline:incident:ocsf");
  EXPECT_EQ(events[0]["event"]["class_uid"], 2004);
  EXPECT_EQ(events[0]["event"]["finding_info"]["uid"], testing::StoryIncident().id);
  EXPECT_EQ(events[1]["event"]["message"], testing::HostileIncident(true).title);
}

TEST_F(ForwardHttpTest, ElasticsearchBulkKeepsTheLatestRevisionAndDropsOnlyARefusedDocument) {
  std::mutex mu;
  std::map<std::string, std::pair<int64_t, nlohmann::json>> index;  // _id -> version, doc
  index["inc-0123456789abcdef0123456789abcdef"] = {5, nlohmann::json::object()};  // newer
  int requests = 0;
  TestHttpServer es([&](const HttpRequest& r) -> HttpResponse {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/tripline/_bulk");
    EXPECT_EQ(r.headers.at("content-type"), "application/x-ndjson");
    // This output's own token (token_file= in its URL), not the configuration's.
    EXPECT_EQ(r.headers.at("authorization"), "ApiKey es-api-key");
    if (r.body.empty() || r.body.back() != '\n') {
      return {400, R"({"error":"The bulk request must be terminated by a newline [\n]"})"};
    }
    const std::vector<std::string> lines = SplitLines(r.body);
    if (lines.size() % 2 != 0) return {400, R"({"error":"action without source"})"};
    const bool busy = ++requests == 1;
    nlohmann::json items = nlohmann::json::array();
    bool errors = false;
    for (size_t k = 0; k < lines.size(); k += 2) {
      const auto action = nlohmann::json::parse(lines[k]);
      const auto doc = nlohmann::json::parse(lines[k + 1]);
      EXPECT_TRUE(action.contains("index")) << lines[k];
      const auto& a = action["index"];
      EXPECT_FALSE(a.contains("_index"));  // the index is in the path
      EXPECT_EQ(a["version_type"], "external");
      const std::string id = a["_id"];
      const int64_t version = a["version"];
      int status;
      if (busy) {
        status = 429;
      } else if (doc["message"] == "refused") {
        status = 400;  // e.g. mapper_parsing_exception
      } else if (index.count(id) != 0 && index[id].first >= version) {
        status = 409;  // version_conflict_engine_exception
      } else {
        status = index.count(id) != 0 ? 200 : 201;
        index[id] = {version, doc};
      }
      errors = errors || status >= 300;
      items.push_back({{"index", {{"_index", "tripline"}, {"_id", id}, {"status", status}}}});
    }
    return {200, nlohmann::json{{"took", 1}, {"errors", errors}, {"items", items}}.dump()};
  });
  {
    std::ofstream key(dir_.Sub("es.key"));
    key << "es-api-key\n";
  }
  auto f = Start("http://127.0.0.1:" + std::to_string(es.port()) +
                 "/tripline/_bulk?format=elastic-bulk&token_file=" + dir_.Sub("es.key"));
  Incident refused = testing::StoryIncident();
  refused.id = "inc-refused";
  refused.title = "refused";
  Incident hostile = testing::HostileIncident(true);
  ASSERT_TRUE(f->Offer(Wire(testing::StoryIncident())).ok());
  ASSERT_TRUE(f->Offer(Wire(refused)).ok());
  ASSERT_TRUE(f->Offer(Wire(hostile)).ok());
  ASSERT_TRUE(WaitFor([&] { return f->stats()[0].backlog() == 0; }));
  const auto s = f->stats()[0];
  EXPECT_EQ(s.delivered(), 2u);  // the story (409: a newer revision is stored) and hostile
  EXPECT_EQ(s.rejected(), 1u);
  EXPECT_GE(s.failures(), 1u);  // the 429s
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(index["inc-0123456789abcdef0123456789abcdef"].first, 5);
  ASSERT_EQ(index.count("inc-hostile"), 1u);
  EXPECT_EQ(index["inc-hostile"].first, 3);
  EXPECT_EQ(index["inc-hostile"].second["message"], hostile.title);
  EXPECT_EQ(index["inc-hostile"].second["event"]["kind"], "alert");
  EXPECT_EQ(index.count("inc-refused"), 0u);
}

TEST_F(ForwardHttpTest, WebhookGetsOneEcsObjectPerPostAndADeadOneHoldsNothingElseBack) {
  std::mutex mu;
  std::vector<nlohmann::json> posted;
  TestHttpServer hook([&](const HttpRequest& r) -> HttpResponse {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    EXPECT_EQ(r.headers.at("authorization"), "Bearer s3cret-token");
    posted.push_back(nlohmann::json::parse(r.body));
    return {204, ""};
  });
  // An output nobody listens on: its own thread retries; the webhook is not held back.
  auto dead = Start("http://127.0.0.1:1/x?format=ocsf");
  auto f = Start("http://127.0.0.1:" + std::to_string(hook.port()) + "/hook?format=ecs");
  for (const Incident& i : {testing::StoryIncident(), testing::HostileIncident(true)}) {
    ASSERT_TRUE(dead->Offer(Wire(i)).ok());
    ASSERT_TRUE(f->Offer(Wire(i)).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return f->stats()[0].delivered() == 2; }));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(posted.size(), 2u);
  EXPECT_EQ(posted[0]["event"]["id"], testing::StoryIncident().id);
  EXPECT_EQ(posted[1]["user"]["name"],
            "mallory act=allowed dst=1.2.3.4 \r\n<13>1 - \"},{\"type\":\"user\"");
  EXPECT_EQ(dead->stats()[0].backlog(), 2u);
  EXPECT_EQ(dead->stats()[0].delivered(), 0u);
}

// HTTPS: the receiver's certificate is verified against the configured CA and must name
// the URL's host (here its IP address); with another CA nothing is sent and the revisions
// wait in the outbox.
TEST_F(ForwardHttpTest, HttpsVerifiesTheReceiverAgainstTheConfiguredCa) {
  auto ca = tripline::testing::IssueCa("tripline test collector CA");
  ASSERT_TRUE(ca.ok());
  auto leaf = tripline::testing::IssueLeaf("collector", *ca, "serverAuth", "IP:127.0.0.1");
  ASSERT_TRUE(leaf.ok());
  auto other = tripline::testing::IssueCa("another CA");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(tripline::testing::WriteCert(dir_.Sub("ca.pem"), *ca).ok());
  ASSERT_TRUE(tripline::testing::WriteCert(dir_.Sub("other-ca.pem"), *other).ok());
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls(SSL_CTX_new(TLS_server_method()),
                                                        &SSL_CTX_free);
  ASSERT_EQ(SSL_CTX_use_certificate(tls.get(), leaf->cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(tls.get(), leaf->key.get()), 1);
  std::mutex mu;
  std::vector<nlohmann::json> posted;
  TestHttpServer hook(
      [&](const HttpRequest& r) -> HttpResponse {
        std::lock_guard<std::mutex> lock(mu);
        posted.push_back(nlohmann::json::parse(r.body));
        return {200, "{}"};
      },
      tls.get());
  // The same receiver on a second port (this server serves one connection at a time).
  TestHttpServer same([](const HttpRequest&) { return HttpResponse{200, "{}"}; }, tls.get());
  const auto url = [](int port) { return "https://127.0.0.1:" + std::to_string(port) + "/hook"; };
  auto wrong = Start(url(same.port()), dir_.Sub("other-ca.pem"));
  auto right = Start(url(hook.port()), dir_.Sub("ca.pem"));
  ASSERT_TRUE(wrong->Offer(Wire(testing::StoryIncident())).ok());
  ASSERT_TRUE(right->Offer(Wire(testing::StoryIncident())).ok());
  ASSERT_TRUE(WaitFor([&] { return right->stats()[0].delivered() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return wrong->stats()[0].failures() > 0; }));
  EXPECT_EQ(wrong->stats()[0].delivered(), 0u);
  EXPECT_EQ(wrong->stats()[0].backlog(), 1u);
  EXPECT_NE(wrong->stats()[0].last_error().find("certificate"), std::string::npos)
      << wrong->stats()[0].last_error();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(posted.size(), 1u);
  EXPECT_EQ(posted[0]["class_uid"], 2004);  // format defaults to ocsf
}

}  // namespace
}  // namespace tripline::forward
