// Replayed auth logs through a real aggregator (RocksDB in a temp dir, ingest on
// 127.0.0.1:0, the correlator with its default rules): every source that brute-forced,
// sprayed or stuffed credentials ends up named by an incident, and what happens to the
// successful logins is pinned down.
//
// Two logs: fixtures/sshd_attacks.log, written for this test, and loghub's OpenSSH_2k.log
// (2,000 real lines from one server, Zhu et al., ISSRE 2023), read from the reference data
// directory at test time when it is there (it is not copied into the repository, see its
// licence) and skipped otherwise.
//
// The brute-forcing sources are found here independently of the importer and the
// correlator: a plain scan of the "Failed password" lines (with rsyslog's "message
// repeated"). A source brute-forces when it fails three times for one account within ten
// minutes (correlator.h, brute_force_failures) or fails for ten or more accounts
// (stuffing_min_accounts). The rules raise an incident for it when the chain scores 20
// (chain_scorer.h): five or more failures for one account (kBruteForceRaiseFailures: one
// connection that hits sshd's MaxAuthTries), spraying or stuffing, or a successful login
// after the failures. Three or four failures that get nowhere score 15 and stay below the
// line by design (a person trying an old password); the tests pin that down, so that a
// change of the rules shows here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "aggregator/correlate/chain_scorer.h"
#include "aggregator/pipeline/correlation_engine.h"
#include "aggregator/server/aggregator_server.h"
#include "aggregator/store/rocksdb_store.h"
#include "common/text_lines.h"
#include "model/incident_proto.h"
#include "tests/support/temp_dir.h"
#include "tools/import/log_importer.h"
#include "tripline/v1/query.pb.h"

namespace tripline {
namespace {

using testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct SourceAttempts {
  int most_failures = 0;  // for one account within ten minutes
  size_t accounts = 0;
};

// Per source that brute-forced: its largest run of failures and how many accounts it tried.
// `old_pam`: count the old Linux-PAM "sshd(pam_unix)[pid]: authentication failure; ...
// rhost=A user=U" lines instead (logs from before sshd said "Failed password").
std::map<std::string, SourceAttempts> BruteForcingSources(const std::string& log,
                                                          bool old_pam = false) {
  // Groups: 1 month, 2 day, 3-5 time, then 6 repeat count, 7 user, 8 address.
  static const std::regex kFailed(
      R"(^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) \S+ sshd\[\d+\]: (?:message repeated (\d+) )"
      R"(times: \[ )?Failed password for (?:invalid user )?(.*) from ([0-9a-fA-F:.]+) port)");
  // Groups: 1 month, 2 day, 3-5 time, then 6 address, 7 user.
  static const std::regex kOldPam(
      R"(^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) \S+ sshd\(pam_unix\)\[\d+\]: )"
      R"(authentication failure;.* rhost=([0-9.]+) +user=(\S+))");
  static const std::string kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> attempts;  // (ip,user)
  std::map<std::string, std::set<std::string>> users;
  ForEachLine(log, [&](std::string_view line, size_t) {
    std::match_results<std::string_view::const_iterator> m;
    if (!std::regex_search(line.begin(), line.end(), m, old_pam ? kOldPam : kFailed)) return;
    // Months of 31 days are exact enough for ten-minute windows within one year.
    const int64_t t = static_cast<int64_t>(kMonths.find(m[1].str()) / 3) * 31 * 86400 +
                      std::stoll(m[2]) * 86400 + std::stoll(m[3]) * 3600 + std::stoll(m[4]) * 60 +
                      std::stoll(m[5]);
    const int copies = !old_pam && m[6].matched ? std::stoi(m[6]) : 1;
    const std::string user = m[7].str();
    const std::string ip = old_pam ? m[6].str() : m[8].str();
    for (int i = 0; i < copies; ++i) attempts[{ip, user}].push_back(t);
    users[ip].insert(user);
  });
  std::map<std::string, SourceAttempts> all;
  for (const auto& [key, times] : attempts) {
    for (size_t i = 0, j = 0; j < times.size(); ++j) {
      while (times[j] - times[i] > 600) ++i;
      auto& a = all[key.first];
      a.most_failures = std::max(a.most_failures, static_cast<int>(j - i + 1));
    }
  }
  std::map<std::string, SourceAttempts> out;
  for (auto& [ip, a] : all) {
    a.accounts = users[ip].size();
    if (a.most_failures >= 3 || a.accounts >= 10) out[ip] = a;
  }
  return out;
}

// Whether the rules raise a brute force of this size on its own (without a login after it).
[[maybe_unused]] bool RaisesOnItsOwn(const SourceAttempts& a) {
  return a.most_failures >= static_cast<int>(correlate::kBruteForceRaiseFailures) ||
         a.accounts >= 10;
}

class SshLogReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RocksDbStore::Open({.path = dir_.Sub("db")});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto engine = CorrelationEngine::Open(store_.get(), {}, SystemClock::Get());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    AggregatorServerOptions options;
    options.listen = HostPort{"127.0.0.1", 0};
    auto server = AggregatorServer::Start(options, store_.get(), engine_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }
  void TearDown() override {
    if (server_) server_->Shutdown(kNanosPerSecond);
    engine_.reset();
  }

  import::ImportReport Replay(const std::string& path, const std::string& host, int year) {
    import::ImportOptions o;
  o.path = path;
  o.parse.host = host;
  o.parse.year = year;
  import::ImportReport report;
  auto channel =
      grpc::CreateChannel(server_->address().ToString(), grpc::InsecureChannelCredentials());
  const Status s = import::RunImport(o, channel, nullptr, SystemClock::Get(), &report);
  EXPECT_TRUE(s.ok()) << s.ToString();
  engine_->Drain();
  return report;
}

std::vector<Incident>
Incidents() {
  std::vector<Incident> out;
  auto all = store_->ListIncidents();
  EXPECT_TRUE(all.ok());
  for (const std::string& bytes : *all) {
    v1::Incident wire;
    EXPECT_TRUE(wire.ParseFromString(bytes));
    auto i = FromProto(wire);
    EXPECT_TRUE(i.ok());
    if (i.ok()) out.push_back(std::move(*i));
  }
  return out;
}

static bool Names(const Incident& i, const std::string& identity) {
  return std::find(i.identities.begin(), i.identities.end(), identity) != i.identities.end();
}
static std::string Describe(const std::vector<Incident>& incidents) {
  std::string s;
  for (const auto& i : incidents) {
    s += i.id + " " + std::string(SeverityName(i.severity)) + " " + i.title + "\n";
    for (const auto& id : i.identities) s += "    " + id + "\n";
  }
  return s;
}

TempDir dir_;
std::unique_ptr<RocksDbStore> store_;
std::unique_ptr<CorrelationEngine> engine_;
std::unique_ptr<AggregatorServer> server_;
};  // namespace

TEST_F(SshLogReplayTest, WrittenLogRaisesStuffingTheBreakInAndMaxAuthTriesNotFourTries) {
  const std::string path = std::string(TRIPLINE_IMPORT_FIXTURES) + "/sshd_attacks.log";
  const auto attackers = BruteForcingSources(ReadAll(path));
  std::set<std::string> ips;
  for (const auto& [ip, a] : attackers) ips.insert(ip);
  ASSERT_EQ(
      ips, (std::set<std::string>{"203.0.113.10", "203.0.113.20", "203.0.113.30", "203.0.113.40"}));
  const auto report = Replay(path, "gate", 2026);
  EXPECT_EQ(report.lines_unrecognized + report.lines_malformed, 0u);
  EXPECT_EQ(report.rejected, 0u);

  const auto incidents = Incidents();
  const auto named = [&](const std::string& ip) {
    return std::any_of(incidents.begin(), incidents.end(),
                       [&](const Incident& i) { return Names(i, "source:" + ip); });
  };
  // Stuffing (12 accounts) and the brute force that got in are raised.
  EXPECT_TRUE(named("203.0.113.20")) << Describe(incidents);
  EXPECT_TRUE(named("203.0.113.40")) << Describe(incidents);
  // Six tries at root in one connection (MaxAuthTries): raised, low. Four at admin over
  // four connections: below the line.
  EXPECT_EQ(attackers.at("203.0.113.10").most_failures, 6);
  EXPECT_EQ(attackers.at("203.0.113.30").most_failures, 4);
  EXPECT_TRUE(named("203.0.113.10")) << Describe(incidents);
  EXPECT_FALSE(named("203.0.113.30")) << Describe(incidents);
  for (const auto& i : incidents) {
    if (Names(i, "source:203.0.113.10")) {
      EXPECT_EQ(i.severity, Severity::kLow) << Describe({i});
    }
  }
  // The break-in: six failures, then oracle's password works from the same address.
  const auto breakin = std::find_if(incidents.begin(), incidents.end(), [](const Incident& i) {
    return Names(i, "source:203.0.113.40") && Names(i, "user:oracle");
  });
  ASSERT_NE(breakin, incidents.end()) << Describe(incidents);
  EXPECT_GE(breakin->severity, Severity::kMedium);
  EXPECT_NE(std::find(breakin->techniques.begin(), breakin->techniques.end(), "T1078"),
            breakin->techniques.end());
  std::string why;
  for (const auto& line : breakin->explanation) why += line + "\n";
  EXPECT_NE(why.find("oracle"), std::string::npos) << why;
  std::printf("%s (%s, score %.0f)\n%s", breakin->title.c_str(),
              std::string(SeverityName(breakin->severity)).c_str(), breakin->score, why.c_str());
  // The ordinary logins (dave after one typo, fztu from a new address) raise nothing.
  for (const auto& i : incidents) {
    EXPECT_FALSE(Names(i, "user:dave")) << Describe({i});
    EXPECT_FALSE(Names(i, "user:fztu")) << Describe({i});
  }
}

#ifndef TRIPLINE_WITHOUT_SHARED_DATA
TEST_F(SshLogReplayTest, LoghubOpenSsh2k) {
  const std::string data = TRIPLINE_SHARED_DATA;
  const std::string path = data + "/loghub/OpenSSH/OpenSSH_2k.log";
  if (data.empty() || !std::filesystem::exists(path)) {
    GTEST_SKIP() << "loghub's OpenSSH_2k.log is not at " << path
                 << " (configure with -DTRIPLINE_SHARED_DATA=DIR to point at it)";
  }
  const auto attackers = BruteForcingSources(ReadAll(path));
  ASSERT_FALSE(attackers.empty());
  const auto report = Replay(path, "labsz", 2026);
  EXPECT_EQ(report.lines, 2000u);
  EXPECT_EQ(report.lines_malformed, 0u);
  EXPECT_EQ(report.lines_unrecognized, 0u);
  EXPECT_EQ(report.rejected, 0u);
  const auto incidents = Incidents();
  int raised = 0, below = 0;
  for (const auto& [ip, a] : attackers) {
    const bool named = std::any_of(incidents.begin(), incidents.end(),
                                   [&](const Incident& i) { return Names(i, "source:" + ip); });
    if (RaisesOnItsOwn(a)) {
      EXPECT_TRUE(named) << ip << " (" << a.most_failures << " failures, " << a.accounts
                         << " accounts) is in no incident:\n"
                         << Describe(incidents);
    } else {
      EXPECT_FALSE(named) << ip << " (" << a.most_failures << " failures) was raised";
    }
    ++(named ? raised : below);
    std::printf("  source %-16s most failures %2d, accounts %2zu: %s\n", ip.c_str(),
                a.most_failures, a.accounts, named ? "raised" : "not raised");
  }
  // Every one of the 11 sources that brute-forced is flagged (5 to 271 failures for one
  // account, or many accounts).
  EXPECT_EQ(attackers.size(), 11u);
  EXPECT_EQ(raised, 11);
  EXPECT_EQ(below, 0);
  // The one successful login (fztu from 119.137.62.142, no failure before it): first-login
  // from an address is a weak stage that never raises on its own.
  for (const auto& i : incidents) EXPECT_FALSE(Names(i, "user:fztu")) << Describe({i});
  std::printf(
      "%zu brute-forcing sources, %d raised, %d below the line; %zu incidents, "
      "%llu events from %llu lines\n",
      attackers.size(), raised, below, incidents.size(),
      static_cast<unsigned long long>(report.events),
      static_cast<unsigned long long>(report.lines));
}

TEST_F(SshLogReplayTest, LoghubLinux2kOldPamLines) {
  const std::string data = TRIPLINE_SHARED_DATA;
  const std::string path = data + "/loghub/Linux/Linux_2k.log";
  if (data.empty() || !std::filesystem::exists(path)) {
    GTEST_SKIP() << "loghub's Linux_2k.log is not at " << path
                 << " (configure with -DTRIPLINE_SHARED_DATA=DIR to point at it)";
  }
  // /var/log/messages of 2005: sshd's own lines are not there, PAM's are (old tags).
  const auto attackers = BruteForcingSources(ReadAll(path), /*old_pam=*/true);
  ASSERT_FALSE(attackers.empty());
  const auto report = Replay(path, "combo", 2005);
  EXPECT_EQ(report.lines, 2000u);
  EXPECT_EQ(report.lines_unrecognized, 0u);
  EXPECT_EQ(report.rejected, 0u);
  const auto incidents = Incidents();
  int raised = 0;
  for (const auto& [ip, a] : attackers) {
    const bool named = std::any_of(incidents.begin(), incidents.end(),
                                   [&](const Incident& i) { return Names(i, "source:" + ip); });
    if (RaisesOnItsOwn(a)) {
      EXPECT_TRUE(named) << ip << " (" << a.most_failures << " failures) is in no incident:\n"
                         << Describe(incidents);
    }
    raised += named;
    std::printf("  source %-16s most failures %2d, accounts %2zu: %s\n", ip.c_str(),
                a.most_failures, a.accounts, named ? "raised" : "not raised");
  }
  EXPECT_GT(raised, 0);
  std::printf(
      "%zu brute-forcing sources with an address, %d raised; %zu incidents, %llu events "
      "from %llu lines\n",
      attackers.size(), raised, incidents.size(), static_cast<unsigned long long>(report.events),
      static_cast<unsigned long long>(report.lines));
}
#endif  // TRIPLINE_WITHOUT_SHARED_DATA

}  // namespace tripline
}  // namespace tripline
