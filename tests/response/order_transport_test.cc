// Approved actions travelling to the sensor and reports coming back, over real gRPC: the
// aggregator's Response and Orders services on a real server (127.0.0.1:0) over the action
// book on real RocksDB, and the sensor's OrderClient, which verifies, records, runs nft in
// a lab host's network namespace and reports. An order reaches only its host's sensor, is
// sent again to a sensor that subscribes after the approval, and one signed with another
// key never runs. Needs root (the lab).
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "aggregator/response/action_book.h"
#include "aggregator/response/orders_service.h"
#include "aggregator/response/response_service.h"
#include "aggregator/store/rocksdb_store.h"
#include "sensor/response/order_client.h"
#include "tests/support/temp_dir.h"
#include "tools/lab/lab.h"
#include "tripline/v1/response.grpc.pb.h"

namespace tripline {
namespace {

using ::testing::HasSubstr;

bool PollUntil(const std::function<bool()>& probe, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!probe()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

class OrderTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status ready = lab::Lab::CheckPrerequisites();
    if (!ready.ok()) GTEST_SKIP() << "lab prerequisites missing: " << ready.ToString();
    lab::LabOptions options;
    options.hosts = {{"hosta", "198.18.0.1", 22}, {"hostb", "198.18.0.2", 22}};
    options.clients = {{"attacker", "198.18.0.66", 22}};
    auto l = lab::Lab::Create(options);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lab_ = std::move(*l);
    hosta_ = lab_->host("hosta");

    RocksDbStoreOptions store_options;
    store_options.path = dir_.Sub("db");
    auto store = RocksDbStore::Open(store_options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    book_ = std::make_unique<response::ActionBook>(store_->db(), store_->column_family("actions"),
                                                   response::ResponsePolicy{});
    ASSERT_TRUE(sensor::MakeOrderKeyPair(&pub_, &secret_).ok());
    orders_ = std::make_unique<response::OrdersService>(book_.get(), secret_, nullptr);
    responses_ = std::make_unique<response::ResponseService>(book_.get(), store_.get(), nullptr,
                                                             orders_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(orders_.get());
    builder.RegisterService(responses_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = "127.0.0.1:" + std::to_string(port);
    auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    response_stub_ = v1::Response::NewStub(channel);
    orders_stub_ = v1::Orders::NewStub(channel);
  }

  void TearDown() override {
    clients_.clear();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (hosta_ != nullptr) {
      (void)hosta_->Run({"/usr/sbin/nft", "delete", "table", "inet", "tripline"},
                        std::chrono::seconds(5));
    }
    if (lab_) {
      EXPECT_TRUE(lab_->Close().ok());
    }
  }

  // A sensor's order client for `host`, running nft in that lab host's network namespace.
  sensor::OrderClient* StartClient(const std::string& host, const sensor::OrderPublicKey& key,
                                   const std::string& ledger) {
    sensor::OrderClientOptions o;
    o.target = target_;
    o.host = host;
    o.sensor_id = "sensor-" + host;
    o.keep_path = "198.18.0.200:9000";
    o.key = key;
    o.ledger_path = dir_.Sub(ledger);
    o.reports_dir = ReportsDir(host);
    o.executor.net_prefix = {"/usr/bin/nsenter", "--net=" + lab_->host(host)->netns_path()};
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = 500;
    auto c = sensor::OrderClient::Start(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return nullptr;
    clients_.push_back(std::move(*c));
    return clients_.back().get();
  }

  std::string ReportsDir(const std::string& host) { return dir_.Sub("reports-" + host); }
  size_t ReportFiles(const std::string& host) {
    std::error_code ec;
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(ReportsDir(host), ec)) {
      n += e.path().extension() == ".report" ? 1 : 0;
    }
    return n;
  }

  std::string Propose(v1::Action::Kind kind, const std::string& target) {
    grpc::ClientContext ctx;
    v1::ProposeRequest r;
    r.set_kind(kind);
    r.set_target(target);
    r.set_by("alice");
    r.set_reason("test");
    v1::Action a;
    const grpc::Status s = response_stub_->Propose(&ctx, r, &a);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return a.id();
  }
  grpc::Status Decide(const std::string& method, const std::string& id) {
    grpc::ClientContext ctx;
    v1::DecideRequest r;
    r.set_id(id);
    r.set_by("bob");
    v1::Action a;
    if (method == "approve") return response_stub_->Approve(&ctx, r, &a);
    return response_stub_->Revert(&ctx, r, &a);
  }
  v1::Action::State State(const std::string& id) { return (*book_->Get(id))->state(); }
  bool Reaches(const std::string& id, v1::Action::State state) {
    return PollUntil([&] { return State(id) == state; }, std::chrono::seconds(20));
  }
  std::string TrailText(const std::string& id) {
    auto trail = book_->Trail(id, 100);
    if (!trail.ok()) return trail.status().ToString();
    std::string text;
    for (const auto& e : trail.value()) text += e.by() + ": " + e.what() + "\n";
    return text;
  }
  bool AttackerConnects() {
    auto r =
        lab_->host("attacker")
            ->Run({"/usr/bin/timeout", "2", "/bin/bash", "-c", "exec 3<>/dev/tcp/198.18.0.1/22"},
                  std::chrono::seconds(10));
    return r.ok() && r->exit_code == 0;
  }

  testing::TempDir dir_;
  std::unique_ptr<lab::Lab> lab_;
  const lab::LabHost* hosta_ = nullptr;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<response::ActionBook> book_;
  sensor::OrderPublicKey pub_;
  sensor::OrderSecretKey secret_;
  std::unique_ptr<response::OrdersService> orders_;
  std::unique_ptr<response::ResponseService> responses_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
  std::unique_ptr<v1::Response::Stub> response_stub_;
  std::unique_ptr<v1::Orders::Stub> orders_stub_;
  std::vector<std::unique_ptr<sensor::OrderClient>> clients_;
};

TEST_F(OrderTransportTest, ApprovalReachesTheHostsSensorWhichRunsAndReportsIt) {
  sensor::OrderClient* a = StartClient("hosta", pub_, "ledger-a");
  sensor::OrderClient* b = StartClient("hostb", pub_, "ledger-b");
  ASSERT_TRUE(a != nullptr && b != nullptr);
  ASSERT_TRUE(PollUntil([&] { return orders_->subscribers() == 2; }, std::chrono::seconds(10)));
  ASSERT_TRUE(AttackerConnects());

  const std::string id = Propose(v1::Action::KIND_BLOCK_ADDRESS, "hosta/198.18.0.66");
  // Proposed only: nothing is sent, nothing runs.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(a->stats().received, 0u);
  EXPECT_TRUE(AttackerConnects());

  ASSERT_TRUE(Decide("approve", id).ok());
  ASSERT_TRUE(Reaches(id, v1::Action::STATE_EXECUTED)) << TrailText(id);
  EXPECT_FALSE(AttackerConnects());
  EXPECT_EQ(a->stats().executed, 1u);
  EXPECT_TRUE(PollUntil([&] { return a->stats().reports_sent == 1; }, std::chrono::seconds(5)));
  EXPECT_EQ(b->stats().received, 0u);  // hostb's sensor never sees hosta's order
  const std::string trail = TrailText(id);
  EXPECT_THAT(trail, HasSubstr("order sent to hosta"));
  EXPECT_THAT(trail, HasSubstr("hosta: execution succeeded"));
  EXPECT_EQ(ReportFiles("hosta"), 0u);  // written before sending, removed once taken

  ASSERT_TRUE(Decide("revert", id).ok());
  ASSERT_TRUE(Reaches(id, v1::Action::STATE_REVERTED)) << TrailText(id);
  EXPECT_TRUE(AttackerConnects());
  EXPECT_EQ(a->stats().executed, 2u);
  EXPECT_EQ(a->stats().refused, 0u);
}

TEST_F(OrderTransportTest, AnOrderApprovedWhileTheSensorWasAwayGoesWhenItSubscribes) {
  const std::string id = Propose(v1::Action::KIND_BLOCK_ADDRESS, "hosta/198.18.0.66");
  ASSERT_TRUE(Decide("approve", id).ok());
  EXPECT_EQ(State(id), v1::Action::STATE_APPROVED);
  EXPECT_TRUE(AttackerConnects());

  sensor::OrderClient* a = StartClient("hosta", pub_, "ledger-a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(Reaches(id, v1::Action::STATE_EXECUTED)) << TrailText(id);
  EXPECT_FALSE(AttackerConnects());
  // The same sensor subscribing again (a restart, with its ledger) is not sent it again:
  // it is executed, no longer approved.
  clients_.clear();
  sensor::OrderClient* again = StartClient("hosta", pub_, "ledger-a");
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(
      PollUntil([&] { return again->stats().subscriptions >= 1; }, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(again->stats().received, 0u);
}

TEST_F(OrderTransportTest, AReportLeftByACrashIsSentAfterTheRestartAndNothingRunsAgain) {
  const std::string id = Propose(v1::Action::KIND_BLOCK_ADDRESS, "hosta/198.18.0.66");
  ASSERT_TRUE(Decide("approve", id).ok());
  // An earlier run of hosta's sensor carried the order out (its ledger says so) and wrote
  // its report, then died before the aggregator took the report.
  {
    auto ledger = sensor::ExecutedLedger::Open(dir_.Sub("ledger-a"));
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ASSERT_TRUE(ledger->Record(id, false).ok());
  }
  ASSERT_TRUE(std::filesystem::create_directory(ReportsDir("hosta")));
  std::filesystem::permissions(ReportsDir("hosta"), std::filesystem::perms::owner_all);
  v1::ActionReport earlier;
  earlier.set_action_id(id);
  earlier.set_ok(true);
  earlier.set_detail("address blocked by the earlier run");
  earlier.set_host("hosta");
  {
    std::ofstream out(ReportsDir("hosta") + "/" + id + "-run.report", std::ios::binary);
    out << earlier.SerializeAsString();
  }
  std::ofstream(ReportsDir("hosta") + "/damaged.report") << "not a report";
  EXPECT_EQ(State(id), v1::Action::STATE_APPROVED);

  sensor::OrderClient* a = StartClient("hosta", pub_, "ledger-a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(Reaches(id, v1::Action::STATE_EXECUTED)) << TrailText(id);
  EXPECT_THAT(TrailText(id), HasSubstr("address blocked by the earlier run"));
  // Whether the order came again with the subscription depends on which the aggregator saw
  // first, the report or the subscription; either way nothing ran again (the ledger).
  EXPECT_TRUE(AttackerConnects());
  EXPECT_EQ(a->stats().executed, 0u);
  EXPECT_LE(a->stats().repeated, 1u);
  EXPECT_EQ(a->stats().refused, 0u);
  // The delivered report's file is gone; the damaged one is left for a person.
  EXPECT_TRUE(PollUntil([&] { return ReportFiles("hosta") == 1; }, std::chrono::seconds(5)));
  EXPECT_TRUE(std::filesystem::exists(ReportsDir("hosta") + "/damaged.report"));
}

TEST_F(OrderTransportTest, AnOrderThatDoesNotVerifyNeverRuns) {
  sensor::OrderPublicKey other_pub;
  sensor::OrderSecretKey other_secret;
  ASSERT_TRUE(sensor::MakeOrderKeyPair(&other_pub, &other_secret).ok());
  // A sensor configured with another aggregator's key: it receives the order, refuses it.
  sensor::OrderClient* a = StartClient("hosta", other_pub, "ledger-a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(PollUntil([&] { return orders_->subscribers() == 1; }, std::chrono::seconds(10)));
  const std::string id = Propose(v1::Action::KIND_BLOCK_ADDRESS, "hosta/198.18.0.66");
  ASSERT_TRUE(Decide("approve", id).ok());
  ASSERT_TRUE(PollUntil([&] { return a->stats().refused == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(a->stats().executed, 0u);
  EXPECT_EQ(State(id), v1::Action::STATE_APPROVED);
  EXPECT_TRUE(AttackerConnects());
}

TEST_F(OrderTransportTest, OnlyTheActionsHostMayReportIt) {
  const std::string id = Propose(v1::Action::KIND_BLOCK_ADDRESS, "hosta/198.18.0.66");
  ASSERT_TRUE(Decide("approve", id).ok());
  v1::ActionReport report;
  report.set_action_id(id);
  report.set_ok(true);
  report.set_detail("done");
  report.set_host("hostb");
  grpc::ClientContext ctx;
  v1::ReportReceipt receipt;
  const grpc::Status s = orders_stub_->Report(&ctx, report, &receipt);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_EQ(State(id), v1::Action::STATE_APPROVED);
}

TEST(OrdersServiceTest, WithoutAKeyASubscriptionIsRefusedSayingWhy) {
  testing::TempDir dir;
  RocksDbStoreOptions store_options;
  store_options.path = dir.Sub("db");
  auto store = RocksDbStore::Open(store_options);
  ASSERT_TRUE(store.ok());
  response::ActionBook book((*store)->db(), (*store)->column_family("actions"),
                            response::ResponsePolicy{});
  response::OrdersService orders(&book, std::nullopt, nullptr);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&orders);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::Orders::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::OrderSubscription sub;
  sub.set_host("hosta");
  auto reader = stub->Subscribe(&ctx, sub);
  v1::SignedActionOrder order;
  EXPECT_FALSE(reader->Read(&order));
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("order_key_file"));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

TEST(OrderKeyFileTest, WrittenOnceReadBackAndRefusedWhenOthersMayReadIt) {
  testing::TempDir dir;
  const std::string path = dir.Sub("order.key");
  auto pub = response::WriteNewOrderKeyFile(path);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(pub->size(), 64u);
  EXPECT_FALSE(response::WriteNewOrderKeyFile(path).ok());  // never over an existing key
  auto secret = response::ReadOrderKeyFile(path);
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  // The key read back signs orders the printed public key verifies.
  v1::ActionOrder o;
  o.set_action_id("a1");
  o.set_host("hosta");
  o.set_not_after_ns(2);
  auto signed_order = sensor::SignOrder(o, *secret);
  ASSERT_TRUE(signed_order.ok());
  auto key = sensor::ParseOrderPublicKey(*pub);
  ASSERT_TRUE(key.ok());
  auto ledger = sensor::ExecutedLedger::Open(dir.Sub("ledger"));
  ASSERT_TRUE(ledger.ok());
  EXPECT_TRUE(sensor::OrderVerifier(*key, "hosta").Verify(*signed_order, 1, *ledger).ok());

  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(response::ReadOrderKeyFile(path).status().code(), Status::Code::kPermissionDenied);
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("not a key\n", f);
  fclose(f);
  EXPECT_THAT(response::ReadOrderKeyFile(path).status().message(), HasSubstr("128 hex digits"));
}

}  // namespace
}  // namespace tripline
