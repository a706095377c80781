#include "common/text_escape.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/log.h"

namespace tripline {
namespace {

TEST(TextEscapeTest, ValidUtf8IsKeptExactly) {
  for (std::string s : {std::string(""), std::string("/usr/bin/id"), std::string("héllo → ✓"),
                        std::string("a\\b"), std::string("\xf0\x9f\x98\x80")}) {
    std::string copy = s;
    EXPECT_TRUE(IsValidUtf8(s)) << s;
    EXPECT_FALSE(EscapeInvalidUtf8(&copy));
    EXPECT_EQ(copy, s);
  }
}

TEST(TextEscapeTest, InvalidBytesBecomeReversibleEscapes) {
  // A stray 0xff, a lone continuation byte, an overlong '/', a surrogate, a truncated
  // sequence at the end, and a backslash that must survive the round trip.
  const std::string raw =
      std::string("/tmp/x\xff") + "\\y\x80" + "\xc0\xaf" + "\xed\xa0\x80" + "\xe2\x82";
  EXPECT_FALSE(IsValidUtf8(raw));
  std::string s = raw;
  ASSERT_TRUE(EscapeInvalidUtf8(&s));
  EXPECT_EQ(s, "/tmp/x\\xff\\\\y\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82");
  EXPECT_TRUE(IsValidUtf8(s));
  EXPECT_EQ(UnescapeInvalidUtf8(s), raw);
}

TEST(TextEscapeTest, DisplayEscapesControlsC1AndBidi) {
  EXPECT_EQ(EscapeForDisplay("plain → text"), "plain → text");
  EXPECT_EQ(EscapeForDisplay("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(EscapeForDisplay("\x1b]0;owned\x07root\x1b[2J\x7f"),
            "\\x1b]0;owned\\x07root\\x1b[2J\\x7f");
  EXPECT_EQ(EscapeForDisplay("\xc2\x9b"
                             "31m"),
            "\\u{009b}31m");  // C1 CSI
  EXPECT_EQ(EscapeForDisplay("evil\xe2\x80\xaegnp.exe"), "evil\\u{202e}gnp.exe");
  EXPECT_EQ(EscapeForDisplay("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u{2066}x\\u{2069}");
  EXPECT_EQ(EscapeForDisplay("raw \x9b byte"), "raw \\x9b byte");
  EXPECT_EQ(EscapeForDisplay(std::string("nul\0!", 5)), "nul\\x00!");
}

TEST(TextEscapeTest, LogMessageIsOneLine) {
  // What the log writes goes to stderr: capture it through a pipe.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const int saved = dup(STDERR_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
  TL_LOG(WARNING) << "sensor s1 ("
                  << "evil\nE 00:00:00.000 forged.cc:1] all clear\x1b[2K"
                  << ") connected";
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fds[0]);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_NE(out.find("evil\\nE 00:00:00.000 forged.cc:1] all clear\\x1b[2K) connected"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace tripline
