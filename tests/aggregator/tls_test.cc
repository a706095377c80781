// TLS end to end: a throwaway CA, server and client certificates made with
// OpenSSL's C API in a temporary directory; the real tripline-aggregator binary configured
// for mutual TLS by its --config file; the real sensor DeliveryClient configured by a sensor
// config file; queries through the real triplinectl. Clients without a certificate, trusting
// another CA, presenting a certificate of another CA, or speaking clear text are refused. The
// startup rule for non-loopback listeners is checked on the binary as well.
//
// Certificates are made in process (libssl-dev is a declared build dependency) rather than
// with the openssl command-line tool, which scripts/install-deps does not install.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/config_file.h"
#include "common/status.h"
#include "sensor/delivery/delivery_client.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_pki.h"
#include "tests/aggregator/test_support.h"
#include "tripline/v1/config.pb.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline {
namespace {

using delivery::DeliveryClient;
using delivery::DeliveryOptions;
using delivery::DeliveryStats;
using delivery::TlsOptions;
using testing::BinPath;
using testing::Child;
using testing::Credential;
using testing::IssueCa;
using testing::IssueLeaf;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;
using testing::WriteCert;
using testing::WriteKey;

constexpr const char* kListening = "listening on ";

int64_t In(int64_t seconds) { return SystemClock::Get().MonotonicNs() + seconds * kNanosPerSecond; }

// ---------------------------------------------------------------------------------------
// Certificates (tests/aggregator/test_pki.h)

// The names a sensor certificate of these tests carries: the sensor role and the hosts of
// testing::SyntheticEvents.
constexpr const char* kSensorSan =
    "URI:tripline:role:sensor,URI:tripline:host:host0,URI:tripline:host:host1,"
    "URI:tripline:host:host2";

// PEM files in one directory: the CA the aggregator trusts, its server certificate, a
// sensor's client certificate, an operator's; and an impostor CA with the same name but its
// own key, with a client certificate of its own.
struct Pki {
  std::string ca, server_cert, server_key, client_cert, client_key;
  std::string operator_cert, operator_key;
  std::string other_ca, other_client_cert, other_client_key;
  Credential ca_credential;  // to issue more certificates in a test
};

Result<Pki> MakePki(const TempDir& dir) {
  Pki p{.ca = dir.Sub("ca.pem"),
        .server_cert = dir.Sub("server.pem"),
        .server_key = dir.Sub("server-key.pem"),
        .client_cert = dir.Sub("client.pem"),
        .client_key = dir.Sub("client-key.pem"),
        .operator_cert = dir.Sub("operator.pem"),
        .operator_key = dir.Sub("operator-key.pem"),
        .other_ca = dir.Sub("other-ca.pem"),
        .other_client_cert = dir.Sub("other-client.pem"),
        .other_client_key = dir.Sub("other-client-key.pem"),
        .ca_credential = {}};
  TL_ASSIGN_OR_RETURN(Credential ca, IssueCa("Tripline Test CA"));
  TL_ASSIGN_OR_RETURN(Credential server, IssueLeaf("tripline-aggregator", ca, "serverAuth",
                                                   "IP:127.0.0.1,DNS:localhost"));
  TL_ASSIGN_OR_RETURN(Credential client, IssueLeaf("sensor-1", ca, "clientAuth", kSensorSan));
  TL_ASSIGN_OR_RETURN(Credential op,
                      IssueLeaf("operator-1", ca, "clientAuth", "URI:tripline:role:operator"));
  // Same subject as the real CA; only its key differs.
  TL_ASSIGN_OR_RETURN(Credential other_ca, IssueCa("Tripline Test CA"));
  TL_ASSIGN_OR_RETURN(Credential other_client,
                      IssueLeaf("sensor-1", other_ca, "clientAuth", kSensorSan));
  TL_RETURN_IF_ERROR(WriteCert(p.ca, ca));
  TL_RETURN_IF_ERROR(WriteCert(p.server_cert, server));
  TL_RETURN_IF_ERROR(WriteKey(p.server_key, server));
  TL_RETURN_IF_ERROR(WriteCert(p.client_cert, client));
  TL_RETURN_IF_ERROR(WriteKey(p.client_key, client));
  TL_RETURN_IF_ERROR(WriteCert(p.operator_cert, op));
  TL_RETURN_IF_ERROR(WriteKey(p.operator_key, op));
  TL_RETURN_IF_ERROR(WriteCert(p.other_ca, other_ca));
  TL_RETURN_IF_ERROR(WriteCert(p.other_client_cert, other_client));
  TL_RETURN_IF_ERROR(WriteKey(p.other_client_key, other_client));
  p.ca_credential = std::move(ca);
  return p;
}

// ---------------------------------------------------------------------------------------
// Processes and clients

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// An AggregatorConfig with mutual TLS on `listen`.
std::string MtlsAggregatorConfig(const Pki& pki, const std::string& listen,
                                 const std::string& data_dir) {
  std::ostringstream c;
  c << "listen: \"" << listen << "\"\n"
    << "data_dir: \"" << data_dir << "\"\n"
    << "tls {\n"
    << "  cert_file: \"" << pki.server_cert << "\"\n"
    << "  key_file: \"" << pki.server_key << "\"\n"
    << "  ca_file: \"" << pki.ca << "\"\n"
    << "  require_client_cert: true\n"
    << "}\n";
  return c.str();
}

// tripline-aggregator started with `args`, its "listening on" line read.
class Aggregator {
 public:
  Aggregator(const TempDir& dir, const std::vector<std::string>& args)
      : stderr_path_(dir.Sub("aggregator.stderr")) {
    std::vector<std::string> argv = {BinPath("tripline-aggregator")};
    argv.insert(argv.end(), args.begin(), args.end());
    child_ = std::make_unique<Child>(argv, stderr_path_);
    const auto line = child_->ReadLine(30000);
    if (line && line->rfind(kListening, 0) == 0) address_ = line->substr(strlen(kListening));
  }
  // Empty when the process did not say it listens.
  const std::string& address() const { return address_; }
  // 127.0.0.1 and the port bound (also when it listens on 0.0.0.0).
  std::string LoopbackAddress() const {
    return "127.0.0.1:" + address_.substr(address_.rfind(':') + 1);
  }
  std::string Stderr() const { return ReadWholeFile(stderr_path_); }
  // SIGTERM; the exit code.
  std::optional<int> Stop() {
    child_->Signal(SIGTERM);
    return child_->Wait(20000);
  }

 private:
  std::string stderr_path_;
  std::unique_ptr<Child> child_;  // SIGKILLed and reaped on destruction if still running
  std::string address_;
};

std::shared_ptr<grpc::ChannelCredentials> SslCredentials(const std::string& ca,
                                                         const std::string& cert,
                                                         const std::string& key) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadWholeFile(ca);
  if (!cert.empty()) {
    ssl.pem_cert_chain = ReadWholeFile(cert);
    ssl.pem_private_key = ReadWholeFile(key);
  }
  return grpc::SslCredentials(ssl);
}

// Query.GetStats through a channel of its own (no connection shared with another call).
grpc::Status GetStats(const std::string& address,
                      const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                      v1::Stats* stats) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1::Query::NewStub(grpc::CreateCustomChannel(address, credentials, args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return stub->GetStats(&context, v1::GetStatsRequest(), stats);
}

// TLS for the delivery client; an empty `ca` leaves it in clear text.
TlsOptions SensorTls(const std::string& ca, const std::string& cert = "",
                     const std::string& key = "") {
  TlsOptions tls;
  tls.enabled = !ca.empty();
  tls.ca_file = ca;
  tls.cert_file = cert;
  tls.key_file = key;
  return tls;
}

DeliveryOptions SensorOptions(const std::string& spool_dir) {
  DeliveryOptions o;
  o.spool.dir = spool_dir;
  o.host = "host0";
  o.host_id = "id-host0";
  o.version = "tls-test";
  // Several attempts within a refusal test's few seconds.
  o.backoff_initial_ms = 50;
  o.backoff_max_ms = 400;
  return o;
}

// ---------------------------------------------------------------------------------------
// Mutual TLS against the real binary

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto pki = MakePki(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status().ToString();
    pki_ = std::move(*pki);
    WriteFile(dir_.Sub("aggregator.textproto"),
              MtlsAggregatorConfig(pki_, "127.0.0.1:0", dir_.Sub("data")));
    agg_ = std::make_unique<Aggregator>(
        dir_, std::vector<std::string>{"--config", dir_.Sub("aggregator.textproto")});
    ASSERT_FALSE(agg_->address().empty()) << agg_->Stderr();
    ASSERT_EQ(agg_->address().rfind("127.0.0.1:", 0), 0u) << agg_->address();
  }
  void TearDown() override {
    if (agg_ && !agg_->address().empty()) {
      EXPECT_EQ(agg_->Stop(), std::optional<int>(0)) << agg_->Stderr();
    }
  }

  RunResult Ctl(const std::string& address, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinPath("triplinectl"), "--aggregator", address, "--timeout",
                                     "10s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  // `args` after the flags that make triplinectl use mutual TLS.
  std::vector<std::string> WithMtls(const std::vector<std::string>& args) const {
    std::vector<std::string> out = {"--ca",  pki_.ca,          "--cert", pki_.operator_cert,
                                    "--key", pki_.operator_key};
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }
  // An operator's: what queries use.
  std::shared_ptr<grpc::ChannelCredentials> Mtls() const {
    return SslCredentials(pki_.ca, pki_.operator_cert, pki_.operator_key);
  }

  // A sensor with `tls` submits events; none may be acknowledged. Then, over mutual TLS,
  // the aggregator must be up and know neither the sensor nor any event.
  void ExpectSensorRefused(const TlsOptions& tls) {
    DeliveryOptions o = SensorOptions(dir_.Sub("refused-spool"));
    o.target = agg_->address();
    o.tls = tls;
    auto client = DeliveryClient::Create(o, SystemClock::Get());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    for (const Event& e : testing::SyntheticEvents(20)) ASSERT_TRUE((*client)->Submit(e).ok());
    const Status flushed = (*client)->Flush(In(3));
    const DeliveryStats s = (*client)->Stats();
    (*client)->Stop();
    EXPECT_EQ(flushed.code(), Status::Code::kDeadlineExceeded) << flushed.ToString();
    EXPECT_EQ(s.acked, 0u);
    EXPECT_EQ(s.durable_seq, 0u);
    EXPECT_FALSE(s.connected);
    // Streams were attempted and each ended in an error, not merely slow to come up.
    EXPECT_GE(s.reconnects, 2u) << s.last_error;
    EXPECT_NE(s.last_error.find("gRPC code"), std::string::npos) << s.last_error;

    v1::Stats stats;
    const grpc::Status q = GetStats(agg_->address(), Mtls(), &stats);
    ASSERT_TRUE(q.ok()) << q.error_message() << "\n" << agg_->Stderr();
    EXPECT_EQ(stats.events_stored(), 0u);
    EXPECT_EQ(stats.sensors_size(), 0) << "a refused sensor's hello reached the ingest service";
  }

  // The query service refuses `credentials` at the transport.
  void ExpectQueryRefused(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    v1::Stats stats;
    const grpc::Status s = GetStats(agg_->address(), credentials, &stats);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  }

  TempDir dir_;
  Pki pki_;
  std::unique_ptr<Aggregator> agg_;
};

TEST_F(TlsTest, SensorWithClientCertificateDeliversAndEventsAreQueryable) {
  // The sensor reads its TLS settings from a sensor config file, as tripline-sensor does.
  std::ostringstream sensor_config;
  sensor_config << "aggregator: \"" << agg_->address() << "\"\n"
                << "batch_max_events: 64\n"
                << "batch_max_delay_ms: 10\n"
                << "tls {\n"
                << "  ca_file: \"" << pki_.ca << "\"\n"
                << "  cert_file: \"" << pki_.client_cert << "\"\n"
                << "  key_file: \"" << pki_.client_key << "\"\n"
                << "}\n";
  WriteFile(dir_.Sub("sensor.textproto"), sensor_config.str());
  v1::SensorConfig config;
  const Status loaded = LoadTextConfigFile(dir_.Sub("sensor.textproto"), &config);
  ASSERT_TRUE(loaded.ok()) << loaded.ToString();
  DeliveryOptions o = SensorOptions(dir_.Sub("spool"));
  delivery::ApplySensorConfig(config, &o);
  ASSERT_TRUE(o.tls.enabled);
  ASSERT_EQ(o.target, agg_->address());

  constexpr size_t kN = 300;
  const std::vector<Event> events = testing::SyntheticEvents(kN);
  auto client = DeliveryClient::Create(o, SystemClock::Get());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  for (const Event& e : events) ASSERT_TRUE((*client)->Submit(e).ok());
  const Status flushed = (*client)->Flush(In(30));
  const DeliveryStats s = (*client)->Stats();
  const std::string sensor_id = (*client)->sensor_id();
  (*client)->Stop();
  ASSERT_TRUE(flushed.ok()) << flushed.ToString() << "; last error: " << s.last_error << "\n"
                            << agg_->Stderr();
  EXPECT_EQ(s.durable_seq, kN);
  EXPECT_EQ(s.acked, kN);
  EXPECT_EQ(s.rejected_events, 0u);
  EXPECT_GT(s.batches_sent, 1u);

  // triplinectl over mutual TLS, verifying the server by its IP address SAN.
  const RunResult r = Ctl(agg_->address(), WithMtls({"events", "--json", "--limit", "0"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), kN);
  for (size_t i = 0; i < kN; ++i) {
    EXPECT_EQ(j[i]["sensor_id"], sensor_id);
    EXPECT_EQ(j[i]["seq"], i + 1);
    EXPECT_EQ(j[i]["host"], events[i].host);
    EXPECT_EQ(j[i]["time_ns"], events[i].time_ns);
  }

  // And by its DNS SAN, with the name to verify given to triplinectl. (Not by dialling
  // "localhost": gRPC's c-ares resolver leaks 10 bytes per lookup, which fails the
  // ASan+UBSan run of the child.) A name the certificate does not carry is refused.
  const RunResult stats =
      Ctl(agg_->address(), WithMtls({"--server-name", "localhost", "stats", "--json"}));
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  const auto st = nlohmann::json::parse(stats.out);
  EXPECT_EQ(st["events_stored"], kN);
  ASSERT_EQ(st["sensors"].size(), 1u);
  EXPECT_EQ(st["sensors"][0]["sensor_id"], sensor_id);
  EXPECT_EQ(st["sensors"][0]["durable_seq"], kN);
  const RunResult wrong_name =
      Ctl(agg_->address(), WithMtls({"--server-name", "aggregator.example", "stats"}));
  EXPECT_EQ(wrong_name.exit_code, 6) << wrong_name.out;  // unreachable
  EXPECT_NE(wrong_name.err.find("UNAVAILABLE"), std::string::npos) << wrong_name.err;

  // Without a client certificate, or in clear text, triplinectl gets nothing.
  const RunResult no_cert = Ctl(agg_->address(), {"--ca", pki_.ca, "stats"});
  EXPECT_EQ(no_cert.exit_code, 6) << no_cert.out;  // unreachable
  EXPECT_TRUE(no_cert.out.empty()) << no_cert.out;
  EXPECT_NE(no_cert.err.find("UNAVAILABLE"), std::string::npos) << no_cert.err;
  const RunResult plain = Ctl(agg_->address(), {"stats"});
  EXPECT_EQ(plain.exit_code, 6) << plain.out;  // unreachable
  EXPECT_TRUE(plain.out.empty()) << plain.out;
  EXPECT_NE(plain.err.find("UNAVAILABLE"), std::string::npos) << plain.err;
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  ExpectSensorRefused(SensorTls(pki_.ca));
  ExpectQueryRefused(SslCredentials(pki_.ca, "", ""));
}

TEST_F(TlsTest, ClientTrustingAnotherCaIsRefused) {
  // A valid client certificate, but the server's certificate does not chain to the roots
  // the client trusts: the client ends the handshake.
  ExpectSensorRefused(SensorTls(pki_.other_ca, pki_.client_cert, pki_.client_key));
  ExpectQueryRefused(SslCredentials(pki_.other_ca, pki_.client_cert, pki_.client_key));
}

TEST_F(TlsTest, ClientCertificateOfAnotherCaIsRefused) {
  // The client trusts the right CA, but its own certificate was issued by an impostor CA of
  // the same name: the server must verify the chain, not only ask for a certificate.
  ExpectSensorRefused(SensorTls(pki_.ca, pki_.other_client_cert, pki_.other_client_key));
  ExpectQueryRefused(SslCredentials(pki_.ca, pki_.other_client_cert, pki_.other_client_key));
}

TEST_F(TlsTest, PlaintextClientIsRefused) {
  ExpectSensorRefused(SensorTls(""));
  ExpectQueryRefused(grpc::InsecureChannelCredentials());
}

// ---------------------------------------------------------------------------------------
// Roles and identity from the certificate

class TlsIdentityTest : public TlsTest {
 protected:
  // A client certificate of the test CA with the subject alternative names `san`; the
  // paths of its certificate and key.
  std::pair<std::string, std::string> IssueClient(const std::string& name, const std::string& san) {
    auto c = IssueLeaf(name, pki_.ca_credential, "clientAuth", san);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    const std::string cert = dir_.Sub(name + ".pem"), key = dir_.Sub(name + "-key.pem");
    if (c.ok()) {
      EXPECT_TRUE(WriteCert(cert, *c).ok());
      EXPECT_TRUE(WriteKey(key, *c).ok());
    }
    return {cert, key};
  }
  std::shared_ptr<grpc::ChannelCredentials> As(const std::pair<std::string, std::string>& c) {
    return SslCredentials(pki_.ca, c.first, c.second);
  }
  v1::Stats Stats() {
    v1::Stats stats;
    const grpc::Status s = GetStats(agg_->address(), Mtls(), &stats);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return stats;
  }
};

v1::IngestRequest Hello(const std::string& sensor_id, const std::string& host) {
  v1::IngestRequest r = testing::HelloRequest(sensor_id);
  r.mutable_hello()->set_host(host);
  return r;
}

TEST_F(TlsIdentityTest, OperatorsCannotIngestAndSensorsCannotQuery) {
  // An operator's certificate streams nothing.
  ExpectSensorRefused(SensorTls(pki_.ca, pki_.operator_cert, pki_.operator_key));
  // A sensor's queries nothing, through gRPC or triplinectl.
  v1::Stats stats;
  const grpc::Status q =
      GetStats(agg_->address(), SslCredentials(pki_.ca, pki_.client_cert, pki_.client_key), &stats);
  EXPECT_EQ(q.error_code(), grpc::StatusCode::PERMISSION_DENIED) << q.error_message();
  const RunResult ctl = Ctl(agg_->address(), {"--ca", pki_.ca, "--cert", pki_.client_cert, "--key",
                                              pki_.client_key, "events", "--json"});
  EXPECT_EQ(ctl.exit_code, 1) << ctl.out;
  EXPECT_TRUE(ctl.out.empty()) << ctl.out;
  EXPECT_NE(ctl.err.find("PERMISSION_DENIED"), std::string::npos) << ctl.err;
  // A certificate of the CA without Tripline names may do neither.
  const auto nobody = IssueClient("nobody", "DNS:nobody.example");
  ExpectSensorRefused(SensorTls(pki_.ca, nobody.first, nobody.second));
  EXPECT_EQ(GetStats(agg_->address(), As(nobody), &stats).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Nor may one with a role Tripline does not know.
  const auto typo = IssueClient("typo", "URI:tripline:role:operater");
  EXPECT_EQ(GetStats(agg_->address(), As(typo), &stats).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // An approver reads what it is asked to approve.
  const auto approver = IssueClient("approver", "URI:tripline:role:approver");
  EXPECT_TRUE(GetStats(agg_->address(), As(approver), &stats).ok());
  const std::string log = agg_->Stderr();
  EXPECT_NE(log.find("denied Query.GetStats"), std::string::npos) << log;
  EXPECT_NE(log.find("denied Ingest.Stream"), std::string::npos) << log;
}

// Confirming a suggested kind changes how an account is judged: operators may, approvers
// (who read what they approve) may not.
TEST_F(TlsIdentityTest, OnlyOperatorsDecideSuggestedKinds) {
  const auto decide = [&](const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = v1::Query::NewStub(grpc::CreateCustomChannel(agg_->address(), credentials, args));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::DecideIdentitySuggestionRequest request;
    request.set_user("backup");
    request.set_decision("confirm");
    request.set_by("carol");
    v1::IdentitySuggestion response;
    return stub->DecideIdentitySuggestion(&context, request, &response);
  };
  const auto approver = IssueClient("approver", "URI:tripline:role:approver");
  EXPECT_EQ(decide(As(approver)).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The operator passes the check and learns that no such account was seen.
  const grpc::Status s = decide(SslCredentials(pki_.ca, pki_.operator_cert, pki_.operator_key));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_NE(agg_->Stderr().find("denied Query.DecideIdentitySuggestion"), std::string::npos);
}

// A second node's certificate (same CA, role sensor, its own host) tries to speak as
// another sensor and another host: every attempt ends the stream, is logged, and changes
// nothing of the victim's data.
TEST_F(TlsIdentityTest, ASecondClientCannotImpersonateASensorOrAHost) {
  const auto victim_cert =
      IssueClient("node-a", "URI:tripline:role:sensor,URI:tripline:host:host0");
  const auto attacker_cert =
      IssueClient("node-z", "URI:tripline:role:sensor,URI:tripline:host:host9");
  const std::vector<Event> events = testing::SyntheticEvents(20, /*hosts=*/1);

  testing::IngestClient victim(agg_->address(), As(victim_cert));
  ASSERT_TRUE(victim.Send(Hello("sensor-a", "host0"))) << agg_->Stderr();
  auto ack = victim.Batch("sensor-a", 1, {events.begin(), events.begin() + 10});
  ASSERT_TRUE(ack.has_value()) << agg_->Stderr();
  ASSERT_EQ(ack->durable_seq(), 10u) << ack->error();

  const auto expect_refused = [&](const std::vector<v1::IngestRequest>& requests,
                                  const std::string& why) {
    testing::IngestClient attacker(agg_->address(), As(attacker_cert));
    bool answered = true;
    for (const auto& r : requests) answered = answered && attacker.Send(r).has_value();
    EXPECT_FALSE(answered) << why;
    const grpc::Status s = attacker.Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << why;
    EXPECT_NE(s.error_message().find(why), std::string::npos) << s.error_message();
  };
  // The victim's id, from the attacker's own host: the id belongs to host0.
  expect_refused({Hello("sensor-a", "host9")}, "belongs to host 'host0'");
  // The victim's id and host: the certificate does not name host0.
  expect_refused({Hello("sensor-a", "host0")}, "not a host of the certificate");
  // Its own id, events forged for host0.
  expect_refused({Hello("sensor-z", "host9"), testing::BatchRequest("sensor-z", 1, {events[0]})},
                 "names host 'host0'");

  // The victim goes on: its stream, acks and data are untouched.
  ack = victim.Batch("sensor-a", 11, {events.begin() + 10, events.end()});
  ASSERT_TRUE(ack.has_value()) << agg_->Stderr();
  EXPECT_EQ(ack->error(), "");
  EXPECT_EQ(ack->durable_seq(), 20u);
  EXPECT_TRUE(victim.Finish().ok());
  // And after the victim's stream is gone, its id still belongs to its host (the store).
  expect_refused({Hello("sensor-a", "host9")}, "belongs to host 'host0'");

  const v1::Stats stats = Stats();
  EXPECT_EQ(stats.events_stored(), 20u);
  // sensor-a as its own stream left it; sensor-z said a valid hello (its own id and host)
  // and stored nothing.
  ASSERT_EQ(stats.sensors_size(), 2) << stats.DebugString();
  EXPECT_EQ(stats.sensors(0).sensor_id(), "sensor-a");
  EXPECT_EQ(stats.sensors(0).host(), "host0");
  EXPECT_EQ(stats.sensors(0).durable_seq(), 20u);
  EXPECT_EQ(stats.sensors(0).events(), 20u);
  EXPECT_EQ(stats.sensors(1).sensor_id(), "sensor-z");
  EXPECT_EQ(stats.sensors(1).host(), "host9");
  EXPECT_EQ(stats.sensors(1).durable_seq(), 0u);
  EXPECT_EQ(stats.sensors(1).events(), 0u);
  EXPECT_EQ(stats.streams_denied(), 4u);
  const std::string log = agg_->Stderr();
  EXPECT_NE(log.find("refused sensor"), std::string::npos) << log;
}

// A sensor certificate must name its host; one may also pin the sensor ids it may use.
TEST_F(TlsIdentityTest, SensorCertificateBindsItsHostAndPinnedIds) {
  const auto hostless = IssueClient("hostless", "URI:tripline:role:sensor");
  testing::IngestClient a(agg_->address(), As(hostless));
  EXPECT_FALSE(a.Send(Hello("sensor-h", "host0")).has_value());
  EXPECT_EQ(a.Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  const auto pinned = IssueClient(
      "pinned", "URI:tripline:role:sensor,URI:tripline:host:host0,URI:tripline:sensor-id:s-1");
  testing::IngestClient b(agg_->address(), As(pinned));
  EXPECT_FALSE(b.Send(Hello("s-2", "host0")).has_value());
  EXPECT_EQ(b.Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  testing::IngestClient c(agg_->address(), As(pinned));
  EXPECT_TRUE(c.Send(Hello("s-1", "host0")).has_value());
  EXPECT_TRUE(c.Finish().ok());
}

// A sensor config's tls block asks for TLS: one that is incomplete is an error, and one
// without ca_file trusts the system roots. Neither may fall back to clear text.
TEST(TlsSensorConfigTest, ATlsBlockNeverMeansClearText) {
  TempDir dir;
  auto pki = MakePki(dir);
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  const auto options = [&](const std::string& tls) {
    v1::SensorConfig config;
    const Status parsed = ParseTextConfig("tls { " + tls + " }", "sensor.textproto", &config);
    EXPECT_TRUE(parsed.ok()) << parsed.ToString();
    DeliveryOptions o = SensorOptions(dir.Sub("spool"));
    o.target = "127.0.0.1:1";
    delivery::ApplySensorConfig(config, &o);
    return o;
  };
  for (const std::string& half :
       {"key_file: \"" + pki->client_key + "\"", "cert_file: \"" + pki->client_cert + "\""}) {
    const DeliveryOptions o = options(half);
    EXPECT_TRUE(o.tls.enabled) << half;
    auto client = DeliveryClient::Create(o, SystemClock::Get());
    EXPECT_FALSE(client.ok()) << half << ": a half client certificate must not start";
  }
  EXPECT_TRUE(options("server_name: \"aggregator.example\"").tls.enabled);
  EXPECT_TRUE(options("").tls.enabled);
}

// ---------------------------------------------------------------------------------------
// Rotation: renewed files are used by new connections, without restarting either end

// Replaces `path` by `write`'s output the way an operator should: a new file renamed over
// the old one, so no reader sees half of it.
template <typename Write>
void ReplaceFile(const std::string& path, Write write) {
  const std::string next = path + ".next";
  const Status s = write(next);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::filesystem::rename(next, path);
}

// GetStats until it succeeds or `seconds` pass; the last status.
grpc::Status StatsWithin(const std::string& address,
                         const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                         int seconds) {
  const int64_t until = In(seconds);
  v1::Stats stats;
  grpc::Status s;
  while (true) {
    s = GetStats(address, credentials, &stats);
    if (s.ok() || SystemClock::Get().MonotonicNs() > until) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

TEST(TlsRotationTest, RenewedCaCertificateAndSensorRootsAreUsedWithoutARestart) {
  TempDir dir;
  auto made = MakePki(dir);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const Pki pki = std::move(*made);
  // A second CA, as when a CA is replaced: an operator and the aggregator get certificates
  // of it.
  auto ca2 = IssueCa("Tripline Test CA 2");
  ASSERT_TRUE(ca2.ok()) << ca2.status().ToString();
  auto op2 = IssueLeaf("operator-2", *ca2, "clientAuth", "URI:tripline:role:operator");
  auto server2 = IssueLeaf("tripline-aggregator", *ca2, "serverAuth", "IP:127.0.0.1,DNS:localhost");
  ASSERT_TRUE(op2.ok() && server2.ok());
  const std::string ca2_file = dir.Sub("ca2.pem"), op2_cert = dir.Sub("op2.pem"),
                    op2_key = dir.Sub("op2-key.pem");
  ASSERT_TRUE(WriteCert(ca2_file, *ca2).ok());
  ASSERT_TRUE(WriteCert(op2_cert, *op2).ok());
  ASSERT_TRUE(WriteKey(op2_key, *op2).ok());

  std::string config = MtlsAggregatorConfig(pki, "127.0.0.1:0", dir.Sub("data"));
  const std::string require = "  require_client_cert: true\n";
  config.replace(config.find(require), require.size(), require + "  reload_interval_s: 1\n");
  WriteFile(dir.Sub("aggregator.textproto"), config);
  const std::string ca1_pem = ReadWholeFile(pki.ca);
  Aggregator agg(dir, {"--config", dir.Sub("aggregator.textproto")});
  ASSERT_FALSE(agg.address().empty()) << agg.Stderr();
  const std::string address = agg.address();

  // 1. The aggregator's CA bundle: the second CA's operator is refused, then taken once
  //    the bundle holds both CAs.
  const auto op2_trusting_ca1 = SslCredentials(pki.ca, op2_cert, op2_key);
  v1::Stats stats;
  EXPECT_EQ(GetStats(address, op2_trusting_ca1, &stats).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ReplaceFile(pki.ca, [&](const std::string& path) {
    WriteFile(path, ca1_pem + ReadWholeFile(ca2_file));
    return Status::Ok();
  });
  const grpc::Status taken = StatsWithin(address, op2_trusting_ca1, 15);
  EXPECT_TRUE(taken.ok()) << taken.error_message() << "\n" << agg.Stderr();

  // 2. The aggregator's own certificate: a client that trusts only the second CA is
  //    refused until the certificate and key are replaced by ones of that CA.
  const auto op2_trusting_ca2 = SslCredentials(ca2_file, op2_cert, op2_key);
  EXPECT_EQ(GetStats(address, op2_trusting_ca2, &stats).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ReplaceFile(pki.server_key, [&](const std::string& path) { return WriteKey(path, *server2); });
  ReplaceFile(pki.server_cert, [&](const std::string& path) { return WriteCert(path, *server2); });
  const grpc::Status renewed = StatsWithin(address, op2_trusting_ca2, 15);
  EXPECT_TRUE(renewed.ok()) << renewed.error_message() << "\n" << agg.Stderr();

  // 3. The sensor's roots: it trusts only the first CA, so the renewed aggregator is refused
  //    and its events wait in the spool; once its CA file holds the second CA, its next
  //    attempt connects and every event arrives, once.
  const std::string sensor_ca = dir.Sub("sensor-ca.pem");
  WriteFile(sensor_ca, ca1_pem);
  DeliveryOptions o = SensorOptions(dir.Sub("spool"));
  o.target = address;
  o.tls = SensorTls(sensor_ca, pki.client_cert, pki.client_key);
  o.tls.reload_interval_s = 1;
  auto client = DeliveryClient::Create(o, SystemClock::Get());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const std::vector<Event> events = testing::SyntheticEvents(20);
  for (const Event& e : events) ASSERT_TRUE((*client)->Submit(e).ok());
  EXPECT_EQ((*client)->Flush(In(3)).code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ((*client)->Stats().acked, 0u);
  ReplaceFile(sensor_ca, [&](const std::string& path) {
    WriteFile(path, ReadWholeFile(ca2_file));
    return Status::Ok();
  });
  const Status flushed = (*client)->Flush(In(20));
  const DeliveryStats ds = (*client)->Stats();
  (*client)->Stop();
  EXPECT_TRUE(flushed.ok()) << flushed.ToString() << " " << ds.last_error;
  EXPECT_EQ(ds.acked, events.size());
  const grpc::Status q = GetStats(address, op2_trusting_ca2, &stats);
  ASSERT_TRUE(q.ok()) << q.error_message();
  EXPECT_EQ(stats.events_stored(), events.size());
  // The same process throughout.
  EXPECT_EQ(agg.Stop(), std::optional<int>(0)) << agg.Stderr();
}

// ---------------------------------------------------------------------------------------
// Startup rules

TEST(TlsStartupTest, NonLoopbackListenerWithoutTlsOrInsecureExitsNonZero) {
  TempDir dir;
  const RunResult r = RunCommand(
      {BinPath("tripline-aggregator"), "--listen", "0.0.0.0:0", "--data-dir", dir.Sub("data")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("refusing to listen on 0.0.0.0:0 without TLS"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--insecure"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(kListening), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("data"))) << "refused only after opening the store";
}

TEST(TlsStartupTest, NonLoopbackListenerWithInsecureStarts) {
  TempDir dir;
  Aggregator agg(dir, {"--listen", "0.0.0.0:0", "--data-dir", dir.Sub("data"), "--insecure"});
  ASSERT_EQ(agg.address().rfind("0.0.0.0:", 0), 0u) << agg.address() << "\n" << agg.Stderr();
  v1::Stats stats;
  const grpc::Status s =
      GetStats(agg.LoopbackAddress(), grpc::InsecureChannelCredentials(), &stats);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(agg.Stop(), std::optional<int>(0)) << agg.Stderr();
}

TEST(TlsStartupTest, NonLoopbackListenerWithTlsStartsWithoutInsecure) {
  TempDir dir;
  auto pki = MakePki(dir);
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  WriteFile(dir.Sub("aggregator.textproto"),
            MtlsAggregatorConfig(*pki, "0.0.0.0:0", dir.Sub("data")));
  Aggregator agg(dir, {"--config", dir.Sub("aggregator.textproto")});
  ASSERT_EQ(agg.address().rfind("0.0.0.0:", 0), 0u) << agg.address() << "\n" << agg.Stderr();
  v1::Stats stats;
  const grpc::Status ok =
      GetStats(agg.LoopbackAddress(),
               SslCredentials(pki->ca, pki->operator_cert, pki->operator_key), &stats);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  const grpc::Status plain =
      GetStats(agg.LoopbackAddress(), grpc::InsecureChannelCredentials(), &stats);
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
  EXPECT_EQ(agg.Stop(), std::optional<int>(0)) << agg.Stderr();
}

TEST(TlsStartupTest, IncompleteTlsConfigurationExitsNonZero) {
  TempDir dir;
  auto pki = MakePki(dir);
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  const struct {
    std::string tls;
    std::string message;
  } cases[] = {
      {"cert_file: \"" + pki->server_cert + "\"", "tls needs both cert_file and key_file"},
      {"cert_file: \"" + pki->server_cert + "\" key_file: \"" + pki->server_key +
           "\" require_client_cert: true",
       "tls needs ca_file"},
      // TLS without ca_file used to take clients without a certificate: now refused.
      {"cert_file: \"" + pki->server_cert + "\" key_file: \"" + pki->server_key + "\"",
       "tls needs ca_file"},
      {"ca_file: \"" + pki->ca + "\" require_client_cert: true", "need cert_file and key_file"},
      {"cert_file: \"" + dir.Sub("missing.pem") + "\" key_file: \"" + pki->server_key + "\"",
       "cannot read tls.cert_file"},
  };
  for (const auto& c : cases) {
    WriteFile(dir.Sub("agg.textproto"), "tls { " + c.tls + " }\n");
    const RunResult r =
        RunCommand({BinPath("tripline-aggregator"), "--config", dir.Sub("agg.textproto"),
                    "--listen", "127.0.0.1:0", "--data-dir", dir.Sub("data")});
    EXPECT_EQ(r.exit_code, 2) << c.tls << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.tls << "\n" << r.err;
    EXPECT_EQ(r.out.find(kListening), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace tripline
