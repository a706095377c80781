#include "common/metrics/metrics_text.h"

#include <cmath>
#include <cstdio>

namespace tripline {
namespace {

void AppendEscaped(std::string* out, std::string_view text, bool quotes) {
  for (char c : text) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (quotes && c == '"') {
      *out += "\\\"";
    } else {
      *out += c;
    }
  }
}

}  // namespace

void MetricsText::Family(std::string_view name, MetricType type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  AppendEscaped(&out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += type == MetricType::kCounter ? " counter\n" : " gauge\n";
}

void MetricsText::Sample(std::string_view name, double value, const MetricLabels& labels) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_ += ',';
      out_ += labels[i].first;
      out_ += "=\"";
      AppendEscaped(&out_, labels[i].second, true);
      out_ += '"';
    }
    out_ += '}';
  }
  char number[40];
  if (std::isnan(value)) {
    std::snprintf(number, sizeof number, "NaN");
  } else if (std::isinf(value)) {
    std::snprintf(number, sizeof number, value > 0 ? "+Inf" : "-Inf");
  } else if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(number, sizeof number, "%.0f", value);
  } else {
    std::snprintf(number, sizeof number, "%.17g", value);
  }
  out_ += ' ';
  out_ += number;
  out_ += '\n';
}

}  // namespace tripline
