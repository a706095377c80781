// Fuzzes the two text rules of common/text_escape.h with arbitrary bytes: the storage
// escape must give valid UTF-8 that unescapes to the input, and leave valid UTF-8 alone;
// the display escape must give valid UTF-8 with no control, C1 or bidi override in it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/text_escape.h"

namespace {

bool HasDisplayHazard(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x20 || b == 0x7f) return true;
    if (b == 0xc2 && i + 1 < s.size() && static_cast<uint8_t>(s[i + 1]) <= 0x9f) return true;
    if (b == 0xe2 && i + 2 < s.size()) {
      const auto b1 = static_cast<uint8_t>(s[i + 1]), b2 = static_cast<uint8_t>(s[i + 2]);
      if (b1 == 0x80 && b2 >= 0xaa && b2 <= 0xae) return true;
      if (b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string stored = input;
  const bool changed = tripline::EscapeInvalidUtf8(&stored);
  if (changed == tripline::IsValidUtf8(input)) std::abort();
  if (!tripline::IsValidUtf8(stored)) std::abort();
  if (changed ? tripline::UnescapeInvalidUtf8(stored) != input : stored != input) std::abort();

  const std::string shown = tripline::EscapeForDisplay(input);
  if (!tripline::IsValidUtf8(shown) || HasDisplayHazard(shown)) std::abort();
  return 0;
}
