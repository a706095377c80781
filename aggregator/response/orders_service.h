// OrdersService: how approved actions reach the sensor of their host, and how what came of
// them comes back (the Orders service of proto/tripline/v1/response.proto,
// docs/response.md "Orders and signing").
//
//   Subscribe   a sensor names its host (with mutual TLS the certificate must allow it);
//               it receives at once an order for every action of that host that may run
//               now (approved within its approval, or a requested revert), then each new
//               one as a person approves or reverts an action (Offer). Orders are signed
//               with the aggregator's Ed25519 key; the sensor verifies before it acts.
//   Report      the sensor's report of an order; only the action's own host may report.
//
// Delivery follows the actions' state, not a queue: an order offered while the host's
// sensor is away is sent when it subscribes again, as long as the action is still approved
// (or its revert requested). Sending one twice is harmless: the sensor's ledger runs an
// order once.
//
// Threading: handlers run on gRPC threads, Offer on the thread that approved; everything
// shared is under mu_. The book and access control must outlive the service.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "aggregator/ingest/peer_identity.h"
#include "aggregator/response/action_book.h"
#include "sensor/response/action_order.h"
#include "tripline/v1/response.grpc.pb.h"

namespace tripline::response {

// Reads the secret key file written by --make-order-key: 128 hex digits (an Ed25519 secret
// key as libsodium stores it), surrounding whitespace allowed. InvalidArgument naming the
// file otherwise; a file others may read is refused (PermissionDenied).
Result<sensor::OrderSecretKey> ReadOrderKeyFile(const std::string& path);
// Makes a key pair, writes the secret key to `path` (mode 0600, not over an existing file)
// and returns the public key's hex for the sensors' order_public_key.
Result<std::string> WriteNewOrderKeyFile(const std::string& path);

class OrdersService final : public v1::Orders::CallbackService {
 public:
  // `key` nullopt: no order can be signed; Subscribe fails with FAILED_PRECONDITION saying
  // so. `access` nullptr: clear text, nothing enforced.
  OrdersService(ActionBook* book, std::optional<sensor::OrderSecretKey> key,
                const AccessControl* access);
  ~OrdersService() override;

  grpc::ServerWriteReactor<v1::SignedActionOrder>* Subscribe(
      grpc::CallbackServerContext* context, const v1::OrderSubscription* request) override;
  grpc::ServerUnaryReactor* Report(grpc::CallbackServerContext* context,
                                   const v1::ActionReport* request,
                                   v1::ReportReceipt* response) override;

  // Sends the order for `action` (just approved, or its revert just requested) to its
  // host's subscribed sensors. Nothing when none is subscribed: it goes at the next
  // subscription.
  void Offer(const v1::Action& action);

  // Sensors subscribed now.
  size_t subscribers() const;

  class Subscriber;

 private:
  friend class Subscriber;
  // The signed order for `action_id`, or the reason none can be made now.
  Result<v1::SignedActionOrder> Sign(std::string_view action_id, bool revert,
                                     const std::string& keep_path);
  void Remove(Subscriber* s);

  ActionBook* const book_;
  const std::optional<sensor::OrderSecretKey> key_;
  const AccessControl* const access_;
  mutable std::mutex mu_;
  std::multimap<std::string, Subscriber*> by_host_;  // GUARDED_BY(mu_)
};

}  // namespace tripline::response
