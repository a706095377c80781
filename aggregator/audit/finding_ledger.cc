#include "aggregator/audit/finding_ledger.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <memory>

#include "aggregator/store/rocksdb_store.h"
#include "tripline/v1/query.pb.h"

namespace tripline::audit {
namespace {

constexpr std::string_view kFindingPrefix = "f/";
constexpr std::string_view kHostPrefix = "h/";

std::string HostPrefix(std::string_view host) {
  std::string p(kFindingPrefix);
  p += host;
  p.push_back('\0');
  return p;
}

std::string EncodeTime(int64_t t) {
  std::string out(8, '\0');
  const uint64_t u = static_cast<uint64_t>(t);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(u >> (56 - 8 * i));
  return out;
}

int64_t DecodeTime(std::string_view s) {
  uint64_t u = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) u = (u << 8) | static_cast<uint8_t>(s[i]);
  return static_cast<int64_t>(u);
}

std::string Encode(const StoredFinding& f) {
  v1::AuditFinding p;
  p.set_host(f.finding.host);
  p.set_identity(f.finding.identity);
  p.set_kind(f.finding.kind);
  p.set_finding(f.finding.check);
  p.set_subject(f.finding.subject);
  p.set_severity(static_cast<v1::Severity>(f.finding.severity));
  p.set_detail(f.finding.detail);
  p.set_fix(f.finding.fix);
  p.set_first_seen_ns(f.first_seen_ns);
  p.set_last_seen_ns(f.last_seen_ns);
  p.set_resolved_ns(f.resolved_ns);
  return p.SerializeAsString();
}

Result<StoredFinding> Decode(std::string_view bytes) {
  v1::AuditFinding p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      p.severity() < v1::SEVERITY_INFO || p.severity() > v1::SEVERITY_CRITICAL) {
    return Status::Corruption("posture finding record does not decode");
  }
  StoredFinding f;
  f.finding = Finding{p.host(),    p.identity(), p.kind(),
                      p.finding(), p.subject(),  static_cast<Severity>(p.severity()),
                      p.detail(),  p.fix()};
  f.first_seen_ns = p.first_seen_ns();
  f.last_seen_ns = p.last_seen_ns();
  f.resolved_ns = p.resolved_ns();
  return f;
}

std::string RecordKey(const Finding& f) { return std::string(kFindingPrefix) + f.Key(); }

}  // namespace

Result<ApplyResult> FindingLedger::Apply(std::string_view host, int64_t snapshot_ns,
                                         const std::vector<Finding>& findings) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  ApplyResult result;
  const std::string host_key = std::string(kHostPrefix) + std::string(host);
  std::string newest;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, host_key, &newest);
  if (!s.ok() && !s.IsNotFound()) return FromRocksDb(s, "reading posture snapshot time");
  if (s.ok() && DecodeTime(newest) > snapshot_ns) {
    result.stale = true;
    return result;
  }

  std::map<std::string, StoredFinding> before;
  const std::string prefix = HostPrefix(host);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto f = Decode(it->value().ToStringView());
    if (!f.ok()) return f.status().WithContext(it->key().ToString(true));
    before.emplace(it->key().ToString(), std::move(*f));
  }
  if (!it->status().ok()) return FromRocksDb(it->status(), "reading posture findings");

  rocksdb::WriteBatch batch;
  for (const Finding& f : findings) {
    const std::string key = RecordKey(f);
    StoredFinding next{f, snapshot_ns, snapshot_ns, 0};
    if (auto b = before.find(key); b != before.end()) {
      if (b->second.resolved_ns == 0) {
        next.first_seen_ns = b->second.first_seen_ns;
        ++result.still_open;
      } else {
        ++result.opened;
      }
      before.erase(b);
    } else {
      ++result.opened;
    }
    batch.Put(cf_, key, Encode(next));
  }
  for (auto& [key, old] : before) {
    if (old.resolved_ns != 0) continue;
    old.resolved_ns = snapshot_ns;
    ++result.resolved;
    batch.Put(cf_, key, Encode(old));
  }
  batch.Put(cf_, host_key, EncodeTime(snapshot_ns));
  s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return FromRocksDb(s, "writing posture findings");
  return result;
}

Result<std::vector<StoredFinding>> FindingLedger::List(const FindingFilter& filter) const {
  std::vector<StoredFinding> out;
  const std::string prefix =
      filter.host.empty() ? std::string(kFindingPrefix) : HostPrefix(filter.host);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto f = Decode(it->value().ToStringView());
    if (!f.ok()) return f.status().WithContext(it->key().ToString(true));
    if (!filter.include_resolved && f->resolved_ns != 0) continue;
    if (!filter.identity.empty() && f->finding.identity != filter.identity) continue;
    out.push_back(std::move(*f));
  }
  if (!it->status().ok()) return FromRocksDb(it->status(), "reading posture findings");
  std::stable_sort(out.begin(), out.end(), [](const StoredFinding& a, const StoredFinding& b) {
    return a.finding.severity > b.finding.severity;
  });
  return out;
}

}  // namespace tripline::audit
