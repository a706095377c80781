// The host's own addresses, for its health reports: what the scaled-out aggregator routes
// connections to this host by (docs/scale-out.md).
#pragma once

#include <ifaddrs.h>

#include <string>
#include <vector>

namespace tripline::sensor {

// Reported at most: a host with more (a router, a load balancer with many VIPs) reports its
// first ones in sorted order.
inline constexpr size_t kMaxReportedAddresses = 64;

// The addresses of `list` (getifaddrs(3)) of interfaces that are up: IPv4 and IPv6 as text,
// without loopback, unspecified and link-local ones; sorted, each once.
std::vector<std::string> ReportableAddresses(const ifaddrs* list);

// ReportableAddresses of the network namespace the sensor runs in; empty when getifaddrs
// fails.
std::vector<std::string> HostAddresses();

}  // namespace tripline::sensor
