// Fuzz target: arbitrary bytes as the outside inputs of the response workflow and posture
// audit: a signed action order as it arrives at a sensor (must never verify without the
// key), an action target (ParseTarget) and a sudo rule as a sensor reports it
// (SudoRuleRunsAll). Must never crash; what is accepted holds its promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "aggregator/audit/posture_findings.h"
#include "aggregator/response/action_book.h"
#include "sensor/response/action_order.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  tripline::v1::SignedActionOrder signed_order;
  if (signed_order.ParseFromString(text)) {
    static const tripline::sensor::OrderPublicKey kKey = [] {
      tripline::sensor::OrderPublicKey pub;
      tripline::sensor::OrderSecretKey secret;
      if (!tripline::sensor::MakeOrderKeyPair(&pub, &secret).ok()) std::abort();
      return pub;
    }();
    static auto* ledger =
        new tripline::sensor::ExecutedLedger(*tripline::sensor::ExecutedLedger::Open("/dev/null"));
    const tripline::sensor::OrderVerifier verifier(kKey, "hosta");
    // A fresh random key: no input can carry a valid signature for it.
    if (verifier.Verify(signed_order, 0, *ledger).ok()) std::abort();
  }
  for (auto kind :
       {tripline::v1::Action::KIND_LOCK_ACCOUNT, tripline::v1::Action::KIND_ISOLATE_HOST,
        tripline::v1::Action::KIND_BLOCK_ADDRESS}) {
    std::string host, subject;
    if (tripline::response::ParseTarget(kind, text, &host, &subject).ok()) {
      if (host.empty() || host.find('/') != std::string::npos) std::abort();
      for (char c : subject) {
        if (c == ' ' || c == ';' || c == '\n' || c == '{' || c == '}') std::abort();
      }
    }
  }
  bool nopasswd = false;
  (void)tripline::audit::SudoRuleRunsAll(text, &nopasswd);
  return 0;
}
