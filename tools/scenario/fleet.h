// Fleet: a running Tripline deployment on a Lab — one tripline-aggregator on an embedded
// RocksDB in a temp dir, and one tripline-sensor per lab host (--scope uts, in the host's
// UTS namespace) streaming to it over gRPC on 127.0.0.1.
//
// Used by the end-to-end tests and by the demo. Every process is a real binary from
// `bin_dir`, started and ended by pid; Stop() (and the destructor) ends them all.
//
// Threading: a Fleet is used from the thread that created it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/lab/lab.h"
#include "tools/lab/subprocess.h"

namespace tripline::scenario {

struct FleetOptions {
  std::string bin_dir;   // where tripline-aggregator, tripline-sensor, triplinectl live
  std::string work_dir;  // data dir, spools and logs go below it (must exist)
  std::vector<std::string> aggregator_args;  // extra flags
  std::vector<std::string> sensor_args;      // extra flags for every sensor
  // Extra flags for the sensor of one host (after sensor_args).
  std::map<std::string, std::vector<std::string>> sensor_args_by_host;
  std::chrono::milliseconds ready_timeout{30000};
};

class Fleet {
 public:
  // Starts the aggregator, waits for "listening on", then a sensor per lab host (not for
  // clients) and waits for each "sensor ready".
  static Result<std::unique_ptr<Fleet>> Start(const lab::Lab& lab, FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  const std::string& aggregator_address() const { return address_; }
  // "http://127.0.0.1:PORT" when the aggregator was given --console; "" otherwise.
  const std::string& console_url() const { return console_url_; }
  const std::string& data_dir() const { return data_dir_; }

  // triplinectl --aggregator ADDR args...
  Result<lab::RunResult> Ctl(std::vector<std::string> args) const;
  // Ctl(args + --json), parsed. Non-zero exit is an error carrying stderr.
  Result<nlohmann::json> CtlJson(std::vector<std::string> args) const;

  // SIGSTOP / SIGCONT of the sensor of `host`: it stops reading its ring buffer and
  // sending, and catches up after resuming (events then arrive late and out of order).
  Status PauseSensor(const std::string& host);
  Status ResumeSensor(const std::string& host);

  // SIGTERM to every sensor, then the aggregator; each must exit 0 within the grace.
  Status Stop();

 private:
  Fleet() = default;
  Status StartAggregator(const FleetOptions& options);
  Status StartSensor(const lab::LabHost& host, const FleetOptions& options);

  std::string bin_dir_;
  std::string data_dir_;
  std::string address_;
  std::string console_url_;
  std::optional<lab::Subprocess> aggregator_;
  std::map<std::string, lab::Subprocess> sensors_;
  bool stopped_ = false;
};

// Polls `triplinectl incidents --json` until `match` accepts one incident or the deadline
// passes. Returns the matching incident.
Result<nlohmann::json> WaitForIncident(const Fleet& fleet,
                                       const std::function<bool(const nlohmann::json&)>& match,
                                       std::chrono::milliseconds timeout);

}  // namespace tripline::scenario
