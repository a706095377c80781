#include "aggregator/baseline/pending_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "aggregator/baseline/short_text.h"

namespace tripline::baseline {
namespace {

struct Rec {
  int64_t time_ns = 0;
  int id = 0;
};
using Queue = PendingQueue<Rec, 3>;

// Drains the queue: (time, id, texts joined by '|') in the order it hands them out.
std::vector<std::pair<Rec, std::string>> Drain(Queue& q) {
  std::vector<std::pair<Rec, std::string>> out;
  while (!q.empty()) {
    const Queue::Entry& e = q.Front();
    out.emplace_back(e.rec, std::string(e.text(0)) + "|" + std::string(e.text(1)) + "|" +
                                std::string(e.text(2)));
    q.Pop();
  }
  return out;
}

TEST(PendingQueueTest, HandsOutByEventTimeWhateverOrderTheyCameIn) {
  Queue q;
  // In order, a little behind (inserted in place), far behind (the ordered map), and equal
  // times, which leave in the order they came.
  std::vector<Rec> in;
  for (int i = 0; i < 200; ++i) in.push_back({1000 + i * 10, i});
  in.push_back({1995, 200});  // just behind the end
  in.push_back({5, 201});     // far behind: history imported behind live events
  in.push_back({1995, 202});  // equal to an earlier one
  in.push_back({3000, 203});
  in.push_back({6, 204});
  for (const Rec& r : in) {
    q.Push(r, {"tag" + std::to_string(r.id), "", std::string(r.id % 7, 'x')});
  }
  EXPECT_EQ(q.size(), in.size());
  const auto out = Drain(q);
  ASSERT_EQ(out.size(), in.size());
  std::vector<Rec> want = in;
  std::stable_sort(want.begin(), want.end(),
                   [](const Rec& a, const Rec& b) { return a.time_ns < b.time_ns; });
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(out[i].first.time_ns, want[i].time_ns) << i;
    EXPECT_EQ(out[i].first.id, want[i].id) << i;
    EXPECT_EQ(out[i].second,
              "tag" + std::to_string(want[i].id) + "||" + std::string(want[i].id % 7, 'x'))
        << i;
  }
  EXPECT_TRUE(q.empty());
}

TEST(PendingQueueTest, RandomOrderAgainstASortedModel) {
  std::mt19937_64 rng(7);
  Queue q;
  std::vector<std::pair<int64_t, int>> model;  // (time, id), stable by arrival
  int next = 0;
  for (int round = 0; round < 50; ++round) {
    const int pushes = static_cast<int>(rng() % 400);
    for (int i = 0; i < pushes; ++i) {
      // Mostly increasing with jitter, sometimes far back.
      const int64_t t = rng() % 10 == 0 ? static_cast<int64_t>(rng() % 1000)
                                        : 1000 + next * 3 - static_cast<int64_t>(rng() % 200);
      model.emplace_back(t, next);
      q.Push({t, next}, {std::to_string(next), std::string(rng() % 40, 'v'), "b"});
      ++next;
    }
    std::stable_sort(model.begin(), model.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    const int pops = static_cast<int>(rng() % (q.size() + 1));
    for (int i = 0; i < pops; ++i) {
      ASSERT_FALSE(q.empty());
      const Queue::Entry& e = q.Front();
      ASSERT_EQ(e.rec.time_ns, model.front().first);
      ASSERT_EQ(e.text(0), std::to_string(e.rec.id));
      ASSERT_EQ(e.text(2), "b");
      model.erase(model.begin());
      q.Pop();
    }
    ASSERT_EQ(q.size(), model.size());
  }
  // ForEach sees every record still queued.
  size_t seen = 0;
  q.ForEach([&seen](const Queue::Entry&) { ++seen; });
  EXPECT_EQ(seen, model.size());
}

TEST(PendingQueueTest, TextsLongerThanAChunkAndEmptyOnesSurvive) {
  Queue q;
  const std::string big(Queue::kChunkBytes + 100, 'p');  // a path no chunk holds
  q.Push({1, 1}, {"", "", ""});
  q.Push({2, 2}, {big, "n", ""});
  for (int i = 0; i < 5000; ++i) q.Push({3 + i, 3 + i}, {std::string(100, 'a'), "", ""});
  EXPECT_EQ(q.Front().text(0), "");
  q.Pop();
  EXPECT_EQ(q.Front().text(0), big);
  EXPECT_EQ(q.Front().text(1), "n");
  q.Pop();
  // Chunks whose records all left are reused or freed: the queue does not grow while it
  // is drained and refilled.
  const size_t before = q.MemoryBytes();
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 5000; ++i) {
      ASSERT_EQ(q.Front().text(0), std::string(100, 'a'));
      q.Pop();
      q.Push({100000 + round * 5000 + i, 0}, {std::string(100, 'a'), "", ""});
    }
  }
  EXPECT_LE(q.MemoryBytes(), before + 2 * Queue::kChunkBytes);
  q.clear();
  EXPECT_TRUE(q.empty());
}

TEST(ShortTextTest, InPlaceUpToItsLimitAndMovesWithoutCopies) {
  const std::string at_limit(ShortText::kInline, 'a');
  const std::string past(ShortText::kInline + 1, 'b');
  ShortText a(at_limit), b(past);
  EXPECT_EQ(a.HeapBytes(), 0u);
  EXPECT_EQ(b.HeapBytes(), past.size());
  ShortText moved(std::move(b));
  EXPECT_EQ(moved.view(), past);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): a moved-from text is empty
  ShortText c;
  c = std::move(moved);
  EXPECT_EQ(c.view(), past);
  c = std::move(a);
  EXPECT_EQ(c.view(), at_limit);
  std::vector<ShortText> v;
  for (int i = 0; i < 100; ++i) v.emplace_back(std::string(20 + i % 10, 'x'));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(v[i].size(), 20u + i % 10);
}

}  // namespace
}  // namespace tripline::baseline
