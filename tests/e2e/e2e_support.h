// Shared pieces of the end-to-end tests: prerequisites, where the binaries are, and
// reading a sensor's JSONL output.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/temp_dir.h"
#include "tools/lab/lab.h"
#include "tools/lab/subprocess.h"

namespace tripline::e2e {

// Ok when this machine can run real sensors on lab hosts; otherwise why not.
inline Status CheckE2ePrerequisites() {
  TL_RETURN_IF_ERROR(lab::Lab::CheckPrerequisites());
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) {
    return Status::Unsupported("the kernel exposes no BTF (/sys/kernel/btf/vmlinux)");
  }
  return Status::Ok();
}

inline std::string BinDir() { return TRIPLINE_BIN_DIR; }

using ::tripline::testing::TempDir;

// Reads JSON lines from a sensor's stdout, keeping every event, until `done` says the
// events so far are enough or the deadline passes. Non-JSON lines are kept in `other`.
struct SensorOutput {
  std::vector<nlohmann::json> events;
  std::vector<std::string> other;
};

inline Status ReadEventsUntil(lab::Subprocess& sensor, SensorOutput* out,
                              const std::function<bool(const SensorOutput&)>& done,
                              std::chrono::milliseconds timeout) {
  if (done(*out)) return Status::Ok();
  auto r = sensor.ReadLineUntil(
      lab::OutputStream::kStdout,
      [&](std::string_view line) {
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_object()) {
          out->events.push_back(std::move(j));
        } else {
          out->other.emplace_back(line);
        }
        return done(*out);
      },
      lab::DeadlineIn(timeout));
  return r.status();
}

// The events of `out` for which `match` holds.
inline std::vector<nlohmann::json> Select(const SensorOutput& out,
                                          const std::function<bool(const nlohmann::json&)>& match) {
  std::vector<nlohmann::json> selected;
  for (const auto& e : out.events) {
    if (match(e)) selected.push_back(e);
  }
  return selected;
}

}  // namespace tripline::e2e
