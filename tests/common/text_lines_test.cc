#include "common/text_lines.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tripline {
namespace {

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> out;
  ForEachLine(text, [&](std::string_view line, size_t n) {
    out.push_back(std::to_string(n) + ":" + std::string(line));
  });
  return out;
}

TEST(TextLinesTest, SplitsNumbersAndTrimsCarriageReturns) {
  EXPECT_EQ(Lines("a\nb\r\n\nlast"), (std::vector<std::string>{"1:a", "2:b", "3:", "4:last"}));
  EXPECT_EQ(Lines("one\n"), (std::vector<std::string>{"1:one"}));
  EXPECT_TRUE(Lines("").empty());
}

TEST(TextLinesTest, FalseStopsTheWalk) {
  int seen = 0;
  ForEachLine("a\nstop\nc\n", [&](std::string_view line, size_t) {
    ++seen;
    return line != "stop";
  });
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace tripline
