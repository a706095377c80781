#include "aggregator/baseline/models.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

namespace tripline::baseline {
namespace {

constexpr double kLn2 = 0.69314718055994530942;
// Pseudo-count spread over the 24 hours: a person seen only at 09:00 makes 03:00 unusual,
// never impossible.
constexpr double kHourPrior = 0.5;
// Added to the covariance's diagonal: the rates are log1p-scaled, so an identity whose
// rates never varied is still not infinitely sure of them.
constexpr double kCovRidge = 0.05;
// Chi-square 95% quantile, 4 degrees of freedom: observations beyond it learn with weight
// kHuber / d2 (Huber).
constexpr double kHuber = 9.49;
constexpr int64_t kDecayStepNs = 3600LL * 1000 * 1000 * 1000;

int32_t DayOf(int64_t ns) { return static_cast<int32_t>(ns / kNanosPerDay); }

Status Bad(std::string_view what) {
  return Status::Corruption("baseline record: " + std::string(what));
}

}  // namespace

const std::array<const char*, kRateDims> kRateNames = {
    "logins in the last day", "failed logins in the last hour", "hops in the last hour",
    "host changes in the last day"};

double DecayFactor(int64_t from_ns, int64_t to_ns, int64_t half_life_ns) {
  if (half_life_ns <= 0 || to_ns <= from_ns || from_ns == 0) return 1.0;
  return std::exp(-kLn2 * static_cast<double>(to_ns - from_ns) / static_cast<double>(half_life_ns));
}

// ---- Categorical ------------------------------------------------------------------------

uint32_t ValueHash(std::string_view value) {
  const uint64_t h = std::hash<std::string_view>{}(value);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

Categorical::Categorical(const Categorical& o)
    : total_(o.total_), count_(o.count_), updated_ns_(o.updated_ns_) {
  Reserve(o.size_);
  const CategoryEntry* from = o.Entries();
  for (uint32_t i = 0; i < o.size_; ++i) Append(from[i], o.hashes_[i]);
}

Categorical::~Categorical() {
  CategoryEntry* e = Entries();
  for (uint32_t i = 0; i < size_; ++i) e[i].~CategoryEntry();
  if (hashes_ != nullptr) ::operator delete(hashes_);
}

void Categorical::Swap(Categorical& o) noexcept {
  std::swap(hashes_, o.hashes_);
  std::swap(size_, o.size_);
  std::swap(cap_, o.cap_);
  std::swap(total_, o.total_);
  std::swap(count_, o.count_);
  std::swap(updated_ns_, o.updated_ns_);
}

void Categorical::Reserve(uint32_t cap) {
  if (cap <= cap_ || cap < size_) return;
  static_assert(alignof(CategoryEntry) <= 8);
  auto* block =
      static_cast<uint32_t*>(::operator new (HashBytes(cap) + size_t{cap} * sizeof(CategoryEntry)));
  auto* moved = reinterpret_cast<CategoryEntry*>(reinterpret_cast<char*>(block) + HashBytes(cap));
  CategoryEntry* old = Entries();
  for (uint32_t i = 0; i < size_; ++i) {
    block[i] = hashes_[i];
    new (&moved[i]) CategoryEntry(std::move(old[i]));
    old[i].~CategoryEntry();
  }
  if (hashes_ != nullptr) ::operator delete(hashes_);
  hashes_ = block;
  cap_ = cap;
}

void Categorical::Append(CategoryEntry e, uint32_t hash) {
  if (size_ == cap_) Reserve(cap_ == 0 ? 2 : cap_ * 2);
  hashes_[size_] = hash;
  new (&Entries()[size_]) CategoryEntry(std::move(e));
  ++size_;
}

void Categorical::EraseAt(uint32_t i) {
  CategoryEntry* e = Entries();
  for (uint32_t k = i; k + 1 < size_; ++k) {
    hashes_[k] = hashes_[k + 1];
    e[k] = std::move(e[k + 1]);
  }
  --size_;
  e[size_].~CategoryEntry();
}

const CategoryEntry* Categorical::Find(std::string_view value) const {
  const uint32_t h = ValueHash(value);
  for (uint32_t i = 0; i < size_; ++i) {
    if (hashes_[i] != h) continue;
    const CategoryEntry& e = Entries()[i];
    if (e.value == value) return &e;
  }
  return nullptr;
}

double Categorical::NewValueProbability() const {
  if (count_ == 0) return 1.0;
  size_t singletons = 0;
  for (const CategoryEntry& e : entries()) singletons += e.count == 1 ? 1 : 0;
  return std::min(1.0, (static_cast<double>(singletons) + 1.0) / (total_ + 2.0));
}

double Categorical::TailProbability(std::string_view value) const {
  if (count_ == 0) return 1.0;
  const CategoryEntry* found = Find(value);
  const double p_new = NewValueProbability();
  if (found == nullptr) return p_new;
  // The mass of every value at most as frequent as this one, evicted values included.
  double listed = 0, at_most = 0;
  for (const CategoryEntry& e : entries()) {
    listed += e.weight;
    if (e.weight <= found->weight) at_most += e.weight;
  }
  const double other = std::max(0.0, total_ - listed);
  return std::min(1.0, (at_most + other) / (total_ + 2.0) + p_new);
}

void Categorical::Decay(int64_t time_ns, int64_t half_life_ns) {
  // Decay moves in steps of at least an hour (0.1% at a 30-day half-life): learning a
  // busy identity's every exec does not walk its values each time.
  if (updated_ns_ != 0 && time_ns - updated_ns_ < kDecayStepNs) return;
  const double f = DecayFactor(updated_ns_, time_ns, half_life_ns);
  if (f < 1.0) {
    CategoryEntry* e = Entries();
    for (uint32_t i = 0; i < size_; ++i) e[i].weight = static_cast<float>(e[i].weight * f);
    total_ *= f;
  }
  updated_ns_ = std::max(updated_ns_, time_ns);
}

void Categorical::LearnFound(const CategoryEntry* found, double weight, int64_t time_ns,
                             int64_t half_life_ns) {
  Decay(time_ns, half_life_ns);
  total_ += weight;
  ++count_;
  CategoryEntry& e = Entries()[found - Entries()];  // the caller's pointer, writable
  e.weight = static_cast<float>(e.weight + weight);
  ++e.count;
  e.last_day = std::max(e.last_day, DayOf(time_ns));
}

void Categorical::Learn(std::string_view value, double weight, int64_t time_ns,
                        int64_t half_life_ns, size_t cap) {
  Decay(time_ns, half_life_ns);
  total_ += weight;
  ++count_;
  const int32_t day = DayOf(time_ns);
  const uint32_t h = ValueHash(value);
  CategoryEntry* entries = Entries();
  for (uint32_t i = 0; i < size_; ++i) {
    if (hashes_[i] != h || !(entries[i].value == value)) continue;
    CategoryEntry& e = entries[i];
    e.weight = static_cast<float>(e.weight + weight);
    ++e.count;
    e.last_day = std::max(e.last_day, day);
    return;
  }
  if (cap > 0 && size_ >= cap) {
    const auto lightest = std::min_element(
        entries, entries + size_,
        [](const CategoryEntry& a, const CategoryEntry& b) { return a.weight < b.weight; });
    EraseAt(static_cast<uint32_t>(lightest - entries));
  }
  // Grown by doubling, but never past the feature's cap: a full feature holds no slack.
  if (size_ == cap_ && cap > 0) {
    Reserve(static_cast<uint32_t>(
        std::min<size_t>(cap_ == 0 ? 2 : size_t{cap_} * 2, std::max<size_t>(cap, size_ + 1))));
  }
  Append({ShortText(value), static_cast<float>(weight), 1, day, day}, h);
}

size_t Categorical::MemoryBytes() const {
  size_t b = cap_ == 0 ? 0 : HashBytes(cap_) + size_t{cap_} * sizeof(CategoryEntry);
  for (const CategoryEntry& e : entries()) {
    b += e.value.HeapBytes();
  }
  return b;
}

nlohmann::json Categorical::ToJson() const {
  nlohmann::json values = nlohmann::json::array();
  for (const CategoryEntry& e : entries()) {
    values.push_back({e.value.str(), e.weight, e.count, e.first_day, e.last_day});
  }
  return {{"t", total_}, {"n", count_}, {"u", updated_ns_}, {"v", std::move(values)}};
}

Status Categorical::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("t") || !j["t"].is_number() || !j.contains("n") ||
      !j["n"].is_number_unsigned() || !j.contains("u") || !j["u"].is_number_integer() ||
      !j.contains("v") || !j["v"].is_array()) {
    return Bad("categorical lacks t, n, u or v");
  }
  Categorical c;
  c.Reserve(static_cast<uint32_t>(std::min<size_t>(j["v"].size(), UINT32_MAX)));
  c.total_ = j["t"].get<double>();
  c.count_ = j["n"].get<uint64_t>();
  c.updated_ns_ = j["u"].get<int64_t>();
  if (!std::isfinite(c.total_) || c.total_ < 0) return Bad("categorical total out of range");
  for (const auto& v : j["v"]) {
    if (!v.is_array() || v.size() != 5 || !v[0].is_string() || !v[1].is_number() ||
        !v[2].is_number_unsigned() || !v[3].is_number_integer() || !v[4].is_number_integer()) {
      return Bad("categorical value is not [value, weight, count, first_day, last_day]");
    }
    CategoryEntry e;
    e.value.assign(v[0].get<std::string>());
    const double w = v[1].get<double>();
    if (!std::isfinite(w) || w < 0) return Bad("categorical weight out of range");
    e.weight = static_cast<float>(w);
    e.count = static_cast<uint32_t>(std::min<uint64_t>(v[2].get<uint64_t>(), UINT32_MAX));
    e.first_day = static_cast<int32_t>(v[3].get<int64_t>());
    e.last_day = static_cast<int32_t>(v[4].get<int64_t>());
    const uint32_t h = ValueHash(e.value);
    c.Append(std::move(e), h);
  }
  *this = std::move(c);
  return Status::Ok();
}

// ---- HourModel --------------------------------------------------------------------------

namespace {
// Floor division: a time before 1970 still falls in an hour 0..23 and a day of the week.
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b) < 0 ? 1 : 0); }
int64_t FloorMod(int64_t a, int64_t b) { return ((a % b) + b) % b; }
int HourOf(int64_t ns) {
  return static_cast<int>(FloorMod(FloorDiv(ns, 3600LL * 1000 * 1000 * 1000), 24));
}
// 1970-01-01 was a Thursday.
bool IsWeekend(int64_t ns) {
  const int dow = static_cast<int>(FloorMod(FloorDiv(ns, kNanosPerDay) + 4, 7));  // 0 = Sunday
  return dow == 0 || dow == 6;
}
}  // namespace

double HourModel::Smoothed(int h) const {
  return 0.5 * hours_[h] + 0.25 * (hours_[(h + 23) % 24] + hours_[(h + 1) % 24]) +
         kHourPrior / 24.0;
}

double HourModel::TailProbability(int64_t time_ns) const {
  if (total_ <= 0) return 1.0;
  const double mine = Smoothed(HourOf(time_ns));
  double all = 0, at_most = 0;
  for (int h = 0; h < 24; ++h) {
    const double s = Smoothed(h);
    all += s;
    if (s <= mine * (1 + 1e-9)) at_most += s;
  }
  double p = at_most / all;
  // Day type: a weekend login of a weekday person is unusual, though less than an hour
  // nobody works: it counts with half the weight (square root of its tail).
  const int type = IsWeekend(time_ns) ? 1 : 0;
  const double share = (days_[type] + 0.5) / (days_[0] + days_[1] + 1.0);
  if (share < 0.5) p *= std::sqrt(share);
  return std::clamp(p, 1e-12, 1.0);
}

double HourModel::DayTypeProbability(int64_t time_ns) const {
  if (total_ <= 0) return 1.0;
  const int type = IsWeekend(time_ns) ? 1 : 0;
  const double share = (days_[type] + 0.5) / (days_[0] + days_[1] + 1.0);
  return share < 0.5 ? std::clamp(std::sqrt(share), 1e-12, 1.0) : 1.0;
}

bool HourModel::IsWeekendTime(int64_t time_ns) { return IsWeekend(time_ns); }

void HourModel::Learn(int64_t time_ns, double weight, int64_t half_life_ns) {
  const double f = DecayFactor(updated_ns_, time_ns, half_life_ns);
  if (f < 1.0) {
    for (float& h : hours_) h = static_cast<float>(h * f);
    for (float& d : days_) d = static_cast<float>(d * f);
    total_ *= f;
  }
  updated_ns_ = std::max(updated_ns_, time_ns);
  hours_[HourOf(time_ns)] += static_cast<float>(weight);
  days_[IsWeekend(time_ns) ? 1 : 0] += static_cast<float>(weight);
  total_ += weight;
}

bool HourModel::UsualSpan(double share, int* start, int* len) const {
  if (total_ <= 0) return false;
  double sum = 0;
  for (float h : hours_) sum += h;
  if (sum <= 0) return false;
  int best_start = 0, best_len = 24;
  for (int s = 0; s < 24; ++s) {
    if (hours_[s] <= 0) continue;
    // Only a span shorter than the best so far can replace it: the sums stop there.
    double mass = 0;
    for (int l = 1; l < best_len; ++l) {
      mass += hours_[(s + l - 1) % 24];
      if (mass >= share * sum) {
        if (l < best_len) {
          best_len = l;
          best_start = s;
        }
        break;
      }
    }
  }
  *start = best_start;
  *len = best_len;
  return true;
}

std::string HourModel::UsualHours(double share) const {
  int start = 0, len = 0;
  if (!UsualSpan(share, &start, &len)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:00-%02d:00", start, (start + len) % 24);
  return buf;
}

bool HourModel::WithinUsualHours(int64_t time_ns, double share) const {
  int start = 0, len = 0;
  if (!UsualSpan(share, &start, &len)) return false;
  return (HourOf(time_ns) - start + 24) % 24 < len;
}

nlohmann::json HourModel::ToJson() const {
  return {{"h", hours_}, {"d", days_}, {"t", total_}, {"u", updated_ns_}};
}

Status HourModel::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("h") || !j["h"].is_array() || j["h"].size() != 24 ||
      !j.contains("d") || !j["d"].is_array() || j["d"].size() != 2 || !j.contains("t") ||
      !j["t"].is_number() || !j.contains("u") || !j["u"].is_number_integer()) {
    return Bad("hour model is not {h[24], d[2], t, u}");
  }
  HourModel m;
  for (int i = 0; i < 24; ++i) {
    if (!j["h"][i].is_number()) return Bad("hour weight is not a number");
    m.hours_[i] = j["h"][i].get<float>();
    if (!std::isfinite(m.hours_[i]) || m.hours_[i] < 0) return Bad("hour weight out of range");
  }
  for (int i = 0; i < 2; ++i) {
    if (!j["d"][i].is_number()) return Bad("day weight is not a number");
    m.days_[i] = j["d"][i].get<float>();
    if (!std::isfinite(m.days_[i]) || m.days_[i] < 0) return Bad("day weight out of range");
  }
  m.total_ = j["t"].get<double>();
  m.updated_ns_ = j["u"].get<int64_t>();
  if (!std::isfinite(m.total_) || m.total_ < 0) return Bad("hour total out of range");
  *this = m;
  return Status::Ok();
}

// ---- RateModel --------------------------------------------------------------------------

namespace {
using Vec = Eigen::Matrix<double, kRateDims, 1>;
using Mat = Eigen::Matrix<double, kRateDims, kRateDims>;

Mat Unpack(const std::array<float, kRateDims*(kRateDims + 1) / 2>& cov) {
  Mat m;
  int k = 0;
  for (int i = 0; i < kRateDims; ++i) {
    for (int j = i; j < kRateDims; ++j) {
      m(i, j) = m(j, i) = cov[k++];
    }
  }
  return m;
}
}  // namespace

double RateModel::Distance2(const RateVector& x) const {
  if (weight_ < kMinWeight) return 0;
  Vec d;
  for (int i = 0; i < kRateDims; ++i) d(i) = x[i] - mean_[i];
  Mat c = Unpack(cov_);
  c.diagonal().array() += kCovRidge;
  const double d2 = d.dot(c.ldlt().solve(d));
  return std::isfinite(d2) ? std::max(0.0, d2) : 0.0;
}

double RateModel::ExpectedCount(int i) const {
  const double var = std::max(0.0, static_cast<double>(Unpack(cov_)(i, i)));
  return std::max(0.0, std::expm1(mean_[i] + var / 2));
}

namespace {
// P(X >= k) for X ~ Poisson(lambda).
double PoissonTail(int64_t k, double lambda) {
  if (k <= 0) return 1.0;
  if (lambda <= 0) return 0.0;
  if (static_cast<double>(k) <= lambda) {
    // 1 - P(X < k), the head summed directly.
    double term = std::exp(-lambda), head = 0;
    for (int64_t j = 0; j < k; ++j) {
      head += term;
      term *= lambda / static_cast<double>(j + 1);
    }
    return std::clamp(1.0 - head, 0.0, 1.0);
  }
  // The tail summed from k upwards, in log space for large k.
  const double kd = static_cast<double>(k);
  double term = std::exp(kd * std::log(lambda) - lambda - std::lgamma(kd + 1));
  double tail = 0;
  for (int64_t j = k; j < k + 1000 && term > tail * 1e-15; ++j) {
    tail += term;
    term *= lambda / static_cast<double>(j + 1);
  }
  return std::clamp(tail, 0.0, 1.0);
}
}  // namespace

double RateModel::TailProbability(const RateVector& x, int* top, unsigned given) const {
  if (top != nullptr) *top = 0;
  if (weight_ < kMinWeight) return 1.0;
  double best = 1.0;
  int judged = 0;
  for (int i = 0; i < kRateDims; ++i) {
    if (given != 0 && ((given >> i) & 1u) == 0) continue;  // not this event's to judge
    ++judged;
    const double count = std::expm1(std::max(0.0f, x[i]));
    int64_t k = static_cast<int64_t>(std::floor(count + 0.5));
    if ((given >> i) & 1u) k -= 1;  // this event's own one is certain
    const double p = PoissonTail(k, ExpectedCount(i) + kRateFloor);
    if (p < best) {
      best = p;
      if (top != nullptr) *top = i;
    }
  }
  // Sidak: the smallest of `judged` tails.
  const double p = -std::expm1(judged * std::log1p(-std::min(best, 1.0 - 1e-16)));
  return std::clamp(p, 1e-12, 1.0);
}

int RateModel::TopDimension(const RateVector& x, unsigned given) const {
  int top = 0;
  TailProbability(x, &top, given);
  return top;
}

void RateModel::Learn(const RateVector& x, double weight, int64_t time_ns, int64_t half_life_ns) {
  const double f = DecayFactor(updated_ns_, time_ns, half_life_ns);
  weight_ *= f;
  updated_ns_ = std::max(updated_ns_, time_ns);
  const double d2 = Distance2(x);
  const double w = weight * (d2 > kHuber ? kHuber / d2 : 1.0);
  const double total = weight_ + w;
  if (total <= 0) return;
  Vec mean, dx;
  for (int i = 0; i < kRateDims; ++i) {
    mean(i) = mean_[i];
    dx(i) = x[i] - mean_[i];
  }
  mean += (w / total) * dx;
  Mat c = Unpack(cov_);
  c = (weight_ / total) * (c + (w / total) * dx * dx.transpose());
  int k = 0;
  for (int i = 0; i < kRateDims; ++i) {
    mean_[i] = static_cast<float>(mean(i));
    for (int j = i; j < kRateDims; ++j) cov_[k++] = static_cast<float>(c(i, j));
  }
  weight_ = total;
}

nlohmann::json RateModel::ToJson() const {
  return {{"m", mean_}, {"c", cov_}, {"w", weight_}, {"u", updated_ns_}};
}

Status RateModel::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("m") || !j["m"].is_array() || j["m"].size() != kRateDims ||
      !j.contains("c") || !j["c"].is_array() ||
      j["c"].size() != static_cast<size_t>(kRateDims * (kRateDims + 1) / 2) || !j.contains("w") ||
      !j["w"].is_number() || !j.contains("u") || !j["u"].is_number_integer()) {
    return Bad("rate model is not {m, c, w, u}");
  }
  RateModel m;
  for (size_t i = 0; i < m.mean_.size(); ++i) {
    if (!j["m"][i].is_number()) return Bad("rate mean is not a number");
    m.mean_[i] = j["m"][i].get<float>();
    if (!std::isfinite(m.mean_[i])) return Bad("rate mean out of range");
  }
  for (size_t i = 0; i < m.cov_.size(); ++i) {
    if (!j["c"][i].is_number()) return Bad("rate covariance is not a number");
    m.cov_[i] = j["c"][i].get<float>();
    if (!std::isfinite(m.cov_[i])) return Bad("rate covariance out of range");
  }
  m.weight_ = j["w"].get<double>();
  m.updated_ns_ = j["u"].get<int64_t>();
  if (!std::isfinite(m.weight_) || m.weight_ < 0 || m.weight_ > kMaxWeight) {
    return Bad("rate weight out of range");
  }
  // A covariance that is not positive semi-definite would make distances negative.
  Mat c = Unpack(m.cov_);
  c.diagonal().array() += kCovRidge;
  if (c.ldlt().info() != Eigen::Success || !c.ldlt().isPositive()) {
    return Bad("rate covariance is not positive definite");
  }
  *this = m;
  return Status::Ok();
}

}  // namespace tripline::baseline
