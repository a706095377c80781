#include "sensor/account_files.h"

#include <gtest/gtest.h>

#include "sensor/proc_stat.h"

namespace tripline::sensor {
namespace {

TEST(AccountFilesTest, PasswdGoodAndMalformedLines) {
  std::vector<std::string> errors;
  auto entries = ParsePasswd(
      "root:x:0:0:root:/root:/bin/bash\n"
      "# comment\n"
      "\n"
      "broken:x:1000\n"
      "baduid:x:abc:100::/home/b:/bin/sh\n"
      "+nisuser\n"
      "alice:x:1001:1001:Alice,,,:/home/alice:/bin/bash\r\n",
      "/etc/passwd", &errors);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "root");
  EXPECT_EQ(entries[1].name, "alice");
  EXPECT_EQ(entries[1].uid, 1001u);
  EXPECT_EQ(entries[1].shell, "/bin/bash");  // the \r is not part of the shell
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "/etc/passwd:4: expected 7 fields, got 3");
  EXPECT_EQ(errors[1], "/etc/passwd:5: bad uid 'abc'");
}

TEST(AccountFilesTest, GroupMembers) {
  std::vector<std::string> errors;
  auto groups = ParseGroup("root:x:0:\nsudo:x:27:alice,bob\nbad:x:\n", "/etc/group", &errors);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_TRUE(groups[0].members.empty());
  EXPECT_EQ(groups[1].members, (std::vector<std::string>{"alice", "bob"}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "/etc/group:3: expected 4 fields, got 3");
}

TEST(AccountFilesTest, ShadowAgeing) {
  std::vector<std::string> errors;
  auto sh = ParseShadow("root:$6$x:19000:0:99999:7:::\nsvc:*:19000::::::\nx:y:z:0:1:2:::\n",
                        "/etc/shadow", &errors);
  ASSERT_EQ(sh.size(), 2u);
  EXPECT_EQ(sh[0].max_days, 99999);
  EXPECT_EQ(sh[1].max_days, -1);
  EXPECT_EQ(sh[1].hash, "*");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "/etc/shadow:3: bad last change 'z'");
}

TEST(AccountFilesTest, InteractiveShells) {
  EXPECT_TRUE(IsInteractiveShell("/bin/bash"));
  EXPECT_TRUE(IsInteractiveShell(""));
  EXPECT_FALSE(IsInteractiveShell("/usr/sbin/nologin"));
  EXPECT_FALSE(IsInteractiveShell("/bin/false"));
}

TEST(ProcStatTest, ParsesParentAndStartTimeDespiteOddComm) {
  auto st = ParseProcStat(
      "4242 (a) b (c) S 17 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 987654 1 2\n");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->ppid, 17u);
  EXPECT_EQ(st->start_ticks, 987654u);
  EXPECT_FALSE(ParseProcStat("12 (x) S 1 2").ok());
  EXPECT_FALSE(ParseProcStat("no paren").ok());
}

}  // namespace
}  // namespace tripline::sensor
