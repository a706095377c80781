// HostIdentity: the name and stable id under which a sensor reports its host.
//
// --scope host: name from --host-name/config, else gethostname(); id = /etc/machine-id.
// --scope uts:  name = the UTS namespace's hostname (gethostname() inside it); id derived
//               from machine-id and that name, because simulated hosts (and containers
//               with their own hostname) share the kernel and usually /etc/machine-id, and
//               each must still be its own host to the aggregator.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "sensor/host_files.h"

namespace tripline::sensor {

enum class Scope { kHost, kUts };

struct HostIdentity {
  std::string host;     // what events carry in `host`
  std::string host_id;  // 32 lower-case hex digits
};

// `name_override` is --host-name or the config's host_name ("" when unset); in uts scope
// it wins over the UTS hostname too, so an operator can rename a container. `uts_hostname`
// is gethostname() of the sensor (which runs in the namespace it watches). Fails only when
// no name can be found; a missing machine-id is tolerated (the id then derives from the
// name alone) because minimal containers lack it.
Result<HostIdentity> ResolveHostIdentity(Scope scope, std::string_view name_override,
                                         std::string_view uts_hostname, const HostFiles& files);

// 128-bit FNV-1a of `text` as 32 hex digits: stable across runs, builds and machines.
std::string StableHexId(std::string_view text);

// gethostname(2) of the calling process's UTS namespace.
Result<std::string> LocalHostname();

}  // namespace tripline::sensor
