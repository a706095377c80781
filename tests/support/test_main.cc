// The main() of every Tripline test binary: GoogleTest plus the skip policy.
//
// A test that cannot run here (no root, no BTF, no sshd) calls GTEST_SKIP() with the
// reason. That must never hide a failure where everything is there to run it:
//  * Under CI (the environment variable CI is "true" or "1", set by .ci/run), every skip
//    is turned into a failure of that test, carrying the skip's reason. CI runs as root on
//    a host that has every prerequisite, so a skip there means something broke.
//  * Elsewhere a skip stays a skip, and when TRIPLINE_SKIP_LOG names a file, the test's
//    name and reason are appended to it, one line each, so that scripts/test can list
//    every skip in its summary.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

bool UnderCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

// The message of the first skip recorded in `result` and where it was raised, or "" when
// there is none or it carries no message.
std::string SkipReason(const ::testing::TestResult& result) {
  for (int i = 0; i < result.total_part_count(); ++i) {
    const ::testing::TestPartResult& part = result.GetTestPartResult(i);
    if (!part.skipped()) continue;
    std::string message = part.message() != nullptr ? part.message() : "";
    message.erase(0, message.find_first_not_of("\n "));
    if (message.empty()) return "";
    if (part.file_name() != nullptr) {
      message +=
          " (" + std::string(part.file_name()) + ":" + std::to_string(part.line_number()) + ")";
    }
    return message;
  }
  return "";
}

class SkipPolicy final : public ::testing::EmptyTestEventListener {
 public:
  SkipPolicy(bool ci, const char* log_path) : ci_(ci), log_path_(log_path ? log_path : "") {}

  // Runs before the result printer's OnTestEnd (gtest calls OnTestEnd in reverse order of
  // registration), so a failure added here is printed as the test's result.
  void OnTestEnd(const ::testing::TestInfo& test) override {
    if (!test.result()->Skipped()) return;
    std::string reason = SkipReason(*test.result());
    if (reason.empty()) {
      // Skipped in SetUpTestSuite: the reason is in the suite's own result.
      const ::testing::TestSuite* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
      if (suite != nullptr) reason = SkipReason(suite->ad_hoc_test_result());
    }
    if (reason.empty()) reason = "(no reason given)";
    const std::string name = std::string(test.test_suite_name()) + "." + test.name();
    if (ci_) {
      ADD_FAILURE() << "skipped under CI (CI=true), where every test must run: " << reason;
      return;
    }
    if (log_path_.empty()) return;
    std::string line = name + ": " + reason;
    for (char& c : line) {
      if (c == '\n') c = ' ';
    }
    line += '\n';
    // O_APPEND and one write(2) per line: tests running in parallel do not interleave.
    const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  }

 private:
  const bool ci_;
  const std::string log_path_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(
      new SkipPolicy(UnderCi(), std::getenv("TRIPLINE_SKIP_LOG")));
  return RUN_ALL_TESTS();
}
