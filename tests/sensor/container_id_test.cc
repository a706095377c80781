#include "sensor/container_id.h"

#include <gtest/gtest.h>

namespace tripline::sensor {
namespace {

constexpr char kId[] = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

TEST(ContainerIdTest, CgroupPathTable) {
  const std::string id = kId;
  struct Case {
    std::string path;
    std::string want;
  };
  const Case cases[] = {
      {"/system.slice/docker-" + id + ".scope", id},
      {"/docker/" + id, id},
      {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/"
       "cri-containerd-" +
           id + ".scope",
       id},
      {"/kubepods/burstable/pod0b1c2d3e-aaaa-bbbb-cccc-112233445566/" + id, id},
      {"/kubepods/besteffort/podabc/" + id, id},
      {"/system.slice/containerd.service/kubepods-besteffort-pod12.slice:cri-containerd:" + id, id},
      {"/machine.slice/libpod-" + id + ".scope", id},
      {"/machine.slice/libpod-" + id + ".scope/container", id},
      {"/kubepods.slice/kubepods-pod1.slice/crio-" + id + ".scope", id},
      // Not containers: conmon monitors, the host, user sessions, a bare id outside any
      // runtime's tree, a too-short hex run, upper-case hex.
      {"/machine.slice/libpod-conmon-" + id + ".scope", ""},
      {"/kubepods.slice/crio-conmon-" + id + ".scope", ""},
      {"/", ""},
      {"", ""},
      {"/user.slice/user-1000.slice/session-3.scope", ""},
      {"/system.slice/ssh.service", ""},
      {"/mygroup/" + id, ""},
      {"/system.slice/docker-abc.scope", ""},
      {"/docker/3F4E5D6C7B8A99887766554433221100FFEEDDCCBBAA00112233445566778899", ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ContainerIdFromCgroupPath(c.path), c.want) << c.path;
  }
}

TEST(ContainerIdTest, ProcCgroupPrefersUnifiedAndFallsBackToV1) {
  const std::string id = kId;
  EXPECT_EQ(ContainerIdFromProcCgroup("0::/system.slice/docker-" + id + ".scope\n"), id);
  // Hybrid host: the v2 line is the root, the container shows in a v1 hierarchy.
  EXPECT_EQ(
      ContainerIdFromProcCgroup("12:memory:/docker/" + id + "\n1:cpu:/docker/" + id + "\n0::/\n"),
      id);
  EXPECT_EQ(ContainerIdFromProcCgroup("0::/user.slice\n"), "");
  EXPECT_EQ(ContainerIdFromProcCgroup("garbage without colons\n"), "");
  EXPECT_EQ(UnifiedCgroupPath("4:memory:/x\n0::/a/b\n"), "/a/b");
  EXPECT_EQ(UnifiedCgroupPath("4:memory:/x\n"), "");
}

}  // namespace
}  // namespace tripline::sensor
