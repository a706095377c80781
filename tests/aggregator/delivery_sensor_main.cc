// A sensor process reduced to its delivery path, for the crash-window tests: the real
// DeliveryClient submits testing::DistinctEvent(i) for i in [--from, --to) to the
// aggregator at --target with its spool in --spool, then flushes and exits. The tests start
// it with TRIPLINE_FAILPOINTS set to have it SIGKILLed at a named point, and start it again
// on the same spool, as a sensor restarted after a crash.
//
//   delivery_sensor --target HOST:PORT --spool DIR --from I --to J [--flush-every K]
//                   [--no-flush]
//
// --flush-every K waits for the acknowledgement of everything submitted after every K
// events, so that a failpoint's kill finds part of the stream delivered and part spooled.
// Prints "delivered durable_seq=N sent=N resent=N recovered=N clean=0|1" and exits 0 when every
// event is acknowledged (with
// --no-flush: stops at once, leaving what is unacknowledged in the spool, and exits 0);
// exits 1 when the flush times out, 2 on bad arguments or a client that cannot start.
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/clock.h"
#include "sensor/delivery/delivery_client.h"
#include "tests/aggregator/test_support.h"

int main(int argc, char** argv) {
  using namespace tripline;
  std::string target, spool;
  size_t from = 0, to = 0;
  bool flush = true;
  size_t flush_every = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--target" && has_value) {
      target = argv[++i];
    } else if (arg == "--spool" && has_value) {
      spool = argv[++i];
    } else if (arg == "--from" && has_value) {
      from = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--to" && has_value) {
      to = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--flush-every" && has_value) {
      flush_every = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--no-flush") {
      flush = false;
    } else {
      std::cerr << "usage: delivery_sensor --target HOST:PORT --spool DIR --from I --to J "
                   "[--flush-every K] [--no-flush]\n";
      return 2;
    }
  }
  if (target.empty() || spool.empty() || from > to) {
    std::cerr << "delivery_sensor: --target, --spool and --from <= --to are required\n";
    return 2;
  }
  delivery::DeliveryOptions o;
  o.target = target;
  o.spool.dir = spool;
  o.host = "host0";
  o.host_id = "id-host0";
  o.version = "delivery-sensor";
  o.batch_max_events = 64;  // many batches, so a failpoint's N-th hit lands mid-stream
  o.batch_max_delay_ms = 5;
  o.backoff_initial_ms = 20;
  o.backoff_max_ms = 300;
  auto client = delivery::DeliveryClient::Create(o, SystemClock::Get());
  if (!client.ok()) {
    std::cerr << "delivery_sensor: " << client.status().ToString() << "\n";
    return 2;
  }
  for (size_t i = from; i < to; ++i) {
    const Status s = (*client)->Submit(testing::DistinctEvent(i));
    if (!s.ok()) {
      std::cerr << "delivery_sensor: submit " << i << ": " << s.ToString() << "\n";
      return 1;
    }
    if (flush_every != 0 && (i + 1 - from) % flush_every == 0) {
      const Status f = (*client)->Flush(SystemClock::Get().MonotonicNs() + 60 * kNanosPerSecond);
      if (!f.ok()) {
        std::cerr << "delivery_sensor: flush after " << i << ": " << f.ToString() << "\n";
        return 1;
      }
    }
  }
  if (!flush) {
    (*client)->Stop();
    return 0;
  }
  const Status flushed = (*client)->Flush(SystemClock::Get().MonotonicNs() + 60 * kNanosPerSecond);
  const delivery::DeliveryStats stats = (*client)->Stats();
  (*client)->Stop();
  if (!flushed.ok()) {
    std::cerr << "delivery_sensor: " << flushed.ToString() << "; " << stats.last_error << "\n";
    return 1;
  }
  const delivery::SpoolRecovery& recovered = (*client)->spool_recovery();
  std::cout << "delivered durable_seq=" << stats.durable_seq << " sent=" << stats.sent_events
            << " resent=" << stats.resent_events << " recovered=" << recovered.records
            << " clean=" << recovered.clean_shutdown << std::endl;
  return 0;
}
