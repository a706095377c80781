#include "tools/scenario/story.h"

#include <charconv>

#include "common/clock.h"
#include "tools/lab/ssh_command.h"

namespace tripline::scenario {
namespace {

const lab::LabHost* FindHost(const lab::Lab& lab, const std::string& name, Status* error) {
  const lab::LabHost* h = lab.host(name);
  if (h == nullptr) *error = Status::NotFound("no machine called " + name + " in the lab");
  return h;
}

}  // namespace

Result<StoryResult> PlayAttack(lab::Lab& lab, const AttackStory& story) {
  Status missing;
  const lab::LabHost* entry = FindHost(lab, story.entry_host, &missing);
  if (!entry) return missing;
  std::vector<lab::SshHop> chain;
  for (const auto& hop : story.hops) {
    const lab::LabHost* h = FindHost(lab, hop.host, &missing);
    if (!h) return missing;
    chain.push_back(hop.user.Hop(*h));
  }

  StoryResult result;
  result.started_ns = SystemClock::Get().NowNs();
  lab::SshHop wrong = story.victim.Hop(*entry);
  for (int i = 0; i < story.failures; ++i) {
    wrong.password = story.wrong_password_prefix + std::to_string(i);
    TL_ASSIGN_OR_RETURN(lab::RunResult r, lab.SshCommand(story.attacker, wrong, "true"));
    if (r.exit_code == 0) {
      return Status::Internal("sshd accepted the wrong password " + wrong.password);
    }
    ++result.failed_logins;
  }

  // The last host prints its wall clock once the login shell runs: that instant is the
  // end of the last hop, from which detection latency is measured.
  const std::string final_command =
      (story.last_host_command.empty() ? "" : story.last_host_command + "; ") +
      "hostname; date +%s%N";
  const std::string on_entry =
      story.entry_command + "; " + lab::ChainedSshCommand(chain, final_command);
  TL_ASSIGN_OR_RETURN(lab::RunResult r, lab.SshCommand(story.attacker, story.victim.Hop(*entry),
                                                       on_entry, std::chrono::seconds(60)));
  if (r.exit_code != 0) {
    return Status::Internal("the chain did not complete (exit " + std::to_string(r.exit_code) +
                            "): " + r.err);
  }
  result.final_output = r.out;
  // Last line: nanoseconds since the epoch.
  std::string_view out(r.out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.remove_suffix(1);
  const size_t nl = out.rfind('\n');
  const std::string_view last = nl == std::string_view::npos ? out : out.substr(nl + 1);
  int64_t ns = 0;
  auto [ptr, ec] = std::from_chars(last.data(), last.data() + last.size(), ns);
  if (ec != std::errc() || ptr != last.data() + last.size()) {
    return Status::Internal("the last host printed no time: " + r.out);
  }
  result.last_hop_ns = ns;
  return result;
}

Status PlayBenignAdmin(lab::Lab& lab, const std::string& from, const lab::LabUser& admin,
                       const std::string& first, const std::string& second) {
  Status missing;
  const lab::LabHost* a = FindHost(lab, first, &missing);
  if (!a) return missing;
  std::string command = "uptime >/dev/null; df -h / >/dev/null";
  if (!second.empty()) {
    const lab::LabHost* b = FindHost(lab, second, &missing);
    if (!b) return missing;
    command += "; " + lab::ChainedSshCommand({admin.Hop(*b)}, "uptime >/dev/null; hostname");
  }
  TL_ASSIGN_OR_RETURN(lab::RunResult r, lab.SshCommand(from, admin.Hop(*a), command));
  if (r.exit_code != 0) {
    return Status::Internal("benign admin session failed (exit " + std::to_string(r.exit_code) +
                            "): " + r.err);
  }
  return Status::Ok();
}

}  // namespace tripline::scenario
