#include "aggregator/server/aggregator_server.h"

#include <grpcpp/resource_quota.h>

#include <chrono>

#include "aggregator/server/rules_service.h"

namespace tripline {

Status AggregatorServer::Serve(const AggregatorServerOptions& options,
                               const std::vector<grpc::Service*>& services) {
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
  for (grpc::Service* service : services) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || selected_port == 0) {
    return Status::Unavailable("cannot listen on " + options.listen.ToString());
  }
  address_ = options.listen;
  address_.port = static_cast<uint16_t>(selected_port);
  return Status::Ok();
}

Result<std::unique_ptr<AggregatorServer>> AggregatorServer::StartIngest(
    const AggregatorServerOptions& options, IngestSink* sink) {
  std::unique_ptr<AggregatorServer> server(new AggregatorServer());
  server->access_ = std::make_unique<AccessControl>(options.verify_clients);
  IngestOptions ingest = options.ingest;
  ingest.access = server->access_.get();
  server->ingest_ = std::make_unique<IngestService>(sink, nullptr, ingest);
  TL_RETURN_IF_ERROR(server->Serve(options, {server->ingest_.get()}));
  return server;
}

Result<std::unique_ptr<AggregatorServer>> AggregatorServer::StartQuery(
    const AggregatorServerOptions& options, Store* store) {
  std::unique_ptr<AggregatorServer> server(new AggregatorServer());
  server->access_ = std::make_unique<AccessControl>(options.verify_clients);
  server->query_ = std::make_unique<QueryService>(store, nullptr, nullptr, server->access_.get());
  if (options.extend_stats) server->query_->SetStatsExtension(options.extend_stats);
  TL_RETURN_IF_ERROR(server->Serve(options, {server->query_.get()}));
  return server;
}

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
  server->rules_ = std::make_unique<RulesService>(options.rules, server->access_.get());
  std::vector<grpc::Service*> services = {server->ingest_.get(), server->query_.get(),
                                          server->rules_.get()};
  services.insert(services.end(), options.services.begin(), options.services.end());
  TL_RETURN_IF_ERROR(server->Serve(options, services));
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
