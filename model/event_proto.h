// Conversion between domain events and the wire form (tripline.v1.Event).
//
// Used only at the edges: the sensor's delivery client and the aggregator's services.
// FromProto treats its input as hostile: every string and list is bounded, every enum is
// range-checked, and the first violation is returned as an InvalidArgument naming the field.
#pragma once

#include "common/status.h"
#include "model/event.h"
#include "tripline/v1/event.pb.h"

namespace tripline {

// Bounds applied by FromProto.
constexpr size_t kMaxWireString = 4096;
constexpr size_t kMaxWireArgs = 256;
constexpr size_t kMaxWireAccounts = 65536;
constexpr size_t kMaxWireListItems = 4096;
// escaped_fields names strings anywhere in the event, a posture snapshot's included (up to
// kMaxWireAccounts accounts with several strings each); the message size bounds it first.
constexpr size_t kMaxWireEscapedFields = kMaxWireAccounts * 8;

void ToProto(const Event& event, v1::Event* out);
Result<Event> FromProto(const v1::Event& in);

}  // namespace tripline
