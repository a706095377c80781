// Sink: one SIEM output, able to deliver a run of records (incident revisions and audit
// events) in order.
//
// A sink is used by one thread (its output's delivery thread in Forwarder) and may keep a
// connection open between calls. Every blocking step (connect, TLS handshake, write, HTTP
// exchange) is bounded by the timeout given at construction, so a dead receiver costs its
// own thread a bounded wait and nothing else.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "aggregator/forward/forward_target.h"
#include "common/status.h"
#include "model/incident.h"
#include "tripline/v1/response.pb.h"

namespace tripline::forward {

// What an output delivers: an incident revision, or an audit event (incident_formats.h).
using ForwardRecord = std::variant<Incident, v1::AuditEvent>;

// What Send did with a run of records: the first `delivered + rejected` of them are
// done with (delivered, or refused for good by the receiver and not to be retried, such as
// an HTTP 400); when `error` is set, the rest were not delivered and are to be retried.
struct SendOutcome {
  size_t delivered = 0;
  size_t rejected = 0;
  Status error = Status::Ok();
  // The receiver refused the run as a whole, perhaps for one record of it: retry the rest
  // one record at a time, so that only a record at fault is refused.
  bool retry_one_by_one = false;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual SendOutcome Send(const std::vector<ForwardRecord>& records) = 0;
  // Drops any open connection (after an error, or to be reopened).
  virtual void Reset() = 0;
};

struct SinkOptions {
  std::string hostname;  // the aggregator's, for syslog HOSTNAME and HEC host
  std::string ca_file;   // PEM CAs for syslog+tls and https; empty: the system's
  std::string token;     // https Authorization credential; empty sends none
  int64_t timeout_ns = 10'000'000'000;
};

// The sink for a parsed --forward URL. Fails when its TLS configuration cannot be loaded
// (a CA file that does not parse); never connects here.
Result<std::unique_ptr<Sink>> MakeSink(const ForwardTarget& target, const SinkOptions& options);

// Sinks by kind (MakeSink picks one).
Result<std::unique_ptr<Sink>> MakeSyslogSink(const ForwardTarget& target,
                                             const SinkOptions& options);
Result<std::unique_ptr<Sink>> MakeHttpSink(const ForwardTarget& target, const SinkOptions& options);
Result<std::unique_ptr<Sink>> MakeFileSink(const ForwardTarget& target, const SinkOptions& options);

}  // namespace tripline::forward
