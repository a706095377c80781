// MetricsServer: GET /metrics over HTTP (cpp-httplib) for Prometheus to scrape. Off unless
// a program is given --metrics; the address defaults to loopback (ParseMetricsAddress).
// Each scrape calls `collect` on the server's thread, which must therefore be thread-safe.
// Every other path is 404; only GET and HEAD are served.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/host_port.h"
#include "common/status.h"

namespace httplib {
class Server;
}

namespace tripline {

// "PORT" (on 127.0.0.1) or "HOST:PORT"; port 0 picks a free one.
Result<HostPort> ParseMetricsAddress(std::string_view text);

class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> Start(const HostPort& listen,
                                                      std::function<std::string()> collect);
  ~MetricsServer();  // stops and joins
  // The address bound, with the real port.
  const HostPort& address() const { return address_; }

 private:
  MetricsServer() = default;
  HostPort address_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace tripline
