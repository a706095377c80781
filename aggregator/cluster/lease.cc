#include "aggregator/cluster/lease.h"

#include <charconv>

namespace tripline::cluster {
namespace {

constexpr size_t kMaxOwner = 128;

bool OwnerChar(char c) { return c > ' ' && c < 0x7f; }

}  // namespace

std::string EncodeLease(const LeaseRecord& r) {
  return std::to_string(r.expires_ns) + " " + r.owner;
}

Result<LeaseRecord> DecodeLease(std::string_view bytes) {
  const size_t space = bytes.find(' ');
  if (space == std::string_view::npos || space == 0) {
    return Status::Corruption("lease: not \"<expires_ns> <owner>\"");
  }
  LeaseRecord r;
  const std::string_view when = bytes.substr(0, space);
  const auto [end, ec] = std::from_chars(when.data(), when.data() + when.size(), r.expires_ns);
  if (ec != std::errc() || end != when.data() + when.size() || r.expires_ns < 0) {
    return Status::Corruption("lease: end time is not a non-negative integer");
  }
  const std::string_view owner = bytes.substr(space + 1);
  if (owner.empty() || owner.size() > kMaxOwner) {
    return Status::Corruption("lease: owner is empty or longer than 128 bytes");
  }
  for (char c : owner) {
    if (!OwnerChar(c)) return Status::Corruption("lease: owner has a space or control character");
  }
  r.owner = std::string(owner);
  return r;
}

bool ValidLeaseName(std::string_view name) {
  if (name.empty() || name.size() > kMaxOwner) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '=' || c == '.' || c == '/';
    if (!ok) return false;
  }
  return name.front() != '.' && name.back() != '.';
}

LeaseTable::LeaseTable(KeyValue* kv, std::string owner, int64_t ttl_ns, const Clock* clock)
    : kv_(kv),
      owner_(std::move(owner)),
      ttl_ns_(ttl_ns),
      clock_(clock != nullptr ? clock : &SystemClock::Get()) {}

Result<std::optional<Lease>> LeaseTable::Acquire(std::string_view resource) {
  if (!ValidLeaseName(resource)) {
    return Status::InvalidArgument("lease: resource name \"" + std::string(resource) +
                                   "\" is not [-_=./a-zA-Z0-9]{1,128}");
  }
  if (!ValidLeaseName(owner_)) {
    return Status::InvalidArgument("lease: owner name \"" + owner_ +
                                   "\" is not [-_=./a-zA-Z0-9]{1,128}");
  }
  const int64_t now = clock_->NowNs();
  const LeaseRecord mine{owner_, now + ttl_ns_};
  TL_ASSIGN_OR_RETURN(const std::optional<KvEntry> current, kv_->Get(resource));
  Result<uint64_t> written = Status::Internal("lease: not written");
  if (!current.has_value()) {
    written = kv_->Create(resource, EncodeLease(mine));
    if (!written.ok() && written.status().code() == Status::Code::kAlreadyExists) {
      return std::optional<Lease>();  // another owner created it first
    }
  } else {
    TL_ASSIGN_OR_RETURN(const LeaseRecord held, DecodeLease(current->value));
    if (held.owner != owner_ && held.expires_ns > now) return std::optional<Lease>();
    written = kv_->Update(resource, EncodeLease(mine), current->revision);
    if (!written.ok() && written.status().code() == Status::Code::kAborted) {
      return std::optional<Lease>();  // another owner got there first
    }
  }
  if (!written.ok()) return written.status();
  return std::optional<Lease>(Lease{std::string(resource), owner_, *written, mine.expires_ns});
}

Result<Lease> LeaseTable::Renew(const Lease& lease) {
  const LeaseRecord mine{owner_, clock_->NowNs() + ttl_ns_};
  TL_ASSIGN_OR_RETURN(const uint64_t rev,
                      kv_->Update(lease.resource, EncodeLease(mine), lease.revision));
  return Lease{lease.resource, owner_, rev, mine.expires_ns};
}

Status LeaseTable::Release(const Lease& lease) {
  const LeaseRecord ended{owner_, 0};
  const auto rev = kv_->Update(lease.resource, EncodeLease(ended), lease.revision);
  return rev.status();
}

Result<std::vector<std::pair<std::string, LeaseRecord>>> LeaseTable::List() {
  TL_ASSIGN_OR_RETURN(const std::vector<std::string> keys, kv_->Keys());
  std::vector<std::pair<std::string, LeaseRecord>> out;
  for (const std::string& k : keys) {
    TL_ASSIGN_OR_RETURN(const std::optional<KvEntry> e, kv_->Get(k));
    if (!e.has_value()) continue;
    TL_ASSIGN_OR_RETURN(LeaseRecord r, DecodeLease(e->value));
    out.emplace_back(k, std::move(r));
  }
  return out;
}

}  // namespace tripline::cluster
