// AggregatorServer: the gRPC server that carries the ingest and query services.
//
// Used by tripline-aggregator, by the tests and by the benchmarks, so that all of them run
// the same wiring (message size limit, services, address handling).
//
// Threading: Start and Shutdown from one thread; the accessors are thread-safe.
// The store and the observer are not owned and must outlive the server.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "aggregator/ingest/ingest_service.h"
#include "aggregator/ingest/peer_identity.h"
#include "aggregator/query/query_service.h"
#include "aggregator/rules/sigma.h"
#include "aggregator/store/store.h"
#include "common/host_port.h"

namespace tripline {

// Largest request a sensor may send: 4096 events of ~4 KB each. Bigger messages are
// refused by gRPC with RESOURCE_EXHAUSTED before any allocation for their content; the
// ingest service counts a request's events on the wire before parsing it, so a request of
// this size made of tiny events costs no more than its bytes.
constexpr int kMaxReceiveMessageBytes = 16 << 20;

constexpr size_t kDefaultMemoryQuotaBytes = size_t{1} << 30;

struct AggregatorServerOptions {
  HostPort listen;  // port 0 picks a free port
  // nullptr means grpc::InsecureServerCredentials().
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // The credentials verify client certificates (MakeServerCredentials with TLS): every call
  // is then authorized by the roles and bindings in the caller's certificate
  // (aggregator/ingest/peer_identity.h). False: clear text, nothing enforced.
  bool verify_clients = false;
  IngestOptions ingest;
  int max_receive_message_bytes = kMaxReceiveMessageBytes;
  // gRPC's resource quota: the memory its transports and calls may take together (buffers
  // of requests being read included). Past it, gRPC stops reading from connections
  // instead of growing.
  size_t memory_quota_bytes = kDefaultMemoryQuotaBytes;
  // Answers GetBaseline and Feedback (the correlation engine); not owned, may be nullptr.
  BaselineProvider* baselines = nullptr;
  // Adds figures to every GetStats answer (QueryService::SetStatsExtension); may be empty.
  std::function<void(v1::Stats*)> extend_stats;
  // The Sigma rules the pipeline runs, served by the Rules service; nullptr: none.
  std::shared_ptr<rules::RuleEngine> rules;
  // Answers GetAudit (aggregator/audit/); not owned, may be nullptr.
  AuditProvider* audit = nullptr;
  // More services carried by the same server (the response workflow); not owned, must
  // outlive the server.
  std::vector<grpc::Service*> services;
};

class AggregatorServer {
 public:
  // Binds and starts serving; fails when the address cannot be bound.
  static Result<std::unique_ptr<AggregatorServer>> Start(const AggregatorServerOptions& options,
                                                         Store* store, IngestObserver* observer);
  // An ingest node of the scaled-out mode (docs/scale-out.md): the ingest service alone,
  // writing to `sink`, with the same limits and access control. query() is unavailable.
  static Result<std::unique_ptr<AggregatorServer>> StartIngest(
      const AggregatorServerOptions& options, IngestSink* sink);
  // A worker of the scaled-out mode: the query service alone, over the worker's store
  // (its partitions' events and incidents), with the same access control. ingest() is
  // unavailable.
  static Result<std::unique_ptr<AggregatorServer>> StartQuery(
      const AggregatorServerOptions& options, Store* store);
  ~AggregatorServer();

  // The address actually bound, with the real port.
  const HostPort& address() const { return address_; }
  IngestService& ingest() { return *ingest_; }  // not on a worker (StartQuery)
  QueryService& query() { return *query_; }     // not on an ingest node (StartIngest)

  // Stops accepting calls and waits until every call is over. Streams still open after
  // `grace_ns` are cancelled; a batch being written finishes its write (it is then either
  // acked or, if its stream is already cancelled, not acked and resent by the sensor).
  void Shutdown(int64_t grace_ns);

 private:
  AggregatorServer() = default;
  // Binds the listener with the options' limits and starts serving `services`.
  Status Serve(const AggregatorServerOptions& options, const std::vector<grpc::Service*>& services);

  HostPort address_;
  std::unique_ptr<AccessControl> access_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<QueryService> query_;
  std::unique_ptr<grpc::Service> rules_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

}  // namespace tripline
