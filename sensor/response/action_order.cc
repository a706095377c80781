#include "sensor/response/action_order.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace tripline::sensor {
namespace {

constexpr std::string_view kContext{"tripline action order v1\0", 25};

std::string Signed(std::string_view order) {
  std::string m(kContext);
  m += order;
  return m;
}

std::string LedgerLine(std::string_view id, bool revert) {
  return std::string(revert ? "revert " : "execute ") + std::string(id);
}

Status InitSodium() {
  return sodium_init() < 0 ? Status::Internal("libsodium does not initialize") : Status::Ok();
}

}  // namespace

Status MakeOrderKeyPair(OrderPublicKey* pub, OrderSecretKey* secret) {
  TL_RETURN_IF_ERROR(InitSodium());
  if (crypto_sign_keypair(pub->data(), secret->data()) != 0) {
    return Status::Internal("cannot make an Ed25519 key pair");
  }
  return Status::Ok();
}

Result<OrderPublicKey> ParseOrderPublicKey(std::string_view hex) {
  OrderPublicKey key;
  size_t len = 0;
  if (hex.size() != 2 * key.size() ||
      sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
      len != key.size()) {
    return Status::InvalidArgument("an order public key is 64 hex digits");
  }
  return key;
}

std::string OrderPublicKeyHex(const OrderPublicKey& key) {
  char hex[2 * kOrderPublicKeyBytes + 1];
  sodium_bin2hex(hex, sizeof hex, key.data(), key.size());
  return hex;
}

Result<v1::SignedActionOrder> SignOrder(const v1::ActionOrder& order,
                                        const OrderSecretKey& secret) {
  TL_RETURN_IF_ERROR(InitSodium());
  v1::SignedActionOrder out;
  if (!order.SerializeToString(out.mutable_order())) {
    return Status::Internal("cannot serialize order");
  }
  const std::string m = Signed(out.order());
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(m.data()), m.size(), secret.data());
  out.set_signature(std::move(sig));
  return out;
}

Result<ExecutedLedger> ExecutedLedger::Open(const std::string& path) {
  ExecutedLedger ledger(path);
  std::ifstream in(path);
  if (!in) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno(errno, "creating " + path);
    ::close(fd);
    return ledger;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) ledger.done_.insert(line);
  }
  if (in.bad()) return Status::IoError("reading " + path);
  return ledger;
}

bool ExecutedLedger::Contains(std::string_view action_id, bool revert) const {
  return done_.count(LedgerLine(action_id, revert)) > 0;
}

Status ExecutedLedger::Record(std::string_view action_id, bool revert) {
  const std::string line = LedgerLine(action_id, revert);
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "opening " + path_);
  const std::string text = line + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return Status::FromErrno(err, "writing " + path_);
  done_.insert(line);
  return Status::Ok();
}

Result<v1::ActionOrder> OrderVerifier::Verify(const v1::SignedActionOrder& signed_order,
                                              int64_t now_ns, const ExecutedLedger& ledger) const {
  TL_RETURN_IF_ERROR(InitSodium());
  if (signed_order.signature().size() != crypto_sign_BYTES) {
    return Status::PermissionDenied("order refused: the signature is not 64 bytes");
  }
  const std::string m = Signed(signed_order.order());
  if (crypto_sign_verify_detached(
          reinterpret_cast<const unsigned char*>(signed_order.signature().data()),
          reinterpret_cast<const unsigned char*>(m.data()), m.size(), key_.data()) != 0) {
    return Status::PermissionDenied(
        "order refused: the signature does not verify with the aggregator's public key");
  }
  v1::ActionOrder order;
  if (!order.ParseFromString(signed_order.order()) || order.action_id().empty()) {
    return Status::InvalidArgument("order refused: signed bytes that are not an order");
  }
  if (order.host() != host_) {
    return Status::PermissionDenied("order " + order.action_id() + " refused: it is for host " +
                                    order.host() + ", this is " + host_);
  }
  if (now_ns >= order.not_after_ns()) {
    return Status::PermissionDenied("order " + order.action_id() +
                                    " refused: its approval expired");
  }
  if (ledger.Contains(order.action_id(), order.revert())) {
    return Status::AlreadyExists("order " + order.action_id() +
                                 " refused: already carried out (a replay)");
  }
  return order;
}

}  // namespace tripline::sensor
