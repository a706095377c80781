#include "sensor/delivery/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "common/log.h"
#include "sensor/delivery/atomic_file.h"

namespace tripline::delivery {
namespace {

constexpr char kStateFile[] = "state";
// Read() fetches this much of a segment per pread(2): large enough to amortise the system
// call over a whole batch of typical (100-300 byte) events.
constexpr uint64_t kReadChunk = 256 * 1024;

Lane LaneOf(EventKind kind) { return IsPriorityKind(kind) ? Lane::kPriority : Lane::kBulk; }

Status PreadAll(int fd, uint64_t offset, size_t n, std::string* out, const std::string& path) {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "pread " + path);
    }
    if (r == 0) return Status::IoError("unexpected end of " + path);
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, uint64_t offset, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t r =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

struct Spool::Segment {
  Lane lane = Lane::kPriority;
  std::string path;
  int fd = -1;  // set at creation, closed by the destructor only (Sync may hold a copy)
  uint64_t size = 0;
  uint64_t first_seq = 0;  // 0 while empty
  uint64_t last_seq = 0;
  uint64_t records = 0;
  std::array<uint64_t, kNumKinds> by_kind{};
  // Corrupt stretches found by Open(): start offset -> end offset. Read() jumps them.
  std::map<uint64_t, uint64_t> holes;
  bool sealed = false;  // no more appends: a previous run's segment, or full
  bool dirty = false;   // appended to since the last Sync()

  ~Segment() {
    if (fd >= 0) ::close(fd);
  }
};

Spool::Spool(const SpoolOptions& options)
    : options_(options), clock_(options.clock ? *options.clock : SystemClock::Get()) {
  segment_bytes_ = options.segment_bytes;
  if (segment_bytes_ == 0) {
    segment_bytes_ = std::clamp<uint64_t>(options.max_bytes / 32, 4096, uint64_t{8} << 20);
  }
}

Spool::~Spool() {
  Status s = Close();
  if (!s.ok()) {
    TL_LOG(ERROR) << "spool " << options_.dir << ": close: " << s.ToString();
  }
}

Result<std::unique_ptr<Spool>> Spool::Open(const SpoolOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("spool directory not set");
  if (options.max_bytes < 4 * kSegmentHeaderSize) {
    return Status::InvalidArgument("spool max_bytes too small");
  }
  TL_RETURN_IF_ERROR(PrepareOwnDirectory(options.dir));
  std::unique_ptr<Spool> spool(new Spool(options));
  TL_RETURN_IF_ERROR(spool->Recover().WithContext("spool " + options.dir));
  return spool;
}

Status Spool::Recover() {
  std::lock_guard<std::mutex> lock(mu_);
  SpoolState state;
  Result<std::string> raw = ReadOwnFile(options_.dir + "/" + kStateFile);
  if (raw.ok()) {
    Result<SpoolState> decoded = DecodeState(AsBytes(*raw));
    if (decoded.ok()) {
      state = *decoded;
      recovery_.state_found = true;
      recovery_.clean_shutdown = state.clean;
    } else {
      // Without the state the acked seq and the lease are unknown: resend everything
      // still spooled, and number after what the segments hold (and after whatever the
      // aggregator reports in its first ack; see DeliveryClient).
      TL_LOG(ERROR) << "spool " << options_.dir << ": " << decoded.status().ToString()
                    << "; resending everything spooled";
    }
  } else if (!raw.status().IsNotFound()) {
    return raw.status();
  }
  acked_seq_ = state.acked_seq;

  struct Found {
    Lane lane;
    uint64_t name_seq;
    std::string path;
  };
  std::vector<Found> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    Lane lane;
    uint64_t seq;
    if (ParseSegmentName(name, &lane, &seq)) found.push_back({lane, seq, entry.path().string()});
  }
  if (ec) return Status::IoError("list " + options_.dir + ": " + ec.message());
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.name_seq < b.name_seq; });

  bool changed = false;
  uint64_t max_seq = 0;
  for (const Found& f : found) {
    TL_ASSIGN_OR_RETURN(std::string bytes, ReadOwnFile(f.path));
    uint64_t acked_here = 0;
    std::map<uint64_t, uint64_t> holes;
    uint64_t expected = kSegmentHeaderSize;
    SegmentScan scan = ScanSegment(AsBytes(bytes), [&](const RecordView& r) {
      if (r.seq <= acked_seq_) ++acked_here;
      if (r.offset != expected) holes[expected] = r.offset;
      expected = r.offset + r.size;
    });
    recovery_.corrupt_regions += scan.corrupt_regions;
    recovery_.corrupt_bytes += scan.corrupt_bytes;
    recovery_.torn_tail_bytes += scan.torn_tail_bytes;
    if (!scan.header_ok || scan.lane != f.lane) {
      TL_LOG(ERROR) << "spool: " << f.path << " has no valid header; deleting it (" << bytes.size()
                    << " bytes)";
      ++recovery_.bad_segments;
      if (scan.header_ok) recovery_.corrupt_bytes += bytes.size();
      ::unlink(f.path.c_str());
      changed = true;
      continue;
    }
    if (scan.corrupt_regions > 0) {
      TL_LOG(ERROR) << "spool: " << f.path << ": skipped " << scan.corrupt_regions
                    << " corrupt stretches (" << scan.corrupt_bytes << " bytes)";
    }
    if (scan.torn_tail_bytes > 0) {
      TL_LOG(WARNING) << "spool: " << f.path << ": truncating a torn tail of "
                      << scan.torn_tail_bytes << " bytes";
      if (::truncate(f.path.c_str(), static_cast<off_t>(scan.valid_end)) != 0) {
        return Status::FromErrno(errno, "truncate " + f.path);
      }
      changed = true;
    }
    max_seq = std::max(max_seq, scan.last_seq);
    recovery_.acked_records_dropped += acked_here;
    if (scan.records == 0 || scan.last_seq <= acked_seq_) {
      ::unlink(f.path.c_str());
      changed = true;
      continue;
    }
    auto seg = std::make_shared<Segment>();
    seg->lane = f.lane;
    seg->path = f.path;
    seg->fd = ::open(f.path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (seg->fd < 0) return Status::FromErrno(errno, "open " + f.path);
    seg->size = scan.valid_end;
    seg->first_seq = scan.first_seq;
    seg->last_seq = scan.last_seq;
    seg->records = scan.records;
    seg->by_kind = scan.records_by_kind;
    seg->holes = std::move(holes);
    seg->sealed = true;  // never append to a previous run's file: only new tails can tear
    lanes_[static_cast<size_t>(f.lane)].push_back(seg);
    counters_.bytes += seg->size;
    recovery_.records += scan.records - acked_here;
    ++recovery_.segments;
  }
  for (auto& lane : lanes_) {
    std::sort(lane.begin(), lane.end(),
              [](const SegmentPtr& a, const SegmentPtr& b) { return a->first_seq < b->first_seq; });
  }

  const uint64_t next =
      Sequencer::Resume(state.clean, state.next_seq, state.seq_lease, acked_seq_, max_seq);
  const uint64_t floor = std::max(max_seq, acked_seq_) + 1;
  recovery_.seq_skipped = next > floor ? next - floor : 0;
  recovery_.acked_seq = acked_seq_;
  recovery_.next_seq = next;
  sequencer_ = Sequencer(next, next, options_.seq_lease_step);
  // From here until Close() the state on disk says "not clean", with a lease ahead.
  TL_RETURN_IF_ERROR(WriteStateLocked(false, sequencer_.ProposedLease()));
  sequencer_.LeaseGranted(sequencer_.ProposedLease());

  // A smaller max_bytes than last time: shrink now, bulk first.
  while (counters_.bytes > options_.max_bytes && EvictOneLocked(Lane::kPriority)) changed = true;
  if (changed) TL_RETURN_IF_ERROR(SyncDirectory(options_.dir));
  return Status::Ok();
}

Status Spool::WriteStateLocked(bool clean, uint64_t lease) {
  SpoolState state;
  state.acked_seq = acked_seq_;
  state.next_seq = sequencer_.next();
  state.seq_lease = clean ? sequencer_.next() : std::max(lease, sequencer_.next());
  state.clean = clean;
  TL_RETURN_IF_ERROR(WriteFileAtomically(options_.dir, kStateFile, EncodeState(state)));
  state_dirty_ = false;
  last_state_write_ns_ = clock_.MonotonicNs();
  return Status::Ok();
}

Status Spool::EnsureActiveLocked(Lane lane, uint64_t first_seq) {
  auto& segs = lanes_[static_cast<size_t>(lane)];
  if (!segs.empty() && !segs.back()->sealed) return Status::Ok();
  auto seg = std::make_shared<Segment>();
  seg->lane = lane;
  seg->path = options_.dir + "/" + SegmentName(lane, first_seq);
  // O_EXCL: numbers never repeat, so an existing file of that name means the state was
  // lost; refuse rather than overwrite data.
  seg->fd = ::open(seg->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (seg->fd < 0) return Status::FromErrno(errno, "create " + seg->path);
  const std::string header = EncodeSegmentHeader(lane);
  Status s = PwriteAll(seg->fd, 0, header, seg->path);
  if (!s.ok()) {
    ::unlink(seg->path.c_str());
    return s;
  }
  seg->size = header.size();
  seg->dirty = true;
  counters_.bytes += seg->size;
  dir_dirty_ = true;
  segs.push_back(std::move(seg));
  return Status::Ok();
}

void Spool::CountDropsLocked(const Segment& seg) {
  if (seg.records == 0 || seg.last_seq <= acked_seq_) return;
  std::array<uint64_t, kNumKinds> kinds{};
  if (acked_seq_ < seg.first_seq) {
    kinds = seg.by_kind;
  } else {
    // Partly acknowledged: only the records above the acked seq are lost.
    std::string bytes;
    if (PreadAll(seg.fd, 0, seg.size, &bytes, seg.path).ok()) {
      ScanSegment(AsBytes(bytes), [&](const RecordView& r) {
        if (r.seq > acked_seq_) ++kinds[r.kind];
      });
    } else {
      kinds = seg.by_kind;  // cannot tell which were acked: count all, an upper bound
    }
  }
  for (size_t k = 0; k < kNumKinds; ++k) {
    counters_.drops_by_kind[k] += kinds[k];
    counters_.drops += kinds[k];
  }
}

void Spool::DropSegmentLocked(Lane lane, size_t index, bool count_as_drops) {
  auto& segs = lanes_[static_cast<size_t>(lane)];
  SegmentPtr seg = segs[index];
  if (count_as_drops) {
    CountDropsLocked(*seg);
    ++counters_.evicted_segments;
    // A storm evicts segment after segment: log the first and then every 100th, the
    // counters carry the rest.
    if (counters_.evicted_segments % 100 == 1) {
      TL_LOG(WARNING) << "spool full: evicted " << seg->path << " (" << seg->records
                      << " records, seq " << seg->first_seq << ".." << seg->last_seq << "; "
                      << counters_.evicted_segments << " segments evicted so far)";
    }
  }
  if (::unlink(seg->path.c_str()) != 0 && errno != ENOENT) {
    TL_LOG(ERROR) << "spool: unlink " << seg->path << ": " << std::strerror(errno);
  }
  counters_.bytes -= seg->size;
  dir_dirty_ = true;
  for (auto& c : cursors_) {
    if (c.segment == seg.get()) c = LaneCursor{};
  }
  segs.erase(segs.begin() + static_cast<std::ptrdiff_t>(index));
}

bool Spool::EvictOneLocked(Lane incoming) {
  if (!lanes_[static_cast<size_t>(Lane::kBulk)].empty()) {
    DropSegmentLocked(Lane::kBulk, 0, true);
    return true;
  }
  if (incoming == Lane::kPriority && !lanes_[static_cast<size_t>(Lane::kPriority)].empty()) {
    DropSegmentLocked(Lane::kPriority, 0, true);
    return true;
  }
  return false;
}

Result<AppendResult> Spool::Append(EventKind kind, std::string_view payload) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Status::Aborted("spool is closed");
  const size_t k = static_cast<size_t>(kind);
  if (k >= kNumKinds) return Status::InvalidArgument("unknown event kind");
  const Lane lane = LaneOf(kind);
  const uint64_t record_size = kRecordHeaderSize + payload.size();
  if (payload.size() > kMaxRecordPayload || record_size + kSegmentHeaderSize > options_.max_bytes) {
    ++counters_.drops;
    ++counters_.drops_by_kind[k];
    ++counters_.refused;
    return Status::InvalidArgument("event of " + std::to_string(payload.size()) +
                                   " bytes can never fit the spool");
  }
  if (sequencer_.NeedsLease()) {
    const uint64_t lease = sequencer_.ProposedLease();
    Status s = WriteStateLocked(false, lease);
    if (!s.ok()) {
      ++counters_.drops;
      ++counters_.drops_by_kind[k];
      ++counters_.write_errors;
      return s;
    }
    sequencer_.LeaseGranted(lease);
  }
  auto& segs = lanes_[static_cast<size_t>(lane)];
  for (;;) {
    const bool have_active = !segs.empty() && !segs.back()->sealed;
    const uint64_t need = record_size + (have_active ? 0 : kSegmentHeaderSize);
    if (counters_.bytes + need <= options_.max_bytes) break;
    if (!EvictOneLocked(lane)) {
      ++counters_.drops;
      ++counters_.drops_by_kind[k];
      ++counters_.refused;
      return AppendResult{};
    }
  }
  const uint64_t seq = sequencer_.next();
  Status s = EnsureActiveLocked(lane, seq);
  if (s.ok()) {
    Segment& seg = *segs.back();
    scratch_.clear();
    EncodeRecord(seq, static_cast<uint8_t>(k), payload, &scratch_);
    s = PwriteAll(seg.fd, seg.size, scratch_, seg.path);
    if (!s.ok()) {
      // Cut off whatever part was written so the segment stays well-formed.
      if (::ftruncate(seg.fd, static_cast<off_t>(seg.size)) != 0) seg.sealed = true;
    } else {
      seg.size += scratch_.size();
      counters_.bytes += scratch_.size();
      if (seg.records == 0) seg.first_seq = seq;
      seg.last_seq = seq;
      ++seg.records;
      ++seg.by_kind[k];
      seg.dirty = true;
      if (seg.size >= segment_bytes_) seg.sealed = true;
    }
  }
  if (!s.ok()) {
    ++counters_.drops;
    ++counters_.drops_by_kind[k];
    ++counters_.write_errors;
    return s;
  }
  sequencer_.Take();
  ++counters_.appended;
  return AppendResult{true, seq};
}

Status Spool::ReadLaneLocked(Lane lane, uint64_t after_seq, size_t max_records,
                             std::vector<SpoolRecord>* out, std::vector<LaneCursor>* ends) {
  const auto& segs = lanes_[static_cast<size_t>(lane)];
  LaneCursor& cursor = cursors_[static_cast<size_t>(lane)];
  std::string buf;
  for (const SegmentPtr& seg : segs) {
    if (out->size() >= max_records) break;
    if (seg->records == 0 || seg->last_seq <= after_seq) continue;
    uint64_t offset = kSegmentHeaderSize;
    uint64_t prev = 0;
    if (cursor.segment == seg.get() && cursor.last_seq <= after_seq) {
      offset = cursor.offset;
      prev = cursor.last_seq;
    }
    uint64_t want = kReadChunk;
    while (offset < seg->size && out->size() < max_records) {
      const uint64_t n = std::min(seg->size - offset, std::max(want, kReadChunk));
      TL_RETURN_IF_ERROR(PreadAll(seg->fd, offset, n, &buf, seg->path));
      const auto bytes = AsBytes(buf);
      uint64_t rel = 0;
      bool corrupt = false;
      uint64_t jump_to = 0;
      while (rel < bytes.size() && out->size() < max_records) {
        if (auto hole = seg->holes.find(offset + rel); hole != seg->holes.end()) {
          jump_to = hole->second;  // counted by Open(); the next record starts there
          break;
        }
        const uint64_t size = RecordSizeAt(bytes, rel);
        if (size == 0 || rel + size > bytes.size()) {
          // The record continues past this chunk; fetch it whole next round unless it
          // claims to run past the end of the segment.
          if (size == 0 && offset + rel + kRecordHeaderSize > seg->size) corrupt = true;
          if (size != 0 && offset + rel + size > seg->size) corrupt = true;
          want = size;
          break;
        }
        RecordView rec;
        if (!ParseRecordAt(bytes, rel, prev, &rec)) {
          corrupt = true;
          break;
        }
        rel += size;
        prev = rec.seq;
        if (rec.seq > after_seq) {
          out->push_back(
              SpoolRecord{rec.seq, static_cast<EventKind>(rec.kind), std::string(rec.payload)});
          ends->push_back(LaneCursor{seg.get(), offset + rel, rec.seq});
        }
      }
      offset = jump_to != 0 ? jump_to : offset + rel;
      if (corrupt) {
        // Bit rot after Open verified the file: the rest of this segment cannot be
        // framed. Count it; the aggregator sees the gap.
        ++counters_.read_corrupt_regions;
        TL_LOG(ERROR) << "spool: " << seg->path << ": corrupt record at offset " << offset
                      << "; skipping the rest of the segment";
        break;
      }
    }
  }
  return Status::Ok();
}

Status Spool::Read(uint64_t after_seq, size_t max_records, std::vector<SpoolRecord>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Status::Aborted("spool is closed");
  if (max_records == 0) return Status::Ok();
  // Acknowledged records may linger in a segment that is not wholly acknowledged yet.
  after_seq = std::max(after_seq, acked_seq_);
  std::array<std::vector<SpoolRecord>, kNumLanes> got;
  std::array<std::vector<LaneCursor>, kNumLanes> ends;
  for (size_t l = 0; l < kNumLanes; ++l) {
    TL_RETURN_IF_ERROR(
        ReadLaneLocked(static_cast<Lane>(l), after_seq, max_records, &got[l], &ends[l]));
  }
  // Merge the lanes back into seq order.
  std::array<size_t, kNumLanes> taken{};
  for (size_t n = 0; n < max_records; ++n) {
    const bool have_p = taken[0] < got[0].size();
    const bool have_b = taken[1] < got[1].size();
    if (!have_p && !have_b) break;
    const size_t l = (have_p && (!have_b || got[0][taken[0]].seq < got[1][taken[1]].seq)) ? 0 : 1;
    out->push_back(std::move(got[l][taken[l]]));
    ++taken[l];
  }
  for (size_t l = 0; l < kNumLanes; ++l) {
    if (taken[l] > 0) cursors_[l] = ends[l][taken[l] - 1];
  }
  return Status::Ok();
}

Status Spool::Ack(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Status::Aborted("spool is closed");
  if (seq <= acked_seq_) return Status::Ok();
  acked_seq_ = seq;
  state_dirty_ = true;
  for (size_t l = 0; l < kNumLanes; ++l) {
    auto& segs = lanes_[l];
    while (!segs.empty() && segs.front()->sealed && segs.front()->last_seq <= acked_seq_) {
      DropSegmentLocked(static_cast<Lane>(l), 0, false);
    }
  }
  return Status::Ok();
}

Status Spool::Sync(bool force_state) {
  std::vector<SegmentPtr> dirty;
  bool dir = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Status::Ok();
    for (auto& lane : lanes_) {
      for (auto& seg : lane) {
        if (seg->dirty) {
          dirty.push_back(seg);
          seg->dirty = false;
        }
      }
    }
    dir = dir_dirty_;
    dir_dirty_ = false;
  }
  Status result;
  // Outside the lock: a slow disk must not stall Append(). The shared_ptrs keep the
  // descriptors open even if a segment is evicted meanwhile.
  for (const auto& seg : dirty) {
    if (::fdatasync(seg->fd) != 0 && result.ok()) {
      result = Status::FromErrno(errno, "fdatasync " + seg->path);
    }
  }
  if (dir) {
    Status s = SyncDirectory(options_.dir);
    if (!s.ok() && result.ok()) result = s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!closed_ && state_dirty_ &&
      (force_state || clock_.MonotonicNs() - last_state_write_ns_ >=
                          options_.state_interval_ms * kNanosPerMilli)) {
    Status s = WriteStateLocked(false, sequencer_.lease());
    if (!s.ok() && result.ok()) result = s;
  }
  return result;
}

Status Spool::Close() {
  Status result = Sync(false);
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return result;
  Status s = WriteStateLocked(true, 0);
  if (!s.ok() && result.ok()) result = s;
  closed_ = true;
  for (auto& lane : lanes_) lane.clear();
  cursors_ = {};
  return result;
}

SpoolCounters Spool::Counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  SpoolCounters c = counters_;
  c.segments = lanes_[0].size() + lanes_[1].size();
  c.acked_seq = acked_seq_;
  c.next_seq = sequencer_.next();
  return c;
}

}  // namespace tripline::delivery
