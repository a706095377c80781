#include "aggregator/cluster/jetstream.h"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"

namespace tripline::cluster {
namespace {

constexpr const char* kMsgIdHeader = "Nats-Msg-Id";

int64_t NowMs() { return SystemClock::Get().MonotonicNs() / kNanosPerMilli; }

// "what: <library text> (<last error>) [JetStream error N]": everything the library says.
Status NatsError(std::string_view what, natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string msg(what);
  msg += ": ";
  msg += natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail != nullptr && *detail != '\0' && std::string_view(detail) != natsStatus_GetText(s)) {
    msg += " (";
    msg += detail;
    msg += ")";
  }
  if (jerr != 0) msg += " [JetStream error " + std::to_string(static_cast<int>(jerr)) + "]";
  if (s == NATS_TIMEOUT) return Status::DeadlineExceeded(msg);
  return Status::Unavailable(msg);
}

// A NUL-terminated copy: the C client takes C strings.
std::string Z(std::string_view s) { return std::string(s); }

// Whether this thread's last NATS error is the stream refusing a write made on a revision
// that is no longer the key's (a compare-and-set that lost). Told by the server's own
// words: the key-value calls return a plain error status for it. Read at once after the
// failed call: a later call on this thread replaces it.
bool WrongLastSequence() {
  const char* text = nats_GetLastError(nullptr);
  return text != nullptr && std::strstr(text, "wrong last sequence") != nullptr;
}

}  // namespace

// ---- JetStream --------------------------------------------------------------------------

struct JetStream::Impl {
  ClusterOptions options;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  jsOptions js_options{};

  // When setting up (streams, consumers, buckets) gives up: right after the servers start,
  // the cluster answers JetStream requests only once it elected a leader.
  int64_t SetupDeadline() const {
    return NowMs() + 3 * std::max<int64_t>(options.request_timeout_ms, 1000);
  }
  // Waits until the cluster answers JetStream requests (asked with a short timeout, since
  // a request sent before there is a leader gets no answer at all).
  Status AwaitJetStream(int64_t deadline) const {
    for (;;) {
      jsOptions o;
      jsOptions_Init(&o);
      o.Wait = std::min<int64_t>(1000, options.request_timeout_ms);
      jsAccountInfo* ai = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      const natsStatus s = js_GetAccountInfo(&ai, js, &o, &jerr);
      if (s == NATS_OK) {
        jsAccountInfo_Destroy(ai);
        return Status::Ok();
      }
      if (NowMs() >= deadline) return NatsError("cluster: JetStream not answering", s, jerr);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  ~Impl() {
    if (js != nullptr) jsCtx_Destroy(js);
    if (conn != nullptr) {
      natsConnection_Close(conn);
      natsConnection_Destroy(conn);
    }
  }
};

JetStream::JetStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JetStream::~JetStream() = default;

Result<std::unique_ptr<JetStream>> JetStream::Connect(const ClusterOptions& options) {
  if (options.servers.empty()) return Status::InvalidArgument("cluster: no NATS server given");
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return NatsError("cluster: NATS options", s);
  std::vector<const char*> urls;
  urls.reserve(options.servers.size());
  for (const std::string& u : options.servers) urls.push_back(u.c_str());
  s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, options.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, options.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, options.reconnect_wait_ms);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return Status::InvalidArgument(
        NatsError("cluster: server list " + options.servers.front() + "...", s).message());
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  s = natsConnection_Connect(&impl->conn, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    impl->conn = nullptr;
    return NatsError("cluster: connecting to " + options.servers.front(), s);
  }
  jsOptions_Init(&impl->js_options);
  impl->js_options.Wait = options.request_timeout_ms;
  s = natsConnection_JetStream(&impl->js, impl->conn, &impl->js_options);
  if (s != NATS_OK) return NatsError("cluster: JetStream context", s);
  return std::unique_ptr<JetStream>(new JetStream(std::move(impl)));
}

bool JetStream::Connected() const {
  return natsConnection_Status(impl_->conn) == NATS_CONN_STATUS_CONNECTED;
}

Status JetStream::EnsureStream(const StreamSpec& spec) {
  if (spec.name.empty() || spec.subjects.empty()) {
    return Status::InvalidArgument("cluster: a stream needs a name and subjects");
  }
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = spec.name.c_str();
  std::vector<const char*> subjects;
  for (const std::string& sub : spec.subjects) subjects.push_back(sub.c_str());
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  cfg.Replicas = spec.replicas;
  cfg.Duplicates = spec.duplicate_window_ms * kNanosPerMilli;
  cfg.MaxAge = spec.max_age_ms * kNanosPerMilli;
  cfg.MaxBytes = spec.max_bytes;
  cfg.Storage = spec.memory ? js_MemoryStorage : js_FileStorage;
  const int64_t deadline = impl_->SetupDeadline();
  TL_RETURN_IF_ERROR(impl_->AwaitJetStream(deadline));
  for (;;) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, impl_->js, &cfg, nullptr, &jerr);
    if (s == NATS_OK) {
      jsStreamInfo_Destroy(si);
      return Status::Ok();
    }
    if (jerr == JSStreamNameExistErr) {
      s = js_UpdateStream(&si, impl_->js, &cfg, nullptr, &jerr);
      if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return Status::Ok();
      }
    }
    if (NowMs() >= deadline) return NatsError("cluster: stream " + spec.name, s, jerr);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<uint64_t> JetStream::StreamMessages(const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&si, impl_->js, stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return NatsError("cluster: stream " + stream, s, jerr);
  const uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

Result<std::string> JetStream::StreamLeader(const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&si, impl_->js, stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return NatsError("cluster: stream " + stream, s, jerr);
  std::string leader;
  if (si->Cluster != nullptr && si->Cluster->Leader != nullptr) leader = si->Cluster->Leader;
  jsStreamInfo_Destroy(si);
  return leader;
}

Result<std::optional<ConsumerLag>> JetStream::Lag(const std::string& stream,
                                                  const std::string& durable) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_GetConsumerInfo(&ci, impl_->js, stream.c_str(), durable.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) return std::optional<ConsumerLag>();
  if (s != NATS_OK) return NatsError("cluster: consumer " + stream + "/" + durable, s, jerr);
  ConsumerLag lag{ci->NumPending, static_cast<uint64_t>(std::max<int64_t>(0, ci->NumAckPending)),
                  ci->AckFloor.Stream};
  jsConsumerInfo_Destroy(ci);
  return std::optional<ConsumerLag>(lag);
}

Result<PublishAck> JetStream::Publish(const Outgoing& m) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = m.id.empty() ? nullptr : m.id.c_str();
  jsPubAck* pa = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_Publish(&pa, impl_->js, m.subject.c_str(), m.data.data(),
                                  static_cast<int>(m.data.size()), &po, &jerr);
  if (s != NATS_OK) return NatsError("cluster: publishing to " + m.subject, s, jerr);
  PublishAck ack{pa->Sequence, pa->Duplicate};
  jsPubAck_Destroy(pa);
  return ack;
}

namespace {

// What one round of asynchronous publishes learned, filled by the ack handler.
struct AckBook {
  std::mutex mu;
  const std::unordered_map<std::string, size_t>* index = nullptr;
  std::vector<bool>* acked = nullptr;
  std::string last_error;
};

void OnPublishAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* book = static_cast<AckBook*>(closure);
  const char* id = nullptr;
  if (natsMsgHeader_Get(msg, kMsgIdHeader, &id) == NATS_OK && id != nullptr) {
    std::lock_guard<std::mutex> lock(book->mu);
    const auto it = book->index->find(id);
    if (pa != nullptr && it != book->index->end()) {
      (*book->acked)[it->second] = true;
    } else if (pae != nullptr) {
      book->last_error = pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
    }
  }
  natsMsg_Destroy(msg);
}

}  // namespace

Status JetStream::PublishAll(std::span<const Outgoing> messages, int64_t deadline_ms) {
  if (messages.empty()) return Status::Ok();
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].id.empty()) {
      return Status::InvalidArgument("cluster: PublishAll needs an id for every message");
    }
    index.emplace(messages[i].id, i);  // a repeated id is one message
  }
  std::vector<bool> acked(messages.size(), false);
  // Repeated ids: the copies count as acknowledged with the first.
  for (size_t i = 0; i < messages.size(); ++i) {
    if (index.at(messages[i].id) != i) acked[i] = true;
  }
  const int64_t deadline = NowMs() + deadline_ms;
  AckBook book;
  book.index = &index;
  book.acked = &acked;
  std::string last_error = "no acknowledgement in time";
  for (int round = 0;; ++round) {
    // A context per round: its handler and pending list belong to this call alone.
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = impl_->options.request_timeout_ms;
    jo.PublishAsync.AckHandler = OnPublishAck;
    jo.PublishAsync.AckHandlerClosure = &book;
    jo.PublishAsync.MaxPending = 4096;
    jsCtx* js = nullptr;
    natsStatus s = natsConnection_JetStream(&js, impl_->conn, &jo);
    if (s != NATS_OK) return NatsError("cluster: JetStream context", s);
    for (size_t i = 0; i < messages.size(); ++i) {
      {
        std::lock_guard<std::mutex> lock(book.mu);
        if (acked[i]) continue;
      }
      const Outgoing& m = messages[i];
      natsMsg* msg = nullptr;
      s = natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.data.data(),
                         static_cast<int>(m.data.size()));
      if (s == NATS_OK) s = natsMsgHeader_Set(msg, kMsgIdHeader, m.id.c_str());
      if (s == NATS_OK) s = js_PublishMsgAsync(js, &msg, nullptr);
      if (msg != nullptr) natsMsg_Destroy(msg);  // not taken by the library
      if (s != NATS_OK) {
        last_error = NatsError("publishing to " + m.subject, s).message();
        break;  // the rest goes in the next round
      }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = std::max<int64_t>(1, deadline - NowMs());
    s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK) {
      // Those still unacknowledged go again in the next round, under the same ids.
      natsMsgList pending{};
      if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK) natsMsgList_Destroy(&pending);
      last_error = NatsError("waiting for acknowledgements", s).message();
    }
    jsCtx_Destroy(js);
    bool all = true;
    {
      std::lock_guard<std::mutex> lock(book.mu);
      for (bool a : acked) all = all && a;
      if (!book.last_error.empty()) last_error = book.last_error;
    }
    if (all) return Status::Ok();
    if (NowMs() >= deadline) {
      const size_t missing = static_cast<size_t>(std::count(acked.begin(), acked.end(), false));
      return Status::Unavailable("cluster: " + std::to_string(missing) + " of " +
                                 std::to_string(messages.size()) +
                                 " messages not acknowledged in time: " + last_error);
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min<int64_t>(100, 10 << std::min(round, 4))));
  }
}

// ---- PullConsumer -----------------------------------------------------------------------

struct PullConsumer::Impl {
  natsSubscription* sub = nullptr;
  std::map<uint64_t, natsMsg*> unacked;  // by stream sequence, from the last fetches
  std::string name;
  bool cumulative = false;
  // The consumer sequence of the next delivery (0: not known, a consumer bound as it was).
  // JetStream numbers each hand-out; one missing was handed out and never came here (lost
  // with a server on the way, or fetched by another subscriber). Acknowledging past it
  // cumulatively would acknowledge a message never seen, so a gap stops the consumer.
  uint64_t next_delivery = 0;
  std::string broken;  // why the consumer stopped; it must be made anew

  ~Impl() {
    for (auto& [seq, msg] : unacked) natsMsg_Destroy(msg);  // handed out again later
    if (sub != nullptr) natsSubscription_Destroy(sub);      // the durable stays
  }
};

PullConsumer::PullConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PullConsumer::~PullConsumer() = default;

Result<std::unique_ptr<PullConsumer>> JetStream::Consume(const ConsumerSpec& spec) {
  if (spec.stream.empty() || spec.durable.empty() || spec.filter_subject.empty()) {
    return Status::InvalidArgument("cluster: a consumer needs a stream, a name and a subject");
  }
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = spec.stream.c_str();
  so.Config.Durable = spec.durable.c_str();
  so.Config.AckPolicy = spec.ack_cumulative ? js_AckAll : js_AckExplicit;
  // Left unset to bind to a consumer as it is (made with any start); made new, it starts
  // at the stream's beginning.
  if (spec.start_sequence > 0) {
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = spec.start_sequence;
  }
  so.Config.AckWait = spec.ack_wait_ms * kNanosPerMilli;
  so.Config.MaxAckPending = spec.max_ack_pending;
  so.Config.FilterSubject = spec.filter_subject.c_str();
  auto impl = std::make_unique<PullConsumer::Impl>();
  impl->name = spec.stream + "/" + spec.durable;
  impl->cumulative = spec.ack_cumulative;
  if (spec.start_sequence > 0) impl->next_delivery = 1;  // made anew: numbered from 1
  const int64_t deadline = impl_->SetupDeadline();
  TL_RETURN_IF_ERROR(impl_->AwaitJetStream(deadline));
  if (spec.start_sequence > 0) {
    for (;;) {
      jsErrCode jerr = static_cast<jsErrCode>(0);
      const natsStatus s =
          js_DeleteConsumer(impl_->js, spec.stream.c_str(), spec.durable.c_str(), nullptr, &jerr);
      if (s == NATS_OK || s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) break;
      if (NowMs() >= deadline) {
        return NatsError("cluster: deleting consumer " + impl->name, s, jerr);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  for (;;) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_PullSubscribe(&impl->sub, impl_->js, spec.filter_subject.c_str(),
                                          spec.durable.c_str(), nullptr, &so, &jerr);
    if (s == NATS_OK) break;
    impl->sub = nullptr;
    if (NowMs() >= deadline) return NatsError("cluster: consumer " + impl->name, s, jerr);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::unique_ptr<PullConsumer>(new PullConsumer(std::move(impl)));
}

Result<std::vector<Delivered>> PullConsumer::Fetch(int max, int64_t timeout_ms) {
  if (!impl_->broken.empty()) return Status::Aborted(impl_->broken);
  natsMsgList list{};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = NATS_OK;
  if (timeout_ms > 0) {
    s = natsSubscription_Fetch(&list, impl_->sub, std::max(1, max), timeout_ms, &jerr);
  } else {
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = std::max(1, max);
    req.NoWait = true;
    req.Expires = 0;  // with an expiry the server waits it out when nothing is there
    s = natsSubscription_FetchRequest(&list, impl_->sub, &req);
  }
  std::vector<Delivered> out;
  if (s == NATS_TIMEOUT || (timeout_ms <= 0 && s == NATS_NOT_FOUND)) return out;
  if (s != NATS_OK) return NatsError("cluster: fetching from " + impl_->name, s, jerr);
  out.reserve(static_cast<size_t>(list.Count));
  for (int i = 0; i < list.Count; ++i) {
    natsMsg* msg = list.Msgs[i];
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) continue;  // not a stream message
    Delivered d;
    d.subject = natsMsg_GetSubject(msg);
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, kMsgIdHeader, &id) == NATS_OK && id != nullptr) d.id = id;
    d.data.assign(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    d.stream_sequence = meta->Sequence.Stream;
    d.deliveries = meta->NumDelivered;
    d.time_ns = meta->Timestamp;
    d.pending = meta->NumPending;
    const uint64_t delivery = meta->Sequence.Consumer;
    jsMsgMetaData_Destroy(meta);
    if (impl_->cumulative && impl_->next_delivery != 0 && delivery != impl_->next_delivery) {
      impl_->broken = "cluster: " + impl_->name + " handed out delivery " +
                      std::to_string(impl_->next_delivery) + " and it never came here (" +
                      std::to_string(delivery) + " came, stream sequence " +
                      std::to_string(d.stream_sequence) +
                      "); acknowledging past it would lose it: the consumer must be made anew";
      natsMsgList_Destroy(&list);  // with the messages not taken yet
      for (auto& [seq, m] : impl_->unacked) natsMsg_Destroy(m);
      impl_->unacked.clear();
      return Status::Aborted(impl_->broken);
    }
    impl_->next_delivery = delivery + 1;
    auto [it, fresh] = impl_->unacked.emplace(d.stream_sequence, msg);
    if (!fresh) {
      natsMsg_Destroy(it->second);
      it->second = msg;
    }
    list.Msgs[i] = nullptr;  // kept for Ack
    out.push_back(std::move(d));
  }
  natsMsgList_Destroy(&list);
  return out;
}

Status PullConsumer::Ack(uint64_t stream_sequence) {
  const auto it = impl_->unacked.find(stream_sequence);
  if (it == impl_->unacked.end()) {
    return Status::NotFound("cluster: no unacknowledged message " +
                            std::to_string(stream_sequence) + " from " + impl_->name);
  }
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = natsMsg_AckSync(it->second, nullptr, &jerr);
  if (s != NATS_OK) {
    return NatsError(
        "cluster: acknowledging " + std::to_string(stream_sequence) + " of " + impl_->name, s,
        jerr);
  }
  natsMsg_Destroy(it->second);
  impl_->unacked.erase(it);
  return Status::Ok();
}

Status PullConsumer::AckAll() {
  if (impl_->unacked.empty()) return Status::Ok();
  return AckThrough(impl_->unacked.rbegin()->first);
}

Status PullConsumer::AckThrough(uint64_t stream_sequence) {
  if (!impl_->broken.empty()) return Status::Aborted(impl_->broken);
  auto end = impl_->unacked.upper_bound(stream_sequence);
  if (end == impl_->unacked.begin()) return Status::Ok();
  if (!impl_->cumulative) {
    while (!impl_->unacked.empty() && impl_->unacked.begin()->first <= stream_sequence) {
      TL_RETURN_IF_ERROR(Ack(impl_->unacked.begin()->first));
    }
    return Status::Ok();
  }
  // The last one acknowledges those before it.
  TL_RETURN_IF_ERROR(Ack(std::prev(end)->first));
  for (auto it = impl_->unacked.begin();
       it != impl_->unacked.end() && it->first <= stream_sequence;) {
    natsMsg_Destroy(it->second);
    it = impl_->unacked.erase(it);
  }
  return Status::Ok();
}

size_t PullConsumer::unacknowledged() const { return impl_->unacked.size(); }

// ---- KeyValue ---------------------------------------------------------------------------

std::string HexKey(std::string_view prefix, std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string k(prefix);
  k.reserve(prefix.size() + 2 * bytes.size());
  for (unsigned char c : bytes) {
    k += kHex[c >> 4];
    k += kHex[c & 15];
  }
  return k;
}

struct KeyValue::Impl {
  kvStore* kv = nullptr;
  std::string bucket;
  ~Impl() {
    if (kv != nullptr) kvStore_Destroy(kv);
  }
  std::string What(std::string_view key) const { return "cluster: key " + bucket + "/" + Z(key); }
};

KeyValue::KeyValue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeyValue::~KeyValue() = default;

Result<std::unique_ptr<KeyValue>> JetStream::Bucket(const std::string& name, int replicas,
                                                    int history) {
  auto impl = std::make_unique<KeyValue::Impl>();
  impl->bucket = name;
  const int64_t deadline = impl_->SetupDeadline();
  TL_RETURN_IF_ERROR(impl_->AwaitJetStream(deadline));
  for (;;) {
    natsStatus s = js_KeyValue(&impl->kv, impl_->js, name.c_str());
    if (s == NATS_NOT_FOUND) {
      kvConfig cfg;
      kvConfig_Init(&cfg);
      cfg.Bucket = name.c_str();
      cfg.Replicas = replicas;
      cfg.History = static_cast<uint8_t>(std::clamp(history, 1, 64));
      s = js_CreateKeyValue(&impl->kv, impl_->js, &cfg);
    }
    if (s == NATS_OK) break;
    impl->kv = nullptr;
    if (NowMs() >= deadline) return NatsError("cluster: bucket " + name, s);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::unique_ptr<KeyValue>(new KeyValue(std::move(impl)));
}

Result<std::optional<KvEntry>> KeyValue::Get(std::string_view key) {
  kvEntry* e = nullptr;
  const std::string k = Z(key);
  const natsStatus s = kvStore_Get(&e, impl_->kv, k.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<KvEntry>();
  if (s != NATS_OK) return NatsError(impl_->What(key), s);
  std::optional<KvEntry> out;
  if (kvEntry_Operation(e) == kvOp_Put) {
    const auto* data = static_cast<const char*>(kvEntry_Value(e));
    out =
        KvEntry{std::string(data == nullptr ? "" : data, static_cast<size_t>(kvEntry_ValueLen(e))),
                kvEntry_Revision(e)};
  }
  kvEntry_Destroy(e);
  return out;
}

Result<uint64_t> KeyValue::Create(std::string_view key, std::string_view value) {
  uint64_t rev = 0;
  const std::string k = Z(key);
  const natsStatus s =
      kvStore_Create(&rev, impl_->kv, k.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_OK) return rev;
  if (WrongLastSequence()) return Status::AlreadyExists(impl_->What(key) + " exists");
  // Failed: because the key has a value, or for a reason of the cluster's; an answer lost
  // with a server leaves the write landed, the key holding this very value.
  const auto now = Get(key);
  if (now.ok() && now->has_value()) {
    if ((*now)->value == value) return (*now)->revision;
    return Status::AlreadyExists(impl_->What(key) + " exists");
  }
  return NatsError(impl_->What(key), s);
}

Result<uint64_t> KeyValue::Update(std::string_view key, std::string_view value, uint64_t expected) {
  uint64_t rev = 0;
  const std::string k = Z(key);
  const natsStatus s = kvStore_Update(&rev, impl_->kv, k.c_str(), value.data(),
                                      static_cast<int>(value.size()), expected);
  if (s == NATS_OK) return rev;
  if (WrongLastSequence()) {
    return Status::Aborted(impl_->What(key) + " changed: expected revision " +
                           std::to_string(expected));
  }
  // Unknown whether it landed (an answer lost with a server): it did when the key now
  // holds this very value at a later revision.
  const auto now = Get(key);
  if (now.ok() && now->has_value() && (*now)->revision > expected && (*now)->value == value) {
    return (*now)->revision;
  }
  if (now.ok() && (!now->has_value() || (*now)->revision != expected)) {
    return Status::Aborted(impl_->What(key) + " changed: expected revision " +
                           std::to_string(expected) + ", now " +
                           (now->has_value() ? std::to_string((*now)->revision) : "none"));
  }
  return NatsError(impl_->What(key), s);
}

Result<uint64_t> KeyValue::Put(std::string_view key, std::string_view value) {
  uint64_t rev = 0;
  const std::string k = Z(key);
  const natsStatus s =
      kvStore_Put(&rev, impl_->kv, k.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return NatsError(impl_->What(key), s);
  return rev;
}

std::string KeyValue::Subject(std::string_view key) const {
  return "$KV." + impl_->bucket + "." + std::string(key);
}

Status KeyValue::Delete(std::string_view key) {
  const std::string k = Z(key);
  const natsStatus s = kvStore_Delete(impl_->kv, k.c_str());
  if (s != NATS_OK && s != NATS_NOT_FOUND) return NatsError(impl_->What(key), s);
  return Status::Ok();
}

Result<std::vector<std::string>> KeyValue::Keys() {
  kvKeysList list{};
  const natsStatus s = kvStore_Keys(&list, impl_->kv, nullptr);
  std::vector<std::string> out;
  if (s == NATS_NOT_FOUND) return out;
  if (s != NATS_OK) return NatsError("cluster: keys of " + impl_->bucket, s);
  for (int i = 0; i < list.Count; ++i) out.emplace_back(list.Keys[i]);
  kvKeysList_Destroy(&list);
  return out;
}

// ---- KvWatcher --------------------------------------------------------------------------

struct KvWatcher::Impl {
  kvWatcher* w = nullptr;
  std::string bucket;
  ~Impl() {
    if (w != nullptr) kvWatcher_Destroy(w);
  }
};

KvWatcher::KvWatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvWatcher::~KvWatcher() = default;

Result<std::unique_ptr<KvWatcher>> KeyValue::Watch() {
  auto impl = std::make_unique<KvWatcher::Impl>();
  impl->bucket = impl_->bucket;
  const natsStatus s = kvStore_WatchAll(&impl->w, impl_->kv, nullptr);
  if (s != NATS_OK) return NatsError("cluster: watching " + impl_->bucket, s);
  return std::unique_ptr<KvWatcher>(new KvWatcher(std::move(impl)));
}

Result<std::optional<KvChange>> KvWatcher::Next(int64_t timeout_ms) {
  kvEntry* e = nullptr;
  const natsStatus s = kvWatcher_Next(&e, impl_->w, std::max<int64_t>(1, timeout_ms));
  if (s == NATS_TIMEOUT) return std::optional<KvChange>();
  if (s != NATS_OK) return NatsError("cluster: watching " + impl_->bucket, s);
  KvChange c;
  if (e == nullptr) return std::optional<KvChange>(std::move(c));  // the initial values came
  c.key = kvEntry_Key(e);
  c.revision = kvEntry_Revision(e);
  if (kvEntry_Operation(e) == kvOp_Put) {
    const auto* data = static_cast<const char*>(kvEntry_Value(e));
    c.value = std::string(data == nullptr ? "" : data, static_cast<size_t>(kvEntry_ValueLen(e)));
  }
  kvEntry_Destroy(e);
  return std::optional<KvChange>(std::move(c));
}

}  // namespace tripline::cluster
