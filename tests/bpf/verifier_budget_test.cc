// Every BPF program this kernel can run verifies within Tripline's budget: a quarter of the
// verifier's 1,000,000 processed instructions, in both scopes (the UTS filter is code only
// when a namespace is set). A program near the limit is one the next kernel release refuses.
//
// TRIPLINE_EXPECT_HOOKS=fentry (set by the kernel matrix for kernels whose configuration
// allows trampolines) makes the fentry variants required: they must load, not be skipped.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "sensor/bpf_probe.h"

namespace tripline::sensor {
namespace {

// Families the kernel matrix knows this kernel cannot run (TRIPLINE_EXPECT_OFF=a,b; the
// reasons are in docs/kernel-matrix.md). Every other family must load.
std::set<std::string> ExpectedOff() {
  std::set<std::string> out;
  const char* v = std::getenv("TRIPLINE_EXPECT_OFF");
  std::string s = v != nullptr ? v : "";
  for (size_t at = 0; at < s.size();) {
    size_t comma = s.find(',', at);
    if (comma == std::string::npos) comma = s.size();
    if (comma > at) out.insert(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

bool ExpectTrampolines() {
  const char* v = std::getenv("TRIPLINE_EXPECT_HOOKS");
  return v != nullptr && std::string(v) == "fentry";
}

class VerifierBudgetTest : public ::testing::TestWithParam<bool> {};

TEST_P(VerifierBudgetTest, EveryProgramVerifiesWithinAQuarterOfTheLimit) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
  ProbeOptions options;
  options.sensitive_paths = DefaultSensitivePaths();
  if (GetParam()) {
    struct stat st {};
    ASSERT_EQ(stat("/proc/self/ns/uts", &st), 0);
    options.target_uts_inum = static_cast<uint32_t>(st.st_ino);
  }
  auto r = MeasureVerification(options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(r->empty());

  std::map<std::string, std::set<std::string>> loaded_variants;  // family -> variants
  std::map<std::string, std::set<std::string>> failed_variants;
  for (const ProgramVerification& p : *r) {
    std::printf("%-11s %-33s %-29s %8llu %s\n", p.family.c_str(), p.variant.c_str(),
                p.program.c_str(), static_cast<unsigned long long>(p.insns),
                p.loaded ? "" : p.error.c_str());
    const bool skipped = !p.loaded && p.error.rfind("not loaded:", 0) == 0;
    if (ExpectedOff().count(p.family) > 0) {
      EXPECT_FALSE(p.loaded) << p.program << " loads: take " << p.family
                             << " out of TRIPLINE_EXPECT_OFF for this kernel";
      continue;
    }
    if (skipped) {
      // Only an obstacle the kernel really has: trampolines are required where expected.
      if (ExpectTrampolines()) {
        EXPECT_EQ(p.error.find("trampolines"), std::string::npos)
            << p.program << " (" << p.variant << "): " << p.error;
      }
      failed_variants[p.family].insert(p.variant);
      continue;
    }
    EXPECT_TRUE(p.loaded) << p.program << " (" << p.variant << ") refused: " << p.error;
    EXPECT_GT(p.insns, 0u) << p.program << ": the verifier reported no count";
    EXPECT_LE(p.insns, kVerifierBudget) << p.program << " (" << p.variant << ") uses " << p.insns
                                        << " of the verifier's " << kVerifierLimit;
    (p.loaded ? loaded_variants : failed_variants)[p.family].insert(p.variant);
  }
  // Every family can run here, each on at least one whole variant.
  for (const char* family : {"file", "exec", "io_uring", "net", "login-utmp", "login-pam"}) {
    if (ExpectedOff().count(family) > 0) continue;
    bool whole = false;
    for (const std::string& v : loaded_variants[family]) {
      whole = whole || failed_variants[family].count(v) == 0;
    }
    EXPECT_TRUE(whole) << "no variant of family " << family << " loads on this kernel";
  }
}

INSTANTIATE_TEST_SUITE_P(Scopes, VerifierBudgetTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "UtsScope" : "HostScope"; });

}  // namespace
}  // namespace tripline::sensor
