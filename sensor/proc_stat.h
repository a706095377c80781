// The two fields of /proc/<pid>/stat the sensor needs: the parent and the start time.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace tripline::sensor {

struct ProcStat {
  uint32_t ppid = 0;
  // Field 22, clock ticks since boot. With the pid it names one process for the life of
  // the system, so caches keyed by pid notice when a pid was reused.
  uint64_t start_ticks = 0;
};

// Parses the text of /proc/<pid>/stat. The comm field may itself contain spaces and ')',
// so fields are counted from the last ')'.
Result<ProcStat> ParseProcStat(std::string_view text);

}  // namespace tripline::sensor
