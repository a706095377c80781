// Runs tests/console/browser/console_story.mjs: Debian's Chromium, headless, driven by
// playwright-core (installed in tests/console/browser/node_modules by scripts/install-deps),
// through the analyst console. Returns the JSON object the script prints; its screenshots
// are left in `shots` (under the build's test-artifacts/).
#pragma once

#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/lab/subprocess.h"

namespace tripline::console_test {

inline std::string ArtifactsDir(const std::string& name) {
  return std::string(TRIPLINE_ARTIFACTS_DIR) + "/console/" + name;
}

// Missing pieces are an error naming the fix, never a skip: the console's tests need them.
inline Result<nlohmann::json> RunConsoleBrowser(std::vector<std::string> args,
                                                const std::string& shots) {
  const std::string dir = std::string(TRIPLINE_SOURCE_DIR) + "/tests/console/browser";
  for (const std::string& need : {std::string("/usr/bin/node"), std::string("/usr/bin/chromium"),
                                  dir + "/node_modules/playwright-core/package.json"}) {
    if (access(need.c_str(), R_OK) != 0) {
      return Status::Unavailable(need + " is missing: scripts/install-deps installs it");
    }
  }
  std::vector<std::string> argv = {"/usr/bin/node", dir + "/console_story.mjs", "--shots", shots};
  argv.insert(argv.end(), args.begin(), args.end());
  TL_ASSIGN_OR_RETURN(lab::RunResult r, lab::Subprocess::Run(argv, std::chrono::seconds(120)));
  if (r.exit_code != 0) {
    return Status::Internal("the browser script exited " + std::to_string(r.exit_code) + ": " +
                            r.err + r.out);
  }
  const size_t start = r.out.rfind("\n{");
  const nlohmann::json j = nlohmann::json::parse(
      start == std::string::npos ? r.out : r.out.substr(start + 1), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("the browser script printed no result: " + r.out + r.err);
  }
  return j;
}

}  // namespace tripline::console_test
