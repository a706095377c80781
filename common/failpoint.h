// Failpoints: named places in the code where a test makes the process die on purpose, to
// force the crash windows that exactly-once delivery has to survive (between a durable
// write and its acknowledgement, between spooling an event and sending it, ...).
//
//   TL_FAILPOINT("ingest.after-durable-write");
//
// They are armed only by the environment variable TRIPLINE_FAILPOINTS, read once at
// process start:
//
//   TRIPLINE_FAILPOINTS="ingest.after-durable-write=kill@5,delivery.after-spool=kill"
//
// `name=kill@N` sends SIGKILL to the process on the N-th time the point is reached (N = 1
// when left out), after one line on stderr: "failpoint NAME: SIGKILL at hit N". Unknown
// actions or a malformed spec end the process with exit code 70 at the first failpoint
// reached, so a typo cannot make a test pass vacuously.
//
// Cost when the variable is not set: one load of a global bool and a predicted branch per
// point; nothing is parsed or counted. The points and what they model are listed in
// docs/testing.md.
#pragma once

#include <string_view>

namespace tripline::failpoint {

// True when TRIPLINE_FAILPOINTS was set at process start.
extern const bool g_armed;

// The slow path of TL_FAILPOINT: counts the hit and acts when the point's spec says so.
// Thread-safe.
void Hit(std::string_view name);

}  // namespace tripline::failpoint

#define TL_FAILPOINT(name)                                         \
  do {                                                             \
    if (__builtin_expect(::tripline::failpoint::g_armed, false)) { \
      ::tripline::failpoint::Hit(name);                            \
    }                                                              \
  } while (false)
