#include "tools/eval/eval_metrics.h"

#include <algorithm>
#include <string>

namespace tripline::eval {
namespace {

namespace pb = google::protobuf;

bool IsScoreName(const std::string& name) {
  return name.size() >= 5 && name.compare(name.size() - 5, 5, "score") == 0;
}
bool IsNested(const std::string& name) {
  return name == "login" || name == "event" || name == "scores";
}

bool HasScoreFieldAt(const pb::Descriptor* d, int depth) {
  for (int i = 0; i < d->field_count() && depth < 3; ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) continue;
    const std::string& name = f->name();
    if (IsScoreName(name) && (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE ||
                              f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT)) {
      return true;
    }
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && IsNested(name) &&
        HasScoreFieldAt(f->message_type(), depth + 1)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<double> ScoreOf(const pb::Message& m) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) continue;
    const std::string& name = f->name();
    const bool scorish = IsScoreName(name);
    if (scorish && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE) return r->GetDouble(m, f);
    if (scorish && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) return r->GetFloat(m, f);
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && IsNested(name) &&
        r->HasField(m, f)) {
      if (auto s = ScoreOf(r->GetMessage(m, f))) return s;
    }
  }
  return std::nullopt;
}

bool HasScoreField(const pb::Descriptor* d) { return HasScoreFieldAt(d, 0); }

double Auc(const std::vector<double>& pos, std::vector<double> neg) {
  if (pos.empty() || neg.empty()) return 0;
  std::sort(neg.begin(), neg.end());
  double sum = 0;
  for (double p : pos) {
    const auto lo = std::lower_bound(neg.begin(), neg.end(), p);
    const auto hi = std::upper_bound(neg.begin(), neg.end(), p);
    sum += static_cast<double>(lo - neg.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  return sum / (static_cast<double>(pos.size()) * static_cast<double>(neg.size()));
}

}  // namespace tripline::eval
