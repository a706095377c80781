// One fully populated domain event of every kind, for round-trip tests.
#pragma once

#include <vector>

#include "model/event.h"

namespace tripline::testing {

inline Event BaseEvent(uint64_t seq) {
  Event e;
  e.seq = seq;
  e.time_ns = 1'764'042'067'123'456'789LL + static_cast<int64_t>(seq);
  e.host = "hosta";
  e.host_id = "0123456789abcdef";
  e.session = "audit:17";
  e.process = {
      4242,    4241,    1,        1000, 1000, 1000, 17, 9876, 4026531838u, "sshd", "/usr/sbin/sshd",
      "alice", "alice", "abc123", "",   "",   "",   "", ""};
  return e;
}

inline std::vector<Event> SampleEvents() {
  std::vector<Event> out;
  Event login = BaseEvent(1);
  login.body = LoginEvent{"sshd",
                          "alice",
                          "198.18.0.66",
                          40022,
                          "198.18.0.1",
                          22,
                          Outcome::kFailure,
                          "authentication failure",
                          7,
                          LoginSource::kPam,
                          LoginStage::kAuthenticate,
                          4241,
                          "ssh:notty"};
  out.push_back(login);
  Event file = BaseEvent(2);
  file.body = FileOpenEvent{"/etc/shadow", 0, FileAccess::kRead, -13, "/etc/shadow"};
  out.push_back(file);
  Event exec = BaseEvent(3);
  exec.body = ExecEvent{"/usr/bin/ssh", {"ssh", "bob@198.18.0.2", "-p", "22"}, true, "bash"};
  out.push_back(exec);
  Event net = BaseEvent(4);
  net.body = NetConnectEvent{NetDirection::kOutbound, "198.18.0.1", 51000, "198.18.0.2", 22, 2, 6};
  out.push_back(net);
  Event posture = BaseEvent(5);
  Account a;
  a.name = "svc-ai";
  a.uid = 998;
  a.gid = 0;
  a.groups = {"root", "docker"};
  a.shell = "/bin/bash";
  a.home = "/home/svc-ai";
  a.interactive_shell = true;
  a.password_set = true;
  a.max_password_age_days = -1;
  a.last_password_change_days = 19000;
  a.sudo_rules = {"svc-ai ALL=(ALL) NOPASSWD: ALL"};
  a.sudo_nopasswd = true;
  a.authorized_keys = 2;
  a.authorized_keys_unrestricted = 1;
  ProcessPrivilege proc;
  proc.exe = "/usr/bin/python3";
  proc.uid = 998;
  proc.user = "svc-ai";
  proc.cap_effective = (uint64_t{1} << 21) | (uint64_t{1} << 13);  // sys_admin, net_raw
  proc.runtime_sockets = {"/run/docker.sock"};
  proc.processes = 2;
  proc.pids = {4242, 4243};
  proc.container_id = "abc123";
  posture.body =
      PostureSnapshot{{a}, {"root", "svc-ai"}, {"/etc/sudoers.d/x: line 3: bad"}, {proc}};
  out.push_back(posture);
  Event health = BaseEvent(6);
  health.body =
      SensorHealth{12,
                   1,
                   2,
                   3,
                   {{"login", 10, 0.5}, {"file_open", 4, 0.2}},
                   {"login-pam: libpam not found"},
                   20 << 20,
                   60,
                   {0, 12, 0, 0, 0},
                   {{"file", "degraded", "syscall tracepoints",
                     "fentry not used: the kernel refuses BPF trampolines", "allow fentry"},
                    {"login-pam", "disabled", "", "libpam not found", "install libpam"},
                    {"exec", "live", "tp_btf", "", ""}},
                   {"events go to 198.51.100.7:4317 in clear text"},
                   4,
                   {"198.18.0.11", "2001:db8::11"}};
  // A string the sensor had to escape (common/text_escape.h) is named on its event.
  health.escaped_fields = {"health.families[0].reason"};
  out.push_back(health);
  return out;
}

}  // namespace tripline::testing
