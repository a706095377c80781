// DeliverySink: `--output grpc`, events handed to the DeliveryClient (sensor/delivery/),
// which numbers, spools and streams them to the aggregator.
//
// Threading: Emit/Flush are called by the event loop thread; the client runs its own
// threads behind Submit().
#pragma once

#include <memory>

#include "common/status.h"
#include "sensor/config.h"
#include "sensor/delivery/delivery_client.h"
#include "sensor/event_sink.h"
#include "sensor/host_identity.h"
#include "sensor/response/order_client.h"

namespace tripline::sensor {

class DeliverySink final : public EventSink {
 public:
  DeliverySink(std::unique_ptr<delivery::DeliveryClient> client, const Clock& clock)
      : client_(std::move(client)), clock_(clock) {}

  Status Emit(Event&& event) override;
  // Nothing to do per poll round: the client batches on its own deadline.
  Status Flush() override { return Status::Ok(); }
  // Waits for acknowledgements up to `timeout_ms`, then stops the client. What is not
  // acknowledged by then stays in the spool for the next start.
  Status Close(int timeout_ms) override;
  uint64_t dropped() const override;
  uint64_t protocol_violations() const override;
  SinkMetrics Metrics() const override;

 private:
  std::unique_ptr<delivery::DeliveryClient> client_;
  const Clock& clock_;
  uint64_t submit_errors_ = 0;
};

// Builds the client from the settings: target, spool (--spool-dir, else
// /var/lib/tripline/spool/<host_id> so several --scope uts sensors on one machine never
// share a spool), batching and TLS from the config file, and the host identity for the
// hello.
Result<std::unique_ptr<EventSink>> MakeDeliverySink(const SensorSettings& settings,
                                                    const HostIdentity& identity);

// The subscription to this host's action orders (docs/response.md), when the configuration
// gives the aggregator's order_public_key; nullptr when it does not (no order is ever
// carried out). The ledger lives in the spool directory, beside the sensor id.
Result<std::unique_ptr<OrderClient>> StartOrderClient(const SensorSettings& settings,
                                                      const HostIdentity& identity);

}  // namespace tripline::sensor
