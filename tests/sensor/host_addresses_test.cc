#include "sensor/host_addresses.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>

#include <deque>
#include <string>
#include <vector>

namespace tripline::sensor {
namespace {

// An interface list as getifaddrs(3) returns it, built from (name, address, flags).
class InterfaceList {
 public:
  void Add(const char* name, const std::string& addr, unsigned flags) {
    ifaddrs& i = entries_.emplace_back();
    i.ifa_name = const_cast<char*>(name);
    i.ifa_flags = flags;
    sockaddr_storage& ss = addrs_.emplace_back();
    if (addr.find(':') != std::string::npos) {
      auto* sa6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sa6->sin6_family = AF_INET6;
      EXPECT_EQ(inet_pton(AF_INET6, addr.c_str(), &sa6->sin6_addr), 1) << addr;
    } else if (!addr.empty()) {
      auto* sa4 = reinterpret_cast<sockaddr_in*>(&ss);
      sa4->sin_family = AF_INET;
      EXPECT_EQ(inet_pton(AF_INET, addr.c_str(), &sa4->sin_addr), 1) << addr;
    }
    i.ifa_addr = addr.empty() ? nullptr : reinterpret_cast<sockaddr*>(&ss);
  }
  const ifaddrs* head() {
    for (size_t k = 0; k + 1 < entries_.size(); ++k) entries_[k].ifa_next = &entries_[k + 1];
    return entries_.empty() ? nullptr : &entries_.front();
  }

 private:
  std::deque<ifaddrs> entries_;  // stable addresses as they grow
  std::deque<sockaddr_storage> addrs_;
};

TEST(HostAddressesTest, OnlyTheHostsOwnRoutableAddressesOfInterfacesThatAreUp) {
  InterfaceList l;
  l.Add("lo", "127.0.0.1", IFF_UP | IFF_LOOPBACK);
  l.Add("lo", "::1", IFF_UP | IFF_LOOPBACK);
  l.Add("eth0", "198.18.0.5", IFF_UP);
  l.Add("eth0", "2001:db8::5", IFF_UP);
  l.Add("eth0", "fe80::1", IFF_UP);            // link-local
  l.Add("eth0", "", IFF_UP);                   // an interface without an address (AF_PACKET)
  l.Add("eth1", "198.18.0.6", 0);              // down
  l.Add("eth2", "169.254.10.1", IFF_UP);       // link-local
  l.Add("eth3", "0.0.0.0", IFF_UP);            // unspecified
  l.Add("eth4", "::ffff:198.18.0.9", IFF_UP);  // v4-mapped: reported as the IPv4 one, if any
  l.Add("br0", "10.0.0.1", IFF_UP);
  l.Add("br0:1", "10.0.0.1", IFF_UP);  // the same address twice
  EXPECT_EQ(ReportableAddresses(l.head()),
            (std::vector<std::string>{"10.0.0.1", "198.18.0.5", "2001:db8::5"}));
  EXPECT_TRUE(ReportableAddresses(nullptr).empty());
}

TEST(HostAddressesTest, AHostWithManyAddressesReportsItsFirstOnes) {
  InterfaceList l;
  for (int i = 0; i < 100; ++i) l.Add("eth0", "198.18.1." + std::to_string(i), IFF_UP);
  const std::vector<std::string> got = ReportableAddresses(l.head());
  ASSERT_EQ(got.size(), kMaxReportedAddresses);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  EXPECT_EQ(got.front(), "198.18.1.0");
}

TEST(HostAddressesTest, TheSensorsOwnNamespaceReportsNoLoopback) {
  for (const std::string& a : HostAddresses()) {
    EXPECT_NE(a, "127.0.0.1");
    EXPECT_NE(a, "::1");
  }
}

}  // namespace
}  // namespace tripline::sensor
