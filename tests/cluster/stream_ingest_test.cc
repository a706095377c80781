// Ingest nodes of the scaled-out mode: the real IngestService over a StreamSink, two nodes
// on 127.0.0.1:0, each with its own connection to three nats-server processes clustered on
// loopback (stream and bucket with three replicas). What reaches the stream is read back
// through a durable pull consumer.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "aggregator/cluster/stream_sink.h"
#include "aggregator/ingest/ingest_service.h"
#include "model/event_proto.h"
#include "tests/aggregator/test_support.h"
#include "tests/cluster/nats_fixture.h"
#include "tests/cluster/stream_reader.h"
#include "tests/support/wait_for.h"
#include "tripline/v1/event.pb.h"

namespace tripline::cluster {
namespace {

using testing::IngestClient;
using testing::NatsCluster;

constexpr uint32_t kPartitions = 16;

// One ingest node: its own cluster connection, sink and gRPC server.
class IngestNode {
 public:
  IngestNode(const std::vector<std::string>& servers, const std::string& name) {
    ClusterOptions o;
    o.servers = servers;
    o.name = name;
    auto js = JetStream::Connect(o);
    if (!js.ok()) {
      error_ = js.status().ToString();
      return;
    }
    js_ = std::move(js).value();
    if (Status s = js_->EnsureStream(EventsStreamSpec(3)); !s.ok()) {
      error_ = s.ToString();
      return;
    }
    auto kv = js_->Bucket(kSensorsBucket, 3);
    if (!kv.ok()) {
      error_ = kv.status().ToString();
      return;
    }
    sensors_ = std::move(kv).value();
    auto addresses = js_->Bucket(kAddressesBucket, 3);
    if (!addresses.ok()) {
      error_ = addresses.status().ToString();
      return;
    }
    addresses_ = std::move(addresses).value();
    book_ = std::make_unique<AddressBook>(addresses_.get());
    if (!book_->WaitLoaded(10000)) {
      error_ = "the address book did not load";
      return;
    }
    StreamSinkOptions so;
    so.partitions = kPartitions;
    so.addresses = book_.get();
    sink_ = std::make_unique<StreamSink>(js_.get(), sensors_.get(), so);
    service_ = std::make_unique<IngestService>(sink_.get(), nullptr);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    if (!server_ || port_ == 0) error_ = "gRPC server did not start";
  }
  ~IngestNode() {
    if (server_) server_->Shutdown();
  }
  const std::string& error() const { return error_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  StreamSink& sink() { return *sink_; }
  JetStream& js() { return *js_; }
  AddressBook& book() { return *book_; }

 private:
  std::string error_;
  std::unique_ptr<JetStream> js_;
  std::unique_ptr<KeyValue> sensors_;
  std::unique_ptr<KeyValue> addresses_;
  std::unique_ptr<AddressBook> book_;
  std::unique_ptr<StreamSink> sink_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

class StreamIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::StartNatsCluster(&nats_));
    if (IsSkipped()) return;
    for (const char* name : {"ingest-1", "ingest-2"}) {
      nodes_.push_back(std::make_unique<IngestNode>(nats_->urls(), name));
      ASSERT_EQ(nodes_.back()->error(), "") << nats_->Log(0);
    }
  }

  // Sends events[from, to) as batches of `batch`, seq = index + 1; the last ack's durable.
  static uint64_t Send(IngestClient& client, const std::string& sensor,
                       const std::vector<Event>& events, size_t from, size_t to, size_t batch) {
    uint64_t durable = 0;
    for (size_t i = from; i < to; i += batch) {
      const size_t end = std::min(to, i + batch);
      auto ack = client.Batch(sensor, i + 1, {events.begin() + i, events.begin() + end});
      EXPECT_TRUE(ack.has_value())
          << "batch at " << i + 1 << ": " << client.Finish().error_message();
      if (!ack) return durable;
      EXPECT_EQ(ack->error(), "");
      durable = ack->durable_seq();
    }
    return durable;
  }

  std::unique_ptr<NatsCluster> nats_;
  std::vector<std::unique_ptr<IngestNode>> nodes_;
};

TEST_F(StreamIngestTest, ASensorMovingBetweenNodesResumesWhereTheStreamLeftOff) {
  const std::vector<Event> events = testing::SyntheticEvents(1500, 5, 7);
  {
    IngestClient a(nodes_[0]->target());
    auto hello = a.Hello("sensor-a");
    ASSERT_TRUE(hello.has_value());
    EXPECT_EQ(hello->durable_seq(), 0u);
    EXPECT_EQ(Send(a, "sensor-a", events, 0, 1000, 100), 1000u);
  }
  // The sensor reconnects to the other node: told the same durable sequence number.
  IngestClient b(nodes_[1]->target());
  auto hello = b.Hello("sensor-a");
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->durable_seq(), 1000u);
  // It resends its last two batches (their acks were lost) and goes on.
  EXPECT_EQ(Send(b, "sensor-a", events, 800, 1500, 100), 1500u);

  const auto record = nodes_[0]->sink().GetSensor("sensor-a");
  ASSERT_TRUE(record.ok() && record->has_value()) << record.status().ToString();
  EXPECT_EQ((*record)->durable_seq, 1500u);
  EXPECT_EQ((*record)->events, 1500u);
  EXPECT_EQ((*record)->missing, 0u);

  const auto got = testing::ReadEventsStream(nodes_[0]->js(), "reader", 1500);
  ASSERT_EQ(got.size(), 1500u);
  std::set<std::string> subjects;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto it = got.find({"sensor-a", i + 1});
    ASSERT_NE(it, got.end()) << "lost: seq " << i + 1;
    ASSERT_EQ(it->second.size(), 1u) << "twice: seq " << i + 1;
    const auto& [subject, e] = it->second.front();
    // Each event in its host's partition, as sent.
    EXPECT_EQ(subject, PartitionSubject(PartitionOfHost(events[i].host, kPartitions)));
    EXPECT_EQ(e.host, events[i].host);
    EXPECT_EQ(e.time_ns, events[i].time_ns);
    EXPECT_EQ(e.kind(), events[i].kind());
    subjects.insert(subject);
  }
  EXPECT_GT(subjects.size(), 1u) << "five hosts in more than one partition";
}

TEST_F(StreamIngestTest, TheStreamLeaderKilledMidIngestLosesAndDoublesNothing) {
  const std::vector<Event> events = testing::SyntheticEvents(2000, 4, 6, 7);
  IngestClient a(nodes_[0]->target());
  ASSERT_TRUE(a.Hello("sensor-b").has_value());
  EXPECT_EQ(Send(a, "sensor-b", events, 0, 700, 50), 700u);
  const auto leader = nodes_[0]->js().StreamLeader(kEventsStream);
  ASSERT_TRUE(leader.ok() && leader->size() == 2u) << leader.status().ToString();
  nats_->Kill((*leader)[1] - '0');
  // Acknowledged by the two replicas left (a new leader is elected on the way).
  EXPECT_EQ(Send(a, "sensor-b", events, 700, 2000, 50), 2000u);
  const auto got = testing::ReadEventsStream(nodes_[0]->js(), "reader", 2000);
  EXPECT_EQ(got.size(), 2000u);
  for (size_t i = 0; i < events.size(); ++i) {
    const auto it = got.find({"sensor-b", i + 1});
    EXPECT_TRUE(it != got.end() && it->second.size() == 1u) << "lost or twice: " << i + 1;
  }
}

TEST_F(StreamIngestTest, AGapIsRecordedAndALateCopyIsADuplicate) {
  const std::vector<Event> events = testing::SyntheticEvents(40);
  IngestClient a(nodes_[0]->target());
  ASSERT_TRUE(a.Hello("sensor-c").has_value());
  EXPECT_EQ(Send(a, "sensor-c", events, 0, 10, 10), 10u);
  EXPECT_EQ(Send(a, "sensor-c", events, 20, 40, 10), 40u);  // 11..20 never came
  EXPECT_EQ(Send(a, "sensor-c", events, 10, 20, 10), 40u);  // a late copy: dropped
  const auto record = nodes_[1]->sink().GetSensor("sensor-c");
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->missing, 10u);
  EXPECT_EQ((*record)->events, 30u);
  EXPECT_EQ(testing::ReadEventsStream(nodes_[0]->js(), "reader", 30).size(), 30u);
}

TEST_F(StreamIngestTest, ABatchIsOneMessagePerPartitionSplitBySizeInSequenceOrder) {
  auto kv = nodes_[0]->js().Bucket(kSensorsBucket, 3);
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  StreamSinkOptions so;
  so.partitions = kPartitions;
  so.max_message_bytes = 2000;  // a few events to a message
  StreamSink sink(&nodes_[0]->js(), kv->get(), so);
  const std::vector<Event> events = testing::SyntheticEvents(300, 3, 4);
  for (size_t i = 0; i < events.size(); i += 100) {
    auto r = sink.AppendBatch("sensor-d", i + 1, {events.begin() + i, events.begin() + i + 100});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->durable_seq, i + 100);
  }
  // The same batch again (its acknowledgement lost): nothing new in the stream.
  auto again = sink.AppendBatch("sensor-d", 201, {events.begin() + 200, events.end()});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 100u);

  auto c = nodes_[0]->js().Consume({kEventsStream, "split", "tl.ev.>", 30000, 65536});
  ASSERT_TRUE(c.ok());
  std::map<std::string, uint64_t> last_per_subject;
  std::set<uint64_t> seen;
  size_t messages = 0;
  for (int round = 0; round < 50 && seen.size() < events.size(); ++round) {
    auto got = (*c)->Fetch(500, 1000);
    ASSERT_TRUE(got.ok());
    for (const Delivered& d : *got) {
      auto m = DecodePartitionBatch(d.data);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      ++messages;
      EXPECT_LE(d.data.size(), 2000u + 200u) << "about max_message_bytes";
      for (const Event& e : m->events) {
        EXPECT_EQ(d.subject, PartitionSubject(PartitionOfHost(e.host, kPartitions)));
        EXPECT_GT(e.seq, last_per_subject[d.subject]) << "in sequence order per partition";
        last_per_subject[d.subject] = e.seq;
        EXPECT_TRUE(seen.insert(e.seq).second) << "twice: " << e.seq;
        EXPECT_EQ(e.time_ns, events[e.seq - 1].time_ns);
      }
    }
    ASSERT_TRUE((*c)->AckAll().ok());
  }
  EXPECT_EQ(seen.size(), events.size());
  EXPECT_GT(messages, 3u * last_per_subject.size()) << "split by size";
  EXPECT_LT(messages, events.size() / 2) << "several events to a message";
}

// A connection event on `host` (session 7 of it, by root).
Event Connection(const std::string& host, NetDirection direction, const std::string& local,
                 uint32_t local_port, const std::string& remote, uint32_t remote_port) {
  Event e;
  e.time_ns = 1'700'000'000'000'000'000;
  e.host = host;
  e.host_id = host + "-id";
  e.session = "audit:7";
  e.process.pid = 4242;
  e.process.comm = "ssh";
  e.process.user = "root";
  NetConnectEvent c;
  c.direction = direction;
  c.local_addr = local;
  c.local_port = local_port;
  c.remote_addr = remote;
  c.remote_port = remote_port;
  c.family = 2;
  e.body = c;
  return e;
}

// A health report of `host`'s sensor listing `addresses`.
Event Health(const std::string& host, std::vector<std::string> addresses) {
  Event e;
  e.time_ns = 1'700'000'000'000'000'000;
  e.host = host;
  e.host_id = host + "-id";
  SensorHealth h;
  h.addresses = std::move(addresses);
  e.body = h;
  return e;
}

TEST_F(StreamIngestTest, AnOutboundConnectionGoesToThePartitionOfTheHostItReaches) {
  // Two hosts in different partitions.
  const std::string from = "host-a";
  std::string to;
  for (int i = 0; to.empty(); ++i) {
    const std::string h = "host-b" + std::to_string(i);
    if (PartitionOfHost(h, kPartitions) != PartitionOfHost(from, kPartitions)) to = h;
  }
  // The reached host reports through the second node: its sshd accepted a connection on
  // 198.18.0.2, and a container on it connected out from 172.17.0.2. The first host's
  // container has 172.17.0.2 too: an address two hosts use names neither.
  const std::vector<Event> reached = {
      Connection(to, NetDirection::kAccepted, "198.18.0.2", 22, "198.18.0.9", 50000),
      Connection(to, NetDirection::kOutbound, "172.17.0.2", 41000, "198.51.100.7", 443),
      Connection(to, NetDirection::kOutbound, "127.0.0.1", 41001, "127.0.0.1", 8080),
      Connection(to, NetDirection::kOutbound, "169.254.7.1", 41002, "169.254.169.254", 80),
      Health(to, {"198.18.0.4", "fe80::4"})};  // its sensor's health: its interfaces
  ASSERT_TRUE(nodes_[1]->sink().AppendBatch("sensor-b", 1, reached).ok());
  ASSERT_TRUE(nodes_[0]
                  ->sink()
                  .AppendBatch("sensor-a", 1,
                               {Connection(from, NetDirection::kOutbound, "172.17.0.2", 42000,
                                           "198.51.100.8", 443)})
                  .ok());
  // The first node sees what the second learned, through its watcher.
  AddressBook& book = nodes_[0]->book();
  ASSERT_TRUE(testing::WaitFor([&] { return book.HostOf("198.18.0.2").has_value(); }, 10));
  EXPECT_EQ(book.HostOf("198.18.0.2"), to);
  EXPECT_EQ(book.HostOf("172.17.0.2"), std::nullopt);  // shared
  EXPECT_EQ(book.HostOf("127.0.0.1"), std::nullopt);
  EXPECT_EQ(book.HostOf("169.254.7.1"), std::nullopt);
  EXPECT_EQ(book.HostOf("198.18.0.4"), to);
  EXPECT_EQ(book.HostOf("fe80::4"), std::nullopt);
  EXPECT_EQ(nodes_[1]->book().stats().write_errors, 0u);

  const std::vector<Event> outbound = {
      // SSH to the reached host: its partition.
      Connection(from, NetDirection::kOutbound, "198.18.0.1", 40000, "198.18.0.2", 22),
      // An address no host reported, and a shared one: the source's partition.
      Connection(from, NetDirection::kOutbound, "198.18.0.1", 40001, "198.18.0.77", 22),
      Connection(from, NetDirection::kOutbound, "198.18.0.1", 40002, "172.17.0.2", 80),
      // A connection the reached host accepted stays its own.
      Connection(to, NetDirection::kAccepted, "198.18.0.2", 22, "198.18.0.1", 40000),
      // To an address only the reached host's health report named: its partition.
      Connection(from, NetDirection::kOutbound, "198.18.0.1", 40003, "198.18.0.4", 22)};
  ASSERT_TRUE(nodes_[0]->sink().AppendBatch("sensor-a", 2, outbound).ok());
  EXPECT_EQ(nodes_[0]->book().HostOf("198.18.0.1"), from);  // learned from the batch

  testing::StreamContents copies;
  const auto got = testing::ReadEventsStream(nodes_[0]->js(), "routes", 11, &copies);
  ASSERT_EQ(got.size(), 11u);
  const auto subject_of = [&](const std::string& sensor, uint64_t seq) {
    const auto it = got.find({sensor, seq});
    return it == got.end() || it->second.size() != 1 ? std::string("?")
                                                     : it->second.front().subject;
  };
  const std::string ours = PartitionSubject(PartitionOfHost(from, kPartitions));
  const std::string theirs = PartitionSubject(PartitionOfHost(to, kPartitions));
  EXPECT_EQ(subject_of("sensor-a", 2), theirs);
  EXPECT_EQ(subject_of("sensor-a", 3), ours);
  EXPECT_EQ(subject_of("sensor-a", 4), ours);
  EXPECT_EQ(subject_of("sensor-a", 5), theirs);
  EXPECT_EQ(subject_of("sensor-a", 6), theirs);
  for (uint64_t seq = 1; seq <= reached.size(); ++seq) {
    EXPECT_EQ(subject_of("sensor-b", seq), theirs) << seq;
  }
  // A connection routed away also goes, as a copy, to its source's partition, where the
  // session it left from is; nothing else is copied.
  ASSERT_EQ(copies.size(), 2u);
  for (uint64_t seq : {2, 6}) {
    const auto& copy = copies[std::make_pair(std::string("sensor-a"), seq)];
    ASSERT_EQ(copy.size(), 1u) << seq;
    EXPECT_EQ(copy.front().subject, ours) << seq;
  }
}

TEST(AddressBookKeyTest, KeysAreBucketKeysAndComeBack) {
  for (const std::string addr : {"198.18.0.2", "2001:db8::1", "::ffff:198.18.0.3"}) {
    const std::string key = AddressKey(addr);
    EXPECT_EQ(key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789."), std::string::npos);
    EXPECT_EQ(AddressOfKey(key), addr);
  }
  for (const std::string key :
       {"addr.", "addr.3", "addr.zz", "sensor.31", "addr.3132372e302e302e31"}) {
    EXPECT_EQ(AddressOfKey(key), std::nullopt) << key;  // the last is 127.0.0.1
  }
  EXPECT_FALSE(RoutableAddress("FE80::1"));
  EXPECT_FALSE(RoutableAddress(std::string(65, '1')));
  EXPECT_FALSE(RoutableAddress("198.18.0.1\n"));
  EXPECT_TRUE(RoutableAddress("10.0.0.5"));
}

}  // namespace
}  // namespace tripline::cluster
