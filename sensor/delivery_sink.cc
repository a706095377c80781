#include "sensor/delivery_sink.h"

#include <netdb.h>
#include <sys/socket.h>
#include <time.h>

#include "common/host_port.h"
#include "common/log.h"
#include "sensor/delivery/sensor_id.h"
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

namespace {

// "ADDRESS:PORT" of the aggregator as this host reaches it: an isolation rule needs an
// address, so a name is resolved now (the first address it has).
std::string KeepPath(const HostPort& target) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(target.port);
  if (getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return target.ToString();  // the executor refuses an isolation it cannot keep open
  }
  char host[NI_MAXHOST];
  std::string out = target.ToString();
  if (getnameinfo(found->ai_addr, found->ai_addrlen, host, sizeof host, nullptr, 0,
                  NI_NUMERICHOST) == 0) {
    out = std::string(host) + ":" + port;
  }
  freeaddrinfo(found);
  return out;
}

}  // namespace

Result<std::unique_ptr<OrderClient>> StartOrderClient(const SensorSettings& settings,
                                                      const HostIdentity& identity) {
  if (settings.config.order_public_key().empty()) {
    TL_LOG(INFO) << "no order_public_key: this sensor carries out no response action";
    return std::unique_ptr<OrderClient>();
  }
  if (!settings.aggregator) return Status::InvalidArgument("orders need an aggregator");
  delivery::DeliveryOptions delivery;
  delivery.target = settings.aggregator->ToString();
  delivery::ApplySensorConfig(settings.config, &delivery);
  if (delivery.spool.dir.empty())
    delivery.spool.dir = "/var/lib/tripline/spool/" + identity.host_id;
  OrderClientOptions options;
  options.target = delivery.target;
  options.host = identity.host;
  options.tls = delivery.tls;
  TL_ASSIGN_OR_RETURN(options.key, ParseOrderPublicKey(settings.config.order_public_key()));
  options.sensor_id = delivery.sensor_id;
  if (options.sensor_id.empty()) {
    TL_ASSIGN_OR_RETURN(options.sensor_id, delivery::LoadOrCreateSensorId(delivery.spool.dir));
  }
  options.ledger_path = delivery.spool.dir + "/actions-executed";
  options.reports_dir = delivery.spool.dir + "/action-reports";
  options.keep_path = KeepPath(*settings.aggregator);
  if (!settings.config.order_net_namespace().empty()) {
    options.executor.net_prefix = {"/usr/bin/nsenter",
                                   "--net=" + settings.config.order_net_namespace()};
  }
  TL_ASSIGN_OR_RETURN(auto client, OrderClient::Start(std::move(options)));
  TL_LOG(INFO) << "subscribed to the action orders of host " << identity.host << " (ledger "
               << delivery.spool.dir << "/actions-executed)";
  return client;
}

}  // namespace tripline::sensor
