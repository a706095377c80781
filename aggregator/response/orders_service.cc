#include "aggregator/response/orders_service.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <vector>

#include "aggregator/query/query_service.h"
#include "aggregator/response/rpc_helpers.h"
#include "common/log.h"

namespace tripline::response {
namespace {

// A subscription refused before it started: finished at once.
class Refusal final : public grpc::ServerWriteReactor<v1::SignedActionOrder> {
 public:
  explicit Refusal(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

constexpr size_t kMaxReportDetail = 64 * 1024;

}  // namespace

Result<sensor::OrderSecretKey> ReadOrderKeyFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return Status::InvalidArgument("order key file " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return Status::PermissionDenied("order key file " + path +
                                    " may be read by others than its owner (chmod 600 it)");
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return Status::InvalidArgument("order key file " + path + " cannot be read");
  std::string hex = text.str();
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  hex.erase(std::remove_if(hex.begin(), hex.end(), space), hex.end());
  sensor::OrderSecretKey key{};
  size_t len = 0;
  if (hex.size() != 2 * key.size() ||
      sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
      len != key.size()) {
    sodium_memzero(hex.data(), hex.size());
    return Status::InvalidArgument("order key file " + path +
                                   " does not hold an order secret key (128 hex digits, as "
                                   "tripline-aggregator --make-order-key writes it)");
  }
  sodium_memzero(hex.data(), hex.size());
  return key;
}

Result<std::string> WriteNewOrderKeyFile(const std::string& path) {
  sensor::OrderPublicKey pub{};
  sensor::OrderSecretKey secret{};
  TL_RETURN_IF_ERROR(sensor::MakeOrderKeyPair(&pub, &secret));
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IoError("cannot create order key file " + path + ": " + std::strerror(errno));
  }
  char hex[2 * sensor::kOrderSecretKeyBytes + 2];
  sodium_bin2hex(hex, sizeof hex - 1, secret.data(), secret.size());
  const size_t n = std::strlen(hex);
  hex[n] = '\n';
  const bool written = write(fd, hex, n + 1) == static_cast<ssize_t>(n + 1) && fsync(fd) == 0;
  sodium_memzero(hex, sizeof hex);
  sodium_memzero(secret.data(), secret.size());
  close(fd);
  if (!written) {
    unlink(path.c_str());
    return Status::IoError("cannot write order key file " + path);
  }
  return sensor::OrderPublicKeyHex(pub);
}

// One sensor's subscription: orders are queued and written one at a time.
class OrdersService::Subscriber final : public grpc::ServerWriteReactor<v1::SignedActionOrder> {
 public:
  Subscriber(OrdersService* service, std::string host, std::string keep_path, std::string peer)
      : service_(service),
        host_(std::move(host)),
        keep_path_(std::move(keep_path)),
        peer_(std::move(peer)) {}

  const std::string& host() const { return host_; }
  const std::string& keep_path() const { return keep_path_; }

  void Send(v1::SignedActionOrder order) {
    const v1::SignedActionOrder* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      queue_.push_back(std::move(order));
      if (writing_) return;
      writing_ = true;
      next = &queue_.front();  // deque: stays put while others are appended
    }
    StartWrite(next);
  }

  void OnWriteDone(bool ok) override {
    const v1::SignedActionOrder* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      if (!ok) {
        writing_ = false;
        FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "order could not be sent"));
        return;
      }
      if (queue_.empty() || finished_) {
        writing_ = false;
        return;
      }
      next = &queue_.front();
    }
    StartWrite(next);
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    TL_LOG(INFO) << "order subscription of host " << host_ << " (" << peer_ << ") ended";
    service_->Remove(this);
    delete this;
  }

 private:
  void FinishLocked(grpc::Status status) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  OrdersService* const service_;
  const std::string host_;
  const std::string keep_path_;
  const std::string peer_;
  std::mutex mu_;
  std::deque<v1::SignedActionOrder> queue_;  // GUARDED_BY(mu_); the front is being written
  bool writing_ = false;                     // GUARDED_BY(mu_)
  bool finished_ = false;                    // GUARDED_BY(mu_)
};

OrdersService::OrdersService(ActionBook* book, std::optional<sensor::OrderSecretKey> key,
                             const AccessControl* access)
    : book_(book), key_(key), access_(access) {}

// The server's shutdown (with its deadline) cancels every subscription first, and each
// leaves by_host_ as it ends: none is left when the service goes.
OrdersService::~OrdersService() = default;

size_t OrdersService::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_host_.size();
}

void OrdersService::Remove(Subscriber* s) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = by_host_.begin(); it != by_host_.end(); ++it) {
    if (it->second == s) {
      by_host_.erase(it);
      return;
    }
  }
}

Result<v1::SignedActionOrder> OrdersService::Sign(std::string_view action_id, bool revert,
                                                  const std::string& keep_path) {
  if (!key_) return Status::Aborted("no order key is configured");
  TL_ASSIGN_OR_RETURN(v1::ActionOrder order, book_->OrderFor(action_id, revert, keep_path));
  return sensor::SignOrder(order, *key_);
}

grpc::ServerWriteReactor<v1::SignedActionOrder>* OrdersService::Subscribe(
    grpc::CallbackServerContext* context, const v1::OrderSubscription* request) {
  if (access_ != nullptr) {
    auto who = access_->Authorize(*context, "Orders.Subscribe", {Role::kSensor});
    if (!who.ok()) return new Refusal(ToGrpcStatus(who.status()));
    if (!who->MayWriteHost(request->host()) || !who->MayUseSensorId(request->sensor_id())) {
      TL_LOG(WARNING) << "refused order subscription of host '" << request->host() << "' to "
                      << who->name << ": not a host or sensor id of its certificate";
      return new Refusal(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                      "the certificate does not allow host '" + request->host() +
                                          "' or sensor id '" + request->sensor_id() + "'"));
    }
  }
  if (request->host().empty() || request->host().size() > 253 || !Printable(request->host()) ||
      request->keep_path().size() > 300 || !Printable(request->keep_path()) ||
      request->sensor_id().size() > 128 || !Printable(request->sensor_id())) {
    return new Refusal(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "a subscription names a host (1 to 253 printable bytes), "
                                    "and at most 300 bytes of keep_path"));
  }
  if (!key_) {
    return new Refusal(grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        "the aggregator has no order key (response.order_key_file): no order can be sent"));
  }
  auto* s = new Subscriber(this, request->host(), request->keep_path(), context->peer());
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_host_.emplace(request->host(), s);
  }
  TL_LOG(INFO) << "sensor " << request->sensor_id() << " of host " << request->host()
               << " subscribed to its orders";
  // What may run now, at once: an order offered while the sensor was away is not lost.
  for (const auto state : {v1::Action::STATE_APPROVED, v1::Action::STATE_REVERT_REQUESTED}) {
    auto actions = book_->List(state, "");
    if (!actions.ok()) {
      TL_LOG(ERROR) << "listing actions for host " << request->host() << ": "
                    << actions.status().ToString();
      continue;
    }
    for (const v1::Action& a : *actions) {
      if (a.host() != request->host()) continue;
      auto order = Sign(a.id(), state == v1::Action::STATE_REVERT_REQUESTED, s->keep_path());
      if (!order.ok()) {
        TL_LOG(INFO) << "no order for action " << a.id() << ": " << order.status().ToString();
        continue;
      }
      s->Send(std::move(*order));
    }
  }
  return s;
}

void OrdersService::Offer(const v1::Action& action) {
  const bool revert = action.state() == v1::Action::STATE_REVERT_REQUESTED;
  if (!revert && action.state() != v1::Action::STATE_APPROVED) return;
  std::lock_guard<std::mutex> lock(mu_);
  const auto [first, last] = by_host_.equal_range(action.host());
  if (first == last) {
    TL_LOG(INFO) << "action " << action.id() << ": no sensor of host " << action.host()
                 << " subscribed; the order goes when one subscribes";
  }
  for (auto it = first; it != last; ++it) {
    auto order = Sign(action.id(), revert, it->second->keep_path());
    if (!order.ok()) {
      TL_LOG(WARNING) << "no order for action " << action.id() << ": " << order.status().ToString();
      return;
    }
    it->second->Send(std::move(*order));
  }
}

grpc::ServerUnaryReactor* OrdersService::Report(grpc::CallbackServerContext* context,
                                                const v1::ActionReport* request,
                                                v1::ReportReceipt* response) {
  if (access_ != nullptr) {
    auto who = access_->Authorize(*context, "Orders.Report", {Role::kSensor});
    if (!who.ok()) return Reply(context, ToGrpcStatus(who.status()));
    if (!who->MayWriteHost(request->host())) {
      return Reply(context,
                   grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                "the certificate does not allow host '" + request->host() + "'"));
    }
  }
  if (request->action_id().empty() || request->action_id().size() > 64 || request->host().empty() ||
      request->detail().size() > kMaxReportDetail) {
    return Reply(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "a report names an action (at most 64 bytes) and its "
                                       "host, with at most 64 KiB of detail"));
  }
  auto a = book_->RecordReport(*request, request->host());
  if (!a.ok()) {
    TL_LOG(WARNING) << "report of action " << request->action_id() << " from host "
                    << request->host() << " refused: " << a.status().ToString();
    return Reply(context, ToGrpcStatus(a.status()));
  }
  TL_LOG(INFO) << "action " << a->id() << " (" << KindText(a->kind()) << " " << a->target()
               << ") reported by host " << request->host() << ": now " << StateText(a->state());
  response->set_state(a->state());
  return Reply(context, grpc::Status::OK);
}

}  // namespace tripline::response
