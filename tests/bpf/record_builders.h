// Well-formed BPF records, built the way the kernel programs build them, for decoder tests
// and the fuzz seed corpus.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "events.h"

namespace tripline::sensor::testing {

template <typename T>
std::vector<uint8_t> Bytes(const T& rec) {
  std::vector<uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &rec, sizeof(T));
  return out;
}

template <size_t N>
void Put(char (&dst)[N], std::string_view s) {
  std::memset(dst, 0, N);
  std::memcpy(dst, s.data(), std::min(s.size(), N - 1));
}

inline void FillHeader(tl_header* h, uint16_t type, uint32_t size) {
  h->type = type;
  h->version = TL_RECORD_VERSION;
  h->size = size;
  h->ktime_ns = 5'000'000'000ULL;
  h->pid = 1001;
  h->tgid = 1000;
  h->ppid = 999;
  h->uid = 1500;
  h->gid = 1600;
  h->login_uid = 1500;
  h->session_id = 42;
  h->uts_inum = 4026531838u;
  h->cgroup_id = 777;
  Put(h->comm, "sshd");
}

inline void V4(uint8_t (&dst)[16], const char* text) {
  std::memset(dst, 0, 16);
  inet_pton(AF_INET, text, dst);
}

inline tl_login_record LoginRecord() {
  tl_login_record r{};
  FillHeader(&r.hdr, TL_REC_LOGIN, sizeof(r));
  r.peer.family = AF_INET;
  V4(r.peer.local_addr, "198.18.0.2");
  V4(r.peer.remote_addr, "198.18.0.66");
  r.peer.local_port = 22;
  r.peer.remote_port = 40022;
  r.pam_code = 7;
  r.auth_pid = 1000;
  r.stage = TL_STAGE_AUTHENTICATE;
  Put(r.service, "sshd");
  Put(r.user, "alice");
  Put(r.rhost, "");
  Put(r.tty, "ssh");
  return r;
}

inline tl_file_open_record FileOpenRecord() {
  tl_file_open_record r{};
  FillHeader(&r.hdr, TL_REC_FILE_OPEN, sizeof(r));
  Put(r.hdr.comm, "cat");
  r.result = -13;
  r.flags = O_RDONLY | O_CLOEXEC;
  r.mode = 0;
  r.rule_id = 1;
  r.match = TL_MATCH_EXACT;
  r.path_source = TL_PATH_ARGUMENT;
  Put(r.path, "/etc/shadow");
  r.path_len = 11;
  return r;
}

inline tl_exec_record ExecRecord() {
  tl_exec_record r{};
  FillHeader(&r.hdr, TL_REC_EXEC, sizeof(r));
  Put(r.hdr.comm, "true");
  Put(r.parent_comm, "bash");
  Put(r.filename, "/bin/true");
  static const char kArgs[] = "/bin/true\0--one\0two";  // 3 args, 20 bytes with final NUL
  std::memcpy(r.args, kArgs, sizeof(kArgs));
  r.args_len = sizeof(kArgs);
  r.args_total = sizeof(kArgs);
  r.argc = 3;
  r.max_args = 16;
  return r;
}

inline tl_net_record NetRecord() {
  tl_net_record r{};
  FillHeader(&r.hdr, TL_REC_NET_CONNECT, sizeof(r));
  Put(r.hdr.comm, "ssh");
  r.conn.family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::1", r.conn.local_addr);
  inet_pton(AF_INET6, "2001:db8::2", r.conn.remote_addr);
  r.conn.local_port = 51000;
  r.conn.remote_port = 22;
  r.direction = TL_NET_OUTBOUND;
  r.protocol = 6;
  return r;
}

inline tl_utmp_record UtmpRecord() {
  tl_utmp_record r{};
  FillHeader(&r.hdr, TL_REC_LOGIN_UTMP, sizeof(r));
  r.file = TL_UTMP_BTMP;
  r.write_len = sizeof(tl_utmp);
  r.ut.ut_type = 6;  // LOGIN_PROCESS, as sshd writes to btmp
  r.ut.ut_pid = 1000;
  std::memcpy(r.ut.ut_line, "ssh:notty", 9);
  std::memcpy(r.ut.ut_user, "mallory", 7);
  std::memcpy(r.ut.ut_host, "198.18.0.66", 11);
  inet_pton(AF_INET, "198.18.0.66", r.ut.ut_addr_v6);
  r.ut.ut_tv_sec = 1'700'000'000;
  return r;
}

}  // namespace tripline::sensor::testing
