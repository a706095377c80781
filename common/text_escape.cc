#include "common/text_escape.h"

#include <cstdint>
#include <cstring>

namespace tripline {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the well-formed UTF-8 sequence at text[i] (1..4), with its code point in
// `*cp`; 0 when the byte at `i` does not start one.
size_t SequenceAt(std::string_view text, size_t i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  uint32_t min;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, min = 0x80, *cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, min = 0x800, *cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, min = 0x10000, *cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (text.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const uint8_t b = byte(i + k);
    if ((b & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (b & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
  return len;
}

void AppendByteEscape(uint8_t b, std::string* out) {
  out->append("\\x");
  out->push_back(kHex[b >> 4]);
  out->push_back(kHex[b & 0xf]);
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Length of the run of ASCII bytes at text[i..], eight at a time: most text is ASCII, and
// this is on the path of every event and every log line.
size_t AsciiRun(std::string_view text, size_t i) {
  const size_t start = i;
  while (i + 8 <= text.size()) {
    uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    if ((w & kHighs) != 0) break;
    i += 8;
  }
  while (i < text.size() && static_cast<uint8_t>(text[i]) < 0x80) ++i;
  return i - start;
}

// Length of the run of printable ASCII (0x20..0x7e) at text[i..], eight bytes at a time.
size_t PrintableAsciiRun(std::string_view text, size_t i) {
  const size_t start = i;
  while (i + 8 <= text.size()) {
    uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    const uint64_t below_space = (w - kOnes * 0x20) & ~w;  // a byte < 0x20 (or >= 0x80)
    const uint64_t x = w ^ (kOnes * 0x7f);
    const uint64_t del = (x - kOnes) & ~x;  // a byte == 0x7f
    if (((w | below_space | del) & kHighs) != 0) break;
    i += 8;
  }
  while (i < text.size()) {
    const auto b = static_cast<uint8_t>(text[i]);
    if (b < 0x20 || b >= 0x7f) break;
    ++i;
  }
  return i - start;
}

bool NeedsDisplayEscape(uint32_t cp) {
  return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  uint32_t cp;
  for (size_t i = 0; i < text.size();) {
    i += AsciiRun(text, i);
    if (i == text.size()) break;
    const size_t n = SequenceAt(text, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool EscapeInvalidUtf8(std::string* text) {
  if (IsValidUtf8(*text)) return false;
  const std::string_view in = *text;
  std::string out;
  out.reserve(in.size() + 16);
  uint32_t cp;
  for (size_t i = 0; i < in.size();) {
    const size_t n = SequenceAt(in, i, &cp);
    if (n == 0) {
      AppendByteEscape(static_cast<uint8_t>(in[i]), &out);
      ++i;
    } else if (in[i] == '\\') {
      out.append("\\\\");
      ++i;
    } else {
      out.append(in.substr(i, n));
      i += n;
    }
  }
  *text = std::move(out);
  return true;
}

std::string UnescapeInvalidUtf8(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] != '\\' || i + 1 >= escaped.size()) {
      out.push_back(escaped[i]);
    } else if (escaped[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (escaped[i + 1] == 'x' && i + 3 < escaped.size() && HexValue(escaped[i + 2]) >= 0 &&
               HexValue(escaped[i + 3]) >= 0) {
      out.push_back(static_cast<char>(HexValue(escaped[i + 2]) * 16 + HexValue(escaped[i + 3])));
      i += 3;
    } else {
      out.push_back(escaped[i]);  // not something EscapeInvalidUtf8 writes: kept as is
    }
  }
  return out;
}

std::string EscapeForDisplay(std::string_view text) {
  std::string out;
  uint32_t cp;
  size_t i = 0;
  // Fast path: nothing to escape, one copy.
  for (; i < text.size();) {
    i += PrintableAsciiRun(text, i);
    if (i == text.size()) break;
    const size_t n = SequenceAt(text, i, &cp);
    if (n == 0 || NeedsDisplayEscape(cp)) break;
    i += n;
  }
  if (i == text.size()) return std::string(text);
  out.reserve(text.size() + 16);
  out.append(text.substr(0, i));
  while (i < text.size()) {
    const size_t n = SequenceAt(text, i, &cp);
    if (n == 0) {
      AppendByteEscape(static_cast<uint8_t>(text[i]), &out);
      ++i;
      continue;
    }
    if (!NeedsDisplayEscape(cp)) {
      out.append(text.substr(i, n));
    } else if (cp == '\n') {
      out.append("\\n");
    } else if (cp == '\r') {
      out.append("\\r");
    } else if (cp == '\t') {
      out.append("\\t");
    } else if (cp < 0x80) {
      AppendByteEscape(static_cast<uint8_t>(cp), &out);
    } else {
      out.append("\\u{");
      for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(cp >> shift) & 0xf]);
      out.push_back('}');
    }
    i += n;
  }
  return out;
}

}  // namespace tripline
