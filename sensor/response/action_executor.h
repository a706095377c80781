// ActionExecutor: carries out a verified action order on this host, and undoes it
// (docs/response.md). Only OrderVerifier's output reaches it.
//
//   lock account   usermod -L (password locked; revert usermod -U)
//   end sessions   pkill -KILL -u USER (nothing to revert)
//   block address  the address added to a set of nftables table `inet tripline` that its
//                  input and output chains drop (revert: removed from the set)
//   isolate host   chains `isolate_in`/`isolate_out` in the same table, policy drop, that
//                  accept loopback and the keep path ADDRESS:PORT (the sensor's aggregator)
//                  only (revert: both chains removed)
// The table is the sensor's own: nothing else in the host's ruleset is touched.
//
// Commands run without a shell (argv), each with its output captured for the report.
// Threading: not thread-safe; one order at a time.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "tripline/v1/response.pb.h"

namespace tripline::sensor {

struct ExecutorOptions {
  // Put in front of the nft commands: a test runs them inside a lab host's network
  // namespace ({"/usr/bin/nsenter", "--net=/run/netns/NAME"}); empty on a real host.
  std::vector<std::string> net_prefix;
  std::string nft = "/usr/sbin/nft";
  std::string usermod = "/usr/sbin/usermod";
  std::string pkill = "/usr/bin/pkill";
};

class ActionExecutor {
 public:
  explicit ActionExecutor(ExecutorOptions options) : options_(std::move(options)) {}
  // What ran and what it said, or the error.
  Result<std::string> Run(const v1::ActionOrder& order);

 private:
  Result<std::string> Command(std::vector<std::string> argv, bool net,
                              const std::string& stdin_text = "", int ok_code2 = 0);
  Status EnsureTable();
  const ExecutorOptions options_;
};

}  // namespace tripline::sensor
