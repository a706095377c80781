// BpfProbe: the loaded and attached BPF programs of one sensor (bpf/), and the ring buffers
// they write to.
//
// Threading: Open() and the destructor run on one thread; Poll() is not reentrant (one
// poller); ReadCounters() and the const accessors may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "sensor/record_decoder.h"

struct tripline_probe;
struct bpf_link;
struct ring_buffer;

namespace tripline::sensor {

struct ProbeOptions {
  // UTS namespace inode whose tasks are watched; 0 watches the whole host.
  uint32_t target_uts_inum = 0;
  // The sensor's own tgid, never reported (0: nothing excluded).
  uint32_t self_tgid = 0;
  // The in-kernel sensitive-path table; rule id N in records is sensitive_paths[N-1].
  std::vector<SensitivePath> sensitive_paths = {};
  // libpam to put the login uprobes on; empty: found at start-up (LocateLibpam).
  std::string libpam_path;
  // Exec arguments reported per exec (1..64); argument bytes are capped at 1024.
  uint32_t exec_max_args = 16;
  // Bulk ring buffer (file opens, execs), rounded up to a power of two. 4 MiB holds about
  // 11,000 file-open or 3,000 exec records, several seconds of a heavy burst at the
  // decoder's ~1.8 M records/s; the kernel maps the data pages twice, so each MiB here
  // costs 2 MiB of the sensor's RSS.
  uint32_t ringbuf_bytes = 4 << 20;
  // Priority ring buffer (logins, utmp, network), rounded up to a power of two.
  uint32_t priority_ringbuf_bytes = 1 << 20;
  // Files whose utmp entries are reported; a missing one is looked for again while polling.
  std::string btmp_path = "/var/log/btmp";
  std::string wtmp_path = "/var/log/wtmp";
  // Processes whose accepted connections are reported besides those named "sshd*".
  std::vector<uint32_t> listener_tgids = {};
  // Pass over the preferred variants, as if the kernel refused them: trampolines
  // (fentry/fexit: the families fall back to syscall tracepoints) and the bpf_rdonly_cast
  // kfunc (the programs read kernel objects with probe reads). For tests and measurements,
  // so that every variant runs on a kernel that would pick another.
  bool avoid_trampolines = false;
  bool avoid_kfuncs = false;
};

// How one hook family runs on this host.
struct FamilyStatus {
  enum class State { kLive, kDegraded, kDisabled };
  std::string name;  // "file", "exec", "io_uring", "net", "login-utmp", "login-pam"
  State state = State::kDisabled;
  // kLive: the family sees all it is built to see, on `hooks` (its preferred variant, or
  // the same hooks reading kernel memory with helper calls where the kernel lacks a kfunc:
  // "fentry, probe reads"). kDegraded: it runs on a fallback that misses some of it.
  // kDisabled: it sees nothing.
  std::string hooks;   // the variant that runs; empty when disabled
  std::string reason;  // why not the preferred variant, or why off; empty when preferred
  std::string remedy;  // what would bring the preferred variant back
};

const char* FamilyStateName(FamilyStatus::State state);  // "live", "degraded", "disabled"

// What the verifier made of one program (bpftool's veristat, for Tripline's programs).
struct ProgramVerification {
  std::string family;
  std::string variant;
  std::string program;
  bool loaded = false;
  // Instructions the verifier processed (its budget is 1,000,000 per program): from its
  // statistics line, or bpf_prog_info.verified_insns; 0 when it said neither.
  uint64_t insns = 0;
  std::string error;  // why it did not load
  double load_ms = 0;
  std::string log;  // the verifier's whole log, for the program MeasureVerification names
};

// The verifier's budget, and the share of it any Tripline program may use: a program near
// the limit is one the next kernel's verifier refuses.
inline constexpr uint64_t kVerifierLimit = 1000000;
inline constexpr uint64_t kVerifierBudget = kVerifierLimit / 4;

// Loads every variant of every family that this kernel could run, each on its own (with the
// read-only configuration `options` gives), and reports each program's verification. A
// variant the kernel cannot run (missing function or kfunc, trampolines refused) is listed
// with the reason and not loaded.
// With `log_program` set, that program's verification keeps the verifier's whole log (level 1,
// up to 16 MiB) instead of its statistics alone.
Result<std::vector<ProgramVerification>> MeasureVerification(const ProbeOptions& options,
                                                             const std::string& log_program = "");

struct ProbeCounters {
  uint64_t ringbuf_drops = 0;           // records lost to a full ring buffer, all types
  uint64_t helper_errors = 0;           // failed kernel helper calls (fields may be missing)
  uint64_t state_errors = 0;            // state maps full or busy
  std::vector<uint64_t> drops_by_type;  // indexed by record type (tl_record_type)
};

class BpfProbe {
 public:
  // Opens the skeleton, sets the read-only configuration, switches off what this kernel or
  // host cannot run (listed in disabled()), loads, fills the maps and attaches. Fails only
  // when nothing useful could be loaded (e.g. PermissionDenied without CAP_BPF/root).
  static Result<std::unique_ptr<BpfProbe>> Open(const ProbeOptions& options);

  ~BpfProbe();  // detaches and frees everything
  BpfProbe(const BpfProbe&) = delete;
  BpfProbe& operator=(const BpfProbe&) = delete;

  // Waits up to `timeout_ms` (0: no wait, -1: forever) for records and hands each one to
  // `on_record`, priority ring (logins, network) first. The span is valid only during the
  // call. Returns the number of records consumed; 0 on timeout or EINTR.
  Result<int> Poll(int timeout_ms, const std::function<void(std::span<const uint8_t>)>& on_record);

  // Sums of the per-CPU drop and error counters since Open.
  ProbeCounters ReadCounters() const;

  // What is switched off and why: "login-pam: libpam not found ...".
  const std::vector<std::string>& disabled() const { return disabled_; }

  // Families running on a fallback, and why: "file: using syscall tracepoints (fentry
  // refused: ...)". Their records are the same; the notes say what they miss.
  const std::vector<std::string>& degraded() const { return degraded_; }

  // Every family, in a fixed order, with how it runs here.
  const std::vector<FamilyStatus>& families() const { return families_; }

  // Add to a record's ktime_ns (CLOCK_BOOTTIME) to get wall-clock ns since the epoch.
  int64_t BootToWallOffsetNs() const { return boot_to_wall_ns_; }

  // The path table the programs match against (rule id N is element N-1).
  const std::vector<SensitivePath>& sensitive_paths() const { return paths_; }

  // Whether `paths` can be the in-kernel table: lengths, match kinds, the tables'
  // capacities. InvalidArgument naming the rule or the limit otherwise.
  static Status CheckSensitivePaths(const std::vector<SensitivePath>& paths);

  // Replaces the table while the programs run (SIGHUP reload): checks it first (nothing
  // changes on error), adds the new rules, then removes those that are gone. Records
  // already in the ring buffers when it is called may name rules by the old ids.
  Status ReplaceSensitivePaths(std::vector<SensitivePath> paths);

  // The libpam the login uprobes are attached to, empty when they are off.
  const std::string& libpam_path() const { return libpam_path_; }

  // Looks up btmp/wtmp again (rotated or created since) and updates the in-kernel table.
  // Poll calls it every 30 s.
  Status RefreshUtmpFiles();

 private:
  explicit BpfProbe(const ProbeOptions& options);
  Status OpenAndLoad(const std::vector<int>& variant_by_family);
  Status FillSysExitHandlers(const std::vector<int>& variant_by_family);
  Status FillPathTable();
  Status AttachAll();
  Status AttachPam();  // all or none of the required uprobes; an error says which failed
  void Teardown();
  static int OnSample(void* ctx, void* data, size_t size);

  ProbeOptions options_;
  std::vector<SensitivePath> paths_;
  tripline_probe* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  ring_buffer* priority_rb_ = nullptr;
  ring_buffer* bulk_rb_ = nullptr;
  int epoll_fd_ = -1;
  std::vector<std::string> disabled_;
  std::vector<std::string> degraded_;
  std::vector<FamilyStatus> families_;
  std::string libpam_path_;
  std::vector<std::pair<uint64_t, uint64_t>> utmp_ids_;  // (kernel dev, ino) in the map
  int64_t boot_to_wall_ns_ = 0;
  int64_t next_utmp_refresh_ns_ = 0;
  const std::function<void(std::span<const uint8_t>)>* on_record_ = nullptr;
};

// The default sensitive-path table: credential stores, sudo and PAM configuration, SSH keys
// and authorized_keys (after Falco's sensitive_file_names, extended).
std::vector<SensitivePath> DefaultSensitivePaths();

}  // namespace tripline::sensor
