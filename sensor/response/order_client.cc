#include "sensor/response/order_client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>

#include "common/log.h"
#include "sensor/delivery/atomic_file.h"
#include "tripline/v1/response.grpc.pb.h"

namespace tripline::sensor {
namespace {

// A stream that lasted this long was healthy: the next failure starts the backoff afresh.
constexpr int64_t kHealthyStreamNs = 10 * kNanosPerSecond;
// Keepalive pings on an idle subscription, so that an aggregator that vanished without
// closing the connection is noticed. Not under gRPC servers' default minimum interval
// between pings (5 minutes), which would end the connection.
constexpr int kKeepaliveMs = 300'000;

Status FromGrpc(const grpc::Status& s, const std::string& what) {
  const std::string msg = what + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED: return Status::PermissionDenied(msg);
    case grpc::StatusCode::FAILED_PRECONDITION: return Status::Unsupported(msg);
    case grpc::StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(msg);
    case grpc::StatusCode::NOT_FOUND: return Status::NotFound(msg);
    case grpc::StatusCode::ABORTED: return Status::Aborted(msg);
    default: return Status::Unavailable(msg);
  }
}

constexpr std::string_view kReportSuffix = ".report";

// The file name of an order's report: its id where that is a plain name, else its hex.
std::string ReportFileName(const v1::ActionReport& r) {
  std::string id = r.action_id();
  const bool plain =
      !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
      });
  if (!plain) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : id.substr(0, 64)) {
      hex.push_back(kHex[c >> 4]);
      hex.push_back(kHex[c & 15]);
    }
    id = "x" + hex;
  }
  return id + (r.revert() ? "-revert" : "-run") + std::string(kReportSuffix);
}

}  // namespace

Result<std::unique_ptr<OrderClient>> OrderClient::Start(OrderClientOptions options,
                                                        const Clock& clock) {
  if (options.target.empty()) return Status::InvalidArgument("order client: no aggregator");
  if (options.host.empty()) return Status::InvalidArgument("order client: no host name");
  if (options.ledger_path.empty()) return Status::InvalidArgument("order client: no ledger");
  if (options.backoff_initial_ms <= 0 || options.backoff_max_ms < options.backoff_initial_ms) {
    return Status::InvalidArgument("order client: backoff must satisfy 0 < initial <= max");
  }
  if (options.keep_path.empty()) options.keep_path = options.target;
  TL_ASSIGN_OR_RETURN(ExecutedLedger ledger, ExecutedLedger::Open(options.ledger_path));
  TL_ASSIGN_OR_RETURN(auto credentials, delivery::MakeChannelCredentials(options.tls));
  if (!options.reports_dir.empty()) {
    TL_RETURN_IF_ERROR(delivery::PrepareOwnDirectory(options.reports_dir));
  }
  std::unique_ptr<OrderClient> client(
      new OrderClient(std::move(options), clock, std::move(ledger), std::move(credentials)));
  TL_RETURN_IF_ERROR(client->LoadReports());
  client->thread_ = std::thread([c = client.get()] { c->Loop(); });
  return client;
}

OrderClient::OrderClient(OrderClientOptions options, const Clock& clock, ExecutedLedger ledger,
                         std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)),
      clock_(clock),
      ledger_(std::move(ledger)),
      verifier_(options_.key, options_.host),
      executor_(options_.executor),
      credentials_(std::move(credentials)) {}

OrderClient::~OrderClient() { Stop(); }

void OrderClient::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

OrderClientStats OrderClient::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  OrderClientStats s = stats_;
  s.reports_pending = reports_.size();
  return s;
}

void OrderClient::Loop() {
  int64_t backoff_ms = options_.backoff_initial_ms;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    const int64_t started = clock_.MonotonicNs();
    const Status ended = Subscribe();
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
      if (clock_.MonotonicNs() - started >= kHealthyStreamNs) {
        backoff_ms = options_.backoff_initial_ms;
      }
      if (ended.code() == Status::Code::kPermissionDenied ||
          ended.code() == Status::Code::kUnsupported ||
          ended.code() == Status::Code::kInvalidArgument) {
        TL_LOG(ERROR) << "orders: " << ended.message() << "; trying again in " << backoff_ms
                      << " ms";
      } else {
        TL_LOG(INFO) << "orders: " << ended.message() << "; subscribing again in " << backoff_ms
                     << " ms";
      }
      cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return stopping_; });
      if (stopping_) return;
    }
    backoff_ms = std::min(backoff_ms * 2, options_.backoff_max_ms);
  }
}

Status OrderClient::Subscribe() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveMs);
  if (options_.tls.enabled && !options_.tls.server_name.empty()) {
    args.SetSslTargetNameOverride(options_.tls.server_name);
  }
  auto channel = grpc::CreateCustomChannel(options_.target, credentials_, args);
  auto stub = v1::Orders::NewStub(channel);
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Aborted("stopping");
    context_ = &context;
  }
  v1::OrderSubscription request;
  request.set_sensor_id(options_.sensor_id);
  request.set_host(options_.host);
  request.set_keep_path(options_.keep_path);
  auto reader = stub->Subscribe(&context, request);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.subscriptions;
  }
  FlushReports(*stub);
  v1::SignedActionOrder order;
  while (reader->Read(&order)) {
    Handle(order);
    FlushReports(*stub);
  }
  const grpc::Status status = reader->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
  }
  if (status.ok()) return Status::Unavailable("the aggregator ended the order subscription");
  return FromGrpc(status, "order subscription to " + options_.target);
}

void OrderClient::Handle(const v1::SignedActionOrder& signed_order) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.received;
  }
  auto order = verifier_.Verify(signed_order, clock_.NowNs(), ledger_);
  if (!order.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (order.status().code() == Status::Code::kAlreadyExists) {
      // Sent again on a new subscription: it ran, and its report went (or is pending).
      ++stats_.repeated;
      TL_LOG(DEBUG) << order.status().message();
    } else {
      ++stats_.refused;
      TL_LOG(WARNING) << order.status().message();
    }
    return;
  }
  // Recorded before it runs: a crash in between leaves it recorded and not run, never run
  // twice.
  if (Status recorded = ledger_.Record(order->action_id(), order->revert()); !recorded.ok()) {
    TL_LOG(ERROR) << "order " << order->action_id()
                  << " not carried out: the ledger cannot record it: " << recorded.ToString();
    return;
  }
  TL_LOG(WARNING) << (order->revert() ? "reverting" : "carrying out") << " action "
                  << order->action_id() << " (approved by " << order->approved_by() << ")";
  auto detail = executor_.Run(*order);
  v1::ActionReport report;
  report.set_action_id(order->action_id());
  report.set_revert(order->revert());
  report.set_ok(detail.ok());
  report.set_detail(detail.ok() ? *detail : detail.status().message());
  report.set_at_ns(clock_.NowNs());
  report.set_host(options_.host);
  if (!detail.ok()) {
    TL_LOG(ERROR) << "action " << order->action_id() << " failed: " << detail.status().message();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.executed;
    if (!detail.ok()) ++stats_.failed;
  }
  KeepReport(std::move(report));
}

Status OrderClient::LoadReports() {
  if (options_.reports_dir.empty()) return Status::Ok();
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.reports_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > kReportSuffix.size() &&
        name.compare(name.size() - kReportSuffix.size(), kReportSuffix.size(), kReportSuffix) ==
            0) {
      files.push_back(name);
    }
  }
  if (ec) return Status::IoError("reading " + options_.reports_dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& name : files) {
    const std::string path = options_.reports_dir + "/" + name;
    auto bytes = delivery::ReadOwnFile(path);
    v1::ActionReport r;
    if (!bytes.ok() || !r.ParseFromString(*bytes) || r.action_id().empty()) {
      // Kept where it is for a person to look at; it is never sent.
      TL_LOG(ERROR) << "report file " << path << " cannot be read back: "
                    << (bytes.ok() ? "not an ActionReport" : bytes.status().ToString());
      continue;
    }
    TL_LOG(INFO) << "report of action " << r.action_id() << " from an earlier run, to be sent";
    reports_.push_back({std::move(r), name});
  }
  return Status::Ok();
}

void OrderClient::KeepReport(v1::ActionReport report) {
  std::string file;
  if (!options_.reports_dir.empty()) {
    file = ReportFileName(report);
    const Status written =
        delivery::WriteFileAtomically(options_.reports_dir, file, report.SerializeAsString());
    if (!written.ok()) {
      // Still sent from memory; only a restart before then would lose it.
      TL_LOG(ERROR) << "report of action " << report.action_id()
                    << " not written to disk: " << written.ToString();
      file.clear();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  reports_.push_back({std::move(report), std::move(file)});
}

void OrderClient::FlushReports(v1::Orders::Stub& stub) {
  while (true) {
    v1::ActionReport report;
    std::string file;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (reports_.empty() || stopping_) return;
      report = reports_.front().report;
      file = reports_.front().file;
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.report_timeout_ms));
    v1::ReportReceipt receipt;
    const grpc::Status status = stub.Report(&context, report, &receipt);
    const bool unavailable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                             status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    std::lock_guard<std::mutex> lock(mu_);
    if (unavailable) {
      TL_LOG(INFO) << "report of action " << report.action_id()
                   << " not delivered yet: " << status.error_message();
      return;  // kept; sent again with the next subscription
    }
    if (!status.ok()) {
      // Refused for good (the action expired meanwhile, say): kept in the log, not retried.
      TL_LOG(WARNING) << "report of action " << report.action_id()
                      << " refused by the aggregator: " << status.error_message();
    } else {
      ++stats_.reports_sent;
    }
    reports_.pop_front();
    if (!file.empty()) {
      const std::string path = options_.reports_dir + "/" + file;
      if (unlink(path.c_str()) != 0 || !delivery::SyncDirectory(options_.reports_dir).ok()) {
        TL_LOG(WARNING) << "report file " << path
                        << " not removed: it will be sent again after a restart";
      }
    }
  }
}

}  // namespace tripline::sensor
