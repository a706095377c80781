#include "sensor/host_addresses.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>

namespace tripline::sensor {
namespace {

bool Reportable(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    const uint32_t first = a >> 24;
    const bool link_local = (a >> 16) == 0xa9fe;  // 169.254.0.0/16
    return a != 0 && first != 127 && !link_local;
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    return !IN6_IS_ADDR_UNSPECIFIED(&a) && !IN6_IS_ADDR_LOOPBACK(&a) &&
           !IN6_IS_ADDR_LINKLOCAL(&a) && !IN6_IS_ADDR_V4MAPPED(&a);
  }
  return false;
}

}  // namespace

std::vector<std::string> ReportableAddresses(const ifaddrs* list) {
  std::vector<std::string> out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_UP) == 0 ||
        (i->ifa_flags & IFF_LOOPBACK) != 0 || !Reportable(i->ifa_addr)) {
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw =
        i->ifa_addr->sa_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr);
    if (inet_ntop(i->ifa_addr->sa_family, raw, text, sizeof(text)) != nullptr) {
      out.emplace_back(text);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > kMaxReportedAddresses) out.resize(kMaxReportedAddresses);
  return out;
}

std::vector<std::string> HostAddresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  std::vector<std::string> out = ReportableAddresses(list);
  freeifaddrs(list);
  return out;
}

}  // namespace tripline::sensor
