// ConsoleAuth: who may sign in to the analyst console, and their sessions.
//
// People are configured (console.users in the aggregator's configuration) with an Argon2id
// password hash (libsodium's crypto_pwhash_str; `tripline-aggregator --hash-password`
// makes one) and a role: an operator reads, an approver also approves and denies response
// actions, as themself: the console passes the signed-in person to the response workflow,
// which records them in the audit trail (and, when response.approvers is set, checks them
// against it as it does every approver).
//
// A session is a random 256-bit token (the cookie) with its own random CSRF token, which
// every request that changes something must carry in a header. Sessions end after
// `idle_ns` without a request, after `max_ns` whatever happens, at sign-out, and when the
// aggregator stops (they are kept in memory only). After `max_failures` failed sign-ins in
// a row a name is refused for `lockout_ns`, whatever the password; an unknown name costs
// the same hashing as a known one, so the answer's time does not tell which names exist.
// At most two passwords are checked at once.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace tripline::console {

enum class ConsoleRole : uint8_t { kOperator = 0, kApprover = 1 };

const char* RoleName(ConsoleRole role);

struct ConsoleUser {
  std::string name;
  std::string password_hash;  // "$argon2id$v=19$m=...,t=...,p=1$salt$hash"
  ConsoleRole role = ConsoleRole::kOperator;
};

// An Argon2id hash of `password` (libsodium's moderate limits: 3 passes over 256 MiB).
Result<std::string> HashPassword(std::string_view password);
// Whether `hash` is an Argon2id hash string crypto_pwhash_str_verify accepts.
bool IsArgon2idHash(std::string_view hash);

struct SessionPolicy {
  int64_t idle_ns = 15 * 60 * kNanosPerSecond;
  int64_t max_ns = 8 * 3600 * kNanosPerSecond;
  size_t max_sessions = 1000;  // beyond it the session idle longest is ended
  int max_failures = 5;
  int64_t lockout_ns = 60 * kNanosPerSecond;
};

struct Session {
  std::string token;  // 64 hex digits
  std::string csrf;   // 64 hex digits
  std::string person;
  ConsoleRole role = ConsoleRole::kOperator;
  int64_t created_ns = 0;
  int64_t last_ns = 0;
};

class ConsoleAuth {
 public:
  // InvalidArgument when a user has no name, two users share one, or a hash is not Argon2id.
  static Result<std::unique_ptr<ConsoleAuth>> Create(std::vector<ConsoleUser> users,
                                                     SessionPolicy policy, const Clock* clock);

  // A new session for `name`, or Unauthenticated ("wrong name or password", the same for
  // both) or ResourceExhausted (locked out after too many failures).
  Result<Session> SignIn(std::string_view name, std::string_view password);
  // The session of `token` (its idle time restarts), or Unauthenticated when there is
  // none or it expired.
  Result<Session> Check(std::string_view token);
  // Check, and the request's CSRF token must be the session's (compared in constant
  // time): PermissionDenied when it is not.
  Result<Session> CheckChange(std::string_view token, std::string_view csrf);
  void SignOut(std::string_view token);

  size_t sessions() const;
  bool empty() const { return users_.empty(); }

 private:
  ConsoleAuth(std::vector<ConsoleUser> users, SessionPolicy policy, const Clock* clock);
  const ConsoleUser* FindUser(std::string_view name) const;
  void ExpireLocked(int64_t now);

  const std::vector<ConsoleUser> users_;
  const SessionPolicy policy_;
  const Clock* const clock_;
  std::string dummy_hash_;  // verified against for unknown names
  // Each verification takes the hash's memory (256 MiB at the moderate limits): at most two
  // run at once, so a flood of sign-ins costs time, not the aggregator's memory.
  std::counting_semaphore<2> verifying_{2};
  mutable std::mutex mu_;
  std::unordered_map<std::string, Session> sessions_;  // by token
  struct Failures {
    int count = 0;
    int64_t locked_until_ns = 0;
  };
  std::unordered_map<std::string, Failures> failures_;  // by configured name
};

}  // namespace tripline::console
