// JSON form of domain events: one object per event, as `tripline-sensor --output jsonl`
// prints them and `triplinectl events --json` returns them.
//
//   {"seq":7,"time":"2026-11-25T03:41:07.123Z","time_ns":...,"host":"hosta","host_id":"...",
//    "kind":"login","session":"audit:17","process":{"pid":..,"comm":"sshd",...},
//    "login":{"service":"sshd","user":"alice","remote_addr":"198.18.0.66",...}}
//
// The body sits under the key named by "kind". Enums are lower-case words.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "model/event.h"

namespace tripline {

nlohmann::json EventToJson(const Event& event);
// Inverse of EventToJson. Treats input as hostile: wrong types, unknown enum words and
// over-long strings are errors that name the field.
Result<Event> EventFromJson(const nlohmann::json& j);
// Parses one line of JSON text and then the event; errors say where the text is bad.
Result<Event> EventFromJsonLine(std::string_view line);

}  // namespace tripline
