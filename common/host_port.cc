#include "common/host_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace tripline {

std::string HostPort::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool HostPort::IsLoopback() const {
  // Decided from the parsed address: a name such as "127.0.0.1.example" resolves to
  // whatever its owner likes. "localhost" is the one name taken as loopback (resolved from
  // the local hosts file).
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

Result<HostPort> ParseHostPort(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("bad address '" + std::string(text) +
                                   "' (want HOST:PORT): " + std::string(why));
  };
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    hp.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing port");
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return bad("IPv6 hosts need brackets");
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) return bad("empty host");
  unsigned v = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || v > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  hp.port = static_cast<uint16_t>(v);
  return hp;
}

}  // namespace tripline
