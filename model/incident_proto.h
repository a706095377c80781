// Conversion between the domain Incident and its wire form (tripline.v1.Incident), used by
// the aggregator's query service and by triplinectl. FromProto checks what it reads: an
// unknown severity, a confidence outside 0..1 or an over-long string is InvalidArgument.
#pragma once

#include "common/status.h"
#include "model/incident.h"
#include "tripline/v1/query.pb.h"

namespace tripline {

void ToProto(const Incident& incident, v1::Incident* out);
Result<Incident> FromProto(const v1::Incident& in);

}  // namespace tripline
