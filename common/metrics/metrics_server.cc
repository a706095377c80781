#include "common/metrics/metrics_server.h"

#include <httplib.h>

#include <chrono>

#include "common/metrics/metrics_text.h"

namespace tripline {

Result<HostPort> ParseMetricsAddress(std::string_view text) {
  if (!text.empty() && text.find(':') == std::string_view::npos) {
    return ParseHostPort("127.0.0.1:" + std::string(text));
  }
  return ParseHostPort(text);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const HostPort& listen,
                                                            std::function<std::string()> collect) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->server_ = std::make_unique<httplib::Server>();
  s->server_->new_task_queue = [] { return new httplib::ThreadPool(1); };
  s->server_->Get("/metrics", [collect = std::move(collect)](const httplib::Request&,
                                                             httplib::Response& response) {
    response.set_content(collect(), kMetricsContentType);
  });
  int port = listen.port;
  if (port == 0) {
    port = s->server_->bind_to_any_port(listen.host);
  } else if (!s->server_->bind_to_port(listen.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return Status::Unavailable("metrics: cannot listen on " + listen.ToString());
  }
  s->address_ = HostPort{listen.host, static_cast<uint16_t>(port)};
  httplib::Server* server = s->server_.get();
  s->thread_ = std::thread([server] { server->listen_after_bind(); });
  // stop() before the loop runs would be lost; wait (briefly) until it does.
  for (int i = 0; i < 2000 && !server->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return s;
}

MetricsServer::~MetricsServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tripline
