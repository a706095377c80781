#include "aggregator/server/aggregator_server.h"

#include <grpcpp/resource_quota.h>

#include <chrono>

#include "aggregator/server/rules_service.h"

namespace tripline {

Result<std::unique_ptr<AggregatorServer>> AggregatorServer::Start(
    const AggregatorServerOptions& options, Store* store, IngestObserver* observer) {
  std::unique_ptr<AggregatorServer> server(new AggregatorServer());
  server->access_ = std::make_unique<AccessControl>(options.verify_clients);
  IngestOptions ingest = options.ingest;
  ingest.access = server->access_.get();
  server->ingest_ = std::make_unique<IngestService>(store, observer, ingest);
  server->query_ =
      std::make_unique<QueryService>(store, server->ingest_.get(), observer, server->access_.get(),
                                     options.baselines, options.audit);
  if (options.extend_stats) server->query_->SetStatsExtension(options.extend_stats);

  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(
      options.listen.ToString(),
      options.credentials ? options.credentials : grpc::InsecureServerCredentials(),
      &selected_port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  grpc::ResourceQuota quota("tripline-aggregator");
  quota.Resize(options.memory_quota_bytes);
  builder.SetResourceQuota(quota);
  builder.RegisterService(server->ingest_.get());
  builder.RegisterService(server->query_.get());
  server->rules_ = std::make_unique<RulesService>(options.rules, server->access_.get());
  builder.RegisterService(server->rules_.get());
  for (grpc::Service* service : options.services) builder.RegisterService(service);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || selected_port == 0) {
    return Status::Unavailable("cannot listen on " + options.listen.ToString());
  }
  server->address_ = options.listen;
  server->address_.port = static_cast<uint16_t>(selected_port);
  return server;
}

AggregatorServer::~AggregatorServer() { Shutdown(0); }

void AggregatorServer::Shutdown(int64_t grace_ns) {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::nanoseconds(grace_ns));
  server_->Wait();
}

}  // namespace tripline
