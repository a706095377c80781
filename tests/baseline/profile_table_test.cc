// ProfileTable: lookups, growth past many doublings, and entries that never move.
#include "aggregator/baseline/profile_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tripline::baseline {
namespace {

struct Entry {
  std::string key;
  int value = 0;
};

TEST(ProfileTableTest, FindsWhatWasMadeAndNothingElse) {
  ProfileTable<Entry> t;
  EXPECT_EQ(t.Find("human:alice"), nullptr);  // empty
  auto [alice, made] = t.Emplace("human:alice");
  ASSERT_TRUE(made);
  EXPECT_EQ(alice->key, "human:alice");
  alice->value = 7;
  auto [again, made_again] = t.Emplace("human:alice");
  EXPECT_FALSE(made_again);
  EXPECT_EQ(again, alice);
  EXPECT_EQ(t.Find("human:alice")->value, 7);
  EXPECT_EQ(t.Find("human:alic"), nullptr);
  EXPECT_EQ(t.Find("human:alice2"), nullptr);
  EXPECT_EQ(t.Find(""), nullptr);
  EXPECT_EQ(t.size(), 1u);
}

TEST(ProfileTableTest, EntriesStayPutWhileTheIndexGrows) {
  ProfileTable<Entry> t;
  std::vector<Entry*> made;
  constexpr int kEntries = 100'000;  // the index doubles from 64 slots eleven times
  for (int i = 0; i < kEntries; ++i) {
    auto [e, fresh] = t.Emplace("host:h" + std::to_string(i));
    ASSERT_TRUE(fresh);
    e->value = i;
    made.push_back(e);
  }
  EXPECT_EQ(t.size(), static_cast<size_t>(kEntries));
  for (int i = 0; i < kEntries; ++i) {
    const std::string key = "host:h" + std::to_string(i);
    ASSERT_EQ(t.Find(key), made[i]) << key;
    EXPECT_EQ(made[i]->value, i);
    EXPECT_EQ(made[i]->key, key);
  }
  EXPECT_EQ(t.Find("host:h" + std::to_string(kEntries)), nullptr);
  size_t n = 0;
  for (const Entry& e : t.items()) EXPECT_EQ(e.value, static_cast<int>(n++));
  EXPECT_EQ(n, static_cast<size_t>(kEntries));
  EXPECT_GE(t.MemoryBytes(), kEntries * sizeof(Entry));
}

TEST(ProfileTableTest, LongKeysAndKeysThatDifferInOneByte) {
  ProfileTable<Entry> t;
  const std::string base(200, 'x');
  for (char c = 'a'; c <= 'z'; ++c) t.Emplace(base + c).first->value = c;
  for (char c = 'a'; c <= 'z'; ++c) EXPECT_EQ(t.Find(base + c)->value, c);
  EXPECT_EQ(t.Find(base), nullptr);
}

}  // namespace
}  // namespace tripline::baseline
