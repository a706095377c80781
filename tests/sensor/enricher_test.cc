#include "sensor/enricher.h"

#include <gtest/gtest.h>

#include "sensor/host_identity.h"
#include "tests/sensor/kube_token.h"
#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr char kDockerId[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

class EnricherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.Write("/etc/passwd",
                "root:x:0:0:root:/root:/bin/bash\n"
                "alice:x:1001:1001::/home/alice:/bin/bash\n"
                "this line is malformed\n");
    tree_.Write("/etc/group", "root:x:0:\nalice:x:1001:\n");
    tree_.Write("/etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
    AddProcess(100, 1, 5000, "/usr/bin/cat", "0::/user.slice/session-1.scope\n");
    AddProcess(200, 1, 6000, "/usr/bin/nginx",
               std::string("0::/system.slice/docker-") + kDockerId + ".scope\n");
  }

  void AddProcess(uint32_t pid, uint32_t ppid, uint64_t start, const std::string& exe,
                  const std::string& cgroup) {
    std::string dir = "/proc/" + std::to_string(pid);
    tree_.Write(dir + "/stat", std::to_string(pid) + " (p) S " + std::to_string(ppid) +
                                   " 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " + std::to_string(start) +
                                   " 0 0\n");
    tree_.Symlink(exe, dir + "/exe");
    tree_.Write(dir + "/cgroup", cgroup);
  }

  Enricher MakeEnricher() {
    EnricherOptions options;
    options.identity = {"hosta", "3d1219c7c4c5404aaa1f6d2a48adfda4"};
    return Enricher(options, files_, files_);
  }

  static Event FileEvent(uint32_t tgid, uint32_t uid, uint32_t login_uid) {
    Event e;
    e.process.pid = e.process.tgid = tgid;
    e.process.uid = uid;
    e.process.login_uid = login_uid;
    e.body = FileOpenEvent{};
    return e;
  }

  TempTree tree_;
  RootedHostFiles files_{tree_.root()};
};

TEST_F(EnricherTest, NamesHostExeAndContainer) {
  Enricher enricher = MakeEnricher();
  Event e = FileEvent(100, 0, 1001);
  enricher.Enrich(&e, 0);
  EXPECT_EQ(e.host, "hosta");
  EXPECT_EQ(e.host_id, "3d1219c7c4c5404aaa1f6d2a48adfda4");
  EXPECT_EQ(e.process.user, "root");
  EXPECT_EQ(e.process.login_user, "alice");
  EXPECT_EQ(e.process.exe, "/usr/bin/cat");
  EXPECT_EQ(e.process.container_id, "");

  Event c = FileEvent(200, 1001, kUnsetId);
  c.process.cgroup_id = 77;
  enricher.Enrich(&c, 0);
  EXPECT_EQ(c.process.user, "alice");
  EXPECT_EQ(c.process.login_user, "");
  EXPECT_EQ(c.process.exe, "/usr/bin/nginx");
  EXPECT_EQ(c.process.container_id, kDockerId);

  // Unknown uid: no name, and no crash for a process that is already gone.
  Event gone = FileEvent(999, 4242, kUnsetId);
  enricher.Enrich(&gone, 0);
  EXPECT_EQ(gone.process.user, "");
  EXPECT_EQ(gone.process.exe, "");
}

TEST_F(EnricherTest, NamesTheKubernetesPodOfAProcess) {
  const std::string uid = "3a1f5c2e-8b7d-4e2a-9c1f-0123456789ab";
  const std::string cid(64, 'c');
  AddProcess(300, 1, 7000, "/usr/bin/python3",
             "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
             "3a1f5c2e_8b7d_4e2a_9c1f_0123456789ab.slice/cri-containerd-" +
                 cid + ".scope\n");
  tree_.Write("/var/log/pods/payments_api-7d9f_" + uid + "/api/0.log", "");
  // The token the kubelet mounts names the pod's service account.
  tree_.Write("/var/lib/kubelet/pods/" + uid +
                  "/volumes/kubernetes.io~projected/kube-api-access-4x2q/token",
              testing::ServiceAccountToken("payments", "api-runner"));
  Enricher enricher = MakeEnricher();
  Event e = FileEvent(300, 0, kUnsetId);
  e.process.cgroup_id = 88;
  enricher.Enrich(&e, 0);
  EXPECT_EQ(e.process.container_id, cid);
  EXPECT_EQ(e.process.k8s_pod_uid, uid);
  EXPECT_EQ(e.process.k8s_namespace, "payments");
  EXPECT_EQ(e.process.k8s_pod, "api-7d9f");
  EXPECT_EQ(e.process.k8s_node, "hosta");
  EXPECT_EQ(e.process.k8s_service_account, "api-runner");
  // A process outside any pod gets none of it.
  Event h = FileEvent(100, 0, kUnsetId);
  enricher.Enrich(&h, 0);
  EXPECT_EQ(h.process.k8s_pod_uid, "");
  EXPECT_EQ(h.process.k8s_node, "");
  EXPECT_EQ(h.process.k8s_service_account, "");
}

TEST_F(EnricherTest, ReportsMalformedAccountLinesOncePerLoad) {
  Enricher enricher = MakeEnricher();
  Event e = FileEvent(100, 0, kUnsetId);
  enricher.Enrich(&e, 0);
  std::vector<std::string> errors;
  ASSERT_TRUE(enricher.TakeAccountErrors(&errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "/etc/passwd:3: expected 7 fields, got 1");
  EXPECT_FALSE(enricher.TakeAccountErrors(&errors));
}

TEST_F(EnricherTest, RereadsPasswdWhenItChanges) {
  Enricher enricher = MakeEnricher();
  Event e = FileEvent(100, 1002, kUnsetId);
  enricher.Enrich(&e, 0);
  EXPECT_EQ(e.process.user, "");
  tree_.Write("/etc/passwd",
              "root:x:0:0:root:/root:/bin/bash\nbob:x:1002:1002::/home/bob:/bin/sh\n"
              "carol:x:1003:1003::/home/carol:/bin/sh\n");
  // Within the re-check interval the cached table is used...
  Event again = FileEvent(100, 1002, kUnsetId);
  enricher.Enrich(&again, kSecond / 2);
  EXPECT_EQ(again.process.user, "");
  // ...after it, the change (size and mtime differ) is noticed.
  Event later = FileEvent(100, 1002, kUnsetId);
  enricher.Enrich(&later, 2 * kSecond);
  EXPECT_EQ(later.process.user, "bob");
}

TEST_F(EnricherTest, ExecAndPidReuseRefreshTheProcessCache) {
  Enricher enricher = MakeEnricher();
  Event first = FileEvent(100, 0, kUnsetId);
  enricher.Enrich(&first, 0);
  EXPECT_EQ(first.process.exe, "/usr/bin/cat");

  // The process execs another program: the exec event itself resolves the new image.
  tree_.Symlink("/usr/bin/less", "/proc/100/exe");
  Event exec;
  exec.process.pid = exec.process.tgid = 100;
  exec.body = ExecEvent{};
  enricher.Enrich(&exec, kSecond);
  EXPECT_EQ(exec.process.exe, "/usr/bin/less");

  // The pid is reused by a process started later; noticed at re-validation.
  AddProcess(100, 1, 9999, "/usr/bin/vim", "0::/\n");
  Event reused = FileEvent(100, 0, kUnsetId);
  enricher.Enrich(&reused, 30 * kSecond);
  EXPECT_EQ(reused.process.exe, "/usr/bin/vim");
  EXPECT_EQ(enricher.stats().pid_reuse, 1u);
}

TEST_F(EnricherTest, ExecFilenameStandsInForAnExitedProcess) {
  Enricher enricher = MakeEnricher();
  Event exec;
  exec.process.pid = exec.process.tgid = 555;  // not in /proc: already exited
  ExecEvent body;
  body.filename = "/usr/bin/id";
  exec.body = body;
  enricher.Enrich(&exec, 0);
  EXPECT_EQ(exec.process.exe, "/usr/bin/id");
  Event open = FileEvent(555, 0, kUnsetId);
  enricher.Enrich(&open, 1);
  EXPECT_EQ(open.process.exe, "/usr/bin/id");
  // A relative filename says nothing reliable about the binary.
  Event rel;
  rel.process.pid = rel.process.tgid = 556;
  body.filename = "./run";
  rel.body = body;
  enricher.Enrich(&rel, 2);
  EXPECT_EQ(rel.process.exe, "");
}

TEST(HostIdentityTest, HostAndUtsScopes) {
  TempTree tree;
  tree.Write("/etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
  RootedHostFiles files(tree.root());
  auto host = ResolveHostIdentity(Scope::kHost, "", "vm", files);
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->host, "vm");
  EXPECT_EQ(host->host_id, "3d1219c7c4c5404aaa1f6d2a48adfda4");
  auto named = ResolveHostIdentity(Scope::kHost, "web-1", "vm", files);
  EXPECT_EQ(named->host, "web-1");

  auto a = ResolveHostIdentity(Scope::kUts, "", "hosta", files);
  auto b = ResolveHostIdentity(Scope::kUts, "", "hostb", files);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->host, "hosta");
  EXPECT_EQ(a->host_id.size(), 32u);
  EXPECT_NE(a->host_id, b->host_id);
  EXPECT_NE(a->host_id, host->host_id);
  // Stable: the same inputs give the same id on every run.
  EXPECT_EQ(a->host_id, ResolveHostIdentity(Scope::kUts, "", "hosta", files)->host_id);
  EXPECT_EQ(StableHexId(""), "6c62272e07bb014262b821756295c58d");

  EXPECT_FALSE(ResolveHostIdentity(Scope::kHost, "", "", files).ok());
  tree.Remove("/etc/machine-id");
  auto no_machine_id = ResolveHostIdentity(Scope::kHost, "", "vm", files);
  ASSERT_TRUE(no_machine_id.ok());
  EXPECT_EQ(no_machine_id->host_id, StableHexId("/uts/vm"));
}

}  // namespace
}  // namespace tripline::sensor
