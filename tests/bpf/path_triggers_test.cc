#include "sensor/path_triggers.h"

#include <gtest/gtest.h>

#include "events.h"
#include "sensor/bpf_probe.h"

namespace tripline::sensor {
namespace {

using M = SensitivePath::Match;

uint64_t LenBit(size_t len) { return uint64_t{1} << std::min<size_t>(len, 63); }

TEST(PathTriggersTest, EachRuleKindGivesTheNameAMatchNeeds) {
  const std::vector<SensitivePath> rules = {
      {M::kExact, "/etc/shadow"},
      {M::kSuffix, "/authorized_keys"},
      {M::kSuffix, "home/.ssh/id_rsa"},  // a '/' inside: the file is named id_rsa
      {M::kPrefix, "/etc/pam.d/"},
      {M::kPrefix, "/etc/ssh/ssh_host_"},  // files in /etc/ssh named ssh_host_*
      {M::kPrefix, "/root/.ssh/"},
  };
  const PathTriggers t = CompilePathTriggers(rules);
  EXPECT_FALSE(t.match_all) << t.why_all;
  const std::vector<NameTrigger> want = {
      {0, "shadow"}, {0, "authorized_keys"}, {0, "id_rsa"}, {2, "pam.d"}, {2, "ssh"}, {2, ".ssh"},
  };
  EXPECT_EQ(t.triggers, want);
  EXPECT_EQ(t.depth_mask, 1u << 2);
  EXPECT_EQ(t.file_len_mask, LenBit(6) | LenBit(15));
  EXPECT_EQ(t.dir_len_mask, LenBit(5) | LenBit(3) | LenBit(4));
}

TEST(PathTriggersTest, DuplicatesAndDepths) {
  const std::vector<SensitivePath> rules = {
      {M::kExact, "/etc/shadow"},
      {M::kExact, "/srv/backup/shadow"},
      {M::kPrefix, "/etc/"},
      {M::kPrefix, "/a/b/c/d/"},
  };
  const PathTriggers t = CompilePathTriggers(rules);
  const std::vector<NameTrigger> want = {{0, "shadow"}, {1, "etc"}, {4, "d"}};
  EXPECT_EQ(t.triggers, want);
  EXPECT_EQ(t.depth_mask, (1u << 1) | (1u << 4));
}

TEST(PathTriggersTest, LongNamesSetTheTopLengthBit) {
  const std::string name(80, 'x');
  const PathTriggers t = CompilePathTriggers(std::vector<SensitivePath>{{M::kExact, "/" + name}});
  ASSERT_EQ(t.triggers.size(), 1u);
  EXPECT_EQ(t.triggers[0].name, name);  // the loader keys it by its first 15 bytes and length
  EXPECT_EQ(t.file_len_mask, uint64_t{1} << 63);
}

TEST(PathTriggersTest, RulesWithoutANameTurnThePrefilterOff) {
  for (const SensitivePath& rule : std::vector<SensitivePath>{
           {M::kSuffix, "_rsa"},  // any file name ending so
           {M::kSuffix, "/.ssh/"},
           {M::kPrefix, "/et"},  // ends inside the first component
           {M::kPrefix, "/"},
           {M::kExact, "/etc/"},
       }) {
    const PathTriggers t = CompilePathTriggers(std::vector<SensitivePath>{rule});
    EXPECT_TRUE(t.match_all) << rule.path;
    EXPECT_NE(t.why_all.find(rule.path), std::string::npos) << t.why_all;
  }
  std::string path;
  for (int i = 0; i < 40; ++i) path += "/d";
  EXPECT_TRUE(CompilePathTriggers(std::vector<SensitivePath>{{M::kPrefix, path + "/"}}).match_all);
}

TEST(PathTriggersTest, RelativeRulesCanNeverMatchAndGiveNothing) {
  const PathTriggers t = CompilePathTriggers(
      std::vector<SensitivePath>{{M::kExact, "etc/shadow"}, {M::kPrefix, "etc/"}});
  EXPECT_FALSE(t.match_all);
  EXPECT_TRUE(t.triggers.empty());
  EXPECT_EQ(t.depth_mask, 0u);
}

TEST(PathTriggersTest, TheDefaultTableKeepsThePrefilterOn) {
  const PathTriggers t = CompilePathTriggers(DefaultSensitivePaths());
  EXPECT_FALSE(t.match_all) << t.why_all;
  EXPECT_LE(t.triggers.size(), 1024u);  // tl_name_triggers' size
  for (const NameTrigger& n : t.triggers) EXPECT_LE(n.depth, kMaxTriggerDepth);
  static_assert(kMaxTriggerDepth == TL_TRIGGER_MAX_DEPTH);
}

}  // namespace
}  // namespace tripline::sensor
