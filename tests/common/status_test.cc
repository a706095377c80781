#include "common/status.h"

#include <gtest/gtest.h>

namespace tripline {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  TL_ASSIGN_OR_RETURN(int h, Half(x));
  TL_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckPositive(int x) {
  if (x <= 0) return Status::InvalidArgument("not positive");
  return Status::Ok();
}

Status CheckBoth(int a, int b) {
  TL_RETURN_IF_ERROR(CheckPositive(a));
  TL_RETURN_IF_ERROR(CheckPositive(b).WithContext("second"));
  return Status::Ok();
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, NamedConstructorsCarryCodeAndMessage) {
  Status s = Status::Corruption("bad block 7");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.message(), "bad block 7");
  EXPECT_EQ(s.ToString(), "corruption: bad block 7");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = Status::NotFound("x").WithContext("loading y");
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.message(), "loading y: x");
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

TEST(StatusTest, FromErrnoMapsCommonCodes) {
  EXPECT_TRUE(Status::FromErrno(-ENOENT, "open").IsNotFound());
  EXPECT_EQ(Status::FromErrno(EPERM, "bpf").code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(Status::FromErrno(-ENOMEM, "map").code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(Status::FromErrno(-EIO, "read").code(), Status::Code::kIoError);
  EXPECT_TRUE(Status::FromErrno(0, "nothing").ok());
  EXPECT_NE(Status::FromErrno(-ENOENT, "open /x").message().find("open /x"), std::string::npos);
}

TEST(ResultTest, ValueAndErrorPropagate) {
  auto q = Quarter(8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd: 3");
  EXPECT_EQ(Quarter(5).value_or(-1), -1);
}

TEST(ResultTest, OkStatusIsNotAValue) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInternal);
}

TEST(ResultTest, ReturnIfErrorStopsAtFirstFailure) {
  EXPECT_TRUE(CheckBoth(1, 2).ok());
  EXPECT_EQ(CheckBoth(0, 2).message(), "not positive");
  EXPECT_EQ(CheckBoth(1, -1).message(), "second: not positive");
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(5));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

}  // namespace
}  // namespace tripline
