// ProcessPrivileges: /proc/PID/status parsing, the kernel's permission rules, and a scan of
// the real /proc with real processes started under other credentials (root: setpriv, a
// real Unix socket owned by root and a group), each verdict checked against a real
// connect(2) made with the same credentials.
#include "sensor/process_privileges.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/aggregator/subprocess.h"
#include "tests/sensor/kube_token.h"
#include "tests/sensor/temp_tree.h"
#include "tests/support/temp_dir.h"
#include "tests/support/unix_listener.h"

namespace tripline::sensor {
namespace {

TEST(ProcessPrivilegesTest, ParsesItsOwnStatus) {
  std::ifstream in("/proc/self/status");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto c = ParseProcStatus(text);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->uid, geteuid());
  EXPECT_EQ(c->gid, getegid());
}

TEST(ProcessPrivilegesTest, StatusLinesThatAreMissingOrMalformedAreErrors) {
  const std::string good =
      "Name:\tx\nUid:\t1000\t1001\t1001\t1001\nGid:\t50\t51\t51\t51\nGroups:\t4 27 \n"
      "CapEff:\t0000000000002004\n";
  auto c = ParseProcStatus(good);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->uid, 1001u);  // the effective one
  EXPECT_EQ(c->gid, 51u);
  EXPECT_EQ(c->groups, (std::vector<uint32_t>{4, 27}));
  EXPECT_EQ(c->cap_effective, 0x2004u);
  for (const std::string& bad :
       {std::string("Uid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\n"),               // no CapEff
        std::string("Uid:\t1\t2\nGid:\t1\t2\t3\t4\nCapEff:\t0\n"),         // short Uid
        std::string("Uid:\t1\tx\t3\t4\nGid:\t1\t2\t3\t4\nCapEff:\t0\n"),   // not a number
        std::string("Uid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nCapEff:\tzz\n"),  // not hex
        std::string("Uid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nCapEff:\t00000000000000000\n"),
        std::string("Uid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nGroups:\t1 -2\nCapEff:\t0\n"),
        std::string("")}) {
    auto r = ParseProcStatus(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
    }
  }
}

TEST(ProcessPrivilegesTest, PermissionsFollowTheKernelsRules) {
  ProcessCredentials nobody{65534, 65534, {4242}, 0};
  EXPECT_TRUE(MayWrite(nobody, 0660, 0, 4242));       // a supplementary group
  EXPECT_FALSE(MayWrite(nobody, 0660, 0, 999));       // neither owner nor group
  EXPECT_TRUE(MayWrite(nobody, 0602, 0, 999));        // other
  EXPECT_FALSE(MayWrite(nobody, 0066, 65534, 4242));  // the owner's bits decide for the owner
  EXPECT_TRUE(MaySearch(nobody, 0751, 0, 0));
  EXPECT_FALSE(MaySearch(nobody, 0750, 0, 0));
  EXPECT_TRUE(MaySearch(nobody, 0750, 0, 4242));
  ProcessCredentials dac_read = nobody;
  dac_read.cap_effective = uint64_t{1} << 2;  // cap_dac_read_search: directories, not writes
  EXPECT_TRUE(MaySearch(dac_read, 0700, 0, 0));
  EXPECT_FALSE(MayWrite(dac_read, 0600, 0, 0));
  ProcessCredentials root{0, 0, {}, ~uint64_t{0} >> 23};
  EXPECT_TRUE(MayWrite(root, 0600, 1000, 1000));  // cap_dac_override
  ProcessCredentials capless_root{0, 0, {}, 0};
  EXPECT_FALSE(MayWrite(capless_root, 0600, 1000, 1000));
}

// Whether a process with these credentials can connect to the Unix socket at `path`.
bool CanConnect(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, const std::string& path) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(groups.size(), groups.data()) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      _exit(2);
    }
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    _exit(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

const ProcessPrivilege* WithPid(const std::vector<ProcessPrivilege>& groups, pid_t pid) {
  for (const ProcessPrivilege& p : groups) {
    if (std::find(p.pids.begin(), p.pids.end(), static_cast<uint32_t>(pid)) != p.pids.end()) {
      return &p;
    }
  }
  return nullptr;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(ProcessPrivilegesTest, RealProcessesTheirCapabilitiesAndTheSocketsTheyReach) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: starts processes under other credentials";
  constexpr uid_t kNobody = 65534;
  constexpr gid_t kSocketGroup = 4242;  // a group only the first agent process is in
  testing::TempDir dir;
  // A program of its own, so that the processes' group is only theirs.
  const std::string exe = dir.Sub("tl-agent-sleep");
  std::filesystem::copy_file("/bin/sleep", exe);
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(exe.c_str(), 0755), 0);
  // The runtime's socket: a real one, in a directory only root and its group may search.
  const std::string run = dir.Sub("run");
  ASSERT_EQ(mkdir(run.c_str(), 0750), 0);
  ASSERT_EQ(chown(run.c_str(), 0, kSocketGroup), 0);
  const std::string socket_path = run + "/runtime.sock";
  testing::UnixListener listener(socket_path);
  ASSERT_GE(listener.fd(), 0);
  ASSERT_EQ(chown(socket_path.c_str(), 0, kSocketGroup), 0);
  ASSERT_EQ(chmod(socket_path.c_str(), 0660), 0);

  const std::string uid = "--reuid=" + std::to_string(kNobody);
  const std::string gid = "--regid=" + std::to_string(kNobody);
  // In the socket's group, with cap_net_raw.
  const std::string log = dir.Sub("children.log");
  testing::Child in_group({"/usr/bin/setpriv", uid, gid, "--groups=" + std::to_string(kSocketGroup),
                           "--inh-caps=+net_raw", "--ambient-caps=+net_raw", exe, "60"},
                          log);
  // Not in it, with cap_dac_read_search (reads every file; writes none).
  testing::Child outside(
      {"/usr/bin/setpriv", uid, gid, "--clear-groups", "--inh-caps=+dac_read_search",
       "--ambient-caps=+dac_read_search", exe, "60"},
      log);
  // Root.
  testing::Child as_root({exe, "60"}, log);
  ASSERT_GT(in_group.pid(), 0);
  ASSERT_GT(outside.pid(), 0);
  ASSERT_GT(as_root.pid(), 0);

  ProcessScanOptions options;
  options.runtime_sockets = {socket_path, dir.Sub("absent.sock"), exe /* not a socket */};
  std::vector<ProcessPrivilege> groups;
  std::vector<std::string> errors;
  // setpriv execs the program: wait until all three run it.
  for (int i = 0; i < 200; ++i) {
    errors.clear();
    groups = ScanProcessPrivileges(options, {{kNobody, "nobody"}, {0, "root"}}, nullptr, &errors);
    const ProcessPrivilege* a = WithPid(groups, in_group.pid());
    const ProcessPrivilege* b = WithPid(groups, outside.pid());
    if (a != nullptr && a->exe == exe && b != nullptr && b->exe == exe &&
        WithPid(groups, as_root.pid()) != nullptr) {
      break;
    }
    usleep(20'000);
  }
  // Only processes beyond the test's reach may be missing (a sandbox's pid 1 can be one).
  for (const std::string& e : errors) {
    EXPECT_NE(e.find("could not be read (pid "), std::string::npos) << e;
    for (pid_t mine : {in_group.pid(), outside.pid(), as_root.pid()}) {
      EXPECT_EQ(e.find("(pid " + std::to_string(mine) + ")"), std::string::npos) << e;
    }
  }

  const ProcessPrivilege* a = WithPid(groups, in_group.pid());
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->exe, exe);
  EXPECT_EQ(a->uid, kNobody);
  EXPECT_EQ(a->user, "nobody");
  EXPECT_EQ(a->cap_effective, uint64_t{1} << 13);  // cap_net_raw
  EXPECT_EQ(a->runtime_sockets, std::vector<std::string>{socket_path});
  EXPECT_EQ(a->processes, 1u);
  EXPECT_TRUE(CanConnect(kNobody, kNobody, {kSocketGroup}, socket_path));

  const ProcessPrivilege* b = WithPid(groups, outside.pid());
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->cap_effective, uint64_t{1} << 2);  // cap_dac_read_search
  EXPECT_TRUE(b->runtime_sockets.empty());
  EXPECT_FALSE(CanConnect(kNobody, kNobody, {}, socket_path));

  const ProcessPrivilege* r = WithPid(groups, as_root.pid());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->uid, 0u);
  EXPECT_EQ(r->user, "root");
  EXPECT_TRUE(Contains(r->runtime_sockets, socket_path));
  EXPECT_FALSE(Contains(r->runtime_sockets, exe));
  EXPECT_TRUE(CanConnect(0, 0, {}, socket_path));

  // Kernel threads have no executable and are not listed; the scan sees this test itself.
  EXPECT_EQ(WithPid(groups, 2), nullptr);
  EXPECT_NE(WithPid(groups, getpid()), nullptr);
}

// /proc/PID of a python3 run by uid 998 with no capabilities, in `dir`/proc, in `cgroup`.
void LayOutPython(const testing::TempDir& dir, int pid, const std::string& cgroup) {
  const std::string base = dir.Sub("proc/" + std::to_string(pid));
  std::filesystem::create_directories(base);
  std::filesystem::create_symlink("/usr/bin/python3", base + "/exe");
  std::filesystem::create_symlink("/", base + "/root");
  std::ofstream(base + "/status") << "Name:\tpython3\nUid:\t998\t998\t998\t998\n"
                                     "Gid:\t998\t998\t998\t998\nGroups:\t\n"
                                     "CapEff:\t0000000000000000\n";
  std::ofstream(base + "/cgroup") << cgroup;
}

// A process in a container, in a /proc laid out in a temp dir (no container runtime runs
// here): its container id comes from its cgroup file, as events name it, and splits the
// group from the same program on the host.
TEST(ProcessPrivilegesTest, AContainersProcessesAreAGroupOfTheirOwn) {
  testing::TempDir dir;
  const std::string id(64, 'c');
  const auto process = [&dir](int pid, const std::string& cgroup) {
    LayOutPython(dir, pid, cgroup);
  };
  process(100, "0::/system.slice/docker-" + id + ".scope\n");
  process(101, "0::/system.slice/docker-" + id + ".scope\n");
  process(200, "0::/user.slice/user-998.slice\n");
  ProcessScanOptions options;
  options.proc_dir = dir.Sub("proc");
  options.runtime_sockets.clear();
  std::vector<std::string> errors;
  const auto groups = ScanProcessPrivileges(options, {{998, "aiops"}}, nullptr, &errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(groups.size(), 2u);
  const ProcessPrivilege* in_container = WithPid(groups, 100);
  ASSERT_NE(in_container, nullptr);
  EXPECT_EQ(in_container->container_id, id);
  EXPECT_EQ(in_container->processes, 2u);
  EXPECT_EQ(in_container->pids, (std::vector<uint32_t>{100, 101}));
  EXPECT_EQ(in_container->user, "aiops");
  const ProcessPrivilege* on_host = WithPid(groups, 200);
  ASSERT_NE(on_host, nullptr);
  EXPECT_EQ(on_host->container_id, "");
}

// A process of a Kubernetes pod (its cgroup under the kubelet's tree, in a /proc laid out
// in a temp dir) carries its pod's service account, read from the token the kubelet mounts
// (in a node's files laid out beside it); the same program outside the pod does not, and a
// pod whose token is missing has none.
TEST(ProcessPrivilegesTest, AKubernetesPodsProcessesCarryTheirServiceAccount) {
  TempTree node;
  RootedHostFiles files(node.root());
  testing::TempDir dir;
  const std::string uid = "3a1f5c2e-8b7d-4e2a-9c1f-0123456789ab";
  const std::string bare = "5b2e6d3f-9c8e-4f3b-8d2a-123456789abc";
  const auto process = [&dir](int pid, const std::string& cgroup) {
    LayOutPython(dir, pid, cgroup);
  };
  const auto pod_cgroup = [](const std::string& pod_uid, char container) {
    std::string u = pod_uid;
    std::replace(u.begin(), u.end(), '-', '_');
    return "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u +
           ".slice/cri-containerd-" + std::string(64, container) + ".scope\n";
  };
  process(100, pod_cgroup(uid, 'c'));
  process(101, pod_cgroup(uid, 'c'));
  process(200, "0::/user.slice/user-998.slice\n");
  process(300, pod_cgroup(bare, 'd'));
  node.Write("/var/log/pods/payments_api-7d9f_" + uid + "/api/0.log", "");
  node.Write("/var/lib/kubelet/pods/" + uid +
                 "/volumes/kubernetes.io~projected/kube-api-access-4x2q/token",
             testing::ServiceAccountToken("payments", "api-runner"));
  node.Write("/var/log/pods/payments_batch-1_" + bare + "/batch/0.log", "");  // no token
  ProcessScanOptions options;
  options.proc_dir = dir.Sub("proc");
  options.runtime_sockets.clear();
  PodDirectory pods(files);
  std::vector<std::string> errors;
  const auto groups = ScanProcessPrivileges(options, {{998, "aiops"}}, &pods, &errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(groups.size(), 3u);
  const ProcessPrivilege* in_pod = WithPid(groups, 100);
  ASSERT_NE(in_pod, nullptr);
  EXPECT_EQ(in_pod->k8s_service_account, "payments/api-runner");
  EXPECT_EQ(in_pod->container_id, std::string(64, 'c'));
  EXPECT_EQ(in_pod->processes, 2u);
  ASSERT_NE(WithPid(groups, 200), nullptr);
  EXPECT_EQ(WithPid(groups, 200)->k8s_service_account, "");
  ASSERT_NE(WithPid(groups, 300), nullptr);
  EXPECT_EQ(WithPid(groups, 300)->k8s_service_account, "");
  // Without the node's pods, none is named.
  EXPECT_EQ(WithPid(ScanProcessPrivileges(options, {}, nullptr, &errors), 100)->k8s_service_account,
            "");
}

TEST(ProcessPrivilegesTest, AProcDirectoryThatCannotBeReadIsAnError) {
  ProcessScanOptions options;
  options.proc_dir = "/nonexistent-proc";
  std::vector<std::string> errors;
  EXPECT_TRUE(ScanProcessPrivileges(options, {}, nullptr, &errors).empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/nonexistent-proc"), std::string::npos) << errors[0];
}

TEST(ProcessPrivilegesTest, GroupsBeyondTheLimitAreCountedNotListed) {
  ProcessScanOptions options;
  options.max_groups = 1;
  options.runtime_sockets.clear();
  std::vector<std::string> errors;
  const auto groups = ScanProcessPrivileges(options, {}, nullptr, &errors);
  EXPECT_EQ(groups.size(), 1u);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.back().find("beyond 1 not listed"), std::string::npos) << errors.back();
}

}  // namespace
}  // namespace tripline::sensor
