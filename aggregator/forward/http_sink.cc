// https:// (and http:// on loopback): a generic webhook (format ocsf or ecs: one JSON object
// per POST), Splunk's HTTP Event Collector (format hec: the run's events in one POST,
// "Authorization: Splunk TOKEN") and Elasticsearch's _bulk API (format elastic-bulk: the
// run's index actions in one POST, "Authorization: ApiKey TOKEN"), by libcurl over one
// kept-alive connection. Certificates are verified against the configured CA (or the
// system's), with the host name or IP checked; redirects are not followed.
#include <curl/curl.h>
#include <unistd.h>

#include <mutex>

#include "aggregator/forward/http_responses.h"
#include "aggregator/forward/incident_formats.h"
#include "aggregator/forward/sink.h"
#include "common/clock.h"

namespace tripline::forward {
namespace {

// Collectors answer with small JSON documents; a larger answer is cut here (and then does
// not parse, which retries).
constexpr size_t kMaxResponseBytes = 4 << 20;
// Index named in _bulk actions when the URL's path is /_bulk (no index in the path).
constexpr std::string_view kDefaultIndex = "tripline-incidents";
// ... and for audit events (another document shape: ECS event.kind "event").
constexpr std::string_view kDefaultAuditIndex = "tripline-audit";

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * n;
  if (body->size() < kMaxResponseBytes) {
    body->append(data, std::min(bytes, kMaxResponseBytes - body->size()));
  }
  return bytes;
}

class HttpSink final : public Sink {
 public:
  HttpSink(const ForwardTarget& target, const SinkOptions& options)
      : target_(target), options_(options) {
    url_ = (target.kind == ForwardTarget::Kind::kHttps ? "https://" : "http://") +
           target.address.ToString() + (target.path.empty() ? "/" : target.path);
    if (target.format == "elastic-bulk") {
      index_ = target.path == "/_bulk" || target.path == "/_bulk/" ? kDefaultIndex : "";
    }
    std::string auth;
    if (!options.token.empty()) {
      if (target.format == "hec") {
        auth = "Authorization: Splunk " + options.token;
      } else if (target.format == "elastic-bulk") {
        auth = "Authorization: ApiKey " + options.token;
      } else {
        auth = "Authorization: Bearer " + options.token;
      }
      headers_ = curl_slist_append(headers_, auth.c_str());
    }
    headers_ = curl_slist_append(headers_, target.format == "elastic-bulk"
                                               ? "Content-Type: application/x-ndjson"
                                               : "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Expect:");
  }
  ~HttpSink() override {
    Reset();
    curl_slist_free_all(headers_);
  }

  SendOutcome Send(const std::vector<ForwardRecord>& records) override {
    if (target_.format == "hec" || target_.format == "elastic-bulk") return SendBatch(records);
    SendOutcome out;
    for (const ForwardRecord& r : records) {
      const std::string body = std::visit(
          [&](const auto& record) {
            return JsonLine(target_.format == "ecs" ? ToEcs(record) : ToOcsf(record));
          },
          r);
      long status = 0;
      std::string response;
      if (Status s = Post(body, &status, &response); !s.ok()) {
        out.error = s;
        return out;
      }
      const Verdict v = VerdictOfStatus(status);
      if (v == Verdict::kRetry) {
        out.error = Status::Unavailable(url_ + " answered " + std::to_string(status));
        return out;
      }
      (v == Verdict::kDelivered ? out.delivered : out.rejected) += 1;
    }
    return out;
  }

  void Reset() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
    curl_ = nullptr;
  }

 private:
  SendOutcome SendBatch(const std::vector<ForwardRecord>& records) {
    SendOutcome out;
    std::string body;
    for (const ForwardRecord& r : records) {
      if (target_.format == "hec") {
        body +=
            std::visit([&](const auto& record) { return HecEvent(record, options_.hostname); }, r);
      } else if (const auto* incident = std::get_if<Incident>(&r)) {
        body += BulkIndexLines(*incident, index_);
      } else {
        body += BulkIndexLines(std::get<v1::AuditEvent>(r),
                               index_.empty() ? std::string_view() : kDefaultAuditIndex);
      }
    }
    long status = 0;
    std::string response;
    if (Status s = Post(body, &status, &response); !s.ok()) {
      out.error = s;
      return out;
    }
    std::string why;
    std::vector<Verdict> verdicts;
    if (target_.format == "hec") {
      verdicts.assign(records.size(), HecVerdict(status, response, &why));
    } else {
      verdicts = BulkVerdicts(status, response, records.size(), &why);
    }
    // A batch refused as a whole may be refused for one record: it is not dropped, but
    // retried one record at a time, so that only the record at fault is refused.
    if (records.size() > 1 && target_.format == "hec" && verdicts.front() == Verdict::kRejected) {
      out.error = Status::Unavailable(why + " (retrying one record at a time)");
      out.retry_one_by_one = true;
      return out;
    }
    for (Verdict v : verdicts) {
      if (v == Verdict::kRetry) {
        out.error = Status::Unavailable(why);
        return out;
      }
      (v == Verdict::kDelivered ? out.delivered : out.rejected) += 1;
    }
    return out;
  }

  Status Post(const std::string& body, long* status, std::string* response) {
    if (curl_ == nullptr) {
      curl_ = curl_easy_init();
      if (curl_ == nullptr) return Status::Internal("curl_easy_init failed");
    }
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "tripline-aggregator");
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(options_.timeout_ns / kNanosPerMilli));
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.timeout_ns / kNanosPerMilli));
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty())
      curl_easy_setopt(curl_, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &CollectBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, response);
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error);
    const CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) {
      const std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
      Reset();
      return Status::Unavailable("POST " + url_ + ": " + why);
    }
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, status);
    return Status::Ok();
  }

  const ForwardTarget target_;
  const SinkOptions options_;
  std::string url_;
  std::string index_;
  curl_slist* headers_ = nullptr;
  CURL* curl_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Sink>> MakeHttpSink(const ForwardTarget& target,
                                           const SinkOptions& options) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  SinkOptions own = options;
  if (!target.ca_file.empty()) own.ca_file = target.ca_file;
  if (!target.token_file.empty()) {
    TL_ASSIGN_OR_RETURN(own.token, ReadForwardToken(target.token_file));
  }
  if (!own.ca_file.empty() && ::access(own.ca_file.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("cannot read CA file " + own.ca_file + " of " + target.url);
  }
  return std::unique_ptr<Sink>(new HttpSink(target, own));
}

}  // namespace tripline::forward
