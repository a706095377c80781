#include "aggregator/ingest/peer_identity.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "common/log.h"

namespace tripline {
namespace {

constexpr size_t kMaxIdentityValue = 256;

bool IsPrintableToken(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdentityValue) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u <= 0x7e;
  });
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kSensor: return "sensor";
    case Role::kOperator: return "operator";
    case Role::kApprover: return "approver";
  }
  return "?";
}

bool PeerIdentity::MayWriteHost(std::string_view host) const {
  return unrestricted || std::find(hosts.begin(), hosts.end(), host) != hosts.end();
}

bool PeerIdentity::MayUseSensorId(std::string_view id) const {
  return unrestricted || sensor_ids.empty() ||
         std::find(sensor_ids.begin(), sensor_ids.end(), id) != sensor_ids.end();
}

Result<PeerIdentity> ParseIdentityUris(const std::vector<std::string>& uris) {
  PeerIdentity id;
  for (const std::string& uri : uris) {
    std::string_view u = uri;
    if (u.rfind("tripline:", 0) != 0) continue;  // someone else's naming: not ours to judge
    if (u.rfind(kRoleUriPrefix, 0) == 0) {
      const std::string_view role = u.substr(kRoleUriPrefix.size());
      bool known = false;
      for (Role r : {Role::kSensor, Role::kOperator, Role::kApprover}) {
        if (role == RoleName(r)) {
          id.roles |= static_cast<uint8_t>(r);
          known = true;
        }
      }
      if (!known) {
        return Status::InvalidArgument("certificate URI '" + uri +
                                       "': unknown role (want sensor, operator or approver)");
      }
    } else if (u.rfind(kHostUriPrefix, 0) == 0) {
      const std::string_view host = u.substr(kHostUriPrefix.size());
      if (!IsPrintableToken(host)) {
        return Status::InvalidArgument("certificate URI '" + uri + "': bad host name");
      }
      id.hosts.emplace_back(host);
    } else if (u.rfind(kSensorIdUriPrefix, 0) == 0) {
      const std::string_view sid = u.substr(kSensorIdUriPrefix.size());
      if (!IsPrintableToken(sid)) {
        return Status::InvalidArgument("certificate URI '" + uri + "': bad sensor id");
      }
      id.sensor_ids.emplace_back(sid);
    } else {
      return Status::InvalidArgument(
          "certificate URI '" + uri +
          "' is not tripline:role:ROLE, tripline:host:NAME or tripline:sensor-id:ID");
    }
  }
  return id;
}

Result<PeerIdentity> AccessControl::Identify(const grpc::ServerContextBase& context) const {
  if (!enforce_) {
    PeerIdentity id;
    id.unrestricted = true;
    id.name = context.peer();
    return id;
  }
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    return Status::PermissionDenied("no verified client certificate");
  }
  std::vector<std::string> uris;
  for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(v.data(), v.size());
  }
  auto id = ParseIdentityUris(uris);
  if (!id.ok()) return Status::PermissionDenied(id.status().message());
  id->name = context.peer();
  if (auto cn = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME); !cn.empty()) {
    id->common_name.assign(cn.front().data(), cn.front().size());
  }
  for (const std::string& u : uris) id->name += " " + u;
  if (uris.empty()) id->name += " (certificate without URI names)";
  return id;
}

Result<PeerIdentity> AccessControl::Authorize(const grpc::ServerContextBase& context,
                                              std::string_view method,
                                              std::initializer_list<Role> any_of) const {
  auto id = Identify(context);
  if (!id.ok()) {
    TL_LOG(WARNING) << "denied " << method << " to " << context.peer() << ": "
                    << id.status().message();
    return Status::PermissionDenied(std::string(method) + ": " + id.status().message());
  }
  for (Role r : any_of) {
    if (id->Has(r)) return id;
  }
  std::string wanted;
  for (Role r : any_of) {
    wanted += wanted.empty() ? "" : " or ";
    wanted += "tripline:role:" + std::string(RoleName(r));
  }
  TL_LOG(WARNING) << "denied " << method << " to " << id->name << ": certificate lacks " << wanted;
  return Status::PermissionDenied(std::string(method) + " needs a certificate with " + wanted);
}

}  // namespace tripline
