// The real tripline-aggregator and triplinectl binaries: startup line, SIGKILL and restart
// without loss or duplicates, clean SIGTERM, refusal of clear text on the network, flags.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "aggregator/store/rocksdb_store.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/correlate/story_builder.h"
#include "tripline/v1/query.pb.h"

namespace tripline {
namespace {

using testing::BinPath;
using testing::Child;
using testing::IngestClient;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::RunResult;
using testing::SyntheticEvents;
using testing::TempDir;

constexpr const char* kListening = "listening on ";

class Aggregator {
 public:
  Aggregator(const TempDir& dir, std::vector<std::string> extra = {})
      : stderr_path_(dir.Sub("aggregator.stderr")) {
    std::vector<std::string> argv = {BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0",
                                     "--data-dir", dir.Sub("data")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child_ = std::make_unique<Child>(argv, stderr_path_);
    const auto line = child_->ReadLine(20000);
    if (line && line->rfind(kListening, 0) == 0) address_ = line->substr(strlen(kListening));
  }
  const std::string& address() const { return address_; }
  Child& child() { return *child_; }
  std::string Stderr() const { return ReadWholeFile(stderr_path_); }

 private:
  std::string stderr_path_;
  std::unique_ptr<Child> child_;
  std::string address_;
};

// A length-delimited field: its tag bytes, the length as a varint, the body.
std::string Len(const std::string& tag, const std::string& body) {
  std::string out = tag;
  for (uint64_t n = body.size();; n >>= 7) {
    if (n < 0x80) {
      out.push_back(static_cast<char>(n));
      break;
    }
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
  }
  return out + body;
}

// VmHWM of a process: its peak resident set, in kB; -1 when unreadable.
int64_t PeakRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// An ingest stream of raw request bytes: what a client that does not use the generated
// message types can send.
class RawIngestStream {
 public:
  explicit RawIngestStream(const std::string& target)
      : channel_(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())),
        method_("/tripline.v1.Ingest/Stream", grpc::internal::RpcMethod::BIDI_STREAMING) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_.reset(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel_.get(), method_, &context_));
  }
  // Writes `bytes` as one request and reads one ack; nullopt when the stream ended.
  std::optional<v1::IngestAck> Send(const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer out(&slice, 1);
    if (!stream_->Write(out)) return std::nullopt;
    grpc::ByteBuffer in;
    if (!stream_->Read(&in)) return std::nullopt;
    std::vector<grpc::Slice> slices;
    if (!in.Dump(&slices).ok()) return std::nullopt;
    std::string flat;
    for (const auto& s : slices) flat.append(reinterpret_cast<const char*>(s.begin()), s.size());
    v1::IngestAck ack;
    if (!ack.ParseFromString(flat)) return std::nullopt;
    return ack;
  }
  grpc::Status Finish() {
    stream_->WritesDone();
    return stream_->Finish();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  grpc::internal::RpcMethod method_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream_;
};

std::vector<std::pair<std::string, uint64_t>> StoredSeqs(const std::string& data_dir) {
  auto store = RocksDbStore::Open({.path = data_dir});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  std::vector<std::pair<std::string, uint64_t>> out;
  EventQuery q{.limit = 10000};
  while (store.ok()) {
    auto page = (*store)->QueryEvents(q);
    EXPECT_TRUE(page.ok());
    for (const auto& e : page->events) out.emplace_back(e.sensor_id, e.event.seq);
    if (page->next_page_token.empty()) break;
    q.page_token = page->next_page_token;
  }
  return out;
}

TEST(AggregatorProcessTest, PrintsTheRealPortAndStopsWithExitZeroOnSigterm) {
  TempDir dir;
  Aggregator agg(dir);
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  EXPECT_EQ(agg.address().rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(agg.address(), "127.0.0.1:0");
  // With a sensor stream open and idle, SIGTERM still stops it, cleanly.
  IngestClient client(agg.address());
  ASSERT_TRUE(client.Hello("sensor-a"));
  ASSERT_TRUE(client.Batch("sensor-a", 1, SyntheticEvents(10)));
  agg.child().Signal(SIGTERM);
  EXPECT_EQ(agg.child().Wait(15000), std::optional<int>(0)) << agg.Stderr();
  EXPECT_NE(agg.Stderr().find("stopped cleanly"), std::string::npos);
  EXPECT_EQ(StoredSeqs(dir.Sub("data")).size(), 10u);
}

TEST(AggregatorProcessTest, SigkillMidStreamThenRestartLosesAndDuplicatesNothing) {
  TempDir dir;
  constexpr size_t kTotal = 5000, kBatch = 50;
  const auto events = SyntheticEvents(kTotal);
  uint64_t last_ack = 0;
  {
    Aggregator agg(dir);
    ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
    IngestClient client(agg.address());
    ASSERT_TRUE(client.Hello("sensor-a"));
    for (size_t i = 0; i < kTotal / 2; i += kBatch) {
      auto ack = client.Batch("sensor-a", i + 1, {events.begin() + i, events.begin() + i + kBatch});
      ASSERT_TRUE(ack.has_value());
      last_ack = ack->durable_seq();
    }
    // One more batch in flight (written, ack not read) when the process dies.
    auto in_flight = testing::BatchRequest(
        "sensor-a", last_ack + 1, {events.begin() + last_ack, events.begin() + last_ack + kBatch});
    IngestClient other(agg.address());
    ASSERT_TRUE(other.Hello("sensor-b"));  // a second sensor, to check both survive
    ASSERT_TRUE(other.Batch("sensor-b", 1, SyntheticEvents(7)));
    ASSERT_TRUE(client.WriteOnly(in_flight));
    agg.child().Signal(SIGKILL);
    EXPECT_EQ(agg.child().Wait(10000), std::optional<int>(128 + SIGKILL));
  }
  EXPECT_EQ(last_ack, kTotal / 2);

  Aggregator agg(dir);
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  IngestClient client(agg.address());
  auto hello = client.Hello("sensor-a");
  ASSERT_TRUE(hello.has_value());
  // Every acked batch survived the SIGKILL (WAL in the page cache).
  EXPECT_GE(hello->durable_seq(), last_ack);
  // The sensor resends from its last ack; the overlap is deduplicated.
  for (size_t i = last_ack; i < kTotal; i += kBatch) {
    auto ack = client.Batch("sensor-a", i + 1, {events.begin() + i, events.begin() + i + kBatch});
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ack->error(), "");
  }
  EXPECT_TRUE(client.Finish().ok());
  agg.child().Signal(SIGTERM);
  ASSERT_EQ(agg.child().Wait(15000), std::optional<int>(0)) << agg.Stderr();

  const auto stored = StoredSeqs(dir.Sub("data"));
  std::set<uint64_t> a_seqs;
  size_t b_count = 0;
  for (const auto& [sensor, seq] : stored) {
    if (sensor == "sensor-b") {
      ++b_count;
      continue;
    }
    EXPECT_TRUE(a_seqs.insert(seq).second) << "seq " << seq << " stored twice";
  }
  EXPECT_EQ(a_seqs.size(), kTotal);
  EXPECT_EQ(*a_seqs.begin(), 1u);
  EXPECT_EQ(*a_seqs.rbegin(), kTotal);
  EXPECT_EQ(b_count, 7u);
}

TEST(AggregatorProcessTest, RefusesANonLoopbackListenerWithoutTls) {
  TempDir dir;
  const RunResult r = RunCommand(
      {BinPath("tripline-aggregator"), "--listen", "0.0.0.0:0", "--data-dir", dir.Sub("data")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("refusing to listen on 0.0.0.0:0 without TLS"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

// "127.x.example" is a name that resolves wherever its owner likes, not a loopback address.
TEST(AggregatorProcessTest, RefusesALoopbackLookingNameWithoutTls) {
  TempDir dir;
  for (const char* name : {"127.x.example:0", "127.0.0.1.example:0"}) {
    const RunResult r = RunCommand(
        {BinPath("tripline-aggregator"), "--listen", name, "--data-dir", dir.Sub("data")});
    EXPECT_EQ(r.exit_code, 2) << name << "\n" << r.err;
    EXPECT_NE(r.err.find("without TLS"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

// The largest count of the smallest events that fits the message limit: 7.8 M empty events
// in 16 MiB. Parsing them allocated ~90 bytes each (700 MB, held for the stream's life); the
// events are now counted on the wire first and the request refused with an error ack.
TEST(AggregatorProcessTest, AmplificationRequestKeepsMemoryBounded) {
  // Requests written by hand: building them as messages would cost the test what they
  // cost the server. N empty elements of 2 bytes each fill most of the 16 MiB limit.
  constexpr size_t kElements = 7'800'000;
  std::string empties;
  empties.reserve(2 * kElements);
  for (size_t i = 0; i < kElements; ++i) empties.append("\x00\x00", 2);
  const auto repeated = [&](char tag) {
    std::string out = empties;
    for (size_t i = 0; i < out.size(); i += 2) out[i] = tag;
    return out;
  };
  const std::string batch_head = std::string("\x0a\x03") + "amp" + "\x10\x01";
  // batch{sensor_id "amp", first_seq 1, events {} x N}
  const std::string many_events = Len("\x12", batch_head + repeated('\x1a'));
  // batch{..., events {time_ns 1, host "h", exec {argv "" x N}}}: one event, N strings.
  const std::string many_args =
      Len("\x12", batch_head + Len("\x1a", std::string("\x10\x01\x1a\x01h", 5) +
                                               Len("\xb2\x01", repeated('\x12'))));
  for (const auto& [name, request, error] :
       {std::tuple<std::string, std::string, std::string>{"7.8 M empty events", many_events,
                                                          "more than 4096 events"},
        {"one event with 7.8 M empty argv strings", many_args,
         "fields (counted before parsing)"}}) {
    ASSERT_LT(request.size(), size_t{16} << 20) << name;
    TempDir dir;
    Aggregator agg(dir);
    ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
    const int64_t idle_kb = PeakRssKb(agg.child().pid());
    ASSERT_GT(idle_kb, 0);
    RawIngestStream raw(agg.address());
    v1::IngestRequest hello = testing::HelloRequest("amp");
    ASSERT_TRUE(raw.Send(hello.SerializeAsString()).has_value()) << agg.Stderr();
    const auto ack = raw.Send(request);
    ASSERT_TRUE(ack.has_value()) << name << "\n" << agg.Stderr();
    EXPECT_NE(ack->error().find(error), std::string::npos) << name << ": " << ack->error();
    EXPECT_EQ(ack->durable_seq(), 0u);
    EXPECT_EQ(ack->rejected_first_seq(), 1u);
    const int64_t peak_kb = PeakRssKb(agg.child().pid());
    // The request's bytes once or twice (16 MiB each) and gRPC's buffers; parsed, the
    // events alone took ~720 MB.
    EXPECT_LT(peak_kb - idle_kb, 128 * 1024)
        << name << ": idle " << idle_kb << " kB, peak " << peak_kb;
    std::printf("amplification request, %s: aggregator peak RSS %lld kB (idle %lld kB)\n",
                name.c_str(), static_cast<long long>(peak_kb), static_cast<long long>(idle_kb));
    raw.Finish();
    agg.child().Signal(SIGTERM);
    EXPECT_EQ(agg.child().Wait(20000), std::optional<int>(0)) << agg.Stderr();
  }
}

// The sample configuration in deploy/ parses and asks for mutual TLS: started with it, the
// aggregator gets as far as reading the (absent) certificate files.
TEST(AggregatorProcessTest, SampleConfigurationAsksForMutualTls) {
  TempDir dir;
  const RunResult r =
      RunCommand({BinPath("tripline-aggregator"), "--config",
                  std::string(TRIPLINE_SOURCE_DIR) + "/deploy/config/aggregator.textproto",
                  "--listen", "127.0.0.1:0", "--data-dir", dir.Sub("data")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("cannot read tls.cert_file /etc/tripline/tls/aggregator.pem"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(AggregatorProcessTest, InsecureAllowsANonLoopbackListener) {
  TempDir dir;
  Child child({BinPath("tripline-aggregator"), "--listen", "0.0.0.0:0", "--data-dir",
               dir.Sub("data"), "--insecure"},
              dir.Sub("stderr"));
  const auto line = child.ReadLine(20000);
  ASSERT_TRUE(line.has_value()) << ReadWholeFile(dir.Sub("stderr"));
  EXPECT_EQ(line->rfind("listening on 0.0.0.0:", 0), 0u) << *line;
  child.Signal(SIGTERM);
  EXPECT_EQ(child.Wait(15000), std::optional<int>(0));
  // Clear text on the network is allowed, and said loudly.
  const std::string log = ReadWholeFile(dir.Sub("stderr"));
  EXPECT_NE(log.find("without TLS (--insecure): events, queries and acknowledgements travel in "
                     "clear text"),
            std::string::npos)
      << log;
}

TEST(AggregatorProcessTest, BadFlagsPrintUsageAndExitTwo) {
  TempDir dir;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--bogus"},
           {"--listen", "127.0.0.1:0"},
           {"--listen", "nonsense", "--data-dir", dir.Sub("d")},
           {"--listen", "127.0.0.1:0", "--data-dir", dir.Sub("d"), "--retention", "soon"},
           {"--listen", "127.0.0.1:0", "--data-dir", dir.Sub("d"), "--forward", "ftp://x"},
           {"--listen", "127.0.0.1:0", "--data-dir", dir.Sub("d"), "--forward",
            "http://example.com/x"},
           {"--listen", "127.0.0.1:0", "--data-dir", dir.Sub("d"), "--config",
            dir.Sub("missing.textproto")},
           {"--listen", "127.0.0.1:0", "--data-dir", dir.Sub("d"), "--forward",
            "syslog+tls://127.0.0.1:6514", "--forward-ca", dir.Sub("missing-ca.pem")},
           {"--listen", "127.0.0.1:0", "--data-dir", dir.Sub("d"), "--forward-token-file",
            dir.Sub("missing-token")}}) {
    std::vector<std::string> argv = {BinPath("tripline-aggregator")};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  const RunResult r = RunCommand({BinPath("tripline-aggregator"), "--bogus"});
  EXPECT_NE(r.err.find("unknown argument '--bogus'"), std::string::npos);
  EXPECT_NE(r.err.find("usage: tripline-aggregator"), std::string::npos);
}

TEST(AggregatorProcessTest, ConfigFileIsReadAndFlagsWin) {
  TempDir dir;
  {
    std::ofstream config(dir.Sub("agg.textproto"));
    config << "listen: \"127.0.0.1:1\"\n"
           << "data_dir: \"" << dir.Sub("from-config") << "\"\n"
           << "forward: \"syslog+tcp://127.0.0.1:6514\"\n"
           << "max_batch_events: 5\n";
  }
  Child child({BinPath("tripline-aggregator"), "--config", dir.Sub("agg.textproto"), "--listen",
               "127.0.0.1:0"},
              dir.Sub("stderr"));
  const auto line = child.ReadLine(20000);
  ASSERT_TRUE(line.has_value()) << ReadWholeFile(dir.Sub("stderr"));
  const std::string address = line->substr(strlen(kListening));
  IngestClient client(address);
  ASSERT_TRUE(client.Hello("sensor-a"));
  auto ack = client.Batch("sensor-a", 1, SyntheticEvents(6));  // over the config's maximum
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->error().find("more than 5"), std::string::npos) << ack->error();
  EXPECT_TRUE(client.Finish().ok());
  child.Signal(SIGTERM);
  EXPECT_EQ(child.Wait(15000), std::optional<int>(0));
  const std::string err = ReadWholeFile(dir.Sub("stderr"));
  // The file's output is used (nothing listens there: it is retried, not dropped).
  EXPECT_NE(err.find("forwarding incidents to syslog+tcp://127.0.0.1:6514 (cef)"),
            std::string::npos)
      << err;
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("from-config")));
}

// The aggregator answers at most 1000 incidents a call; triplinectl follows the pages up
// to --limit, and without --limit shows one page.
TEST(CtlPagingTest, IncidentsFollowPagesUpToTheLimit) {
  TempDir dir;
  {
    auto store = RocksDbStore::Open({.path = dir.Sub("data")});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (int i = 0; i < 1100; ++i) {
      v1::Incident incident;
      incident.set_id("inc-" + std::to_string(10000 + i));
      incident.set_severity(v1::SEVERITY_HIGH);
      incident.set_title("chain " + std::to_string(i));
      incident.set_first_seen_ns(testing::kBaseTimeNs);
      incident.set_last_seen_ns(testing::kBaseTimeNs + i);
      incident.set_confidence(0.5);
      ASSERT_TRUE((*store)->PutIncident(incident.id(), incident.SerializeAsString()).ok());
    }
  }
  Aggregator agg(dir);
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  const auto list = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {BinPath("triplinectl"), "--aggregator", agg.address(),
                                     "incidents", "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const RunResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::array();
  };
  const auto all = list({"--limit", "1100"});
  ASSERT_EQ(all.size(), 1100u);
  std::set<std::string> ids;
  for (const auto& i : all) ids.insert(i["id"].get<std::string>());
  EXPECT_EQ(ids.size(), 1100u);
  EXPECT_EQ(all[0]["id"], "inc-11099");  // newest first
  EXPECT_EQ(all[1099]["id"], "inc-10000");
  EXPECT_EQ(list({}).size(), 1000u);
  EXPECT_EQ(list({"--limit", "1050"}).size(), 1050u);
  agg.child().Signal(SIGTERM);
  EXPECT_EQ(agg.child().Wait(20000), std::optional<int>(0)) << agg.Stderr();
}

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agg_ = std::make_unique<Aggregator>(dir_);
    ASSERT_FALSE(agg_->address().empty()) << agg_->Stderr();
  }
  RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("triplinectl"), "--aggregator", agg_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  std::unique_ptr<Aggregator> agg_;
};

TEST_F(CtlTest, EventsJsonReturnsTheStoredEvents) {
  const auto events = SyntheticEvents(25);
  IngestClient client(agg_->address());
  ASSERT_TRUE(client.Hello("sensor-a"));
  ASSERT_TRUE(client.Batch("sensor-a", 1, events));
  const RunResult r = Ctl({"events", "--json", "--limit", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 25u);
  for (size_t i = 0; i < j.size(); ++i) {
    EXPECT_EQ(j[i]["seq"], i + 1);
    EXPECT_EQ(j[i]["sensor_id"], "sensor-a");
    EXPECT_EQ(j[i]["host"], events[i].host);
    EXPECT_EQ(j[i]["time_ns"], events[i].time_ns);
    EXPECT_EQ(j[i]["kind"], std::string(KindName(events[i].kind())));
  }
  // Filters and a limit smaller than a page.
  const RunResult filtered = Ctl({"events", "--json", "--user", "user1", "--kind", "exec"});
  ASSERT_EQ(filtered.exit_code, 0) << filtered.err;
  const auto f = nlohmann::json::parse(filtered.out);
  ASSERT_EQ(f.size(), 2u);  // i = 1*, 5 and 21 → i%4==1 and i%5==1: 1, 21
  EXPECT_EQ(f[0]["seq"], 2);
  EXPECT_EQ(f[1]["seq"], 22);
  const RunResult limited =
      Ctl({"events", "--json", "--limit", "3", "--since", FormatTimeNs(events[10].time_ns)});
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  const auto l = nlohmann::json::parse(limited.out);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0]["seq"], 11);
  // The default output is a table with a header.
  const RunResult table = Ctl({"events", "--host", "host0"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("TIME", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("sensor-a"), std::string::npos);
}

TEST_F(CtlTest, StatsShowsSensorsAndCounts) {
  IngestClient client(agg_->address());
  ASSERT_TRUE(client.Hello("sensor-a"));
  auto events = SyntheticEvents(8);
  events.push_back(testing::MakeHealth("host0", testing::kBaseTimeNs + 9'000'000, 3, 4));
  ASSERT_TRUE(client.Batch("sensor-a", 1, events));
  const RunResult r = Ctl({"stats", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["events_stored"], 9);
  EXPECT_EQ(j["sensors_connected"], 1);
  EXPECT_EQ(j["identities"], 6);  // user0..user4 and root (sshd logins)
  ASSERT_EQ(j["sensors"].size(), 1u);
  EXPECT_EQ(j["sensors"][0]["durable_seq"], 9);
  EXPECT_EQ(j["sensors"][0]["connected"], true);
  EXPECT_EQ(j["sensors"][0]["ringbuf_drops"], 3);
  EXPECT_EQ(j["sensors"][0]["spool_drops"], 4);
  const RunResult table = Ctl({"stats"});
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_TRUE(std::regex_search(table.out, std::regex("\\nevents stored +9\\n"))) << table.out;
}

TEST_F(CtlTest, UsageErrorsExitTwoNotFoundFiveUnreachableSix) {
  EXPECT_EQ(Ctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Ctl({"events", "--bogus"}).exit_code, 2);
  EXPECT_EQ(Ctl({"events", "--since", "yesterday"}).exit_code, 2);
  EXPECT_EQ(Ctl({"incident"}).exit_code, 2);
  EXPECT_EQ(RunCommand({BinPath("triplinectl"), "events"}).exit_code, 2);  // no --aggregator
  const RunResult missing = Ctl({"incident", "nope"});
  EXPECT_EQ(missing.exit_code, 5);
  EXPECT_NE(missing.err.find("NOT_FOUND"), std::string::npos) << missing.err;
  agg_->child().Signal(SIGKILL);
  agg_->child().Wait(10000);
  const RunResult down = Ctl({"stats", "--timeout", "2s"});
  EXPECT_EQ(down.exit_code, 6);
  EXPECT_NE(down.err.find("GetStats"), std::string::npos) << down.err;
}

}  // namespace
}  // namespace tripline

namespace tripline {
namespace {

// Learned baselines through the real binaries: weeks of alice's office logins sent as a
// sensor sends them, a night login from a new network with a hop, then `triplinectl
// baseline` shows what was learned and `triplinectl feedback` folds the incident back.
TEST_F(CtlTest, BaselineAndFeedbackThroughTheQueryService) {
  correlate::testing::StoryBuilder b;
  std::vector<correlate::testing::Delivery> stream;
  int session = 100;
  for (int day = 28; day >= 1; --day) {
    if ((((3 - day) % 7) + 7) % 7 == 0 || (((3 - day) % 7) + 7) % 7 == 6) continue;  // weekend
    for (double hour : {9.0, 14.0}) {
      stream.push_back(b.Login("hosta", "alice", "198.51.100." + std::to_string(10 + day % 5),
                               40000 + session, "audit:" + std::to_string(session),
                               -day * 86400.0 + (hour - 3.7) * 3600));
      ++session;
    }
  }
  stream.push_back(b.Login("hosta", "alice", "203.0.113.9", 41000, "audit:1", -29 * 60));
  stream.push_back(b.Connect("hosta", "audit:1", "alice", 50001, "198.18.0.12", 22, -28 * 60));
  stream.push_back(b.Login("hostb", "alice", "198.18.0.11", 50001, "audit:5", -28 * 60 + 1));
  std::map<std::string, std::unique_ptr<IngestClient>> clients;
  for (const auto& d : stream) {
    auto& c = clients[d.sensor];
    if (!c) {
      c = std::make_unique<IngestClient>(agg_->address());
      ASSERT_TRUE(c->Hello(d.sensor));
    }
    ASSERT_TRUE(c->Batch(d.sensor, d.event.seq, {d.event}));
  }
  nlohmann::json incidents;
  for (int i = 0; i < 100 && incidents.size() != 1; ++i) {
    const RunResult r = Ctl({"incidents", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    incidents = nlohmann::json::parse(r.out);
    if (incidents.size() != 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(incidents.size(), 1u) << agg_->Stderr();
  const std::string id = incidents[0]["id"];

  const RunResult baseline = Ctl({"baseline", "alice", "--json"});
  ASSERT_EQ(baseline.exit_code, 0) << baseline.err;
  const auto j = nlohmann::json::parse(baseline.out);
  EXPECT_EQ(j["identity"], "human:alice");
  EXPECT_EQ(j["kind"], "human");
  EXPECT_EQ(j["warm"], true);
  EXPECT_EQ(j["usual_hours"], "08:00-14:00");  // 08:59 and 13:59 UTC
  bool office = false;
  for (const auto& f : j["features"]) office = office || f["name"] == "network:198.51.100.0/24";
  EXPECT_TRUE(office) << baseline.out;
  const RunResult table = Ctl({"baseline", "host:hosta"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("user:human:alice"), std::string::npos) << table.out;

  EXPECT_EQ(Ctl({"feedback", id, "maybe"}).exit_code, 2);
  EXPECT_EQ(Ctl({"feedback", "inc-nope", "expected"}).exit_code, 5);  // not found
  EXPECT_EQ(Ctl({"baseline", "nobody"}).exit_code, 5);
  const RunResult fed = Ctl({"feedback", id, "expected"});
  ASSERT_EQ(fed.exit_code, 0) << fed.err;
  EXPECT_NE(fed.out.find("suppressed"), std::string::npos) << fed.out;
  const auto after = nlohmann::json::parse(Ctl({"baseline", "alice", "--json"}).out);
  EXPECT_FALSE(after["suppressed"].empty()) << after.dump();
}

}  // namespace
}  // namespace tripline

namespace tripline {
namespace {

// Service accounts declared in the configuration are judged as services; a rule the
// aggregator cannot apply stops it with a clear message.
TEST(AggregatorProcessTest, DeclaredIdentitiesAreAppliedAndBadRulesRefused) {
  TempDir dir;
  {
    std::ofstream config(dir.Sub("agg.textproto"));
    config << "identities { kind: \"service\" user: \"svc-*\" }\n";
  }
  Aggregator agg(dir, {"--config", dir.Sub("agg.textproto")});
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  correlate::testing::StoryBuilder b;
  const auto login = b.Login("hosta", "svc-backup", "198.51.100.7", 40001, "audit:1", 0);
  IngestClient client(agg.address());
  ASSERT_TRUE(client.Hello(login.sensor));
  ASSERT_TRUE(client.Batch(login.sensor, login.event.seq, {login.event}));
  RunResult r;
  for (int i = 0; i < 50; ++i) {
    r = RunCommand({BinPath("triplinectl"), "--aggregator", agg.address(), "baseline", "svc-backup",
                    "--json"});
    if (r.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["identity"], "service:svc-backup") << r.out;

  for (const std::string bad :
       {"identities { kind: \"robot\" user: \"x\" }", "identities { kind: \"service\" }",
        "identities { kind: \"agent\" k8s_service_account: \"no-namespace\" }",
        "identities { kind: \"service\" user: \"x\" trust: \"probation\" }",
        "identities { kind: \"agent\" user: \"x\" trust: \"maybe\" }"}) {
    TempDir other;
    {
      std::ofstream config(other.Sub("bad.textproto"));
      config << bad << "\n";
    }
    const RunResult refused =
        RunCommand({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
                    other.Sub("data"), "--config", other.Sub("bad.textproto")});
    EXPECT_EQ(refused.exit_code, 2) << bad;
    EXPECT_NE(refused.err.find("identities[0]: "), std::string::npos) << refused.err;
  }
}

// An agent declared on probation: a brute force that gets in as it is one level more
// severe; a person promotes it with triplinectl, the incident is judged again, the
// decision (who, when, why) reaches the SIEM output and outlives a restart.
TEST(AggregatorProcessTest, AnAgentOnProbationIsEscalatedUntilAPersonPromotesIt) {
  TempDir dir;
  {
    std::ofstream config(dir.Sub("agg.textproto"));
    config << "identities { kind: \"agent\" user: \"aiops\" trust: \"probation\" }\n"
           << "forward: \"file://" << dir.Sub("siem.jsonl") << "?format=ocsf\"\n";
  }
  const std::vector<std::string> flags = {"--config", dir.Sub("agg.textproto")};
  auto ctl = [](const std::string& address, std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("triplinectl"), "--aggregator", address};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  // The one incident, once its severity is `want`.
  auto incident_at = [&](const std::string& address, const std::string& want) {
    nlohmann::json in;
    for (int i = 0; i < 100; ++i) {
      const RunResult r = ctl(address, {"incidents", "--json"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      const auto all = nlohmann::json::parse(r.out, nullptr, false);
      if (all.is_array() && all.size() == 1) {
        in = all[0];
        if (in["severity"] == want) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return in;
  };
  {
    Aggregator agg(dir, flags);
    ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
    correlate::testing::StoryBuilder b;
    IngestClient client(agg.address());
    ASSERT_TRUE(client.Hello(b.Sensor("hosta")));
    for (int i = 0; i < 5; ++i) {
      const auto d = b.Failure("hosta", "aiops", "198.18.0.66", 40001 + i, i);
      ASSERT_TRUE(client.Batch(d.sensor, d.event.seq, {d.event}));
    }
    const auto login = b.Login("hosta", "aiops", "198.18.0.66", 40010, "audit:1", 7);
    ASSERT_TRUE(client.Batch(login.sensor, login.event.seq, {login.event}));

    // Five failures and a login after them: medium, and high for an agent on probation.
    nlohmann::json in = incident_at(agg.address(), "high");
    ASSERT_EQ(in["severity"], "high") << in.dump(2) << agg.Stderr();
    EXPECT_NE(in.dump().find("The agent aiops is on probation"), std::string::npos) << in.dump(2);

    RunResult r = ctl(agg.address(), {"trust", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto list = nlohmann::json::parse(r.out);
    ASSERT_EQ(list.size(), 1u) << r.out;
    EXPECT_EQ(list[0]["agent"], "aiops");
    EXPECT_EQ(list[0]["level"], "probation");
    EXPECT_EQ(list[0]["declared_probation"], true);
    EXPECT_TRUE(list[0]["history"].empty());

    EXPECT_EQ(ctl(agg.address(), {"trust", "promote", "aiops"}).exit_code, 2);  // no --by
    EXPECT_EQ(ctl(agg.address(), {"trust", "probation", "aiops", "--by", "dave"}).exit_code,
              2);  // no --reason
    EXPECT_EQ(ctl(agg.address(), {"trust", "promote", "nobody", "--by", "carol"}).exit_code, 5);
    r = ctl(agg.address(),
            {"trust", "promote", "aiops", "--by", "carol", "--reason", "reviewed its runbooks"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "agent aiops is now trusted, set by carol\n");
    // Promoting a trusted agent is not an act: refused, and not in the trail.
    EXPECT_EQ(ctl(agg.address(), {"trust", "promote", "aiops", "--by", "carol"}).exit_code, 1);

    in = incident_at(agg.address(), "medium");
    EXPECT_EQ(in["severity"], "medium") << in.dump(2);
    EXPECT_EQ(in.dump().find("on probation"), std::string::npos) << in.dump(2);

    // The SIEM output received the decision once, as an OCSF Entity Management event.
    std::vector<nlohmann::json> decisions;
    for (int i = 0; i < 250 && decisions.empty(); ++i) {
      std::ifstream in_file(dir.Sub("siem.jsonl"));
      std::string line;
      while (std::getline(in_file, line) && !in_file.eof()) {
        const auto record = nlohmann::json::parse(line);
        if (record["class_uid"] == 3004 && record["entity"]["type"] == "agent trust level") {
          decisions.push_back(record);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(decisions.size(), 1u);
    EXPECT_EQ(decisions[0]["message"], "promoted to trusted: agent aiops");
    EXPECT_EQ(decisions[0]["actor"]["user"]["name"], "carol");
    EXPECT_EQ(decisions[0]["comment"], "reviewed its runbooks");
    EXPECT_EQ(decisions[0]["entity"]["data"]["level"], "trusted");
  }
  Aggregator again(dir, flags);
  ASSERT_FALSE(again.address().empty()) << again.Stderr();
  const RunResult r = ctl(again.address(), {"trust", "aiops", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 1u) << r.out;
  EXPECT_EQ(list[0]["level"], "trusted");
  ASSERT_EQ(list[0]["history"].size(), 1u);
  EXPECT_EQ(list[0]["history"][0]["by"], "carol");
  EXPECT_EQ(list[0]["history"][0]["reason"], "reviewed its runbooks");
  EXPECT_EQ(list[0]["history"][0]["level"], "trusted");
  const RunResult table = ctl(again.address(), {"trust"});
  EXPECT_NE(table.out.find("reviewed its runbooks"), std::string::npos) << table.out;
  EXPECT_EQ(ctl(again.address(), {"trust", "nobody"}).exit_code, 5);
}

// An account running a job every hour, never at a terminal, is suggested as a service;
// a person confirms it with triplinectl, and it is listed as confirmed by them.
TEST_F(CtlTest, SuggestedKindsAreListedConfirmedAndDismissed) {
  correlate::testing::StoryBuilder b;
  IngestClient client(agg_->address());
  ASSERT_TRUE(client.Hello(b.Sensor("hosta")));
  for (int h = 0; h < 72; ++h) {
    const double t = -4 * 86400.0 + h * 3600.0;
    for (const auto& d : {b.Exec("hosta", "", "backup", 990, "/usr/local/bin/backup", t),
                          b.Exec("hosta", "", "backup", 990, "/usr/bin/tar", t + 1)}) {
      ASSERT_TRUE(client.Batch(d.sensor, d.event.seq, {d.event}));
    }
  }
  nlohmann::json list;
  for (int i = 0; i < 100 && list.size() != 1; ++i) {
    const RunResult r = Ctl({"suggestions", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    list = nlohmann::json::parse(r.out);
    if (list.size() != 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(list.size(), 1u) << agg_->Stderr();
  EXPECT_EQ(list[0]["user"], "backup");
  EXPECT_EQ(list[0]["kind"], "service");
  const RunResult table = Ctl({"suggestions"});
  EXPECT_NE(table.out.find("/usr/local/bin/backup ran 72 times, every 1h00m"), std::string::npos)
      << table.out;

  EXPECT_EQ(Ctl({"suggestions", "confirm", "backup"}).exit_code, 2);  // no --by
  EXPECT_EQ(Ctl({"suggestions", "confirm", "backup", "--by", "carol", "--kind", "human"}).exit_code,
            2);
  EXPECT_EQ(Ctl({"suggestions", "dismiss", "nobody", "--by", "carol"}).exit_code, 5);
  const RunResult confirmed = Ctl({"suggestions", "confirm", "backup", "--by", "carol"});
  ASSERT_EQ(confirmed.exit_code, 0) << confirmed.err;
  EXPECT_NE(confirmed.out.find("backup is now declared as service"), std::string::npos)
      << confirmed.out;
  EXPECT_EQ(nlohmann::json::parse(Ctl({"suggestions", "--json"}).out).size(), 0u);
  const auto all = nlohmann::json::parse(Ctl({"suggestions", "--all", "--json"}).out);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["state"], "confirmed");
  EXPECT_EQ(all[0]["decided_by"], "carol");
}

}  // namespace
}  // namespace tripline
