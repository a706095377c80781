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
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/config_file.h"
#include "common/status.h"
#include "sensor/delivery/delivery_client.h"
#include "tests/aggregator/subprocess.h"
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
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;

constexpr const char* kListening = "listening on ";

int64_t In(int64_t seconds) { return SystemClock::Get().MonotonicNs() + seconds * kNanosPerSecond; }

// ---------------------------------------------------------------------------------------
// Certificates

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

struct Credential {
  KeyPtr key{nullptr, &EVP_PKEY_free};
  CertPtr cert{nullptr, &X509_free};
};

// The oldest error on OpenSSL's queue, for messages; the queue is emptied.
std::string OpenSslError(const std::string& what) {
  char buf[256] = "no OpenSSL error";
  if (const unsigned long e = ERR_peek_error(); e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return what + ": " + buf;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return Status::Internal(OpenSslError("extension " + value));
  const bool added = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return added ? Status::Ok() : Status::Internal(OpenSslError("adding " + value));
}

// A fresh P-256 key and a certificate for it, valid from an hour ago for a day, signed by
// `issuer` (self-signed when null). `extensions` are (NID, OpenSSL config value) pairs.
Result<Credential> Issue(const std::string& common_name, const Credential* issuer,
                         const std::vector<std::pair<int, std::string>>& extensions) {
  static long serial = 1;
  Credential out;
  out.key.reset(EVP_EC_gen("P-256"));
  if (!out.key) return Status::Internal(OpenSslError("EC key"));
  out.cert.reset(X509_new());
  X509* cert = out.cert.get();
  if (cert == nullptr || X509_set_version(cert, X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) == nullptr ||
      X509_set_pubkey(cert, out.key.get()) != 1) {
    return Status::Internal(OpenSslError("certificate fields"));
  }
  X509_NAME* name = X509_get_subject_name(cert);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("Tripline tests"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return Status::Internal(OpenSslError("subject"));
  }
  X509* issuer_cert = issuer ? issuer->cert.get() : cert;
  EVP_PKEY* signer = issuer ? issuer->key.get() : out.key.get();
  if (X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert)) != 1) {
    return Status::Internal(OpenSslError("issuer"));
  }
  for (const auto& [nid, value] : extensions) {
    TL_RETURN_IF_ERROR(AddExtension(cert, issuer_cert, nid, value));
  }
  if (X509_sign(cert, signer, EVP_sha256()) == 0) return Status::Internal(OpenSslError("signing"));
  return out;
}

Result<Credential> IssueCa(const std::string& common_name) {
  return Issue(common_name, nullptr,
               {{NID_basic_constraints, "critical,CA:TRUE"},
                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                {NID_subject_key_identifier, "hash"}});
}

Result<Credential> IssueLeaf(const std::string& common_name, const Credential& ca,
                             const std::string& extended_usage, const std::string& san) {
  std::vector<std::pair<int, std::string>> ext = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                  {NID_key_usage, "critical,digitalSignature"},
                                                  {NID_ext_key_usage, extended_usage},
                                                  {NID_authority_key_identifier, "keyid:always"}};
  if (!san.empty()) ext.emplace_back(NID_subject_alt_name, san);
  return Issue(common_name, &ca, ext);
}

Status WritePem(const std::string& path, const std::function<int(BIO*)>& write, mode_t mode) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || write(bio.get()) != 1) return Status::Internal(OpenSslError("PEM for " + path));
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, size);
  out.close();
  if (!out) return Status::IoError("cannot write " + path);
  if (::chmod(path.c_str(), mode) != 0) return Status::IoError("cannot chmod " + path);
  return Status::Ok();
}

Status WriteCert(const std::string& path, const Credential& c) {
  return WritePem(
      path, [&](BIO* b) { return PEM_write_bio_X509(b, c.cert.get()); }, 0644);
}

Status WriteKey(const std::string& path, const Credential& c) {
  return WritePem(
      path,
      [&](BIO* b) {
        return PEM_write_bio_PrivateKey(b, c.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      0600);
}

// PEM files in one directory: the CA the aggregator trusts, its server certificate, a
// sensor's client certificate; and an impostor CA with the same name but its own key, with
// a client certificate of its own.
struct Pki {
  std::string ca, server_cert, server_key, client_cert, client_key;
  std::string other_ca, other_client_cert, other_client_key;
};

Result<Pki> MakePki(const TempDir& dir) {
  Pki p{.ca = dir.Sub("ca.pem"),
        .server_cert = dir.Sub("server.pem"),
        .server_key = dir.Sub("server-key.pem"),
        .client_cert = dir.Sub("client.pem"),
        .client_key = dir.Sub("client-key.pem"),
        .other_ca = dir.Sub("other-ca.pem"),
        .other_client_cert = dir.Sub("other-client.pem"),
        .other_client_key = dir.Sub("other-client-key.pem")};
  TL_ASSIGN_OR_RETURN(Credential ca, IssueCa("Tripline Test CA"));
  TL_ASSIGN_OR_RETURN(Credential server, IssueLeaf("tripline-aggregator", ca, "serverAuth",
                                                   "IP:127.0.0.1,DNS:localhost"));
  TL_ASSIGN_OR_RETURN(Credential client, IssueLeaf("sensor-1", ca, "clientAuth", ""));
  // Same subject as the real CA; only its key differs.
  TL_ASSIGN_OR_RETURN(Credential other_ca, IssueCa("Tripline Test CA"));
  TL_ASSIGN_OR_RETURN(Credential other_client, IssueLeaf("sensor-1", other_ca, "clientAuth", ""));
  TL_RETURN_IF_ERROR(WriteCert(p.ca, ca));
  TL_RETURN_IF_ERROR(WriteCert(p.server_cert, server));
  TL_RETURN_IF_ERROR(WriteKey(p.server_key, server));
  TL_RETURN_IF_ERROR(WriteCert(p.client_cert, client));
  TL_RETURN_IF_ERROR(WriteKey(p.client_key, client));
  TL_RETURN_IF_ERROR(WriteCert(p.other_ca, other_ca));
  TL_RETURN_IF_ERROR(WriteCert(p.other_client_cert, other_client));
  TL_RETURN_IF_ERROR(WriteKey(p.other_client_key, other_client));
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
    pki_ = *pki;
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
    std::vector<std::string> out = {"--ca",           pki_.ca, "--cert",
                                    pki_.client_cert, "--key", pki_.client_key};
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }
  std::shared_ptr<grpc::ChannelCredentials> Mtls() const {
    return SslCredentials(pki_.ca, pki_.client_cert, pki_.client_key);
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
  EXPECT_EQ(wrong_name.exit_code, 1) << wrong_name.out;
  EXPECT_NE(wrong_name.err.find("UNAVAILABLE"), std::string::npos) << wrong_name.err;

  // Without a client certificate, or in clear text, triplinectl gets nothing.
  const RunResult no_cert = Ctl(agg_->address(), {"--ca", pki_.ca, "stats"});
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert.out;
  EXPECT_TRUE(no_cert.out.empty()) << no_cert.out;
  EXPECT_NE(no_cert.err.find("UNAVAILABLE"), std::string::npos) << no_cert.err;
  const RunResult plain = Ctl(agg_->address(), {"stats"});
  EXPECT_EQ(plain.exit_code, 1) << plain.out;
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
  const grpc::Status ok = GetStats(
      agg.LoopbackAddress(), SslCredentials(pki->ca, pki->client_cert, pki->client_key), &stats);
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
       "tls.require_client_cert needs tls.ca_file"},
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
