#include "tools/ctl/rules_commands.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aggregator/rules/sigma.h"
#include "model/event_json.h"
#include "tripline/v1/rules.grpc.pb.h"

namespace tripline::ctl {
namespace {

using nlohmann::json;

constexpr const char* kUsage =
    "usage: triplinectl --aggregator HOST:PORT rules [--json]\n"
    "       triplinectl rules test FILE --events JSONL [--json]\n";

std::string Clip(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

// triplinectl's global flags, as far as the rules command needs them.
struct Globals {
  std::string aggregator, ca, cert, key, server_name;
};

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

// Clear text without --ca; TLS (and a client certificate with --cert/--key) with it.
std::shared_ptr<grpc::Channel> MakeRulesChannel(const Globals& g, std::string* error) {
  if (g.ca.empty()) return grpc::CreateChannel(g.aggregator, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions ssl;
  if (!ReadFile(g.ca, &ssl.pem_root_certs)) {
    *error = "cannot read --ca " + g.ca;
    return nullptr;
  }
  if (!g.cert.empty() &&
      (!ReadFile(g.cert, &ssl.pem_cert_chain) || !ReadFile(g.key, &ssl.pem_private_key))) {
    *error = "cannot read --cert " + g.cert + " or --key " + g.key;
    return nullptr;
  }
  grpc::ChannelArguments args;
  if (!g.server_name.empty()) args.SetSslTargetNameOverride(g.server_name);
  return grpc::CreateCustomChannel(g.aggregator, grpc::SslCredentials(ssl), args);
}

int List(const Globals& g, bool as_json, std::ostream& out, std::ostream& err) {
  if (g.aggregator.empty()) {
    err << "triplinectl: rules needs --aggregator HOST:PORT\n" << kUsage;
    return 2;
  }
  std::string error;
  auto channel = MakeRulesChannel(g, &error);
  if (channel == nullptr) {
    err << "triplinectl: " << error << "\n";
    return 1;
  }
  auto stub = v1::Rules::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListRulesResponse resp;
  grpc::Status s = stub->ListRules(&ctx, v1::ListRulesRequest(), &resp);
  if (!s.ok()) {
    err << "triplinectl: rules: " << s.error_message() << "\n";
    return 1;
  }
  if (as_json) {
    json j = json::object();
    j["dir"] = resp.dir();
    j["events_evaluated"] = resp.events_evaluated();
    j["rules"] = json::array();
    for (const v1::RuleStatus& r : resp.rules()) {
      j["rules"].push_back(
          {{"id", r.id()},
           {"title", r.title()},
           {"level", r.level()},
           {"file", r.file()},
           {"line", r.line()},
           {"state", r.state()},
           {"reason", r.reason()},
           {"techniques", std::vector<std::string>(r.techniques().begin(), r.techniques().end())},
           {"logsource", r.logsource()},
           {"correlation", r.correlation()},
           {"hits", r.hits()}});
    }
    out << j.dump(2) << "\n";
    return 0;
  }
  if (resp.dir().empty()) {
    out << "no rules (the aggregator runs without --rules)\n";
    return 0;
  }
  size_t counts[3] = {0, 0, 0};
  char line[512];
  std::snprintf(line, sizeof line, "%-11s %6s  %-8s  %-50s  %s\n", "STATE", "HITS", "LEVEL",
                "TITLE", "FILE / WHY");
  out << line;
  for (const v1::RuleStatus& r : resp.rules()) {
    counts[r.state() == "loaded" ? 0 : r.state() == "unsupported" ? 1 : 2]++;
    std::string where = r.file() + ":" + std::to_string(r.line());
    if (!r.reason().empty()) where += "  " + r.reason();
    std::snprintf(line, sizeof line, "%-11s %6llu  %-8s  %-50s  %s\n", r.state().c_str(),
                  static_cast<unsigned long long>(r.hits()), r.level().c_str(),
                  Clip(r.title(), 50).c_str(), Clip(where, 160).c_str());
    out << line;
  }
  out << resp.rules_size() << " rules from " << resp.dir() << ": " << counts[0] << " loaded, "
      << counts[1] << " unsupported, " << counts[2] << " broken; " << resp.events_evaluated()
      << " events evaluated\n";
  return 0;
}

int Test(const std::string& file, const std::string& events, bool as_json, std::ostream& out,
         std::ostream& err) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    err << "triplinectl: rules test: cannot read " << file << "\n";
    return 1;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto set = rules::CompileRules({{file, text.str()}});
  rules::RuleEngine engine;
  engine.Swap(set);
  bool any_loaded = false;
  for (const rules::RuleInfo& r : rules::DescribeRules(*set)) {
    if (r.state == rules::RuleState::kLoaded) {
      any_loaded = true;
    } else {
      err << r.file << ":" << r.line << ": " << r.title << ": " << rules::RuleStateName(r.state)
          << ": " << r.reason << "\n";
    }
  }
  if (!any_loaded) {
    err << "triplinectl: rules test: no rule of " << file << " can run\n";
    return 1;
  }
  std::ifstream ev(events, std::ios::binary);
  if (!ev) {
    err << "triplinectl: rules test: cannot read " << events << "\n";
    return 1;
  }
  std::string l;
  size_t n = 0, matches = 0, bad = 0;
  json all = json::array();
  while (std::getline(ev, l)) {
    ++n;
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto e = EventFromJsonLine(l);
    if (!e.ok()) {
      err << events << ":" << n << ": " << e.status().message() << "\n";
      ++bad;
      continue;
    }
    for (const rules::Detection& d : engine.Evaluate(*e)) {
      ++matches;
      if (as_json) {
        all.push_back({{"line", n},
                       {"rule_id", d.rule_id},
                       {"title", d.title},
                       {"level", d.level},
                       {"correlation", d.correlation},
                       {"host", d.host},
                       {"seq", d.seq}});
      } else {
        out << events << ":" << n << ": " << d.title << " (" << d.rule_id << ", " << d.level
            << ") on " << d.host << "\n";
      }
    }
  }
  if (as_json) {
    out << all.dump(2) << "\n";
  } else {
    out << matches << " matches in " << n << " lines" << (bad ? ", " : "")
        << (bad ? std::to_string(bad) + " lines not events" : "") << "\n";
  }
  return bad > 0 ? 1 : 0;
}

}  // namespace

std::optional<int> RunRulesCommand(const std::vector<std::string>& args, std::ostream& out,
                                   std::ostream& err) {
  // Global flags (with values) come first; the command is the first other word.
  Globals g;
  const std::map<std::string, std::string Globals::*> kGlobal = {
      {"--aggregator", &Globals::aggregator},
      {"--ca", &Globals::ca},
      {"--cert", &Globals::cert},
      {"--key", &Globals::key},
      {"--server-name", &Globals::server_name}};
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) break;
    const size_t eq = a.find('=');
    const std::string flag = a.substr(0, eq);
    auto it = kGlobal.find(flag);
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    }
    if (it != kGlobal.end()) g.*(it->second) = value;
  }
  if (i >= args.size() || args[i] != "rules") return std::nullopt;
  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
  bool as_json = false;
  std::string events;
  std::vector<std::string> positional;
  for (size_t k = 0; k < rest.size(); ++k) {
    if (rest[k] == "--json") {
      as_json = true;
    } else if (rest[k] == "--events" && k + 1 < rest.size()) {
      events = rest[++k];
    } else if (rest[k].rfind("--events=", 0) == 0) {
      events = rest[k].substr(9);
    } else if (rest[k].rfind("--", 0) == 0) {
      err << "triplinectl: rules: unknown flag " << rest[k] << "\n" << kUsage;
      return 2;
    } else {
      positional.push_back(rest[k]);
    }
  }
  if (positional.empty()) return List(g, as_json, out, err);
  if (positional[0] == "test" && positional.size() == 2 && !events.empty()) {
    return Test(positional[1], events, as_json, out, err);
  }
  err << "triplinectl: rules: bad arguments\n" << kUsage;
  return 2;
}

}  // namespace tripline::ctl
