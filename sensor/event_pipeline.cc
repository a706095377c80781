#include "sensor/event_pipeline.h"

#include <unistd.h>

#include "common/log.h"

namespace tripline::sensor {
namespace {

EnricherOptions MakeEnricherOptions(const HostIdentity& identity) {
  EnricherOptions options;
  options.identity = identity;
  return options;
}

}  // namespace

EventPipeline::EventPipeline(const HostIdentity& identity, const HostFiles& host_files,
                             const HostFiles& proc_files, const Clock& clock, EventSink& sink)
    : clock_(clock),
      sink_(sink),
      enricher_(MakeEnricherOptions(identity), host_files, proc_files),
      sessions_(SessionTrackerOptions{}, proc_files),
      posture_(host_files),
      health_(clock.MonotonicNs()) {}

Status EventPipeline::HandleKernelEvent(Event&& event) {
  int64_t now = clock_.MonotonicNs();
  enricher_.Enrich(&event, now);
  if (enricher_.TakeAccountErrors(&account_errors_)) {
    for (const std::string& e : account_errors_) {
      TL_LOG(WARNING) << "user names: " << e;
    }
  }
  sessions_.Attribute(&event, now);
  return Emit(std::move(event));
}

Status EventPipeline::Emit(Event&& event) {
  // Kernel strings are bytes; the wire wants UTF-8. Escaped here, after enrichment, so no
  // event is lost to a parse that refuses it (the event names what was escaped).
  EscapeInvalidUtf8(&event);
  // Per-run numbering; the delivery client, which owns the durable sequence, renumbers.
  event.seq = next_seq_++;
  health_.CountEvent(event.kind());
  return sink_.Emit(std::move(event));
}

Event EventPipeline::HostEvent() const {
  Event e;
  e.time_ns = clock_.NowNs();
  e.host = enricher_.identity().host;
  e.host_id = enricher_.identity().host_id;
  // The sensor itself is the process that observed the host state.
  e.process.pid = e.process.tgid = static_cast<uint32_t>(getpid());
  e.process.ppid = static_cast<uint32_t>(getppid());
  e.process.comm = "tripline-sensor";
  return e;
}

Result<size_t> EventPipeline::EmitPosture() { return EmitPosture(posture_.Collect()); }

Result<size_t> EventPipeline::EmitPosture(PostureSnapshot snap) {
  Event e = HostEvent();
  size_t errors = snap.errors.size();
  for (const std::string& err : snap.errors) {
    TL_LOG(WARNING) << "posture: " << err;
  }
  TL_LOG(INFO) << "posture: " << snap.accounts.size() << " accounts, "
               << snap.root_group_members.size() << " root-group members, " << errors << " errors";
  e.body = std::move(snap);
  TL_RETURN_IF_ERROR(Emit(std::move(e)));
  return errors;
}

Result<SensorHealth> EventPipeline::EmitHealth(const ExternalCounters& external) {
  Event e = HostEvent();
  SensorHealth h = health_.Report(clock_.MonotonicNs(), external, ReadSelfRssBytes());
  e.body = h;
  TL_RETURN_IF_ERROR(Emit(std::move(e)));
  return h;
}

}  // namespace tripline::sensor
