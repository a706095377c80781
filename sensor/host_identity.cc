#include "sensor/host_identity.h"

#include <unistd.h>

#include <cerrno>

namespace tripline::sensor {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsMachineId(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string StableHexId(std::string_view text) {
  // FNV-1a, 128-bit parameters. Not cryptographic: the id only has to be stable and
  // well spread, and it is derived from values that are not secret.
  unsigned __int128 hash =
      (static_cast<unsigned __int128>(0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL;
  const unsigned __int128 prime = (static_cast<unsigned __int128>(1) << 88) + 0x13b;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= prime;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 31; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[static_cast<unsigned>(hash & 0xf)];
    hash >>= 4;
  }
  return out;
}

Result<std::string> LocalHostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return Status::FromErrno(errno, "gethostname");
  return std::string(buf);
}

Result<HostIdentity> ResolveHostIdentity(Scope scope, std::string_view name_override,
                                         std::string_view uts_hostname, const HostFiles& files) {
  HostIdentity id;
  id.host = std::string(name_override.empty() ? uts_hostname : name_override);
  if (id.host.empty()) {
    return Status::InvalidArgument("no host name: gethostname() is empty and none was given");
  }
  std::string machine_id;
  auto text = files.ReadFile("/etc/machine-id", 4096);
  if (text.ok() && IsMachineId(Trim(*text))) machine_id = std::string(Trim(*text));
  if (scope == Scope::kHost && !machine_id.empty()) {
    id.host_id = machine_id;
  } else {
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    id.host_id = StableHexId(machine_id + "/uts/" + id.host);
  }
  return id;
}

}  // namespace tripline::sensor
