#include "sensor/posture_collector.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>

#include "sensor/posture_worker.h"
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

// Keys without a from= option can be used from anywhere; options are read as sshd reads
// them (quoted values may hold commas and blanks, the option name in any case).
TEST_F(PostureCollectorTest, KeysWithoutFromAreCounted) {
  tree_.Write("/home/bob/.ssh/authorized_keys",
              "ssh-ed25519 AAAA open@a\n"
              "from=\"198.18.0.0/15,10.0.0.1\" ssh-ed25519 BBBB pinned@b\n"
              "command=\"echo a, from=x\",no-pty ssh-rsa CCCC quoted-from@c\n"
              "no-pty,FROM=\"192.0.2.1\" ecdsa-sha2-nistp256 DDDD upper@d\n"
              "restrict sk-ssh-ed25519@openssh.com EEEE restrict@e\n");
  PostureSnapshot snap = PostureCollector(files_).Collect();
  const Account* bob = Find(snap, "bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->authorized_keys, 5u);
  EXPECT_EQ(bob->authorized_keys_unrestricted, 3u);  // open, quoted-from, restrict
  EXPECT_EQ(Find(snap, "alice")->authorized_keys_unrestricted, 2u);
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

// An account plants what a root reader must not follow or wait on: a FIFO as
// authorized_keys2 (a blocking open waits forever for a writer), authorized_keys as a
// link to /etc/shadow, and a second account's ~/.ssh as a link to root's. As root, a third
// account's key file is owned by someone else. Collect returns at once, skips each with
// the reason, and still counts the keys it may read.
class PlantedHomeTest : public PostureCollectorTest {
 protected:
  void SetUp() override {
    PostureCollectorTest::SetUp();
    as_root_ = geteuid() == 0;
    // Without root the files are the test's own; the sensor trusts its own uid like root's.
    mallory_uid_ = as_root_ ? 4242 : getuid();
    tree_.Write("/etc/passwd",
                "root:x:0:0:root:/root:/bin/bash\n"
                "mallory:x:" +
                    std::to_string(mallory_uid_) +
                    ":4242::/home/mallory:/bin/bash\n"
                    "eve:x:4243:4243::/home/eve:/bin/bash\n"
                    "trent:x:4244:4244::/home/trent:/bin/bash\n");
    tree_.Write("/home/mallory/.ssh/.keep", "");
    fifo_ = tree_.root() + "/home/mallory/.ssh/authorized_keys2";
    ASSERT_EQ(mkfifo(fifo_.c_str(), 0644), 0);
    tree_.Symlink(tree_.root() + "/etc/shadow", "/home/mallory/.ssh/authorized_keys");
    tree_.Write("/home/eve/.keep", "");
    tree_.Symlink(tree_.root() + "/root/.ssh", "/home/eve/.ssh");
    tree_.Write("/home/trent/.ssh/authorized_keys", "ssh-ed25519 DDDD trent@x\n");
    if (as_root_) {
      for (const std::string& path :
           {tree_.root() + "/home/mallory", tree_.root() + "/home/mallory/.ssh", fifo_}) {
        ASSERT_EQ(lchown(path.c_str(), mallory_uid_, 4242), 0) << path;
      }
      ASSERT_EQ(chown((tree_.root() + "/home/trent/.ssh/authorized_keys").c_str(), 5555, 5555), 0);
    }
  }

  // Collect on another thread; a collection stuck on the FIFO is released (by opening its
  // write end) so the test can end, and reported as a failure.
  PostureSnapshot CollectPromptly() {
    auto future =
        std::async(std::launch::async, [this] { return PostureCollector(files_).Collect(); });
    if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "Collect() still blocked after 10 s";
      int fd = open(fifo_.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) close(fd);
    }
    return future.get();
  }

  bool as_root_ = false;
  uint32_t mallory_uid_ = 0;
  std::string fifo_;
};

TEST_F(PlantedHomeTest, FifoAndLinksAreSkippedWithTheReason) {
  const auto start = std::chrono::steady_clock::now();
  PostureSnapshot snap = CollectPromptly();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_EQ(snap.accounts.size(), 4u);
  EXPECT_EQ(Find(snap, "root")->authorized_keys, 1u);  // /root/.ssh/authorized_keys2
  EXPECT_EQ(Find(snap, "mallory")->authorized_keys, 0u);
  EXPECT_EQ(Find(snap, "eve")->authorized_keys, 0u);
  const std::string home = tree_.root() + "/home/";
  EXPECT_TRUE(AnyContains(snap.errors, home + "mallory/.ssh/authorized_keys2 is a FIFO; not read"))
      << ::testing::PrintToString(snap.errors);
  EXPECT_TRUE(AnyContains(snap.errors,
                          home + "mallory/.ssh/authorized_keys is a symbolic link; not followed"))
      << ::testing::PrintToString(snap.errors);
  EXPECT_TRUE(AnyContains(snap.errors, home + "eve/.ssh is a symbolic link; not followed"))
      << ::testing::PrintToString(snap.errors);
  if (as_root_) {
    EXPECT_EQ(Find(snap, "trent")->authorized_keys, 0u);
    EXPECT_TRUE(AnyContains(snap.errors,
                            "trent/.ssh/authorized_keys is owned by uid 5555, not by "
                            "the account (uid 4244) or root; not read"))
        << ::testing::PrintToString(snap.errors);
  } else {
    EXPECT_EQ(Find(snap, "trent")->authorized_keys, 1u);
  }
}

TEST_F(PlantedHomeTest, TheWorkerCollectsOffTheCallersThread) {
  FakeClock clock;
  PostureWorker worker(files_, clock, 20 * kNanosPerSecond);
  EXPECT_FALSE(worker.Take().has_value());
  ASSERT_TRUE(worker.Start());
  auto snap = worker.WaitAndTake(10 * kNanosPerSecond);
  if (!snap.has_value()) {
    int fd = open(fifo_.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) close(fd);
    snap = worker.WaitAndTake(10 * kNanosPerSecond);
    FAIL() << "the worker's collection was stuck";
  }
  EXPECT_EQ(snap->accounts.size(), 4u);
  EXPECT_FALSE(worker.running());
  ASSERT_TRUE(worker.Start());  // and again, once the result was taken
  EXPECT_TRUE(worker.WaitAndTake(10 * kNanosPerSecond).has_value());
}

// A home directory on a file system that stopped answering: every read of an account file
// waits until the gate opens. Only a fake can stand in for a hung mount; everything else is
// read from the real tree.
class HangingHostFiles final : public HostFiles {
 public:
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    int waiting = 0;    // reads blocked now
    int instances = 0;  // copies alive (the worker's lives as long as its thread)
  };
  HangingHostFiles(std::string root, std::shared_ptr<Gate> gate)
      : real_(root), root_(std::move(root)), gate_(std::move(gate)) {
    std::lock_guard<std::mutex> lock(gate_->mu);
    ++gate_->instances;
  }
  ~HangingHostFiles() override {
    std::lock_guard<std::mutex> lock(gate_->mu);
    --gate_->instances;
    gate_->cv.notify_all();
  }
  Result<std::string> ReadFile(std::string_view path, size_t max_bytes) const override {
    return real_.ReadFile(path, max_bytes);
  }
  Result<std::string> ReadAccountFile(std::string_view dir, std::string_view relative,
                                      uint32_t owner_uid, size_t max_bytes) const override {
    {
      std::unique_lock<std::mutex> lock(gate_->mu);
      ++gate_->waiting;
      gate_->cv.notify_all();
      gate_->cv.wait(lock, [this] { return gate_->open; });
      --gate_->waiting;
    }
    return real_.ReadAccountFile(dir, relative, owner_uid, max_bytes);
  }
  Status ReadPrefix(std::string_view path, size_t max_bytes, std::string* out) const override {
    return real_.ReadPrefix(path, max_bytes, out);
  }
  Result<FileVersion> Stat(std::string_view path) const override { return real_.Stat(path); }
  Result<std::string> ReadLink(std::string_view path) const override {
    return real_.ReadLink(path);
  }
  Result<std::vector<std::string>> ListDir(std::string_view path) const override {
    return real_.ListDir(path);
  }
  std::unique_ptr<HostFiles> Clone() const override {
    return std::make_unique<HangingHostFiles>(root_, gate_);
  }

 private:
  RootedHostFiles real_;
  std::string root_;
  std::shared_ptr<Gate> gate_;
};

TEST_F(PostureCollectorTest, AStuckCollectionHoldsUpNeitherTheLoopNorShutdown) {
  auto gate = std::make_shared<HangingHostFiles::Gate>();
  const auto open_gate = [&] {
    std::lock_guard<std::mutex> lock(gate->mu);
    gate->open = true;
    gate->cv.notify_all();
  };
  {
    HangingHostFiles files(tree_.root(), gate);
    auto worker = std::make_unique<PostureWorker>(files, SystemClock::Get(), 20 * kNanosPerSecond);
    ASSERT_TRUE(worker->Start());
    {
      std::unique_lock<std::mutex> lock(gate->mu);
      ASSERT_TRUE(
          gate->cv.wait_for(lock, std::chrono::seconds(10), [&] { return gate->waiting > 0; }));
    }
    // The loop's calls answer at once while the collection hangs.
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(worker->Take().has_value());
    EXPECT_TRUE(worker->running());
    EXPECT_FALSE(worker->Start());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
    // And so does shutdown.
    auto stopped = std::async(std::launch::async, [&worker] { worker.reset(); });
    if (stopped.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      ADD_FAILURE() << "the worker's destructor waits for the stuck collection";
      open_gate();
    }
    stopped.get();
  }
  // Released, the collection left behind ends on its own copy of everything it uses.
  open_gate();
  std::unique_lock<std::mutex> lock(gate->mu);
  EXPECT_TRUE(
      gate->cv.wait_for(lock, std::chrono::seconds(10), [&] { return gate->instances == 0; }));
}

TEST_F(PostureCollectorTest, TimeBudgetSpentKeepsAccountsAndSaysWhatIsMissing) {
  FakeClock clock;
  PostureSnapshot snap = PostureCollector(files_).Collect(&clock, 0);
  ASSERT_EQ(snap.accounts.size(), 6u);
  EXPECT_EQ(Find(snap, "alice")->authorized_keys, 0u);
  EXPECT_TRUE(Contains(snap.errors,
                       "posture time budget of 0 ms used up: authorized keys of 6 accounts not "
                       "counted"))
      << ::testing::PrintToString(snap.errors);
}

// Sensitive files each account may read as owner or through a group that is not
// root-equivalent, every directory above searchable to it: files of a real tree with real
// modes and owners (as root the test gives them to uid 4242 and gid 4343; otherwise they
// are its own).
TEST(SensitiveFilesTest, ReadableAsOwnerOrThroughAGroupThatIsNotRootEquivalent) {
  TempTree tree;
  const bool root = ::geteuid() == 0;
  const uint32_t owner = root ? 4242 : ::geteuid();
  const uint32_t group = root ? 4343 : ::getegid();
  const auto file = [&](const std::string& path, mode_t mode) {
    tree.Write(path, "secret\n");
    const std::string full = tree.root() + path;
    ASSERT_EQ(::chmod(full.c_str(), mode), 0);
    if (root) {
      ASSERT_EQ(::chown(full.c_str(), owner, group), 0);
    }
  };
  file("/etc/shadow", 0640);
  file("/etc/pam.conf", 0604);  // others may read it: nobody's privilege
  file("/etc/ssh/ssh_host_ed25519_key", 0600);
  file("/etc/sudoers.d/ops", 0440);
  file("/etc/private/token", 0640);
  const std::string private_dir = tree.root() + "/etc/private";
  ASSERT_EQ(::chmod(private_dir.c_str(), 0700), 0);  // only its owner may search it
  if (root) {
    ASSERT_EQ(::chown(private_dir.c_str(), owner, group), 0);
  }
  ASSERT_EQ(::chmod(tree.root().c_str(), 0755), 0);
  const auto write_accounts = [&](const std::string& group_name) {
    tree.Write("/etc/passwd",
               "root:x:0:0:root:/root:/bin/bash\n"
               "svc:x:" +
                   std::to_string(owner) +
                   ":5000::/srv:/bin/sh\n"
                   "keyreader:x:6001:6001::/srv:/bin/sh\n"
                   "other:x:7000:7000::/srv:/bin/sh\n");
    tree.Write("/etc/group", "root:x:0:\n" + group_name + ":x:" + std::to_string(group) +
                                 ":keyreader\nsvc:x:5000:\n");
  };
  write_accounts("keys");
  using M = SensitivePath::Match;
  const std::vector<SensitivePath> rules = {
      {M::kExact, "/etc/shadow"},         {M::kExact, "/etc/pam.conf"},
      {M::kPrefix, "/etc/ssh/ssh_host_"}, {M::kPrefix, "/etc/sudoers.d/"},
      {M::kPrefix, "/etc/private/"},      {M::kSuffix, "/authorized_keys"},
      {M::kExact, "/etc/absent"}};
  RootedHostFiles files(tree.root());
  PostureSnapshot snap = PostureCollector(files, std::nullopt, rules).Collect();
  ASSERT_NE(Find(snap, "svc"), nullptr);
  EXPECT_EQ(Find(snap, "svc")->readable_files,
            (std::vector<std::string>{"/etc/pam.conf", "/etc/private/token", "/etc/shadow",
                                      "/etc/ssh/ssh_host_ed25519_key", "/etc/sudoers.d/ops"}));
  // Through group keys: not the private directory's file (its directory is closed to the
  // group) nor pam.conf (its group may not read it; what others may do does not apply).
  EXPECT_EQ(Find(snap, "keyreader")->readable_files,
            (std::vector<std::string>{"/etc/shadow", "/etc/sudoers.d/ops"}));
  EXPECT_TRUE(Find(snap, "other")->readable_files.empty());
  EXPECT_TRUE(Find(snap, "root")->readable_files.empty());

  // The same group named shadow: root-equivalent, its reads are that group's finding.
  write_accounts("shadow");
  snap = PostureCollector(files, std::nullopt, rules).Collect();
  EXPECT_TRUE(Find(snap, "keyreader")->readable_files.empty());
  EXPECT_EQ(Find(snap, "svc")->readable_files.size(), 5u);
  // Without sensitive paths nothing is judged.
  EXPECT_TRUE(Find(PostureCollector(files).Collect(), "svc")->readable_files.empty());
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
