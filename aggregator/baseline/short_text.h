// ShortText: a string of up to kInline bytes kept in place, longer ones on the heap. 32
// bytes, like std::string, whose in-place limit is 15.
//
// The baselines compare texts on their busiest paths: identity keys ("human:user123456"),
// and the values of each feature ("/usr/bin/python3", "192.0.2.0/24:443",
// "/home/u/.ssh/id_ed25519"). Many are just past std::string's 15 bytes, where each
// comparison would chase a heap pointer, a cache miss at a million identities. Here they
// sit beside the rest of their record.
#pragma once

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>

namespace tripline::baseline {

class ShortText {
 public:
  static constexpr size_t kInline = 24;

  ShortText() = default;
  explicit ShortText(std::string_view s) { assign(s); }
  ShortText(const ShortText& o) { assign(o.view()); }
  ShortText(ShortText&& o) noexcept { Take(o); }
  ShortText& operator=(const ShortText& o) {
    if (this != &o) assign(o.view());
    return *this;
  }
  ShortText& operator=(ShortText&& o) noexcept {
    if (this != &o) {
      Release();
      Take(o);
    }
    return *this;
  }
  ~ShortText() { Release(); }

  void assign(std::string_view s) {
    if (s.size() > kInline) {
      char* heap = new char[s.size()];
      std::memcpy(heap, s.data(), s.size());
      Release();
      heap_ = heap;
    } else {
      Release();
      if (!s.empty()) std::memcpy(inline_, s.data(), s.size());
    }
    size_ = s.size();
  }
  std::string_view view() const {
    return {size_ > kInline ? heap_ : inline_, static_cast<size_t>(size_)};
  }
  operator std::string_view() const { return view(); }  // NOLINT: reads as its text
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes held beyond the object itself.
  size_t HeapBytes() const { return size_ > kInline ? size_ : 0; }
  std::string str() const { return std::string(view()); }

  friend bool operator==(const ShortText& a, std::string_view b) { return a.view() == b; }
  friend bool operator<(const ShortText& a, const ShortText& b) { return a.view() < b.view(); }
  friend std::ostream& operator<<(std::ostream& os, const ShortText& k) { return os << k.view(); }

 private:
  void Release() {
    if (size_ > kInline) delete[] heap_;
    size_ = 0;
  }
  // Moves `o`'s text here (this holds none) and leaves `o` empty.
  void Take(ShortText& o) {
    std::memcpy(inline_, o.inline_, sizeof inline_);  // the heap pointer or the bytes
    size_ = o.size_;
    o.size_ = 0;
  }
  union {
    char inline_[kInline];
    char* heap_;
  };
  uint64_t size_ = 0;
};
static_assert(sizeof(ShortText) == 32);

}  // namespace tripline::baseline
