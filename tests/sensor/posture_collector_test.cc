#include "sensor/posture_collector.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "sensor/sudoers_parser.h"
#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

const Account* Find(const PostureSnapshot& snap, const std::string& name) {
  for (const Account& a : snap.accounts) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool AnyContains(const std::vector<std::string>& v, const std::string& part) {
  return std::any_of(v.begin(), v.end(),
                     [&](const std::string& s) { return s.find(part) != std::string::npos; });
}

class PostureCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.Write("/etc/passwd",
                "root:x:0:0:root:/root:/bin/bash\n"
                "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                "alice:x:1001:1001::/home/alice:/bin/bash\n"
                "bob:x:1002:1002::/home/bob:/bin/bash\n"
                "ops:x:1003:0::/home/ops:/bin/bash\n"
                "carol:x:1004:1004::/home/carol:/bin/bash\n");
    tree_.Write("/etc/group",
                "root:x:0:alice\n"
                "daemon:x:1:\n"
                "sudo:x:27:bob\n"
                "alice:x:1001:\n"
                "bob:x:1002:\n"
                "carol:x:1004:\n"
                "admins:x:2000:carol\n");
    tree_.Write("/etc/shadow",
                "root:$6$abc$def:19700:0:99999:7:::\n"
                "daemon:*:19700:0:99999:7:::\n"
                "alice:$6$salt$hash:19700:0:90:7:::\n"
                "bob:!$6$salt$hash:19700:0::7:::\n"
                "ops::19700:0:99999:7:::\n");
    tree_.Write("/etc/sudoers",
                "# sudoers\n"
                "Defaults env_reset\n"
                "User_Alias ADMINS = %admins, dave\n"
                "root ALL=(ALL:ALL) ALL\n"
                "%sudo ALL=(ALL:ALL) ALL\n"
                "ADMINS ALL=(root) /usr/bin/systemctl\n"
                "this line is not a rule\n"
                "@includedir /etc/sudoers.d\n");
    tree_.Write("/etc/sudoers.d/ops", "alice, \\\n  ops ALL = (ALL) NOPASSWD: ALL\n");
    tree_.Write("/etc/sudoers.d/README.txt", "ignored by sudo: the name has a dot\n");
    tree_.Write("/home/alice/.ssh/authorized_keys",
                "# keys\nssh-ed25519 AAAA alice@a\n\nssh-rsa BBBB alice@b\n");
    tree_.Write("/root/.ssh/authorized_keys2", "ssh-ed25519 CCCC root@x\n");
  }

  TempTree tree_;
  RootedHostFiles files_{tree_.root()};
};

TEST_F(PostureCollectorTest, AccountsGroupsAndAgeing) {
  PostureSnapshot snap = PostureCollector(files_).Collect();
  ASSERT_EQ(snap.accounts.size(), 6u);
  const Account* root = Find(snap, "root");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->max_password_age_days, -1);  // 99999: never expires
  EXPECT_TRUE(root->password_set);
  EXPECT_FALSE(root->password_locked);
  EXPECT_EQ(root->authorized_keys, 1u);

  const Account* daemon = Find(snap, "daemon");
  EXPECT_FALSE(daemon->interactive_shell);
  EXPECT_TRUE(daemon->password_locked);
  EXPECT_FALSE(daemon->password_set);

  const Account* alice = Find(snap, "alice");
  EXPECT_EQ(alice->max_password_age_days, 90);
  EXPECT_EQ(alice->last_password_change_days, 19700);
  EXPECT_EQ(alice->groups, (std::vector<std::string>{"alice", "root"}));
  EXPECT_EQ(alice->authorized_keys, 2u);

  const Account* bob = Find(snap, "bob");
  EXPECT_TRUE(bob->password_locked);
  EXPECT_TRUE(bob->password_set);
  EXPECT_EQ(bob->max_password_age_days, -1);  // empty: no maximum

  const Account* ops = Find(snap, "ops");
  EXPECT_FALSE(ops->password_set);  // empty hash: no password at all
  EXPECT_FALSE(ops->password_locked);
  EXPECT_EQ(ops->groups, (std::vector<std::string>{"root"}));

  // gid 0 members by listing (alice) and by primary group (root, ops).
  EXPECT_EQ(snap.root_group_members, (std::vector<std::string>{"alice", "ops", "root"}));
}

TEST_F(PostureCollectorTest, SudoRules) {
  PostureSnapshot snap = PostureCollector(files_).Collect();
  const Account* alice = Find(snap, "alice");
  ASSERT_EQ(alice->sudo_rules.size(), 1u);
  EXPECT_TRUE(alice->sudo_nopasswd);
  EXPECT_EQ(alice->sudo_rules[0], "alice, ops ALL = (ALL) NOPASSWD: ALL (/etc/sudoers.d/ops:1)");
  EXPECT_TRUE(Find(snap, "ops")->sudo_nopasswd);

  const Account* bob = Find(snap, "bob");  // through %sudo
  ASSERT_EQ(bob->sudo_rules.size(), 1u);
  EXPECT_FALSE(bob->sudo_nopasswd);
  EXPECT_EQ(bob->sudo_rules[0], "%sudo ALL=(ALL:ALL) ALL (/etc/sudoers:5)");

  const Account* carol = Find(snap, "carol");  // through User_Alias -> %admins
  ASSERT_EQ(carol->sudo_rules.size(), 1u);
  EXPECT_TRUE(AnyContains(carol->sudo_rules, "ADMINS ALL=(root) /usr/bin/systemctl"));

  EXPECT_TRUE(Find(snap, "root")->sudo_rules.size() == 1);
  EXPECT_TRUE(Find(snap, "daemon")->sudo_rules.empty());

  // The malformed line is reported with file and line; the README.txt is skipped.
  ASSERT_EQ(snap.errors.size(), 1u) << ::testing::PrintToString(snap.errors);
  EXPECT_EQ(snap.errors[0],
            "/etc/sudoers:7: expected 'USERS HOSTS = COMMANDS', got 'this line is not a rule'");
}

TEST_F(PostureCollectorTest, EveryProblemIsReported) {
  tree_.Remove("/etc/shadow");
  tree_.Write("/etc/group", "root:x:0:\nbroken\n");
  tree_.Write("/etc/sudoers", "@include /etc/sudoers.local\nalice ALL\n");
  PostureSnapshot snap = PostureCollector(files_).Collect();
  EXPECT_EQ(snap.accounts.size(), 6u);
  EXPECT_TRUE(AnyContains(snap.errors, "/etc/shadow")) << ::testing::PrintToString(snap.errors);
  EXPECT_TRUE(Contains(snap.errors, "/etc/group:2: expected 4 fields, got 1"));
  EXPECT_TRUE(AnyContains(snap.errors, "/etc/sudoers:1: include: not found"));
  EXPECT_TRUE(AnyContains(snap.errors, "/etc/sudoers:2: expected 'USERS HOSTS = COMMANDS'"));
}

TEST(SudoersParserTest, TagsNegationAndComments) {
  SudoersPolicy p;
  ParseSudoersText(
      "#1000 ALL = (ALL) PASSWD: /bin/ls, NOPASSWD: /bin/cat  # trailing comment\n"
      "ALL, !mallory ALL = ALL\n"
      "User_Alias BAD\n"
      "eve ALL = (root) /usr/bin/NOPASSWDish\n",
      "/etc/sudoers", nullptr, 0, &p);
  ASSERT_EQ(p.rules.size(), 3u);
  EXPECT_TRUE(p.rules[0].nopasswd);
  ASSERT_EQ(p.rules[0].principals.size(), 1u);
  EXPECT_EQ(p.rules[0].principals[0].kind, SudoPrincipal::Kind::kUid);
  EXPECT_EQ(p.rules[0].principals[0].name, "1000");
  EXPECT_EQ(p.rules[0].text, "#1000 ALL = (ALL) PASSWD: /bin/ls, NOPASSWD: /bin/cat");
  ASSERT_EQ(p.rules[1].principals.size(), 2u);
  EXPECT_TRUE(p.rules[1].principals[1].negated);
  EXPECT_FALSE(p.rules[2].nopasswd);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0], "/etc/sudoers:3: User_Alias without '='");
}

}  // namespace
}  // namespace tripline::sensor
