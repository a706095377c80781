// The chain joiner (aggregator/correlate/chain_joiner.h): a story whose hosts' events are
// correlated in partitions of their own, the partitions' exported chains joined, gives the
// incident one correlator that saw everything gives.
#include "aggregator/correlate/chain_joiner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "aggregator/correlate/correlator.h"
#include "model/incident.h"
#include "tests/correlate/story_builder.h"

namespace tripline::correlate {
namespace {

using testing::Delivery;
using ::testing::HasSubstr;
using testing::StoryBuilder;

constexpr char kAttacker[] = "198.18.0.66";
constexpr char kIdKey[] = "joiner-test-key";

CorrelatorOptions Options() {
  CorrelatorOptions o;
  o.incident_id_key = kIdKey;
  return o;
}

// Every reported revision, and the latest of each incident.
struct Reports {
  std::vector<Incident> all;
  std::map<std::string, Incident> latest;
  void Add(std::vector<Incident> incidents) {
    for (Incident& in : incidents) {
      auto it = latest.find(in.id);
      EXPECT_TRUE(it == latest.end() || it->second.revision < in.revision)
          << in.id << " revision " << in.revision << " after " << it->second.revision;
      latest[in.id] = in;
      all.push_back(std::move(in));
    }
  }
};

// What one correlator that saw every event reports.
Reports SingleNode(const std::vector<Delivery>& story) {
  FakeClock clock{StoryBuilder::kT0};
  Correlator c(Options(), clock);
  Reports r;
  for (const Delivery& d : story) {
    clock.SetNs(std::max(clock.NowNs(), d.event.time_ns));
    r.Add(c.Handle(d.sensor, d.event));
  }
  return r;
}

// A cluster in miniature: each host its own partition, the ingest node's routing (an
// outbound connection to a host's address goes to that host's partition, and a copy to
// its source's), a correlator per partition and one joiner.
class Cluster {
 public:
  explicit Cluster(std::vector<std::string> hosts) : hosts_(std::move(hosts)) {
    for (const std::string& h : hosts_) {
      CorrelatorOptions o = Options();
      o.is_local_host = [h](std::string_view host) { return host == h; };
      partitions_[h] = std::make_unique<Correlator>(std::move(o), clock_);
    }
    joiner_ = std::make_unique<ChainJoiner>(Options(), clock_);
  }

  // Feeds one delivery where the ingest node would route it; the exported chains'
  // fragments are held back (to be put in any order) when `hold` is set.
  void Feed(const Delivery& d, bool hold = false) {
    clock_.SetNs(std::max(clock_.NowNs(), d.event.time_ns));
    const std::string* dest = nullptr;
    if (const auto* n = d.event.As<NetConnectEvent>();
        n != nullptr && n->direction == NetDirection::kOutbound) {
      for (const std::string& h : hosts_) {
        if (b_.address_of(h) == n->remote_addr && h != d.event.host) dest = &h;
      }
    }
    if (dest != nullptr) {
      partitions_.at(d.event.host)->FeedRoutedCopy(d.sensor, d.event);
      partitions_.at(*dest)->Feed(d.sensor, d.event);
    } else {
      partitions_.at(d.event.host)->Feed(d.sensor, d.event);
    }
    for (auto& [p, c] : partitions_) {
      worker_reports.Add(c->TakeChanged());
      for (ChainFragment& f : c->TakeFragments()) held_.push_back({p + ":" + f.chain, f.state});
    }
    if (!hold) Flush();
  }

  // Puts the held fragments, in the order given (indexes into what is held), then the rest.
  void Flush(std::vector<size_t> order = {}) {
    for (size_t i = 0; i < held_.size(); ++i) {
      if (std::find(order.begin(), order.end(), i) == order.end()) order.push_back(i);
    }
    for (size_t i : order) {
      ASSERT_TRUE(joiner_->Put(held_[i].first, held_[i].second).ok());
      joiner_reports.Add(joiner_->TakeChanged());
    }
    held_.clear();
  }

  // Every incident, whoever reported it: the latest revision of each.
  std::map<std::string, Incident> Latest() const {
    std::map<std::string, Incident> out = worker_reports.latest;
    for (const auto& [id, in] : joiner_reports.latest) {
      if (out.count(id) == 0 || out[id].revision < in.revision) out[id] = in;
    }
    return out;
  }

  size_t held() const { return held_.size(); }
  ChainJoiner& joiner() { return *joiner_; }
  std::unique_ptr<ChainJoiner>& joiner_ptr() { return joiner_; }
  FakeClock& clock() { return clock_; }

  Reports worker_reports;
  Reports joiner_reports;

 private:
  StoryBuilder b_;
  std::vector<std::string> hosts_;
  FakeClock clock_{StoryBuilder::kT0};
  std::map<std::string, std::unique_ptr<Correlator>> partitions_;
  std::unique_ptr<ChainJoiner> joiner_;
  std::vector<std::pair<std::string, std::string>> held_;
};

// An incident as a person reads it: all but when and how often it was revised.
Incident Content(Incident in) {
  in.revision = 0;
  in.updated_ns = 0;
  return in;
}

TEST(ChainJoinerTest, TheSeedStoryAcrossThreePartitionsIsTheSingleNodesIncident) {
  StoryBuilder b;
  const std::vector<Delivery> story = b.SeedStory();
  const Reports single = SingleNode(story);
  ASSERT_EQ(single.latest.size(), 1u);
  const Incident& want = single.latest.begin()->second;
  ASSERT_EQ(want.hosts, (std::vector<std::string>{"hosta", "hostb", "hostc"}));
  ASSERT_EQ(want.severity, Severity::kCritical);

  Cluster cluster({"hosta", "hostb", "hostc"});
  for (const Delivery& d : story) cluster.Feed(d);
  const std::map<std::string, Incident> got = cluster.Latest();
  ASSERT_EQ(got.size(), 1u) << "one incident for the chain, whoever raised it";
  EXPECT_EQ(IncidentToJson(Content(got.begin()->second)).dump(2),
            IncidentToJson(Content(want)).dump(2));
  // hosta's worker raised it at the login after the brute force, before the chain left
  // its partition; the joiner's revisions went on from there.
  ASSERT_FALSE(cluster.worker_reports.all.empty());
  EXPECT_EQ(cluster.worker_reports.all.front().revision, 1u);
  EXPECT_FALSE(cluster.joiner_reports.all.empty());
  EXPECT_GT(got.begin()->second.revision, cluster.worker_reports.latest.begin()->second.revision);
}

TEST(ChainJoinerTest, FragmentsInAnyOrderGiveTheSameIncident) {
  StoryBuilder b;
  const std::vector<Delivery> story = b.SeedStory();
  const Incident want = Content(SingleNode(story).latest.begin()->second);
  // The partitions' fragments reach the joiner only after the whole story, last first.
  Cluster cluster({"hosta", "hostb", "hostc"});
  for (const Delivery& d : story) cluster.Feed(d, /*hold=*/true);
  ASSERT_GE(cluster.held(), 3u);
  std::vector<size_t> reversed;
  for (size_t i = cluster.held(); i-- > 0;) reversed.push_back(i);
  cluster.Flush(reversed);
  const std::map<std::string, Incident> got = cluster.Latest();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(IncidentToJson(Content(got.begin()->second)).dump(2), IncidentToJson(want).dump(2));
}

TEST(ChainJoinerTest, AJoinerRestoredFromItsStateGoesOnWithoutRepeatingARevision) {
  StoryBuilder b;
  const std::vector<Delivery> story = b.SeedStory();
  const Incident want = Content(SingleNode(story).latest.begin()->second);
  Cluster cluster({"hosta", "hostb", "hostc"});
  // Up to the first hop's login, then the joiner is replaced by one restored from its state.
  size_t i = 0;
  for (; i < story.size() && story[i].event.host != "hostb"; ++i) cluster.Feed(story[i]);
  for (; i < story.size() && story[i].event.As<LoginEvent>() == nullptr; ++i) {
    cluster.Feed(story[i]);
  }
  cluster.Feed(story[i++]);
  const std::string saved = cluster.joiner().SerializeState();
  ASSERT_GT(cluster.joiner().fragments(), 0u);
  auto restored = std::make_unique<ChainJoiner>(Options(), cluster.clock());
  ASSERT_TRUE(restored->RestoreState(saved).ok());
  EXPECT_EQ(restored->SerializeState(), saved);
  cluster.joiner_ptr() = std::move(restored);
  for (; i < story.size(); ++i) cluster.Feed(story[i]);
  const std::map<std::string, Incident> got = cluster.Latest();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(IncidentToJson(Content(got.begin()->second)).dump(2), IncidentToJson(want).dump(2));
  // Reports.Add checked that every revision was higher than the one before it.
}

TEST(ChainJoinerTest, ALoneChainThatNeverLeavesItsPartitionIsRaisedByItsWorker) {
  StoryBuilder b;
  std::vector<Delivery> story;
  for (int i = 0; i < 5; ++i) story.push_back(b.Failure("hosta", "alice", kAttacker, 40001 + i, i));
  story.push_back(b.Login("hosta", "alice", kAttacker, 40010, "audit:1", 7.2));
  story.push_back(
      b.Open("hosta", "audit:1", "alice", 1000, "cat", "/etc/shadow", FileAccess::kRead, 20));
  Cluster cluster({"hosta", "hostb"});
  for (const Delivery& d : story) cluster.Feed(d);
  EXPECT_EQ(cluster.worker_reports.latest.size(), 1u);
  EXPECT_TRUE(cluster.joiner_reports.all.empty());
  EXPECT_EQ(cluster.joiner().fragments(), 0u);
  EXPECT_EQ(IncidentToJson(Content(cluster.Latest().begin()->second)).dump(2),
            IncidentToJson(Content(SingleNode(story).latest.begin()->second)).dump(2));
}

TEST(ChainJoinerTest, ARetractedFragmentLeavesWhatWasRaised) {
  StoryBuilder b;
  const std::vector<Delivery> story = b.SeedStory();
  Cluster cluster({"hosta", "hostb", "hostc"});
  for (const Delivery& d : story) cluster.Feed(d);
  const size_t before = cluster.joiner_reports.all.size();
  const size_t fragments = cluster.joiner().fragments();
  ASSERT_GE(fragments, 2u);
  // hostc's chain forgotten by its worker: the joiner drops the fragment, reports nothing.
  const std::string saved = cluster.joiner().SerializeState();
  const auto j = nlohmann::json::parse(saved);
  const std::string origin = j["fragments"].back()["origin"];
  ASSERT_TRUE(cluster.joiner().Put(origin, "").ok());
  EXPECT_EQ(cluster.joiner().fragments(), fragments - 1);
  EXPECT_TRUE(cluster.joiner().TakeChanged().empty());
  EXPECT_EQ(cluster.joiner_reports.all.size(), before);
  EXPECT_EQ(cluster.joiner().stats().retractions, 1u);
}

TEST(ChainJoinerTest, FragmentsNoWorkerRenewsAreForgotten) {
  StoryBuilder b;
  Cluster cluster({"hosta", "hostb", "hostc"});
  for (const Delivery& d : b.SeedStory()) cluster.Feed(d);
  ASSERT_GT(cluster.joiner().fragments(), 0u);
  const CorrelatorOptions o = Options();
  cluster.clock().AdvanceNs(o.session_ttl_ns + o.pending_ttl_ns - kNanosPerSecond);
  cluster.joiner().Tick();
  EXPECT_GT(cluster.joiner().fragments(), 0u);
  cluster.clock().AdvanceNs(2 * kNanosPerSecond);
  cluster.joiner().Tick();
  EXPECT_EQ(cluster.joiner().fragments(), 0u);
  EXPECT_GT(cluster.joiner().stats().fragments_expired, 0u);
  EXPECT_EQ(nlohmann::json::parse(cluster.joiner().SerializeState())["ledger"].size(), 0u);
}

TEST(ChainJoinerTest, BadFragmentsAndStatesAreRefusedAndChangeNothing) {
  FakeClock clock{StoryBuilder::kT0};
  ChainJoiner joiner(Options(), clock);
  EXPECT_EQ(joiner.Put("", "{}").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(joiner.Put("p:1", "not json").code(), Status::Code::kCorruption);
  EXPECT_EQ(joiner.Put("p:1", std::string(10000, '[')).code(), Status::Code::kCorruption);
  // A whole correlator state with no chain in it is not a fragment.
  Correlator empty(Options(), clock);
  const Status none = joiner.Put("p:1", empty.SerializeState());
  EXPECT_EQ(none.code(), Status::Code::kCorruption);
  EXPECT_THAT(none.message(), HasSubstr("holds 0 chains"));
  EXPECT_EQ(joiner.fragments(), 0u);
  const std::string state = joiner.SerializeState();
  for (
      const char* bad :
      {"", "[]", R"({"format":"x","fragments":[],"ledger":[]})",
       R"({"format":"tripline.joiner.v1","fragments":[{"origin":"a","put_ns":1,"state":"{}"}],"ledger":[]})",
       R"({"format":"tripline.joiner.v1","fragments":[],"ledger":[["inc-1",-1,0,0]]})",
       R"({"format":"tripline.joiner.v1","fragments":[],"ledger":[[[[[[[[]]]]]]]]})"}) {
    EXPECT_EQ(joiner.RestoreState(bad).code(), Status::Code::kCorruption) << bad;
  }
  EXPECT_EQ(joiner.SerializeState(), state);
}

}  // namespace
}  // namespace tripline::correlate
