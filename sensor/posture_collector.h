// PostureCollector: a snapshot of who can log in and who can become root on this host.
//
// Sources, all read through HostFiles (so a temp tree stands in for / in tests):
//   /etc/passwd, /etc/group    accounts, primary and supplementary groups
//   /etc/shadow                password set / locked, ageing (max days; 99999 or empty =
//                              never expires, reported as -1)
//   /etc/sudoers (+ includes)  rules per account, direct or through %group, NOPASSWD
//                              (see sudoers_parser.h for what is not interpreted)
//   ~/.ssh/authorized_keys{,2} number of keys per account. The account owns its home, so
//                              these are read with HostFiles::ReadAccountFile: no link
//                              followed, nothing opened that could block, only a regular
//                              file owned by the account or root; anything else is skipped
//                              and the reason goes to `errors`.
// Root group members: members listed on the gid 0 group and accounts whose primary gid is 0.
// Processes (when given ProcessScanOptions, as the sensor daemon does): the running
// processes grouped by executable, uid, capabilities and reachable container runtime
// sockets (process_privileges.h), their uids named from /etc/passwd.
// Sensitive files (when given the sensor's sensitive paths): for each account but root, the
// files it may read as their owner or through a group that is not root-equivalent, every
// directory above searchable to it (Account.readable_files). Exact paths are files; a
// prefix ending in '/' names the regular files directly in that directory, another prefix
// those in its directory whose name starts with the rest (/etc/ssh/ssh_host_); suffix rules
// (a file name in any directory, such as an account's own keys) are not listed.
// Every file or line that cannot be read or parsed becomes an entry in `errors`; the
// snapshot is still produced from what could be read.
//
// Threading: Collect() has no shared state; call it from any one thread at a time. The
// sensor runs it on a thread of its own (PostureWorker), never on the event loop's.
#pragma once

#include <optional>

#include "common/clock.h"
#include "model/event.h"
#include "sensor/host_files.h"
#include "sensor/process_privileges.h"
#include "sensor/record_decoder.h"

namespace tripline::sensor {

class PostureCollector {
 public:
  // `files` must outlive the collector.
  explicit PostureCollector(const HostFiles& files,
                            std::optional<ProcessScanOptions> processes = std::nullopt,
                            std::vector<SensitivePath> sensitive = {})
      : files_(files), processes_(std::move(processes)), sensitive_(std::move(sensitive)) {}

  // At most this many sensitive files are judged per snapshot (the rest are counted in
  // `errors`).
  static constexpr size_t kMaxSensitiveFiles = 256;

  PostureSnapshot Collect() const;
  // With a time budget: once `budget_ns` of `clock`'s monotonic time has passed, the
  // remaining accounts are reported without reading their home directories, and `errors`
  // says how many.
  PostureSnapshot Collect(const Clock* clock, int64_t budget_ns) const;

 private:
  const HostFiles& files_;
  const std::optional<ProcessScanOptions> processes_;
  const std::vector<SensitivePath> sensitive_;
};

}  // namespace tripline::sensor
