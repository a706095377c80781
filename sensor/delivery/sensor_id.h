// The sensor's persistent identity on the ingest stream.
#pragma once

#include <string>

#include "common/status.h"

namespace tripline::delivery {

// Reads dir/sensor_id, or creates it once with a random 128-bit id (32 lowercase hex
// digits, from getrandom(2)) written atomically. The id keys the aggregator's sequence
// numbers, so a file that exists but does not hold a well-formed id is an error
// (Corruption) rather than silently replaced: a new id would make the aggregator treat the
// sensor as new. Creates `dir` if needed. Thread-compatible: call once at start-up.
Result<std::string> LoadOrCreateSensorId(const std::string& dir);

// True for 32 lowercase hex digits.
bool IsValidSensorId(const std::string& id);

}  // namespace tripline::delivery
