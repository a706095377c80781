// Kubernetes pods from the kubelet's cgroup paths and log directories (sensor/kube_pod.h),
// against the path forms the kubelet makes with the cgroupfs and systemd drivers, under
// containerd and CRI-O, with and without a --cgroup-root.
#include "sensor/kube_pod.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/sensor/kube_token.h"
#include "tests/support/temp_dir.h"

namespace tripline::sensor {
namespace {

constexpr const char* kUid = "3a1f5c2e-8b7d-4e2a-9c1f-0123456789ab";
constexpr const char* kUidUnderscored = "3a1f5c2e_8b7d_4e2a_9c1f_0123456789ab";
constexpr const char* kCid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Case {
  std::string path;
  std::string qos;
  std::string container_id;
};

TEST(KubePodTest, KubeletCgroupPathForms) {
  const std::string uid = kUid, us = kUidUnderscored, cid = kCid;
  const std::vector<Case> cases = {
      // cgroupfs driver (containerd, CRI-O, docker-shim)
      {"/kubepods/pod" + uid + "/" + cid, "guaranteed", cid},
      {"/kubepods/burstable/pod" + uid + "/" + cid, "burstable", cid},
      {"/kubepods/besteffort/pod" + uid + "/" + cid, "besteffort", cid},
      {"/kubepods/burstable/pod" + uid + "/crio-" + cid, "burstable", cid},
      // the pod's own cgroup (its sandbox shares it on some runtimes)
      {"/kubepods/besteffort/pod" + uid, "besteffort", ""},
      // systemd driver, containerd
      {"/kubepods.slice/kubepods-pod" + us + ".slice/cri-containerd-" + cid + ".scope",
       "guaranteed", cid},
      {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us +
           ".slice/cri-containerd-" + cid + ".scope",
       "burstable", cid},
      {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us +
           ".slice/cri-containerd-" + cid + ".scope",
       "besteffort", cid},
      // systemd driver, CRI-O (and its conmon, which is not in the container)
      {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us + ".slice/crio-" +
           cid + ".scope",
       "burstable", cid},
      {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us +
           ".slice/crio-conmon-" + cid + ".scope",
       "burstable", ""},
      // systemd driver, containerd without a scope unit (systemd_cgroup = false)
      {"/system.slice/containerd.service/kubepods-burstable-pod" + us +
           ".slice:cri-containerd:" + cid,
       "burstable", cid},
      // a --cgroup-root (kind, k3s in a container): the kubelet's tree below it
      {"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
       "kubelet-kubepods-besteffort-pod" +
           us + ".slice/cri-containerd-" + cid + ".scope",
       "besteffort", cid},
      {"/kubelet/kubepods/burstable/pod" + uid + "/" + cid, "burstable", cid},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    std::optional<KubePodRef> ref = KubePodFromCgroupPath(c.path);
    ASSERT_TRUE(ref.has_value());
    EXPECT_EQ(ref->pod_uid, kUid);
    EXPECT_EQ(ref->qos, c.qos);
    EXPECT_EQ(ref->container_id, c.container_id);
  }
}

TEST(KubePodTest, NotAPod) {
  const std::string uid = kUid, us = kUidUnderscored, cid = kCid;
  for (const std::string& p : std::vector<std::string>{
           "", "/", "/user.slice/user-1000.slice/session-3.scope",
           "/system.slice/docker-" + cid + ".scope", "/docker/" + cid,
           // a pod uid outside the kubelet's tree is not trusted
           "/system.slice/pod" + uid + "/" + cid, "/kubepods/burstable",
           "/kubepods.slice/kubepods-burstable.slice",
           // malformed uids
           "/kubepods/burstable/pod3a1f5c2e-8b7d-4e2a-9c1f-0123456789a/" + cid,
           "/kubepods/burstable/pod3A1F5C2E-8B7D-4E2A-9C1F-0123456789AB/" + cid,
           "/kubepods/burstable/pod" + us + "/" + cid,
           "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice"}) {
    SCOPED_TRACE(p);
    EXPECT_FALSE(KubePodFromCgroupPath(p).has_value());
  }
}

TEST(KubePodTest, PodLogDirectoryNames) {
  auto n = ParsePodLogDirName(std::string("kube-system_coredns-5d78c9869d-x7k2p_") + kUid);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->pod_namespace, "kube-system");
  EXPECT_EQ(n->pod_name, "coredns-5d78c9869d-x7k2p");
  EXPECT_EQ(n->pod_uid, kUid);
  n = ParsePodLogDirName(std::string("default_web.example_") + kUid);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->pod_name, "web.example");
  for (const std::string& bad : std::vector<std::string>{
           "", "default", std::string("default_") + kUid, std::string("_web_") + kUid,
           std::string("default__") + kUid, "default_web_not-a-uid",
           std::string("Default_web_") + kUid, std::string("default_we/b_") + kUid,
           std::string("a_b_c_") + kUid}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParsePodLogDirName(bad).has_value());
  }
}

TEST(KubePodTest, PodDirectoryFromTheKubeletLogTree) {
  testing::TempDir root;
  const std::string logs = root.path() + "/var/log/pods";
  std::filesystem::create_directories(logs + "/kube-system_coredns-1_" + kUid + "/coredns");
  std::filesystem::create_directories(logs + "/not-a-pod");
  RootedHostFiles files(root.path());
  PodDirectory pods(files);
  EXPECT_EQ(pods.Refresh(), 1u);
  const KubePodName* n = pods.Find(kUid);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->pod_namespace, "kube-system");
  EXPECT_EQ(n->pod_name, "coredns-1");
  // A pod started later is found by the refresh a miss makes.
  const std::string other = "11111111-2222-3333-4444-555555555555";
  EXPECT_EQ(pods.Find(other), nullptr);
  std::filesystem::create_directories(logs + "/default_web-0_" + other);
  n = pods.Find(other);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->pod_name, "web-0");
}

TEST(KubePodTest, ServiceAccountFromTheTokensSubject) {
  auto sa = ServiceAccountFromToken(testing::ServiceAccountToken("payments", "api-runner"));
  ASSERT_TRUE(sa.has_value());
  EXPECT_EQ(sa->sa_namespace, "payments");
  EXPECT_EQ(sa->name, "api-runner");
  // The kubelet's file may end with a newline.
  EXPECT_TRUE(ServiceAccountFromToken(testing::ServiceAccountToken("a", "b") + "\n").has_value());
  for (const std::string& bad : std::vector<std::string>{
           "", "abc", "a.b", "a.b.c.d", testing::TokenWithClaims("not json"),
           testing::TokenWithClaims("[1,2]"), testing::TokenWithClaims(R"({"sub":7})"),
           testing::TokenWithClaims(R"({"sub":"system:node:worker-1"})"),
           testing::TokenWithClaims(R"({"sub":"system:serviceaccount:payments"})"),
           testing::TokenWithClaims(R"({"sub":"system:serviceaccount:Pay:x"})"),
           testing::TokenWithClaims(R"({"sub":"system:serviceaccount:p:a/b"})"), "x.!!!!.y",
           testing::ServiceAccountToken("p", "a").replace(2, 1, "*")}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ServiceAccountFromToken(bad).has_value());
  }
}

TEST(KubePodTest, PodDirectoryReadsTheServiceAccountOfTheMountedToken) {
  testing::TempDir root;
  const std::string logs = root.path() + "/var/log/pods";
  const std::string volumes = root.path() + "/var/lib/kubelet/pods/" + kUid + "/volumes";
  std::filesystem::create_directories(logs + "/payments_api-0_" + kUid + "/api");
  // A projected volume without a token, then the kube-api-access volume.
  std::filesystem::create_directories(volumes + "/kubernetes.io~projected/config");
  std::filesystem::create_directories(volumes + "/kubernetes.io~projected/kube-api-access-7x");
  std::ofstream(volumes + "/kubernetes.io~projected/kube-api-access-7x/token")
      << testing::ServiceAccountToken("payments", "api-runner");
  // A pod whose mounted token is of another namespace is not given that account.
  const std::string other = "11111111-2222-3333-4444-555555555555";
  std::filesystem::create_directories(logs + "/default_web-0_" + other);
  const std::string other_secret =
      root.path() + "/var/lib/kubelet/pods/" + other + "/volumes/kubernetes.io~secret/tok";
  std::filesystem::create_directories(other_secret);
  std::ofstream(other_secret + "/token") << testing::ServiceAccountToken("kube-system", "admin");
  RootedHostFiles files(root.path());
  PodDirectory pods(files);
  EXPECT_EQ(pods.Refresh(), 2u);
  ASSERT_NE(pods.Find(kUid), nullptr);
  EXPECT_EQ(pods.Find(kUid)->service_account, "api-runner");
  ASSERT_NE(pods.Find(other), nullptr);
  EXPECT_EQ(pods.Find(other)->service_account, "");
}

}  // namespace
}  // namespace tripline::sensor
