// How often the aggregator and the sensor read their TLS files again (TlsConfig in
// proto/tripline/v1/config.proto): gRPC's file watcher re-reads the certificate, key and CA
// bundle at this interval, and connections made after a change use the new files.
#pragma once

#include <cstdint>

namespace tripline {

inline constexpr uint32_t kDefaultTlsReloadIntervalS = 60;

// The configured interval, or the default for 0.
inline unsigned TlsReloadIntervalSeconds(uint32_t configured) {
  return configured == 0 ? kDefaultTlsReloadIntervalS : configured;
}

}  // namespace tripline
