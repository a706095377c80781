// ProfileTable: the identity table of the baselines, keyed by "kind:name".
//
// Every event looks one or more profiles up, and at a million identities nearly every
// lookup misses the CPU caches. A node-based hash map (std::unordered_map) costs four
// misses per lookup: its bucket, the node before the first of the bucket, the cached hash
// at the end of the (kilobyte-sized) node and the key at its start. This table keeps an
// open-addressing index of (hash, pointer) pairs, 16 bytes each, probed linearly: one miss
// for the index, then the entry itself, whose key (its first member, a TableKey holding up
// to 24 bytes in place) is on the same line as the fields every score reads first.
//
// The entries live in chunks of 2 MiB aligned to 2 MiB, as does the index once it is that
// large, and both are offered to the kernel for transparent huge pages
// (madvise(MADV_HUGEPAGE), honoured where /sys/kernel/mm/transparent_hugepage/enabled
// says `madvise` or `always`): a lookup among a million profiles then costs no page-table
// walk of its own, where with 4 KiB pages nearly each one misses the TLB as well.
//
// Entries never move and are never erased (a baseline is forgotten by decay, not by
// removal), so pointers to them stay valid for the table's life.
//
// `T` must have a `TableKey key` member set only by the table.
//
// Not thread-safe.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregator/baseline/short_text.h"

namespace tripline::baseline {

// A key of the table: "kind:name", most of them kept in place (short_text.h).
using TableKey = ShortText;

namespace table_detail {

inline constexpr size_t kHugePage = size_t{2} << 20;
// Allocations from this size on are rounded up to whole huge pages: the largest chunk of
// entries fills most of one.
inline constexpr size_t kHugeFrom = kHugePage / 2;

// `bytes` (a multiple of kHugePage) of zeroed memory aligned to kHugePage and offered to
// the kernel for transparent huge pages. Throws std::bad_alloc when none is left.
inline void* MapHuge(size_t bytes) {
  const size_t span = bytes + kHugePage;
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + span;
  if (end > aligned + bytes)
    ::munmap(reinterpret_cast<void*>(aligned + bytes), end - aligned - bytes);
  void* p = reinterpret_cast<void*>(aligned);
  // Advice only: where huge pages are off or none is free the kernel uses small ones.
  (void)::madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

// Memory for `bytes` aligned to `align`: huge pages from kHugeFrom on, the heap below.
inline void* Allocate(size_t bytes, size_t align) {
  if (bytes >= kHugeFrom) return MapHuge((bytes + kHugePage - 1) & ~(kHugePage - 1));
  return ::operator new (bytes, std::align_val_t{align});
}
inline void Free(void* p, size_t bytes, size_t align) {
  if (p == nullptr) return;
  if (bytes >= kHugeFrom) {
    ::munmap(p, (bytes + kHugePage - 1) & ~(kHugePage - 1));
  } else {
    ::operator delete (p, std::align_val_t{align});
  }
}

}  // namespace table_detail

template <typename T>
class ProfileTable {
 public:
  ProfileTable() = default;
  ProfileTable(const ProfileTable&) = delete;
  ProfileTable& operator=(const ProfileTable&) = delete;
  ~ProfileTable() {
    size_t left = size_;
    for (const Chunk& c : chunks_) {
      const size_t n = std::min(left, c.capacity);
      for (size_t i = 0; i < n; ++i) c.items[i].~T();
      left -= n;
      table_detail::Free(c.items, c.capacity * sizeof(T), alignof(T));
    }
    table_detail::Free(slots_, capacity_ * sizeof(Slot), alignof(Slot));
  }

  const T* Find(std::string_view key) const {
    if (size_ == 0) return nullptr;
    const uint64_t h = Hash(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.item == nullptr) return nullptr;
      if (s.hash == h && s.item->key == key) return s.item;
    }
  }
  T* Find(std::string_view key) {
    return const_cast<T*>(static_cast<const ProfileTable&>(*this).Find(key));
  }

  // The entry for `key`, made (default-constructed, with its key set) when absent; the
  // second member says whether it was made.
  std::pair<T*, bool> Emplace(std::string_view key) {
    if ((size_ + 1) * 2 > capacity_) Grow();
    const uint64_t h = Hash(key);
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.item == nullptr) break;
      if (s.hash == h && s.item->key == key) return {s.item, false};
    }
    T* item = Construct();
    item->key.assign(key);
    slots_[i] = Slot{h, item};
    ++size_;
    return {item, true};
  }

  size_t size() const { return size_; }
  // Calls `f(const T&)` for every entry, in the order they were made.
  template <typename F>
  void ForEach(F&& f) const {
    size_t left = size_;
    for (const Chunk& c : chunks_) {
      const size_t n = std::min(left, c.capacity);
      for (size_t i = 0; i < n; ++i) f(static_cast<const T&>(c.items[i]));
      left -= n;
    }
  }
  // Bytes of the index and of the entries' storage (not what the entries own).
  size_t MemoryBytes() const {
    size_t b = capacity_ * sizeof(Slot);
    for (const Chunk& c : chunks_) b += c.capacity * sizeof(T);
    return b;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    T* item = nullptr;
  };
  struct Chunk {
    T* items = nullptr;
    size_t capacity = 0;
  };
  // Chunks double from 64 entries up to what fills one huge page (at least 64).
  static constexpr size_t kFirstChunk = 64;
  static constexpr size_t kLargestChunk =
      std::max<size_t>(kFirstChunk, table_detail::kHugePage / sizeof(T));

  static uint64_t Hash(std::string_view key) {
    // std::hash (64-bit murmur) then a final mix, so that the low bits the index uses
    // depend on every byte.
    uint64_t h = std::hash<std::string_view>{}(key);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
  }

  T* Construct() {
    if (chunks_.empty() || used_in_last_ == chunks_.back().capacity) {
      const size_t capacity =
          chunks_.empty() ? kFirstChunk : std::min(kLargestChunk, chunks_.back().capacity * 2);
      chunks_.reserve(chunks_.size() + 1);
      void* p = table_detail::Allocate(capacity * sizeof(T), alignof(T));
      chunks_.push_back(Chunk{static_cast<T*>(p), capacity});
      used_in_last_ = 0;
    }
    Chunk& c = chunks_.back();
    T* item = new (&c.items[used_in_last_]) T();
    ++used_in_last_;
    return item;
  }

  void Grow() {
    const size_t capacity = capacity_ == 0 ? 64 : capacity_ * 2;
    auto* slots =
        static_cast<Slot*>(table_detail::Allocate(capacity * sizeof(Slot), alignof(Slot)));
    std::uninitialized_fill_n(slots, capacity, Slot{});
    const size_t mask = capacity - 1;
    for (size_t j = 0; j < capacity_; ++j) {
      const Slot& s = slots_[j];
      if (s.item == nullptr) continue;
      size_t i = s.hash & mask;
      while (slots[i].item != nullptr) i = (i + 1) & mask;
      slots[i] = s;
    }
    table_detail::Free(slots_, capacity_ * sizeof(Slot), alignof(Slot));
    slots_ = slots;
    capacity_ = capacity;
    mask_ = mask;
  }

  std::vector<Chunk> chunks_;
  size_t used_in_last_ = 0;
  Slot* slots_ = nullptr;
  size_t capacity_ = 0;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace tripline::baseline
