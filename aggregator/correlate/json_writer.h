// JsonWriter: appends compact JSON text to a string as it goes, without building a document.
// Internal to tripline_correlate (state_codec.cc writes the correlator state with it).
//
// The text is byte for byte what nlohmann::json::dump(-1, ' ', false,
// error_handler_t::replace) writes for the same values, so a reader sees no difference:
// - strings: '"' and '\' escaped, \b \f \n \r \t for those controls, \u00xx (lower-case hex)
//   for the other bytes below 0x20; everything else, DEL and well-formed UTF-8 included,
//   is copied as is;
// - invalid UTF-8 (sensors report raw bytes: paths, argv) never fails: each ill-formed
//   sequence is replaced by U+FFFD, the way nlohmann's decoder does it. A byte that cannot
//   start a sequence is one U+FFFD; a valid start followed by a byte that cannot continue
//   it is one U+FFFD for the bytes before that byte, which is then read again as the start
//   of the next; a sequence cut short by the end of the string is one U+FFFD;
// - integers in decimal, booleans as true/false.
// Keys are written as given, unescaped: callers pass plain ASCII names. Objects are not
// sorted here: to match nlohmann (whose objects are std::map) callers write keys in byte
// order.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace tripline::correlate {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(*out) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  // The name of the next member, plain ASCII (not escaped); its value follows.
  JsonWriter& Key(std::string_view name) {
    Separate();
    out_.push_back('"');
    out_.append(name);
    out_.append("\":", 2);
    comma_ = false;
    return *this;
  }

  void String(std::string_view s) {
    Separate();
    AppendString(s);
    comma_ = true;
  }
  void Uint(uint64_t v) {
    Separate();
    AppendNumber(v);
    comma_ = true;
  }
  void Int(int64_t v) {
    Separate();
    AppendNumber(v);
    comma_ = true;
  }
  void Bool(bool v) {
    Separate();
    if (v) {
      out_.append("true", 4);
    } else {
      out_.append("false", 5);
    }
    comma_ = true;
  }

 private:
  void Separate() {
    if (comma_) out_.push_back(',');
  }
  void Open(char c) {
    Separate();
    out_.push_back(c);
    comma_ = false;
  }
  void Close(char c) {
    out_.push_back(c);
    comma_ = true;
  }

  template <typename T>
  void AppendNumber(T v) {
    char buf[24];
    const char* end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
    out_.append(buf, static_cast<size_t>(end - buf));
  }

  void AppendString(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    out_.push_back('"');
    size_t copied = 0;  // s[0, copied) is in out_; runs that need no escaping go in one append
    size_t i = 0;
    while (i < n) {
      const unsigned char c = p[i];
      if (c >= 0x80) {
        bool valid = false;
        const size_t len = Utf8Sequence(p + i, n - i, &valid);
        if (!valid) {
          out_.append(s.data() + copied, i - copied);
          out_.append("\xEF\xBF\xBD", 3);  // U+FFFD
          copied = i + len;
        }
        i += len;
      } else if (c < 0x20 || c == '"' || c == '\\') {
        out_.append(s.data() + copied, i - copied);
        AppendEscaped(c);
        copied = ++i;
      } else {
        ++i;
      }
    }
    out_.append(s.data() + copied, n - copied);
    out_.push_back('"');
  }

  void AppendEscaped(unsigned char c) {
    char short_form = 0;
    switch (c) {
      case '"': short_form = '"'; break;
      case '\\': short_form = '\\'; break;
      case '\b': short_form = 'b'; break;
      case '\f': short_form = 'f'; break;
      case '\n': short_form = 'n'; break;
      case '\r': short_form = 'r'; break;
      case '\t': short_form = 't'; break;
      default: break;
    }
    if (short_form != 0) {
      const char esc[2] = {'\\', short_form};
      out_.append(esc, 2);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out_.append(esc, 6);
    }
  }

  // The UTF-8 sequence at p (p[0] >= 0x80, n >= 1 bytes left): whether it is well-formed
  // (Unicode table 3-7: the second byte's range depends on the first, the others are
  // 0x80..0xBF) and how many bytes it takes. An ill-formed one takes the bytes before the
  // one that broke it (at least the first), or the rest when the string ends inside it.
  static size_t Utf8Sequence(const unsigned char* p, size_t n, bool* valid) {
    const unsigned char c = p[0];
    size_t length = 2;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0xC2 || c > 0xF4) {
      *valid = false;
      return 1;
    }
    if (c >= 0xF0) {
      length = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else if (c >= 0xE0) {
      length = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    }
    for (size_t k = 1; k < length; ++k) {
      if (k == n || p[k] < lo || p[k] > hi) {
        *valid = false;
        return k;
      }
      lo = 0x80;
      hi = 0xBF;
    }
    *valid = true;
    return length;
  }

  std::string& out_;
  bool comma_ = false;  // a value was written at this level: the next needs a separator
};

}  // namespace tripline::correlate
