#include "sensor/path_triggers.h"

#include <algorithm>
#include <string_view>

namespace tripline::sensor {
namespace {

// Non-empty components of `dir` ("/etc/pam.d" -> 2).
uint32_t Depth(std::string_view dir) {
  uint32_t n = 0;
  bool in_component = false;
  for (char c : dir) {
    if (c == '/') {
      in_component = false;
    } else if (!in_component) {
      in_component = true;
      ++n;
    }
  }
  return n;
}

}  // namespace

PathTriggers CompilePathTriggers(std::span<const SensitivePath> rules) {
  PathTriggers out;
  auto add = [&out](uint32_t depth, std::string_view name) {
    NameTrigger t{depth, std::string(name)};
    if (std::find(out.triggers.begin(), out.triggers.end(), t) == out.triggers.end()) {
      out.triggers.push_back(std::move(t));
    }
    const uint64_t len_bit = uint64_t{1} << std::min<size_t>(name.size(), 63);
    if (depth > 0) {
      out.depth_mask |= 1u << depth;
      out.dir_len_mask |= len_bit;
    } else {
      out.file_len_mask |= len_bit;
    }
  };
  auto all = [&out](const SensitivePath& rule, const char* reason) {
    if (!out.match_all) {
      out.match_all = true;
      out.why_all =
          std::string(SensitivePathMatchName(rule.match)) + " rule \"" + rule.path + "\" " + reason;
    }
  };
  for (const SensitivePath& rule : rules) {
    const std::string_view path = rule.path;
    const size_t slash = path.rfind('/');
    switch (rule.match) {
      case SensitivePath::Match::kExact:
        if (path.empty() || path.front() != '/') break;  // never a canonical path
        if (path.back() == '/') {
          all(rule, "ends with '/'");
          break;
        }
        add(0, path.substr(slash + 1));
        break;
      case SensitivePath::Match::kSuffix:
        if (slash == std::string_view::npos) {
          all(rule, "names no whole file name");
          break;
        }
        if (slash + 1 == path.size()) {
          all(rule, "ends with '/'");
          break;
        }
        add(0, path.substr(slash + 1));
        break;
      case SensitivePath::Match::kPrefix: {
        if (path.empty() || path.front() != '/') break;  // never a canonical path
        const uint32_t depth = Depth(path.substr(0, slash));
        if (depth == 0) {
          all(rule, "ends inside the first component");
          break;
        }
        if (depth > kMaxTriggerDepth) {
          all(rule, "is deeper than the prefilter looks");
          break;
        }
        const std::string_view dir = path.substr(0, slash);
        add(depth, dir.substr(dir.rfind('/') + 1));
        break;
      }
    }
  }
  return out;
}

}  // namespace tripline::sensor
