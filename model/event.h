// Tripline's domain events: what happened on a host, independent of the wire format.
//
// The sensor builds these from kernel records; the aggregator gets them from the wire
// (model/event_proto.h converts at the service edge) and works on them everywhere else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tripline {

constexpr uint32_t kUnsetId = 0xffffffffu;  // audit login uid / session id not set

struct ProcessInfo {
  uint32_t pid = 0;   // thread id
  uint32_t tgid = 0;  // process id
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t login_uid = kUnsetId;
  uint32_t audit_session = kUnsetId;
  uint64_t cgroup_id = 0;
  uint32_t uts_inum = 0;
  std::string comm;
  std::string exe;
  std::string user;        // name of uid, where resolvable
  std::string login_user;  // name of login_uid, where resolvable
  std::string container_id;
  // Kubernetes, when the process runs in a pod (sensor/kube_pod.h).
  std::string k8s_pod_uid;
  std::string k8s_namespace;
  std::string k8s_pod;
  std::string k8s_node;
  std::string k8s_service_account;  // of k8s_namespace
};

enum class LoginSource : uint8_t { kUnspecified = 0, kPam = 1, kUtmp = 2, kCred = 3 };
enum class LoginStage : uint8_t {
  kUnspecified = 0,
  kAuthenticate = 1,
  kAccount = 2,
  kSessionOpen = 3,
  kSessionClose = 4,
  kFailedRecord = 5,
};
enum class Outcome : uint8_t { kUnspecified = 0, kSuccess = 1, kFailure = 2 };

struct LoginEvent {
  std::string service;
  std::string user;
  std::string remote_addr;
  uint32_t remote_port = 0;
  std::string local_addr;
  uint32_t local_port = 0;
  Outcome outcome = Outcome::kUnspecified;
  std::string reason;
  int32_t pam_code = 0;
  LoginSource source = LoginSource::kUnspecified;
  LoginStage stage = LoginStage::kUnspecified;
  uint32_t auth_pid = 0;
  std::string tty;
};

enum class FileAccess : uint8_t { kUnspecified = 0, kRead = 1, kWrite = 2, kReadWrite = 3 };

struct FileOpenEvent {
  std::string path;
  uint32_t flags = 0;
  FileAccess access = FileAccess::kUnspecified;
  int32_t result = 0;  // 0 on success, else -errno
  std::string rule;
};

struct ExecEvent {
  std::string filename;
  std::vector<std::string> argv;
  bool argv_truncated = false;
  std::string parent_comm;
};

enum class NetDirection : uint8_t { kUnspecified = 0, kOutbound = 1, kAccepted = 2 };

struct NetConnectEvent {
  NetDirection direction = NetDirection::kUnspecified;
  std::string local_addr;
  uint32_t local_port = 0;
  std::string remote_addr;
  uint32_t remote_port = 0;
  uint32_t family = 0;
  uint32_t protocol = 6;
};

struct Account {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<std::string> groups;
  std::string shell;
  std::string home;
  bool interactive_shell = false;
  bool password_set = false;
  bool password_locked = false;
  int64_t max_password_age_days = -1;  // -1: never expires
  int64_t last_password_change_days = 0;
  std::vector<std::string> sudo_rules;
  bool sudo_nopasswd = false;
  uint32_t authorized_keys = 0;
  uint32_t authorized_keys_unrestricted = 0;  // of those, keys without a from= option
  std::vector<std::string> readable_files;    // sensitive files it may read (event.proto)
};

// Processes of one executable with the same credentials and reach (tripline.v1.ProcessPrivilege).
struct ProcessPrivilege {
  std::string exe;
  uint32_t uid = 0;
  std::string user;
  uint64_t cap_effective = 0;
  std::vector<std::string> runtime_sockets;
  uint32_t processes = 0;
  std::vector<uint32_t> pids;
  std::string container_id;
  std::string k8s_service_account;  // "<namespace>/<name>" of the pod, "" outside one
};

struct PostureSnapshot {
  std::vector<Account> accounts;
  std::vector<std::string> root_group_members;
  std::vector<std::string> errors;
  std::vector<ProcessPrivilege> processes;
};

struct KindCounters {
  std::string kind;
  uint64_t events = 0;
  double events_per_second = 0;
};

// How one of the sensor's hook families runs on its host (sensor/bpf_probe.h, FamilyStatus).
struct HookFamilyStatus {
  std::string name;    // "file", "exec", "io_uring", "net", "login-utmp", "login-pam"
  std::string state;   // "live", "degraded" (a fallback that misses some), "disabled"
  std::string hooks;   // the variant that runs ("fentry", "syscall tracepoints"); "" when off
  std::string reason;  // why not the preferred variant, or why off
  std::string remedy;  // what would bring the preferred variant back
};

// Whether `state` is one of the HookFamilyStatus states.
inline bool IsHookFamilyState(std::string_view state) {
  return state == "live" || state == "degraded" || state == "disabled";
}

struct SensorHealth {
  uint64_t ringbuf_drops = 0;
  uint64_t helper_errors = 0;
  uint64_t decode_errors = 0;
  uint64_t spool_drops = 0;
  std::vector<KindCounters> kinds;
  std::vector<std::string> disabled_programs;
  uint64_t rss_bytes = 0;
  uint64_t uptime_seconds = 0;
  std::vector<uint64_t> ringbuf_drops_by_kind;
  std::vector<HookFamilyStatus> families;
  // What weakens this sensor's protection by its own configuration, repeated in every
  // report ("events go to 198.51.100.7:4317 in clear text: ..."); empty when nothing does.
  std::vector<std::string> warnings;
  // Aggregator acknowledgements refused for claiming more than this sensor sent, total.
  uint64_t delivery_protocol_violations = 0;
  // The host's own addresses (interfaces up; not loopback or link-local).
  std::vector<std::string> addresses;
};

using EventBody = std::variant<LoginEvent, FileOpenEvent, ExecEvent, NetConnectEvent,
                               PostureSnapshot, SensorHealth>;

enum class EventKind : uint8_t {
  kLogin = 0,
  kFileOpen = 1,
  kExec = 2,
  kNet = 3,
  kPosture = 4,
  kHealth = 5,
};

struct Event {
  uint64_t seq = 0;
  int64_t time_ns = 0;
  std::string host;
  std::string host_id;
  ProcessInfo process;
  std::string session;  // login session the process belongs to, "" when none
  EventBody body;
  // The strings of this event that held bytes which are not UTF-8 and were rewritten by
  // EscapeInvalidUtf8 (common/text_escape.h): "exec.filename", "exec.argv[2]",
  // "posture.accounts[4].home". Empty for almost every event.
  std::vector<std::string> escaped_fields;

  EventKind kind() const { return static_cast<EventKind>(body.index()); }
  template <typename T>
  const T* As() const {
    return std::get_if<T>(&body);
  }
  template <typename T>
  T* As() {
    return std::get_if<T>(&body);
  }
};

// "login", "file_open", "exec", "net", "posture", "health".
std::string_view KindName(EventKind kind);
// Inverse of KindName; false when unknown.
bool ParseKindName(std::string_view name, EventKind* out);
// Login and network events go ahead of bulk ones when delivery is under pressure.
bool IsPriorityKind(EventKind kind);
// One line a person can read: "login sshd alice from 198.18.0.66:40022 failed".
std::string Summarize(const Event& event);

// Makes every string of `event` valid UTF-8 by rule 1 of common/text_escape.h (valid text
// untouched; otherwise invalid bytes as \xNN and backslashes doubled) and appends the name
// of each rewritten string to `event->escaped_fields`. Returns how many it rewrote. The
// sensor applies this to every event before it leaves the pipeline, so no event is lost
// to a protobuf parse that refuses invalid UTF-8.
size_t EscapeInvalidUtf8(Event* event);

std::string_view OutcomeName(Outcome o);            // "success", "failure", "unspecified"
std::string_view LoginSourceName(LoginSource s);    // "pam", "utmp", "cred"
std::string_view LoginStageName(LoginStage s);      // "authenticate", "account", ...
std::string_view FileAccessName(FileAccess a);      // "read", "write", "read_write"
std::string_view NetDirectionName(NetDirection d);  // "outbound", "accepted"

}  // namespace tripline
