// Decoding of the records the BPF programs write to the ring buffers (bpf/include/events.h)
// into domain Events.
//
// Ring-buffer bytes are outside input: the decoder trusts nothing in them. It checks type,
// version, the size field against the buffer, string termination, argument bounds and every
// enum, and says which field was wrong. Pure: no I/O, no global state; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "model/event.h"

namespace tripline::sensor {

// One entry of the in-kernel sensitive-path table.
struct SensitivePath {
  enum class Match : uint8_t { kExact = 1, kPrefix = 2, kSuffix = 3 };
  Match match = Match::kExact;
  std::string path;

  friend bool operator==(const SensitivePath&, const SensitivePath&) = default;
};

// "exact", "prefix", "suffix".
std::string_view SensitivePathMatchName(SensitivePath::Match match);

// PAM return code -> the text pam_strerror gives ("authentication failure", "user unknown",
// ...); "pam error N" for codes it does not know.
std::string PamReasonText(int32_t pam_code);

// Decodes one record. `boot_to_wall_offset_ns` is added to the record's boot-clock time to
// get Event::time_ns (BpfProbe::BootToWallOffsetNs()). Fills time_ns, process (ids, comm) and
// the body; host, user names, session and seq are left to the enricher. A file-open event's
// `rule` is "<match>#<rule id>", or "<match>:<path>" when `rules` (the table the probe was
// loaded with; rule id N is rules[N-1]) is given.
Result<Event> DecodeRecord(std::span<const uint8_t> bytes, int64_t boot_to_wall_offset_ns,
                           std::span<const SensitivePath> rules = {});

}  // namespace tripline::sensor
