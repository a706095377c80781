// The sample configurations shipped in deploy/ must load: a typo there would stop every
// sensor that is deployed from them.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/config_file.h"
#include "sensor/config.h"
#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The block scalar under `key: |` in a YAML file, dedented.
std::string YamlBlock(const std::string& yaml, const std::string& key) {
  std::istringstream in(yaml);
  std::string line;
  std::string out;
  size_t key_indent = std::string::npos;
  size_t block_indent = std::string::npos;
  while (std::getline(in, line)) {
    size_t indent = line.find_first_not_of(' ');
    if (key_indent == std::string::npos) {
      if (indent != std::string::npos && line.compare(indent, key.size() + 3, key + ": |") == 0) {
        key_indent = indent;
      }
      continue;
    }
    if (indent == std::string::npos) {
      out += "\n";
      continue;
    }
    if (indent <= key_indent) break;
    if (block_indent == std::string::npos) block_indent = indent;
    out += line.substr(std::min(indent, block_indent)) + "\n";
  }
  return out;
}

TEST(DeployConfigTest, SampleTextprotoLoads) {
  auto s = ResolveSensorSettings(*ParseSensorFlags(
      {"--config", std::string(TRIPLINE_SOURCE_DIR) + "/deploy/config/sensor.textproto"}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->aggregator.has_value());
  EXPECT_EQ(s->sensitive_paths.size(), 2u);
}

TEST(DeployConfigTest, KubernetesConfigMapLoads) {
  std::string yaml =
      ReadAll(std::string(TRIPLINE_SOURCE_DIR) + "/deploy/kubernetes/tripline-sensor.yaml");
  std::string text = YamlBlock(yaml, "sensor.textproto");
  ASSERT_FALSE(text.empty());
  TempTree tree;
  tree.Write("/sensor.textproto", text);
  auto s =
      ResolveSensorSettings(*ParseSensorFlags({"--config", tree.root() + "/sensor.textproto"}));
  ASSERT_TRUE(s.ok()) << s.status().ToString() << "\n" << text;
  EXPECT_FALSE(s->libpam_path.empty());
}

}  // namespace
}  // namespace tripline::sensor
