#include "sensor/jsonl_sink.h"

#include <cerrno>

#include "model/event_json.h"

namespace tripline::sensor {

Status JsonlSink::Emit(Event&& event) {
  line_.clear();
  // Invalid UTF-8 (a comm or path is whatever bytes the process chose) is replaced rather
  // than thrown on: dump() must not throw on the event path.
  line_ = EventToJson(event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line_ += '\n';
  if (std::fwrite(line_.data(), 1, line_.size(), out_) != line_.size()) {
    return Status::FromErrno(errno, "write to stdout");
  }
  pending_ = true;
  return Status::Ok();
}

Status JsonlSink::Flush() {
  if (!pending_) return Status::Ok();
  pending_ = false;
  if (std::fflush(out_) != 0) return Status::FromErrno(errno, "flush stdout");
  return Status::Ok();
}

Status JsonlSink::Close(int /*timeout_ms*/) { return Flush(); }

}  // namespace tripline::sensor
