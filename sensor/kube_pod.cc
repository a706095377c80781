#include "sensor/kube_pod.h"

#include <nlohmann/json.hpp>

#include "sensor/container_id.h"

namespace tripline::sensor {
namespace {

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// 8-4-4-4-12 lower-case hex with `sep` between the groups.
bool IsUid(std::string_view s, char sep) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != sep : !IsLowerHex(s[i])) return false;
  }
  return true;
}

std::string Dashed(std::string_view uid) {
  std::string out(uid);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

// "pod<uid>" (cgroupfs) or "...-pod<u_i_d>.slice" (systemd): the uid with dashes, or "".
std::string PodUidInComponent(std::string_view c) {
  if (c.starts_with("pod") && IsUid(c.substr(3), '-')) return std::string(c.substr(3));
  if (c.ends_with(".slice")) {
    c.remove_suffix(6);
    const size_t at = c.rfind("-pod");
    if (at != std::string_view::npos &&
        c.substr(0, at).find("kubepods") != std::string_view::npos &&
        IsUid(c.substr(at + 4), '_')) {
      return Dashed(c.substr(at + 4));
    }
  }
  return {};
}

// The QoS class a component names, or "".
std::string_view QosInComponent(std::string_view c) {
  for (std::string_view q : {"burstable", "besteffort"}) {
    if (c == q) return q;
    if (c.ends_with(".slice") && c.find("kubepods") != std::string_view::npos &&
        c.substr(0, c.size() - 6).ends_with(q)) {
      return q;
    }
  }
  return {};
}

// DNS-1123 label or subdomain: what namespaces and pod names are made of.
bool IsDnsName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

}  // namespace

std::optional<KubePodRef> KubePodFromCgroupPath(std::string_view path) {
  KubePodRef ref;
  bool in_kubepods = false;
  std::string_view qos;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view c = path.substr(start, end - start);
    start = end + 1;
    // containerd's systemd driver without scope units: "<pod slice>:cri-containerd:<id>".
    c = c.substr(0, c.find(':'));
    if (c.empty()) continue;
    if (c == "kubepods" ||
        (c.ends_with(".slice") && c.find("kubepods") != std::string_view::npos)) {
      in_kubepods = true;
    }
    if (!in_kubepods) continue;
    if (std::string_view q = QosInComponent(c); !q.empty() && ref.pod_uid.empty()) qos = q;
    if (ref.pod_uid.empty()) {
      std::string uid = PodUidInComponent(c);
      if (!uid.empty()) {
        ref.pod_uid = std::move(uid);
        // "kubepods-burstable-pod<uid>.slice" names the class itself (no parent slice in
        // containerd's flat systemd layout).
        const std::string_view head = c.substr(0, c.rfind("-pod"));
        if (qos.empty() && c.ends_with(".slice")) {
          for (std::string_view q : {"burstable", "besteffort"}) {
            if (head.ends_with(q)) qos = q;
          }
        }
      }
    }
  }
  if (ref.pod_uid.empty()) return std::nullopt;
  ref.qos = qos.empty() ? "guaranteed" : std::string(qos);
  ref.container_id = ContainerIdFromCgroupPath(path);
  return ref;
}

std::optional<KubePodName> ParsePodLogDirName(std::string_view dir_name) {
  const size_t first = dir_name.find('_');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t last = dir_name.rfind('_');
  if (last == first) return std::nullopt;
  KubePodName n;
  std::string_view ns = dir_name.substr(0, first);
  std::string_view name = dir_name.substr(first + 1, last - first - 1);
  std::string_view uid = dir_name.substr(last + 1);
  if (!IsDnsName(ns) || ns.size() > 63 || !IsDnsName(name) || !IsUid(uid, '-')) {
    return std::nullopt;
  }
  n.pod_namespace = std::string(ns);
  n.pod_name = std::string(name);
  n.pod_uid = std::string(uid);
  return n;
}

namespace {

// RFC 4648 base64url, padding optional; nullopt on any other character.
std::optional<std::string> Base64UrlDecode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t bits = 0;
  int have = 0;
  for (const char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-') {
      v = 62;
    } else if (c == '_') {
      v = 63;
    } else {
      return std::nullopt;
    }
    bits = (bits << 6) | static_cast<uint32_t>(v);
    have += 6;
    if (have >= 8) {
      have -= 8;
      out.push_back(static_cast<char>((bits >> have) & 0xff));
    }
  }
  if (have >= 6) return std::nullopt;  // one character alone cannot end a quantum
  return out;
}

constexpr size_t kMaxTokenBytes = 16384;
constexpr std::string_view kSubjectPrefix = "system:serviceaccount:";

}  // namespace

std::optional<KubeServiceAccount> ServiceAccountFromToken(std::string_view jwt) {
  while (!jwt.empty() && (jwt.back() == '\n' || jwt.back() == '\r' || jwt.back() == ' ')) {
    jwt.remove_suffix(1);
  }
  if (jwt.size() > kMaxTokenBytes) return std::nullopt;
  const size_t first = jwt.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  // All three parts must be base64url; only the claims are used.
  if (!Base64UrlDecode(jwt.substr(0, first)) || !Base64UrlDecode(jwt.substr(second + 1))) {
    return std::nullopt;
  }
  std::optional<std::string> claims = Base64UrlDecode(jwt.substr(first + 1, second - first - 1));
  if (!claims) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(*claims, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("sub") || !j["sub"].is_string()) return std::nullopt;
  const std::string& sub = j["sub"].get_ref<const std::string&>();
  if (sub.rfind(kSubjectPrefix, 0) != 0) return std::nullopt;
  const std::string_view rest = std::string_view(sub).substr(kSubjectPrefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  KubeServiceAccount sa{std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
  if (sa.sa_namespace.size() > 63 || !IsDnsName(sa.sa_namespace) || sa.name.size() > 253 ||
      !IsDnsName(sa.name)) {
    return std::nullopt;
  }
  return sa;
}

std::string PodDirectory::ServiceAccountOf(const KubePodName& pod) const {
  const std::string volumes = kubelet_pods_dir_ + "/" + pod.pod_uid + "/volumes";
  for (const char* plugin : {"kubernetes.io~projected", "kubernetes.io~secret"}) {
    const std::string dir = volumes + "/" + plugin;
    Result<std::vector<std::string>> names = files_.ListDir(dir);
    if (!names.ok()) continue;
    for (const std::string& volume : *names) {
      Result<std::string> token = files_.ReadFile(dir + "/" + volume + "/token", kMaxTokenBytes);
      if (!token.ok()) continue;
      std::optional<KubeServiceAccount> sa = ServiceAccountFromToken(*token);
      // A pod's service account is of its own namespace; a token of another is not its own.
      if (sa && sa->sa_namespace == pod.pod_namespace) return sa->name;
    }
  }
  return "";
}

size_t PodDirectory::Refresh() {
  Result<std::vector<std::string>> names = files_.ListDir(log_dir_);
  if (!names.ok()) return by_uid_.size();
  std::map<std::string, KubePodName> fresh;
  for (const std::string& d : *names) {
    std::optional<KubePodName> n = ParsePodLogDirName(d);
    if (!n) continue;
    // A pod's service account does not change; its token is read once.
    auto known = by_uid_.find(n->pod_uid);
    n->service_account = known != by_uid_.end() && !known->second.service_account.empty()
                             ? known->second.service_account
                             : ServiceAccountOf(*n);
    fresh[n->pod_uid] = std::move(*n);
  }
  by_uid_ = std::move(fresh);
  return by_uid_.size();
}

const KubePodName* PodDirectory::Find(const std::string& uid) {
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end()) {
    Refresh();
    it = by_uid_.find(uid);
  }
  return it == by_uid_.end() ? nullptr : &it->second;
}

}  // namespace tripline::sensor
