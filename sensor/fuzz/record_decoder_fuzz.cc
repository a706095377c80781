// libFuzzer target for the ring-buffer record decoder.
//
// 1. Any bytes in: an Event or a Status out, never a crash, a hang or an out-of-bounds read.
// 2. A valid record decodes to the fields it was built from: the input also drives the
//    fields of a well-formed file-open record (header, result, flags, rule, path), which
//    must decode, and decode to exactly those values.
#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "events.h"
#include "sensor/record_decoder.h"

namespace {

using tripline::sensor::SensitivePath;

const SensitivePath kRules[] = {
    {SensitivePath::Match::kExact, "/etc/shadow"},
    {SensitivePath::Match::kPrefix, "/etc/pam.d/"},
};

// Takes fixed-size values off the front of the input; zeros once it is used up.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T Take() {
    T v{};
    const size_t n = std::min(sizeof(T), size_);
    if (n == 0) return v;  // libFuzzer may pass an empty input as a null pointer
    std::memcpy(&v, data_, n);
    data_ += n;
    size_ -= n;
    return v;
  }
  // Up to `max` printable ASCII characters (never NUL).
  std::string Text(size_t max) {
    const size_t n = Take<uint8_t>() % (max + 1);
    std::string s;
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(0x21 + Take<uint8_t>() % 94));
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

[[noreturn]] void Violated(const char* what) {
  std::fprintf(stderr, "record_decoder_fuzz: a valid record decoded wrongly: %s\n", what);
  std::abort();
}

void CheckBuiltFileOpen(const uint8_t* data, size_t size) {
  Reader in(data, size);
  tl_file_open_record r{};
  r.hdr.type = TL_REC_FILE_OPEN;
  r.hdr.version = TL_RECORD_VERSION;
  r.hdr.size = sizeof(r);
  r.hdr.ktime_ns = in.Take<uint64_t>() % (uint64_t{1} << 62);
  r.hdr.pid = in.Take<uint32_t>();
  r.hdr.tgid = in.Take<uint32_t>();
  r.hdr.ppid = in.Take<uint32_t>();
  r.hdr.uid = in.Take<uint32_t>();
  r.hdr.gid = in.Take<uint32_t>();
  r.hdr.login_uid = in.Take<uint32_t>();
  r.hdr.session_id = in.Take<uint32_t>();
  r.hdr.uts_inum = in.Take<uint32_t>();
  r.hdr.cgroup_id = in.Take<uint64_t>();
  const std::string comm = in.Text(TL_COMM_LEN - 1);
  std::memcpy(r.hdr.comm, comm.data(), comm.size());
  r.result = -static_cast<int32_t>(in.Take<uint16_t>() % 4096);  // 0 or -errno
  r.flags = in.Take<uint32_t>();
  r.mode = in.Take<uint32_t>();
  r.rule_id = in.Take<uint8_t>() % 4;  // 0 and 3: not in the table
  r.match = static_cast<uint8_t>(TL_MATCH_EXACT + in.Take<uint8_t>() % 3);
  r.path_source = static_cast<uint8_t>(TL_PATH_CANONICAL + in.Take<uint8_t>() % 3);
  const std::string path = "/" + in.Text(TL_PATH_LEN - 2);
  std::memcpy(r.path, path.data(), path.size());
  r.path_len = static_cast<uint16_t>(path.size());

  constexpr int64_t kOffset = 1'700'000'000'000'000'000LL;
  auto event = tripline::sensor::DecodeRecord(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&r), sizeof(r)), kOffset, kRules);
  if (!event.ok()) Violated(event.status().ToString().c_str());
  const tripline::ProcessInfo& p = event->process;
  if (event->time_ns != static_cast<int64_t>(r.hdr.ktime_ns) + kOffset) Violated("time");
  if (p.pid != r.hdr.pid || p.tgid != r.hdr.tgid || p.ppid != r.hdr.ppid) Violated("pids");
  if (p.uid != r.hdr.uid || p.gid != r.hdr.gid || p.login_uid != r.hdr.login_uid) {
    Violated("ids");
  }
  if (p.audit_session != r.hdr.session_id || p.uts_inum != r.hdr.uts_inum ||
      p.cgroup_id != r.hdr.cgroup_id) {
    Violated("session, namespace or cgroup");
  }
  if (p.comm != comm) Violated("comm");
  const auto* f = event->As<tripline::FileOpenEvent>();
  if (f == nullptr) Violated("not a file-open event");
  if (f->path != path) Violated("path");
  if (f->result != r.result || f->flags != r.flags) Violated("result or flags");
  const tripline::FileAccess access =
      (r.flags & O_ACCMODE) == O_RDONLY   ? tripline::FileAccess::kRead
      : (r.flags & O_ACCMODE) == O_WRONLY ? tripline::FileAccess::kWrite
      : (r.flags & O_ACCMODE) == O_RDWR   ? tripline::FileAccess::kReadWrite
                                          : tripline::FileAccess::kUnspecified;
  if (f->access != access) Violated("access");
  if (r.rule_id == 1 && f->rule != "exact:/etc/shadow") Violated("rule 1");
  if (r.rule_id == 2 && f->rule != "prefix:/etc/pam.d/") Violated("rule 2");
  if ((r.rule_id == 0 || r.rule_id == 3) &&
      f->rule.find("#" + std::to_string(r.rule_id)) == std::string::npos) {
    Violated("unknown rule id");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto event = tripline::sensor::DecodeRecord(bytes, 1'700'000'000'000'000'000LL);
  if (event.ok()) {
    // Touch the decoded strings so sanitizers see every byte the decoder produced.
    volatile size_t sink = event->process.comm.size();
    (void)sink;
  }
  auto with_rules = tripline::sensor::DecodeRecord(bytes, 0, kRules);
  (void)with_rules;
  CheckBuiltFileOpen(data, size);
  return 0;
}
