#include "aggregator/forward/http_responses.h"

#include <nlohmann/json.hpp>
#include <string>

namespace tripline::forward {
namespace {

std::string Snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 200)) {
    out.push_back(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f ? c : '?');
  }
  return out;
}

}  // namespace

Verdict VerdictOfStatus(long http_status) {
  if (http_status >= 200 && http_status < 300) return Verdict::kDelivered;
  if (http_status == 401 || http_status == 403 || http_status == 404 || http_status == 408 ||
      http_status == 429) {
    return Verdict::kRetry;
  }
  if (http_status >= 400 && http_status < 500) return Verdict::kRejected;
  return Verdict::kRetry;
}

Verdict HecVerdict(long http_status, std::string_view body, std::string* why) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (http_status == 200) {
    if (j.is_object() && j.contains("code") && j["code"].is_number_integer() &&
        j["code"].get<int64_t>() == 0) {
      return Verdict::kDelivered;
    }
    *why = "HEC answered 200 without code 0: " + Snippet(body);
    return Verdict::kRetry;
  }
  *why = "HEC answered " + std::to_string(http_status) + ": " + Snippet(body);
  return VerdictOfStatus(http_status);
}

std::vector<Verdict> BulkVerdicts(long http_status, std::string_view body, size_t sent,
                                  std::string* why) {
  if (http_status != 200) {
    *why = "_bulk answered " + std::to_string(http_status) + ": " + Snippet(body);
    return std::vector<Verdict>(sent, VerdictOfStatus(http_status));
  }
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("items") || !j["items"].is_array() ||
      j["items"].size() != sent) {
    *why = "_bulk answered 200 without one item per action: " + Snippet(body);
    return std::vector<Verdict>(sent, Verdict::kRetry);
  }
  std::vector<Verdict> out;
  out.reserve(sent);
  for (const nlohmann::json& item : j["items"]) {
    long status = 0;
    if (item.is_object() && item.size() == 1) {
      const nlohmann::json& result = item.begin().value();
      if (result.is_object() && result.contains("status") && result["status"].is_number_integer()) {
        status = static_cast<long>(result["status"].get<int64_t>());
      }
    }
    if (status == 409) {
      out.push_back(Verdict::kDelivered);
      continue;
    }
    const Verdict v = VerdictOfStatus(status);
    if (v != Verdict::kDelivered && why->empty()) {
      *why = "_bulk item answered " + std::to_string(status) + ": " +
             Snippet(item.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace tripline::forward
