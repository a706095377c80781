#include "sensor/enricher.h"

#include <cstdio>

#include "sensor/container_id.h"
#include "sensor/proc_stat.h"

namespace tripline::sensor {
namespace {

constexpr size_t kMaxProcStatBytes = 4096;
constexpr size_t kMaxProcCgroupBytes = 16384;

}  // namespace

Enricher::Enricher(EnricherOptions options, const HostFiles& host_files,
                   const HostFiles& proc_files)
    : options_(std::move(options)),
      proc_files_(proc_files),
      names_(host_files, options_.account_recheck_ns),
      pods_(host_files) {}

bool Enricher::TakeAccountErrors(std::vector<std::string>* out) {
  if (!account_errors_pending_) return false;
  account_errors_pending_ = false;
  *out = names_.errors();
  return !out->empty();
}

void Enricher::Enrich(Event* event, int64_t now_mono_ns) {
  if (names_.Refresh(now_mono_ns)) account_errors_pending_ = true;
  event->host = options_.identity.host;
  event->host_id = options_.identity.host_id;
  ProcessInfo& p = event->process;
  // Posture and health describe the sensor's host, not a process.
  if (event->kind() == EventKind::kPosture || event->kind() == EventKind::kHealth) return;
  p.user = names_.UserName(p.uid);
  if (p.login_uid != kUnsetId) p.login_user = names_.UserName(p.login_uid);
  if (p.tgid == 0) return;
  // exec replaced the image: whatever was cached for this tgid describes the old program.
  ProcessEntry* entry = nullptr;
  if (const ExecEvent* exec = event->As<ExecEvent>(); exec != nullptr) {
    Forget(p.tgid);
    entry = LookupProcess(p.tgid, p.cgroup_id, now_mono_ns);
    // Short-lived programs (cat, id) are often gone before their exec event is read. The
    // exec record's filename is then the best exe there is, and caching it lets the
    // program's later events (its file opens) carry it too.
    if ((entry == nullptr || entry->exe.empty()) && exec->filename.starts_with("/")) {
      if (entry == nullptr) entry = InsertEntry(p.tgid, /*start_ticks=*/0, now_mono_ns);
      entry->exe = exec->filename;
    }
  } else {
    entry = LookupProcess(p.tgid, p.cgroup_id, now_mono_ns);
  }
  if (entry == nullptr) return;
  if (p.exe.empty()) p.exe = entry->exe;
  if (p.container_id.empty()) p.container_id = entry->container_id;
  if (entry->pod != nullptr && p.k8s_pod_uid.empty()) {
    p.k8s_pod_uid = entry->pod->uid;
    p.k8s_namespace = entry->pod->pod_namespace;
    p.k8s_pod = entry->pod->name;
    p.k8s_service_account = entry->pod->service_account;
    p.k8s_node = options_.identity.host;
  }
}

void Enricher::Forget(uint32_t tgid) {
  auto it = processes_.find(tgid);
  if (it == processes_.end()) return;
  lru_.erase(it->second.lru);
  processes_.erase(it);
}

Enricher::ProcessEntry* Enricher::LookupProcess(uint32_t tgid, uint64_t cgroup_id, int64_t now_ns) {
  auto it = processes_.find(tgid);
  if (it != processes_.end() && now_ns - it->second.checked_ns < options_.process_revalidate_ns) {
    ++stats_.cache_hits;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return &it->second;
  }
  ++stats_.proc_reads;
  std::snprintf(path_buf_, sizeof(path_buf_), "/proc/%u/stat", tgid);
  Result<ProcStat> stat = Status::NotFound("unread");
  if (proc_files_.ReadPrefix(path_buf_, kMaxProcStatBytes, &scratch_).ok()) {
    stat = ParseProcStat(scratch_);
  }
  if (!stat.ok()) {
    ++stats_.proc_misses;
    // Gone already: the cached entry (if any) is the best knowledge there is, unless it is
    // so old that the pid may have been reused by now.
    if (it != processes_.end()) {
      it->second.checked_ns = now_ns;
      return &it->second;
    }
    return nullptr;
  }
  if (it != processes_.end()) {
    if (it->second.start_ticks == stat->start_ticks) {
      it->second.checked_ns = now_ns;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return &it->second;
    }
    // start 0: the entry came from an exec record alone, not an earlier process.
    if (it->second.start_ticks != 0) ++stats_.pid_reuse;
    Forget(tgid);
  }
  ProcessEntry* entry = InsertEntry(tgid, stat->start_ticks, now_ns);
  FillProcess(entry, cgroup_id);
  return entry;
}

Enricher::ProcessEntry* Enricher::InsertEntry(uint32_t tgid, uint64_t start_ticks, int64_t now_ns) {
  Forget(tgid);
  if (processes_.size() >= options_.max_processes && !lru_.empty()) {
    uint32_t victim = lru_.back();
    lru_.pop_back();
    processes_.erase(victim);
  }
  lru_.push_front(tgid);
  ProcessEntry& entry = processes_[tgid];
  entry.tgid = tgid;
  entry.start_ticks = start_ticks;
  entry.checked_ns = now_ns;
  entry.lru = lru_.begin();
  return &entry;
}

void Enricher::FillProcess(ProcessEntry* entry, uint64_t cgroup_id) {
  std::snprintf(path_buf_, sizeof(path_buf_), "/proc/%u/exe", entry->tgid);
  auto exe = proc_files_.ReadLink(path_buf_);
  // Kernel threads have no exe; a deleted binary reads "/path (deleted)", kept as is since
  // running a deleted binary is itself worth seeing.
  if (exe.ok()) entry->exe = std::move(*exe);

  if (cgroup_id != 0) {
    auto cached = cgroup_containers_.find(cgroup_id);
    if (cached != cgroup_containers_.end()) {
      entry->container_id = cached->second.container_id;
      entry->pod = cached->second.pod;
      return;
    }
  }
  std::snprintf(path_buf_, sizeof(path_buf_), "/proc/%u/cgroup", entry->tgid);
  if (!proc_files_.ReadPrefix(path_buf_, kMaxProcCgroupBytes, &scratch_).ok()) return;
  entry->container_id = ContainerIdFromProcCgroup(scratch_);
  entry->pod = nullptr;
  if (std::optional<KubePodRef> ref = KubePodFromCgroupPath(UnifiedCgroupPath(scratch_))) {
    auto pod = std::make_shared<PodInfo>();
    pod->uid = ref->pod_uid;
    // Namespace and name from the kubelet's log directory on the node; a pod the kubelet
    // has not logged anything for yet has its uid only.
    if (const KubePodName* name = pods_.Find(ref->pod_uid)) {
      pod->pod_namespace = name->pod_namespace;
      pod->name = name->pod_name;
      pod->service_account = name->service_account;
    }
    entry->pod = std::move(pod);
  }
  // The cgroup id from BPF is the unified (v2) cgroup. On a hybrid v1/v2 host every task
  // sits in the v2 root and containers are told apart only by v1 paths, so one cgroup id
  // would stand for many containers: cache by cgroup id only when the v2 path is real.
  std::string_view unified = UnifiedCgroupPath(scratch_);
  if (cgroup_id != 0 && !unified.empty() && unified != "/") {
    if (cgroup_containers_.size() >= options_.max_cgroups) cgroup_containers_.clear();
    cgroup_containers_.emplace(cgroup_id, CgroupInfo{entry->container_id, entry->pod});
  }
}

}  // namespace tripline::sensor
