// Enricher: fills in what the kernel record does not carry: host identity, user and login
// user names, executable path and container id.
//
// Reads /etc (through AccountNames) and /proc/<tgid>/{stat,exe,cgroup} through HostFiles,
// so tests point it at a temporary tree. Everything read from /proc is cached per process
// (tgid + start time, so a reused pid is noticed) and container ids also per cgroup id; a
// process that exits before it is looked at simply stays without exe/container (the race
// is inherent: events are read after the fact).
//
// Threading: not thread-safe; owned and used by the event loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "model/event.h"
#include "sensor/account_names.h"
#include "sensor/host_files.h"
#include "sensor/host_identity.h"
#include "sensor/kube_pod.h"

namespace tripline::sensor {

struct EnricherOptions {
  HostIdentity identity;
  // Bound on cached processes; the least recently used is forgotten first.
  size_t max_processes = 16384;
  // Bound on cached cgroup ids.
  size_t max_cgroups = 4096;
  // A cached process is re-validated (its start time compared) after this long.
  int64_t process_revalidate_ns = 10LL * 1000 * 1000 * 1000;
  // /etc/passwd and /etc/group are stat()ed at most this often.
  int64_t account_recheck_ns = 1LL * 1000 * 1000 * 1000;
};

struct EnricherStats {
  uint64_t proc_reads = 0;   // processes looked up in /proc
  uint64_t proc_misses = 0;  // ... that had already exited
  uint64_t cache_hits = 0;
  uint64_t pid_reuse = 0;  // cached entries found to belong to an earlier process
};

class Enricher {
 public:
  // `host_files` (for /etc) and `proc_files` (for /proc) must outlive the enricher. They
  // differ when the sensor runs in a container with the host's /etc mounted elsewhere.
  Enricher(EnricherOptions options, const HostFiles& host_files, const HostFiles& proc_files);

  // Fills host, host_id, process.user, process.login_user, process.exe (when empty) and
  // process.container_id. `now_mono_ns` drives cache ageing and the account-file checks.
  void Enrich(Event* event, int64_t now_mono_ns);

  // Account-file problems of the last (re)load, for logging. True once per reload.
  bool TakeAccountErrors(std::vector<std::string>* out);

  const EnricherStats& stats() const { return stats_; }
  const HostIdentity& identity() const { return options_.identity; }
  AccountNames& account_names() { return names_; }

 private:
  // A process's pod, as attached to its events.
  struct PodInfo {
    std::string uid, pod_namespace, name, service_account;
  };
  struct CgroupInfo {
    std::string container_id;
    std::shared_ptr<const PodInfo> pod;
  };
  struct ProcessEntry {
    uint32_t tgid = 0;
    uint64_t start_ticks = 0;
    int64_t checked_ns = 0;
    std::string exe;
    std::string container_id;
    std::shared_ptr<const PodInfo> pod;  // null outside Kubernetes pods
    std::list<uint32_t>::iterator lru;
  };

  // The entry for `tgid`, read from /proc when missing or stale; nullptr when the process
  // is gone and nothing is cached.
  ProcessEntry* LookupProcess(uint32_t tgid, uint64_t cgroup_id, int64_t now_ns);
  // A fresh entry for `tgid` (replacing any), evicting the least recently used if full.
  ProcessEntry* InsertEntry(uint32_t tgid, uint64_t start_ticks, int64_t now_ns);
  void FillProcess(ProcessEntry* entry, uint64_t cgroup_id);
  void Forget(uint32_t tgid);

  const EnricherOptions options_;
  const HostFiles& proc_files_;
  AccountNames names_;
  bool account_errors_pending_ = false;
  EnricherStats stats_;
  std::unordered_map<uint32_t, ProcessEntry> processes_;
  std::list<uint32_t> lru_;  // front = most recently used
  std::unordered_map<uint64_t, CgroupInfo> cgroup_containers_;
  PodDirectory pods_;
  std::string scratch_;  // reused buffer for /proc reads
  char path_buf_[64];
};

}  // namespace tripline::sensor
