// The query service over real gRPC: paging, filters, stats and incidents.
#include <gtest/gtest.h>

#include <set>

#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/server/aggregator_server.h"
#include "aggregator/store/rocksdb_store.h"
#include "tests/aggregator/test_support.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

using testing::IngestClient;
using testing::kBaseTimeNs;
using testing::SyntheticEvents;
using testing::TempDir;

class QueryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RocksDbStore::Open({.path = dir_.Sub("db")});
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    AggregatorServerOptions options;
    options.listen = HostPort{"127.0.0.1", 0};
    auto server = AggregatorServer::Start(options, store_.get(), nullptr);
    ASSERT_TRUE(server.ok());
    server_ = std::move(server).value();
    stub_ = v1::Query::NewStub(
        grpc::CreateChannel(server_->address().ToString(), grpc::InsecureChannelCredentials()));
  }

  std::vector<v1::StoredEvent> ListAll(v1::ListEventsRequest req, size_t* pages = nullptr) {
    std::vector<v1::StoredEvent> out;
    size_t n = 0;
    while (true) {
      grpc::ClientContext ctx;
      v1::ListEventsResponse resp;
      const grpc::Status s = stub_->ListEvents(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      ++n;
      EXPECT_LE(static_cast<uint32_t>(resp.events_size()), req.limit() ? req.limit() : 100u);
      for (auto& e : resp.events()) out.push_back(e);
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    if (pages) *pages = n;
    return out;
  }

  TempDir dir_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<AggregatorServer> server_;
  std::unique_ptr<v1::Query::Stub> stub_;
};

TEST_F(QueryServiceTest, ListEventsPagesThroughEveryMatchOnce) {
  ASSERT_TRUE(store_->AppendBatch("s1", 1, SyntheticEvents(1000, 4, 7, 0)).ok());
  ASSERT_TRUE(store_->AppendBatch("s2", 1, SyntheticEvents(500, 4, 7, 3)).ok());
  v1::ListEventsRequest req;
  req.set_limit(64);
  size_t pages = 0;
  auto all = ListAll(req, &pages);
  EXPECT_EQ(all.size(), 1500u);
  EXPECT_EQ(pages, 24u);  // ceil(1500 / 64)
  std::set<std::pair<std::string, uint64_t>> seen;
  for (const auto& e : all) EXPECT_TRUE(seen.emplace(e.sensor_id(), e.event().seq()).second);

  v1::ListEventsRequest by_user;
  by_user.set_user("user3");
  by_user.set_kind("exec");
  by_user.set_limit(5);
  by_user.set_since_ns(kBaseTimeNs + 100'000'000);
  const auto matches = ListAll(by_user);
  EXPECT_EQ(matches.size(), *store_->CountEvents({.user = "user3",
                                                  .kind = EventKind::kExec,
                                                  .since_ns = kBaseTimeNs + 100'000'000}));
  EXPECT_GT(matches.size(), 0u);
  for (const auto& e : matches) {
    EXPECT_TRUE(e.event().has_exec());
    EXPECT_EQ(e.event().process().user(), "user3");
    EXPECT_GE(e.event().time_ns(), kBaseTimeNs + 100'000'000);
  }
}

TEST_F(QueryServiceTest, ListEventsRejectsBadRequests) {
  const auto call = [&](v1::ListEventsRequest req) {
    grpc::ClientContext ctx;
    v1::ListEventsResponse resp;
    return stub_->ListEvents(&ctx, req, &resp);
  };
  v1::ListEventsRequest bad_kind;
  bad_kind.set_kind("telepathy");
  EXPECT_EQ(call(bad_kind).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListEventsRequest bad_token;
  bad_token.set_page_token("74");
  EXPECT_EQ(call(bad_token).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListEventsRequest huge;
  huge.set_limit(1'000'000);
  EXPECT_EQ(call(huge).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Pages follow one another without a gap or a repeat, in the order of one listing, with
// ties of last_seen broken by id; limits above a page are one page.
TEST_F(QueryServiceTest, IncidentsArePagedNewestFirst) {
  constexpr int kN = 25;
  for (int i = 0; i < kN; ++i) {
    v1::Incident incident;
    incident.set_id("inc-" + std::to_string(100 + i));
    incident.set_severity(v1::SEVERITY_HIGH);
    incident.set_last_seen_ns(kBaseTimeNs + i / 2);  // pairs share a time
    ASSERT_TRUE(PutIncident(*store_, incident).ok());
  }
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    v1::ListIncidentsRequest req;
    req.set_limit(7);
    req.set_page_token(token);
    v1::ListIncidentsResponse page;
    ASSERT_TRUE(stub_->ListIncidents(&ctx, req, &page).ok());
    EXPECT_LE(page.incidents_size(), 7);
    for (const auto& i : page.incidents()) ids.push_back(i.id());
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 4);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kN));
  // Newest first: 124 (time 12), then 122 and 123 (time 11, by id), ...
  EXPECT_EQ(ids[0], "inc-124");
  EXPECT_EQ(ids[1], "inc-122");
  EXPECT_EQ(ids[2], "inc-123");
  EXPECT_EQ(ids[kN - 1], "inc-101");
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());

  grpc::ClientContext ctx;
  v1::ListIncidentsRequest bad;
  bad.set_page_token("soon");
  v1::ListIncidentsResponse none;
  EXPECT_EQ(stub_->ListIncidents(&ctx, bad, &none).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(QueryServiceTest, IncidentsAreListedNewestFirstAndFetchedById) {
  for (int i = 0; i < 3; ++i) {
    v1::Incident incident;
    incident.set_id("inc-" + std::to_string(i));
    incident.set_severity(i == 1 ? v1::SEVERITY_CRITICAL : v1::SEVERITY_LOW);
    incident.set_title("chain " + std::to_string(i));
    incident.set_last_seen_ns(kBaseTimeNs + i);
    incident.add_hosts("hosta");
    ASSERT_TRUE(PutIncident(*store_, incident).ok());
  }
  grpc::ClientContext ctx;
  v1::ListIncidentsResponse list;
  ASSERT_TRUE(stub_->ListIncidents(&ctx, v1::ListIncidentsRequest(), &list).ok());
  ASSERT_EQ(list.incidents_size(), 3);
  EXPECT_EQ(list.incidents(0).id(), "inc-2");
  EXPECT_EQ(list.incidents(2).id(), "inc-0");

  grpc::ClientContext ctx2;
  v1::ListIncidentsRequest critical;
  critical.set_min_severity(v1::SEVERITY_HIGH);
  v1::ListIncidentsResponse only;
  ASSERT_TRUE(stub_->ListIncidents(&ctx2, critical, &only).ok());
  ASSERT_EQ(only.incidents_size(), 1);
  EXPECT_EQ(only.incidents(0).id(), "inc-1");

  grpc::ClientContext ctx3;
  v1::GetIncidentRequest get;
  get.set_id("inc-1");
  v1::Incident got;
  ASSERT_TRUE(stub_->GetIncident(&ctx3, get, &got).ok());
  EXPECT_EQ(got.title(), "chain 1");
  grpc::ClientContext ctx4;
  get.set_id("missing");
  EXPECT_EQ(stub_->GetIncident(&ctx4, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(QueryServiceTest, StatsCombineStoreAndLiveStreams) {
  IngestClient client(server_->address().ToString());
  ASSERT_TRUE(client.Hello("sensor-a"));
  ASSERT_TRUE(client.Batch("sensor-a", 1, SyntheticEvents(12)));
  ASSERT_TRUE(client.Batch("sensor-a", 1, SyntheticEvents(12)));  // all duplicates
  ASSERT_TRUE(client.Batch("sensor-x", 13, SyntheticEvents(1)));  // rejected
  grpc::ClientContext ctx;
  v1::Stats stats;
  ASSERT_TRUE(stub_->GetStats(&ctx, v1::GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.events_stored(), 12u);
  EXPECT_EQ(stats.sensors_connected(), 1u);
  EXPECT_EQ(stats.duplicates_dropped(), 12u);
  EXPECT_EQ(stats.batches_rejected(), 1u);
  EXPECT_DOUBLE_EQ(stats.events_per_second(), 12.0 / 60.0);
  ASSERT_EQ(stats.sensors_size(), 1);
  EXPECT_EQ(stats.sensors(0).sensor_id(), "sensor-a");
  EXPECT_TRUE(stats.sensors(0).connected());
  EXPECT_EQ(stats.sensors(0).durable_seq(), 12u);
  EXPECT_GT(stats.sensors(0).last_seen_ns(), 0);
}

TEST(QueryServiceStatsTest, ReportsTheCorrelatorsProgress) {
  TempDir dir;
  auto store = RocksDbStore::Open({.path = dir.Sub("db")});
  ASSERT_TRUE(store.ok());
  CorrelationEngineOptions engine_options;
  engine_options.max_queued_events = 0;  // every batch read back from the store
  auto engine = CorrelationEngine::Open(store->get(), engine_options, SystemClock::Get());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  AggregatorServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  auto server = AggregatorServer::Start(options, store->get(), engine->get());
  ASSERT_TRUE(server.ok());

  IngestClient client((*server)->address().ToString());
  ASSERT_TRUE(client.Hello("s1"));
  auto ack = client.Batch("s1", 1, SyntheticEvents(50));
  ASSERT_TRUE(ack && ack->error().empty());
  EXPECT_EQ(ack->durable_seq(), 50u);
  (*engine)->Drain();

  auto stub = v1::Query::NewStub(
      grpc::CreateChannel((*server)->address().ToString(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::Stats stats;
  ASSERT_TRUE(stub->GetStats(&ctx, v1::GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.correlation_events_fed(), 50u);
  EXPECT_EQ(stats.correlation_backlog(), 0u);
  EXPECT_FALSE(stats.correlation_behind());
  EXPECT_GE(stats.correlation_fell_behind(), 1u);
  EXPECT_TRUE(client.Finish().ok());
}

}  // namespace
}  // namespace tripline
