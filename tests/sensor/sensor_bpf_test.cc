// Root tests of the real tripline-sensor binary: BPF probes attached to this kernel, real
// syscalls, a real sshd login (tools/lab). They skip, saying why, without root or BTF.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tools/lab/lab.h"
#include "tools/lab/subprocess.h"

namespace tripline::sensor {
namespace {

using lab::DeadlineIn;
using lab::OutputStream;
using lab::SpawnOptions;
using lab::Subprocess;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string BpfUnavailableReason() {
  if (geteuid() != 0) return "needs root to load BPF programs";
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) return "kernel has no BTF";
  return {};
}

SpawnOptions SensorOptions(std::vector<std::string> extra) {
  SpawnOptions o;
  o.argv = {TRIPLINE_SENSOR_BIN, "--output", "jsonl", "--log-level", "info"};
  o.argv.insert(o.argv.end(), extra.begin(), extra.end());
  return o;
}

// Waits for "sensor ready"; on failure the error quotes the sensor's last stderr lines.
testing::AssertionResult WaitReady(Subprocess& sensor) {
  auto ready = sensor.ReadLineUntil(OutputStream::kStdout, lab::ContainsText("sensor ready"),
                                    DeadlineIn(seconds(30)));
  if (ready.ok()) return testing::AssertionSuccess();
  auto err = sensor.ReadLineUntil(
      OutputStream::kStderr, [](std::string_view) { return false; }, DeadlineIn(milliseconds(200)));
  return testing::AssertionFailure() << "no 'sensor ready': " << ready.status().ToString()
                                     << "\nstderr: " << err.status().ToString();
}

// The next JSON event on the sensor's stdout for which `match` is true.
std::optional<json> NextEvent(Subprocess& sensor, const std::function<bool(const json&)>& match,
                              seconds timeout) {
  std::optional<json> found;
  auto line = sensor.ReadLineUntil(
      OutputStream::kStdout,
      [&](std::string_view text) {
        json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) return false;
        if (!match(j)) return false;
        found = std::move(j);
        return true;
      },
      DeadlineIn(timeout));
  if (!line.ok()) ADD_FAILURE() << line.status().ToString();
  return found;
}

// Sends SIGTERM and expects a clean exit within 2 s.
void ExpectCleanStop(Subprocess& sensor) {
  ASSERT_EQ(kill(sensor.pid(), SIGTERM), 0);
  auto start = std::chrono::steady_clock::now();
  auto code = sensor.Wait(seconds(2));
  ASSERT_TRUE(code.ok()) << "still running 2 s after SIGTERM: " << code.status().ToString();
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));
}

TEST(SensorBpfTest, ShadowReadByCatIsReported) {
  if (std::string why = BpfUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
  auto sensor = Subprocess::Spawn(SensorOptions({"--scope", "host"}));
  ASSERT_TRUE(sensor.ok()) << sensor.status().ToString();
  ASSERT_TRUE(WaitReady(*sensor));

  SpawnOptions cat;
  cat.argv = {"cat", "/etc/shadow"};
  auto child = Subprocess::Spawn(std::move(cat));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const uint32_t cat_pid = static_cast<uint32_t>(child->pid());
  auto cat_exit = child->Wait(seconds(10));
  ASSERT_TRUE(cat_exit.ok());
  ASSERT_EQ(*cat_exit, 0);

  auto event = NextEvent(
      *sensor,
      [&](const json& j) {
        return j.value("kind", "") == "file_open" && j["process"].value("tgid", 0u) == cat_pid;
      },
      seconds(10));
  ASSERT_TRUE(event.has_value());
  const json& e = *event;
  EXPECT_EQ(e["file_open"]["path"], "/etc/shadow") << e.dump();
  EXPECT_EQ(e["file_open"]["access"], "read") << e.dump();
  EXPECT_EQ(e["file_open"]["result"], 0) << e.dump();
  EXPECT_EQ(e["process"]["comm"], "cat") << e.dump();
  EXPECT_EQ(e["process"]["user"], "root") << e.dump();
  EXPECT_EQ(e["process"]["exe"], "/usr/bin/cat") << e.dump();
  char hostname[256] = {};
  gethostname(hostname, sizeof(hostname) - 1);
  EXPECT_EQ(e["host"], hostname) << e.dump();
  EXPECT_EQ(e["host_id"].get<std::string>().size(), 32u) << e.dump();

  ExpectCleanStop(*sensor);
}

TEST(SensorBpfTest, EmitsPostureAndHealth) {
  if (std::string why = BpfUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
  // A health event every second instead of every 10 s.
  char config_path[] = "/tmp/tripline-sensor-config-XXXXXX";
  const int fd = mkstemp(config_path);
  ASSERT_GE(fd, 0);
  const std::string config = "health_interval_s: 1\n";
  ASSERT_EQ(write(fd, config.data(), config.size()), static_cast<ssize_t>(config.size()));
  close(fd);
  struct Unlink {
    const char* path;
    ~Unlink() { unlink(path); }
  } unlink_config{config_path};
  auto sensor = Subprocess::Spawn(SensorOptions({"--scope", "host", "--config", config_path}));
  ASSERT_TRUE(sensor.ok()) << sensor.status().ToString();
  ASSERT_TRUE(WaitReady(*sensor));
  auto posture = NextEvent(
      *sensor, [](const json& j) { return j.value("kind", "") == "posture"; }, seconds(10));
  ASSERT_TRUE(posture.has_value());
  bool has_root = false;
  for (const json& a : (*posture)["posture"]["accounts"]) has_root |= a["name"] == "root";
  EXPECT_TRUE(has_root) << posture->dump();

  // A sensitive read of our own, then the next health event: it names every hook family
  // with the state the probe chose (and why, where not live), its counters add up, and it
  // has counted the file_open event we caused.
  SpawnOptions cat;
  cat.argv = {"cat", "/etc/shadow"};
  auto child = Subprocess::Spawn(std::move(cat));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const uint32_t cat_pid = static_cast<uint32_t>(child->pid());
  ASSERT_TRUE(child->Wait(seconds(10)).ok());
  bool saw_cat = false;
  auto health = NextEvent(
      *sensor,
      [&](const json& j) {
        if (j.value("kind", "") == "file_open" && j["process"].value("tgid", 0u) == cat_pid) {
          saw_cat = true;
        }
        return saw_cat && j.value("kind", "") == "health";
      },
      seconds(15));
  ASSERT_TRUE(health.has_value()) << "no health event after the read (saw it: " << saw_cat << ")";
  const json& h = (*health)["health"];
  std::set<std::string> names;
  for (const json& f : h["families"]) {
    names.insert(f.value("name", ""));
    const std::string state = f.value("state", "");
    EXPECT_TRUE(state == "live" || state == "degraded" || state == "disabled") << f.dump();
    EXPECT_FALSE(f.value("hooks", "").empty() && state != "disabled") << f.dump();
    if (state != "live") {
      EXPECT_FALSE(f.value("reason", "").empty()) << f.dump();
      EXPECT_FALSE(f.value("remedy", "").empty()) << f.dump();
    }
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"file", "exec", "io_uring", "net", "login-utmp", "login-pam"}))
      << h.dump();
  uint64_t by_kind = 0;
  for (const json& d : h["ringbuf_drops_by_kind"]) by_kind += d.get<uint64_t>();
  EXPECT_EQ(h.value("ringbuf_drops", ~0ull), by_kind) << h.dump();
  EXPECT_EQ(h.value("decode_errors", ~0ull), 0u) << h.dump();
  EXPECT_GT(h.value("rss_bytes", 0ull), 1ull << 20) << h.dump();
  EXPECT_GE(h.value("uptime_seconds", -1.0), 1.0) << h.dump();
  uint64_t file_opens = 0;
  for (const json& k : h["kinds"]) {
    if (k.value("kind", "") == "file_open") file_opens = k.value("events", 0ull);
  }
  EXPECT_GE(file_opens, 1u) << "the health event did not count the read: " << h.dump();
  ExpectCleanStop(*sensor);
}

// An account plants a FIFO and a link in its ~/.ssh (here a --host-root tree whose passwd
// names it), and a program runs from a directory whose name is not UTF-8. The sensor's
// posture skips both files with the reason instead of blocking on the FIFO, and the exec
// and the shadow read of that program still arrive, escaped and named.
TEST(SensorBpfTest, PlantedFifoBlindsNothingAndNonUtf8PathsArrive) {
  if (std::string why = BpfUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/tripline-bpf-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{root};
  fs::create_directories(root + "/etc");
  fs::create_directories(root + "/var/log");
  fs::create_directories(root + "/home/mallory/.ssh");
  const auto write = [](const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  write(root + "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nmallory:x:4242:4242::/home/mallory:/bin/bash\n");
  write(root + "/etc/group", "root:x:0:\n");
  write(root + "/var/log/btmp", "");
  write(root + "/var/log/wtmp", "");
  const std::string fifo = root + "/home/mallory/.ssh/authorized_keys2";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  fs::create_symlink("/etc/shadow", root + "/home/mallory/.ssh/authorized_keys");
  for (const std::string& p : {root + "/home/mallory", root + "/home/mallory/.ssh", fifo}) {
    ASSERT_EQ(lchown(p.c_str(), 4242, 4242), 0) << p;
  }
  // A copy of cat in a directory named with a 0xff byte.
  const std::string odd_dir = root + "/bin-\xff";
  fs::create_directories(odd_dir);
  fs::copy_file("/usr/bin/cat", odd_dir + "/cat");
  fs::permissions(odd_dir + "/cat", fs::perms::owner_all);

  auto sensor = Subprocess::Spawn(SensorOptions({"--scope", "host", "--host-root", root}));
  ASSERT_TRUE(sensor.ok()) << sensor.status().ToString();
  ASSERT_TRUE(WaitReady(*sensor));

  SpawnOptions cat;
  cat.argv = {odd_dir + "/cat", "/etc/shadow"};
  auto child = Subprocess::Spawn(std::move(cat));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const uint32_t cat_pid = static_cast<uint32_t>(child->pid());
  auto cat_exit = child->Wait(seconds(10));
  ASSERT_TRUE(cat_exit.ok());

  const std::string escaped_dir = root + "/bin-\\xff";
  std::optional<json> exec, read, posture;
  auto line = sensor->ReadLineUntil(
      OutputStream::kStdout,
      [&](std::string_view text) {
        json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) return false;
        const std::string kind = j.value("kind", "");
        if (kind == "posture") posture = j;
        if (kind == "exec" && j["process"].value("tgid", 0u) == cat_pid) exec = j;
        if (kind == "file_open" && j["process"].value("tgid", 0u) == cat_pid) read = j;
        return exec && read && posture;
      },
      DeadlineIn(seconds(15)));
  if (!line.ok()) {
    // Release a collection stuck on the FIFO so the sensor can be stopped.
    int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) close(fd);
  }
  ASSERT_TRUE(exec.has_value()) << "no exec from " << escaped_dir << ": "
                                << line.status().ToString();
  EXPECT_EQ((*exec)["exec"]["filename"], escaped_dir + "/cat") << exec->dump();
  EXPECT_NE((*exec)["escaped_fields"].dump().find("exec.filename"), std::string::npos)
      << exec->dump();
  ASSERT_TRUE(read.has_value()) << "no shadow read from the program under " << escaped_dir;
  EXPECT_EQ((*read)["file_open"]["path"], "/etc/shadow") << read->dump();
  EXPECT_EQ((*read)["process"]["exe"], escaped_dir + "/cat") << read->dump();
  ASSERT_TRUE(posture.has_value());
  const std::string errors = (*posture)["posture"]["errors"].dump();
  EXPECT_NE(errors.find("authorized_keys2 is a FIFO; not read"), std::string::npos) << errors;
  EXPECT_NE(errors.find("authorized_keys is a symbolic link; not followed"), std::string::npos)
      << errors;
  ExpectCleanStop(*sensor);
}

// Clear text to an aggregator off loopback (here one that is not there: TEST-NET-2) is
// logged as a warning at start and repeated with every health report.
TEST(SensorBpfTest, ClearTextOffLoopbackIsAWarningAtStartAndInHealth) {
  if (std::string why = BpfUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
  char tmpl[] = "/tmp/tripline-bpf-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{tmpl};
  SpawnOptions o;
  o.argv = {TRIPLINE_SENSOR_BIN,
            "--aggregator",
            "198.51.100.7:4317",
            "--spool-dir",
            cleanup.dir + "/spool",
            "--log-level",
            "info",
            "--scope",
            "host"};
  auto sensor = Subprocess::Spawn(std::move(o));
  ASSERT_TRUE(sensor.ok()) << sensor.status().ToString();
  const std::string warning = "events go to 198.51.100.7:4317 in clear text";
  auto at_start = sensor->ReadLineUntil(OutputStream::kStderr, lab::ContainsText(warning),
                                        DeadlineIn(seconds(30)));
  ASSERT_TRUE(at_start.ok()) << at_start.status().ToString();
  EXPECT_EQ(at_start->rfind("W ", 0), 0u) << *at_start;
  auto in_health = sensor->ReadLineUntil(OutputStream::kStderr, lab::ContainsText("health: "),
                                         DeadlineIn(seconds(30)));
  ASSERT_TRUE(in_health.ok()) << in_health.status().ToString();
  EXPECT_NE(in_health->find("warning: " + warning), std::string::npos) << *in_health;
  // Stopping waits up to 1.5 s for acknowledgements that cannot come, then detaches.
  ASSERT_EQ(kill(sensor->pid(), SIGTERM), 0);
  auto code = sensor->Wait(seconds(15));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 0);
}

// The login session of an sshd login is found by its audit session id, and a sensitive
// read in that login's shell carries the same session. Also checks --scope uts: the events
// are named after the lab host.
TEST(SensorBpfTest, SshLoginAndItsShellShareTheAuditSession) {
  if (std::string why = BpfUnavailableReason(); !why.empty()) GTEST_SKIP() << why;
  if (Status s = lab::Lab::CheckPrerequisites(); !s.ok()) GTEST_SKIP() << s.ToString();
  lab::LabOptions options;
  options.hosts = {{"hosta", "198.18.0.1", 22}};
  options.clients = {{"attacker", "198.18.0.66"}};
  auto lab = lab::Lab::Create(options);
  ASSERT_TRUE(lab.ok()) << lab.status().ToString();
  auto alice = (*lab)->AddUser("alice", "Sensor-test-pw1");
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  const lab::LabHost& hosta = *(*lab)->host("hosta");

  auto sensor = hosta.SpawnUtsOnly(SensorOptions({"--scope", "uts"}));
  ASSERT_TRUE(sensor.ok()) << sensor.status().ToString();
  ASSERT_TRUE(WaitReady(*sensor));

  // cat as alice cannot open /etc/shadow; the attempt (result -EACCES) is what matters.
  auto ssh = (*lab)->SshCommand("attacker", alice->Hop(hosta), "cat /etc/shadow; true");
  ASSERT_TRUE(ssh.ok()) << ssh.status().ToString();
  ASSERT_EQ(ssh->exit_code, 0) << ssh->err;

  auto login = NextEvent(
      *sensor,
      [&](const json& j) {
        return j.value("kind", "") == "login" && j["login"].value("user", "") == alice->login &&
               j["login"].value("outcome", "") == "success" &&
               j["login"].value("stage", "") == "session_open";
      },
      seconds(15));
  ASSERT_TRUE(login.has_value());
  const std::string session = (*login)["session"];
  EXPECT_TRUE(session.starts_with("audit:")) << login->dump();
  EXPECT_EQ((*login)["host"], "hosta") << login->dump();

  auto shadow = NextEvent(
      *sensor,
      [&](const json& j) {
        return j.value("kind", "") == "file_open" && j["process"].value("comm", "") == "cat" &&
               j["file_open"].value("path", "") == "/etc/shadow";
      },
      seconds(15));
  ASSERT_TRUE(shadow.has_value());
  EXPECT_EQ((*shadow)["session"], session) << shadow->dump();
  EXPECT_EQ((*shadow)["process"]["user"], alice->login) << shadow->dump();
  EXPECT_EQ((*shadow)["process"]["login_user"], alice->login) << shadow->dump();
  EXPECT_EQ((*shadow)["host"], "hosta") << shadow->dump();
  // Evidence for the log: which audit session the kernel gave this login.
  std::printf("login %s (auth pid %u, audit session %u) -> cat pid %u in %s\n",
              (*login)["login"].value("user", "").c_str(), (*login)["login"].value("auth_pid", 0u),
              (*login)["process"].value("audit_session", 0u),
              (*shadow)["process"].value("tgid", 0u), session.c_str());

  ExpectCleanStop(*sensor);
}

}  // namespace
}  // namespace tripline::sensor
