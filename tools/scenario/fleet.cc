#include "tools/scenario/fleet.h"

#include <signal.h>

#include <algorithm>
#include <thread>

#include "common/log.h"

namespace tripline::scenario {
namespace {

constexpr std::string_view kListening = "listening on ";

}  // namespace

Result<std::unique_ptr<Fleet>> Fleet::Start(const lab::Lab& lab, FleetOptions options) {
  std::unique_ptr<Fleet> fleet(new Fleet());
  fleet->bin_dir_ = options.bin_dir;
  TL_RETURN_IF_ERROR(fleet->StartAggregator(options));
  for (const auto& machine : lab.machines()) {
    if (!machine->has_sshd()) continue;
    TL_RETURN_IF_ERROR(fleet->StartSensor(*machine, options));
  }
  return fleet;
}

Fleet::~Fleet() {
  Status s = Stop();
  if (!s.ok()) TL_LOG(WARNING) << "stopping the fleet: " << s.ToString();
}

Status Fleet::StartAggregator(const FleetOptions& options) {
  data_dir_ = options.work_dir + "/aggregator-data";
  lab::SpawnOptions spawn;
  spawn.argv = {bin_dir_ + "/tripline-aggregator", "--listen", "127.0.0.1:0", "--data-dir",
                data_dir_};
  spawn.argv.insert(spawn.argv.end(), options.aggregator_args.begin(),
                    options.aggregator_args.end());
  spawn.stderr_options.capture = false;
  spawn.stderr_options.log_path = options.work_dir + "/aggregator.log";
  TL_ASSIGN_OR_RETURN(lab::Subprocess proc, lab::Subprocess::Spawn(std::move(spawn)));
  aggregator_.emplace(std::move(proc));
  TL_ASSIGN_OR_RETURN(std::string line,
                      aggregator_->ReadLineUntil(lab::OutputStream::kStdout,
                                                 lab::ContainsText(std::string(kListening)),
                                                 lab::DeadlineIn(options.ready_timeout)));
  address_ = line.substr(line.find(kListening) + kListening.size());
  // With the analyst console on, its address follows ("console on http://HOST:PORT").
  const auto& a = options.aggregator_args;
  if (std::find(a.begin(), a.end(), "--console") != a.end()) {
    constexpr std::string_view kConsole = "console on ";
    TL_ASSIGN_OR_RETURN(std::string console,
                        aggregator_->ReadLineUntil(lab::OutputStream::kStdout,
                                                   lab::ContainsText(std::string(kConsole)),
                                                   lab::DeadlineIn(options.ready_timeout)));
    console_url_ = console.substr(console.find(kConsole) + kConsole.size());
  }
  return Status::Ok();
}

Status Fleet::StartSensor(const lab::LabHost& host, const FleetOptions& options) {
  lab::SpawnOptions spawn;
  spawn.argv = {bin_dir_ + "/tripline-sensor",
                "--aggregator",
                address_,
                "--scope",
                "uts",
                "--spool-dir",
                options.work_dir + "/spool-" + host.name()};
  spawn.argv.insert(spawn.argv.end(), options.sensor_args.begin(), options.sensor_args.end());
  if (auto own = options.sensor_args_by_host.find(host.name());
      own != options.sensor_args_by_host.end()) {
    spawn.argv.insert(spawn.argv.end(), own->second.begin(), own->second.end());
  }
  spawn.stderr_options.capture = false;
  spawn.stderr_options.log_path = options.work_dir + "/sensor-" + host.name() + ".log";
  TL_ASSIGN_OR_RETURN(lab::Subprocess proc, host.SpawnUtsOnly(std::move(spawn)));
  auto [it, inserted] = sensors_.emplace(host.name(), std::move(proc));
  (void)inserted;
  auto ready =
      it->second.ReadLineUntil(lab::OutputStream::kStdout, lab::ContainsText("sensor ready"),
                               lab::DeadlineIn(options.ready_timeout));
  if (!ready.ok()) {
    return ready.status().WithContext("sensor for " + host.name() + " (log " +
                                      spawn.stderr_options.log_path + ")");
  }
  return Status::Ok();
}

Result<lab::RunResult> Fleet::Ctl(std::vector<std::string> args) const {
  std::vector<std::string> argv = {bin_dir_ + "/triplinectl", "--aggregator", address_};
  argv.insert(argv.end(), args.begin(), args.end());
  return lab::Subprocess::Run(std::move(argv), std::chrono::seconds(30));
}

Result<nlohmann::json> Fleet::CtlJson(std::vector<std::string> args) const {
  args.push_back("--json");
  std::string what;
  for (const auto& a : args) what += " " + a;
  TL_ASSIGN_OR_RETURN(lab::RunResult r, Ctl(std::move(args)));
  if (r.exit_code != 0) {
    return Status::Unavailable("triplinectl" + what + " exited " + std::to_string(r.exit_code) +
                               ": " + r.err);
  }
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption("triplinectl" + what + " printed no JSON");
  return j;
}

Status Fleet::PauseSensor(const std::string& host) {
  auto it = sensors_.find(host);
  if (it == sensors_.end()) return Status::NotFound("no sensor for " + host);
  if (::kill(it->second.pid(), SIGSTOP) != 0) return Status::FromErrno(errno, "SIGSTOP " + host);
  return Status::Ok();
}

Status Fleet::ResumeSensor(const std::string& host) {
  auto it = sensors_.find(host);
  if (it == sensors_.end()) return Status::NotFound("no sensor for " + host);
  if (::kill(it->second.pid(), SIGCONT) != 0) return Status::FromErrno(errno, "SIGCONT " + host);
  return Status::Ok();
}

Status Fleet::Stop() {
  if (stopped_) return Status::Ok();
  stopped_ = true;
  Status first;
  auto note = [&first](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  for (auto& [host, sensor] : sensors_) {
    ::kill(sensor.pid(), SIGCONT);  // a paused sensor cannot act on SIGTERM
    auto code = sensor.Terminate(std::chrono::seconds(5));
    if (!code.ok()) {
      note(code.status().WithContext("sensor " + host));
    } else if (*code != 0) {
      note(Status::Internal("sensor " + host + " exited " + std::to_string(*code)));
    }
  }
  if (aggregator_) {
    auto code = aggregator_->Terminate(std::chrono::seconds(10));
    if (!code.ok()) {
      note(code.status().WithContext("aggregator"));
    } else if (*code != 0) {
      note(Status::Internal("aggregator exited " + std::to_string(*code)));
    }
  }
  return first;
}

Result<nlohmann::json> WaitForIncident(const Fleet& fleet,
                                       const std::function<bool(const nlohmann::json&)>& match,
                                       std::chrono::milliseconds timeout) {
  const lab::Deadline deadline = lab::DeadlineIn(timeout);
  std::string last;
  while (true) {
    auto list = fleet.CtlJson({"incidents"});
    if (list.ok()) {
      last = list->dump();
      const nlohmann::json& items =
          list->is_object() && list->contains("incidents") ? (*list)["incidents"] : *list;
      if (items.is_array()) {
        for (const auto& incident : items) {
          if (match(incident)) return incident;
        }
      }
    } else {
      last = list.status().ToString();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded("no matching incident; last answer: " + last.substr(0, 2000));
    }
    // Polling an RPC: the query is cheap and the aggregator offers no push channel to tools.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace tripline::scenario
