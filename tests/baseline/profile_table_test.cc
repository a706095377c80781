// ProfileTable: lookups, growth past many doublings, and entries that never move.
#include "aggregator/baseline/profile_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tripline::baseline {
namespace {

struct Entry {
  TableKey key;
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
  t.ForEach([&n](const Entry& e) { EXPECT_EQ(e.value, static_cast<int>(n++)); });
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

TEST(ProfileTableTest, KeysInPlaceAndOnTheHeap) {
  const std::string at_limit(TableKey::kInline, 'a');        // kept in place
  const std::string past_limit(TableKey::kInline + 1, 'b');  // on the heap
  TableKey k;
  EXPECT_EQ(k.view(), "");
  k.assign(at_limit);
  EXPECT_EQ(k.view(), at_limit);
  EXPECT_EQ(k.HeapBytes(), 0u);
  k.assign(past_limit);
  EXPECT_EQ(k.view(), past_limit);
  EXPECT_EQ(k.HeapBytes(), past_limit.size());
  TableKey copy = k;  // a copy owns its own heap bytes
  k.assign("human:alice");
  EXPECT_EQ(copy.view(), past_limit);
  EXPECT_EQ(k.view(), "human:alice");
  EXPECT_EQ(k.HeapBytes(), 0u);
  copy = k;
  EXPECT_EQ(copy.view(), "human:alice");
  EXPECT_TRUE(TableKey(copy) == "human:alice");
  const TableKey& same = copy;
  copy = same;  // assignment to itself keeps the key
  EXPECT_EQ(copy.view(), "human:alice");
  TableKey bob;
  bob.assign("human:bob");
  EXPECT_LT(k, bob);

  ProfileTable<Entry> t;
  t.Emplace(at_limit).first->value = 1;
  t.Emplace(past_limit).first->value = 2;
  EXPECT_EQ(t.Find(at_limit)->value, 1);
  EXPECT_EQ(t.Find(past_limit)->value, 2);
  EXPECT_EQ(t.Find(std::string(TableKey::kInline + 1, 'a')), nullptr);
}

TEST(ProfileTableTest, LargeTablesSitOnWholeHugePages) {
  // Past the first chunks, entries are in chunks aligned to 2 MiB (transparent huge pages
  // where the kernel offers them); every entry is still where it was made.
  ProfileTable<Entry> t;
  std::vector<Entry*> made;
  const size_t per_chunk = (size_t{2} << 20) / sizeof(Entry);
  for (size_t i = 0; i < 3 * per_chunk; ++i)
    made.push_back(t.Emplace("k" + std::to_string(i)).first);
  bool aligned = false;
  for (size_t i = 0; i < made.size(); ++i) {
    aligned = aligned || reinterpret_cast<uintptr_t>(made[i]) % (size_t{2} << 20) == 0;
  }
  EXPECT_TRUE(aligned) << "no entry starts a 2 MiB page";
  for (size_t i = 0; i < made.size(); i += 997) {
    EXPECT_EQ(t.Find("k" + std::to_string(i)), made[i]);
  }
}

}  // namespace
}  // namespace tripline::baseline
