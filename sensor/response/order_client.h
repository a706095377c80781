// OrderClient: the sensor's end of the response workflow (docs/response.md). It subscribes
// to the orders for its host (Orders.Subscribe), and for each one:
//
//   1. OrderVerifier: the aggregator's signature, this host, not expired, never carried out
//      (the ledger); anything else is refused, logged and counted, and nothing runs;
//   2. the ledger records it (fsynced) before it runs, so that it never runs twice;
//   3. ActionExecutor carries it out (or reverts it);
//   4. the report (what ran and what it said) goes back with Orders.Report.
//
// A stream that ends or cannot be opened is opened again after a backoff (doubling up to
// backoff_max_ms): on every new subscription the aggregator sends again what may run now,
// and the ledger turns what already ran into a no-op. Each report is written to
// reports_dir (one file per order, atomically) before it is sent and removed once the
// aggregator took it: a report the aggregator cannot be reached for, or one interrupted by
// a crash or restart, is sent with the next subscription.
//
// Threading: one thread of its own; Stop (or the destructor) cancels the stream and joins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "sensor/delivery/delivery_client.h"
#include "sensor/response/action_executor.h"
#include "sensor/response/action_order.h"
#include "tripline/v1/response.grpc.pb.h"
#include "tripline/v1/response.pb.h"

namespace grpc {
class ClientContext;
}

namespace tripline::sensor {

struct OrderClientOptions {
  std::string target;     // aggregator HOST:PORT
  std::string host;       // this sensor's host: orders must name it
  std::string sensor_id;  // for the subscription
  // "ADDRESS:PORT" by which this host reaches the aggregator (kept open by an isolation);
  // "" = target.
  std::string keep_path;
  delivery::TlsOptions tls;
  OrderPublicKey key{};     // the aggregator's order public key
  std::string ledger_path;  // the ledger of orders carried out (in the sensor's state dir)
  std::string reports_dir;  // reports not yet taken by the aggregator; "" keeps them in memory
  ExecutorOptions executor;
  int64_t backoff_initial_ms = 500;
  int64_t backoff_max_ms = 30000;
  int64_t report_timeout_ms = 10000;
};

struct OrderClientStats {
  uint64_t subscriptions = 0;  // streams opened
  uint64_t received = 0;       // orders received
  uint64_t refused = 0;        // refused by the verifier (forged, misaddressed, expired, ...)
  uint64_t repeated = 0;       // already carried out (the ledger): nothing ran
  uint64_t executed = 0;       // carried out, whatever the result
  uint64_t failed = 0;         // of which the executor reported an error
  uint64_t reports_sent = 0;
  uint64_t reports_pending = 0;  // not yet accepted by the aggregator
};

class OrderClient {
 public:
  // Opens the ledger and starts the thread. InvalidArgument for a missing target or host;
  // IoError when the ledger cannot be opened.
  static Result<std::unique_ptr<OrderClient>> Start(OrderClientOptions options,
                                                    const Clock& clock = SystemClock::Get());
  ~OrderClient();
  OrderClient(const OrderClient&) = delete;
  OrderClient& operator=(const OrderClient&) = delete;

  void Stop();
  OrderClientStats stats() const;

 private:
  OrderClient(OrderClientOptions options, const Clock& clock, ExecutedLedger ledger,
              std::shared_ptr<grpc::ChannelCredentials> credentials);
  void Loop();
  // One subscription from open to end; the reason it ended.
  Status Subscribe();
  void Handle(const v1::SignedActionOrder& signed_order);
  // Sends the pending reports, oldest first, over the subscription's channel; stops at the
  // first that fails.
  void FlushReports(v1::Orders::Stub& stub);
  // Reads the reports an earlier run left in reports_dir.
  Status LoadReports();
  // Writes `report` to reports_dir (when set) and queues it.
  void KeepReport(v1::ActionReport report);

  const OrderClientOptions options_;
  const Clock& clock_;
  ExecutedLedger ledger_;  // the loop's thread only
  const OrderVerifier verifier_;
  ActionExecutor executor_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                   // GUARDED_BY(mu_)
  grpc::ClientContext* context_ = nullptr;  // GUARDED_BY(mu_); the open stream's
  struct PendingReport {
    v1::ActionReport report;
    std::string file;  // its file in reports_dir; "" when kept in memory only
  };
  std::deque<PendingReport> reports_;  // GUARDED_BY(mu_)
  OrderClientStats stats_;             // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace tripline::sensor
