#include "aggregator/cluster/address_book.h"

#include <chrono>
#include <cstdio>

#include "aggregator/correlate/attack_stages.h"
#include "common/hex.h"

namespace tripline::cluster {
namespace {

constexpr size_t kMaxAddressBytes = 64;
constexpr size_t kMaxHostBytes = 256;

bool Printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string AddressKey(std::string_view addr) { return HexKey("addr.", addr); }

std::optional<std::string> AddressOfKey(std::string_view key) {
  constexpr std::string_view kPrefix = "addr.";
  if (key.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  key.remove_prefix(kPrefix.size());
  std::string addr;
  if (key.empty() || !HexDecode(key, &addr) || !RoutableAddress(addr)) return std::nullopt;
  return addr;
}

bool RoutableAddress(std::string_view addr) {
  if (addr.size() > kMaxAddressBytes || !Printable(addr)) return false;
  if (correlate::IsUninformativeAddress(addr)) return false;
  return !StartsWithNoCase(addr, "169.254.") && !StartsWithNoCase(addr, "fe80:") &&
         !StartsWithNoCase(addr, "::ffff:169.254.");
}

AddressBook::AddressBook(KeyValue* bucket) : bucket_(bucket) {
  watcher_ = std::thread([this] { Watch(); });
}

AddressBook::~AddressBook() {
  stop_ = true;
  watcher_.join();
}

void AddressBook::Watch() {
  std::unique_ptr<KvWatcher> w;
  while (!stop_) {
    if (w == nullptr) {
      auto made = bucket_->Watch();
      if (!made.ok()) {
        {
          std::lock_guard<std::mutex> l(mu_);
          ++stats_.watch_errors;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      w = std::move(*made);
    }
    auto next = w->Next(100);
    if (!next.ok()) {
      std::fprintf(stderr, "tripline: address book: %s; watching anew\n",
                   next.status().ToString().c_str());
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.watch_errors;
      w.reset();
      continue;
    }
    if (!next->has_value()) continue;
    KvChange& c = **next;
    if (c.key.empty()) {
      std::lock_guard<std::mutex> l(mu_);
      loaded_ = true;
      loaded_cv_.notify_all();
      continue;
    }
    std::optional<std::string> addr = AddressOfKey(c.key);
    if (!addr || (c.value && (c.value->size() > kMaxHostBytes || !Printable(*c.value)))) {
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.bad_values;
      continue;
    }
    Apply(*addr, std::move(c.value), c.revision);
  }
}

void AddressBook::Apply(const std::string& addr, std::optional<std::string> value,
                        uint64_t revision) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = map_.find(addr);
  if (it != map_.end() && it->second.revision >= revision) return;  // an older change
  if (!value) {
    if (it != map_.end()) map_.erase(it);
    return;
  }
  map_[addr] = Entry{std::move(*value), revision};
}

bool AddressBook::WaitLoaded(int64_t timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  return loaded_cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return loaded_; });
}

Status AddressBook::Learn(std::string_view addr_view, std::string_view host) {
  if (!RoutableAddress(addr_view) || host.empty() || host.size() > kMaxHostBytes ||
      !Printable(host)) {
    return Status::Ok();
  }
  const std::string addr(addr_view);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = map_.find(addr);
    if (it != map_.end() && (it->second.host == host || it->second.host.empty())) {
      return Status::Ok();
    }
  }
  const std::string key = AddressKey(addr);
  // Claim it, or share it when another host claimed it; a writer racing this one makes
  // the bucket's value move under it: read again and decide again (a few times at most:
  // each round the value can only go from absent to claimed to shared).
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto now = bucket_->Get(key);
    Result<uint64_t> written = Status::Ok();
    std::string value;
    if (!now.ok()) {
      written = now.status();
    } else if (!now->has_value()) {
      value = std::string(host);
      written = bucket_->Create(key, value);
    } else if ((*now)->value == host || (*now)->value.empty()) {
      Apply(addr, (*now)->value, (*now)->revision);
      return Status::Ok();
    } else {
      written = bucket_->Update(key, value, (*now)->revision);  // shared: ""
    }
    if (written.ok()) {
      Apply(addr, value, *written);
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.learned;
      return Status::Ok();
    }
    if (written.status().code() == Status::Code::kAlreadyExists ||
        written.status().code() == Status::Code::kAborted) {
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.write_errors;
    return written.status();
  }
  return Status::Aborted("cluster: address " + addr + " kept changing while " + std::string(host) +
                         " reported it");
}

std::optional<std::string> AddressBook::HostOf(std::string_view addr) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = map_.find(std::string(addr));
  if (it == map_.end() || it->second.host.empty()) return std::nullopt;
  return it->second.host;
}

size_t AddressBook::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return map_.size();
}

AddressBookStats AddressBook::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

}  // namespace tripline::cluster
