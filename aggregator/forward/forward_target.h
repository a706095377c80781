// SIEM output URLs as given to `tripline-aggregator --forward` (design.md, interface
// contract). Parsed and validated at startup so a typo fails fast; delivery is Forwarder's
// (forwarder.h).
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
  // http(s) only, from the query: this output's token and CA files, in place of the
  // configuration's forward_token_file and forward_ca_file (several collectors, several
  // tokens). Absolute paths; empty when not given.
  std::string token_file;
  std::string ca_file;
};

// Accepts syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT,
// https://HOST[:PORT]/PATH[?format=ocsf|ecs|hec|elastic-bulk][&token_file=/F][&ca_file=/F],
// http://... on a loopback
// host only, and file:///ABSOLUTE/PATH[?format=ocsf|ecs]. The format defaults to ocsf.
Result<ForwardTarget> ParseForwardUrl(std::string_view url);

// A collector's token from a file: its content without trailing whitespace, which must be
// one word of printable ASCII. InvalidArgument naming the file otherwise.
Result<std::string> ReadForwardToken(const std::string& path);

}  // namespace tripline
