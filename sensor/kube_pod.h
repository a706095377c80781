// Kubernetes pods from what the kubelet leaves on a node: the pod uid and QoS class in a
// process's cgroup path, the pod's namespace and name in the kubelet's log directory
// (/var/log/pods/<namespace>_<name>_<uid>/<container>/), and its service account in the
// token the kubelet mounts into the pod
// (/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~projected/<volume>/token, or a legacy
// token Secret under kubernetes.io~secret/): the JWT's "sub" claim,
// system:serviceaccount:<namespace>:<name>. Only the claims are decoded; the token is never
// kept, logged or sent, and its signature is not checked (the file is the kubelet's own,
// on this node). A pod that mounts no token (automountServiceAccountToken: false) has no
// service account here.
//
// Cgroup paths the kubelet makes (cgroupfs driver, then systemd driver, where the pod uid's
// dashes become underscores; a --cgroup-root such as kind's /kubelet.slice may come first):
//
//   /kubepods/pod<uid>/<64 hex>                                           guaranteed
//   /kubepods/burstable/pod<uid>/<64 hex>                                 burstable
//   /kubepods/besteffort/pod<uid>/crio-<64 hex>                           CRI-O
//   /kubepods.slice/kubepods-pod<u_i_d>.slice/cri-containerd-<64 hex>.scope
//   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<u_i_d>.slice/crio-<64
//   hex>.scope /kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/
//       kubelet-kubepods-besteffort-pod<u_i_d>.slice/cri-containerd-<64 hex>.scope
//
// Pure functions, except PodDirectory::Refresh, which lists one directory of the host.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sensor/host_files.h"

namespace tripline::sensor {

struct KubePodRef {
  std::string pod_uid;       // 8-4-4-4-12 lower-case hex, with dashes
  std::string qos;           // "guaranteed", "burstable" or "besteffort"
  std::string container_id;  // as ContainerIdFromCgroupPath, "" for the pod's own cgroup
};

// The pod a cgroup path belongs to, or nullopt when it is not under the kubelet's tree.
std::optional<KubePodRef> KubePodFromCgroupPath(std::string_view path);

struct KubePodName {
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;
  std::string service_account;  // "" when the pod mounts no token
};

struct KubeServiceAccount {
  std::string sa_namespace;
  std::string name;
};

// The service account a Kubernetes service-account token (a JWT) names in its "sub"
// claim; nullopt for anything else (not three base64url parts, claims that are not a JSON
// object, another subject, names that are not DNS names).
std::optional<KubeServiceAccount> ServiceAccountFromToken(std::string_view jwt);

// "<namespace>_<name>_<uid>", a directory name under /var/log/pods; nullopt otherwise.
std::optional<KubePodName> ParsePodLogDirName(std::string_view dir_name);

// Pod uid -> namespace and name, from the kubelet's log directory on the node.
class PodDirectory {
 public:
  // `files` (the host's files, host_root aware) must outlive the directory.
  explicit PodDirectory(const HostFiles& files, std::string log_dir = "/var/log/pods",
                        std::string kubelet_pods_dir = "/var/lib/kubelet/pods")
      : files_(files),
        log_dir_(std::move(log_dir)),
        kubelet_pods_dir_(std::move(kubelet_pods_dir)) {}
  // Lists the directory again (a pod that started since is found; one that ended is kept
  // until the next refresh). Returns the number of pods known; 0 when it does not exist.
  size_t Refresh();
  // The pod of `uid`, refreshing once when it is unknown.
  const KubePodName* Find(const std::string& uid);

 private:
  const HostFiles& files_;
  // The service account of the pod from its mounted token, "" when none is readable.
  std::string ServiceAccountOf(const KubePodName& pod) const;

  std::string log_dir_;
  std::string kubelet_pods_dir_;
  std::map<std::string, KubePodName> by_uid_;
};

}  // namespace tripline::sensor
