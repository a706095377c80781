#include "common/clock.h"

#include <time.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>

namespace tripline {
namespace {

int64_t ReadClock(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

bool ParseDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

int64_t SystemClock::NowNs() const { return ReadClock(CLOCK_REALTIME); }
int64_t SystemClock::MonotonicNs() const { return ReadClock(CLOCK_MONOTONIC); }
SystemClock& SystemClock::Get() {
  static SystemClock clock;
  return clock;
}

std::string FormatTimeNs(int64_t ns) {
  int64_t secs = ns / kNanosPerSecond;
  int64_t rem = ns % kNanosPerSecond;
  if (rem < 0) {
    rem += kNanosPerSecond;
    secs -= 1;
  }
  time_t t = static_cast<time_t>(secs);
  tm parts{};
  gmtime_r(&t, &parts);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                static_cast<int>(rem / kNanosPerMilli));
  return buf;
}

Result<int64_t> ParseTimeNs(std::string_view s) {
  const auto bad = [&] {
    return Status::InvalidArgument("not an RFC 3339 time: '" + std::string(s) + "'");
  };
  int y, mo, d, h, mi, se;
  if (s.size() < 20 || !ParseDigits(s, 0, 4, &y) || s[4] != '-' || !ParseDigits(s, 5, 2, &mo) ||
      s[7] != '-' || !ParseDigits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !ParseDigits(s, 11, 2, &h) || s[13] != ':' || !ParseDigits(s, 14, 2, &mi) || s[16] != ':' ||
      !ParseDigits(s, 17, 2, &se)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return bad();
  size_t pos = 19;
  int64_t frac = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = kNanosPerSecond / 10;
    size_t digits = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      frac += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
      ++digits;
    }
    if (digits == 0) return bad();
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!ParseDigits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !ParseDigits(s, pos + 4, 2, &om)) {
      return bad();
    }
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != s.size()) return bad();
  const int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
  // Nanoseconds since 1970 in an int64 reach from 1677 to 2262.
  if (secs >= INT64_MAX / kNanosPerSecond || secs <= INT64_MIN / kNanosPerSecond) {
    return Status::InvalidArgument("time out of range (1678..2261): '" + std::string(s) + "'");
  }
  return secs * kNanosPerSecond + frac;
}

Result<int64_t> ParseDurationNs(std::string_view s) {
  const auto bad = [&] {
    return Status::InvalidArgument("not a duration (use e.g. 500ms, 30s, 10m, 2h, 7d): '" +
                                   std::string(s) + "'");
  };
  if (s.empty()) return bad();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n < 0) return bad();
  std::string_view unit(end, static_cast<size_t>(s.data() + s.size() - end));
  int64_t mult;
  if (unit.empty() || unit == "s")
    mult = kNanosPerSecond;
  else if (unit == "ms")
    mult = kNanosPerMilli;
  else if (unit == "us")
    mult = kNanosPerMicro;
  else if (unit == "m" || unit == "min")
    mult = 60 * kNanosPerSecond;
  else if (unit == "h")
    mult = 3600 * kNanosPerSecond;
  else if (unit == "d")
    mult = 86400 * kNanosPerSecond;
  else
    return bad();
  if (n > INT64_MAX / mult) return bad();
  return n * mult;
}

std::string FormatDurationNs(int64_t ns) {
  if (ns < 0) ns = -ns;
  char buf[64];
  if (ns < kNanosPerSecond) {
    std::snprintf(buf, sizeof(buf), "%lld ms", static_cast<long long>(ns / kNanosPerMilli));
  } else if (ns < 60 * kNanosPerSecond) {
    std::snprintf(buf, sizeof(buf), "%lld s", static_cast<long long>(ns / kNanosPerSecond));
  } else if (ns < 3600 * kNanosPerSecond) {
    const long long s = ns / kNanosPerSecond;
    std::snprintf(buf, sizeof(buf), "%lld min %lld s", s / 60, s % 60);
  } else {
    const long long m = ns / (60 * kNanosPerSecond);
    std::snprintf(buf, sizeof(buf), "%lld h %lld min", m / 60, m % 60);
  }
  return buf;
}

}  // namespace tripline
