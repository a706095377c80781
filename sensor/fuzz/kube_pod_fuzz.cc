// Fuzzes the kubelet cgroup-path and pod-log-directory parsers and the service-account
// token reader (sensor/kube_pod.h) with arbitrary bytes: no crash, and what they return is
// well formed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sensor/kube_pod.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ref = tripline::sensor::KubePodFromCgroupPath(text)) {
    if (ref->pod_uid.size() != 36) std::abort();
    if (ref->qos != "guaranteed" && ref->qos != "burstable" && ref->qos != "besteffort") {
      std::abort();
    }
    if (ref->container_id.size() > 64) std::abort();
  }
  if (auto name = tripline::sensor::ParsePodLogDirName(text)) {
    if (name->pod_uid.size() != 36 || name->pod_namespace.empty() || name->pod_name.empty()) {
      std::abort();
    }
    if (name->pod_namespace.size() + name->pod_name.size() + 38 != size) std::abort();
  }
  if (auto sa = tripline::sensor::ServiceAccountFromToken(text)) {
    if (sa->sa_namespace.empty() || sa->sa_namespace.size() > 63 || sa->name.empty() ||
        sa->name.find_first_of(":/") != std::string::npos) {
      std::abort();
    }
  }
  return 0;
}
