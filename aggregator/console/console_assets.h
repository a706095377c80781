// The console's page, built into the aggregator (cmake/EmbedAssets.cmake writes the
// definition from aggregator/console/assets/ at build time).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tripline::console {

struct ConsoleAsset {
  std::string path;  // "/app.js"
  std::string_view body;
  std::string content_type;
};

const std::vector<ConsoleAsset>& ConsoleAssets();

}  // namespace tripline::console
