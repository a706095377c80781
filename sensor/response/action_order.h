// Signed action orders: how an approved response action reaches a host, and what a sensor
// checks before it lets one run (docs/response.md, "Signing").
//
// The aggregator signs each order with its Ed25519 secret key (libsodium); the sensor is
// configured with the matching public key and carries out an order only when all hold:
//   - the signature verifies over the context "tripline action order v1" NUL + the order's
//     bytes (so a signature made for anything else never verifies as an order);
//   - the order names this sensor's host;
//   - the sensor's clock is before not_after_ns (the approval's expiry);
//   - (action_id, revert) is not in the ledger of orders this host already carried out.
// Anything else is refused with the reason, and nothing runs.
//
// ExecutedLedger persists the carried-out ids in the sensor's state directory, one line
// each, appended and fsynced before the order runs: a crash between the two leaves an order
// recorded but not run (it is never run twice; the aggregator sees no report and a person
// can propose it again).
//
// Threading: OrderVerifier is immutable; ExecutedLedger is not thread-safe (the sensor
// handles orders one at a time).
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tripline/v1/response.pb.h"

namespace tripline::sensor {

inline constexpr size_t kOrderPublicKeyBytes = 32;
inline constexpr size_t kOrderSecretKeyBytes = 64;

using OrderPublicKey = std::array<uint8_t, kOrderPublicKeyBytes>;
using OrderSecretKey = std::array<uint8_t, kOrderSecretKeyBytes>;

// A new key pair (tripline-aggregator --make-order-key, and tests).
Status MakeOrderKeyPair(OrderPublicKey* pub, OrderSecretKey* secret);
// 64 hex digits -> key; InvalidArgument otherwise.
Result<OrderPublicKey> ParseOrderPublicKey(std::string_view hex);
std::string OrderPublicKeyHex(const OrderPublicKey& key);

// The aggregator's side.
Result<v1::SignedActionOrder> SignOrder(const v1::ActionOrder& order, const OrderSecretKey& secret);

class ExecutedLedger {
 public:
  // Loads (or creates) `path`. IoError when it cannot be read or created.
  static Result<ExecutedLedger> Open(const std::string& path);
  bool Contains(std::string_view action_id, bool revert) const;
  // Appends and fsyncs before returning.
  Status Record(std::string_view action_id, bool revert);

 private:
  explicit ExecutedLedger(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::set<std::string, std::less<>> done_;
};

class OrderVerifier {
 public:
  OrderVerifier(OrderPublicKey key, std::string host) : key_(key), host_(std::move(host)) {}
  // The order, when it may run now; PermissionDenied with the reason otherwise
  // (InvalidArgument for bytes that are not an order, AlreadyExists for one this host
  // already carried out).
  Result<v1::ActionOrder> Verify(const v1::SignedActionOrder& signed_order, int64_t now_ns,
                                 const ExecutedLedger& ledger) const;

 private:
  const OrderPublicKey key_;
  const std::string host_;
};

}  // namespace tripline::sensor
