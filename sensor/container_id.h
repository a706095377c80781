// Container ids from cgroup paths, as container runtimes name their cgroups.
//
//   /system.slice/docker-<64 hex>.scope                 docker, systemd driver
//   /docker/<64 hex>                                    docker, cgroupfs driver
//   /kubepods.slice/.../cri-containerd-<64 hex>.scope   containerd (CRI), systemd driver
//   /kubepods/burstable/pod<uid>/<64 hex>               kubelet, cgroupfs driver
//   /system.slice/containerd.service/...:cri-containerd:<64 hex>
//   /machine.slice/libpod-<64 hex>.scope                podman
//   /kubepods.slice/.../crio-<64 hex>.scope             CRI-O
//
// The conmon monitors of podman and CRI-O (libpod-conmon-*, crio-conmon-*) are not inside
// the container and get no id. Pure functions.
#pragma once

#include <string>
#include <string_view>

namespace tripline::sensor {

// The container id (lower-case hex, as the runtime prints it) in one cgroup path, or "".
std::string ContainerIdFromCgroupPath(std::string_view path);

// The container id in the text of /proc/<pid>/cgroup ("hierarchy:controllers:path" lines),
// preferring the unified (v2, "0::") line and falling back to v1 hierarchies; "" when none.
std::string ContainerIdFromProcCgroup(std::string_view text);

// The path of the unified ("0::") line of /proc/<pid>/cgroup, or "" when there is none.
std::string_view UnifiedCgroupPath(std::string_view text);

}  // namespace tripline::sensor
