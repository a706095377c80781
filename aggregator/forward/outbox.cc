#include "aggregator/forward/outbox.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdio>

#include "aggregator/store/event_keys.h"
#include "aggregator/store/rocksdb_store.h"
#include "common/fnv.h"
#include "common/log.h"

namespace tripline::forward {
namespace {

using event_keys::AppendBe32;
using event_keys::AppendBe64;
using event_keys::ReadBe32;
using event_keys::ReadBe64;

constexpr std::string_view kQueueTag = "q/";
constexpr std::string_view kSentTag = "r/";
constexpr std::string_view kCursorTag = "c/";
// A queued audit event's record starts with these two bytes; an incident's (a serialized
// tripline.v1.Incident) cannot start with a zero byte, as no protobuf tag is zero.
constexpr std::string_view kAuditMark = std::string_view("\0A", 2);
constexpr size_t kQueuePrefixSize = 2 + 16 + 1;
// Sent record: be32 revision | u8 severity | be32 hops.
constexpr size_t kSentRecordSize = 9;

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string CursorKey(std::string_view source) {
  return std::string(kCursorTag) + std::string(source);
}

std::string CursorValue(uint64_t through) {
  std::string v;
  AppendBe64(&v, through);
  return v;
}

std::string QueueKey(const std::string& prefix, uint64_t seq) {
  std::string k = prefix;
  AppendBe64(&k, seq);
  return k;
}

}  // namespace

std::string Outbox::QueuePrefix(const std::string& destination) {
  return std::string(kQueueTag) + Hex64(Fnv1a64(destination)) + "/";
}

Result<std::unique_ptr<Outbox>> Outbox::Open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                             const std::vector<std::string>& destinations,
                                             const Clock& clock) {
  if (db == nullptr || cf == nullptr) return Status::InvalidArgument("outbox: no column family");
  std::unique_ptr<Outbox> outbox(new Outbox(db, cf, clock));
  TL_RETURN_IF_ERROR(outbox->Load(destinations));
  return outbox;
}

Status Outbox::Load(const std::vector<std::string>& destinations) {
  std::map<std::string, size_t> by_prefix;
  for (const std::string& d : destinations) {
    Queue q;
    q.prefix = QueuePrefix(d);
    by_prefix.emplace(q.prefix, queues_.size());
    queues_.push_back(std::move(q));
  }
  // One pass over every queue: the configured ones find their head, tail and oldest entry;
  // the others are deleted.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
  std::map<std::string, uint64_t> orphans;
  for (it->Seek(std::string(kQueueTag)); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(rocksdb::Slice(kQueueTag.data(), kQueueTag.size()))) break;
    if (key.size() != kQueuePrefixSize + 8) {
      return Status::Corruption("outbox: queue key of " + std::to_string(key.size()) + " bytes");
    }
    const std::string prefix(key.data(), kQueuePrefixSize);
    const uint64_t seq = ReadBe64(std::string_view(key.data() + kQueuePrefixSize, 8));
    const auto found = by_prefix.find(prefix);
    if (found == by_prefix.end()) {
      ++orphans[prefix];
      continue;
    }
    Queue& q = queues_[found->second];
    if (q.tail == 0) {
      q.head = seq;
      if (it->value().size() < 8) return Status::Corruption("outbox: short queue value");
      q.oldest_ns = static_cast<int64_t>(ReadBe64(std::string_view(it->value().data(), 8)));
    }
    q.tail = seq + 1;
  }
  if (!it->status().ok()) return FromRocksDb(it->status(), "reading the outbox");
  for (const auto& [prefix, n] : orphans) {
    std::string end = prefix;
    end.back() = static_cast<char>(end.back() + 1);
    const rocksdb::Status s = db_->DeleteRange(rocksdb::WriteOptions(), cf_, prefix, end);
    if (!s.ok()) return FromRocksDb(s, "deleting an old outbox queue");
    TL_LOG(WARNING) << "outbox: dropped " << n
                    << " incident revisions queued for an output that is no longer configured";
  }
  return Status::Ok();
}

Result<bool> Outbox::Offer(const v1::Incident& incident) {
  if (queues_.empty()) return false;
  const std::string sent_key = std::string(kSentTag) + incident.id();
  std::string sent;
  const rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), cf_, sent_key, &sent);
  const auto severity = static_cast<uint8_t>(incident.severity());
  const auto hops = static_cast<uint32_t>(incident.chain_size());
  if (got.ok()) {
    if (sent.size() != kSentRecordSize) return Status::Corruption("outbox: bad sent record");
    const auto last_severity = static_cast<uint8_t>(sent[4]);
    const uint32_t last_hops = ReadBe32(std::string_view(sent).substr(5));
    if (severity <= last_severity && hops <= last_hops) return false;
  } else if (!got.IsNotFound()) {
    return FromRocksDb(got, "reading the outbox");
  }
  std::string record;
  AppendBe32(&record, incident.revision());
  record.push_back(static_cast<char>(severity));
  AppendBe32(&record, hops);

  std::string value;
  const int64_t now = clock_.NowNs();
  AppendBe64(&value, static_cast<uint64_t>(now));
  if (!incident.AppendToString(&value)) return Status::Internal("outbox: cannot serialize");

  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::WriteBatch batch;
  for (const Queue& q : queues_) batch.Put(cf_, QueueKey(q.prefix, q.tail), value);
  batch.Put(cf_, sent_key, record);
  const rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return FromRocksDb(s, "writing the outbox");
  for (Queue& q : queues_) {
    if (q.head == q.tail) q.oldest_ns = now;
    ++q.tail;
  }
  return true;
}

Status Outbox::OfferAudit(std::string_view source, const std::vector<v1::AuditEvent>& events,
                          uint64_t through) {
  const int64_t now = clock_.NowNs();
  std::vector<std::string> values(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    AppendBe64(&values[i], static_cast<uint64_t>(now));
    values[i].append(kAuditMark);
    if (!events[i].AppendToString(&values[i])) return Status::Internal("outbox: cannot serialize");
  }
  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::WriteBatch batch;
  for (const Queue& q : queues_) {
    for (size_t i = 0; i < values.size(); ++i)
      batch.Put(cf_, QueueKey(q.prefix, q.tail + i), values[i]);
  }
  batch.Put(cf_, CursorKey(source), CursorValue(through));
  const rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return FromRocksDb(s, "writing the outbox");
  if (!events.empty()) {
    for (Queue& q : queues_) {
      if (q.head == q.tail) q.oldest_ns = now;
      q.tail += events.size();
    }
  }
  return Status::Ok();
}

Result<std::optional<uint64_t>> Outbox::ReadAuditCursor(rocksdb::DB* db,
                                                        rocksdb::ColumnFamilyHandle* cf,
                                                        std::string_view source) {
  std::string v;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, CursorKey(source), &v);
  if (s.IsNotFound()) return std::optional<uint64_t>();
  if (!s.ok()) return FromRocksDb(s, "reading the outbox");
  if (v.size() != 8) return Status::Corruption("outbox: bad cursor of " + std::string(source));
  return std::optional<uint64_t>(ReadBe64(v));
}

Status Outbox::WriteAuditCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                std::string_view source, uint64_t through) {
  return FromRocksDb(db->Put(rocksdb::WriteOptions(), cf, CursorKey(source), CursorValue(through)),
                     "writing the outbox");
}

Result<std::vector<OutboxEntry>> Outbox::Peek(size_t destination, size_t max) {
  std::string start, prefix;
  uint64_t tail;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Queue& q = queues_.at(destination);
    if (q.head == q.tail) return std::vector<OutboxEntry>();
    prefix = q.prefix;
    start = QueueKey(q.prefix, q.head);
    tail = q.tail;
  }
  std::vector<OutboxEntry> out;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_));
  // Seeking to the head skips the tombstones of what was popped.
  for (it->Seek(start); it->Valid() && out.size() < max; it->Next()) {
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(prefix)) break;
    OutboxEntry e;
    e.seq = ReadBe64(std::string_view(key.data() + kQueuePrefixSize, 8));
    if (e.seq >= tail) break;
    const rocksdb::Slice v = it->value();
    if (v.size() < 8) return Status::Corruption("outbox: short queue value");
    e.queued_ns = static_cast<int64_t>(ReadBe64(std::string_view(v.data(), 8)));
    const std::string_view record(v.data() + 8, v.size() - 8);
    e.audit = record.substr(0, kAuditMark.size()) == kAuditMark;
    e.record = e.audit ? std::string(record.substr(kAuditMark.size())) : std::string(record);
    out.push_back(std::move(e));
  }
  if (!it->status().ok()) return FromRocksDb(it->status(), "reading the outbox");
  return out;
}

Status Outbox::Pop(size_t destination, uint64_t seq) {
  std::string prefix;
  uint64_t head;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Queue& q = queues_.at(destination);
    prefix = q.prefix;
    head = q.head;
    if (seq < head) return Status::Ok();
    if (seq >= q.tail) return Status::InvalidArgument("outbox: pop beyond the tail");
  }
  rocksdb::WriteBatch batch;
  for (uint64_t s = head; s <= seq; ++s) batch.Delete(cf_, QueueKey(prefix, s));
  const rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return FromRocksDb(s, "removing delivered outbox entries");
  // The new oldest entry's time, read outside the lock (only this destination's thread
  // pops, and Offer only appends).
  int64_t oldest = 0;
  {
    std::string v;
    const rocksdb::Status got =
        db_->Get(rocksdb::ReadOptions(), cf_, QueueKey(prefix, seq + 1), &v);
    if (got.ok() && v.size() >= 8) oldest = static_cast<int64_t>(ReadBe64(v));
  }
  std::lock_guard<std::mutex> lock(mu_);
  Queue& q = queues_.at(destination);
  q.head = seq + 1;
  q.oldest_ns = q.head == q.tail ? 0 : (oldest != 0 ? oldest : q.oldest_ns);
  return Status::Ok();
}

uint64_t Outbox::Backlog(size_t destination) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Queue& q = queues_.at(destination);
  return q.tail - q.head;
}

int64_t Outbox::OldestQueuedNs(size_t destination) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Queue& q = queues_.at(destination);
  return q.head == q.tail ? 0 : q.oldest_ns;
}

}  // namespace tripline::forward
