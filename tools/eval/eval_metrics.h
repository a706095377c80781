// Metrics of tripline-eval: the ROC AUC, and finding a per-event score in a wire message.
//
// The score is looked up by name through protobuf reflection, so that the evaluation
// builds and runs whether or not the build's events carry one: a singular double or float
// field whose name ends in "score", on the message itself or, recursively, on a set
// sub-message named "event", "login" or "scores" (StoredEvent → Event → LoginEvent).
//
// Threading: pure functions.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <optional>
#include <vector>

namespace tripline::eval {

// The first score field found in `m`, nullopt when it has none (or none set on its path).
std::optional<double> ScoreOf(const google::protobuf::Message& m);
// Whether messages of this type can carry such a score.
bool HasScoreField(const google::protobuf::Descriptor* d);
// ROC AUC of scores of positives against negatives by the Mann-Whitney statistic: the
// chance that a random positive scores above a random negative, ties counting half.
// 0 when either side is empty.
double Auc(const std::vector<double>& positives, std::vector<double> negatives);

}  // namespace tripline::eval
