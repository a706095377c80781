// Reading a /metrics endpoint in tests: one scrape, and one sample's value out of it.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>

namespace tripline::testing {

// GET `path` of `address` (HOST:PORT); "" when it did not answer 200.
inline std::string HttpGet(const std::string& address, const std::string& path = "/metrics") {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return "";
  httplib::Client client(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  auto r = client.Get(path.c_str());
  return r && r->status == 200 ? r->body : "";
}

// The value of the sample written `sample` (its name and labels as exposed) in the text
// format; nullopt when there is none.
inline std::optional<double> MetricSample(const std::string& text, const std::string& sample) {
  const std::string at = "\n" + sample + " ";
  const size_t i = text.find(at);
  if (i == std::string::npos) return std::nullopt;
  const size_t from = i + at.size();
  return std::stod(text.substr(from, text.find('\n', from) - from));
}

}  // namespace tripline::testing
