#include "sensor/record_decoder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cstring>
#include <limits>
#include <type_traits>

#include "events.h"

namespace tripline::sensor {
namespace {

// The wire contract, checked again on this side of it.
static_assert(sizeof(tl_header) == 72);
static_assert(sizeof(tl_login_record) == 544);
static_assert(sizeof(tl_file_open_record) == 352);
static_assert(sizeof(tl_exec_record) == 1384);
static_assert(sizeof(tl_net_record) == 120);
static_assert(sizeof(tl_utmp_record) == 504);
static_assert(offsetof(tl_utmp, ut_addr_v6) == 348, "glibc struct utmp layout");
static_assert(static_cast<int>(LoginStage::kAuthenticate) == TL_STAGE_AUTHENTICATE);
static_assert(static_cast<int>(LoginStage::kSessionClose) == TL_STAGE_SESSION_CLOSE);

// glibc utmp ut_type values.
constexpr int16_t kUtLoginProcess = 6;
constexpr int16_t kUtUserProcess = 7;
constexpr int16_t kUtDeadProcess = 8;

Status Bad(std::string_view what) { return Status::Corruption(what); }

// A record struct read from the buffer. memcpy, since ring-buffer data has no alignment
// guarantee the compiler knows of.
template <typename T>
T Load(std::span<const uint8_t> bytes) {
  static_assert(std::is_trivially_copyable_v<T>);
  T out;
  std::memcpy(&out, bytes.data(), sizeof(T));
  return out;
}

// A NUL-terminated string in a fixed array. `required_nul`: the kernel always terminates
// it, so a missing NUL means a corrupt record.
template <size_t N>
Result<std::string> FixedString(const char (&field)[N], std::string_view name,
                                bool required_nul = true) {
  const void* nul = std::memchr(field, 0, N);
  if (nul == nullptr) {
    if (required_nul) return Bad(std::string(name) + " is not NUL-terminated");
    return std::string(field, N);
  }
  return std::string(field, static_cast<const char*>(nul) - field);
}

std::string AddrText(uint16_t family, const uint8_t (&addr)[16]) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    if (inet_ntop(AF_INET, addr, buf, sizeof(buf)) == nullptr) return "";
  } else if (family == AF_INET6) {
    if (inet_ntop(AF_INET6, addr, buf, sizeof(buf)) == nullptr) return "";
  } else {
    return "";
  }
  return buf;
}

Status CheckFamily(uint16_t family, bool allow_unknown, std::string_view name) {
  if (family == AF_INET || family == AF_INET6 || (allow_unknown && family == 0)) {
    return Status::Ok();
  }
  return Bad(std::string(name) + " family " + std::to_string(family) + " unknown");
}

Status DecodeHeader(const tl_header& h, Event* event, int64_t offset_ns) {
  if (h.ktime_ns > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / 2)) {
    return Bad("ktime_ns " + std::to_string(h.ktime_ns) + " out of range");
  }
  event->time_ns = static_cast<int64_t>(h.ktime_ns) + offset_ns;
  ProcessInfo& p = event->process;
  p.pid = h.pid;
  p.tgid = h.tgid;
  p.ppid = h.ppid;
  p.uid = h.uid;
  p.gid = h.gid;
  p.login_uid = h.login_uid;
  p.audit_session = h.session_id;
  p.cgroup_id = h.cgroup_id;
  p.uts_inum = h.uts_inum;
  TL_ASSIGN_OR_RETURN(p.comm, FixedString(h.comm, "comm"));
  return Status::Ok();
}

void FillPeer(const tl_endpoints& peer, LoginEvent* login) {
  if (peer.family == 0) return;
  login->remote_addr = AddrText(peer.family, peer.remote_addr);
  login->remote_port = peer.remote_port;
  login->local_addr = AddrText(peer.family, peer.local_addr);
  login->local_port = peer.local_port;
}

Result<EventBody> DecodeLogin(std::span<const uint8_t> bytes) {
  const auto rec = Load<tl_login_record>(bytes);
  if (rec.stage < TL_STAGE_AUTHENTICATE || rec.stage > TL_STAGE_SESSION_CLOSE) {
    return Bad("login stage " + std::to_string(rec.stage) + " unknown");
  }
  TL_RETURN_IF_ERROR(CheckFamily(rec.peer.family, true, "login peer"));
  LoginEvent login;
  login.source = LoginSource::kPam;
  login.stage = static_cast<LoginStage>(rec.stage);
  login.pam_code = rec.pam_code;
  login.outcome = rec.pam_code == 0 ? Outcome::kSuccess : Outcome::kFailure;
  if (rec.pam_code != 0) login.reason = PamReasonText(rec.pam_code);
  login.auth_pid = rec.auth_pid;
  TL_ASSIGN_OR_RETURN(login.service, FixedString(rec.service, "service"));
  TL_ASSIGN_OR_RETURN(login.user, FixedString(rec.user, "user"));
  TL_ASSIGN_OR_RETURN(login.tty, FixedString(rec.tty, "tty"));
  TL_ASSIGN_OR_RETURN(std::string rhost, FixedString(rec.rhost, "rhost"));
  FillPeer(rec.peer, &login);
  // PAM_RHOST is what the application said; prefer it over the inherited connection.
  if (!rhost.empty()) login.remote_addr = rhost;
  return EventBody(std::move(login));
}

Result<EventBody> DecodeUtmp(std::span<const uint8_t> bytes, const tl_header& hdr) {
  const auto rec = Load<tl_utmp_record>(bytes);
  if (rec.file != TL_UTMP_BTMP && rec.file != TL_UTMP_WTMP) {
    return Bad("utmp file " + std::to_string(rec.file) + " unknown");
  }
  if (rec.write_len < sizeof(tl_utmp)) {
    return Bad("utmp write_len " + std::to_string(rec.write_len) + " smaller than a utmp entry (" +
               std::to_string(sizeof(tl_utmp)) + ")");
  }
  TL_RETURN_IF_ERROR(CheckFamily(rec.peer.family, true, "utmp peer"));
  const tl_utmp& ut = rec.ut;
  LoginEvent login;
  login.source = LoginSource::kUtmp;
  // utmp fields are fixed-width and need not be terminated.
  TL_ASSIGN_OR_RETURN(login.user, FixedString(ut.ut_user, "ut_user", false));
  TL_ASSIGN_OR_RETURN(login.tty, FixedString(ut.ut_line, "ut_line", false));
  TL_ASSIGN_OR_RETURN(std::string host, FixedString(ut.ut_host, "ut_host", false));
  login.auth_pid = ut.ut_pid >= 0 ? static_cast<uint32_t>(ut.ut_pid) : 0;
  login.service = hdr.comm[0] != 0 ? std::string(hdr.comm, strnlen(hdr.comm, TL_COMM_LEN)) : "";
  if (rec.file == TL_UTMP_BTMP) {
    login.stage = LoginStage::kFailedRecord;
    login.outcome = Outcome::kFailure;
    login.reason = "failed login recorded in btmp";
  } else if (ut.ut_type == kUtUserProcess) {
    login.stage = LoginStage::kSessionOpen;
    login.outcome = Outcome::kSuccess;
  } else if (ut.ut_type == kUtDeadProcess) {
    login.stage = LoginStage::kSessionClose;
    login.outcome = Outcome::kSuccess;
  } else if (ut.ut_type == kUtLoginProcess) {
    login.stage = LoginStage::kUnspecified;
  } else if (ut.ut_type < 0 || ut.ut_type > 9) {
    return Bad("ut_type " + std::to_string(ut.ut_type) + " unknown");
  }
  FillPeer(rec.peer, &login);
  // The address the daemon wrote, when it wrote one: ut_addr_v6 (IPv4 in the first word).
  uint8_t addr[16];
  std::memcpy(addr, ut.ut_addr_v6, sizeof(addr));
  const bool v6 = ut.ut_addr_v6[1] != 0 || ut.ut_addr_v6[2] != 0 || ut.ut_addr_v6[3] != 0;
  if (v6) {
    login.remote_addr = AddrText(AF_INET6, addr);
  } else if (ut.ut_addr_v6[0] != 0) {
    login.remote_addr = AddrText(AF_INET, addr);
  } else if (!host.empty()) {
    login.remote_addr = host;
  }
  return EventBody(std::move(login));
}

Result<EventBody> DecodeFileOpen(std::span<const uint8_t> bytes,
                                 std::span<const SensitivePath> rules) {
  const auto rec = Load<tl_file_open_record>(bytes);
  if (rec.match < TL_MATCH_EXACT || rec.match > TL_MATCH_SUFFIX) {
    return Bad("file match " + std::to_string(rec.match) + " unknown");
  }
  if (rec.path_source != TL_PATH_CANONICAL && rec.path_source != TL_PATH_ARGUMENT &&
      rec.path_source != TL_PATH_JOINED) {
    return Bad("file path_source " + std::to_string(rec.path_source) + " unknown");
  }
  if (rec.path_len == 0 || rec.path_len >= TL_PATH_LEN) {
    return Bad("file path_len " + std::to_string(rec.path_len) + " out of range (1.." +
               std::to_string(TL_PATH_LEN - 1) + ")");
  }
  if (rec.path[rec.path_len] != 0 || std::memchr(rec.path, 0, rec.path_len) != nullptr) {
    return Bad("file path is not NUL-terminated at path_len " + std::to_string(rec.path_len));
  }
  if (rec.result > 0 || rec.result < -4095) {
    return Bad("file result " + std::to_string(rec.result) + " is neither 0 nor -errno");
  }
  FileOpenEvent file;
  file.path.assign(rec.path, rec.path_len);
  file.flags = rec.flags;
  file.result = rec.result;
  switch (rec.flags & O_ACCMODE) {
    case O_RDONLY: file.access = FileAccess::kRead; break;
    case O_WRONLY: file.access = FileAccess::kWrite; break;
    case O_RDWR: file.access = FileAccess::kReadWrite; break;
    default: file.access = FileAccess::kUnspecified; break;
  }
  const auto match = static_cast<SensitivePath::Match>(rec.match);
  if (rec.rule_id >= 1 && rec.rule_id <= rules.size()) {
    const SensitivePath& rule = rules[rec.rule_id - 1];
    file.rule = std::string(SensitivePathMatchName(rule.match)) + ":" + rule.path;
  } else {
    file.rule = std::string(SensitivePathMatchName(match)) + "#" + std::to_string(rec.rule_id);
  }
  return EventBody(std::move(file));
}

Result<EventBody> DecodeExec(std::span<const uint8_t> bytes, Event* event) {
  const auto rec = Load<tl_exec_record>(bytes);
  if ((rec.flags & ~(TL_EXEC_FILENAME_TRUNCATED | TL_EXEC_ARGS_TRUNCATED)) != 0) {
    return Bad("exec flags " + std::to_string(rec.flags) + " unknown");
  }
  if (rec.args_len > TL_ARGS_LEN) {
    return Bad("exec args_len " + std::to_string(rec.args_len) + " larger than args (" +
               std::to_string(TL_ARGS_LEN) + ")");
  }
  if (rec.args_len > rec.args_total) {
    return Bad("exec args_len " + std::to_string(rec.args_len) + " larger than args_total " +
               std::to_string(rec.args_total));
  }
  if (rec.max_args > TL_MAX_ARGS_LIMIT) {
    return Bad("exec max_args " + std::to_string(rec.max_args) + " above " +
               std::to_string(TL_MAX_ARGS_LIMIT));
  }
  ExecEvent exec;
  TL_ASSIGN_OR_RETURN(exec.filename, FixedString(rec.filename, "exec filename"));
  TL_ASSIGN_OR_RETURN(exec.parent_comm, FixedString(rec.parent_comm, "parent_comm"));
  exec.argv_truncated = (rec.flags & TL_EXEC_ARGS_TRUNCATED) != 0 || rec.args_len < rec.args_total;
  const size_t max_args = rec.max_args == 0 ? TL_MAX_ARGS_LIMIT : rec.max_args;
  size_t pos = 0;
  while (pos < rec.args_len) {
    if (exec.argv.size() >= max_args) {
      exec.argv_truncated = true;
      break;
    }
    const void* nul = std::memchr(rec.args + pos, 0, rec.args_len - pos);
    if (nul == nullptr) {
      // The copy stopped inside this argument.
      exec.argv.emplace_back(rec.args + pos, rec.args_len - pos);
      exec.argv_truncated = true;
      break;
    }
    const size_t len = static_cast<const char*>(nul) - (rec.args + pos);
    exec.argv.emplace_back(rec.args + pos, len);
    pos += len + 1;
  }
  if (exec.argv.size() < rec.argc) exec.argv_truncated = true;
  event->process.exe = exec.filename;
  return EventBody(std::move(exec));
}

Result<EventBody> DecodeNet(std::span<const uint8_t> bytes) {
  const auto rec = Load<tl_net_record>(bytes);
  if (rec.direction != TL_NET_OUTBOUND && rec.direction != TL_NET_ACCEPTED) {
    return Bad("net direction " + std::to_string(rec.direction) + " unknown");
  }
  TL_RETURN_IF_ERROR(CheckFamily(rec.conn.family, false, "net"));
  NetConnectEvent net;
  net.direction =
      rec.direction == TL_NET_OUTBOUND ? NetDirection::kOutbound : NetDirection::kAccepted;
  net.family = rec.conn.family;
  net.protocol = rec.protocol;
  net.local_addr = AddrText(rec.conn.family, rec.conn.local_addr);
  net.local_port = rec.conn.local_port;
  net.remote_addr = AddrText(rec.conn.family, rec.conn.remote_addr);
  net.remote_port = rec.conn.remote_port;
  return EventBody(std::move(net));
}

size_t ExpectedSize(uint16_t type) {
  switch (type) {
    case TL_REC_LOGIN: return sizeof(tl_login_record);
    case TL_REC_FILE_OPEN: return sizeof(tl_file_open_record);
    case TL_REC_EXEC: return sizeof(tl_exec_record);
    case TL_REC_NET_CONNECT: return sizeof(tl_net_record);
    case TL_REC_LOGIN_UTMP: return sizeof(tl_utmp_record);
    default: return 0;
  }
}

}  // namespace

std::string_view SensitivePathMatchName(SensitivePath::Match match) {
  switch (match) {
    case SensitivePath::Match::kExact: return "exact";
    case SensitivePath::Match::kPrefix: return "prefix";
    case SensitivePath::Match::kSuffix: return "suffix";
  }
  return "unknown";
}

std::string PamReasonText(int32_t pam_code) {
  // Linux-PAM's codes (security/_pam_types.h) and pam_strerror's texts, lower-cased.
  switch (pam_code) {
    case 0: return "success";
    case 1: return "failed to load module";
    case 2: return "symbol not found";
    case 3: return "error in service module";
    case 4: return "system error";
    case 5: return "memory buffer error";
    case 6: return "permission denied";
    case 7: return "authentication failure";
    case 8: return "insufficient credentials to access authentication data";
    case 9: return "authentication service cannot retrieve authentication info";
    case 10: return "user unknown";
    case 11: return "maximum number of tries exceeded";
    case 12: return "authentication token is no longer valid; new one required";
    case 13: return "account expired";
    case 14: return "cannot make/remove an entry for the specified session";
    case 15: return "authentication service cannot retrieve user credentials";
    case 16: return "user credentials expired";
    case 17: return "failure setting user credentials";
    case 18: return "no module specific data is present";
    case 19: return "conversation error";
    case 20: return "authentication token manipulation error";
    case 21: return "authentication information cannot be recovered";
    case 22: return "authentication token lock busy";
    case 23: return "authentication token aging disabled";
    case 24: return "failed preliminary check by password service";
    case 25: return "the return value should be ignored by pam dispatch";
    case 26: return "module is unknown";
    case 27: return "authentication token expired";
    case 28: return "conversation is waiting for event";
    case 29: return "application needs to call libpam again";
    default: return "pam error " + std::to_string(pam_code);
  }
}

Result<Event> DecodeRecord(std::span<const uint8_t> bytes, int64_t boot_to_wall_offset_ns,
                           std::span<const SensitivePath> rules) {
  if (bytes.size() < sizeof(tl_header)) {
    return Bad("record of " + std::to_string(bytes.size()) + " bytes smaller than header (" +
               std::to_string(sizeof(tl_header)) + ")");
  }
  const auto hdr = Load<tl_header>(bytes);
  const size_t expected = ExpectedSize(hdr.type);
  if (expected == 0) return Bad("record type " + std::to_string(hdr.type) + " unknown");
  if (hdr.version != TL_RECORD_VERSION) {
    return Bad("record type " + std::to_string(hdr.type) + " version " +
               std::to_string(hdr.version) + " unsupported (want " +
               std::to_string(TL_RECORD_VERSION) + ")");
  }
  if (hdr.size < sizeof(tl_header)) {
    return Bad("size " + std::to_string(hdr.size) + " smaller than header (" +
               std::to_string(sizeof(tl_header)) + ")");
  }
  if (hdr.size > bytes.size()) {
    return Bad("size " + std::to_string(hdr.size) + " larger than the buffer (" +
               std::to_string(bytes.size()) + ")");
  }
  if (hdr.size != expected) {
    return Bad("record type " + std::to_string(hdr.type) + " size " + std::to_string(hdr.size) +
               " is not " + std::to_string(expected));
  }
  const std::span<const uint8_t> rec = bytes.first(hdr.size);

  Event event;
  TL_RETURN_IF_ERROR(DecodeHeader(hdr, &event, boot_to_wall_offset_ns));
  Result<EventBody> body = Status::Internal("unreachable");
  switch (hdr.type) {
    case TL_REC_LOGIN: body = DecodeLogin(rec); break;
    case TL_REC_LOGIN_UTMP: body = DecodeUtmp(rec, hdr); break;
    case TL_REC_FILE_OPEN: body = DecodeFileOpen(rec, rules); break;
    case TL_REC_EXEC: body = DecodeExec(rec, &event); break;
    case TL_REC_NET_CONNECT: body = DecodeNet(rec); break;
    default: break;
  }
  if (!body.ok()) return body.status();
  event.body = std::move(body).value();
  return event;
}

}  // namespace tripline::sensor
