// Spool, on-disk format and sensor id: real files in a temporary directory.
#include "sensor/delivery/spool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "sensor/delivery/atomic_file.h"
#include "sensor/delivery/crc32c.h"
#include "sensor/delivery/sensor_id.h"
#include "sensor/delivery/spool_format.h"
#include "tests/support/temp_dir.h"

namespace tripline::delivery {
namespace {

namespace fs = std::filesystem;

using ::tripline::testing::TempDir;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Payload(uint64_t i, size_t size = 40) {
  std::string p = "event-" + std::to_string(i) + "-";
  while (p.size() < size) p.push_back(static_cast<char>('a' + (p.size() % 26)));
  return p;
}

std::unique_ptr<Spool> OpenSpool(const std::string& dir, uint64_t max_bytes = 1 << 20,
                                 uint64_t segment_bytes = 0) {
  SpoolOptions o;
  o.dir = dir;
  o.max_bytes = max_bytes;
  o.segment_bytes = segment_bytes;
  auto spool = Spool::Open(o);
  EXPECT_TRUE(spool.ok()) << spool.status().ToString();
  return spool.ok() ? std::move(*spool) : nullptr;
}

std::vector<SpoolRecord> ReadAll(Spool& spool, uint64_t after = 0) {
  std::vector<SpoolRecord> out;
  for (;;) {
    std::vector<SpoolRecord> chunk;
    EXPECT_TRUE(spool.Read(after, 100, &chunk).ok());
    if (chunk.empty()) return out;
    after = chunk.back().seq;
    for (auto& r : chunk) out.push_back(std::move(r));
  }
}

std::vector<fs::path> Segments(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 test vector and the "123456789" check value of CRC-32C.
  EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(UnmaskCrc(MaskCrc(0x12345678u)), 0x12345678u);
  // Extending in pieces equals one pass (covers the 8-byte and tail loops).
  std::string text = "the quick brown fox jumps over the lazy dog";
  EXPECT_EQ(Crc32cExtend(Crc32c(text.data(), 13), text.data() + 13, text.size() - 13),
            Crc32c(text.data(), text.size()));
}

TEST(SpoolFormatTest, RecordRoundTrip) {
  std::string seg = EncodeSegmentHeader(Lane::kBulk);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    EncodeRecord(seq * 3, static_cast<uint8_t>(EventKind::kExec), Payload(seq), &seg);
  }
  std::vector<RecordView> seen;
  SegmentScan scan = ScanSegment(Bytes(seg), [&](const RecordView& r) { seen.push_back(r); });
  ASSERT_TRUE(scan.header_ok);
  EXPECT_EQ(scan.lane, Lane::kBulk);
  EXPECT_EQ(scan.records, 5u);
  EXPECT_EQ(scan.first_seq, 3u);
  EXPECT_EQ(scan.last_seq, 15u);
  EXPECT_EQ(scan.valid_end, seg.size());
  EXPECT_EQ(scan.torn_tail_bytes, 0u);
  EXPECT_EQ(scan.records_by_kind[static_cast<size_t>(EventKind::kExec)], 5u);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[2].payload, Payload(3));
  EXPECT_EQ(seen[2].seq, 9u);
}

TEST(SpoolFormatTest, StateRoundTripAndCorruption) {
  SpoolState s{41, 100, 65636, true};
  std::string enc = EncodeState(s);
  ASSERT_EQ(enc.size(), kStateSize);
  auto dec = DecodeState(Bytes(enc));
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(dec->acked_seq, 41u);
  EXPECT_EQ(dec->next_seq, 100u);
  EXPECT_EQ(dec->seq_lease, 65636u);
  EXPECT_TRUE(dec->clean);
  enc[10] ^= 1;
  EXPECT_TRUE(DecodeState(Bytes(enc)).status().IsCorruption());
  EXPECT_TRUE(DecodeState(Bytes(enc.substr(0, 39))).status().IsCorruption());
}

TEST(SpoolFormatTest, SegmentNames) {
  Lane lane;
  uint64_t seq;
  ASSERT_TRUE(ParseSegmentName(SegmentName(Lane::kPriority, 42), &lane, &seq));
  EXPECT_EQ(lane, Lane::kPriority);
  EXPECT_EQ(seq, 42u);
  EXPECT_FALSE(ParseSegmentName("x-00000000000000000042.seg", &lane, &seq));
  EXPECT_FALSE(ParseSegmentName("p-0000000000000000004a.seg", &lane, &seq));
  EXPECT_FALSE(ParseSegmentName("state", &lane, &seq));
}

TEST(SpoolTest, AppendReadInSeqOrderAcrossLanes) {
  TempDir dir;
  auto spool = OpenSpool(dir.path());
  std::map<uint64_t, std::string> want;
  for (uint64_t i = 0; i < 300; ++i) {
    EventKind kind = (i % 7 == 0) ? EventKind::kLogin : EventKind::kFileOpen;
    auto r = spool->Append(kind, Payload(i));
    ASSERT_TRUE(r.ok() && r->stored);
    EXPECT_EQ(r->seq, i + 1);  // numbering starts at 1
    want[r->seq] = Payload(i);
  }
  auto got = ReadAll(*spool);
  ASSERT_EQ(got.size(), 300u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(got[i].payload, want[i + 1]);
    EXPECT_EQ(got[i].kind, (i % 7 == 0) ? EventKind::kLogin : EventKind::kFileOpen);
  }
  // Reading from the middle, and non-sequential reads, still work.
  std::vector<SpoolRecord> mid;
  ASSERT_TRUE(spool->Read(150, 5, &mid).ok());
  ASSERT_EQ(mid.size(), 5u);
  EXPECT_EQ(mid[0].seq, 151u);
  mid.clear();
  ASSERT_TRUE(spool->Read(10, 1, &mid).ok());
  ASSERT_EQ(mid.size(), 1u);
  EXPECT_EQ(mid[0].seq, 11u);
}

TEST(SpoolTest, ReopenKeepsUnackedEventsAndNextSeq) {
  TempDir dir;
  {
    auto spool = OpenSpool(dir.path(), 1 << 20, 4096);
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(spool->Append(EventKind::kExec, Payload(i)).ok());
    ASSERT_TRUE(spool->Ack(120).ok());
    ASSERT_TRUE(spool->Close().ok());
  }
  auto spool = OpenSpool(dir.path(), 1 << 20, 4096);
  const SpoolRecovery& rec = spool->recovery();
  EXPECT_TRUE(rec.clean_shutdown);
  EXPECT_EQ(rec.acked_seq, 120u);
  EXPECT_EQ(rec.next_seq, 201u);
  EXPECT_EQ(rec.seq_skipped, 0u);
  EXPECT_EQ(rec.records, 80u);
  auto got = ReadAll(*spool);
  ASSERT_EQ(got.size(), 80u);
  EXPECT_EQ(got.front().seq, 121u);
  EXPECT_EQ(got.back().seq, 200u);
  auto next = spool->Append(EventKind::kLogin, "x");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 201u);
}

TEST(SpoolTest, CrashImageNeverReusesSequenceNumbers) {
  TempDir dir;
  TempDir copy;
  auto spool = OpenSpool(dir.path());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(spool->Append(EventKind::kExec, Payload(i)).ok());
  // A copy taken while the spool is open is what a crash leaves behind.
  fs::copy(dir.path(), copy.path(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto reopened = OpenSpool(copy.path());
  EXPECT_FALSE(reopened->recovery().clean_shutdown);
  EXPECT_EQ(reopened->recovery().records, 10u);
  // Numbers 11.. may have reached the aggregator before the crash: resume at the lease
  // (1 + the default step of 65536), never at 11.
  EXPECT_EQ(reopened->recovery().next_seq, 65537u);
  EXPECT_EQ(reopened->recovery().seq_skipped, 65537u - 11u);
  EXPECT_EQ(ReadAll(*reopened).size(), 10u);
}

TEST(SpoolTest, TornTailIsTruncatedAndReported) {
  TempDir dir;
  {
    auto spool = OpenSpool(dir.path());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(spool->Append(EventKind::kExec, Payload(i)).ok());
  }
  auto segs = Segments(dir.path());
  ASSERT_EQ(segs.size(), 1u);
  const uintmax_t good_size = fs::file_size(segs[0]);
  // A record the writer did not finish: a valid-looking header, half the payload.
  std::string partial;
  EncodeRecord(21, static_cast<uint8_t>(EventKind::kExec), Payload(21, 100), &partial);
  partial.resize(partial.size() / 2);
  {
    std::ofstream out(segs[0], std::ios::binary | std::ios::app);
    out << partial;
  }
  auto spool = OpenSpool(dir.path());
  EXPECT_EQ(spool->recovery().torn_tail_bytes, partial.size());
  EXPECT_EQ(spool->recovery().corrupt_regions, 0u);
  EXPECT_EQ(fs::file_size(segs[0]), good_size);
  auto got = ReadAll(*spool);
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(got.back().seq, 20u);
  // Numbering continues after what survived: 21 was never durable.
  auto next = spool->Append(EventKind::kExec, "y");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 21u);
}

TEST(SpoolTest, FlippedByteIsDetectedSkippedAndCounted) {
  TempDir dir;
  {
    auto spool = OpenSpool(dir.path());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(spool->Append(EventKind::kExec, Payload(i)).ok());
  }
  auto segs = Segments(dir.path());
  ASSERT_EQ(segs.size(), 1u);
  auto bytes = ReadWholeFile(segs[0].string());
  ASSERT_TRUE(bytes.ok());
  // Flip one payload byte of the fourth record.
  const size_t record_size = kRecordHeaderSize + Payload(0).size();
  (*bytes)[kSegmentHeaderSize + 3 * record_size + kRecordHeaderSize + 5] ^= 0x40;
  {
    std::ofstream out(segs[0], std::ios::binary | std::ios::trunc);
    out << *bytes;
  }
  auto spool = OpenSpool(dir.path());
  EXPECT_EQ(spool->recovery().corrupt_regions, 1u);
  EXPECT_EQ(spool->recovery().corrupt_bytes, record_size);
  auto got = ReadAll(*spool);
  ASSERT_EQ(got.size(), 9u);
  for (const auto& r : got) EXPECT_NE(r.seq, 4u);
  EXPECT_EQ(got.back().seq, 10u);
}

TEST(SpoolTest, UnreadableHeaderDeletesSegmentWithCount) {
  TempDir dir;
  {
    auto spool = OpenSpool(dir.path());
    ASSERT_TRUE(spool->Append(EventKind::kExec, Payload(1)).ok());
  }
  auto segs = Segments(dir.path());
  ASSERT_EQ(segs.size(), 1u);
  {
    std::fstream f(segs[0], std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(2);
    f.put('X');
  }
  auto spool = OpenSpool(dir.path());
  EXPECT_EQ(spool->recovery().bad_segments, 1u);
  EXPECT_TRUE(ReadAll(*spool).empty());
  EXPECT_TRUE(Segments(dir.path()).empty());
}

TEST(SpoolTest, AckTrimsSealedSegments) {
  TempDir dir;
  auto spool = OpenSpool(dir.path(), 1 << 20, 1024);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(spool->Append(EventKind::kExec, Payload(i)).ok());
  const size_t before = Segments(dir.path()).size();
  ASSERT_GT(before, 5u);
  ASSERT_TRUE(spool->Ack(200).ok());
  // Only the active (unsealed) segment may remain.
  EXPECT_LE(Segments(dir.path()).size(), 1u);
  EXPECT_TRUE(ReadAll(*spool, 200).empty());
}

TEST(SpoolTest, FullSpoolDropsBulkFirstAndCountsEveryDrop) {
  TempDir dir;
  const uint64_t max_bytes = 64 * 1024;
  auto spool = OpenSpool(dir.path(), max_bytes, 4096);
  uint64_t stored_login = 0;
  uint64_t refused = 0;
  std::map<EventKind, uint64_t> stored_by_kind;
  std::map<EventKind, uint64_t> submitted_by_kind;
  for (int i = 0; i < 20000; ++i) {
    EventKind kind = EventKind::kExec;
    if (i % 97 == 0)
      kind = EventKind::kLogin;
    else if (i % 3 == 0)
      kind = EventKind::kFileOpen;
    ++submitted_by_kind[kind];
    auto r = spool->Append(kind, Payload(i, 120));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->stored) {
      ++stored_by_kind[kind];
      if (kind == EventKind::kLogin) ++stored_login;
    } else {
      ++refused;
    }
    ASSERT_LE(spool->Counters().bytes, max_bytes);
  }
  auto got = ReadAll(*spool);
  std::map<EventKind, uint64_t> left;
  for (const auto& r : got) ++left[r.kind];
  // Every login survived; bulk was evicted around it.
  EXPECT_EQ(left[EventKind::kLogin], stored_login);
  EXPECT_EQ(stored_login, 207u);
  SpoolCounters c = spool->Counters();
  EXPECT_EQ(c.drops_by_kind[static_cast<size_t>(EventKind::kLogin)], 0u);
  // Every event is either still in the spool or counted as dropped, kind by kind.
  for (EventKind k : {EventKind::kExec, EventKind::kFileOpen, EventKind::kLogin}) {
    EXPECT_EQ(left[k] + c.drops_by_kind[static_cast<size_t>(k)], submitted_by_kind[k])
        << KindName(k);
  }
  EXPECT_GT(c.drops_by_kind[static_cast<size_t>(EventKind::kExec)], 0u);
  uint64_t total_left = got.size();
  EXPECT_EQ(total_left + c.drops, 20000u);
  EXPECT_EQ(c.refused, refused);
  EXPECT_GT(c.evicted_segments, 0u);
}

TEST(SpoolTest, PriorityEvictsOldestPriorityOnlyWhenNoBulkLeft) {
  TempDir dir;
  const uint64_t max_bytes = 16 * 1024;
  auto spool = OpenSpool(dir.path(), max_bytes, 4096);
  const std::string payload = Payload(0, 100);
  const uint64_t record = kRecordHeaderSize + payload.size();
  uint64_t logins = 0;
  // Fill with priority events until the next record would not fit.
  while (spool->Counters().bytes + record <= max_bytes) {
    auto r = spool->Append(EventKind::kLogin, payload);
    ASSERT_TRUE(r.ok() && r->stored);
    ++logins;
  }
  // Bulk never displaces priority data: refused, counted, and not numbered.
  auto bulk = spool->Append(EventKind::kExec, payload);
  ASSERT_TRUE(bulk.ok());
  EXPECT_FALSE(bulk->stored);
  EXPECT_EQ(spool->Counters().refused, 1u);
  EXPECT_EQ(spool->Counters().drops_by_kind[static_cast<size_t>(EventKind::kExec)], 1u);
  // A newer priority event evicts the oldest priority segment.
  for (int i = 0; i < 500; ++i) {
    auto r = spool->Append(EventKind::kNet, payload);
    ASSERT_TRUE(r.ok() && r->stored);
    EXPECT_EQ(r->seq, logins + 1 + i);
  }
  SpoolCounters c = spool->Counters();
  auto got = ReadAll(*spool);
  EXPECT_EQ(got.back().seq, logins + 500);
  EXPECT_EQ(got.size() + c.drops_by_kind[static_cast<size_t>(EventKind::kLogin)] +
                c.drops_by_kind[static_cast<size_t>(EventKind::kNet)],
            logins + 500);
  EXPECT_LE(c.bytes, max_bytes);
}

TEST(SensorIdTest, CreatedOnceThenLoaded) {
  TempDir dir;
  auto first = LoadOrCreateSensorId(dir.path() + "/sub");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(IsValidSensorId(*first));
  auto second = LoadOrCreateSensorId(dir.path() + "/sub");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  TempDir other;
  auto third = LoadOrCreateSensorId(other.path());
  ASSERT_TRUE(third.ok());
  EXPECT_NE(*first, *third);
}

TEST(SensorIdTest, MalformedFileIsAnErrorNotReplaced) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.path(), "sensor_id", "not-an-id\n").ok());
  auto id = LoadOrCreateSensorId(dir.path());
  EXPECT_TRUE(id.status().IsCorruption());
}

}  // namespace
}  // namespace tripline::delivery

namespace tripline::delivery {
namespace {

// A state.tmp planted as a link (by anyone who could once write the directory) must not
// make the spool write through it: the victim keeps its contents.
TEST(SpoolDirectoryTest, StateIsNeverWrittenThroughALink) {
  TempDir dir;
  const std::string spool_dir = dir.Sub("spool");
  ASSERT_TRUE(fs::create_directory(spool_dir));
  fs::permissions(spool_dir, fs::perms::owner_all, fs::perm_options::replace);
  const std::string victim = dir.Sub("victim");
  std::ofstream(victim) << "precious\n";
  fs::create_symlink(victim, spool_dir + "/state.tmp");
  {
    auto spool = OpenSpool(spool_dir);
    ASSERT_NE(spool, nullptr);
    ASSERT_TRUE(spool->Append(EventKind::kExec, Payload(1)).ok());
    ASSERT_TRUE(spool->Close().ok());
  }
  std::ifstream in(victim);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "precious\n");
  EXPECT_FALSE(fs::is_symlink(spool_dir + "/state"));
  EXPECT_TRUE(fs::is_regular_file(spool_dir + "/state"));
}

TEST(SpoolDirectoryTest, OwnerAndModeAreCheckedWithAClearError) {
  TempDir dir;
  SpoolOptions o;
  o.max_bytes = 1 << 20;

  o.dir = dir.Sub("open-to-all");
  ASSERT_TRUE(fs::create_directory(o.dir));
  fs::permissions(o.dir, fs::perms::all, fs::perm_options::replace);
  auto spool = Spool::Open(o);
  ASSERT_FALSE(spool.ok());
  EXPECT_NE(spool.status().message().find("(mode 0777) is writable by group or others; chmod "
                                          "700 it"),
            std::string::npos)
      << spool.status().ToString();

  o.dir = dir.Sub("link");
  ASSERT_TRUE(fs::create_directory(dir.Sub("target")));
  fs::create_symlink(dir.Sub("target"), o.dir);
  spool = Spool::Open(o);
  ASSERT_FALSE(spool.ok());
  EXPECT_NE(spool.status().message().find("is a symbolic link"), std::string::npos)
      << spool.status().ToString();

  if (geteuid() == 0) {
    o.dir = dir.Sub("someone-elses");
    ASSERT_TRUE(fs::create_directory(o.dir));
    ASSERT_EQ(chown(o.dir.c_str(), 4321, 4321), 0);
    spool = Spool::Open(o);
    ASSERT_FALSE(spool.ok());
    EXPECT_NE(spool.status().message().find("is owned by uid 4321, not by this sensor (uid 0)"),
              std::string::npos)
        << spool.status().ToString();
  }

  // A missing directory is made private.
  o.dir = dir.Sub("new/spool");
  spool = Spool::Open(o);
  ASSERT_TRUE(spool.ok()) << spool.status().ToString();
  EXPECT_EQ(fs::status(o.dir).permissions() & fs::perms::all, fs::perms::owner_all);
}

}  // namespace
}  // namespace tripline::delivery

namespace tripline::delivery {
namespace {

TEST(SpoolDirectoryTest, ARelativeDirectoryIsMadeToo) {
  TempDir dir;
  const std::string cwd = fs::current_path();
  fs::current_path(dir.path());
  const Status made = PrepareOwnDirectory("spool");
  fs::current_path(cwd);
  ASSERT_TRUE(made.ok()) << made.ToString();
  EXPECT_TRUE(fs::is_directory(dir.Sub("spool")));
}

}  // namespace
}  // namespace tripline::delivery
