// ProcessPrivileges: what the host's running processes may do, for the posture snapshot.
//
// For every process with an executable (kernel threads have none): its effective uid,
// effective capabilities (CapEff of /proc/PID/status), the container runtime sockets
// (Docker, containerd, ...) it may connect to and its container (/proc/PID/cgroup, as
// events name it). Processes of one executable with the same uid, capabilities, reachable
// sockets, container (and Kubernetes service account) form one ProcessPrivilege, counted, with up
// to four pids: a host's hundreds of processes come to a few dozen entries, and the aggregator
// judges the ones of declared agents, service accounts and MCP servers
// (aggregator/audit/posture_findings.h).
//
// Reaching a socket: connect(2) on a Unix socket needs write permission on the socket
// file and search permission on every directory above it. Each is judged for the
// process's own credentials (effective uid and gid, supplementary groups; uid 0 or
// CAP_DAC_OVERRIDE passes the mode bits, CAP_DAC_READ_SEARCH the directories), on the
// path as the process sees it: resolved inside /proc/PID/root (openat2 RESOLVE_IN_ROOT),
// so a container's processes are judged on their own mounts, a socket mounted into a
// container included.
//
// What cannot be read (a process gone between listing and reading, /proc mounted with
// hidepid) is skipped; other failures become entries of `errors`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/event.h"
#include "sensor/kube_pod.h"

namespace tripline::sensor {

// Docker's and containerd's sockets where Debian, Ubuntu, RHEL and Kubernetes nodes put
// them, and Podman's rootful one.
const std::vector<std::string>& DefaultRuntimeSockets();

struct ProcessScanOptions {
  std::string proc_dir = "/proc";
  std::vector<std::string> runtime_sockets = DefaultRuntimeSockets();
  // Beyond this many groups the rest are counted in `errors`, not listed.
  size_t max_groups = 512;
};

// The credentials of /proc/PID/status that decide what a process may do.
struct ProcessCredentials {
  uint32_t uid = 0;  // effective
  uint32_t gid = 0;  // effective
  std::vector<uint32_t> groups;
  uint64_t cap_effective = 0;
};

// Parses the Uid:, Gid:, Groups: and CapEff: lines of /proc/PID/status. InvalidArgument
// naming the line when one is missing or malformed.
Result<ProcessCredentials> ParseProcStatus(std::string_view text);

// Whether `who` may search (directory) or write (socket) a file of `mode`, `owner_uid`
// and `owner_gid`, by the kernel's rules for a process in the initial user namespace.
bool MaySearch(const ProcessCredentials& who, uint32_t mode, uint32_t owner_uid,
               uint32_t owner_gid);
bool MayWrite(const ProcessCredentials& who, uint32_t mode, uint32_t owner_uid, uint32_t owner_gid);

// The runtime sockets of `options` process `pid` may connect to, as it sees them.
std::vector<std::string> ReachableSockets(const ProcessScanOptions& options, int pid,
                                          const ProcessCredentials& who);

// Every process of `options.proc_dir`, grouped (see the file comment). `user_names` maps
// uids to account names (the snapshot's accounts). With `pods`, a process in a Kubernetes
// pod (its cgroup under the kubelet's tree) carries the pod's service account.
std::vector<ProcessPrivilege> ScanProcessPrivileges(
    const ProcessScanOptions& options, const std::map<uint32_t, std::string>& user_names,
    PodDirectory* pods, std::vector<std::string>* errors);

}  // namespace tripline::sensor
