// Shared pieces of the aggregator tests: temp dirs, synthetic events and an ingest client
// that speaks the real gRPC protocol, one request and one ack at a time.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/event.h"
#include "tests/support/temp_dir.h"
#include "tripline/v1/ingest.grpc.pb.h"

namespace tripline::testing {

constexpr int64_t kBaseTimeNs = 1'700'000'000LL * 1'000'000'000LL;

// A fresh directory under the system temp dir, removed with everything in it on
// destruction.

Event MakeLogin(const std::string& host, const std::string& user, int64_t time_ns,
                Outcome outcome = Outcome::kSuccess);
Event MakeExec(const std::string& host, const std::string& user, int64_t time_ns,
               const std::string& filename = "/usr/bin/id");
Event MakeFileOpen(const std::string& host, const std::string& user, int64_t time_ns,
                   const std::string& path = "/etc/shadow");
Event MakeHealth(const std::string& host, int64_t time_ns, uint64_t ringbuf_drops,
                 uint64_t spool_drops);
// A varied, deterministic stream: event i is at kBaseTimeNs + i ms, on host
// "host<i % hosts>", by "user<i % users>", kind cycling login/exec/file_open/net.
std::vector<Event> SyntheticEvents(size_t n, int hosts = 3, int users = 5, uint64_t salt = 0);

// Event i of a stream in which every event is distinct from every other (its time, and its
// file name or user), of every kind the sensor sends; logins and connections are rarer, as
// on a host. Event i is at kBaseTimeNs + i ms: IndexOfDistinct() maps a time back to i.
Event DistinctEvent(size_t i);
std::vector<Event> DistinctEvents(size_t n);
// The i of DistinctEvent(i) whose time is time_ns; nullopt for any other time.
std::optional<size_t> IndexOfDistinct(int64_t time_ns);

v1::IngestRequest HelloRequest(const std::string& sensor_id);
v1::IngestRequest BatchRequest(const std::string& sensor_id, uint64_t first_seq,
                               const std::vector<Event>& events);

// A synchronous bidi ingest stream. Each Send* writes one request and waits for its ack;
// when the server ends the stream instead, the ack is nullopt and Finish() tells why.
class IngestClient {
 public:
  explicit IngestClient(const std::string& target);
  // Over a channel of its own (no connection shared with another client) with `credentials`.
  IngestClient(const std::string& target,
               const std::shared_ptr<grpc::ChannelCredentials>& credentials);
  std::optional<v1::IngestAck> Send(const v1::IngestRequest& request);
  std::optional<v1::IngestAck> Hello(const std::string& sensor_id) {
    return Send(HelloRequest(sensor_id));
  }
  std::optional<v1::IngestAck> Batch(const std::string& sensor_id, uint64_t first_seq,
                                     const std::vector<Event>& events) {
    return Send(BatchRequest(sensor_id, first_seq, events));
  }
  // Writes a request without waiting for its ack (to leave one in flight).
  bool WriteOnly(const v1::IngestRequest& request) { return stream_->Write(request); }
  // Reads the next ack; nullopt when the stream has ended. May run on another thread than
  // WriteOnly (gRPC allows one reader and one writer at a time on a stream).
  std::optional<v1::IngestAck> ReadAck();
  // Half-closes (if not yet) and returns the stream's final status.
  grpc::Status Finish();

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestRequest, v1::IngestAck>> stream_;
  bool done_writing_ = false;
};

}  // namespace tripline::testing
