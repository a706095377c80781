#include "sensor/record_decoder.h"

#include <gtest/gtest.h>

#include "tests/bpf/record_builders.h"

namespace tripline::sensor {
namespace {

using testing::Bytes;
using testing::Put;

constexpr int64_t kOffset = 1'700'000'000'000'000'000LL;

void ExpectHeader(const Event& e, std::string_view comm) {
  EXPECT_EQ(e.time_ns, kOffset + 5'000'000'000LL);
  EXPECT_EQ(e.process.pid, 1001u);
  EXPECT_EQ(e.process.tgid, 1000u);
  EXPECT_EQ(e.process.ppid, 999u);
  EXPECT_EQ(e.process.uid, 1500u);
  EXPECT_EQ(e.process.gid, 1600u);
  EXPECT_EQ(e.process.login_uid, 1500u);
  EXPECT_EQ(e.process.audit_session, 42u);
  EXPECT_EQ(e.process.uts_inum, 4026531838u);
  EXPECT_EQ(e.process.cgroup_id, 777u);
  EXPECT_EQ(e.process.comm, comm);
  EXPECT_TRUE(e.host.empty());
  EXPECT_TRUE(e.session.empty());
  EXPECT_EQ(e.seq, 0u);
}

std::string ErrorOf(const std::vector<uint8_t>& bytes) {
  auto r = DecodeRecord(bytes, kOffset);
  EXPECT_FALSE(r.ok());
  return r.status().message();
}

TEST(RecordDecoderTest, PamLoginFailure) {
  auto r = DecodeRecord(Bytes(testing::LoginRecord()), kOffset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectHeader(*r, "sshd");
  const LoginEvent* l = r->As<LoginEvent>();
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->service, "sshd");
  EXPECT_EQ(l->user, "alice");
  EXPECT_EQ(l->remote_addr, "198.18.0.66");
  EXPECT_EQ(l->remote_port, 40022u);
  EXPECT_EQ(l->local_addr, "198.18.0.2");
  EXPECT_EQ(l->local_port, 22u);
  EXPECT_EQ(l->outcome, Outcome::kFailure);
  EXPECT_EQ(l->reason, "authentication failure");
  EXPECT_EQ(l->pam_code, 7);
  EXPECT_EQ(l->source, LoginSource::kPam);
  EXPECT_EQ(l->stage, LoginStage::kAuthenticate);
  EXPECT_EQ(l->auth_pid, 1000u);
  EXPECT_EQ(l->tty, "ssh");
}

TEST(RecordDecoderTest, PamRhostWinsOverPeerAndSuccessHasNoReason) {
  auto rec = testing::LoginRecord();
  Put(rec.rhost, "203.0.113.9");
  rec.pam_code = 0;
  rec.stage = TL_STAGE_SESSION_OPEN;
  auto r = DecodeRecord(Bytes(rec), kOffset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const LoginEvent* l = r->As<LoginEvent>();
  EXPECT_EQ(l->remote_addr, "203.0.113.9");
  EXPECT_EQ(l->remote_port, 40022u);
  EXPECT_EQ(l->outcome, Outcome::kSuccess);
  EXPECT_EQ(l->reason, "");
  EXPECT_EQ(l->stage, LoginStage::kSessionOpen);
}

TEST(RecordDecoderTest, PamReasons) {
  EXPECT_EQ(PamReasonText(10), "user unknown");
  EXPECT_EQ(PamReasonText(13), "account expired");
  EXPECT_EQ(PamReasonText(7), "authentication failure");
  EXPECT_EQ(PamReasonText(99), "pam error 99");
}

TEST(RecordDecoderTest, UtmpBtmp) {
  auto r = DecodeRecord(Bytes(testing::UtmpRecord()), kOffset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectHeader(*r, "sshd");
  const LoginEvent* l = r->As<LoginEvent>();
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->source, LoginSource::kUtmp);
  EXPECT_EQ(l->stage, LoginStage::kFailedRecord);
  EXPECT_EQ(l->outcome, Outcome::kFailure);
  EXPECT_EQ(l->user, "mallory");
  EXPECT_EQ(l->tty, "ssh:notty");
  EXPECT_EQ(l->remote_addr, "198.18.0.66");
  EXPECT_EQ(l->auth_pid, 1000u);
  EXPECT_EQ(l->service, "sshd");
}

TEST(RecordDecoderTest, UtmpWtmpSessionAndUnterminatedUser) {
  auto rec = testing::UtmpRecord();
  rec.file = TL_UTMP_WTMP;
  rec.ut.ut_type = 7;
  std::memset(rec.ut.ut_user, 'u', sizeof(rec.ut.ut_user));  // 32 bytes, no NUL: legal
  std::memset(rec.ut.ut_addr_v6, 0, sizeof(rec.ut.ut_addr_v6));
  auto r = DecodeRecord(Bytes(rec), kOffset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const LoginEvent* l = r->As<LoginEvent>();
  EXPECT_EQ(l->stage, LoginStage::kSessionOpen);
  EXPECT_EQ(l->outcome, Outcome::kSuccess);
  EXPECT_EQ(l->user, std::string(32, 'u'));
  EXPECT_EQ(l->remote_addr, "198.18.0.66");  // from ut_host
}

TEST(RecordDecoderTest, FileOpen) {
  auto r = DecodeRecord(Bytes(testing::FileOpenRecord()), kOffset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectHeader(*r, "cat");
  const FileOpenEvent* f = r->As<FileOpenEvent>();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->path, "/etc/shadow");
  EXPECT_EQ(f->flags, static_cast<uint32_t>(O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(f->access, FileAccess::kRead);
  EXPECT_EQ(f->result, -13);
  EXPECT_EQ(f->rule, "exact#1");
  const SensitivePath rules[] = {{SensitivePath::Match::kExact, "/etc/shadow"}};
  auto with_rules = DecodeRecord(Bytes(testing::FileOpenRecord()), kOffset, rules);
  ASSERT_TRUE(with_rules.ok());
  EXPECT_EQ(with_rules->As<FileOpenEvent>()->rule, "exact:/etc/shadow");
}

TEST(RecordDecoderTest, FileAccessFromFlags) {
  auto rec = testing::FileOpenRecord();
  rec.flags = O_WRONLY | O_TRUNC;
  EXPECT_EQ(DecodeRecord(Bytes(rec), 0)->As<FileOpenEvent>()->access, FileAccess::kWrite);
  rec.flags = O_RDWR;
  EXPECT_EQ(DecodeRecord(Bytes(rec), 0)->As<FileOpenEvent>()->access, FileAccess::kReadWrite);
}

TEST(RecordDecoderTest, Exec) {
  auto r = DecodeRecord(Bytes(testing::ExecRecord()), kOffset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectHeader(*r, "true");
  const ExecEvent* x = r->As<ExecEvent>();
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->filename, "/bin/true");
  EXPECT_EQ(x->argv, (std::vector<std::string>{"/bin/true", "--one", "two"}));
  EXPECT_FALSE(x->argv_truncated);
  EXPECT_EQ(x->parent_comm, "bash");
  EXPECT_EQ(r->process.exe, "/bin/true");
}

TEST(RecordDecoderTest, ExecTruncation) {
  auto rec = testing::ExecRecord();
  rec.max_args = 2;
  auto r = DecodeRecord(Bytes(rec), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->As<ExecEvent>()->argv, (std::vector<std::string>{"/bin/true", "--one"}));
  EXPECT_TRUE(r->As<ExecEvent>()->argv_truncated);

  rec = testing::ExecRecord();
  rec.args_len = 18;  // cut inside "two"
  rec.args_total = 5000;
  rec.flags = TL_EXEC_ARGS_TRUNCATED;
  r = DecodeRecord(Bytes(rec), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->As<ExecEvent>()->argv, (std::vector<std::string>{"/bin/true", "--one", "tw"}));
  EXPECT_TRUE(r->As<ExecEvent>()->argv_truncated);
}

TEST(RecordDecoderTest, NetOutboundV6AndAcceptedV4) {
  auto r = DecodeRecord(Bytes(testing::NetRecord()), kOffset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectHeader(*r, "ssh");
  const NetConnectEvent* n = r->As<NetConnectEvent>();
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->direction, NetDirection::kOutbound);
  EXPECT_EQ(n->local_addr, "2001:db8::1");
  EXPECT_EQ(n->local_port, 51000u);
  EXPECT_EQ(n->remote_addr, "2001:db8::2");
  EXPECT_EQ(n->remote_port, 22u);
  EXPECT_EQ(n->family, static_cast<uint32_t>(AF_INET6));
  EXPECT_EQ(n->protocol, 6u);

  auto rec = testing::NetRecord();
  rec.direction = TL_NET_ACCEPTED;
  rec.conn.family = AF_INET;
  testing::V4(rec.conn.local_addr, "127.0.0.1");
  testing::V4(rec.conn.remote_addr, "127.0.0.2");
  r = DecodeRecord(Bytes(rec), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->As<NetConnectEvent>()->direction, NetDirection::kAccepted);
  EXPECT_EQ(r->As<NetConnectEvent>()->local_addr, "127.0.0.1");
  EXPECT_EQ(r->As<NetConnectEvent>()->remote_addr, "127.0.0.2");
}

TEST(RecordDecoderTest, TruncatedBuffers) {
  EXPECT_EQ(ErrorOf({}), "record of 0 bytes smaller than header (72)");
  auto bytes = Bytes(testing::ExecRecord());
  bytes.resize(100);
  EXPECT_EQ(ErrorOf(bytes), "size 1384 larger than the buffer (100)");
}

TEST(RecordDecoderTest, HeaderFields) {
  auto rec = testing::NetRecord();
  rec.hdr.type = 9;
  EXPECT_EQ(ErrorOf(Bytes(rec)), "record type 9 unknown");
  rec = testing::NetRecord();
  rec.hdr.version = 2;
  EXPECT_EQ(ErrorOf(Bytes(rec)), "record type 4 version 2 unsupported (want 1)");
  rec = testing::NetRecord();
  rec.hdr.size = 12;
  EXPECT_EQ(ErrorOf(Bytes(rec)), "size 12 smaller than header (72)");
  rec = testing::NetRecord();
  rec.hdr.size = 100;
  EXPECT_EQ(ErrorOf(Bytes(rec)), "record type 4 size 100 is not 120");
  rec = testing::NetRecord();
  std::memset(rec.hdr.comm, 'x', sizeof(rec.hdr.comm));
  EXPECT_EQ(ErrorOf(Bytes(rec)), "comm is not NUL-terminated");
}

TEST(RecordDecoderTest, ExtraTrailingBytesAreIgnored) {
  auto bytes = Bytes(testing::NetRecord());
  bytes.resize(bytes.size() + 8, 0xee);  // ring-buffer records are 8-byte padded
  EXPECT_TRUE(DecodeRecord(bytes, 0).ok());
}

TEST(RecordDecoderTest, BodyFields) {
  auto login = testing::LoginRecord();
  login.stage = 9;
  EXPECT_EQ(ErrorOf(Bytes(login)), "login stage 9 unknown");
  login = testing::LoginRecord();
  std::memset(login.user, 'a', sizeof(login.user));
  EXPECT_EQ(ErrorOf(Bytes(login)), "user is not NUL-terminated");
  login = testing::LoginRecord();
  login.peer.family = 3;
  EXPECT_EQ(ErrorOf(Bytes(login)), "login peer family 3 unknown");

  auto file = testing::FileOpenRecord();
  file.path_len = 300;
  EXPECT_EQ(ErrorOf(Bytes(file)), "file path_len 300 out of range (1..255)");
  file = testing::FileOpenRecord();
  file.path_len = 5;
  EXPECT_EQ(ErrorOf(Bytes(file)), "file path is not NUL-terminated at path_len 5");
  file = testing::FileOpenRecord();
  file.match = 4;
  EXPECT_EQ(ErrorOf(Bytes(file)), "file match 4 unknown");
  file = testing::FileOpenRecord();
  file.result = 3;
  EXPECT_EQ(ErrorOf(Bytes(file)), "file result 3 is neither 0 nor -errno");

  auto exec = testing::ExecRecord();
  exec.args_len = 5000;
  EXPECT_EQ(ErrorOf(Bytes(exec)), "exec args_len 5000 larger than args (1024)");
  exec = testing::ExecRecord();
  exec.args_total = 3;
  EXPECT_EQ(ErrorOf(Bytes(exec)), "exec args_len 20 larger than args_total 3");
  exec = testing::ExecRecord();
  std::memset(exec.filename, 'f', sizeof(exec.filename));
  EXPECT_EQ(ErrorOf(Bytes(exec)), "exec filename is not NUL-terminated");
  exec = testing::ExecRecord();
  exec.flags = 0x80;
  EXPECT_EQ(ErrorOf(Bytes(exec)), "exec flags 128 unknown");

  auto net = testing::NetRecord();
  net.direction = 0;
  EXPECT_EQ(ErrorOf(Bytes(net)), "net direction 0 unknown");
  net = testing::NetRecord();
  net.conn.family = 0;
  EXPECT_EQ(ErrorOf(Bytes(net)), "net family 0 unknown");

  auto ut = testing::UtmpRecord();
  ut.file = 3;
  EXPECT_EQ(ErrorOf(Bytes(ut)), "utmp file 3 unknown");
  ut = testing::UtmpRecord();
  ut.write_len = 10;
  EXPECT_EQ(ErrorOf(Bytes(ut)), "utmp write_len 10 smaller than a utmp entry (384)");
}

}  // namespace
}  // namespace tripline::sensor
