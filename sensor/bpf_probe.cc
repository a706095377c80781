#include "sensor/bpf_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string_view>
#include <thread>

#include "common/log.h"
#include "events.h"
#include "sensor/libpam_locator.h"
#include "sensor/path_triggers.h"
#include "tripline_probe.skel.h"

namespace tripline::sensor {
namespace {

constexpr int64_t kUtmpRefreshNs = 30LL * 1000 * 1000 * 1000;

// One way of implementing a hook family: the programs that only make sense together.
struct Variant {
  const char* label;
  std::vector<const char*> programs;  // attached
  // BTF (name, kind) they need: functions and tracepoints they attach to, kfuncs they call.
  std::vector<std::pair<const char*, int>> kernel_needs;
  bool trampolines = false;  // fentry/fexit programs, which some kernels refuse
  // Misses something the preferred hooks see (reported as degraded, not just as a variant).
  bool fallback = false;
  // The family handler tl_sys_exit tail-calls from slot sys_exit_slot (not attached).
  const char* sys_exit_handler = nullptr;
  int sys_exit_slot = -1;
  // A (struct, member) the kernel's BTF must have: the layout the programs are written for.
  std::pair<const char*, const char*> layout = {nullptr, nullptr};
};

// A hook family and its variants, best first. The loader takes the first variant this kernel
// accepts: trampolines (fentry/fexit) where allowed, raw syscall tracepoints otherwise; each
// with the bpf_rdonly_cast kfunc (6.2+) where the kernel has it, probe reads otherwise
// (bpf/lib/kptr.h).
struct Family {
  const char* name;
  std::vector<Variant> variants;
};

constexpr std::pair<const char*, int> kRdonlyCast = {"bpf_rdonly_cast", BTF_KIND_FUNC};
// The file family keeps per-open state in task storage (5.11+) and walks paths with bpf_loop
// (5.17+); kernels without them cannot run it (its map is then not even created).
constexpr std::pair<const char*, int> kTaskStorage = {"bpf_task_storage_get", BTF_KIND_FUNC};
constexpr std::pair<const char*, int> kLoop = {"bpf_loop", BTF_KIND_FUNC};
// The syscall-tracepoint handlers find the descriptor's file from the BTF task (5.11+).
constexpr std::pair<const char*, int> kTaskBtf = {"bpf_get_current_task_btf", BTF_KIND_FUNC};
constexpr std::pair<const char*, int> kSysExit = {"btf_trace_sys_exit", BTF_KIND_TYPEDEF};
constexpr std::pair<const char*, int> kFork = {"btf_trace_sched_process_fork", BTF_KIND_TYPEDEF};
constexpr std::pair<const char*, int> kExit = {"btf_trace_sched_process_exit", BTF_KIND_TYPEDEF};

const std::vector<Family>& Families() {
  static const std::vector<Family> kFamilies = {
      {"file",
       {{"fentry",
         {"tl_openat_enter", "tl_file_open_check", "tl_openat_exit"},
         {{"do_sys_openat2", BTF_KIND_FUNC},
          {"security_file_open", BTF_KIND_FUNC},
          kTaskStorage,
          kLoop,
          kRdonlyCast},
         true},
        {"fentry, probe reads",
         {"tl_openat_enter_compat", "tl_file_open_check_compat", "tl_openat_exit_compat"},
         {{"do_sys_openat2", BTF_KIND_FUNC},
          {"security_file_open", BTF_KIND_FUNC},
          kTaskStorage,
          kLoop},
         true},
        // Kernels with trampolines but neither task storage nor bpf_loop (5.10): fexit
        // do_sys_openat2 alone, paths rebuilt from dentries with bounded loops, no prefilter
        // (bpf/file_legacy.bpf.c). Sees what the two above see, at a higher cost per open.
        {"fentry, bounded loops",
         {"tl_openat_exit_legacy"},
         {{"do_sys_openat2", BTF_KIND_FUNC}},
         true},
        {"syscall tracepoints",
         {"tl_sys_exit"},
         {kSysExit, kTaskBtf, kTaskStorage, kLoop, kRdonlyCast},
         false,
         true,
         "tl_sys_exit_file",
         TL_SYSX_SLOT_FILE},
        {"syscall tracepoints, probe reads",
         {"tl_sys_exit"},
         {kSysExit, kTaskBtf, kTaskStorage, kLoop},
         false,
         true,
         "tl_sys_exit_file_compat",
         TL_SYSX_SLOT_FILE}}},
      {"exec", {{"tp_btf", {"tl_exec"}, {{"btf_trace_sched_process_exec", BTF_KIND_TYPEDEF}}}}},
      // Opens and connects submitted through io_uring, which no syscall hook sees.
      {"io_uring",
       {{"tp_btf",
         {"tl_io_uring_complete"},
         {{"btf_trace_io_uring_complete", BTF_KIND_TYPEDEF},
          {"io_open", BTF_KIND_STRUCT},
          kTaskStorage,
          kLoop,
          kRdonlyCast}},
        {"tp_btf, probe reads",
         {"tl_io_uring_complete_compat"},
         {{"btf_trace_io_uring_complete", BTF_KIND_TYPEDEF},
          {"io_open", BTF_KIND_STRUCT},
          kTaskStorage,
          kLoop}},
        // Debian's 5.10 (io_uring of 5.15, whose completion tracepoint has no request):
        // the open followed from fentry io_openat2 to fexit do_filp_open to its completion,
        // bounded loops (bpf/file_legacy.bpf.c). Only where the request keeps the open's
        // arguments in its member `open` (the 5.10 to 5.19 layout).
        {"fentry, bounded loops",
         {"tl_io_openat_enter_legacy", "tl_filp_open_exit_legacy", "tl_io_uring_complete_legacy"},
         {{"btf_trace_io_uring_complete", BTF_KIND_TYPEDEF},
          {"io_open", BTF_KIND_STRUCT},
          {"io_openat2", BTF_KIND_FUNC},
          {"do_filp_open", BTF_KIND_FUNC}},
         true,
         false,
         nullptr,
         -1,
         {"io_kiocb", "open"}}}},
      {"net",
       {{"fentry",
         {"tl_tcp_connect", "tl_accept_exit", "tl_fork", "tl_exit"},
         {{"tcp_connect", BTF_KIND_FUNC}, {"inet_csk_accept", BTF_KIND_FUNC}, kFork, kExit},
         true},
        {"syscall tracepoints",
         {"tl_sys_exit", "tl_fork", "tl_exit"},
         {kSysExit, kTaskBtf, kFork, kExit},
         false,
         true,
         "tl_sys_exit_net",
         TL_SYSX_SLOT_NET}}},
      {"login-utmp",
       {{"fentry", {"tl_utmp_write"}, {{"vfs_write", BTF_KIND_FUNC}}, true},
        {"syscall tracepoints",
         {"tl_sys_exit"},
         {kSysExit, kTaskBtf},
         false,
         true,
         "tl_sys_exit_utmp",
         TL_SYSX_SLOT_UTMP}}},
      {"login-pam",
       {{"uprobes",
         {"tl_pam_start", "tl_pam_start_confdir", "tl_pam_start_ret", "tl_pam_set_item",
          "tl_pam_authenticate", "tl_pam_acct_mgmt", "tl_pam_open_session", "tl_pam_close_session",
          "tl_pam_call_ret", "tl_pam_end"},
         {}}}},
  };
  return kFamilies;
}

// Every program a variant loads: the attached ones and its sys_exit handler.
std::vector<const char*> LoadedPrograms(const Variant& v) {
  std::vector<const char*> out = v.programs;
  if (v.sys_exit_handler != nullptr) out.push_back(v.sys_exit_handler);
  return out;
}

// Whether this kernel lets BPF trampolines (fentry/fexit) load: some kernels and sandboxes
// refuse them with EPERM even to root. A two-instruction fentry program on `btf_id` (a
// kernel function) tells, in well under a millisecond, without loading the whole object.
Status ProbeTrampolines(int btf_id) {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                   // exit
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(btf_id));
  int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "tl_probe_fentry", "GPL", insns, 2, &opts);
  if (fd < 0) return Status::FromErrno(errno, "a minimal fentry program");
  close(fd);
  return Status::Ok();
}

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf), format, args);
  if (n <= 0) return 0;
  std::string_view msg(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  if (level == LIBBPF_WARN) {
    TL_LOG(WARNING) << "libbpf: " << msg;
  } else {
    TL_LOG(DEBUG) << "libbpf: " << msg;
  }
  return 0;
}

uint32_t RoundUpPow2(uint32_t v, uint32_t min) {
  uint32_t r = min;
  while (r < v && r < (1u << 30)) r <<= 1;
  return r;
}

int64_t ClockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// Wall minus boot clock, from the closest-spaced of a few samples.
int64_t MeasureBootToWall() {
  int64_t best_gap = INT64_MAX, offset = 0;
  for (int i = 0; i < 5; ++i) {
    int64_t b0 = ClockNs(CLOCK_BOOTTIME);
    int64_t w = ClockNs(CLOCK_REALTIME);
    int64_t b1 = ClockNs(CLOCK_BOOTTIME);
    if (b1 - b0 < best_gap) {
      best_gap = b1 - b0;
      offset = w - (b0 + (b1 - b0) / 2);
    }
  }
  return offset;
}

// The kernel's dev_t encoding (MKDEV) of a device number stat(2) returned.
uint64_t KernelDev(dev_t dev) {
  return (static_cast<uint64_t>(major(dev)) << 20) | static_cast<uint64_t>(minor(dev));
}

template <typename T>
bool Contains(const std::vector<T>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::vector<SensitivePath> DefaultSensitivePaths() {
  using M = SensitivePath::Match;
  return {
      {M::kExact, "/etc/shadow"},
      {M::kExact, "/etc/gshadow"},
      {M::kExact, "/etc/shadow-"},
      {M::kExact, "/etc/gshadow-"},
      {M::kExact, "/etc/sudoers"},
      {M::kPrefix, "/etc/sudoers.d/"},
      {M::kPrefix, "/etc/pam.d/"},
      {M::kExact, "/etc/pam.conf"},
      {M::kExact, "/etc/security/pwquality.conf"},
      {M::kExact, "/etc/security/opasswd"},
      {M::kPrefix, "/root/.ssh/"},
      {M::kSuffix, "/authorized_keys"},
      {M::kSuffix, "/authorized_keys2"},
      {M::kSuffix, "/id_rsa"},
      {M::kSuffix, "/id_ed25519"},
      {M::kSuffix, "/id_ecdsa"},
      {M::kSuffix, "/id_dsa"},
      {M::kPrefix, "/etc/ssh/ssh_host_"},
  };
}

BpfProbe::BpfProbe(const ProbeOptions& options) : options_(options) {
  paths_ = options.sensitive_paths;
}

BpfProbe::~BpfProbe() { Teardown(); }

void BpfProbe::Teardown() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
  epoll_fd_ = -1;
  ring_buffer__free(priority_rb_);
  ring_buffer__free(bulk_rb_);
  priority_rb_ = bulk_rb_ = nullptr;
  // Each detach waits for an RCU grace period in the kernel (about 0.1 s here); detaching
  // the ~15 links one after another made a stop take almost 2 s. The waits overlap when the
  // links are destroyed from threads of their own.
  std::vector<std::thread> detachers;
  detachers.reserve(links_.size());
  for (bpf_link* link : links_) detachers.emplace_back([link] { bpf_link__destroy(link); });
  for (auto& t : detachers) t.join();
  links_.clear();
  if (skel_ != nullptr) tripline_probe__destroy(skel_);
  skel_ = nullptr;
}

namespace {

// Opens the skeleton with the read-only configuration and ring sizes of `options`, and
// every program's autoload off.
Result<tripline_probe*> OpenConfigured(const ProbeOptions& options) {
  tripline_probe* skel = tripline_probe__open();
  if (skel == nullptr) return Status::FromErrno(errno, "open BPF skeleton");
  skel->rodata->tl_target_uts_inum = options.target_uts_inum;
  skel->rodata->tl_self_tgid = options.self_tgid;
  skel->rodata->tl_exec_max_args =
      std::clamp<uint32_t>(options.exec_max_args, 1, TL_MAX_ARGS_LIMIT);
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  int err =
      bpf_map__set_max_entries(skel->maps.tl_events, RoundUpPow2(options.ringbuf_bytes, page));
  if (err == 0) {
    err = bpf_map__set_max_entries(skel->maps.tl_priority,
                                   RoundUpPow2(options.priority_ringbuf_bytes, page));
  }
  if (err != 0) {
    tripline_probe__destroy(skel);
    return Status::FromErrno(err, "set ring buffer size");
  }
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, false);
  // A map type the kernel does not have fails the whole load, even unused. Probed once per
  // process: every load (and each of the verifier measurement's) would otherwise ask again.
  static const bool task_storage =
      libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, nullptr) == 1;
  if (!task_storage) {
    bpf_map__set_autocreate(skel->maps.tl_open_states, false);
  }
  return skel;
}

// Why a variant cannot run on this kernel, found before loading anything, and what would
// let it. Empty `why` when it can.
struct Obstacle {
  std::string why;
  std::string remedy;
};

// Whether struct or union `type_id` of `b` has a member `name`, directly or inside an
// anonymous struct or union member.
bool HasMember(const btf* b, int type_id, std::string_view name, int depth = 0) {
  const btf_type* t = btf__type_by_id(b, static_cast<__u32>(type_id));
  if (t == nullptr || depth > 4 || (!btf_is_struct(t) && !btf_is_union(t))) return false;
  const btf_member* m = btf_members(t);
  for (int i = 0; i < btf_vlen(t); ++i, ++m) {
    const char* member = btf__name_by_offset(b, m->name_off);
    if (member != nullptr && member[0] != '\0') {
      if (name == member) return true;
      continue;
    }
    const int inner = btf__resolve_type(b, m->type);
    if (inner >= 0 && HasMember(b, inner, name, depth + 1)) return true;
  }
  return false;
}

Obstacle ObstacleFor(const Variant& v, const btf* vmlinux, const Status& trampolines,
                     const ProbeOptions& options) {
  if (v.layout.first != nullptr) {
    const int id = btf__find_by_name_kind(vmlinux, v.layout.first, BTF_KIND_STRUCT);
    if (id < 0 || !HasMember(vmlinux, id, v.layout.second)) {
      return {std::string("kernel's struct ") + v.layout.first + " has no member " +
                  v.layout.second + " (the layout the " + v.label + " variant reads)",
              "the variants above it: see their reasons"};
    }
  }
  for (const auto& [name, kind] : v.kernel_needs) {
    const bool kfunc = std::string_view(name) == kRdonlyCast.first;
    if (kfunc && options.avoid_kfuncs) {
      return {"bpf_rdonly_cast avoided by configuration", "clear avoid_kfuncs"};
    }
    if (btf__find_by_name_kind(vmlinux, name, kind) < 0) {
      if (kfunc) {
        return {"kernel has no bpf_rdonly_cast kfunc (Linux 6.2+)",
                "Linux 6.2 or later, where the path walks read kernel memory without helper "
                "calls"};
      }
      if (std::string_view(name) == kTaskStorage.first || std::string_view(name) == kLoop.first) {
        return {
            std::string("kernel has no ") + name + " (task storage: Linux 5.11+, bpf_loop: 5.17+)",
            "Linux 5.17 or later"};
      }
      return {std::string("kernel has no ") + name,
              std::string("a kernel with BTF (CONFIG_DEBUG_INFO_BTF) that has ") + name};
    }
  }
  if (v.trampolines && options.avoid_trampolines) {
    return {"trampolines avoided by configuration", "clear avoid_trampolines"};
  }
  if (v.trampolines && !trampolines.ok()) {
    return {"the kernel refuses BPF trampolines (" + trampolines.message() + ")",
            "a kernel that allows fentry/fexit programs (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS, "
            "not locked down, no sandbox refusing BPF trampolines)"};
  }
  return {};
}

// The trampoline probe, on a kernel function every supported kernel has.
Status CheckTrampolines(const btf* vmlinux) {
  int id = btf__find_by_name_kind(vmlinux, "security_file_open", BTF_KIND_FUNC);
  if (id < 0) return Status::Unsupported("kernel BTF has no security_file_open");
  return ProbeTrampolines(id);
}

void Append(std::string& to, std::string_view what) {
  if (!to.empty()) to += "; ";
  to += what;
}

constexpr const char* kVerifierRemedy =
    "this kernel's verifier refuses the program: report it with the output of "
    "tripline-veristat on this kernel";

uint64_t ProgramVerifiedInsns(const bpf_program* prog) {
  const int fd = bpf_program__fd(prog);
  if (fd < 0) return 0;
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.verified_insns;
}

// "processed N insns" from a verifier log with statistics (log level 4).
uint64_t ParseProcessedInsns(std::string_view log) {
  constexpr std::string_view kKey = "processed ";
  size_t at = log.rfind(kKey);
  while (at != std::string_view::npos) {
    size_t p = at + kKey.size();
    uint64_t n = 0;
    size_t digits = 0;
    while (p < log.size() && log[p] >= '0' && log[p] <= '9' && digits < 12) {
      n = n * 10 + static_cast<uint64_t>(log[p] - '0');
      ++p;
      ++digits;
    }
    if (digits > 0 && log.substr(p, 6) == " insns") return n;
    if (at == 0) break;
    at = log.rfind(kKey, at - 1);
  }
  return 0;
}

}  // namespace

const char* FamilyStateName(FamilyStatus::State state) {
  switch (state) {
    case FamilyStatus::State::kLive: return "live";
    case FamilyStatus::State::kDegraded: return "degraded";
    case FamilyStatus::State::kDisabled: return "disabled";
  }
  return "unknown";
}

Status BpfProbe::OpenAndLoad(const std::vector<int>& choice) {
  if (skel_ != nullptr) tripline_probe__destroy(skel_);
  skel_ = nullptr;
  TL_ASSIGN_OR_RETURN(skel_, OpenConfigured(options_));
  // The chosen variant of each family on (choice -1: family off).
  const auto& families = Families();
  for (size_t f = 0; f < families.size(); ++f) {
    if (choice[f] < 0) continue;
    for (const char* name : LoadedPrograms(families[f].variants[static_cast<size_t>(choice[f])])) {
      bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, name);
      if (prog == nullptr) return Status::Internal(std::string("no BPF program ") + name);
      bpf_program__set_autoload(prog, true);
    }
  }
  int err = tripline_probe__load(skel_);
  if (err != 0) return Status::FromErrno(err, "load BPF programs");
  return Status::Ok();
}

Status BpfProbe::FillSysExitHandlers(const std::vector<int>& choice) {
  const auto& families = Families();
  for (size_t f = 0; f < families.size(); ++f) {
    if (choice[f] < 0) continue;
    const Variant& v = families[f].variants[static_cast<size_t>(choice[f])];
    if (v.sys_exit_handler == nullptr) continue;
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, v.sys_exit_handler);
    const int fd = prog != nullptr ? bpf_program__fd(prog) : -1;
    if (fd < 0) return Status::Internal(std::string("handler not loaded: ") + v.sys_exit_handler);
    const uint32_t slot = static_cast<uint32_t>(v.sys_exit_slot);
    int err = bpf_map__update_elem(skel_->maps.tl_sys_exit_handlers, &slot, sizeof(slot), &fd,
                                   sizeof(fd), BPF_ANY);
    if (err != 0)
      return Status::FromErrno(err, std::string("sys_exit slot for ") + families[f].name);
  }
  return Status::Ok();
}

Result<std::unique_ptr<BpfProbe>> BpfProbe::Open(const ProbeOptions& options) {
  static std::once_flag print_once;
  std::call_once(print_once, [] { libbpf_set_print(LibbpfPrint); });

  std::unique_ptr<BpfProbe> probe(new BpfProbe(options));
  const auto& families = Families();
  const size_t pam = families.size() - 1;
  // Per family: index of the variant to load, -1 when off; why the better variants are not
  // used, and what would bring back the preferred one.
  std::vector<int> choice(families.size(), -1);
  std::vector<std::string> why(families.size()), remedy(families.size());
  std::vector<std::vector<bool>> usable(families.size());

  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) {
    return Status::Unsupported("kernel BTF (/sys/kernel/btf/vmlinux) not available");
  }
  const Status trampolines = options.avoid_trampolines ? Status::Ok() : CheckTrampolines(vmlinux);
  for (size_t f = 0; f < families.size(); ++f) {
    for (size_t v = 0; v < families[f].variants.size(); ++v) {
      const Variant& variant = families[f].variants[v];
      Obstacle o = ObstacleFor(variant, vmlinux, trampolines, options);
      usable[f].push_back(o.why.empty());
      if (!o.why.empty()) {
        if (choice[f] < 0) {
          // Variants often share the obstacle (both flavours of fentry): say it once.
          if (why[f].find(o.why) == std::string::npos) Append(why[f], o.why);
          if (remedy[f].empty()) remedy[f] = o.remedy;
        }
      } else if (choice[f] < 0) {
        choice[f] = static_cast<int>(v);
      }
    }
  }
  btf__free(vmlinux);

  // What the host lacks.
  Result<std::string> libpam = LocateLibpam(options.libpam_path);
  if (libpam.ok()) {
    probe->libpam_path_ = *libpam;
  } else {
    choice[pam] = -1;
    why[pam] = libpam.status().message();
    remedy[pam] = "install libpam (Debian: libpam0g) or name it with the sensor's libpam_path";
  }

  Status st = probe->OpenAndLoad(choice);
  if (!st.ok()) {
    // Some program was refused (by the verifier, or by an LSM refusing an attach type),
    // which fails the whole load. Find, family by family, the first usable variant this
    // kernel accepts. Only when no family loads at all is it an error (typically EPERM
    // without CAP_BPF/CAP_SYS_ADMIN).
    TL_LOG(WARNING) << "BPF load failed (" << st.ToString() << "), probing families one by one";
    bool any = false;
    for (size_t f = 0; f < families.size(); ++f) {
      if (choice[f] < 0) continue;
      int chosen = -1;
      for (size_t v = static_cast<size_t>(choice[f]); v < families[f].variants.size(); ++v) {
        if (!usable[f][v]) continue;
        std::vector<int> alone(families.size(), -1);
        alone[f] = static_cast<int>(v);
        Status s = probe->OpenAndLoad(alone);
        if (s.ok()) {
          chosen = static_cast<int>(v);
          break;
        }
        Append(why[f], std::string(families[f].variants[v].label) + " refused: " + s.ToString());
        if (remedy[f].empty()) remedy[f] = kVerifierRemedy;
      }
      choice[f] = chosen;
      any = any || chosen >= 0;
    }
    if (!any) return st;
    TL_RETURN_IF_ERROR(probe->OpenAndLoad(choice));
  }
  TL_RETURN_IF_ERROR(probe->FillSysExitHandlers(choice));

  probe->boot_to_wall_ns_ = MeasureBootToWall();
  TL_RETURN_IF_ERROR(probe->FillPathTable());
  for (uint32_t tgid : options.listener_tgids) {
    uint8_t one = 1;
    int err = bpf_map__update_elem(probe->skel_->maps.tl_listener_tgids, &tgid, sizeof(tgid), &one,
                                   sizeof(one), BPF_ANY);
    if (err != 0) return Status::FromErrno(err, "fill listener table");
  }
  TL_RETURN_IF_ERROR(probe->RefreshUtmpFiles());

  // Attach everything that loaded, each program once (families share tl_sys_exit); a hook
  // that will not attach turns its family off, reported, not fatal.
  std::vector<std::string_view> attached;
  std::vector<std::string> attach_error(families.size());
  for (size_t f = 0; f < families.size(); ++f) {
    if (choice[f] < 0 || f == pam) continue;
    for (const char* prog_name : families[f].variants[static_cast<size_t>(choice[f])].programs) {
      if (Contains(attached, prog_name)) continue;
      bpf_program* prog = bpf_object__find_program_by_name(probe->skel_->obj, prog_name);
      bpf_link* link = prog != nullptr ? bpf_program__attach(prog) : nullptr;
      if (link == nullptr) {
        Append(attach_error[f], std::string("attach ") + prog_name + ": " + std::strerror(errno));
        continue;
      }
      attached.push_back(prog_name);
      probe->links_.push_back(link);
    }
  }
  Status pam_attached = choice[pam] >= 0 ? probe->AttachPam() : Status::Ok();
  if (!pam_attached.ok()) attach_error[pam] = pam_attached.message();
  if (choice[pam] < 0 || !pam_attached.ok()) probe->libpam_path_.clear();

  for (size_t f = 0; f < families.size(); ++f) {
    FamilyStatus fs;
    fs.name = families[f].name;
    if (choice[f] >= 0 && attach_error[f].empty()) {
      const Variant& v = families[f].variants[static_cast<size_t>(choice[f])];
      fs.state = v.fallback ? FamilyStatus::State::kDegraded : FamilyStatus::State::kLive;
      fs.hooks = v.label;
      if (choice[f] > 0) {
        fs.reason = why[f];
        fs.remedy = remedy[f];
      }
    } else {
      fs.state = FamilyStatus::State::kDisabled;
      fs.reason = why[f];
      fs.remedy = remedy[f];
      if (!attach_error[f].empty()) {
        Append(fs.reason, attach_error[f]);
        fs.remedy = "see the kernel log (dmesg): the kernel refused to attach the hook";
      }
      if (fs.reason.empty()) fs.reason = "no variant of it can run on this kernel";
    }
    switch (fs.state) {
      case FamilyStatus::State::kDisabled:
        probe->disabled_.push_back(fs.name + ": " + fs.reason);
        TL_LOG(ERROR) << "hook family " << fs.name
                      << " DISABLED, the sensor sees none of it: " << fs.reason
                      << ". Remedy: " << fs.remedy;
        break;
      case FamilyStatus::State::kDegraded:
        probe->degraded_.push_back(fs.name + ": using " + fs.hooks + " (" + fs.reason + ")");
        TL_LOG(ERROR) << "hook family " << fs.name << " DEGRADED to " << fs.hooks << ": "
                      << fs.reason << ". Remedy: " << fs.remedy;
        break;
      case FamilyStatus::State::kLive:
        if (!fs.reason.empty()) {
          TL_LOG(INFO) << "hook family " << fs.name << " live on " << fs.hooks << " (" << fs.reason
                       << ")";
        }
        break;
    }
    probe->families_.push_back(std::move(fs));
  }

  probe->priority_rb_ = ring_buffer__new(bpf_map__fd(probe->skel_->maps.tl_priority),
                                         &BpfProbe::OnSample, probe.get(), nullptr);
  if (probe->priority_rb_ == nullptr) return Status::FromErrno(errno, "priority ring buffer");
  probe->bulk_rb_ = ring_buffer__new(bpf_map__fd(probe->skel_->maps.tl_events), &BpfProbe::OnSample,
                                     probe.get(), nullptr);
  if (probe->bulk_rb_ == nullptr) return Status::FromErrno(errno, "bulk ring buffer");
  probe->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (probe->epoll_fd_ < 0) return Status::FromErrno(errno, "epoll_create1");
  for (ring_buffer* rb : {probe->priority_rb_, probe->bulk_rb_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (epoll_ctl(probe->epoll_fd_, EPOLL_CTL_ADD, ring_buffer__epoll_fd(rb), &ev) != 0) {
      return Status::FromErrno(errno, "epoll_ctl ring buffer");
    }
  }
  // Loading (and, where a program is refused, loading again family by family) leaves
  // ~11 MB of freed libbpf heap that glibc would otherwise keep resident for good.
  malloc_trim(0);
  return probe;
}

Result<std::vector<ProgramVerification>> MeasureVerification(const ProbeOptions& options,
                                                             const std::string& log_program) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) {
    return Status::Unsupported("kernel BTF (/sys/kernel/btf/vmlinux) not available");
  }
  const Status trampolines = CheckTrampolines(vmlinux);
  std::vector<ProgramVerification> out;
  for (const Family& family : Families()) {
    for (const Variant& variant : family.variants) {
      const Obstacle o = ObstacleFor(variant, vmlinux, trampolines, options);
      for (const char* name : LoadedPrograms(variant)) {
        ProgramVerification pv;
        pv.family = family.name;
        pv.variant = variant.label;
        pv.program = name;
        if (!o.why.empty()) {
          pv.error = "not loaded: " + o.why;
          out.push_back(std::move(pv));
          continue;
        }
        // Each program alone, so each one's count and error are its own.
        Result<tripline_probe*> skel = OpenConfigured(options);
        if (!skel.ok()) {
          btf__free(vmlinux);
          return skel.status();
        }
        bpf_program* prog = bpf_object__find_program_by_name((*skel)->obj, name);
        if (prog == nullptr) {
          tripline_probe__destroy(*skel);
          btf__free(vmlinux);
          return Status::Internal(std::string("no BPF program ") + name);
        }
        const bool whole_log = log_program == name;
        std::vector<char> log(whole_log ? (16 << 20) : (1 << 16), '\0');
        bpf_program__set_autoload(prog, true);
        bpf_program__set_log_buf(prog, log.data(), log.size());
        bpf_program__set_log_level(prog, whole_log ? (1 | 4) : 4);  // 4: statistics
        const auto t0 = std::chrono::steady_clock::now();
        const int err = tripline_probe__load(*skel);
        pv.load_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        pv.loaded = err == 0;
        pv.insns =
            ParseProcessedInsns(std::string_view(log.data(), strnlen(log.data(), log.size())));
        if (pv.loaded && pv.insns == 0) pv.insns = ProgramVerifiedInsns(prog);
        if (!pv.loaded) pv.error = Status::FromErrno(err, "load").ToString();
        if (whole_log) pv.log.assign(log.data(), strnlen(log.data(), log.size()));
        tripline_probe__destroy(*skel);
        out.push_back(std::move(pv));
      }
    }
  }
  btf__free(vmlinux);
  return out;
}

Status BpfProbe::AttachPam() {
  struct Hook {
    const char* function;
    bpf_program* prog;
    bool retprobe;
    bool required;  // without it the family is useless
  };
  auto& p = skel_->progs;
  const Hook hooks[] = {
      {"pam_start", p.tl_pam_start, false, true},
      {"pam_start", p.tl_pam_start_ret, true, true},
      {"pam_start_confdir", p.tl_pam_start_confdir, false, false},  // Linux-PAM >= 1.4
      {"pam_start_confdir", p.tl_pam_start_ret, true, false},
      {"pam_set_item", p.tl_pam_set_item, false, true},
      {"pam_authenticate", p.tl_pam_authenticate, false, true},
      {"pam_authenticate", p.tl_pam_call_ret, true, true},
      {"pam_acct_mgmt", p.tl_pam_acct_mgmt, false, true},
      {"pam_acct_mgmt", p.tl_pam_call_ret, true, true},
      {"pam_open_session", p.tl_pam_open_session, false, true},
      {"pam_open_session", p.tl_pam_call_ret, true, true},
      {"pam_close_session", p.tl_pam_close_session, false, false},
      {"pam_close_session", p.tl_pam_call_ret, true, false},
      {"pam_end", p.tl_pam_end, false, false},
  };
  std::vector<bpf_link*> pam_links;
  for (const Hook& h : hooks) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = h.retprobe, .func_name = h.function);
    bpf_link* link = bpf_program__attach_uprobe_opts(h.prog, -1, libpam_path_.c_str(), 0, &opts);
    if (link == nullptr) {
      const std::string why = std::string(h.retprobe ? "uretprobe " : "uprobe ") + h.function +
                              " in " + libpam_path_ + ": " + std::strerror(errno);
      if (h.required) {
        for (bpf_link* l : pam_links) bpf_link__destroy(l);
        return Status::Unsupported(why);
      }
      TL_LOG(INFO) << "optional PAM hook not attached: " << why;
      continue;
    }
    pam_links.push_back(link);
  }
  links_.insert(links_.end(), pam_links.begin(), pam_links.end());
  return Status::Ok();
}

namespace {

// The trie key of one rule and whether it goes in the suffix trie.
Status MakePathKey(const SensitivePath& rule, tl_path_key* key, bool* suffix) {
  const std::string& path = rule.path;
  if (path.empty() || path.size() >= TL_PATH_LEN || path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("sensitive path \"" + path + "\" must have 1.." +
                                   std::to_string(TL_PATH_LEN - 1) + " bytes and no NUL");
  }
  *key = tl_path_key{};
  *suffix = false;
  switch (rule.match) {
    case SensitivePath::Match::kExact:
      std::memcpy(key->data, path.data(), path.size());
      key->prefixlen = static_cast<uint32_t>(path.size() + 1) * 8;  // with the NUL
      break;
    case SensitivePath::Match::kPrefix:
      std::memcpy(key->data, path.data(), path.size());
      key->prefixlen = static_cast<uint32_t>(path.size()) * 8;
      break;
    case SensitivePath::Match::kSuffix:
      std::reverse_copy(path.begin(), path.end(), key->data);
      key->prefixlen = static_cast<uint32_t>(path.size()) * 8;
      *suffix = true;
      break;
    default: return Status::InvalidArgument("sensitive path \"" + path + "\": unknown match kind");
  }
  return Status::Ok();
}

tl_name_key MakeTriggerKey(const NameTrigger& t) {
  tl_name_key key{};
  key.depth = t.depth;
  key.len = static_cast<uint32_t>(t.name.size());
  std::memcpy(key.head, t.name.data(), std::min<size_t>(t.name.size(), TL_NAME_HEAD - 1));
  return key;
}

// Capacities of the in-kernel tables (bpf/lib/maps.h).
constexpr size_t kMaxPrefixRules = 1024;
constexpr size_t kMaxSuffixRules = 256;
constexpr size_t kMaxNameTriggers = 1024;

}  // namespace

Status BpfProbe::CheckSensitivePaths(const std::vector<SensitivePath>& paths) {
  size_t prefix = 0, suffix = 0;
  for (const SensitivePath& rule : paths) {
    tl_path_key key;
    bool is_suffix = false;
    TL_RETURN_IF_ERROR(MakePathKey(rule, &key, &is_suffix));
    ++(is_suffix ? suffix : prefix);
  }
  if (prefix > kMaxPrefixRules || suffix > kMaxSuffixRules) {
    return Status::InvalidArgument(
        "sensitive-path table too large: " + std::to_string(prefix) +
        " exact/prefix rules (at most " + std::to_string(kMaxPrefixRules) + ") and " +
        std::to_string(suffix) + " suffix rules (at most " + std::to_string(kMaxSuffixRules) + ")");
  }
  const PathTriggers triggers = CompilePathTriggers(paths);
  if (triggers.triggers.size() > kMaxNameTriggers) {
    return Status::InvalidArgument("sensitive-path table needs " +
                                   std::to_string(triggers.triggers.size()) +
                                   " prefilter names, at most " + std::to_string(kMaxNameTriggers));
  }
  return Status::Ok();
}

Status BpfProbe::ReplaceSensitivePaths(std::vector<SensitivePath> paths) {
  if (skel_ == nullptr) return Status::Internal("probe not loaded");
  TL_RETURN_IF_ERROR(CheckSensitivePaths(paths));
  // The prefilter lets every open through while the tries change, so no open of a file
  // that is sensitive before and after is missed; the new entries go in before the old
  // ones that are gone are taken out.
  tl_path_filter all{};
  all.match_all = 1;
  const uint32_t zero = 0;
  int err = bpf_map__update_elem(skel_->maps.tl_path_filter, &zero, sizeof(zero), &all, sizeof(all),
                                 BPF_ANY);
  if (err != 0) return Status::FromErrno(err, "path prefilter settings");
  std::vector<SensitivePath> old = std::move(paths_);
  paths_ = std::move(paths);
  if (Status s = FillPathTable(); !s.ok()) {
    paths_ = std::move(old);
    Status back = FillPathTable();
    if (!back.ok()) TL_LOG(ERROR) << "restoring the sensitive-path table: " << back.ToString();
    return s;
  }
  const auto same_key = [](const tl_path_key& a, const tl_path_key& b) {
    return std::memcmp(&a, &b, sizeof(a)) == 0;
  };
  for (const SensitivePath& gone : old) {
    tl_path_key key;
    bool suffix = false;
    if (!MakePathKey(gone, &key, &suffix).ok()) continue;
    bool kept = false;
    for (const SensitivePath& now : paths_) {
      tl_path_key k2;
      bool s2 = false;
      if (MakePathKey(now, &k2, &s2).ok() && s2 == suffix && same_key(key, k2)) kept = true;
    }
    if (kept) continue;
    bpf_map* map = suffix ? skel_->maps.tl_path_suffix : skel_->maps.tl_path_prefix;
    bpf_map__delete_elem(map, &key, sizeof(key), 0);
  }
  const PathTriggers now_triggers = CompilePathTriggers(paths_);
  for (const NameTrigger& t : CompilePathTriggers(old).triggers) {
    bool kept = false;
    for (const NameTrigger& n : now_triggers.triggers) {
      if (n.depth == t.depth && n.name == t.name) kept = true;
    }
    if (kept) continue;
    tl_name_key key = MakeTriggerKey(t);
    bpf_map__delete_elem(skel_->maps.tl_name_triggers, &key, sizeof(key), 0);
  }
  return Status::Ok();
}

Status BpfProbe::FillPathTable() {
  for (size_t i = 0; i < paths_.size(); ++i) {
    tl_path_key key;
    bool suffix = false;
    TL_RETURN_IF_ERROR(MakePathKey(paths_[i], &key, &suffix));
    tl_path_rule value{};
    value.rule_id = static_cast<uint32_t>(i + 1);
    value.match = static_cast<uint32_t>(paths_[i].match);
    bpf_map* map = suffix ? skel_->maps.tl_path_suffix : skel_->maps.tl_path_prefix;
    int err = bpf_map__update_elem(map, &key, sizeof(key), &value, sizeof(value), BPF_ANY);
    if (err != 0) return Status::FromErrno(err, "sensitive path table: " + paths_[i].path);
  }

  // The prefilter in front of the tries (sensor/path_triggers.h).
  const PathTriggers triggers = CompilePathTriggers(paths_);
  for (const NameTrigger& t : triggers.triggers) {
    tl_name_key key = MakeTriggerKey(t);
    const uint8_t one = 1;
    int err = bpf_map__update_elem(skel_->maps.tl_name_triggers, &key, sizeof(key), &one,
                                   sizeof(one), BPF_ANY);
    if (err != 0) return Status::FromErrno(err, "path prefilter: " + t.name);
  }
  tl_path_filter filter{};
  filter.match_all = triggers.match_all ? 1 : 0;
  filter.depth_mask = triggers.depth_mask;
  filter.file_len_mask = triggers.file_len_mask;
  filter.dir_len_mask = triggers.dir_len_mask;
  const uint32_t zero = 0;
  int err = bpf_map__update_elem(skel_->maps.tl_path_filter, &zero, sizeof(zero), &filter,
                                 sizeof(filter), BPF_ANY);
  if (err != 0) return Status::FromErrno(err, "path prefilter settings");
  if (triggers.match_all) {
    TL_LOG(WARNING) << "path prefilter off, every open is matched in full: " << triggers.why_all;
  }
  return Status::Ok();
}

Status BpfProbe::RefreshUtmpFiles() {
  if (skel_ == nullptr) return Status::Internal("probe not loaded");
  std::vector<std::pair<uint64_t, uint64_t>> now;
  bpf_map* map = skel_->maps.tl_utmp_files;
  const std::pair<const std::string*, uint32_t> files[] = {{&options_.btmp_path, TL_UTMP_BTMP},
                                                           {&options_.wtmp_path, TL_UTMP_WTMP}};
  for (const auto& [path, kind] : files) {
    struct stat sb {};
    if (path->empty() || stat(path->c_str(), &sb) != 0) continue;  // may appear later
    tl_file_id id{};
    id.dev = KernelDev(sb.st_dev);
    id.ino = sb.st_ino;
    int err = bpf_map__update_elem(map, &id, sizeof(id), &kind, sizeof(kind), BPF_ANY);
    if (err != 0) return Status::FromErrno(err, "utmp file table: " + *path);
    now.emplace_back(id.dev, id.ino);
  }
  for (const auto& old : utmp_ids_) {
    if (std::find(now.begin(), now.end(), old) != now.end()) continue;
    tl_file_id id{};
    id.dev = old.first;
    id.ino = old.second;
    bpf_map__delete_elem(map, &id, sizeof(id), 0);
  }
  utmp_ids_ = std::move(now);
  next_utmp_refresh_ns_ = ClockNs(CLOCK_MONOTONIC) + kUtmpRefreshNs;
  return Status::Ok();
}

int BpfProbe::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfProbe*>(ctx);
  if (self->on_record_ != nullptr) {
    (*self->on_record_)(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  }
  return 0;
}

Result<int> BpfProbe::Poll(int timeout_ms,
                           const std::function<void(std::span<const uint8_t>)>& on_record) {
  if (ClockNs(CLOCK_MONOTONIC) >= next_utmp_refresh_ns_) {
    Status st = RefreshUtmpFiles();
    if (!st.ok()) {
      TL_LOG(WARNING) << "utmp refresh: " << st.ToString();
    }
  }
  on_record_ = &on_record;
  struct Reset {
    BpfProbe* p;
    ~Reset() { p->on_record_ = nullptr; }
  } reset{this};

  // Priority ring first, every time, so logins never wait behind a bulk backlog.
  auto drain = [&]() -> Result<int> {
    int n = ring_buffer__consume(priority_rb_);
    if (n < 0) return Status::FromErrno(n, "consume priority ring buffer");
    int m = ring_buffer__consume(bulk_rb_);
    if (m < 0) return Status::FromErrno(m, "consume ring buffer");
    return n + m;
  };
  TL_ASSIGN_OR_RETURN(int consumed, drain());
  if (consumed > 0 || timeout_ms == 0) return consumed;
  epoll_event events[2];
  int ready = epoll_wait(epoll_fd_, events, 2, timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return 0;
    return Status::FromErrno(errno, "epoll_wait");
  }
  if (ready == 0) return 0;
  return drain();
}

ProbeCounters BpfProbe::ReadCounters() const {
  ProbeCounters out;
  out.drops_by_type.assign(TL_REC_TYPE_SLOTS, 0);
  const int ncpus = libbpf_num_possible_cpus();
  if (skel_ == nullptr || ncpus <= 0) return out;
  std::vector<tl_counters> per_cpu(static_cast<size_t>(ncpus));
  uint32_t key = 0;
  int err = bpf_map__lookup_elem(skel_->maps.tl_counters_map, &key, sizeof(key), per_cpu.data(),
                                 per_cpu.size() * sizeof(tl_counters), 0);
  if (err != 0) {
    TL_LOG(WARNING) << "reading BPF counters: " << std::strerror(-err);
    return out;
  }
  for (const tl_counters& c : per_cpu) {
    for (size_t t = 0; t < TL_REC_TYPE_SLOTS; ++t) {
      out.drops_by_type[t] += c.ringbuf_drops[t];
      out.ringbuf_drops += c.ringbuf_drops[t];
    }
    out.helper_errors += c.helper_errors;
    out.state_errors += c.state_errors;
  }
  return out;
}

}  // namespace tripline::sensor
