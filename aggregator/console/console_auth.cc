#include "aggregator/console/console_auth.h"

#include <sodium.h>

#include <algorithm>
#include <memory>
#include <set>
#include <utility>

namespace tripline::console {
namespace {

constexpr std::string_view kArgon2idPrefix = "$argon2id$";

std::string RandomHex() {
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char hex[sizeof bytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return std::string(hex, sizeof bytes * 2);
}

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

}  // namespace

const char* RoleName(ConsoleRole role) {
  return role == ConsoleRole::kApprover ? "approver" : "operator";
}

Result<std::string> HashPassword(std::string_view password) {
  if (!SodiumReady()) return Status::Internal("libsodium cannot start");
  if (password.empty()) return Status::InvalidArgument("an empty password");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_MODERATE,
                            crypto_pwhash_MEMLIMIT_MODERATE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::ResourceExhausted("not enough memory to hash a password");
  }
  return std::string(out);
}

bool IsArgon2idHash(std::string_view hash) {
  if (hash.size() >= crypto_pwhash_STRBYTES ||
      hash.substr(0, kArgon2idPrefix.size()) != kArgon2idPrefix) {
    return false;
  }
  // Well formed: libsodium parses the parameters when it checks whether they are current
  // (0 or 1); -1 means it could not read the string.
  const std::string s(hash);
  return SodiumReady() && crypto_pwhash_str_needs_rehash(s.c_str(), crypto_pwhash_OPSLIMIT_MIN,
                                                         crypto_pwhash_MEMLIMIT_MIN) != -1;
}

Result<std::unique_ptr<ConsoleAuth>> ConsoleAuth::Create(std::vector<ConsoleUser> users,
                                                         SessionPolicy policy, const Clock* clock) {
  if (!SodiumReady()) return Status::Internal("libsodium cannot start");
  std::set<std::string> names;
  for (const ConsoleUser& u : users) {
    if (u.name.empty() || u.name.size() > 128) {
      return Status::InvalidArgument("console.users: a name of 1 to 128 bytes is required");
    }
    for (unsigned char c : u.name) {
      if (c < 0x20 || c == 0x7f) {
        return Status::InvalidArgument("console.users: '" + u.name + "' has a control character");
      }
    }
    if (!names.insert(u.name).second) {
      return Status::InvalidArgument("console.users: '" + u.name + "' is listed twice");
    }
    if (!IsArgon2idHash(u.password_hash)) {
      return Status::InvalidArgument("console.users: the password_hash of '" + u.name +
                                     "' is not an Argon2id hash (make one with "
                                     "tripline-aggregator --hash-password)");
    }
  }
  if (policy.idle_ns <= 0 || policy.max_ns <= 0 || policy.max_sessions == 0) {
    return Status::InvalidArgument("console: session times and count must be positive");
  }
  std::unique_ptr<ConsoleAuth> auth(new ConsoleAuth(std::move(users), policy, clock));
  // Unknown names are checked against a hash made with the same limits as the configured
  // ones (the first user's), so that both answers take as long.
  if (!auth->users_.empty()) auth->dummy_hash_ = auth->users_.front().password_hash;
  return auth;
}

ConsoleAuth::ConsoleAuth(std::vector<ConsoleUser> users, SessionPolicy policy, const Clock* clock)
    : users_(std::move(users)), policy_(policy), clock_(clock) {}

const ConsoleUser* ConsoleAuth::FindUser(std::string_view name) const {
  for (const ConsoleUser& u : users_) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

Result<Session> ConsoleAuth::SignIn(std::string_view name, std::string_view password) {
  const ConsoleUser* user = FindUser(name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (user != nullptr) {
      const auto it = failures_.find(user->name);
      if (it != failures_.end() && it->second.locked_until_ns > clock_->MonotonicNs()) {
        return Status::ResourceExhausted("too many failed sign-ins for this name: try again later");
      }
    }
  }
  // The hash is checked outside the lock: it is slow and memory-hard by design.
  const std::string& hash = user != nullptr ? user->password_hash : dummy_hash_;
  bool ok = false;
  if (!hash.empty() && password.size() <= 1024) {
    verifying_.acquire();
    ok = crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0 &&
         user != nullptr;
    verifying_.release();
  }
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_->MonotonicNs();
  if (!ok) {
    if (user != nullptr) {
      Failures& f = failures_[user->name];
      if (++f.count >= policy_.max_failures) {
        f.count = 0;
        f.locked_until_ns = now + policy_.lockout_ns;
      }
    }
    return Status::Unauthenticated("wrong name or password");
  }
  failures_.erase(user->name);
  ExpireLocked(now);
  if (sessions_.size() >= policy_.max_sessions) {
    auto idlest = std::min_element(
        sessions_.begin(), sessions_.end(),
        [](const auto& a, const auto& b) { return a.second.last_ns < b.second.last_ns; });
    sessions_.erase(idlest);
  }
  Session s;
  s.token = RandomHex();
  s.csrf = RandomHex();
  s.person = user->name;
  s.role = user->role;
  s.created_ns = s.last_ns = now;
  sessions_[s.token] = s;
  return s;
}

void ConsoleAuth::ExpireLocked(int64_t now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    const Session& s = it->second;
    if (now - s.last_ns >= policy_.idle_ns || now - s.created_ns >= policy_.max_ns) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<Session> ConsoleAuth::Check(std::string_view token) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = sessions_.find(std::string(token));
  if (token.empty() || it == sessions_.end()) return Status::Unauthenticated("not signed in");
  const int64_t now = clock_->MonotonicNs();
  Session& s = it->second;
  if (now - s.last_ns >= policy_.idle_ns || now - s.created_ns >= policy_.max_ns) {
    sessions_.erase(it);
    return Status::Unauthenticated("the session expired: sign in again");
  }
  s.last_ns = now;
  return s;
}

Result<Session> ConsoleAuth::CheckChange(std::string_view token, std::string_view csrf) {
  TL_ASSIGN_OR_RETURN(Session s, Check(token));
  if (csrf.size() != s.csrf.size() ||
      sodium_memcmp(csrf.data(), s.csrf.data(), s.csrf.size()) != 0) {
    return Status::PermissionDenied("the request's CSRF token is not this session's");
  }
  return s;
}

void ConsoleAuth::SignOut(std::string_view token) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(std::string(token));
}

size_t ConsoleAuth::sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

}  // namespace tripline::console
