// tripline-eval's metrics: the AUC, and finding a score in wire messages by name.
#include "tools/eval/eval_metrics.h"

#include <gtest/gtest.h>

#include "tripline/v1/query.pb.h"

namespace tripline::eval {
namespace {

TEST(Auc, PerfectRandomAndInverted) {
  EXPECT_DOUBLE_EQ(Auc({0.9, 0.8}, {0.1, 0.2, 0.3}), 1.0);
  EXPECT_DOUBLE_EQ(Auc({0.1}, {0.5, 0.9}), 0.0);
  EXPECT_DOUBLE_EQ(Auc({0.5, 0.5}, {0.5}), 0.5);  // ties count half
  // 0.6 beats 0.2 and 0.4 but not 0.8; 0.3 beats 0.2 only: 3 of 6 pairs.
  EXPECT_DOUBLE_EQ(Auc({0.6, 0.3}, {0.8, 0.2, 0.4}), 0.5);
  EXPECT_DOUBLE_EQ(Auc({}, {0.1}), 0.0);
}

TEST(ScoreOf, FindsAFieldNamedScoreAndNothingElse) {
  // Incident.score and Baseline.last_score are doubles named *score.
  EXPECT_TRUE(HasScoreField(v1::Incident::descriptor()));
  EXPECT_TRUE(HasScoreField(v1::Baseline::descriptor()));
  v1::Incident incident;
  incident.set_score(42.5);
  ASSERT_TRUE(ScoreOf(incident).has_value());
  EXPECT_DOUBLE_EQ(*ScoreOf(incident), 42.5);
  v1::Baseline baseline;
  baseline.set_last_score(0.25);
  EXPECT_DOUBLE_EQ(*ScoreOf(baseline), 0.25);
  // Repeated fields with "score"-like names and unrelated messages are not scores.
  EXPECT_FALSE(HasScoreField(v1::BaselineFeature::descriptor()));
  EXPECT_FALSE(ScoreOf(v1::BaselineFeature()).has_value());
}

}  // namespace
}  // namespace tripline::eval
