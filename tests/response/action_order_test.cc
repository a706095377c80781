// Signed action orders: only an order signed by the aggregator's key, for this host, not
// expired and never carried out before, may run. Real libsodium, a real ledger file.
#include "sensor/response/action_order.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace tripline::sensor {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kNow = 1'800'000'000LL * 1'000'000'000LL;

class ActionOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeOrderKeyPair(&pub_, &secret_).ok());
    order_.set_action_id("a0123456789abcdef");
    order_.set_kind(v1::Action::KIND_LOCK_ACCOUNT);
    order_.set_host("hostb");
    order_.set_subject("aiops");
    order_.set_issued_ns(kNow);
    order_.set_not_after_ns(kNow + 60'000'000'000LL);
    order_.set_approved_by("bob");
    auto ledger = ExecutedLedger::Open(dir_.Sub("executed"));
    ASSERT_TRUE(ledger.ok());
    ledger_ = std::make_unique<ExecutedLedger>(std::move(*ledger));
  }
  v1::SignedActionOrder Sign(const v1::ActionOrder& o) {
    auto s = SignOrder(o, secret_);
    EXPECT_TRUE(s.ok());
    return *s;
  }

  testing::TempDir dir_;
  OrderPublicKey pub_;
  OrderSecretKey secret_;
  v1::ActionOrder order_;
  std::unique_ptr<ExecutedLedger> ledger_;
};

TEST_F(ActionOrderTest, AValidOrderRunsOnceAndItsRevertOnce) {
  const OrderVerifier hostb(pub_, "hostb");
  const auto signed_order = Sign(order_);
  auto ok = hostb.Verify(signed_order, kNow, *ledger_);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->subject(), "aiops");
  ASSERT_TRUE(ledger_->Record(ok->action_id(), false).ok());

  auto replay = hostb.Verify(signed_order, kNow + 1, *ledger_);
  EXPECT_EQ(replay.status().code(), Status::Code::kAlreadyExists);
  EXPECT_THAT(replay.status().message(), HasSubstr("replay"));

  // The ledger survives a restart of the sensor.
  auto reopened = ExecutedLedger::Open(dir_.Sub("executed"));
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE(hostb.Verify(signed_order, kNow + 2, *reopened).ok());

  v1::ActionOrder revert = order_;
  revert.set_revert(true);
  EXPECT_TRUE(hostb.Verify(Sign(revert), kNow + 3, *reopened).ok());
}

TEST_F(ActionOrderTest, ForgedExpiredAndMisaddressedOrdersNeverRun) {
  const OrderVerifier hostb(pub_, "hostb");
  // Signed by another key.
  OrderPublicKey other_pub;
  OrderSecretKey other_secret;
  ASSERT_TRUE(MakeOrderKeyPair(&other_pub, &other_secret).ok());
  auto forged = SignOrder(order_, other_secret);
  ASSERT_TRUE(forged.ok());
  EXPECT_THAT(hostb.Verify(*forged, kNow, *ledger_).status().message(),
              HasSubstr("does not verify"));
  // A valid signature over changed bytes: the subject swapped after signing.
  v1::SignedActionOrder tampered = Sign(order_);
  v1::ActionOrder changed = order_;
  changed.set_subject("root");
  tampered.set_order(changed.SerializeAsString());
  EXPECT_THAT(hostb.Verify(tampered, kNow, *ledger_).status().message(),
              HasSubstr("does not verify"));
  tampered.set_signature("short");
  EXPECT_THAT(hostb.Verify(tampered, kNow, *ledger_).status().message(), HasSubstr("64 bytes"));
  // Expired approval.
  EXPECT_THAT(hostb.Verify(Sign(order_), order_.not_after_ns(), *ledger_).status().message(),
              HasSubstr("expired"));
  // For another host.
  const OrderVerifier hosta(pub_, "hosta");
  EXPECT_THAT(hosta.Verify(Sign(order_), kNow, *ledger_).status().message(),
              HasSubstr("for host hostb, this is hosta"));
  // Signed garbage is not an order.
  v1::SignedActionOrder garbage = Sign(v1::ActionOrder());
  EXPECT_EQ(hostb.Verify(garbage, kNow, *ledger_).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(ActionOrderTest, PublicKeysAreHex) {
  const std::string hex = OrderPublicKeyHex(pub_);
  EXPECT_EQ(hex.size(), 64u);
  auto back = ParseOrderPublicKey(hex);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, pub_);
  EXPECT_FALSE(ParseOrderPublicKey(hex.substr(1)).ok());
  EXPECT_FALSE(ParseOrderPublicKey(std::string(64, 'g')).ok());
}

}  // namespace
}  // namespace tripline::sensor
