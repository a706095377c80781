#include "aggregator/baseline/baselines.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/clock.h"

namespace tripline::baseline {

using json = nlohmann::json;

namespace {

constexpr int64_t kHourNs = 3600LL * kNanosPerSecond;
// Per-feature caps on distinct values kept (the lightest goes first; its mass stays).
constexpr size_t kCapAddr = 16;
constexpr size_t kCapNet = 16;
constexpr size_t kCapHost = 32;
constexpr size_t kCapService = 8;
constexpr size_t kCapEdge = 32;
constexpr size_t kCapExe = 64;
constexpr size_t kCapFile = 16;
constexpr size_t kCapDest = 32;
constexpr size_t kCapUsers = 64;
constexpr size_t kCapDepth = 8;
constexpr size_t kCapPeerEdge = 128;
// A contribution is named in an explanation when at most this likely.
constexpr double kNameableP = 0.2;
// Activity values seen at least this often are learned at once (they teach nothing new);
// rarer ones wait like logins.
constexpr uint32_t kSettledCount = 3;
// History sizes before activity novelty counts as warm.
constexpr uint64_t kWarmExecs = 50;
constexpr uint64_t kWarmFiles = 5;
constexpr uint64_t kWarmDests = 20;
// Weight of a value folded back by analyst feedback: at least this, or this share of the
// feature's history, so that the next such event is ordinary.
constexpr double kFeedbackWeight = 5;
constexpr double kFeedbackShare = 0.1;

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// "kind:name" built on the stack for lookups: no allocation per event for names that fit.
class KeyBuf {
 public:
  KeyBuf(IdentityKind kind, std::string_view name) {
    const std::string_view k = KindName(kind);
    if (k.size() + 1 + name.size() <= sizeof buf_) {
      std::memcpy(buf_, k.data(), k.size());
      buf_[k.size()] = ':';
      std::memcpy(buf_ + k.size() + 1, name.data(), name.size());
      view_ = std::string_view(buf_, k.size() + 1 + name.size());
    } else {
      long_ = std::string(k) + ":" + std::string(name);
      view_ = long_;
    }
  }
  KeyBuf(const KeyBuf&) = delete;
  KeyBuf& operator=(const KeyBuf&) = delete;
  std::string_view view() const { return view_; }

 private:
  char buf_[96];
  std::string long_;
  std::string_view view_;
};

// Writes `v` in decimal at `out`; returns the end.
char* WriteDecimal(char* out, uint32_t v) {
  char digits[10];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *out++ = digits[--n];
  return out;
}

// Room for any network WriteNetworkOf writes, a ':' and a port.
constexpr size_t kNetText = INET6_ADDRSTRLEN + 16;

// "198.51.100.7" -> "198.51.100.0/24", "2001:db8:1:2::5" -> "2001:db8:1::/48", written at
// `out` (kNetText bytes); returns the length, or 0 when `addr` is not an address.
size_t WriteNetworkOf(std::string_view addr, char* out) {
  char text[INET6_ADDRSTRLEN];
  if (addr.empty() || addr.size() >= sizeof text) return 0;
  std::memcpy(text, addr.data(), addr.size());
  text[addr.size()] = '\0';
  unsigned char b[3];
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, text, &v4) == 1) {
    const uint32_t a = ntohl(v4.s_addr);
    b[0] = static_cast<unsigned char>(a >> 24);
    b[1] = static_cast<unsigned char>(a >> 16);
    b[2] = static_cast<unsigned char>(a >> 8);
  } else if (inet_pton(AF_INET6, text, &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      std::memcpy(b, &v6.s6_addr[12], 3);
    } else {
      for (int i = 6; i < 16; ++i) v6.s6_addr[i] = 0;
      if (inet_ntop(AF_INET6, &v6, out, INET6_ADDRSTRLEN) == nullptr) return 0;
      const size_t n = std::strlen(out);
      std::memcpy(out + n, "/48", 3);
      return n + 3;
    }
  } else {
    return 0;
  }
  char* p = out;
  for (unsigned char octet : b) {
    p = WriteDecimal(p, octet);
    *p++ = '.';
  }
  std::memcpy(p, "0/24", 4);
  return static_cast<size_t>(p + 4 - out);
}

// The network of `addr`; the value itself when it is not an address.
std::string NetworkOf(std::string_view addr) {
  char buf[kNetText];
  const size_t n = WriteNetworkOf(addr, buf);
  return n == 0 ? std::string(addr) : std::string(buf, n);
}

// "network:port" of an outbound destination ("192.0.2.0/24:443"), the value a
// destination is learned as, built on the stack for the connect path.
class DestBuf {
 public:
  DestBuf(std::string_view addr, uint32_t port) {
    size_t n = WriteNetworkOf(addr, buf_);
    if (n == 0) {
      if (addr.size() + 11 > sizeof buf_) {
        long_ = std::string(addr) + ":" + std::to_string(port);
        view_ = long_;
        return;
      }
      std::memcpy(buf_, addr.data(), addr.size());
      n = addr.size();
    }
    buf_[n++] = ':';
    n = static_cast<size_t>(WriteDecimal(buf_ + n, port) - buf_);
    view_ = std::string_view(buf_, n);
  }
  DestBuf(const DestBuf&) = delete;
  DestBuf& operator=(const DestBuf&) = delete;
  std::string_view view() const { return view_; }

 private:
  char buf_[kNetText + 16];
  std::string long_;
  std::string_view view_;
};

std::string_view Prefix(const std::string& net) {
  return net.size() > 3 && net.compare(net.size() - 3, 3, "/48") == 0 ? "/48" : "/24";
}

// A network `known` holds in the same /16 as the IPv4 /24 `net` ("" when none, or IPv6).
std::string NearNetwork(const std::string& net, const Categorical& known) {
  const size_t dot1 = net.find('.');
  const size_t dot2 = dot1 == std::string::npos ? dot1 : net.find('.', dot1 + 1);
  if (dot2 == std::string::npos || net.find(':') != std::string::npos) return "";
  const std::string_view block(net.data(), dot2 + 1);  // "198.51."
  for (const CategoryEntry& e : known.entries()) {
    if (e.value.view().substr(0, block.size()) == block) return e.value.str();
  }
  return "";
}

std::string HourMinute(int64_t ns) {
  int64_t minutes = (ns / (60 * kNanosPerSecond)) % (24 * 60);
  if (minutes < 0) minutes += 24 * 60;  // before 1970: the clock time all the same
  const int h = static_cast<int>(minutes / 60), m = static_cast<int>(minutes % 60);
  const char text[5] = {static_cast<char>('0' + h / 10), static_cast<char>('0' + h % 10), ':',
                        static_cast<char>('0' + m / 10), static_cast<char>('0' + m % 10)};
  return std::string(text, sizeof text);
}

std::string Days(int64_t from_ns, int64_t to_ns) {
  const int64_t d = std::max<int64_t>(0, to_ns - from_ns) / kNanosPerDay;
  return std::to_string(d) + (d == 1 ? " day" : " days");
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double Settle(double x) { return std::isfinite(x) ? x : 0.0; }

// A pending login's rates are log1p of short-term counts, or -1 where it had none; the
// short-term counts themselves are decayed event counts. Values outside these bounds are
// damage: learning them would overflow the rate model's covariance.
constexpr double kMaxLogRate = 64;
constexpr double kMaxShortTermCount = 1e12;
bool IsPendingRate(double x) { return x == -1 || (x >= 0 && x <= kMaxLogRate); }
bool IsShortTermCount(double x) { return x >= 0 && x <= kMaxShortTermCount; }

}  // namespace

// ---- data -------------------------------------------------------------------------------

// Laid out for the busiest path: an exec, connect or file open of an identity whose value
// is already ordinary reads the key, the counters and one activity feature. The key, the
// counters and the programs run fill the first 128 bytes (one pair of cache lines, which
// the CPU fetches together), the destinations and files the next; the rest is read by
// logins and hops.
struct alignas(128) Baselines::Profile {
  TableKey key;  // "kind:name", set by the table
  int64_t first_ns = 0;
  int64_t last_ns = 0;
  uint64_t observations = 0;
  uint32_t logins = 0;  // learned
  uint32_t failures = 0;
  IdentityKind kind = IdentityKind::kHuman;
  bool dirty = false;  // listed in dirty_ (not persisted)
  Categorical exe;
  Categorical dest, file;
  std::string name;
  Categorical addr, net, host, service, edge, users;
  // Chain depth of its hops ("1": out of an entry session, "2": onwards from a hop-reached
  // one, ...) and escalations to root in its sessions ("root").
  Categorical depth, priv;
  HourModel hours;
  RateModel rates;
  // Short-term rates, updated as events arrive (not learned): logins and host changes with
  // a one-day half-life, failures and hops with a one-hour one.
  std::array<float, kRateDims> st{};
  int64_t st_ns = 0;
  std::string last_host;
  int32_t budget_day = 0;
  float budget_used = 0;
  std::string peer;  // peer group key
  float last_score = 0;
  std::string last_reason;
};

namespace {

std::array<double, kRateDims> DecayedRates(const std::array<float, kRateDims>& st, int64_t st_ns,
                                           int64_t t) {
  const double day = DecayFactor(st_ns, t, kNanosPerDay);
  const double hour = DecayFactor(st_ns, t, kHourNs);
  return {st[0] * day, st[1] * hour, st[2] * hour, st[3] * day};
}

// Rates of an event that came out of order: not learned (log1p rates are never negative).
constexpr RateVector kNoRates = {-1, -1, -1, -1};

// Events this much older than the newest the short-term rates counted are out of order.
constexpr int64_t kOutOfOrderNs = 3600LL * kNanosPerSecond;

bool OutOfOrder(const Baselines::Profile& p, int64_t t) {
  return p.st_ns != 0 && t < p.st_ns - kOutOfOrderNs;
}

RateVector ToRates(const std::array<double, kRateDims>& r) {
  RateVector x;
  for (int i = 0; i < kRateDims; ++i) x[i] = static_cast<float>(std::log1p(std::max(0.0, r[i])));
  return x;
}

}  // namespace

std::string Score::Sentence() const {
  std::string out;
  for (const Contribution& c : top) {
    if (c.sentence.empty()) continue;
    if (!out.empty()) out += "; ";
    out += c.sentence;
  }
  return out;
}

double Calibrate(const std::vector<double>& ps) {
  if (ps.empty()) return 0;
  std::vector<double> s;
  s.reserve(ps.size());
  for (double p : ps) s.push_back(std::isnan(p) ? 0.0 : -std::log10(std::clamp(p, 1e-12, 1.0)));
  std::sort(s.rbegin(), s.rend());
  double total = s[0];
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] >= 0.5) total += 0.5 * s[i];
  }
  return 1.0 / (1.0 + std::exp(-2.0 * (total - 2.0)));
}

double Corroborate(std::vector<double> scores) {
  std::vector<double> s;
  s.reserve(scores.size());
  for (double v : scores) {
    if (!(v > 0)) continue;
    const double c = std::clamp(v, 1e-9, 1 - 1e-9);
    s.push_back(2.0 + 0.5 * std::log(c / (1 - c)));
  }
  if (s.empty()) return 0;
  std::sort(s.rbegin(), s.rend());
  double total = s[0];
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] >= 0.5) total += 0.5 * s[i];
  }
  return 1.0 / (1.0 + std::exp(-2.0 * (total - 2.0)));
}

Baselines::Baselines() : Baselines(BaselineOptions{}) {}

Baselines::Baselines(BaselineOptions options, IdentityResolver resolver)
    : options_(std::move(options)), resolver_(std::move(resolver)) {}

Baselines::~Baselines() = default;

Baselines::Profile* Baselines::Find(std::string_view key) {
  return const_cast<Profile*>(std::as_const(*this).Find(key));
}

const Baselines::Profile* Baselines::Find(std::string_view key) const {
  return profiles_.Find(key);
}

Baselines::Profile* Baselines::GetOrCreate(const Identity& who) {
  const KeyBuf kb(who.kind, who.name);
  if (Profile* p = Find(kb.view())) return p;
  if (profiles_.size() >= options_.max_identities) {
    ++stats_.identities_refused;
    return nullptr;
  }
  Profile& p = *profiles_.Emplace(kb.view()).first;
  p.kind = who.kind;
  p.name = who.name;
  if (Counted(p)) ++counted_identities_;
  return &p;
}

bool Baselines::WarmProfile(const Profile& p) const {
  return p.logins >= options_.warmup_logins && p.last_ns - p.first_ns >= options_.warmup_span_ns;
}

bool Baselines::Counted(const Profile& p) {
  return p.kind != IdentityKind::kHost && p.name.compare(0, 5, "peer:") != 0;
}

Baselines::Profile* Baselines::GetOrCreatePeer(const std::string& key, IdentityKind kind) {
  if (key.empty()) return nullptr;
  if (Profile* p = Find(key)) return p;
  Profile& p = *profiles_.Emplace(key).first;
  p.kind = kind;
  p.name = key;
  return &p;
}

void Baselines::MarkDirty(Profile* p) {
  if (p == nullptr || p->dirty) return;
  p->dirty = true;
  dirty_.push_back(p);
}

bool Baselines::IsWarm(const Identity& who) const {
  const Profile* p = Find(who.Key());
  return p != nullptr && p->logins >= options_.warmup_logins &&
         p->last_ns - p->first_ns >= options_.warmup_span_ns;
}

const std::string& Baselines::KindPeerKey(IdentityKind kind) {
  static const std::string kKeys[] = {"peer:human", "peer:service", "peer:agent", "peer:host"};
  return kKeys[static_cast<int>(kind) & 3];
}

std::string Baselines::PeerKeyOf(const Profile& prof) const {
  // MinHash of the host-access set: two identities share the key with probability equal
  // to the Jaccard similarity of the hosts they log in to.
  uint64_t best = UINT64_MAX;
  for (const CategoryEntry& e : prof.host.entries()) best = std::min(best, Fnv1a(e.value));
  if (best == UINT64_MAX) return "";
  char buf[24];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(best >> 32));
  return "peer:" + std::string(KindName(prof.kind)) + "/" + buf;
}

bool Baselines::Suppressed(const std::string& identity, std::string_view feature,
                           std::string_view value) const {
  if (suppressed_.empty()) return false;
  std::string k = identity;
  k.append("|").append(feature).append("|").append(value);
  return suppressed_.count(k) > 0;
}

void Baselines::FinishLogin(Score& s, const std::string& key, LoginCandidate* c, size_t n,
                            bool warm) const {
  if (!suppressed_.empty()) {
    n = static_cast<size_t>(std::remove_if(c, c + n,
                                           [&](const LoginCandidate& x) {
                                             return Suppressed(key, x.feature, x.value);
                                           }) -
                            c);
  }
  std::sort(c, c + n, [](const LoginCandidate& a, const LoginCandidate& b) { return a.p < b.p; });
  std::vector<double> ps(n);
  for (size_t i = 0; i < n; ++i) ps[i] = c[i].p;
  s.warm = warm;
  s.value = Calibrate(ps);
  if (!warm) s.value = std::min(s.value, options_.cold_cap);
  for (size_t i = 0; i < n; ++i) {
    if (c[i].p > kNameableP || s.top.size() >= 3) break;
    s.top.push_back({key, c[i].feature, std::string(c[i].value), c[i].p, std::move(c[i].sentence)});
  }
}

void Baselines::Finish(Score& s, std::vector<Contribution> c, bool warm) const {
  c.erase(std::remove_if(
              c.begin(), c.end(),
              [&](const Contribution& x) { return Suppressed(x.identity, x.feature, x.value); }),
          c.end());
  std::sort(c.begin(), c.end(),
            [](const Contribution& a, const Contribution& b) { return a.p < b.p; });
  std::vector<double> ps;
  ps.reserve(c.size());
  for (const Contribution& x : c) ps.push_back(x.p);
  s.warm = warm;
  s.value = Calibrate(ps);
  if (!warm) s.value = std::min(s.value, options_.cold_cap);
  for (Contribution& x : c) {
    if (x.p > kNameableP || s.top.size() >= 3) break;
    s.top.push_back(std::move(x));
  }
}

// ---- scoring ----------------------------------------------------------------------------

Score Baselines::ScoreLogin(const LoginFacts& l) const {
  Score s;
  ++scored_;
  const Identity who = Resolve(l.user, l.process);
  const std::string key = who.Key();
  const Profile* prof = Find(key);
  if (prof == nullptr) return s;
  const bool warm = prof->logins >= options_.warmup_logins &&
                    prof->last_ns - prof->first_ns >= options_.warmup_span_ns;
  // Sentences are written only for the contributions an explanation may name, and the
  // identity and value copied only for those (FinishLogin).
  std::array<LoginCandidate, kLoginFeatures> c;
  size_t n = 0;
  const auto add = [&](const char* feature, std::string_view value, double p, auto&& sentence) {
    LoginCandidate& x = c[n++];
    x.feature = feature;
    x.value = value;
    x.p = p;
    if (p <= kNameableP) x.sentence = sentence();
  };
  std::string net, hhmm;  // values the candidates point into
  const auto n_logins = [&] { return std::to_string(prof->logins); };
  const auto span = [&] { return Days(prof->first_ns, std::max(prof->last_ns, l.time_ns)); };
  if (l.success) {
    if (!l.from_our_host && !l.addr.empty()) {
      net = NetworkOf(l.addr);
      const CategoryEntry* seen = prof->net.Find(net);
      double p_net = prof->net.TailProbability(net);
      if (seen == nullptr) {
        // How unlike the identity's networks it is: a new /24 next to one it uses (the same
        // /16, an address pool of the same provider) counts half as surprising as one in
        // no block it was ever seen in.
        const std::string near = NearNetwork(net, prof->net);
        if (!near.empty()) p_net = std::sqrt(p_net);
        add("network", net, p_net, [&] {
          return "first login ever from " + l.addr + " for " + who.name + ": 0 of " + n_logins() +
                 " logins in " + span() + " came from that " + std::string(Prefix(net)) + " (" +
                 net + ")" +
                 (near.empty() ? ", nor from its /16" : ", though " + near + " is in the same /16");
        });
      } else {
        add("network", net, p_net, [&] {
          return who.name + " logged in from " + net + " " + std::to_string(seen->count) + " of " +
                 n_logins() + " times in " + span();
        });
        if (prof->addr.Find(l.addr) == nullptr) {
          add("address", l.addr, prof->addr.TailProbability(l.addr), [&] {
            return "first login from " + l.addr + " for " + who.name + ", on a network " +
                   who.name + " uses (" + net + ")";
          });
        }
      }
    }
    double p_host = prof->host.TailProbability(l.host);
    if (p_host <= kNameableP && !prof->peer.empty()) {
      if (const Profile* peers = Find(prof->peer)) {
        if (peers->host.Find(l.host) != nullptr) {
          p_host = std::max(p_host, peers->host.TailProbability(l.host));
        }
      }
    }
    add("host", l.host, p_host, [&] {
      return prof->host.Find(l.host) == nullptr
                 ? "first login ever of " + who.name + " on " + l.host + " (0 of " + n_logins() +
                       " logins, and rare among " + who.name + "'s peers)"
                 : who.name + " rarely logs in on " + l.host;
    });
    hhmm = HourMinute(l.time_ns);
    if (!prof->hours.WithinUsualHours(l.time_ns)) {
      add("hour", std::string_view(hhmm).substr(0, 2), prof->hours.TailProbability(l.time_ns), [&] {
        return who.name + " normally logs in " + prof->hours.UsualHours() + " and this is " + hhmm;
      });
    } else {
      // Inside the usual hours the hour says nothing; only the day may.
      const bool weekend = HourModel::IsWeekendTime(l.time_ns);
      add("day", weekend ? "weekend" : "weekday", prof->hours.DayTypeProbability(l.time_ns), [&] {
        return who.name + " rarely logs in on a " + (weekend ? "weekend" : "weekday") +
               " and this is one (" + hhmm + ")";
      });
    }
    if (!l.service.empty()) {
      add("service", l.service, prof->service.TailProbability(l.service), [&] {
        return prof->service.Find(l.service) == nullptr
                   ? "first login of " + who.name + " via " + l.service
                   : who.name + " rarely logs in via " + l.service;
      });
    }
  }
  // Rates: this event added to the short-term counters.
  auto r = DecayedRates(prof->st, prof->st_ns, l.time_ns);
  unsigned given = 0;  // the dimensions this login itself adds one to
  if (l.success) {
    r[0] += 1;
    given |= 1u << 0;
    // A login reached by a hop is counted as a hop, not as a change of the host the
    // identity starts from.
    if (!l.from_our_host && !prof->last_host.empty() && prof->last_host != l.host) {
      r[3] += 1;
      given |= 1u << 3;
    }
  } else {
    r[1] += 1;
    given |= 1u << 1;
  }
  const RateVector x = ToRates(r);
  const RateModel* model = &prof->rates;
  if (model->weight() < RateModel::kMinWeight) {  // judged against its kind
    if (const Profile* kind_peers = Find(KindPeerKey(prof->kind))) {
      model = &kind_peers->rates;
    }
  }
  if (model->weight() >= RateModel::kMinWeight && !OutOfOrder(*prof, l.time_ns)) {
    int d = 0;
    const double p = model->TailProbability(x, &d, given);
    add("rates", kRateNames[d], p, [&] {
      return std::string(kRateNames[d]) + ": " + Fixed(r[d], 0) + " for " + who.name +
             ", normally about " + Fixed(model->ExpectedCount(d), 1);
    });
  }
  FinishLogin(s, key, c.data(), n, warm);
  return s;
}

Score Baselines::ScoreHop(const Identity& who, std::string_view from_host, std::string_view to_host,
                          int64_t time_ns, int depth) const {
  Score s;
  ++scored_;
  const std::string key = who.Key();
  const Profile* prof = Find(key);
  if (prof == nullptr) return s;
  const Profile* peers = prof->peer.empty() ? nullptr : Find(prof->peer);
  const Profile* kind_peers = Find(KindPeerKey(prof->kind));
  const std::string edge = std::string(from_host) + ">" + std::string(to_host);
  std::vector<Contribution> c;
  // Movement at all: an identity whose sessions never went on to another host. The
  // probability of a first hop is estimated like a first value: 1 / (logins + 2).
  const double logins = prof->hours.total();
  if (prof->edge.count() == 0 && logins > 0) {
    c.push_back({key, "movement", "first hop", 1.0 / (logins + 2.0),
                 "first hop ever by " + who.name + ": none of " + std::to_string(prof->logins) +
                     " logins in " + Days(prof->first_ns, std::max(prof->last_ns, time_ns)) +
                     " went on to another host"});
  }
  // The edge A>B, against the identity's own edges and then its peers' (its host-access
  // group and its kind): a path its peers take is less surprising.
  double p = prof->edge.TailProbability(edge);
  bool peer_path = false;
  for (const Profile* g : {peers, kind_peers}) {
    if (g != nullptr && g->edge.Find(edge) != nullptr) {
      const double q = g->edge.TailProbability(edge);
      if (q > p) {
        p = q;
        peer_path = true;
      }
    }
  }
  size_t reached = 0;
  const std::string prefix = std::string(from_host) + ">";
  for (const CategoryEntry& e : prof->edge.entries()) {
    reached += e.value.view().substr(0, prefix.size()) == prefix ? 1 : 0;
  }
  if (prof->edge.count() > 0) {
    c.push_back({key, "edge", edge, p,
                 prof->edge.Find(edge) == nullptr
                     ? "first hop ever by " + who.name + " from " + std::string(from_host) +
                           " to " + std::string(to_host) + " (" + who.name + " had reached " +
                           std::to_string(reached) + " other hosts from " + std::string(from_host) +
                           " in " + std::to_string(prof->edge.count()) + " hops" +
                           (peer_path ? ", its peers go there" : "") + ")"
                     : who.name + " rarely hops from " + std::string(from_host) + " to " +
                           std::string(to_host)});
  }
  // Chain depth: how far from the entry session this hop is, against the depths of the
  // identity's hops (an admin goes bastion > server, never server > server).
  if (prof->depth.count() > 0 && depth > 0) {
    const std::string d = std::to_string(depth);
    const double p_depth = prof->depth.TailProbability(d);
    size_t deepest = 0;
    for (const CategoryEntry& e : prof->depth.entries()) {
      deepest = std::max<size_t>(deepest, std::strtoul(e.value.str().c_str(), nullptr, 10));
    }
    c.push_back({key, "depth", d, p_depth,
                 "hop " + d + " of a chain by " + who.name + ", whose chains went " +
                     std::to_string(deepest) + (deepest == 1 ? " hop" : " hops") +
                     " deep at most"});
  }
  // The host reached: never logged in to by this identity (nor usual for its peers)?
  double p_host = prof->host.TailProbability(to_host);
  if (p_host <= kNameableP && peers != nullptr && peers->host.Find(to_host) != nullptr) {
    p_host = std::max(p_host, peers->host.TailProbability(to_host));
  }
  c.push_back({key, "host", std::string(to_host), p_host, {}});
  if (p_host <= kNameableP) {
    c.back().sentence = prof->host.Find(to_host) == nullptr
                            ? "first login ever of " + who.name + " on " + std::string(to_host) +
                                  " (0 of " + std::to_string(prof->logins) + " logins)"
                            : who.name + " rarely logs in on " + std::string(to_host);
  }
  auto r = DecayedRates(prof->st, prof->st_ns, time_ns);
  r[2] += 1;
  const RateVector x = ToRates(r);
  if (prof->rates.weight() >= RateModel::kMinWeight && !OutOfOrder(*prof, time_ns)) {
    c.push_back({key, "rates", kRateNames[2], prof->rates.TailProbability(x, nullptr, 1u << 2),
                 "hop velocity: " + Fixed(r[2], 0) + " hops in the last hour by " + who.name +
                     ", normally about " + Fixed(prof->rates.ExpectedCount(2), 1)});
  }
  Finish(s, std::move(c),
         prof->logins >= options_.warmup_logins &&
             prof->last_ns - prof->first_ns >= options_.warmup_span_ns);
  return s;
}

Score Baselines::ScorePrivilege(const Identity& who, std::string_view host, int64_t time_ns) const {
  Score s;
  ++scored_;
  const KeyBuf kb(who.kind, who.name);
  const Profile* prof = Find(kb.view());
  if (prof == nullptr) return s;
  const bool warm = prof->logins >= options_.warmup_logins &&
                    prof->last_ns - prof->first_ns >= options_.warmup_span_ns;
  // Sessions that became root, of all sessions (decayed), smoothed: (k + 1) / (n + 2).
  const double sessions = std::max(prof->hours.total(), prof->priv.total());
  const double p = std::min(1.0, (prof->priv.total() + 1.0) / (sessions + 2.0));
  std::vector<Contribution> c;
  c.push_back({std::string(kb.view()), "privilege", "root", p,
               who.name + " became root on " + std::string(host) + " at " + HourMinute(time_ns) +
                   (prof->priv.count() == 0
                        ? ", never before in " + std::to_string(prof->logins) + " logins"
                        : ", " + std::to_string(prof->priv.count()) + " times before in " +
                              std::to_string(prof->logins) + " logins")});
  Finish(s, std::move(c), warm);
  return s;
}

namespace {
// Novelty of one activity value, against the identity's history and the host's (a program
// everyone runs on that host is not surprising for a newcomer).
double ActivityP(const Categorical& mine, const Categorical* hosts, std::string_view value) {
  double p = mine.TailProbability(value);
  // Only a value the others have seen makes it less surprising: a young history of theirs
  // must not hide the novelty of a value nobody has used.
  if (hosts != nullptr && hosts->Find(value) != nullptr) {
    p = std::max(p, hosts->TailProbability(value));
  }
  return p;
}
}  // namespace

Score Baselines::ScoreExec(const Identity& who, std::string_view host, std::string_view exe,
                           int64_t) const {
  Score s;
  ++scored_;
  const KeyBuf kb(who.kind, who.name);
  const Profile* prof = Find(kb.view());
  if (prof == nullptr || prof->exe.count() < kWarmExecs) return s;
  const CategoryEntry* seen = prof->exe.Find(exe);
  if (seen != nullptr && seen->count >= kSettledCount) return s;  // the common case, fast
  const Profile* h = Find(IdentityResolver::Host(host).Key());
  const double p = ActivityP(prof->exe, h ? &h->exe : nullptr, exe);
  std::vector<Contribution> c;
  c.push_back({std::string(kb.view()), "exe", std::string(exe), p,
               who.name + (seen ? " rarely runs " : " never ran ") + std::string(exe) +
                   " before (" + std::to_string(prof->exe.count()) + " programs run in " +
                   Days(prof->first_ns, prof->last_ns) + ")"});
  Finish(s, std::move(c), true);
  return s;
}

Score Baselines::ScoreFile(const Identity& who, std::string_view, std::string_view path,
                           int64_t) const {
  Score s;
  ++scored_;
  const KeyBuf kb(who.kind, who.name);
  const Profile* prof = Find(kb.view());
  if (prof == nullptr || prof->file.count() < kWarmFiles) return s;
  const CategoryEntry* seen = prof->file.Find(path);
  if (seen != nullptr && seen->count >= kSettledCount) return s;
  std::vector<Contribution> c;
  c.push_back(
      {std::string(kb.view()), "file", std::string(path), prof->file.TailProbability(path),
       who.name + (seen ? " rarely opens " : " never opened ") + std::string(path) + " before"});
  Finish(s, std::move(c), true);
  return s;
}

Score Baselines::ScoreConnect(const Identity& who, std::string_view, std::string_view addr,
                              uint32_t port, int64_t) const {
  Score s;
  ++scored_;
  const KeyBuf kb(who.kind, who.name);
  const Profile* prof = Find(kb.view());
  if (prof == nullptr || prof->dest.count() < kWarmDests) return s;
  const DestBuf db(addr, port);
  const std::string_view dest = db.view();
  const CategoryEntry* seen = prof->dest.Find(dest);
  if (seen != nullptr && seen->count >= kSettledCount) return s;
  std::vector<Contribution> c;
  c.push_back({std::string(kb.view()), "dest", std::string(dest), prof->dest.TailProbability(dest),
               who.name + (seen ? " rarely connects to " : " never connected to ") +
                   std::string(addr) + " port " + std::to_string(port) + " (" + std::string(dest) +
                   ") before"});
  Finish(s, std::move(c), true);
  return s;
}

// ---- observing --------------------------------------------------------------------------

namespace {
void BumpShortTerm(std::array<float, kRateDims>& st, int64_t& st_ns, int64_t t, int dim, float by) {
  if (t > st_ns) {
    const auto r = DecayedRates(st, st_ns, t);
    for (int i = 0; i < kRateDims; ++i) st[i] = static_cast<float>(r[i]);
    st_ns = t;
  }
  st[dim] += by;
}
}  // namespace

void Baselines::Enqueue(Pending p, std::string_view tag, std::string_view name,
                        std::string_view host, std::string_view a, std::string_view b) {
  if (p.prof == nullptr) p.prof = Find(KeyBuf(p.kind, name).view());
  pending_.Push(p, {tag, name, host, a, b});
  meta_dirty_ = true;
  // Beyond the bound the oldest is decided now (its session may still be raised later).
  while (pending_.size() > options_.max_pending) {
    const Queue::Entry& old = pending_.Front();
    if (old.rec.score < options_.no_learn_above) Learn(old);
    pending_.Pop();
  }
}

void Baselines::ObserveLogin(const LoginFacts& l, const Score& score, std::string_view tag) {
  const Identity who = Resolve(l.user, l.process);
  Profile* prof = GetOrCreate(who);
  if (prof == nullptr) return;
  auto now = DecayedRates(prof->st, prof->st_ns, l.time_ns);
  RateVector x;
  if (OutOfOrder(*prof, l.time_ns)) {
    // Older than what the short-term rates already count (imported history behind live
    // events): it says nothing of the rates now, and they nothing of it.
    x = kNoRates;
  } else if (l.success) {
    now[0] += 1;
    const bool moved = !l.from_our_host && !prof->last_host.empty() && prof->last_host != l.host;
    if (moved) now[3] += 1;
    x = ToRates(now);
    // An anomalous login (perhaps an attacker's) is kept out of the short-term rates, as
    // it is out of the learned model: the owner's next login is judged by the owner's own.
    if (score.value < options_.no_learn_above) {
      BumpShortTerm(prof->st, prof->st_ns, l.time_ns, 0, 1);
      if (moved) BumpShortTerm(prof->st, prof->st_ns, l.time_ns, 3, 1);
      if (!l.from_our_host) prof->last_host = l.host;
    }
  } else {
    x = ToRates(now);
    BumpShortTerm(prof->st, prof->st_ns, l.time_ns, 1, 1);
  }
  if (l.success) {
    prof->last_score = static_cast<float>(score.value);
    prof->last_reason = score.Sentence();
  }
  MarkDirty(prof);
  Pending p;
  p.what = l.success ? Pending::kLogin : Pending::kFailure;
  p.kind = who.kind;
  p.time_ns = l.time_ns;
  p.score = score.value;
  p.prof = prof;
  p.port = l.from_our_host ? 1 : 0;
  p.rates = x;
  Enqueue(p, tag, who.name, l.host, l.addr, l.service);
}

void Baselines::ObserveHop(const Identity& who, std::string_view from_host,
                           std::string_view to_host, int64_t time_ns, const Score& score,
                           std::string_view tag, int depth) {
  Profile* prof = GetOrCreate(who);
  if (prof == nullptr) return;
  if (!OutOfOrder(*prof, time_ns) && score.value < options_.no_learn_above) {
    BumpShortTerm(prof->st, prof->st_ns, time_ns, 2, 1);
  }
  MarkDirty(prof);
  Pending p;
  p.what = Pending::kHop;
  p.kind = who.kind;
  p.time_ns = time_ns;
  p.score = score.value;
  p.prof = prof;
  p.port = static_cast<uint32_t>(std::clamp(depth, 0, 64));
  Enqueue(p, tag, who.name, from_host, to_host);
}

void Baselines::ObservePrivilege(const Identity& who, std::string_view host, int64_t time_ns,
                                 const Score& score, std::string_view tag) {
  Pending p;
  p.what = Pending::kPrivilege;
  p.kind = who.kind;
  p.time_ns = time_ns;
  p.score = score.value;
  Enqueue(p, tag, who.name, host, "root");
}

void Baselines::LearnSettled(Profile& prof, Categorical Profile::*feature,
                             const CategoryEntry* seen, int64_t time_ns) {
  const int64_t hl = options_.half_life_ns;
  const bool was_warm = WarmProfile(prof);
  (prof.*feature).LearnFound(seen, 1, time_ns, hl);
  ++prof.observations;
  prof.last_ns = std::max(prof.last_ns, time_ns);
  if (!was_warm && WarmProfile(prof) && Counted(prof)) ++counted_warm_;
  MarkDirty(&prof);
  ++stats_.learned;
  // The host's programs were learned from this identity's first runs of this one (Learn):
  // which programs run on a host is known without touching the host's record at every
  // exec, which would cost a second record's cache misses on the busiest path.
}

void Baselines::ObserveExec(const Identity& who, std::string_view host, std::string_view exe,
                            int64_t time_ns, const Score& score, std::string_view tag) {
  Profile* prof = nullptr;
  {
    const KeyBuf kb(who.kind, who.name);
    prof = Find(kb.view());
    const CategoryEntry* seen = prof ? prof->exe.Find(exe) : nullptr;
    if (seen != nullptr && seen->count >= kSettledCount) {
      // Already ordinary: nothing to withhold.
      LearnSettled(*prof, &Profile::exe, seen, time_ns);
      return;
    }
  }
  Pending p;
  p.what = Pending::kExec;
  p.kind = who.kind;
  p.time_ns = time_ns;
  p.score = score.value;
  p.prof = prof;
  Enqueue(p, tag, who.name, host, exe);
}

void Baselines::ObserveFile(const Identity& who, std::string_view host, std::string_view path,
                            int64_t time_ns, const Score& score, std::string_view tag) {
  const KeyBuf kb(who.kind, who.name);
  Profile* prof = Find(kb.view());
  const CategoryEntry* seen = prof ? prof->file.Find(path) : nullptr;
  if (seen != nullptr && seen->count >= kSettledCount) {
    LearnSettled(*prof, &Profile::file, seen, time_ns);
    return;
  }
  Pending p;
  p.what = Pending::kFile;
  p.kind = who.kind;
  p.time_ns = time_ns;
  p.score = score.value;
  p.prof = prof;
  Enqueue(p, tag, who.name, host, path);
}

void Baselines::ObserveConnect(const Identity& who, std::string_view host, std::string_view addr,
                               uint32_t port, int64_t time_ns, const Score& score,
                               std::string_view tag) {
  const DestBuf db(addr, port);
  const std::string_view dest = db.view();
  const KeyBuf kb(who.kind, who.name);
  Profile* prof = Find(kb.view());
  const CategoryEntry* seen = prof ? prof->dest.Find(dest) : nullptr;
  if (seen != nullptr && seen->count >= kSettledCount) {
    LearnSettled(*prof, &Profile::dest, seen, time_ns);
    return;
  }
  Pending p;
  p.what = Pending::kConnect;
  p.kind = who.kind;
  p.time_ns = time_ns;
  p.score = score.value;
  p.prof = prof;
  p.port = port;
  Enqueue(p, tag, who.name, host, dest);
}

void Baselines::Commit(int64_t event_time_ns,
                       const std::function<bool(const std::string&)>& in_incident) {
  if (event_time_ns > watermark_ns_) {
    watermark_ns_ = event_time_ns;
    meta_dirty_ = true;
  }
  const int64_t watermark_ns = watermark_ns_;
  // Oldest first by event time: history imported behind newer events is learned as soon
  // as it is old enough, not after everything queued before it.
  while (!pending_.empty() &&
         pending_.Front().rec.time_ns <= watermark_ns - options_.learn_delay_ns) {
    const Queue::Entry& e = pending_.Front();
    const std::string_view tag = e.text(kTag);
    if (e.rec.score >= options_.no_learn_above) {
      ++stats_.withheld_anomalous;
    } else if (!tag.empty() && in_incident && in_incident(tag_buf_.assign(tag))) {
      ++stats_.withheld_incident;
    } else {
      Learn(e);
    }
    pending_.Pop();
    meta_dirty_ = true;
  }
}

bool Baselines::Spend(Profile& prof, int64_t time_ns, double weight) {
  const int32_t day = static_cast<int32_t>(time_ns / kNanosPerDay);
  if (day != prof.budget_day) {
    prof.budget_day = day;
    prof.budget_used = 0;
  }
  if (prof.budget_used + weight > options_.max_learn_per_day) return false;
  prof.budget_used = static_cast<float>(prof.budget_used + weight);
  return true;
}

void Baselines::Learn(const Queue::Entry& e) {
  const Pending& p = e.rec;
  const std::string_view name = e.text(kName), host_name = e.text(kHost), a = e.text(kA),
                         b = e.text(kB);
  Profile* prof = p.prof != nullptr ? p.prof : GetOrCreate(Identity{p.kind, std::string(name)});
  if (prof == nullptr) return;
  struct WarmCount {  // counts the identity once it turns warm, however Learn returns
    Baselines* b;
    Profile* prof;
    bool was;
    ~WarmCount() {
      if (!was && b->WarmProfile(*prof) && Counted(*prof)) ++b->counted_warm_;
    }
  } warm_count{this, prof, WarmProfile(*prof)};
  const int64_t t = p.time_ns;
  const int64_t hl = options_.half_life_ns;
  if (!Spend(*prof, t, 1.0)) {
    ++stats_.withheld_budget;
    return;
  }
  ++stats_.learned;
  ++prof->observations;
  if (prof->first_ns == 0 || t < prof->first_ns) prof->first_ns = t;
  prof->last_ns = std::max(prof->last_ns, t);
  const std::string_view key = prof->key.view();
  MarkDirty(prof);
  // Only what teaches the host's own features touches its record: logins, failures, hops
  // and first runs of programs. Files, destinations and escalations are the identity's
  // alone; counting them on the host would cost a second record's cache misses for a
  // counter.
  const bool teaches_host = p.what == Pending::kLogin || p.what == Pending::kFailure ||
                            p.what == Pending::kHop || p.what == Pending::kExec;
  Profile* host =
      host_name.empty() || !teaches_host ? nullptr : GetOrCreate(IdentityResolver::Host(host_name));
  if (host != nullptr) {
    MarkDirty(host);
    host->observations++;
    if (host->first_ns == 0 || t < host->first_ns) host->first_ns = t;
    host->last_ns = std::max(host->last_ns, t);
  }
  switch (p.what) {
    case Pending::kLogin: {
      ++prof->logins;
      const bool from_our_host = p.port == 1;
      if (!from_our_host && !a.empty()) {
        const std::string net = NetworkOf(a);
        prof->addr.Learn(a, 1, t, hl, kCapAddr);
        prof->net.Learn(net, 1, t, hl, kCapNet);
        if (host != nullptr) host->net.Learn(net, 1, t, hl, kCapNet);
      }
      prof->host.Learn(host_name, 1, t, hl, kCapHost);
      prof->hours.Learn(t, 1, hl);
      if (!b.empty()) prof->service.Learn(b, 1, t, hl, kCapService);
      if (p.rates[0] >= 0) prof->rates.Learn(p.rates, 1, t, hl);
      if (host != nullptr) {
        ++host->logins;
        host->users.Learn(key, 1, t, hl, kCapUsers);
        host->hours.Learn(t, 1, hl);
      }
      // Peer groups: the identity's kind, and its MinHash group of host-access sets.
      const std::string& kind_key = KindPeerKey(prof->kind);
      if (Profile* kp = GetOrCreatePeer(kind_key, prof->kind)) {
        if (p.rates[0] >= 0) kp->rates.Learn(p.rates, 1, t, hl);
        kp->host.Learn(host_name, 1, t, hl, kCapHost);
        ++kp->logins;
        MarkDirty(kp);
      }
      prof->peer = PeerKeyOf(*prof);
      if (Profile* gp = GetOrCreatePeer(prof->peer, prof->kind)) {
        gp->host.Learn(host_name, 1, t, hl, kCapHost);
        gp->users.Learn(key, 1, t, hl, kCapUsers);
        ++gp->logins;
        MarkDirty(gp);
      }
      break;
    }
    case Pending::kFailure:
      ++prof->failures;
      if (host != nullptr) ++host->failures;
      break;
    case Pending::kHop: {
      std::string edge;
      edge.reserve(host_name.size() + 1 + a.size());
      edge.append(host_name).append(">").append(a);
      prof->edge.Learn(edge, 1, t, hl, kCapEdge);
      if (p.port > 0) prof->depth.Learn(std::to_string(p.port), 1, t, hl, kCapDepth);
      if (host != nullptr) host->edge.Learn(a, 1, t, hl, kCapEdge);
      // The peers' edges: the identity's host-access group and its kind.
      const std::string* groups[] = {&prof->peer, &KindPeerKey(prof->kind)};
      for (const std::string* g : groups) {
        if (Profile* gp = GetOrCreatePeer(*g, prof->kind)) {
          gp->edge.Learn(edge, 1, t, hl, kCapPeerEdge);
          MarkDirty(gp);
        }
      }
      break;
    }
    case Pending::kPrivilege: prof->priv.Learn(a, 1, t, hl, kCapService); break;
    case Pending::kExec:
      prof->exe.Learn(a, 1, t, hl, kCapExe);
      if (host != nullptr) host->exe.Learn(a, 1, t, hl, kCapExe);
      break;
    case Pending::kFile: prof->file.Learn(a, 1, t, hl, kCapFile); break;
    case Pending::kConnect: prof->dest.Learn(a, 1, t, hl, kCapDest); break;
  }
}

// ---- feedback ---------------------------------------------------------------------------

void Baselines::RecordIncident(const std::string& incident_id,
                               const std::vector<Contribution>& facts) {
  if (facts.empty()) return;
  auto [it, inserted] = incident_facts_.try_emplace(incident_id);
  if (inserted) incident_order_.push_back(incident_id);
  for (const Contribution& f : facts) {
    bool have = false;
    for (const Contribution& g : it->second) {
      have = have || (g.identity == f.identity && g.feature == f.feature && g.value == f.value);
    }
    if (!have && it->second.size() < 16) it->second.push_back(f);
  }
  while (incident_order_.size() > options_.max_incident_facts) {
    incident_facts_.erase(incident_order_.front());
    incident_order_.pop_front();
  }
  meta_dirty_ = true;
}

Result<std::string> Baselines::Feedback(const std::string& incident_id, Verdict verdict) {
  auto it = incident_facts_.find(incident_id);
  if (it == incident_facts_.end()) {
    return Status::NotFound("no baseline facts recorded for incident " + incident_id);
  }
  std::vector<std::string> done;
  for (const Contribution& f : it->second) {
    Profile* prof = Find(f.identity);
    if (prof == nullptr) continue;
    const int64_t t = std::max(prof->last_ns, int64_t{1});
    const int64_t hl = options_.half_life_ns;
    auto fold = [&](Categorical& c, size_t cap) {
      c.Learn(f.value, std::max(kFeedbackWeight, kFeedbackShare * c.total()), t, hl, cap);
    };
    if (f.feature == "network") {
      fold(prof->net, kCapNet);
    } else if (f.feature == "address") {
      fold(prof->addr, kCapAddr);
    } else if (f.feature == "host") {
      fold(prof->host, kCapHost);
    } else if (f.feature == "service") {
      fold(prof->service, kCapService);
    } else if (f.feature == "edge") {
      fold(prof->edge, kCapEdge);
    } else if (f.feature == "depth") {
      fold(prof->depth, kCapDepth);
    } else if (f.feature == "privilege") {
      fold(prof->priv, kCapService);
    } else if (f.feature == "exe") {
      fold(prof->exe, kCapExe);
    } else if (f.feature == "file") {
      fold(prof->file, kCapFile);
    } else if (f.feature == "dest") {
      fold(prof->dest, kCapDest);
    } else if (f.feature == "hour") {
      const int hour = std::atoi(f.value.c_str());
      const int64_t at = (t / kNanosPerDay) * kNanosPerDay + hour * kHourNs;
      prof->hours.Learn(at, std::max(kFeedbackWeight, kFeedbackShare * prof->hours.total()), hl);
    }
    MarkDirty(prof);
    if (verdict == Verdict::kExpected) {
      suppressed_.insert(f.identity + "|" + f.feature + "|" + f.value);
    }
    done.push_back(f.feature + " " + f.value + " of " + f.identity);
  }
  meta_dirty_ = true;
  std::string out =
      verdict == Verdict::kExpected ? "folded back and suppressed: " : "folded back: ";
  for (size_t i = 0; i < done.size(); ++i) out += (i ? ", " : "") + done[i];
  return out;
}

// ---- queries ----------------------------------------------------------------------------

Result<Description> Baselines::Describe(std::string_view identity) const {
  std::vector<std::string> keys;
  IdentityKind kind;
  const size_t colon = identity.find(':');
  if (colon != std::string_view::npos && ParseKind(identity.substr(0, colon), &kind)) {
    keys.push_back(Identity{kind, std::string(identity.substr(colon + 1))}.Key());
  } else {
    for (IdentityKind k : {IdentityKind::kHuman, IdentityKind::kService, IdentityKind::kAgent,
                           IdentityKind::kHost}) {
      keys.push_back(Identity{k, std::string(identity)}.Key());
    }
  }
  const Profile* prof = nullptr;
  std::string key;
  for (const std::string& k : keys) {
    if ((prof = Find(k)) != nullptr) {
      key = k;
      break;
    }
  }
  if (prof == nullptr) return Status::NotFound("no baseline for " + std::string(identity));
  Description d;
  d.identity = key;
  d.kind = std::string(KindName(prof->kind));
  d.observations = prof->observations;
  d.first_seen_ns = prof->first_ns;
  d.last_seen_ns = prof->last_ns;
  d.warm = prof->logins >= options_.warmup_logins &&
           prof->last_ns - prof->first_ns >= options_.warmup_span_ns;
  d.usual_hours = prof->hours.UsualHours();
  d.peer_group = prof->peer;
  auto add = [&](const char* name, const Categorical& c) {
    std::vector<CategoryEntry> e(c.entries().begin(), c.entries().end());
    std::sort(e.begin(), e.end(),
              [](const CategoryEntry& a, const CategoryEntry& b) { return a.weight > b.weight; });
    for (const CategoryEntry& x : e) {
      d.features.push_back({std::string(name) + ":" + x.value.str(), x.weight, x.count});
    }
  };
  add("network", prof->net);
  add("address", prof->addr);
  add("host", prof->host);
  add("service", prof->service);
  add("edge", prof->edge);
  add("depth", prof->depth);
  add("privilege", prof->priv);
  add("exe", prof->exe);
  add("file", prof->file);
  add("dest", prof->dest);
  add("user", prof->users);
  const json hours = prof->hours.ToJson();
  for (int h = 0; h < 24; ++h) {
    const double w = hours["h"][h].get<double>();
    if (w > 0) {
      char name[16];
      std::snprintf(name, sizeof name, "hour:%02d", h);
      d.features.push_back({name, w, 0});
    }
  }
  if (prof->logins + prof->failures > 0) {
    d.features.push_back({"failure_rate",
                          static_cast<double>(prof->failures) / (prof->logins + prof->failures),
                          prof->failures});
  }
  for (int i = 0; i < kRateDims; ++i) {
    if (prof->rates.weight() > 0) {
      d.features.push_back({std::string("rate:") + kRateNames[i], std::expm1(prof->rates.mean()[i]),
                            static_cast<uint64_t>(prof->rates.weight())});
    }
  }
  d.last_score = prof->last_score;
  if (!prof->last_reason.empty()) d.last_reasons.push_back(prof->last_reason);
  const std::string prefix = key + "|";
  for (auto it = suppressed_.lower_bound(prefix);
       it != suppressed_.end() && it->compare(0, prefix.size(), prefix) == 0; ++it) {
    d.suppressed.push_back(it->substr(prefix.size()));
  }
  return d;
}

BaselineStats Baselines::stats() const {
  BaselineStats s = stats_;
  s.identities = profiles_.size();
  s.pending = pending_.size();
  s.scored = scored_;
  s.with_baseline = counted_identities_;
  s.warming = counted_identities_ - std::min(counted_warm_, counted_identities_);
  return s;
}

size_t Baselines::MemoryBytes() const {
  size_t b = profiles_.MemoryBytes();
  profiles_.ForEach([&b](const Profile& p) {
    b += p.key.HeapBytes();
    if (p.name.size() > 15) b += p.name.capacity() + 1;
    if (p.peer.size() > 15) b += p.peer.capacity() + 1;
    if (p.last_reason.size() > 15) b += p.last_reason.capacity() + 1;
    for (const Categorical* c : {&p.addr, &p.net, &p.host, &p.service, &p.edge, &p.exe, &p.file,
                                 &p.dest, &p.users, &p.depth, &p.priv}) {
      b += c->MemoryBytes();
    }
  });
  return b;
}

// ---- persistence ------------------------------------------------------------------------

namespace {
constexpr std::string_view kIdentityPrefix = "id/";
constexpr std::string_view kPendingKey = "meta/pending";
constexpr std::string_view kFeedbackKey = "meta/feedback";

std::string Pack(const json& j) {
  const std::vector<uint8_t> v = json::to_msgpack(j);
  return std::string(v.begin(), v.end());
}

json Unpack(std::string_view bytes) {
  return json::from_msgpack(bytes.begin(), bytes.end(), /*strict=*/true,
                            /*allow_exceptions=*/false);
}

json ContributionJson(const Contribution& c) {
  return {c.identity, c.feature, c.value, c.p, c.sentence};
}

bool ContributionFrom(const json& j, Contribution* c) {
  if (!j.is_array() || j.size() != 5 || !j[0].is_string() || !j[1].is_string() ||
      !j[2].is_string() || !j[3].is_number() || !j[4].is_string()) {
    return false;
  }
  *c = {j[0].get<std::string>(), j[1].get<std::string>(), j[2].get<std::string>(),
        j[3].get<double>(), j[4].get<std::string>()};
  return true;
}

bool IsInt(const json& j, const char* k) { return j.contains(k) && j[k].is_number_integer(); }
bool IsStr(const json& j, const char* k) { return j.contains(k) && j[k].is_string(); }
}  // namespace

std::vector<std::pair<std::string, std::string>> Baselines::TakeDirty() {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(dirty_.size() + 2);
  std::vector<Profile*> profiles = std::move(dirty_);
  dirty_.clear();
  std::sort(profiles.begin(), profiles.end(),
            [](const Profile* a, const Profile* b) { return a->key < b->key; });
  // A profile read back by Load after it was listed may be listed twice.
  profiles.erase(std::unique(profiles.begin(), profiles.end()), profiles.end());
  for (Profile* p : profiles) {
    std::string record_key = std::string(kIdentityPrefix) + p->key.str();
    p->dirty = false;
    json j = {{"k", static_cast<int>(p->kind)},
              {"n", p->name},
              {"f", p->first_ns},
              {"l", p->last_ns},
              {"lg", p->logins},
              {"fl", p->failures},
              {"ob", p->observations},
              {"h", p->hours.ToJson()},
              {"r", p->rates.ToJson()},
              {"st", p->st},
              {"sn", p->st_ns},
              {"lh", p->last_host},
              {"bd", p->budget_day},
              {"bu", p->budget_used},
              {"p", p->peer},
              {"ls", p->last_score},
              {"lr", p->last_reason}};
    json c = json::object();
    const std::pair<const char*, const Categorical*> cats[] = {
        {"addr", &p->addr},   {"net", &p->net},     {"host", &p->host}, {"svc", &p->service},
        {"edge", &p->edge},   {"exe", &p->exe},     {"file", &p->file}, {"dest", &p->dest},
        {"users", &p->users}, {"depth", &p->depth}, {"priv", &p->priv}};
    for (const auto& [name, cat] : cats) {
      if (cat->count() > 0) c[name] = cat->ToJson();
    }
    j["c"] = std::move(c);
    out.emplace_back(std::move(record_key), Pack(j));
  }
  dirty_.clear();
  if (meta_dirty_) {
    json pending = json::array();
    std::vector<const Queue::Entry*> queued;
    queued.reserve(pending_.size());
    pending_.ForEach([&queued](const Queue::Entry& e) { queued.push_back(&e); });
    std::stable_sort(queued.begin(), queued.end(),
                     [](const Queue::Entry* x, const Queue::Entry* y) {
                       return x->rec.time_ns < y->rec.time_ns;
                     });
    for (const Queue::Entry* e : queued) {
      const Pending& p = e->rec;
      pending.push_back({static_cast<int>(p.what), p.time_ns, p.score, e->text(kTag),
                         static_cast<int>(p.kind), e->text(kName), e->text(kHost), e->text(kA),
                         e->text(kB), p.port, p.rates});
    }
    out.emplace_back(std::string(kPendingKey),
                     Pack({{"watermark_ns", watermark_ns_}, {"pending", pending}}));
    json facts = json::object();
    for (const std::string& id : incident_order_) {
      json list = json::array();
      for (const Contribution& c : incident_facts_.at(id)) list.push_back(ContributionJson(c));
      facts[id] = std::move(list);
    }
    json order = incident_order_;
    out.emplace_back(std::string(kFeedbackKey),
                     Pack({{"suppressed", suppressed_}, {"facts", facts}, {"order", order}}));
    meta_dirty_ = false;
  }
  return out;
}

Status Baselines::Load(std::string_view key, std::string_view value) {
  const json j = Unpack(value);
  const std::string where = "baseline record " + std::string(key);
  if (j.is_discarded()) return Status::Corruption(where + " is not MessagePack");
  if (key == kPendingKey) {
    if (!j.is_object() || !IsInt(j, "watermark_ns") || !j.contains("pending") ||
        !j["pending"].is_array()) {
      return Status::Corruption(where + " is not {watermark_ns, pending}");
    }
    struct Loaded {
      Pending p;
      std::array<std::string, kTexts> texts;
    };
    std::vector<Loaded> loaded;
    for (const json& e : j["pending"]) {
      if (!e.is_array() || e.size() != 11 || !e[0].is_number_unsigned() || e[0].get<int>() > 6 ||
          !e[1].is_number_integer() || e[1].get<int64_t>() < 0 || !e[2].is_number() ||
          !e[3].is_string() || !e[4].is_number_unsigned() || e[4].get<int>() > 3 ||
          !e[5].is_string() || !e[6].is_string() || !e[7].is_string() || !e[8].is_string() ||
          !e[9].is_number_unsigned() || !e[10].is_array() || e[10].size() != kRateDims) {
        return Status::Corruption(where + ": a pending observation is malformed");
      }
      Loaded l;
      Pending& p = l.p;
      p.what = static_cast<Pending::What>(e[0].get<int>());
      p.time_ns = e[1].get<int64_t>();
      p.score = e[2].get<double>();
      p.kind = static_cast<IdentityKind>(e[4].get<int>());
      p.port = e[9].get<uint32_t>();
      l.texts[kTag] = e[3].get<std::string>();
      l.texts[kName] = e[5].get<std::string>();
      l.texts[kHost] = e[6].get<std::string>();
      l.texts[kA] = e[7].get<std::string>();
      l.texts[kB] = e[8].get<std::string>();
      for (int i = 0; i < kRateDims; ++i) {
        if (!e[10][i].is_number()) return Status::Corruption(where + ": a rate is not a number");
        const double x = e[10][i].get<double>();
        if (!IsPendingRate(x)) return Status::Corruption(where + ": a rate is out of range");
        p.rates[i] = static_cast<float>(x);
      }
      loaded.push_back(std::move(l));
    }
    // Every record was valid: the queue is replaced. Profiles are found again as each is
    // learned (Learn looks an identity up when it has no profile pointer).
    pending_.clear();
    std::stable_sort(loaded.begin(), loaded.end(),
                     [](const Loaded& x, const Loaded& y) { return x.p.time_ns < y.p.time_ns; });
    for (const Loaded& l : loaded) {
      pending_.Push(l.p, {l.texts[kTag], l.texts[kName], l.texts[kHost], l.texts[kA], l.texts[kB]});
    }
    watermark_ns_ = j["watermark_ns"].get<int64_t>();
    return Status::Ok();
  }
  if (key == kFeedbackKey) {
    if (!j.is_object() || !j.contains("suppressed") || !j["suppressed"].is_array() ||
        !j.contains("facts") || !j["facts"].is_object() || !j.contains("order") ||
        !j["order"].is_array()) {
      return Status::Corruption(where + " lacks suppressed, facts or order");
    }
    std::set<std::string> suppressed;
    for (const json& s : j["suppressed"]) {
      if (!s.is_string()) return Status::Corruption(where + ": a suppression is not a string");
      suppressed.insert(s.get<std::string>());
    }
    std::map<std::string, std::vector<Contribution>> facts;
    std::deque<std::string> order;
    for (const json& id : j["order"]) {
      if (!id.is_string() || !j["facts"].contains(id.get<std::string>()) ||
          !j["facts"][id.get<std::string>()].is_array()) {
        return Status::Corruption(where + ": an incident in order has no facts");
      }
      std::vector<Contribution>& list = facts[id.get<std::string>()];
      for (const json& c : j["facts"][id.get<std::string>()]) {
        Contribution x;
        if (!ContributionFrom(c, &x)) return Status::Corruption(where + ": a fact is malformed");
        list.push_back(std::move(x));
      }
      order.push_back(id.get<std::string>());
    }
    suppressed_ = std::move(suppressed);
    incident_facts_ = std::move(facts);
    incident_order_ = std::move(order);
    return Status::Ok();
  }
  if (key.substr(0, kIdentityPrefix.size()) != kIdentityPrefix) {
    return Status::Corruption(where + ": unknown key");
  }
  if (!j.is_object() || !j.contains("k") || !j["k"].is_number_unsigned() || j["k"].get<int>() > 3 ||
      !IsStr(j, "n") || !IsInt(j, "f") || !IsInt(j, "l") || !j.contains("lg") ||
      !j["lg"].is_number_unsigned() || !j.contains("fl") || !j["fl"].is_number_unsigned() ||
      !j.contains("ob") || !j["ob"].is_number_unsigned() || !j.contains("h") || !j.contains("r") ||
      !j.contains("st") || !j["st"].is_array() || j["st"].size() != kRateDims || !IsInt(j, "sn") ||
      !IsStr(j, "lh") || !IsInt(j, "bd") || !j.contains("bu") || !j["bu"].is_number() ||
      !IsStr(j, "p") || !j.contains("ls") || !j["ls"].is_number() || !IsStr(j, "lr") ||
      !j.contains("c") || !j["c"].is_object()) {
    return Status::Corruption(where + ": missing or mistyped fields");
  }
  Profile p;
  p.kind = static_cast<IdentityKind>(j["k"].get<int>());
  p.name = j["n"].get<std::string>();
  p.first_ns = j["f"].get<int64_t>();
  p.last_ns = j["l"].get<int64_t>();
  p.logins = static_cast<uint32_t>(std::min<uint64_t>(j["lg"].get<uint64_t>(), UINT32_MAX));
  p.failures = static_cast<uint32_t>(std::min<uint64_t>(j["fl"].get<uint64_t>(), UINT32_MAX));
  p.observations = j["ob"].get<uint64_t>();
  TL_RETURN_IF_ERROR(p.hours.FromJson(j["h"]).WithContext(where));
  TL_RETURN_IF_ERROR(p.rates.FromJson(j["r"]).WithContext(where));
  for (int i = 0; i < kRateDims; ++i) {
    if (!j["st"][i].is_number()) return Status::Corruption(where + ": a rate is not a number");
    const double x = j["st"][i].get<double>();
    if (!IsShortTermCount(x)) return Status::Corruption(where + ": a rate is out of range");
    p.st[i] = static_cast<float>(x);
  }
  p.st_ns = j["sn"].get<int64_t>();
  p.last_host = j["lh"].get<std::string>();
  p.budget_day = static_cast<int32_t>(j["bd"].get<int64_t>());
  p.budget_used = static_cast<float>(Settle(j["bu"].get<double>()));
  p.peer = j["p"].get<std::string>();
  p.last_score = static_cast<float>(Settle(j["ls"].get<double>()));
  p.last_reason = j["lr"].get<std::string>();
  const std::pair<const char*, Categorical*> cats[] = {
      {"addr", &p.addr},   {"net", &p.net},     {"host", &p.host}, {"svc", &p.service},
      {"edge", &p.edge},   {"exe", &p.exe},     {"file", &p.file}, {"dest", &p.dest},
      {"users", &p.users}, {"depth", &p.depth}, {"priv", &p.priv}};
  for (const auto& [name, cat] : cats) {
    if (j["c"].contains(name)) TL_RETURN_IF_ERROR(cat->FromJson(j["c"][name]).WithContext(where));
  }
  Profile& slot = *profiles_.Emplace(key.substr(kIdentityPrefix.size())).first;
  p.key = slot.key;
  if (!slot.name.empty()) {  // a record read twice replaces the first
    if (Counted(slot)) --counted_identities_;
    if (Counted(slot) && WarmProfile(slot)) --counted_warm_;
  }
  if (Counted(p)) ++counted_identities_;
  if (Counted(p) && WarmProfile(p)) ++counted_warm_;
  slot = std::move(p);
  return Status::Ok();
}

}  // namespace tripline::baseline
