// JsonlSink: `tripline-sensor --output jsonl`, one event per stdout line.
//
// Threading: used by the event loop thread only.
#pragma once

#include <cstdio>
#include <string>

#include "sensor/event_sink.h"

namespace tripline::sensor {

// One JSON object per line (model/event_json.h), written to a stdio stream and flushed per
// poll round so a reader sees events within the poll timeout. Does not own `out`.
class JsonlSink final : public EventSink {
 public:
  explicit JsonlSink(FILE* out) : out_(out) {}

  Status Emit(Event&& event) override;
  Status Flush() override;
  Status Close(int timeout_ms) override;
  uint64_t dropped() const override { return 0; }

 private:
  FILE* const out_;
  bool pending_ = false;
  std::string line_;  // reused between events
};

}  // namespace tripline::sensor
