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

// Each node presents its own certificate: the aggregator binds a sensor to the host its
// certificate names, so one Secret mounted by every pod of the DaemonSet would let any
// node write as all of them. The tls volume is the node's own directory, and the config
// reads its files from where that volume is mounted.
TEST(DeployConfigTest, KubernetesSensorsUsePerNodeCertificates) {
  const std::string yaml =
      ReadAll(std::string(TRIPLINE_SOURCE_DIR) + "/deploy/kubernetes/tripline-sensor.yaml");
  EXPECT_EQ(yaml.find("secretName:"), std::string::npos)
      << "a Secret in the DaemonSet is shared by every node";
  const size_t volume = yaml.find("- name: tls");
  ASSERT_NE(volume, std::string::npos);
  const std::string line = yaml.substr(volume, yaml.find('\n', volume) - volume);
  const std::string next =
      yaml.substr(volume + line.size() + 1,
                  yaml.find('\n', volume + line.size() + 1) - volume - line.size() - 1);
  EXPECT_NE(next.find("hostPath: {path: /etc/tripline/tls"), std::string::npos) << next;
  EXPECT_NE(yaml.find("{name: tls, mountPath: /etc/tripline/tls, readOnly: true}"),
            std::string::npos);
  TempTree tree;
  tree.Write("/sensor.textproto", YamlBlock(yaml, "sensor.textproto"));
  auto s =
      ResolveSensorSettings(*ParseSensorFlags({"--config", tree.root() + "/sensor.textproto"}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (const std::string& f :
       {s->config.tls().ca_file(), s->config.tls().cert_file(), s->config.tls().key_file()}) {
    EXPECT_EQ(f.rfind("/etc/tripline/tls/", 0), 0u) << f;
  }
}

}  // namespace
}  // namespace tripline::sensor
