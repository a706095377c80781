// Text chosen by whoever runs processes on a host, through the real components:
//  - an exec record from a path with a byte that is not UTF-8 goes through the real record
//    decoder, the sensor's event pipeline, its spool and delivery client to the real
//    aggregator binary, and is stored and listed (it used to be spooled, then discarded as
//    unreadable);
//  - ESC and OSC sequences in a login user name and a command line reach the real
//    triplinectl escaped in tables and exact in valid JSON;
//  - a host name with a newline does not forge a line in the aggregator's log.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "common/text_escape.h"
#include "model/event_proto.h"
#include "sensor/config.h"
#include "sensor/delivery_sink.h"
#include "sensor/event_pipeline.h"
#include "sensor/host_files.h"
#include "sensor/record_decoder.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/bpf/record_builders.h"
#include "tests/correlate/story_builder.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

using nlohmann::json;
using testing::BinPath;
using testing::Child;
using testing::IngestClient;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;

constexpr const char* kListening = "listening on ";

class Aggregator {
 public:
  explicit Aggregator(const TempDir& dir) : stderr_path_(dir.Sub("aggregator.stderr")) {
    child_ = std::make_unique<Child>(
        std::vector<std::string>{BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0",
                                 "--data-dir", dir.Sub("data")},
        stderr_path_);
    const auto line = child_->ReadLine(20000);
    if (line && line->rfind(kListening, 0) == 0) address_ = line->substr(strlen(kListening));
  }
  const std::string& address() const { return address_; }
  std::string Stderr() const { return ReadWholeFile(stderr_path_); }
  // Stops it with SIGTERM, so everything it logged is in the file.
  void Stop() {
    child_->Signal(SIGTERM);
    child_->Wait(10000);
  }

 private:
  std::string stderr_path_;
  std::unique_ptr<Child> child_;
  std::string address_;
};

RunResult Ctl(const Aggregator& agg, std::vector<std::string> args) {
  args.insert(args.begin(), {BinPath("triplinectl"), "--aggregator", agg.address()});
  return RunCommand(args);
}

// Every event the aggregator holds, through the query API.
std::vector<Event> ListAll(const std::string& address) {
  auto stub = v1::Query::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::ListEventsRequest req;
  req.set_limit(1000);
  grpc::ClientContext ctx;
  v1::ListEventsResponse resp;
  std::vector<Event> out;
  if (!stub->ListEvents(&ctx, req, &resp).ok()) return out;
  for (const auto& stored : resp.events()) {
    auto e = FromProto(stored.event());
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (e.ok()) out.push_back(std::move(*e));
  }
  return out;
}

bool HasByte(const std::string& s, char c) { return s.find(c) != std::string::npos; }

TEST(UntrustedTextTest, ExecFromANonUtf8PathReachesTheAggregator) {
  TempDir dir;
  Aggregator agg(dir);
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();

  // The host's /etc as the enricher reads it.
  std::filesystem::create_directories(dir.Sub("root/etc"));
  std::ofstream(dir.Sub("root/etc/passwd")) << "root:x:0:0:root:/root:/bin/bash\n"
                                            << "alice:x:1500:1500::/home/alice:/bin/bash\n";
  std::ofstream(dir.Sub("root/etc/group")) << "root:x:0:\n";
  sensor::RootedHostFiles files(dir.Sub("root"));

  sensor::SensorFlags flags;
  flags.aggregator = agg.address();
  flags.spool_dir = dir.Sub("spool");
  auto settings = sensor::ResolveSensorSettings(flags);
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  const sensor::HostIdentity identity{"hostu", "00112233445566778899aabbccddeeff"};
  auto sink = sensor::MakeDeliverySink(*settings, identity);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  sensor::EventPipeline pipeline(identity, files, files, SystemClock::Get(), **sink);

  // As the kernel writes them: a program run from /tmp/tl-\xff/run, an argument with a
  // stray byte, and the program's read of /etc/shadow under the same comm.
  tl_exec_record exec = sensor::testing::ExecRecord();
  sensor::testing::Put(exec.filename, "/tmp/tl-\xff/run");
  sensor::testing::Put(exec.hdr.comm, "ru\xffn");
  static const char kArgs[] = "/tmp/tl-\xff/run\0--x\xfe\\y";
  std::memcpy(exec.args, kArgs, sizeof(kArgs));
  exec.args_len = exec.args_total = sizeof(kArgs);
  exec.argc = 2;
  tl_file_open_record open = sensor::testing::FileOpenRecord();
  sensor::testing::Put(open.hdr.comm, "ru\xffn");
  const int64_t offset = SystemClock::Get().NowNs() - 5'000'000'000LL;
  for (const std::vector<uint8_t>& bytes :
       {sensor::testing::Bytes(exec), sensor::testing::Bytes(open)}) {
    auto event = sensor::DecodeRecord(bytes, offset);
    ASSERT_TRUE(event.ok()) << event.status().ToString();
    ASSERT_TRUE(pipeline.HandleKernelEvent(std::move(*event)).ok());
  }
  EXPECT_TRUE((*sink)->Close(10000).ok());

  std::vector<Event> stored = ListAll(agg.address());
  const Event* ran = nullptr;
  const Event* read = nullptr;
  for (const Event& e : stored) {
    if (e.As<ExecEvent>() != nullptr) ran = &e;
    if (e.As<FileOpenEvent>() != nullptr) read = &e;
  }
  ASSERT_NE(ran, nullptr) << "the exec never reached the aggregator; it logged:\n" << agg.Stderr();
  ASSERT_NE(read, nullptr) << "the shadow read never reached the aggregator";
  const ExecEvent& x = *ran->As<ExecEvent>();
  EXPECT_EQ(x.filename, "/tmp/tl-\\xff/run");
  ASSERT_EQ(x.argv.size(), 2u);
  EXPECT_EQ(UnescapeInvalidUtf8(x.argv[1]), "--x\xfe\\y");  // exact bytes back
  EXPECT_EQ(ran->process.comm, "ru\\xffn");
  EXPECT_EQ(ran->process.user, "alice");
  EXPECT_EQ(ran->process.exe, "/tmp/tl-\\xff/run");  // the enricher's, from the exec
  EXPECT_EQ(ran->escaped_fields,
            (std::vector<std::string>{"process.comm", "process.exe", "exec.filename",
                                      "exec.argv[0]", "exec.argv[1]"}));
  EXPECT_EQ(read->As<FileOpenEvent>()->path, "/etc/shadow");
  EXPECT_EQ(read->escaped_fields, (std::vector<std::string>{"process.comm", "process.exe"}));
  agg.Stop();
  EXPECT_EQ(agg.Stderr().find("unreadable"), std::string::npos) << agg.Stderr();
}

TEST(UntrustedTextTest, TerminalSequencesReachTriplinectlEscaped) {
  TempDir dir;
  Aggregator agg(dir);
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  const int64_t now = SystemClock::Get().NowNs();
  // An SSH user name an attacker's client can send (OpenSSH's own refuses it): set the
  // window title, clear the screen, and hide the rest behind a right-to-left override.
  const std::string user = "\x1b]0;owned\x07root\x1b[2J\xe2\x80\xaeyob";
  Event login = testing::MakeLogin("hosta", user, now, Outcome::kFailure);
  Event exec = testing::MakeExec("hosta", "alice", now + 1000, "/bin/sh");
  exec.As<ExecEvent>()->argv = {"sh", "-c", "printf '\x1b[31mred\x1b[0m\\n'\r\nfake row"};
  IngestClient client(agg.address());
  v1::IngestRequest hello = testing::HelloRequest("0123456789abcdef0123456789abcdef");
  hello.mutable_hello()->set_host("hosta");
  ASSERT_TRUE(client.Send(hello).has_value());
  auto ack = client.Batch("0123456789abcdef0123456789abcdef", 1, {login, exec});
  ASSERT_TRUE(ack.has_value());
  ASSERT_TRUE(ack->error().empty()) << ack->error();

  const RunResult table = Ctl(agg, {"events"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_FALSE(HasByte(table.out, '\x1b')) << table.out;
  EXPECT_FALSE(HasByte(table.out, '\x07')) << table.out;
  EXPECT_FALSE(HasByte(table.out, '\r')) << table.out;
  EXPECT_EQ(table.out.find("\xe2\x80\xae"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\\x1b]0;owned\\x07root\\x1b[2J\\u{202e}yob"), std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("\\x1b[31mred\\x1b[0m\\n'\\r\\nfake row"), std::string::npos)
      << table.out;
  // Header and two events: a newline in a cell cannot add a row.
  EXPECT_EQ(std::count(table.out.begin(), table.out.end(), '\n'), 3) << table.out;

  const RunResult as_json = Ctl(agg, {"events", "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_FALSE(HasByte(as_json.out, '\x1b')) << "JSON escapes controls";
  json j = json::parse(as_json.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_array()) << as_json.out;
  bool saw_user = false;
  for (const json& e : j) {
    if (e.contains("login")) saw_user = e["login"]["user"] == user;  // exact text in JSON
  }
  EXPECT_TRUE(saw_user) << as_json.out;
}

// The same user name as the account of a brute-forced login that then read /etc/shadow:
// the incident's identities, title, explanation and chain go through triplinectl escaped.
TEST(UntrustedTextTest, IncidentTextReachesTriplinectlEscaped) {
  TempDir dir;
  Aggregator agg(dir);
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  const std::string user = "\x1b]0;owned\x07root\x1b[2J";
  correlate::testing::StoryBuilder story;
  std::vector<Event> events;
  for (int i = 0; i < 8; ++i) {
    events.push_back(story.Failure("hosta", user, "198.18.0.66", 40000 + i, i * 0.5).event);
  }
  events.push_back(story.Login("hosta", user, "198.18.0.66", 40100, "audit:17", 5).event);
  events.push_back(
      story.Open("hosta", "audit:17", user, 1000, "cat", "/etc/shadow", FileAccess::kRead, 6)
          .event);
  // Told as happening now, so no retention or clock-skew rule of the aggregator applies.
  const int64_t shift = SystemClock::Get().NowNs() - correlate::testing::StoryBuilder::kT0;
  for (Event& e : events) e.time_ns += shift;
  IngestClient client(agg.address());
  v1::IngestRequest hello = testing::HelloRequest("00000000000000000000000000000abc");
  hello.mutable_hello()->set_host("hosta");
  ASSERT_TRUE(client.Send(hello).has_value());
  auto ack = client.Batch("00000000000000000000000000000abc", 1, events);
  ASSERT_TRUE(ack.has_value());
  ASSERT_TRUE(ack->error().empty()) << ack->error();

  std::string id;
  for (int i = 0; i < 100 && id.empty(); ++i) {
    const RunResult list = Ctl(agg, {"incidents", "--json"});
    json j = json::parse(list.out, nullptr, /*allow_exceptions=*/false);
    if (j.is_array() && !j.empty()) id = j[0]["id"];
    if (id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(id.empty()) << "no incident raised; aggregator log:\n" << agg.Stderr();

  const RunResult table = Ctl(agg, {"incidents"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_FALSE(HasByte(table.out, '\x1b')) << table.out;
  const RunResult detail = Ctl(agg, {"incident", id});
  ASSERT_EQ(detail.exit_code, 0) << detail.err;
  EXPECT_FALSE(HasByte(detail.out, '\x1b')) << detail.out;
  EXPECT_FALSE(HasByte(detail.out, '\x07')) << detail.out;
  EXPECT_NE(detail.out.find("\\x1b]0;owned\\x07root\\x1b[2J"), std::string::npos) << detail.out;
  const RunResult as_json = Ctl(agg, {"incident", id, "--json"});
  json j = json::parse(as_json.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << as_json.out;
  EXPECT_NE(as_json.out.find("\\u001b]0;owned"), std::string::npos) << as_json.out;
}

TEST(UntrustedTextTest, HostNameWithANewlineCannotForgeALogLine) {
  TempDir dir;
  Aggregator agg(dir);
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  const std::string forged = "E 06:00:00.000 ingest_service.cc:1] all sensors healthy";
  v1::IngestRequest hello = testing::HelloRequest("fedcba9876543210fedcba9876543210");
  hello.mutable_hello()->set_host("hostb\n" + forged);
  IngestClient client(agg.address());
  client.Send(hello);  // accepted or refused: either way it is logged
  client.Finish();
  agg.Stop();
  const std::string log = agg.Stderr();
  EXPECT_EQ(log.find("\n" + forged), std::string::npos) << log;
  EXPECT_NE(log.find("hostb\\n" + forged), std::string::npos) << log;
}

}  // namespace
}  // namespace tripline
