// The models a baseline is made of. Each answers "how surprising is this value for this
// history" as a tail probability p in (0, 1]: the chance, under what was learned, of
// something at least this unusual. Small p is surprising; baselines.cc turns the p of the
// features of one event into one calibrated score.
//
//  - Categorical: a value's smoothed frequency among the values seen (source networks,
//    hosts, executables, ...). A value never seen gets the Good-Turing estimate of the
//    probability of a new value, (n1 + 1) / (n + 2), where n1 is the number of values seen
//    exactly once and n the (decayed) number of observations: a first-ever value is
//    surprising in proportion to how settled the history is, not merely flagged.
//  - HourModel: hour of week, factored as hour of day (24 bins, smoothed over neighbouring
//    hours) times weekday/weekend.
//  - RateModel: a robust, exponentially weighted mean and covariance (Eigen) of a small
//    vector of rates (log1p of counts). Learning weighs outliers by their Mahalanobis
//    distance; scoring judges each rate as a count: a Poisson tail of the count against
//    the identity's expected count, the smallest over the dimensions (Sidak-corrected).
//
// Forgetting: every weight decays with the same half-life, applied when the model learns
// (ratios between values are unchanged by decay, so scoring needs no decay but the
// history's size).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/baseline/short_text.h"
#include "common/status.h"

namespace tripline::baseline {

inline constexpr int64_t kNanosPerDay = 86400LL * 1000 * 1000 * 1000;

// exp(-dt / tau) for the decay from `from_ns` to `to_ns` with `half_life_ns`.
double DecayFactor(int64_t from_ns, int64_t to_ns, int64_t half_life_ns);

struct CategoryEntry {
  ShortText value;        // most in place: a match is confirmed without another cache miss
  float weight = 0;       // decayed
  uint32_t count = 0;     // raw observations, ever
  int32_t first_day = 0;  // days since the epoch
  int32_t last_day = 0;
};

// The hash a Categorical keeps for each value.
uint32_t ValueHash(std::string_view value);

class Categorical {
 public:
  Categorical() = default;
  Categorical(const Categorical& o);
  Categorical(Categorical&& o) noexcept { Swap(o); }
  Categorical& operator=(Categorical o) noexcept {
    Swap(o);
    return *this;
  }
  ~Categorical();

  // p of `value` (see the file comment). 1 when nothing was learned yet.
  double TailProbability(std::string_view value) const;
  // Probability that the next value is one never seen.
  double NewValueProbability() const;
  const CategoryEntry* Find(std::string_view value) const;
  // Learns one observation of `value` with `weight` at `time_ns`. Beyond `cap` values the
  // lightest is evicted (its mass stays in the total as "other values").
  void Learn(std::string_view value, double weight, int64_t time_ns, int64_t half_life_ns,
             size_t cap);
  // The same for a value this model's Find returned (no second lookup).
  void LearnFound(const CategoryEntry* found, double weight, int64_t time_ns, int64_t half_life_ns);

  double total() const { return total_; }
  uint64_t count() const { return count_; }
  // In the order first learned (an evicted value's place closes up).
  std::span<const CategoryEntry> entries() const { return {Entries(), size_}; }
  size_t MemoryBytes() const;

  nlohmann::json ToJson() const;
  Status FromJson(const nlohmann::json& j);

 private:
  // The values live in one block from the heap: first the hash of each (16 to a cache
  // line), then the entries. A lookup reads the hashes and only the entry whose hash
  // matches: on a busy identity's programs that is two cache lines, not one per value.
  static size_t HashBytes(uint32_t cap) {
    return (size_t{cap} * sizeof(uint32_t) + 7) & ~size_t{7};
  }
  CategoryEntry* Entries() const {
    return reinterpret_cast<CategoryEntry*>(reinterpret_cast<char*>(hashes_) + HashBytes(cap_));
  }
  // Room for `cap` values (at least size_), the values moved over.
  void Reserve(uint32_t cap);
  void Append(CategoryEntry e, uint32_t hash);
  void EraseAt(uint32_t i);
  void Swap(Categorical& o) noexcept;
  void Decay(int64_t time_ns, int64_t half_life_ns);

  uint32_t* hashes_ = nullptr;  // the block; nullptr while cap_ is 0
  uint32_t size_ = 0;
  uint32_t cap_ = 0;
  double total_ = 0;  // decayed, including evicted values
  uint64_t count_ = 0;
  int64_t updated_ns_ = 0;
};

class HourModel {
 public:
  // p of a login at `time_ns` (UTC hour of week), and whether the day type alone is rare.
  double TailProbability(int64_t time_ns) const;
  void Learn(int64_t time_ns, double weight, int64_t half_life_ns);
  double total() const { return total_; }
  // "08:00-18:00": the shortest span of hours of day holding `share` of the mass; "" when
  // nothing was learned.
  std::string UsualHours(double share = 0.95) const;
  // Whether the hour of day of `time_ns` lies inside UsualHours(share): an explanation never
  // cites the hour of a login inside the identity's usual hours.
  bool WithinUsualHours(int64_t time_ns, double share = 0.95) const;
  // The day-type factor of TailProbability alone: 1 unless a weekend (weekday) login is
  // rare for this history, then the square root of its share.
  double DayTypeProbability(int64_t time_ns) const;
  static bool IsWeekendTime(int64_t time_ns);
  nlohmann::json ToJson() const;
  Status FromJson(const nlohmann::json& j);

 private:
  double Smoothed(int hour) const;
  bool UsualSpan(double share, int* start, int* len) const;
  std::array<float, 24> hours_{};
  std::array<float, 2> days_{};  // weekday, weekend
  double total_ = 0;
  int64_t updated_ns_ = 0;
};

// The rate vector of one event: see RateModel.
inline constexpr int kRateDims = 4;
using RateVector = std::array<float, kRateDims>;
// Names of the dimensions, for explanations.
extern const std::array<const char*, kRateDims> kRateNames;

class RateModel {
 public:
  // Mahalanobis distance squared of x from the learned mean; 0 while fewer than
  // `min_weight` observations were learned.
  double Distance2(const RateVector& x) const;
  // Tail probability of x judged as counts: per dimension, the Poisson probability of a
  // count at least this large given the learned expected count (plus kRateFloor, so a
  // rate never seen is unusual, never impossible); the smallest over the dimensions,
  // Sidak-corrected for their number. Bit i of `given` says this event itself added one
  // to dimension i: that one is certain and only the others in the window are judged.
  // With `given`, only those dimensions are judged (the others' events were judged when
  // they came, and a later event would count them again). With `top`, also the dimension
  // with the smallest tail.
  double TailProbability(const RateVector& x, int* top = nullptr, unsigned given = 0) const;
  // The dimension with the smallest tail.
  int TopDimension(const RateVector& x, unsigned given = 0) const;
  // Expected count of dimension i (log-normal mean of the learned log1p rate).
  double ExpectedCount(int i) const;
  // Learns x; observations far from the mean get less weight (Huber), so that a burst of
  // outliers bends the model slowly.
  void Learn(const RateVector& x, double weight, int64_t time_ns, int64_t half_life_ns);
  double weight() const { return weight_; }
  const std::array<float, kRateDims>& mean() const { return mean_; }
  nlohmann::json ToJson() const;
  Status FromJson(const nlohmann::json& j);

  static constexpr double kMinWeight = 10;
  // Far above what decayed sums of a fleet's events reach; a stored weight above it is damage.
  static constexpr double kMaxWeight = 1e12;
  static constexpr double kRateFloor = 0.1;

 private:
  std::array<float, kRateDims> mean_{};
  std::array<float, kRateDims*(kRateDims + 1) / 2> cov_{};  // upper triangle, row-major
  double weight_ = 0;
  int64_t updated_ns_ = 0;
};

}  // namespace tripline::baseline
