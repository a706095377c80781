// Syslog forwarding against a real rsyslog (Debian's rsyslog, with rsyslog-gnutls for TLS)
// started by the test on 127.0.0.1 with its own configuration in a temp dir: imtcp for
// syslog over TCP and imtcp with the gtls driver for TLS (RFC 5425), writing each message
// as received (%rawmsg%) and as rsyslog parsed it (its RFC 5424 fields, as JSON) to files.
// The test reads those files: every field, hostile values byte for byte, certificate
// verification, and no loss across a receiver outage and a kill -9 of the real
// tripline-aggregator process.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "aggregator/forward/forwarder.h"
#include "aggregator/forward/incident_formats.h"
#include "aggregator/store/rocksdb_store.h"
#include "model/incident_proto.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_pki.h"
#include "tests/aggregator/test_support.h"
#include "tests/correlate/story_builder.h"
#include "tests/forward/forward_test_support.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline::forward {
namespace {

using tripline::testing::BinPath;
using tripline::testing::Child;
using tripline::testing::IngestClient;
using tripline::testing::ReadWholeFile;
using tripline::testing::TempDir;

constexpr const char* kRsyslogd = "/usr/sbin/rsyslogd";

// The file's complete lines: a last line without its newline is still being written (the
// tests poll files an output or rsyslog is appending to) and is left for the next read.
std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline after it
    out.push_back(line);
  }
  return out;
}

// A syslog message carrying an incident (not an audit event: "|audit|").
bool IsIncident(const std::string& line) { return line.find("|incident|") != std::string::npos; }

// Polls `done` every 20 ms for at most timeout_ms.
bool WaitFor(const std::function<bool()>& done, int timeout_ms = 10000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The body of a GET, "" on any failure.
std::string HttpGet(const std::string& url) {
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const bool ok = curl_easy_perform(curl) == CURLE_OK;
  curl_easy_cleanup(curl);
  return ok ? body : "";
}

bool Accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// rsyslogd in the foreground with a configuration of its own: a plain imtcp input and,
// with certificates, a TLS one. Port 0 picks a free port (written to a file by rsyslog);
// a restart passes the ports it had.
class Rsyslog {
 public:
  Rsyslog(const TempDir& dir, int tcp_port, int tls_port, bool with_tls)
      : dir_(dir.path()), tcp_port_(tcp_port), tls_port_(tls_port) {
    std::ofstream conf(dir_ + "/rsyslog.conf");
    conf << "global(workDirectory=\"" << dir_ << "\" maxMessageSize=\"64k\"";
    if (with_tls) {
      conf << " DefaultNetstreamDriverCAFile=\"" << dir_ << "/ca.pem\""
           << " DefaultNetstreamDriverCertFile=\"" << dir_ << "/server.pem\""
           << " DefaultNetstreamDriverKeyFile=\"" << dir_ << "/server.key\"";
    }
    conf << ")\n"
         << "module(load=\"imtcp\")\n"
         << "template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n"
         << "template(name=\"fields\" type=\"list\" option.jsonf=\"on\") {\n"
         << "  property(outname=\"pri\" name=\"pri\" format=\"jsonf\")\n"
         << "  property(outname=\"facility\" name=\"syslogfacility\" format=\"jsonf\")\n"
         << "  property(outname=\"severity\" name=\"syslogseverity\" format=\"jsonf\")\n"
         << "  property(outname=\"time\" name=\"timereported\" dateFormat=\"rfc3339\" "
            "format=\"jsonf\")\n"
         << "  property(outname=\"host\" name=\"hostname\" format=\"jsonf\")\n"
         << "  property(outname=\"app\" name=\"app-name\" format=\"jsonf\")\n"
         << "  property(outname=\"procid\" name=\"procid\" format=\"jsonf\")\n"
         << "  property(outname=\"msgid\" name=\"msgid\" format=\"jsonf\")\n"
         << "  property(outname=\"sd\" name=\"structured-data\" format=\"jsonf\")\n"
         << "  property(outname=\"msg\" name=\"msg\" format=\"jsonf\")\n"
         << "}\n"
         << "ruleset(name=\"tcp\") {\n"
         << "  action(type=\"omfile\" file=\"" << dir_ << "/tcp.raw\" template=\"raw\")\n"
         << "  action(type=\"omfile\" file=\"" << dir_ << "/tcp.fields\" template=\"fields\")\n"
         << "}\n"
         << "ruleset(name=\"tls\") {\n"
         << "  action(type=\"omfile\" file=\"" << dir_ << "/tls.raw\" template=\"raw\")\n"
         << "  action(type=\"omfile\" file=\"" << dir_ << "/tls.fields\" template=\"fields\")\n"
         << "}\n"
         << "input(type=\"imtcp\" port=\"" << tcp_port << "\" listenPortFileName=\"" << dir_
         << "/tcp.port\" ruleset=\"tcp\")\n";
    if (with_tls) {
      conf << "input(type=\"imtcp\" port=\"" << tls_port << "\" listenPortFileName=\"" << dir_
           << "/tls.port\" ruleset=\"tls\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" "
              "streamDriver.authMode=\"anon\")\n";
    }
    conf.close();
    std::filesystem::remove(dir_ + "/tcp.port");
    std::filesystem::remove(dir_ + "/tls.port");
    child_ = std::make_unique<Child>(
        std::vector<std::string>{kRsyslogd, "-n", "-f", dir_ + "/rsyslog.conf", "-i",
                                 dir_ + "/rsyslog.pid"},
        dir_ + "/rsyslog.stderr");
    ready_ = WaitFor([&] {
      if (tcp_port_ == 0) tcp_port_ = PortFrom("tcp.port");
      if (with_tls && tls_port_ == 0) tls_port_ = PortFrom("tls.port");
      return tcp_port_ > 0 && (!with_tls || tls_port_ > 0) && Accepts(tcp_port_);
    });
  }
  ~Rsyslog() { Stop(); }
  void Stop() {
    if (!child_) return;
    child_->Signal(SIGTERM);
    child_->Wait(10000);
    child_.reset();
  }
  bool ready() const { return ready_; }
  int tcp_port() const { return tcp_port_; }
  int tls_port() const { return tls_port_; }
  std::string Stderr() const { return ReadWholeFile(dir_ + "/rsyslog.stderr"); }

 private:
  int PortFrom(const std::string& name) const {
    const std::string text = ReadWholeFile(dir_ + "/" + name);
    return text.empty() ? 0 : std::atoi(text.c_str());
  }

  std::string dir_;
  int tcp_port_ = 0;
  int tls_port_ = 0;
  bool ready_ = false;
  std::unique_ptr<Child> child_;
};

void MakePki(const TempDir& dir) {
  auto ca = tripline::testing::IssueCa("tripline test syslog CA");
  ASSERT_TRUE(ca.ok());
  auto server = tripline::testing::IssueLeaf("rsyslog", *ca, "serverAuth", "IP:127.0.0.1");
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(tripline::testing::WriteCert(dir.Sub("ca.pem"), *ca).ok());
  ASSERT_TRUE(tripline::testing::WriteCert(dir.Sub("server.pem"), *server).ok());
  ASSERT_TRUE(tripline::testing::WriteKey(dir.Sub("server.key"), *server).ok());
  // A CA that signed nothing rsyslog presents.
  auto other = tripline::testing::IssueCa("another CA");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(tripline::testing::WriteCert(dir.Sub("other-ca.pem"), *other).ok());
}

v1::Incident Wire(const Incident& i) {
  v1::Incident out;
  ToProto(i, &out);
  return out;
}

// Story and hostile incidents through syslog+tcp and syslog+tls into rsyslog: what rsyslog
// received is byte for byte what Tripline formats, its RFC 5424 parser finds every header
// field, and a TLS output whose CA did not sign rsyslog's certificate delivers nothing.
// One account brute-forced from `source` on hosta, which reads /etc/shadow and hops to
// hostb: one incident.
std::vector<correlate::testing::Delivery> BruteForceAndHop(correlate::testing::StoryBuilder& b,
                                                           const std::string& user,
                                                           const std::string& source, double t0,
                                                           int port_base) {
  std::vector<correlate::testing::Delivery> s;
  for (int i = 0; i < 5; ++i) s.push_back(b.Failure("hosta", user, source, port_base + i, t0 + i));
  s.push_back(b.Login("hosta", user, source, port_base + 9, "audit:" + user, t0 + 7));
  s.push_back(b.Open("hosta", "audit:" + user, user, 1000, "cat", "/etc/shadow", FileAccess::kRead,
                     t0 + 8));
  s.push_back(
      b.Connect("hosta", "audit:" + user, user, port_base + 20, "198.18.0.12", 22, t0 + 10));
  s.push_back(b.Accept("hostb", 22, "198.18.0.11", port_base + 20, t0 + 10.1));
  s.push_back(b.Login("hostb", user, "198.18.0.11", port_base + 20, "audit:b" + user, t0 + 11));
  return s;
}

// Sends the story to the aggregator at `target`, each sensor on an ingest stream of its own.
void Send(const std::string& target, const std::vector<correlate::testing::Delivery>& s) {
  std::map<std::string, std::unique_ptr<IngestClient>> clients;
  for (const auto& d : s) {
    auto& c = clients[d.sensor];
    if (!c) {
      c = std::make_unique<IngestClient>(target);
      ASSERT_TRUE(c->Hello(d.sensor));
    }
    ASSERT_TRUE(c->Batch(d.sensor, d.event.seq, {d.event}));
  }
}

TEST(ForwardSyslogTest, TcpAndTlsDeliverEveryFieldAndHostileValuesIntact) {
  TempDir dir;
  MakePki(dir);
  Rsyslog rsyslog(dir, 0, 0, /*with_tls=*/true);
  ASSERT_TRUE(rsyslog.ready()) << rsyslog.Stderr();

  auto store = RocksDbStore::Open({.path = dir.Sub("data")});
  ASSERT_TRUE(store.ok());
  const std::vector<std::string> urls = {
      "syslog+tcp://127.0.0.1:" + std::to_string(rsyslog.tcp_port()),
      "syslog+tls://127.0.0.1:" + std::to_string(rsyslog.tls_port())};
  std::vector<ForwardTarget> targets;
  for (const std::string& u : urls) targets.push_back(*ParseForwardUrl(u));
  ForwarderOptions options;
  options.sink.hostname = "aggregator-1";
  options.sink.ca_file = dir.Sub("ca.pem");
  options.initial_backoff_ns = 50 * kNanosPerMilli;
  options.max_backoff_ns = 200 * kNanosPerMilli;
  auto forwarder = Forwarder::Start((*store)->db(), (*store)->column_family("outbox"), targets,
                                    options, SystemClock::Get());
  ASSERT_TRUE(forwarder.ok()) << forwarder.status().ToString();
  // The same TLS receiver, verified against a CA that did not sign it (its own outbox).
  auto wrong_store = RocksDbStore::Open({.path = dir.Sub("data-wrong-ca")});
  ASSERT_TRUE(wrong_store.ok());
  ForwarderOptions wrong = options;
  wrong.sink.ca_file = dir.Sub("other-ca.pem");
  auto refused = Forwarder::Start((*wrong_store)->db(), (*wrong_store)->column_family("outbox"),
                                  {targets[1]}, wrong, SystemClock::Get());
  ASSERT_TRUE(refused.ok());

  const std::vector<Incident> incidents = {testing::StoryIncident(),
                                           testing::HostileIncident(/*valid_utf8=*/true)};
  for (const Incident& i : incidents) {
    ASSERT_TRUE((*forwarder)->Offer(Wire(i)).ok());
    ASSERT_TRUE((*refused)->Offer(Wire(i)).ok());
  }
  // And an audit event whose values try to forge fields and records.
  const v1::AuditEvent audit = testing::HostileAuditEvent();
  ASSERT_TRUE((*forwarder)->OfferAudit("trust", {audit}, audit.seq()).ok());
  for (const std::string transport : {"tcp", "tls"}) {
    SCOPED_TRACE(transport);
    ASSERT_TRUE(WaitFor([&] { return Lines(dir.Sub(transport + ".fields")).size() >= 3; }))
        << rsyslog.Stderr();
    // Raw: exactly what was framed, one record per incident, nothing forged in between.
    const std::vector<std::string> raw = Lines(dir.Sub(transport + ".raw"));
    ASSERT_EQ(raw.size(), 3u);
    for (size_t k = 0; k < 2; ++k) EXPECT_EQ(raw[k], FormatSyslog(incidents[k], "aggregator-1"));
    EXPECT_EQ(raw[2], FormatSyslog(audit, "aggregator-1"));
    // Parsed by rsyslog's RFC 5424 parser.
    const std::vector<std::string> fields = Lines(dir.Sub(transport + ".fields"));
    ASSERT_EQ(fields.size(), 3u);
    const auto a = nlohmann::json::parse(fields[2]);
    EXPECT_EQ(a["pri"], "109");  // log audit, notice
    EXPECT_EQ(a["facility"], "13");
    EXPECT_EQ(a["severity"], "5");
    EXPECT_EQ(a["time"], "2026-11-25T03:43:00.000000Z");
    EXPECT_EQ(a["app"], "tripline");
    EXPECT_EQ(a["msgid"], "audit");
    EXPECT_EQ(a["msg"], FormatCef(audit));
    for (size_t k = 0; k < 2; ++k) {
      const auto j = nlohmann::json::parse(fields[k]);
      EXPECT_EQ(j["pri"], "34");
      EXPECT_EQ(j["facility"], "4");
      EXPECT_EQ(j["severity"], "2");
      EXPECT_EQ(j["time"], "2026-11-25T03:41:15.000000Z");
      EXPECT_EQ(j["host"], "aggregator-1");
      EXPECT_EQ(j["app"], "tripline");
      EXPECT_EQ(j["procid"], "-");
      EXPECT_EQ(j["msgid"], "incident");
      EXPECT_EQ(j["sd"], "-");
      EXPECT_EQ(j["msg"], FormatCef(incidents[k]));
    }
  }
  // The hostile record, as rsyslog kept it: its title's separators escaped in the header,
  // its user's "=" escaped so that no act= or dst= key appears, its line breaks as \r\n.
  const std::string hostile = Lines(dir.Sub("tcp.raw"))[1];
  EXPECT_NE(hostile.find(R"(|incident|evil\|10\|x\\ \nCEF:0\|forged|10|externalId=inc-hostile )"),
            std::string::npos)
      << hostile;
  EXPECT_NE(hostile.find(R"( suser=mallory act\=allowed dst\=1.2.3.4 \r\n<13>1 - )"),
            std::string::npos);
  EXPECT_EQ(hostile.find(" act="), std::string::npos);
  EXPECT_NE(hostile.find(R"( msg=msg\=forged rt\=0 line\nbreak)"), std::string::npos);

  const auto stats = (*forwarder)->stats();
  ASSERT_EQ(stats.size(), 2u);
  for (const auto& s : stats) {
    EXPECT_EQ(s.delivered(), 3u) << s.url();
    EXPECT_EQ(s.backlog(), 0u);
    EXPECT_TRUE(s.connected());
  }
  // Certificate verification failed: nothing delivered, both revisions held back.
  ASSERT_TRUE(WaitFor([&] { return (*refused)->stats()[0].failures() > 0; }));
  const auto held = (*refused)->stats()[0];
  EXPECT_EQ(held.delivered(), 0u);
  EXPECT_EQ(held.backlog(), 2u);
  EXPECT_NE(held.last_error().find("certificate"), std::string::npos) << held.last_error();
  EXPECT_GT(held.oldest_queued_ns(), 0);
}

// The real binaries: sensors' events through tripline-aggregator --forward
// syslog+tcp://..., rsyslog stopped while incidents are raised (the backlog shows in
// GetStats), the aggregator killed with SIGKILL and restarted, rsyslog started again: every
// incident the aggregator stored reaches rsyslog, in order per incident.
TEST(ForwardSyslogTest, NoLossAcrossReceiverOutageAndAggregatorKill9) {
  TempDir dir;
  auto rsyslog = std::make_unique<Rsyslog>(dir, 0, 0, /*with_tls=*/false);
  ASSERT_TRUE(rsyslog->ready()) << rsyslog->Stderr();
  const int port = rsyslog->tcp_port();
  {
    std::ofstream config(dir.Sub("aggregator.textproto"));
    config << "forward: \"syslog+tcp://127.0.0.1:" << port << "\"\n"
           << "forward: \"file://" << dir.Sub("incidents.jsonl") << "?format=ocsf\"\n"
           << "forward_max_backoff_ms: 200\n";
  }
  std::vector<std::string> argv = {BinPath("tripline-aggregator"),
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--data-dir",
                                   dir.Sub("data"),
                                   "--config",
                                   dir.Sub("aggregator.textproto")};
  auto start = [&](const std::string& log) {
    auto child = std::make_unique<Child>(argv, dir.Sub(log));
    const auto line = child->ReadLine(20000);
    std::string address;
    if (line && line->rfind("listening on ", 0) == 0) address = line->substr(13);
    return std::make_pair(std::move(child), address);
  };
  auto [aggregator, address] = start("aggregator-1.stderr");
  ASSERT_FALSE(address.empty()) << ReadWholeFile(dir.Sub("aggregator-1.stderr"));

  correlate::testing::StoryBuilder b;
  const auto attack = [&](const std::string& user, double t0, int port_base) {
    return BruteForceAndHop(b, user, "203.0.113." + std::to_string(port_base / 1000), t0,
                            port_base);
  };
  const auto stats = [&](const std::string& target) {
    auto stub = v1::Query::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::Stats st;
    EXPECT_TRUE(stub->GetStats(&ctx, v1::GetStatsRequest(), &st).ok());
    return st;
  };
  const auto ids_received = [&] {
    std::set<std::string> ids;
    for (const std::string& line : Lines(dir.Sub("tcp.raw"))) {
      const size_t at = line.find("externalId=");
      if (at != std::string::npos && IsIncident(line)) ids.insert(line.substr(at + 11, 36));
    }
    return ids;
  };

  Send(address, attack("u1", 0, 41000));
  ASSERT_TRUE(WaitFor([&] { return ids_received().size() == 1; }))
      << ReadWholeFile(dir.Sub("aggregator-1.stderr"));

  // The receiver goes away; incidents keep being raised and wait in the outbox.
  rsyslog->Stop();
  Send(address, attack("u2", 300, 42000));
  Send(address, attack("u3", 600, 43000));
  v1::Stats held;
  ASSERT_TRUE(WaitFor([&] {
    held = stats(address);
    return held.forwards_size() == 2 && held.forwards(0).backlog() >= 2 &&
           held.forwards(0).failures() > 0 && held.forwards(1).backlog() == 0;
  })) << held.DebugString();
  EXPECT_FALSE(held.forwards(0).connected());
  EXPECT_FALSE(held.forwards(0).last_error().empty());
  EXPECT_GT(held.forwards(0).oldest_queued_ns(), 0);
  // triplinectl shows the same figures to a person and to a script.
  const auto ctl = tripline::testing::RunCommand(
      {BinPath("triplinectl"), "--aggregator", address, "stats", "--json"});
  ASSERT_EQ(ctl.exit_code, 0) << ctl.err;
  const auto shown = nlohmann::json::parse(ctl.out);
  ASSERT_EQ(shown["forwards"].size(), 2u) << ctl.out;
  EXPECT_GE(shown["forwards"][0]["backlog"].get<uint64_t>(), 2u);
  EXPECT_FALSE(shown["forwards"][0]["connected"].get<bool>());
  EXPECT_EQ(shown["forwards"][1]["backlog"].get<uint64_t>(), 0u);

  // SIGKILL: no shutdown, no snapshot; then a restart on the same data.
  aggregator->Signal(SIGKILL);
  EXPECT_EQ(aggregator->Wait(10000), std::optional<int>(128 + SIGKILL));
  aggregator.reset();
  argv.insert(argv.end(), {"--metrics", "127.0.0.1:0"});
  auto [restarted, address2] = start("aggregator-2.stderr");
  ASSERT_FALSE(address2.empty()) << ReadWholeFile(dir.Sub("aggregator-2.stderr"));
  EXPECT_GE(stats(address2).forwards(0).backlog(), 2u);
  // The backlog survived the kill, and Prometheus sees it too.
  const auto metrics_line = restarted->ReadLine(5000);
  ASSERT_TRUE(metrics_line && metrics_line->rfind("metrics on ", 0) == 0);
  const std::string metrics = HttpGet("http://" + metrics_line->substr(11) + "/metrics");
  const std::string backlog_sample =
      "tripline_aggregator_outbox_backlog_records{destination=\"syslog+tcp://127.0.0.1:" +
      std::to_string(port) + "\",format=\"cef\"} ";
  const size_t at = metrics.find(backlog_sample);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::atoi(metrics.c_str() + at + backlog_sample.size()), 2) << metrics;

  rsyslog = std::make_unique<Rsyslog>(dir, port, 0, /*with_tls=*/false);
  ASSERT_TRUE(rsyslog->ready()) << rsyslog->Stderr();
  Send(address2, attack("u4", 900, 44000));

  // Every incident the aggregator stored reached rsyslog.
  std::set<std::string> stored;
  ASSERT_TRUE(WaitFor([&] {
    auto stub =
        v1::Query::NewStub(grpc::CreateChannel(address2, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::ListIncidentsRequest req;
    v1::ListIncidentsResponse resp;
    if (!stub->ListIncidents(&ctx, req, &resp).ok()) return false;
    stored.clear();
    for (const auto& i : resp.incidents()) stored.insert(i.id());
    return stored.size() == 4 && ids_received() == stored &&
           stats(address2).forwards(0).backlog() == 0;
  })) << "stored "
      << stored.size() << ", received " << ids_received().size() << "\n"
      << ReadWholeFile(dir.Sub("aggregator-2.stderr"));
  // Revisions of one incident arrive in the order they were raised.
  std::map<std::string, int> last_revision;
  for (const std::string& line : Lines(dir.Sub("tcp.raw"))) {
    if (!IsIncident(line)) continue;  // the response steps of Tripline's proposals
    const std::string id = line.substr(line.find("externalId=") + 11, 36);
    const size_t rev_at = line.find(" cn1=") + 5;
    const int rev = std::atoi(line.c_str() + rev_at);
    EXPECT_GE(rev, last_revision[id]) << line;
    last_revision[id] = rev;
  }
  // The file output, never down, has every incident too.
  std::set<std::string> in_file;
  for (const std::string& line : Lines(dir.Sub("incidents.jsonl"))) {
    const auto record = nlohmann::json::parse(line);
    if (record["class_uid"] == 2004) {
      in_file.insert(record["finding_info"]["uid"].get<std::string>());
    }
  }
  EXPECT_EQ(in_file, stored);
  restarted->Signal(SIGTERM);
  EXPECT_EQ(restarted->Wait(15000), std::optional<int>(0));
}

// SIGHUP replaces the outputs: one added receives the incidents raised after the reload,
// one removed receives no more, one kept goes on; a list that does not check changes
// nothing. Two file outputs, no receiver needed.
TEST(ForwardReloadTest, OutputsAreReplacedOnSighupAndABadListChangesNothing) {
  TempDir dir;
  const std::string a = dir.Sub("a.jsonl"), b = dir.Sub("b.jsonl");
  const std::string config = dir.Sub("aggregator.textproto");
  const auto write_config = [&](const std::vector<std::string>& forwards) {
    std::ofstream out(config, std::ios::trunc);
    for (const std::string& f : forwards) out << "forward: \"" << f << "\"\n";
  };
  const std::string to_a = "file://" + a + "?format=ocsf", to_b = "file://" + b + "?format=ocsf";
  write_config({to_a});
  const std::string err = dir.Sub("aggregator.stderr");
  Child agg({BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0", "--data-dir",
             dir.Sub("data"), "--config", config},
            err);
  const auto line = agg.ReadLine(20000);
  ASSERT_TRUE(line && line->rfind("listening on ", 0) == 0) << ReadWholeFile(err);
  const std::string address = line->substr(13);

  correlate::testing::StoryBuilder story;
  int round = 0;
  const auto attack = [&] {
    ++round;
    Send(address, BruteForceAndHop(story, "user" + std::to_string(round),
                                   "203.0.113." + std::to_string(round), 300.0 * round,
                                   40000 + 1000 * round));
  };
  const auto incidents_in = [&](const std::string& path) {
    std::set<std::string> ids;
    for (const std::string& l : Lines(path)) {
      const auto record = nlohmann::json::parse(l);
      if (record["class_uid"] == 2004) {
        ids.insert(record["finding_info"]["uid"].get<std::string>());
      }
    }
    return ids.size();
  };
  const auto log_says = [&](const std::string& what, size_t times) {
    return WaitFor([&] {
      const std::string log = ReadWholeFile(err);
      size_t n = 0;
      for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
      return n >= times;
    });
  };

  attack();
  ASSERT_TRUE(WaitFor([&] { return incidents_in(a) == 1; })) << ReadWholeFile(err);

  // b added.
  write_config({to_a, to_b});
  agg.Signal(SIGHUP);
  ASSERT_TRUE(log_says("reload: 2 SIEM outputs", 1)) << ReadWholeFile(err);
  attack();
  ASSERT_TRUE(WaitFor([&] { return incidents_in(a) == 2 && incidents_in(b) == 1; }))
      << incidents_in(a) << " " << incidents_in(b) << "\n"
      << ReadWholeFile(err);

  // A list with an output that does not parse: refused, both outputs go on.
  write_config({to_b, "gopher://127.0.0.1:70/"});
  agg.Signal(SIGHUP);
  ASSERT_TRUE(log_says("reload failed, nothing changed", 1)) << ReadWholeFile(err);
  attack();
  ASSERT_TRUE(WaitFor([&] { return incidents_in(a) == 3 && incidents_in(b) == 2; }))
      << incidents_in(a) << " " << incidents_in(b) << "\n"
      << ReadWholeFile(err);

  // a removed.
  write_config({to_b});
  agg.Signal(SIGHUP);
  ASSERT_TRUE(log_says("reload: 1 SIEM outputs", 1)) << ReadWholeFile(err);
  attack();
  ASSERT_TRUE(WaitFor([&] { return incidents_in(b) == 3; })) << ReadWholeFile(err);
  EXPECT_EQ(incidents_in(a), 3u);
  agg.Signal(SIGTERM);
  EXPECT_EQ(agg.Wait(15000), std::optional<int>(0)) << ReadWholeFile(err);
}

}  // namespace
}  // namespace tripline::forward
