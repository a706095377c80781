// PeerIdentity: who is calling the aggregator, and what it may do (docs/security.md).
//
// With TLS the aggregator always verifies a client certificate, and the certificate says
// who the client is through URI subject alternative names:
//
//   tripline:role:sensor        may stream events (Ingest.Stream)
//   tripline:role:operator      may query (Query.*) and propose or list response actions
//   tripline:role:approver      may query, and approve or deny response actions
//   tripline:host:NAME          a sensor certificate: the host the sensor speaks for; every
//                               event it sends must carry one of these host names
//   tripline:sensor-id:ID       optional: the only sensor ids the certificate may use
//
// A certificate may carry several roles and several hosts. Other URIs (SPIFFE ids, ...)
// are ignored; a `tripline:` URI of another shape is an error, so that a typo in a
// certificate profile is reported instead of silently granting nothing or something.
//
// Without TLS (a loopback listener, or --insecure) nobody is authenticated and every peer
// is `unrestricted`: all roles, any host, any sensor id.
//
// Pure functions and value types; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace grpc {
class ServerContextBase;
}

namespace tripline {

enum class Role : uint8_t { kSensor = 1, kOperator = 2, kApprover = 4 };

std::string_view RoleName(Role role);

constexpr std::string_view kRoleUriPrefix = "tripline:role:";
constexpr std::string_view kHostUriPrefix = "tripline:host:";
constexpr std::string_view kSensorIdUriPrefix = "tripline:sensor-id:";

struct PeerIdentity {
  bool unrestricted = false;  // clear text: no certificate, nothing enforced
  uint8_t roles = 0;          // bit set of Role
  std::vector<std::string> hosts;
  std::vector<std::string> sensor_ids;  // empty: any id (bound on first use, see ingest)
  std::string name;                     // for logs: the peer address and the certificate's URIs
  // The person or system the certificate names: its subject common name ("" in clear text
  // or without one). Approvals are recorded under it (docs/response.md).
  std::string common_name;

  bool Has(Role role) const { return unrestricted || (roles & static_cast<uint8_t>(role)) != 0; }
  bool MayWriteHost(std::string_view host) const;
  bool MayUseSensorId(std::string_view id) const;
};

// The identity that the URI SANs `uris` of a verified certificate give. InvalidArgument
// for a `tripline:` URI that is not one of the forms above (unknown role, empty or
// non-printable host or id).
Result<PeerIdentity> ParseIdentityUris(const std::vector<std::string>& uris);

// Decides per call. `enforce` is true when the server verifies client certificates (TLS).
class AccessControl {
 public:
  explicit AccessControl(bool enforce) : enforce_(enforce) {}
  bool enforced() const { return enforce_; }

  // The caller's identity. Unrestricted when not enforced; PermissionDenied when enforced
  // and the call carries no verified certificate or its URIs do not parse.
  Result<PeerIdentity> Identify(const grpc::ServerContextBase& context) const;

  // Identify, then PermissionDenied unless the identity has one of `any_of`; `method` names
  // the call in the error and in the warning logged for every refusal.
  Result<PeerIdentity> Authorize(const grpc::ServerContextBase& context, std::string_view method,
                                 std::initializer_list<Role> any_of) const;

 private:
  const bool enforce_;
};

}  // namespace tripline
