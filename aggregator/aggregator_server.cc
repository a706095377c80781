#include "aggregator/aggregator_server.h"

#include <chrono>

namespace tripline {

Result<std::unique_ptr<AggregatorServer>> AggregatorServer::Start(
    const AggregatorServerOptions& options, Store* store, IngestObserver* observer) {
  std::unique_ptr<AggregatorServer> server(new AggregatorServer());
  server->ingest_ = std::make_unique<IngestService>(store, observer, options.ingest);
  server->query_ = std::make_unique<QueryService>(store, server->ingest_.get(), observer);

  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(
      options.listen.ToString(),
      options.credentials ? options.credentials : grpc::InsecureServerCredentials(),
      &selected_port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.RegisterService(server->ingest_.get());
  builder.RegisterService(server->query_.get());
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
