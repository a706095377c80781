// What an HTTP collector's answer means for the records sent: delivered, refused for good,
// or to be retried. Pure functions over outside input (status code and body as received);
// fuzzed by tests/forward/http_response_fuzz.cc. Never throw.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tripline::forward {

enum class Verdict { kDelivered, kRejected, kRetry };

// By status code alone: 2xx delivered; 408, 429, 5xx and the configuration errors 401,
// 403 and 404 retried (the record is not at fault: fixing the token or the path must not
// lose it); other 4xx rejected; anything else retried.
Verdict VerdictOfStatus(long http_status);

// Splunk HTTP Event Collector (services/collector/event): delivered only on 200 with a JSON
// body whose "code" is 0 ({"text":"Success","code":0}); otherwise VerdictOfStatus, and a
// 200 with any other body is retried. *why describes a failure.
Verdict HecVerdict(long http_status, std::string_view body, std::string* why);

// Elasticsearch _bulk: on 200 the body's "items" hold one result per action, in order, each
// {"index": {"status": N, ...}}. Per item: 2xx delivered, 409 (a version conflict: the
// same or a newer revision is stored already) delivered, otherwise VerdictOfStatus. A 200
// whose body does not parse, or has another number of items than `sent`, retries all.
// Not 200: every item gets VerdictOfStatus.
std::vector<Verdict> BulkVerdicts(long http_status, std::string_view body, size_t sent,
                                  std::string* why);

}  // namespace tripline::forward
