#include "tools/import/log_importer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fnv.h"
#include "model/event_proto.h"
#include "tripline/v1/ingest.grpc.pb.h"

namespace tripline::import {
namespace {

constexpr size_t kHeadLines = 8;
constexpr size_t kHeadBytes = 4096;
constexpr size_t kReadChunk = 1 << 20;
constexpr int64_t kProgressEveryNs = kNanosPerSecond / 4;

// A finaliser so that the two halves differ in every bit, not only where FNV spreads.
uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

std::string Printable(std::string_view s, size_t max = 200) {
  std::string out;
  for (const char c : s.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (s.size() > max) out += "...";
  return out;
}

// Lines of a file, read in chunks; a line longer than kMaxLineBytes comes back cut to
// kMaxLineBytes + 1 bytes (so the parser rejects it) without holding the rest in memory.
class LineReader {
 public:
  explicit LineReader(std::ifstream& in) : in_(in) {}

  bool Next(std::string* line) {
    line->clear();
    bool overlong = false;
    while (true) {
      if (pos_ == buf_.size()) {
        buf_.resize(kReadChunk);
        in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
        buf_.resize(static_cast<size_t>(in_.gcount()));
        pos_ = 0;
        bytes_ += buf_.size();
        if (buf_.empty()) return !line->empty() || overlong;
      }
      const size_t nl = buf_.find('\n', pos_);
      const size_t end = nl == std::string::npos ? buf_.size() : nl;
      const size_t room = kMaxLineBytes + 1 - std::min(line->size(), kMaxLineBytes + 1);
      line->append(buf_, pos_, std::min(end - pos_, room));
      if (end - pos_ > room) overlong = true;
      pos_ = nl == std::string::npos ? buf_.size() : nl + 1;
      if (nl != std::string::npos) {
        if (!line->empty() && line->back() == '\r') line->pop_back();
        return true;
      }
    }
  }
  uint64_t bytes_read() const { return bytes_ - (buf_.size() - pos_); }

 private:
  std::ifstream& in_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t bytes_ = 0;
};

// Cancels a stream when no ack has come for `timeout_ns`: a sync Read has no deadline of
// its own, and an aggregator that stops answering must not hang the import.
class Watchdog {
 public:
  Watchdog(grpc::ClientContext* ctx, int64_t timeout_ns, const Clock& clock)
      : ctx_(ctx), timeout_ns_(timeout_ns), clock_(clock), last_(clock.MonotonicNs()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Progress() {
    std::lock_guard<std::mutex> lock(mu_);
    last_ = clock_.MonotonicNs();
  }
  bool fired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (!stop_ && clock_.MonotonicNs() - last_ > timeout_ns_) {
        fired_ = true;
        ctx_->TryCancel();
        return;
      }
    }
  }
  grpc::ClientContext* const ctx_;
  const int64_t timeout_ns_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t last_;
  bool stop_ = false;
  bool fired_ = false;
  std::thread thread_;
};

class Sender {
 public:
  Sender(const ImportOptions& o, const std::shared_ptr<grpc::Channel>& channel, const Clock& clock,
         ImportReport* r)
      : o_(o), clock_(clock), r_(r), stub_(v1::Ingest::NewStub(channel)) {}

  Status Hello() {
    watchdog_ = std::make_unique<Watchdog>(&ctx_, o_.timeout_ns, clock_);
    stream_ = stub_->Stream(&ctx_);
    v1::IngestRequest req;
    auto* h = req.mutable_hello();
    h->set_sensor_id(r_->sensor_id);
    h->set_host(o_.parse.host);
    h->set_host_id(o_.parse.host);
    h->set_version("triplinectl-import/1");
    if (!stream_->Write(req)) return End("the aggregator closed the stream at the hello");
    v1::IngestAck ack;
    if (!stream_->Read(&ack)) return End("no answer to the hello");
    watchdog_->Progress();
    if (!ack.error().empty()) return Status::InvalidArgument("hello refused: " + ack.error());
    r_->durable_seq = durable_at_start_ = ack.durable_seq();
    return Status::Ok();
  }

  uint64_t durable_at_start() const { return durable_at_start_; }

  // Sends events[0..] numbered from first_seq.
  Status Send(uint64_t first_seq, const std::vector<Event>& events) {
    v1::IngestRequest req;
    auto* b = req.mutable_batch();
    b->set_sensor_id(r_->sensor_id);
    b->set_first_seq(first_seq);
    for (const Event& e : events) {
      Event numbered = e;
      numbered.seq = 0;
      ToProto(numbered, b->add_events());
    }
    while (in_flight_.size() >= o_.max_in_flight) TL_RETURN_IF_ERROR(ReadAck());
    if (!stream_->Write(req)) return End("the aggregator closed the stream");
    in_flight_.push_back({first_seq, events.size()});
    r_->sent += events.size();
    return Status::Ok();
  }

  Status Finish() {
    while (!in_flight_.empty()) TL_RETURN_IF_ERROR(ReadAck());
    stream_->WritesDone();
    const grpc::Status s = stream_->Finish();
    watchdog_.reset();
    if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
      return Status::Unavailable("ingest stream ended with " + s.error_message());
    }
    return Status::Ok();
  }

 private:
  Status ReadAck() {
    v1::IngestAck ack;
    if (!stream_->Read(&ack)) return End("the aggregator stopped answering");
    watchdog_->Progress();
    const auto batch = in_flight_.front();
    in_flight_.pop_front();
    if (!ack.error().empty()) {
      r_->rejected += batch.second;
      if (r_->rejections.size() < o_.max_examples) {
        r_->rejections.push_back("seq " + std::to_string(ack.rejected_first_seq()) + ": " +
                                 ack.error());
      }
    }
    if (ack.durable_seq() > r_->durable_seq) {
      r_->stored += ack.durable_seq() - std::max(r_->durable_seq, durable_at_start_);
      r_->durable_seq = ack.durable_seq();
    }
    return Status::Ok();
  }

  Status End(const std::string& what) {
    const bool timed_out = watchdog_ != nullptr && watchdog_->fired();
    const grpc::Status s = stream_->Finish();
    watchdog_.reset();
    if (timed_out) {
      return Status::DeadlineExceeded(what + ": no answer within " +
                                      FormatDurationNs(o_.timeout_ns));
    }
    return Status::Unavailable(what + (s.ok() ? "" : ": " + s.error_message()));
  }

  const ImportOptions& o_;
  const Clock& clock_;
  ImportReport* const r_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestRequest, v1::IngestAck>> stream_;
  std::unique_ptr<Watchdog> watchdog_;
  std::deque<std::pair<uint64_t, size_t>> in_flight_;
  uint64_t durable_at_start_ = 0;
};

void ShowProgress(std::ostream& out, const ImportReport& r, uint64_t bytes, uint64_t total,
                  int64_t elapsed_ns, bool final) {
  const double secs = std::max(1e-9, static_cast<double>(elapsed_ns) / 1e9);
  const double rate = static_cast<double>(r.events) / secs;
  char line[200];
  std::string left = "-";
  if (bytes > 0 && total > bytes) {
    left = FormatDurationNs(
        static_cast<int64_t>(static_cast<double>(elapsed_ns) * static_cast<double>(total - bytes) /
                             static_cast<double>(bytes)));
  } else if (total <= bytes) {
    left = "0 s";
  }
  std::snprintf(
      line, sizeof(line), "\r%3.0f%%  %llu lines  %llu events  %.0f events/s  %s left   ",
      total == 0 ? 100.0 : 100.0 * static_cast<double>(bytes) / static_cast<double>(total),
      static_cast<unsigned long long>(r.lines), static_cast<unsigned long long>(r.events), rate,
      left.c_str());
  out << line;
  if (final) out << "\n";
  out.flush();
}

}  // namespace

std::string ImportSensorId(LogFormat format, std::string_view host, std::string_view head) {
  // Complete lines only, so a file that was shorter than the head when first imported and
  // has grown since keeps its id as long as its first line was complete.
  size_t end = 0, lines = 0;
  while (lines < kHeadLines) {
    const size_t nl = head.find('\n', end);
    if (nl == std::string_view::npos || nl + 1 > kHeadBytes) break;
    end = nl + 1;
    ++lines;
  }
  if (lines == 0) end = std::min(head.size(), kHeadBytes);  // one unterminated line
  std::string key;
  key.append(LogFormatName(format));
  key.push_back('\0');
  key.append(host);
  key.push_back('\0');
  key.append(head.substr(0, end));
  const uint64_t a = Mix(Fnv1a64(key));
  const uint64_t b = Mix(Fnv1a64(key, 0x84222325cbf29ce4ULL) ^ 0x9e3779b97f4a7c15ULL);
  char hex[40];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return std::string("import-") + hex;
}

Status RunImport(const ImportOptions& options, const std::shared_ptr<grpc::Channel>& channel,
                 std::ostream* progress, const Clock& clock, ImportReport* report) {
  ImportReport& r = *report;
  r = ImportReport{};
  const int64_t started = clock.MonotonicNs();
  if (options.parse.host.empty()) return Status::InvalidArgument("--host is required");
  std::ifstream in(options.path, std::ios::binary);
  if (!in) return Status::IoError("cannot read " + options.path);
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) return Status::InvalidArgument(options.path + " is not a regular file");
  const auto total = static_cast<uint64_t>(size);
  in.seekg(0);
  std::string head(kHeadBytes, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  in.clear();
  in.seekg(0);
  r.sensor_id = ImportSensorId(options.parse.format, options.parse.host, head);

  std::unique_ptr<Sender> sender;
  if (channel != nullptr) {
    sender = std::make_unique<Sender>(options, channel, clock, &r);
    TL_RETURN_IF_ERROR(sender->Hello());
  }

  AuthLogParser parser(options.parse);
  LineReader reader(in);
  std::string line, why;
  std::vector<Event> events, batch;
  uint64_t next_seq = 1, batch_first = 0;
  int64_t last_progress = clock.MonotonicNs();
  const auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    Status s = sender->Send(batch_first, batch);
    batch.clear();
    return s;
  };
  while (reader.Next(&line)) {
    ++r.lines;
    events.clear();
    const LineKind kind = parser.Parse(line, &events, &why);
    switch (kind) {
      case LineKind::kEvents: ++r.lines_with_events; break;
      case LineKind::kNoEvent: ++r.lines_no_event; break;
      case LineKind::kOtherProgram: ++r.lines_other_program; break;
      case LineKind::kEmpty: ++r.lines_empty; break;
      case LineKind::kUnrecognized:
        ++r.lines_unrecognized;
        if (r.unrecognized_examples.size() < options.max_examples) {
          r.unrecognized_examples.push_back({r.lines, Printable(line), why});
        }
        break;
      case LineKind::kMalformed:
        ++r.lines_malformed;
        if (r.malformed_examples.size() < options.max_examples) {
          r.malformed_examples.push_back({r.lines, Printable(line), why});
        }
        break;
    }
    for (Event& e : events) {
      const uint64_t seq = next_seq++;
      ++r.events;
      if (sender == nullptr) continue;
      if (seq <= sender->durable_at_start()) {
        ++r.already_durable;
        continue;
      }
      if (batch.empty()) batch_first = seq;
      batch.push_back(std::move(e));
      if (batch.size() >= options.batch_events) TL_RETURN_IF_ERROR(flush());
    }
    if (progress != nullptr && clock.MonotonicNs() - last_progress >= kProgressEveryNs) {
      last_progress = clock.MonotonicNs();
      ShowProgress(*progress, r, reader.bytes_read(), total, last_progress - started, false);
    }
  }
  if (in.bad()) return Status::IoError("reading " + options.path + " failed");
  if (sender != nullptr) {
    TL_RETURN_IF_ERROR(flush());
    TL_RETURN_IF_ERROR(sender->Finish());
  }
  r.elapsed_ns = clock.MonotonicNs() - started;
  if (progress != nullptr) ShowProgress(*progress, r, total, total, r.elapsed_ns, true);
  return Status::Ok();
}

void PrintImportReport(const ImportReport& r, const ImportOptions& o, bool dry_run,
                       std::ostream& out) {
  out << (dry_run ? "parsed " : "imported ") << o.path << " as host " << o.parse.host << " ("
      << LogFormatName(o.parse.format) << ", sensor id " << r.sensor_id << ")\n";
  out << "  lines                  " << r.lines << "\n"
      << "    with events          " << r.lines_with_events << "\n"
      << "    understood, no event " << r.lines_no_event << "\n"
      << "    other programs       " << r.lines_other_program << "\n"
      << "    empty                " << r.lines_empty << "\n"
      << "    not understood       " << r.lines_unrecognized << "\n"
      << "    malformed            " << r.lines_malformed << "\n"
      << "  events                 " << r.events << "\n";
  if (!dry_run) {
    out << "    already stored       " << r.already_durable << "\n"
        << "    sent                 " << r.sent << "\n"
        << "    newly stored         " << r.stored << "\n"
        << "    rejected             " << r.rejected << "\n"
        << "  durable seq            " << r.durable_seq << "\n";
  }
  if (r.elapsed_ns > 0) {
    char rate[32];
    std::snprintf(rate, sizeof(rate), "%.0f",
                  static_cast<double>(r.events) / (static_cast<double>(r.elapsed_ns) / 1e9));
    out << "  took                   " << FormatDurationNs(r.elapsed_ns) << " (" << rate
        << " events/s)\n";
  }
  const auto examples = [&](const char* title, const std::vector<LineExample>& list) {
    if (list.empty()) return;
    out << title << "\n";
    for (const auto& x : list) {
      out << "  line " << x.line << ": " << x.why << "\n    " << x.text << "\n";
    }
  };
  examples("lines not understood (first few):", r.unrecognized_examples);
  examples("malformed lines (first few):", r.malformed_examples);
  if (!r.rejections.empty()) {
    out << "batches the aggregator rejected:\n";
    for (const auto& x : r.rejections) out << "  " << x << "\n";
  }
}

std::string ImportReportJson(const ImportReport& r, const ImportOptions& o, bool dry_run) {
  using nlohmann::json;
  const auto examples = [](const std::vector<LineExample>& list) {
    json a = json::array();
    for (const auto& x : list) a.push_back({{"line", x.line}, {"text", x.text}, {"why", x.why}});
    return a;
  };
  json j{{"file", o.path},
         {"host", o.parse.host},
         {"format", LogFormatName(o.parse.format)},
         {"dry_run", dry_run},
         {"sensor_id", r.sensor_id},
         {"lines", r.lines},
         {"lines_with_events", r.lines_with_events},
         {"lines_no_event", r.lines_no_event},
         {"lines_other_program", r.lines_other_program},
         {"lines_empty", r.lines_empty},
         {"lines_unrecognized", r.lines_unrecognized},
         {"lines_malformed", r.lines_malformed},
         {"events", r.events},
         {"already_durable", r.already_durable},
         {"sent", r.sent},
         {"stored", r.stored},
         {"rejected", r.rejected},
         {"rejections", r.rejections},
         {"durable_seq", r.durable_seq},
         {"elapsed_ns", r.elapsed_ns},
         {"unrecognized_examples", examples(r.unrecognized_examples)},
         {"malformed_examples", examples(r.malformed_examples)}};
  // Example texts are cut bytes of hostile lines: replace what is not UTF-8.
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace tripline::import
