// HOST:PORT addresses as given on command lines and in configuration.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tripline {

struct HostPort {
  std::string host;  // name, dotted quad, or IPv6 without brackets
  uint16_t port = 0;

  // "host:port", with brackets around an IPv6 host.
  std::string ToString() const;
  // True for an address in 127.0.0.0/8 (also IPv4-mapped), ::1, and the name "localhost";
  // any other name is not loopback, whatever it starts with.
  bool IsLoopback() const;
};

// Accepts "127.0.0.1:9000", "localhost:0", "[::1]:9000". The port is required.
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace tripline
