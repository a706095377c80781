#include "sensor/container_id.h"

#include "common/text_lines.h"

namespace tripline::sensor {
namespace {

// Runtimes use 64 hex digits; 12 is the shortest id any of them prints, so shorter runs of
// hex (pod uids, slice numbers) are not mistaken for one.
constexpr size_t kMinIdLen = 12;
constexpr size_t kMaxIdLen = 64;

bool IsHexId(std::string_view s) {
  if (s.size() < kMinIdLen || s.size() > kMaxIdLen) return false;
  for (char c : s) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (!hex) return false;
  }
  return true;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The id in one path component, or "".
std::string_view IdInComponent(std::string_view c, bool under_container_tree) {
  if (c.size() > 6 && c.substr(c.size() - 6) == ".scope") c.remove_suffix(6);
  // systemd-driver containerd without a scope unit: "...slice:cri-containerd:<id>".
  size_t colon = c.rfind(':');
  if (colon != std::string_view::npos) {
    std::string_view before = c.substr(0, colon);
    std::string_view id = c.substr(colon + 1);
    if ((before.ends_with(":cri-containerd") || before.ends_with(":docker") ||
         before.ends_with(":crio")) &&
        IsHexId(id)) {
      return id;
    }
    return {};
  }
  for (std::string_view conmon : {"libpod-conmon-", "crio-conmon-"}) {
    if (StartsWith(c, conmon)) return {};
  }
  for (std::string_view prefix : {"docker-", "cri-containerd-", "crio-", "libpod-"}) {
    if (StartsWith(c, prefix)) {
      std::string_view id = c.substr(prefix.size());
      return IsHexId(id) ? id : std::string_view();
    }
  }
  // A bare id is only trusted below a directory a runtime owns; elsewhere a long hex
  // component could be anything (a systemd-nspawn machine, a user's own cgroup).
  if (under_container_tree && c.size() == kMaxIdLen && IsHexId(c)) return c;
  return {};
}

}  // namespace

std::string ContainerIdFromCgroupPath(std::string_view path) {
  bool under_container_tree = false;
  std::string_view found;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view c = path.substr(start, end - start);
    start = end + 1;
    if (c.empty()) continue;
    if (c == "docker" || c == "kubepods" || StartsWith(c, "kubepods") || c == "libpod_parent" ||
        c == "containerd" || c == "crio" || c == "podruntime" || c == "lxc.payload") {
      under_container_tree = true;
    }
    // The deepest id wins: a container nested in a pod's cgroup names the container.
    std::string_view id = IdInComponent(c, under_container_tree);
    if (!id.empty()) found = id;
  }
  return std::string(found);
}

std::string_view UnifiedCgroupPath(std::string_view text) {
  std::string_view unified;
  ForEachLine(text, [&](std::string_view line, size_t) {
    if (StartsWith(line, "0::")) unified = line.substr(3);
    return unified.empty();
  });
  return unified;
}

std::string ContainerIdFromProcCgroup(std::string_view text) {
  std::string id = ContainerIdFromCgroupPath(UnifiedCgroupPath(text));
  if (!id.empty()) return id;
  ForEachLine(text, [&](std::string_view line, size_t) {
    const size_t first = line.find(':');
    if (first == std::string_view::npos) return true;
    const size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) return true;
    id = ContainerIdFromCgroupPath(line.substr(second + 1));
    return id.empty();
  });
  return id;
}

}  // namespace tripline::sensor
