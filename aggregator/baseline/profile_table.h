// ProfileTable: the identity table of the baselines, keyed by "kind:name".
//
// Every event looks one or more profiles up, and at a million identities nearly every
// lookup misses the CPU caches. A node-based hash map (std::unordered_map) costs four
// misses per lookup: its bucket, the node before the first of the bucket, the cached hash
// at the end of the (kilobyte-sized) node and the key at its start. This table keeps an
// open-addressing index of (hash, pointer) pairs, 16 bytes each, probed linearly: one miss
// for the index, then the entry itself, whose key (its first member) is on the same line
// as the fields every score reads first.
//
// Entries never move and are never erased (a baseline is forgotten by decay, not by
// removal), so pointers to them stay valid for the table's life.
//
// `T` must have a `std::string key` member set only by the table.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tripline::baseline {

template <typename T>
class ProfileTable {
 public:
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
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    const uint64_t h = Hash(key);
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.item == nullptr) break;
      if (s.hash == h && s.item->key == key) return {s.item, false};
    }
    T& item = items_.emplace_back();
    item.key.assign(key);
    slots_[i] = Slot{h, &item};
    ++size_;
    return {&item, true};
  }

  size_t size() const { return size_; }
  // In the order they were made.
  const std::deque<T>& items() const { return items_; }
  // Bytes of the index and of the entries' storage (not what the entries own).
  size_t MemoryBytes() const {
    return slots_.capacity() * sizeof(Slot) + items_.size() * sizeof(T);
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    T* item = nullptr;
  };

  static uint64_t Hash(std::string_view key) {
    // std::hash (64-bit murmur) then a final mix, so that the low bits the index uses
    // depend on every byte.
    uint64_t h = std::hash<std::string_view>{}(key);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
  }

  void Grow() {
    const size_t capacity = slots_.empty() ? 64 : slots_.size() * 2;
    std::vector<Slot> slots(capacity);
    const size_t mask = capacity - 1;
    for (const Slot& s : slots_) {
      if (s.item == nullptr) continue;
      size_t i = s.hash & mask;
      while (slots[i].item != nullptr) i = (i + 1) & mask;
      slots[i] = s;
    }
    slots_ = std::move(slots);
    mask_ = mask;
  }

  std::deque<T> items_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace tripline::baseline
