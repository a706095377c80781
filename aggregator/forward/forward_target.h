// SIEM output URLs as given to `tripline-aggregator --forward` (design.md, interface
// contract). Parsed and validated at startup so a typo fails fast; delivery itself is not
// part of this build.
#pragma once

#include <string>
#include <string_view>

#include "common/host_port.h"
#include "common/status.h"

namespace tripline {

struct ForwardTarget {
  enum class Kind { kSyslogTcp, kSyslogTls, kHttps, kHttp, kFile };
  Kind kind = Kind::kFile;
  std::string url;     // as given
  HostPort address;    // syslog and http(s)
  std::string path;    // http(s) request path, or the file path
  std::string format;  // ocsf|ecs|hec|elastic-bulk for http(s), ocsf|ecs for file; "cef" for syslog
};

// Accepts syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT,
// https://HOST[:PORT]/PATH[?format=ocsf|ecs|hec|elastic-bulk], http://... on a loopback
// host only, and file:///ABSOLUTE/PATH[?format=ocsf|ecs]. The format defaults to ocsf.
Result<ForwardTarget> ParseForwardUrl(std::string_view url);

}  // namespace tripline
