// AddressBook: which host has which address, shared by the ingest nodes of the scaled-out
// mode (docs/scale-out.md) so that an outbound connection is published to the partition of
// the host it connects to, where the login it leads to is correlated with it.
//
// The map lives in the key-value bucket tl-addresses: key "addr." and the address in hex,
// value the host's name. Every book mirrors the whole bucket through a watcher, so a
// lookup never waits for the cluster. Addresses are learned from the events: those a
// sensor's health reports list (its interfaces', from its start on), the local address of
// a connection a host accepted or made, and of a login. The first host to
// report an address claims it; a second host reporting the same one makes it shared (the
// value ""), for good: an address several hosts use (a container bridge's, a NAT'ed
// range) names none of them, and a connection to it stays with its source host. A host
// readdressed onto another's former address is therefore not routed to either.
// Loopback, unspecified and link-local addresses are never learned.
//
// Threading: every method may be called concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "aggregator/cluster/jetstream.h"
#include "common/status.h"

namespace tripline::cluster {

inline constexpr const char* kAddressesBucket = "tl-addresses";

// "addr." and the address in hex (keys allow [-_=./a-zA-Z0-9]; IPv6 has ':'), and back
// (nullopt for a key that is not one).
std::string AddressKey(std::string_view addr);
std::optional<std::string> AddressOfKey(std::string_view key);
// Whether an address may be learned: not loopback, unspecified or link-local, at most 64
// printable characters.
bool RoutableAddress(std::string_view addr);

struct AddressBookStats {
  uint64_t learned = 0;       // claims and shares this book wrote
  uint64_t write_errors = 0;  // writes the cluster refused or did not answer
  uint64_t bad_values = 0;    // values in the bucket that are no host name (ignored)
  uint64_t watch_errors = 0;  // the watcher failed and was made anew
};

class AddressBook {
 public:
  // Not owned; must outlive the book. Starts mirroring the bucket at once.
  explicit AddressBook(KeyValue* bucket);
  ~AddressBook();
  AddressBook(const AddressBook&) = delete;
  AddressBook& operator=(const AddressBook&) = delete;

  // Waits until the bucket's values present at the start are mirrored; false after
  // timeout_ms. Lookups before then may miss addresses the cluster knows.
  bool WaitLoaded(int64_t timeout_ms);
  // Records that `host` has `addr`: claims it when nobody has, shares it when another host
  // has. Nothing is written when the mirror already says so. An error leaves the book as
  // it was (the next report of the address tries again).
  Status Learn(std::string_view addr, std::string_view host);
  // The host that claimed `addr`; nullopt when none did or it is shared.
  std::optional<std::string> HostOf(std::string_view addr) const;
  size_t size() const;
  AddressBookStats stats() const;

 private:
  void Watch();
  // Applies a change to the mirror (from the watcher or from a write of this book).
  void Apply(const std::string& addr, std::optional<std::string> value, uint64_t revision);

  KeyValue* bucket_;
  mutable std::mutex mu_;
  std::condition_variable loaded_cv_;
  bool loaded_ = false;
  struct Entry {
    std::string host;  // "" when shared
    uint64_t revision = 0;
  };
  std::unordered_map<std::string, Entry> map_;
  AddressBookStats stats_;
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace tripline::cluster
