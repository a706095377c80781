#include "sensor/delivery_sink.h"

#include <time.h>

#include "common/log.h"
#include "tripline/v1/config.pb.h"

namespace tripline::sensor {
namespace {

int64_t ClockNs(clockid_t id) {
  struct timespec ts {};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

}  // namespace

Status DeliverySink::Emit(Event&& event) {
  Status s = client_->Submit(event);
  if (s.ok()) return s;
  // Spool write errors and oversized events are counted by the client and the event is
  // gone; the sensor keeps running. Only a stopped client is fatal.
  if (s.code() == Status::Code::kAborted) return s;
  if (submit_errors_++ % 1000 == 0) {
    TL_LOG(WARNING) << "delivery: " << s.ToString() << " (" << submit_errors_ << " so far)";
  }
  return Status::Ok();
}

Status DeliverySink::Close(int timeout_ms) {
  Status flushed =
      client_->Flush(clock_.MonotonicNs() + static_cast<int64_t>(timeout_ms) * kNanosPerMilli);
  client_->Stop();
  return flushed;
}

uint64_t DeliverySink::dropped() const {
  // Rejected events are lost to the aggregator too, so they count as drops in health.
  delivery::DeliveryStats stats = client_->Stats();
  return stats.spool_drops + stats.rejected_events;
}

uint64_t DeliverySink::protocol_violations() const { return client_->Stats().protocol_violations; }

SinkMetrics DeliverySink::Metrics() const {
  const delivery::DeliveryStats stats = client_->Stats();
  SinkMetrics m;
  m.spool_bytes = stats.spool_bytes;
  const uint64_t numbered = stats.next_seq > 0 ? stats.next_seq - 1 : 0;
  m.unacked_events = numbered > stats.durable_seq ? numbered - stats.durable_seq : 0;
  m.spool_drops = stats.spool_drops + stats.rejected_events;
  m.acked_events = stats.acked;
  m.reconnects = stats.reconnects;
  m.connected = stats.connected;
  return m;
}

Result<std::unique_ptr<EventSink>> MakeDeliverySink(const SensorSettings& settings,
                                                    const HostIdentity& identity) {
  delivery::DeliveryOptions options;
  options.target = settings.aggregator ? settings.aggregator->ToString() : std::string();
  options.host = identity.host;
  options.host_id = identity.host_id;
  options.version = "0.1.0";
  options.boot_time_ns = ClockNs(CLOCK_REALTIME) - ClockNs(CLOCK_BOOTTIME);
  delivery::ApplySensorConfig(settings.config, &options);
  if (options.spool.dir.empty()) {
    options.spool.dir = "/var/lib/tripline/spool/" + identity.host_id;
  }
  TL_ASSIGN_OR_RETURN(std::unique_ptr<delivery::DeliveryClient> client,
                      delivery::DeliveryClient::Create(options, SystemClock::Get()));
  TL_LOG(INFO) << "delivering to " << options.target << " as sensor " << client->sensor_id()
               << ", spool " << options.spool.dir;
  return std::unique_ptr<EventSink>(
      std::make_unique<DeliverySink>(std::move(client), SystemClock::Get()));
}

}  // namespace tripline::sensor
