// Exactly-once, checked event by event: the (sensor, seq) pairs a store holds against the
// pairs that were sent. Totals are not enough: one event lost and another stored twice
// keep every count right.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tripline::testing {

using SensorSeq = std::pair<std::string, uint64_t>;

// Success when every pair of `sent` occurs exactly once in `stored` and nothing else
// does; otherwise names (the first few of) the pairs missing, stored twice and never sent.
inline ::testing::AssertionResult StoredExactlyOnce(const std::vector<SensorSeq>& stored,
                                                    const std::set<SensorSeq>& sent) {
  std::map<SensorSeq, size_t> copies;
  for (const SensorSeq& key : stored) ++copies[key];
  std::vector<SensorSeq> missing, repeated, unknown;
  for (const SensorSeq& key : sent) {
    if (!copies.contains(key)) missing.push_back(key);
  }
  for (const auto& [key, n] : copies) {
    if (!sent.contains(key)) unknown.push_back(key);
    if (n > 1) repeated.push_back(key);
  }
  if (missing.empty() && repeated.empty() && unknown.empty()) {
    return ::testing::AssertionSuccess();
  }
  std::ostringstream why;
  const auto list = [&](const char* what, const std::vector<SensorSeq>& keys) {
    if (keys.empty()) return;
    why << keys.size() << " " << what << ":";
    for (size_t i = 0; i < keys.size() && i < 8; ++i) {
      why << " " << keys[i].first << "#" << keys[i].second;
      if (copies.contains(keys[i]) && copies[keys[i]] > 1) why << "(x" << copies[keys[i]] << ")";
    }
    why << (keys.size() > 8 ? " ...; " : "; ");
  };
  list("missing", missing);
  list("stored more than once", repeated);
  list("stored but never sent", unknown);
  why << stored.size() << " stored, " << sent.size() << " sent";
  return ::testing::AssertionFailure() << why.str();
}

// The pairs (sensor, first) .. (sensor, last).
inline std::set<SensorSeq> SeqRange(const std::string& sensor, uint64_t first, uint64_t last) {
  std::set<SensorSeq> out;
  for (uint64_t s = first; s <= last; ++s) out.emplace(sensor, s);
  return out;
}

}  // namespace tripline::testing
