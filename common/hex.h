// Lower-case hex text of bytes, decoded: what store page tokens and bucket keys carry.
#pragma once

#include <string>
#include <string_view>

namespace tripline {

// Decodes `in` (lower-case hex digits, an even count) into `out`; false, with `out`
// unspecified, for anything else.
inline bool HexDecode(std::string_view in, std::string* out) {
  if (in.size() % 2 != 0) return false;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  out->reserve(in.size() / 2);
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = nibble(in[i]), lo = nibble(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

}  // namespace tripline
