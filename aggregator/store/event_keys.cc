#include "aggregator/store/event_keys.h"

#include <algorithm>

namespace tripline::event_keys {

void AppendBe64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 7; i >= 0; --i) {
    b[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(b, 8);
}

void AppendBe32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

uint64_t ReadBe64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

uint32_t ReadBe32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string Suffix(int64_t bucket_ns, std::string_view sensor_id, uint64_t first_seq) {
  std::string s;
  s.reserve(17 + sensor_id.size());
  // Times are validated positive, so the unsigned cast keeps their order.
  AppendBe64(&s, static_cast<uint64_t>(bucket_ns));
  s.append(sensor_id);
  s.push_back('\0');
  AppendBe64(&s, first_seq);
  return s;
}

std::string NamePrefix(char tag, std::string_view name) {
  std::string s;
  s.reserve(3 + name.size());
  s.push_back(tag);
  s.push_back(static_cast<char>((name.size() >> 8) & 0xff));
  s.push_back(static_cast<char>(name.size() & 0xff));
  s.append(name);
  return s;
}

std::string KindPrefix(EventKind kind) {
  return std::string{kKindTag, static_cast<char>(static_cast<uint8_t>(kind))};
}

std::string AllPrefix() { return std::string(1, kAllTag); }

std::string BatchPrefix(std::string_view sensor_id) { return NamePrefix(kBatchTag, sensor_id); }

std::string BatchKey(std::string_view sensor_id, uint64_t first_seq) {
  std::string key = BatchPrefix(sensor_id);
  AppendBe64(&key, first_seq);
  return key;
}

namespace {
constexpr size_t kBatchHeader = 12;  // be64 newest | be32 count
}  // namespace

std::string EncodeBatchValue(int64_t newest_ns, const std::string_view* events, size_t n) {
  size_t payload = 0;
  for (size_t i = 0; i < n; ++i) payload += events[i].size();
  std::string out;
  out.reserve(kBatchHeader + 4 * n + payload);
  AppendBe64(&out, static_cast<uint64_t>(newest_ns));
  AppendBe32(&out, static_cast<uint32_t>(n));
  uint32_t end = 0;
  for (size_t i = 0; i < n; ++i) {
    end += static_cast<uint32_t>(events[i].size());
    AppendBe32(&out, end);
  }
  for (size_t i = 0; i < n; ++i) out.append(events[i]);
  return out;
}

std::optional<BatchValue> BatchValue::Parse(std::string_view value) {
  if (value.size() < kBatchHeader) return std::nullopt;
  BatchValue v;
  v.newest_ns_ = static_cast<int64_t>(ReadBe64(value));
  v.count_ = ReadBe32(value.substr(8));
  if ((value.size() - kBatchHeader) / 4 < v.count_) return std::nullopt;
  v.offsets_ = value.substr(kBatchHeader, size_t{v.count_} * 4);
  v.payload_ = value.substr(kBatchHeader + v.offsets_.size());
  uint32_t previous = 0;
  for (uint32_t i = 0; i < v.count_; ++i) {
    const uint32_t end = ReadBe32(v.offsets_.substr(size_t{i} * 4));
    if (end < previous) return std::nullopt;
    previous = end;
  }
  if (previous != v.payload_.size()) return std::nullopt;
  return v;
}

std::string_view BatchValue::event(uint32_t i) const {
  const uint32_t begin = i == 0 ? 0 : ReadBe32(offsets_.substr(size_t{i - 1} * 4));
  const uint32_t end = ReadBe32(offsets_.substr(size_t{i} * 4));
  return payload_.substr(begin, end - begin);
}

void AppendPostingEntry(std::string* out, uint32_t offset, int64_t time_ns) {
  AppendBe32(out, offset);
  AppendBe64(out, static_cast<uint64_t>(time_ns));
}

std::optional<SuffixParts> ParseSuffix(std::string_view s) {
  if (s.size() < 17) return std::nullopt;
  if (s[s.size() - 9] != '\0') return std::nullopt;
  SuffixParts p;
  p.time_ns = static_cast<int64_t>(ReadBe64(s));
  p.sensor_id = s.substr(8, s.size() - 17);
  if (p.sensor_id.find('\0') != std::string_view::npos) return std::nullopt;
  p.seq = ReadBe64(s.substr(s.size() - 8));
  return p;
}

std::optional<SplitKey> Split(std::string_view key) {
  if (key.empty()) return std::nullopt;
  size_t prefix_len = 0;
  switch (key[0]) {
    case kAllTag: prefix_len = 1; break;
    case kKindTag: prefix_len = 2; break;
    case kHostTag:
    case kUserTag: {
      if (key.size() < 3) return std::nullopt;
      const size_t len = (static_cast<uint8_t>(key[1]) << 8) | static_cast<uint8_t>(key[2]);
      prefix_len = 3 + len;
      break;
    }
    default: return std::nullopt;
  }
  if (key.size() < prefix_len + 17) return std::nullopt;
  return SplitKey{key.substr(0, prefix_len), key.substr(prefix_len)};
}

std::optional<int64_t> RecordTime(std::string_view key, std::string_view value) {
  if (!key.empty() && key[0] == kBatchTag) {
    // Only the header is needed; the offsets are checked when the batch is read.
    if (value.size() < kBatchHeader) return std::nullopt;
    return static_cast<int64_t>(ReadBe64(value));
  }
  const auto split = Split(key);
  if (!split) return std::nullopt;
  return static_cast<int64_t>(ReadBe64(split->suffix)) + kBucketNs - 1;
}

void IndexedUsers(const Event& event, std::string_view out[3], size_t* n) {
  *n = 0;
  const auto add = [&](std::string_view name) {
    if (name.empty() || name.size() > kMaxIndexedName) return;
    for (size_t i = 0; i < *n; ++i) {
      if (out[i] == name) return;
    }
    out[(*n)++] = name;
  };
  if (const auto* login = event.As<LoginEvent>()) add(login->user);
  add(event.process.user);
  add(event.process.login_user);
}

}  // namespace tripline::event_keys
