#include "tests/aggregator/test_support.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "common/clock.h"
#include "model/event_proto.h"

namespace tripline::testing {

namespace {

Event Base(const std::string& host, const std::string& user, int64_t time_ns) {
  Event e;
  e.time_ns = time_ns;
  e.host = host;
  e.host_id = "id-" + host;
  e.process.pid = e.process.tgid = 4242;
  e.process.uid = 1000;
  e.process.comm = "bash";
  e.process.user = user;
  e.session = "audit:7";
  return e;
}

}  // namespace

Event MakeLogin(const std::string& host, const std::string& user, int64_t time_ns,
                Outcome outcome) {
  Event e = Base(host, "root", time_ns);
  e.process.comm = "sshd";
  LoginEvent l;
  l.service = "sshd";
  l.user = user;
  l.remote_addr = "198.18.0.66";
  l.remote_port = 40022;
  l.outcome = outcome;
  l.source = LoginSource::kPam;
  l.stage = LoginStage::kAuthenticate;
  e.body = l;
  return e;
}

Event MakeExec(const std::string& host, const std::string& user, int64_t time_ns,
               const std::string& filename) {
  Event e = Base(host, user, time_ns);
  ExecEvent x;
  x.filename = filename;
  x.argv = {filename, "-a"};
  x.parent_comm = "bash";
  e.body = x;
  return e;
}

Event MakeFileOpen(const std::string& host, const std::string& user, int64_t time_ns,
                   const std::string& path) {
  Event e = Base(host, user, time_ns);
  FileOpenEvent f;
  f.path = path;
  f.access = FileAccess::kRead;
  f.rule = path;
  e.body = f;
  return e;
}

Event MakeHealth(const std::string& host, int64_t time_ns, uint64_t ringbuf_drops,
                 uint64_t spool_drops) {
  Event e = Base(host, "", time_ns);
  e.process = {};
  SensorHealth h;
  h.ringbuf_drops = ringbuf_drops;
  h.spool_drops = spool_drops;
  h.decode_errors = 1;
  e.body = h;
  return e;
}

std::vector<Event> SyntheticEvents(size_t n, int hosts, int users, uint64_t salt) {
  std::vector<Event> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string host = "host" + std::to_string((i + salt) % hosts);
    const std::string user = "user" + std::to_string((i + salt) % users);
    const int64_t t = kBaseTimeNs + static_cast<int64_t>(i) * 1'000'000;
    switch (i % 4) {
      case 0: out.push_back(MakeLogin(host, user, t)); break;
      case 1: out.push_back(MakeExec(host, user, t)); break;
      case 2: out.push_back(MakeFileOpen(host, user, t)); break;
      default: {
        Event e = MakeExec(host, user, t);
        NetConnectEvent net;
        net.direction = NetDirection::kOutbound;
        net.remote_addr = "198.18.0.9";
        net.remote_port = 22;
        net.family = 2;
        e.body = net;
        out.push_back(std::move(e));
      }
    }
  }
  return out;
}

Event DistinctEvent(size_t i) {
  const std::string host = "host" + std::to_string(i % 3);
  const std::string user = "user" + std::to_string(i % 7);
  const int64_t t = kBaseTimeNs + static_cast<int64_t>(i) * kNanosPerMilli;
  const std::string tag = std::to_string(i);
  if (i % 50 == 0) return MakeLogin(host, user + "-" + tag, t);
  if (i % 50 == 25) {
    Event e = MakeExec(host, user, t);
    NetConnectEvent net;
    net.direction = NetDirection::kOutbound;
    net.remote_addr = "198.18.0.9";
    net.remote_port = static_cast<uint32_t>(1024 + i % 60000);
    net.family = 2;
    e.body = net;
    return e;
  }
  if (i % 2 == 0) return MakeExec(host, user, t, "/usr/bin/tool-" + tag);
  return MakeFileOpen(host, user, t, "/srv/data/file-" + tag);
}

std::vector<Event> DistinctEvents(size_t n) {
  std::vector<Event> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(DistinctEvent(i));
  return out;
}

std::optional<size_t> IndexOfDistinct(int64_t time_ns) {
  if (time_ns < kBaseTimeNs || (time_ns - kBaseTimeNs) % kNanosPerMilli != 0) return std::nullopt;
  return static_cast<size_t>((time_ns - kBaseTimeNs) / kNanosPerMilli);
}

v1::IngestRequest HelloRequest(const std::string& sensor_id) {
  v1::IngestRequest r;
  r.mutable_hello()->set_sensor_id(sensor_id);
  r.mutable_hello()->set_host("host-of-" + sensor_id);
  r.mutable_hello()->set_version("test");
  return r;
}

v1::IngestRequest BatchRequest(const std::string& sensor_id, uint64_t first_seq,
                               const std::vector<Event>& events) {
  v1::IngestRequest r;
  auto* b = r.mutable_batch();
  b->set_sensor_id(sensor_id);
  b->set_first_seq(first_seq);
  for (size_t i = 0; i < events.size(); ++i) {
    auto* e = b->add_events();
    ToProto(events[i], e);
    e->set_seq(first_seq + i);
  }
  return r;
}

namespace {

std::shared_ptr<grpc::Channel> OwnChannel(
    const std::string& target, const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, credentials, args);
}

}  // namespace

IngestClient::IngestClient(const std::string& target)
    : channel_(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())),
      stub_(v1::Ingest::NewStub(channel_)) {
  context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  stream_ = stub_->Stream(&context_);
}

IngestClient::IngestClient(const std::string& target,
                           const std::shared_ptr<grpc::ChannelCredentials>& credentials)
    : channel_(OwnChannel(target, credentials)), stub_(v1::Ingest::NewStub(channel_)) {
  context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  stream_ = stub_->Stream(&context_);
}

std::optional<v1::IngestAck> IngestClient::Send(const v1::IngestRequest& request) {
  if (!stream_->Write(request)) return std::nullopt;
  v1::IngestAck ack;
  if (!stream_->Read(&ack)) return std::nullopt;
  return ack;
}

std::optional<v1::IngestAck> IngestClient::ReadAck() {
  v1::IngestAck ack;
  if (!stream_->Read(&ack)) return std::nullopt;
  return ack;
}

grpc::Status IngestClient::Finish() {
  if (!done_writing_) {
    stream_->WritesDone();
    done_writing_ = true;
  }
  v1::IngestAck ignored;
  while (stream_->Read(&ignored)) {
  }
  return stream_->Finish();
}

}  // namespace tripline::testing
