// PendingQueue: observations waiting to be learned, oldest event time first (baselines.h:
// learning waits learn_delay_ns of event time, so that a session later found in an
// incident teaches nothing).
//
// At a fleet's event rate the queue holds up to a million observations, and for most
// events one is queued and one learned. An ordered map of records with their own strings
// costs a tree node and up to five strings allocated per observation, freed half an hour
// later in another order, and a walk of the tree to insert. This queue keeps fixed-size
// records in a deque sorted by event time and their text in an arena of 256 KiB chunks
// mapped from the kernel, each unmapped (or kept as the one spare) once every record
// written into it has left: no allocation per observation.
//
// Records arriving in event-time order (one stream's usual case) are appended; one at most
// kInsertReach places before the end is inserted at its place; an older one (history
// imported behind live events, a sensor far behind the others) goes to an ordered map, and
// Front() takes the older of the two heads. Records with equal times leave in the order
// they came within each of the two.
//
// `Rec` is copyable and has an `int64_t time_ns`. Not thread-safe.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <new>
#include <string_view>
#include <utility>

namespace tripline::baseline {

template <typename Rec, size_t kParts>
class PendingQueue {
  struct Chunk;

 public:
  static constexpr size_t kChunkBytes = 256 * 1024;
  static constexpr size_t kInsertReach = 64;

  struct Entry {
    Rec rec;
    std::string_view text(size_t i) const {
      size_t off = 0;
      for (size_t k = 0; k < i; ++k) off += len[k];
      return std::string_view(data + off, len[i]);
    }

   private:
    friend class PendingQueue;
    Chunk* chunk = nullptr;
    const char* data = nullptr;
    std::array<uint32_t, kParts> len{};
  };

  PendingQueue() = default;
  PendingQueue(const PendingQueue&) = delete;
  PendingQueue& operator=(const PendingQueue&) = delete;
  ~PendingQueue() { clear(); }

  void Push(const Rec& rec, const std::array<std::string_view, kParts>& parts) {
    Entry e;
    e.rec = rec;
    size_t total = 0;
    for (size_t i = 0; i < kParts; ++i) {
      e.len[i] = static_cast<uint32_t>(parts[i].size());
      total += parts[i].size();
    }
    char* out = Allocate(total, &e.chunk);
    e.data = out;
    for (const std::string_view& p : parts) {
      if (!p.empty()) std::memcpy(out, p.data(), p.size());
      out += p.size();
    }
    const int64_t t = rec.time_ns;
    auto pos = ordered_.end();
    size_t steps = 0;
    while (pos != ordered_.begin() && std::prev(pos)->rec.time_ns > t && steps <= kInsertReach) {
      --pos;
      ++steps;
    }
    if (steps > kInsertReach) {
      late_.emplace(t, e);
    } else if (pos == ordered_.end()) {
      ordered_.push_back(e);
    } else {
      ordered_.insert(pos, e);
    }
  }

  bool empty() const { return ordered_.empty() && late_.empty(); }
  size_t size() const { return ordered_.size() + late_.size(); }

  // The oldest record; the queue must not be empty.
  Entry& Front() { return FromLate() ? late_.begin()->second : ordered_.front(); }

  void Pop() {
    if (FromLate()) {
      Release(late_.begin()->second.chunk);
      late_.erase(late_.begin());
    } else {
      Release(ordered_.front().chunk);
      ordered_.pop_front();
    }
  }

  void clear() {
    while (!empty()) Pop();
    Free(current_);
    Free(spare_);
    current_ = spare_ = nullptr;
  }

  // Every record, in no particular order.
  template <typename F>
  void ForEach(F&& f) const {
    for (const Entry& e : ordered_) f(e);
    for (const auto& [t, e] : late_) f(e);
  }

  // Bytes held: records and text chunks.
  size_t MemoryBytes() const {
    return ordered_.size() * sizeof(Entry) + late_.size() * (sizeof(Entry) + 48) +
           chunks_ * MappedBytes(kChunkBytes);
  }

 private:
  struct Chunk {
    size_t capacity = 0;
    size_t used = 0;
    size_t live = 0;  // records whose text is here
    char* bytes() { return reinterpret_cast<char*>(this + 1); }
  };

  bool FromLate() const {
    if (late_.empty()) return false;
    if (ordered_.empty()) return true;
    return late_.begin()->first < ordered_.front().rec.time_ns;
  }

  char* Allocate(size_t n, Chunk** where) {
    if (current_ == nullptr || current_->capacity - current_->used < n) {
      if (current_ != nullptr && current_->live == 0) {
        current_->used = 0;  // every record in it left: start it over
      }
      if (current_ == nullptr || current_->capacity - current_->used < n) {
        Chunk* old = current_;
        current_ = nullptr;
        if (old != nullptr && old->live == 0) Retire(old);
        if (n <= kChunkBytes && spare_ != nullptr) {
          current_ = spare_;
          spare_ = nullptr;
        } else {
          current_ = New(std::max(n, kChunkBytes));
        }
      }
    }
    char* out = current_->bytes() + current_->used;
    current_->used += n;
    ++current_->live;
    *where = current_;
    return out;
  }

  void Release(Chunk* c) {
    if (--c->live == 0 && c != current_) Retire(c);
  }

  // A chunk nothing uses any more: kept as the spare if it is a standard one and there is
  // none, else freed.
  void Retire(Chunk* c) {
    if (spare_ == nullptr && c->capacity == kChunkBytes) {
      c->used = 0;
      spare_ = c;
    } else {
      Free(c);
    }
  }

  // Chunks are mapped, not taken from the heap: a chunk freed into the heap would be split
  // by the small allocations that live for good (the baselines' values), and the next
  // chunk would have to extend the heap again.
  static size_t MappedBytes(size_t capacity) {
    const size_t page = 4096;
    return (sizeof(Chunk) + capacity + page - 1) & ~(page - 1);
  }

  Chunk* New(size_t capacity) {
    void* mem = ::mmap(nullptr, MappedBytes(capacity), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::bad_alloc();
    Chunk* c = new (mem) Chunk;
    c->capacity = capacity;
    ++chunks_;
    return c;
  }

  void Free(Chunk* c) {
    if (c == nullptr) return;
    const size_t bytes = MappedBytes(c->capacity);
    c->~Chunk();
    ::munmap(static_cast<void*>(c), bytes);
    --chunks_;
  }

  std::deque<Entry> ordered_;
  std::multimap<int64_t, Entry> late_;
  Chunk* current_ = nullptr;
  Chunk* spare_ = nullptr;
  size_t chunks_ = 0;
};

}  // namespace tripline::baseline
