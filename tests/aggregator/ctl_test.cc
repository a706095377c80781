// triplinectl, unprivileged, against the real tripline-aggregator binary: every subcommand
// in its table and --json forms, every flag, every exit code (0 ok, 2 usage, 5 not found,
// 6 unreachable), the live view, the chain drawn by Graphviz and opened in a real headless
// Chromium, and the bash completion sourced in a real bash. The incidents come from the
// seed story sent over the real ingest protocol and correlated by the aggregator itself.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/clock.h"
#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tests/correlate/story_builder.h"

namespace tripline {
namespace {

using correlate::testing::Delivery;
using correlate::testing::StoryBuilder;
using nlohmann::json;
using testing::BinPath;
using testing::Child;
using testing::IngestClient;
using testing::ReadWholeFile;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;

constexpr const char* kListening = "listening on ";

// The seed story (as in the correlator tests), moved to end a minute ago, so that the
// aggregator's own clock finds it fresh: failed passwords for alice on hosta, a success,
// /etc/shadow read, then ssh hosta -> hostb -> hostc. Plus password spraying against eight
// accounts on hostd, a smaller incident of its own.
std::vector<Delivery> Stories() {
  StoryBuilder b;
  std::vector<Delivery> s = b.SeedStory();
  double t = 0;
  for (int round = 0; round < 2; ++round) {
    for (const char* user : {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}) {
      s.push_back(b.Failure("hostd", user, "198.18.0.77", 41000, t += 2));
    }
  }
  const int64_t shift = SystemClock::Get().NowNs() - 60 * kNanosPerSecond - StoryBuilder::At(71);
  // (The spraying ends at 32 s, the chain at 71 s: both within the last two minutes.)
  for (Delivery& d : s) d.event.time_ns += shift;
  return s;
}

int SeverityRank(const std::string& s) {
  static const std::vector<std::string> order = {"info", "low", "medium", "high", "critical"};
  const auto it = std::find(order.begin(), order.end(), s);
  return it == order.end() ? -1 : static_cast<int>(it - order.begin());
}

// The DOM a real headless Chromium builds from the file at `path`, serialized: what a
// person's browser would show. Chromium runs as root here, hence --no-sandbox; its profile
// lives in `profile`.
std::string ChromiumDom(const std::string& path, const std::string& profile) {
  const RunResult r =
      RunCommand({"/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                  "--no-first-run", "--user-data-dir=" + profile, "--dump-dom", "file://" + path},
                 60000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

size_t Count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agg_ = std::make_unique<Child>(
        std::vector<std::string>{BinPath("tripline-aggregator"), "--listen", "127.0.0.1:0",
                                 "--data-dir", dir_.Sub("data")},
        dir_.Sub("aggregator.err"));
    const auto line = agg_->ReadLine(20000);
    ASSERT_TRUE(line && line->rfind(kListening, 0) == 0)
        << ReadWholeFile(dir_.Sub("aggregator.err"));
    address_ = line->substr(strlen(kListening));
  }
  void TearDown() override {
    agg_->Signal(SIGTERM);
    EXPECT_EQ(agg_->Wait(20000), std::optional<int>(0))
        << ReadWholeFile(dir_.Sub("aggregator.err"));
  }

  RunResult Ctl(const std::vector<std::string>& args) { return testing::RunCtl(address_, args); }
  json CtlJson(std::vector<std::string> args) {
    args.push_back("--json");
    const RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.err.empty()) << r.err;
    return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  // Sends the stories over the ingest protocol, one stream per sensor, and waits (polling,
  // at most 20 s) until the critical incident is listed. Returns every incident then.
  json SendStoriesAndWaitForTheIncident() {
    std::map<std::string, std::vector<Event>> by_sensor;
    for (const Delivery& d : Stories()) by_sensor[d.sensor].push_back(d.event);
    for (const auto& [sensor, events] : by_sensor) {
      IngestClient client(address_);
      EXPECT_TRUE(client.Hello(sensor));
      const auto ack = client.Batch(sensor, events.front().seq, events);
      EXPECT_TRUE(ack && ack->error().empty() && ack->durable_seq() == events.back().seq)
          << sensor << ": " << (ack ? ack->DebugString() : "no ack");
      EXPECT_TRUE(client.Finish().ok());
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (true) {
      json all = CtlJson({"incidents"});
      const bool critical =
          all.is_array() && std::any_of(all.begin(), all.end(), [](const json& i) {
            return i.value("severity", "") == "critical";
          });
      // The spraying on hostd is an incident of its own; wait for it too.
      if (critical && all.size() >= 2) return all;
      if (std::chrono::steady_clock::now() >= deadline) return all;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  TempDir dir_;
  std::unique_ptr<Child> agg_;
  std::string address_;
};

TEST_F(CtlTest, IncidentsInEveryForm) {
  const json all = SendStoriesAndWaitForTheIncident();
  ASSERT_TRUE(all.is_array()) << all.dump();
  ASSERT_GE(all.size(), 2u) << all.dump(2);
  const auto critical = std::find_if(
      all.begin(), all.end(), [](const json& i) { return i.value("severity", "") == "critical"; });
  ASSERT_NE(critical, all.end()) << all.dump(2);
  const json& inc = *critical;
  for (const char* field :
       {"id", "severity", "title", "identities", "hosts", "techniques", "first_seen", "last_seen",
        "chain", "events", "explanation", "confidence"}) {
    EXPECT_TRUE(inc.contains(field)) << field << " missing from " << inc.dump(2);
  }
  EXPECT_EQ(inc["hosts"], json({"hosta", "hostb", "hostc"}));
  ASSERT_EQ(inc["chain"].size(), 2u);
  EXPECT_EQ(inc["chain"][0].value("from", ""), "hosta");
  EXPECT_EQ(inc["chain"][1].value("to", ""), "hostc");
  EXPECT_EQ(inc["chain"][1].value("user", ""), "alice");
  const double confidence = inc.value("confidence", -1.0);
  EXPECT_GT(confidence, 0.0);
  EXPECT_LE(confidence, 1.0);
  const std::string id = inc.value("id", "");
  ASSERT_FALSE(id.empty());

  // The table: a header, a row per incident with the chain's hosts.
  const RunResult table = Ctl({"incidents"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("ID", 0), 0u) << table.out;
  EXPECT_NE(table.out.find(id), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("hosta → hostb → hostc"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("critical"), std::string::npos) << table.out;

  // --min-severity keeps exactly the incidents at or above it, for every level.
  std::set<int> ranks;
  for (const json& i : all) ranks.insert(SeverityRank(i.value("severity", "")));
  EXPECT_GE(ranks.size(), 2u) << "the stories should give incidents of two severities";
  for (const char* level : {"info", "low", "medium", "high", "critical"}) {
    std::set<std::string> want, got;
    for (const json& i : all) {
      if (SeverityRank(i.value("severity", "")) >= SeverityRank(level)) want.insert(i["id"]);
    }
    for (const json& i : CtlJson({"incidents", "--min-severity", level})) got.insert(i["id"]);
    EXPECT_EQ(got, want) << "--min-severity " << level;
  }
  // --limit, also in the --flag=value form.
  EXPECT_EQ(CtlJson({"incidents", "--limit", "1"}).size(), 1u);
  EXPECT_EQ(CtlJson({"incidents", "--limit=1"}).size(), 1u);
  EXPECT_EQ(CtlJson({"incidents", "--limit", "0"}).size(), all.size());

  // One incident: the same object as in the list, and a text view with the chain.
  const json one = CtlJson({"incident", id});
  ASSERT_TRUE(one.is_object()) << one.dump();
  EXPECT_EQ(one, inc);
  const RunResult text = Ctl({"incident", id});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("incident " + id, 0), 0u) << text.out;
  for (const char* part : {"critical", "chain", "explanation", "events", "hosta", "hostb", "hostc",
                           "alice", "techniques", "T1021.004"}) {
    EXPECT_NE(text.out.find(part), std::string::npos) << part << " not in\n" << text.out;
  }

  // Errors: an unknown id is not found (5) in both forms, with nothing on stdout.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"incident", "no-such-incident"},
        std::vector<std::string>{"incident", "no-such-incident", "--json"}}) {
    const RunResult missing = Ctl(args);
    EXPECT_EQ(missing.exit_code, 5);
    EXPECT_TRUE(missing.out.empty()) << missing.out;
    EXPECT_NE(missing.err.find("GetIncident"), std::string::npos) << missing.err;
    EXPECT_NE(missing.err.find("NOT_FOUND"), std::string::npos) << missing.err;
  }
  const RunResult bad_level = Ctl({"incidents", "--min-severity", "severe"});
  EXPECT_EQ(bad_level.exit_code, 2);
  EXPECT_NE(bad_level.err.find("--min-severity: severe not in"), std::string::npos)
      << bad_level.err;
  EXPECT_EQ(Ctl({"incidents", "--limit", "some"}).exit_code, 2);
}

TEST_F(CtlTest, EventsFlagsAndStatsInBothForms) {
  const json all = SendStoriesAndWaitForTheIncident();
  ASSERT_FALSE(all.empty());
  const std::vector<Delivery> stories = Stories();
  const json events = CtlJson({"events", "--limit", "0"});
  ASSERT_EQ(events.size(), stories.size());
  // --kind for each kind present, --user, --host, --since/--until (RFC 3339 and durations).
  std::map<std::string, size_t> by_kind;
  for (const Delivery& d : stories) ++by_kind[std::string(KindName(d.event.kind()))];
  for (const auto& [kind, n] : by_kind) {
    const json got = CtlJson({"events", "--kind", kind});
    EXPECT_EQ(got.size(), n) << kind;
    for (const json& e : got) EXPECT_EQ(e.value("kind", ""), kind);
  }
  EXPECT_EQ(CtlJson({"events", "--host", "hostd", "--user", "bob"}).size(), 2u);
  EXPECT_EQ(CtlJson({"events", "--host", "hostd"}).size(), 16u);
  const int64_t middle = stories[7].event.time_ns;  // hosta's connect
  const json before = CtlJson({"events", "--until", FormatTimeNs(middle)});
  const json after = CtlJson({"events", "--since", FormatTimeNs(middle)});
  EXPECT_EQ(before.size() + after.size(), stories.size());
  for (const json& e : before) EXPECT_LT(e.value("time_ns", int64_t{0}), middle);
  for (const json& e : after) EXPECT_GE(e.value("time_ns", int64_t{0}), middle);
  EXPECT_EQ(CtlJson({"events", "--since", "1h"}).size(), stories.size());
  EXPECT_TRUE(CtlJson({"events", "--until", "2h"}).empty());
  EXPECT_EQ(Ctl({"events", "--kind", "telepathy"}).exit_code, 2);
  EXPECT_EQ(Ctl({"events", "--limit", "-1"}).exit_code, 2);
  EXPECT_EQ(Ctl({"events", "--until", "soon"}).exit_code, 2);

  // stats: counts, the correlator's progress, one entry per sensor; the table says the same.
  const json stats = CtlJson({"stats"});
  EXPECT_EQ(stats.value("events_stored", 0u), stories.size());
  EXPECT_GE(stats.value("incidents", 0u), 2u);
  EXPECT_EQ(stats.value("correlation_events_fed", 0u), stories.size());
  EXPECT_EQ(stats["sensors"].size(), 4u);
  for (const json& s : stats["sensors"]) {
    EXPECT_GT(s.value("durable_seq", 0u), 0u) << s.dump();
    EXPECT_EQ(s.value("durable_seq", 0u), s.value("events", 1u)) << s.dump();
  }
  const RunResult table = Ctl({"stats"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("events stored"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(std::to_string(stories.size())), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("sensor-hosta"), std::string::npos) << table.out;
}

TEST_F(CtlTest, UsageForms) {
  // --help and -h print the usage on stdout and succeed, with or without an aggregator.
  for (const char* help : {"--help", "-h"}) {
    const RunResult r = RunCommand({BinPath("triplinectl"), help});
    EXPECT_EQ(r.exit_code, 0) << help;
    EXPECT_EQ(r.out.rfind("usage: triplinectl", 0), 0u) << r.out;
    EXPECT_TRUE(r.err.empty()) << r.err;
  }
  // The --aggregator=ADDR form.
  const RunResult inline_address =
      RunCommand({BinPath("triplinectl"), "--aggregator=" + address_, "stats", "--json"});
  EXPECT_EQ(inline_address.exit_code, 0) << inline_address.err;
  EXPECT_TRUE(json::parse(inline_address.out, nullptr, false).is_object());
  EXPECT_EQ(Ctl({"--timeout", "5s", "stats"}).exit_code, 0);

  // Every usage error exits 2, says what is wrong on stderr, points to --help, and writes
  // nothing on stdout.
  const std::vector<std::pair<std::vector<std::string>, std::string>> usage = {
      {{}, "no subcommand"},
      {{"frobnicate"}, "unknown subcommand 'frobnicate'"},
      {{"--bogus", "stats"}, "unknown flag '--bogus'"},
      {{"stats", "--host", "x"}, "unknown flag '--host' for stats"},
      {{"events", "extra"}, "events takes no argument 'extra'"},
      {{"incident"}, "incident takes one ID"},
      {{"incident", "a", "b"}, "incident takes one ID"},
      {{"stats", "--json=yes"}, "--json takes no value"},
      {{"events", "--limit"}, "--limit: 1 required"},
      {{"events", "--limit", "-1"}, "--limit: wants a number of 0 or more"},
      {{"incident", "x", "--graph", "png"}, "--graph: png not in {dot,svg}"},
      {{"incidents", "--watch", "--interval", "1ms"}, "--interval wants"},
      {{"completion"}, "completion wants a subcommand"},
      {{"--timeout", "0s", "stats"}, "--timeout wants a duration"},
      {{"--timeout", "forever", "stats"}, "--timeout wants a duration"},
      {{"--cert", "c.pem", "stats"}, "--cert and --key go together"},
      {{"--cert", "c.pem", "--key", "k.pem", "stats"}, "--cert/--key need --ca"},
      {{"--ca", dir_.Sub("no-such-ca.pem"), "stats"}, "cannot read"},
  };
  for (const auto& [args, message] : usage) {
    const RunResult r = Ctl(args);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    EXPECT_EQ(r.exit_code, 2) << shown;
    EXPECT_NE(r.err.find(message), std::string::npos) << shown << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << shown << "\n" << r.out;
  }
  const RunResult no_aggregator = RunCommand({BinPath("triplinectl"), "stats"});
  EXPECT_EQ(no_aggregator.exit_code, 2);
  EXPECT_NE(no_aggregator.err.find("--aggregator HOST:PORT is required"), std::string::npos);
  const RunResult bad_address =
      RunCommand({BinPath("triplinectl"), "--aggregator", "nowhere", "stats"});
  EXPECT_EQ(bad_address.exit_code, 2) << bad_address.err;

  // --help of every subcommand, without an aggregator.
  for (const char* sub : {"incidents", "incident", "events", "stats", "baseline", "feedback",
                          "import", "completion"}) {
    const RunResult r = RunCommand({BinPath("triplinectl"), sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_EQ(r.out.find(std::string("usage: triplinectl ") + sub), r.out.find("usage:")) << r.out;
    EXPECT_NE(r.out.find("Exit codes"), std::string::npos) << r.out;
  }

  // An aggregator that does not answer exits 6 and says so, for every subcommand, in both
  // forms.
  agg_->Signal(SIGKILL);
  agg_->Wait(10000);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"events"}, std::vector<std::string>{"stats"},
        std::vector<std::string>{"incidents"}, std::vector<std::string>{"incident", "x"}}) {
    for (const bool as_json : {false, true}) {
      std::vector<std::string> full = {"--timeout", "1s"};
      full.insert(full.end(), args.begin(), args.end());
      if (as_json) full.push_back("--json");
      const RunResult r = Ctl(full);
      EXPECT_EQ(r.exit_code, 6) << args[0];
      EXPECT_TRUE(r.out.empty()) << r.out;
      EXPECT_NE(r.err.find(" failed: "), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("cannot be reached"), std::string::npos) << r.err;
    }
  }
  // TearDown expects a clean stop: start it again on the same data.
  SetUp();
}

// incident ID --graph: the seed story's chain laid out by Graphviz, as DOT and as an SVG
// that a real Chromium opens with the three hosts and both hops.
TEST_F(CtlTest, GraphOfTheSeedStoryOpensInChromium) {
  const json all = SendStoriesAndWaitForTheIncident();
  const auto critical = std::find_if(
      all.begin(), all.end(), [](const json& i) { return i.value("severity", "") == "critical"; });
  ASSERT_NE(critical, all.end()) << all.dump(2);
  const std::string id = critical->value("id", "");

  const RunResult dot = Ctl({"incident", id, "--graph", "dot"});
  ASSERT_EQ(dot.exit_code, 0) << dot.err;
  EXPECT_EQ(dot.out.rfind("digraph", 0), 0u) << dot.out;
  EXPECT_EQ(Count(dot.out, "->"), 2u) << dot.out;
  for (const char* part : {"hosta", "hostb", "hostc", "hop 1: alice", "hop 2: alice",
                           "brute force: ", "(T1110)", "#b71c1c"}) {
    EXPECT_NE(dot.out.find(part), std::string::npos) << part << "\n" << dot.out;
  }

  const RunResult svg = Ctl({"incident", id, "--graph", "svg"});
  ASSERT_EQ(svg.exit_code, 0) << svg.err;
  const std::string path = dir_.Sub("chain.svg");
  std::ofstream(path) << svg.out;
  const std::string dom = ChromiumDom(path, dir_.Sub("chromium"));
  ASSERT_NE(dom.find("<svg"), std::string::npos) << dom;
  EXPECT_EQ(Count(dom, "class=\"node host\""), 3u) << dom;
  EXPECT_EQ(Count(dom, "class=\"edge hop\""), 2u) << dom;
  for (const char* part : {">hosta<", ">hostb<", ">hostc<", ">hop 1: alice<", ">hop 2: alice<",
                           "valid account: login", id.c_str()}) {
    EXPECT_NE(dom.find(part), std::string::npos) << part << "\n" << dom;
  }
  EXPECT_EQ(Ctl({"incident", id, "--graph", "svg", "--json"}).exit_code, 2);
}

// incidents --watch: started before anything happened, it prints each incident when it is
// raised and again when it grows, one JSON object a line, and ends cleanly on SIGTERM.
TEST_F(CtlTest, WatchPrintsIncidentsAsTheyAreRaised) {
  Child watch({BinPath("triplinectl"), "--aggregator", address_, "incidents", "--watch", "--json",
               "--interval", "200ms"},
              dir_.Sub("watch.err"));
  SendStoriesAndWaitForTheIncident();
  bool critical = false;
  std::set<std::string> ids;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!critical && std::chrono::steady_clock::now() < deadline) {
    const auto line = watch.ReadLine(2000);
    if (!line) continue;
    const json j = json::parse(*line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << *line;
    ids.insert(j.value("id", ""));
    critical = j.value("severity", "") == "critical";
  }
  EXPECT_TRUE(critical) << ReadWholeFile(dir_.Sub("watch.err"));
  EXPECT_GE(ids.size(), 1u);
  watch.Signal(SIGTERM);
  EXPECT_EQ(watch.Wait(5000), std::optional<int>(0)) << ReadWholeFile(dir_.Sub("watch.err"));
}

// The bash completion script triplinectl makes of its own command tree (and CMake installs):
// sourced in a real bash, it completes subcommands, flags and their values.
TEST_F(CtlTest, BashCompletion) {
  const RunResult script = RunCommand({BinPath("triplinectl"), "completion", "bash"});
  ASSERT_EQ(script.exit_code, 0) << script.err;
  const std::string path = dir_.Sub("triplinectl.bash");
  std::ofstream(path) << script.out;
  std::ofstream(dir_.Sub("auth.log")) << "";
  // The words after `triplinectl`, the last being completed -> what bash offers.
  const auto complete = [&](const std::string& words) {
    const std::string program = "source '" + path + "' && cd '" + dir_.path() +
                                "' && COMP_WORDS=(triplinectl " + words +
                                ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _triplinectl && "
                                "printf '%s\\n' \"${COMPREPLY[@]}\" | sort | tr '\\n' ' '";
    const RunResult r = RunCommand({"/bin/bash", "--norc", "--noprofile", "-c", program});
    EXPECT_EQ(r.exit_code, 0) << words << "\n" << r.err;
    return r.out;
  };
  EXPECT_EQ(complete("inc"), "incident incidents ");
  EXPECT_EQ(complete("''"),
            "actions approve audit baseline completion deny events feedback import incident "
            "incidents propose revert rules stats suggestions trail trust ");
  EXPECT_EQ(complete("rules ''"), "test ");
  EXPECT_EQ(complete("trust ''"), "probation promote ");
  EXPECT_EQ(complete("suggestions ''"), "confirm dismiss ");
  EXPECT_EQ(complete("suggestions confirm backup --kind a"), "agent ");
  EXPECT_EQ(complete("--aggregator 127.0.0.1:7443 st"), "stats ");
  EXPECT_EQ(complete("incidents --min-severity h"), "high ");
  EXPECT_EQ(complete("incident inc-1 --graph ''"), "dot svg ");
  EXPECT_EQ(complete("events --kind l"), "login ");
  EXPECT_EQ(complete("import --format s"), "sshd-syslog ");
  EXPECT_EQ(complete("feedback inc-1 e"), "expected ");
  EXPECT_EQ(complete("import --host web1 au"), "auth.log ");
  EXPECT_EQ(complete("completion ''"), "bash ");
  const std::string flags = complete("incidents --");
  for (const char* flag : {"--watch", "--json", "--limit", "--interval", "--timeout", "--help"}) {
    EXPECT_NE(flags.find(flag), std::string::npos) << flag << " not in " << flags;
  }
  const std::string ca = complete("stats --ca au");
  EXPECT_EQ(ca, "auth.log ");
}

}  // namespace
}  // namespace tripline
