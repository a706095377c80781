// triplinectl's chain drawing (tools/ctl/incident_graph.h) with names an attacker chose:
// the DOT read back by Graphviz's own parser and the SVG opened in a real headless
// Chromium hold exactly the hosts and hops of the incident, each name as text: no forged
// node, edge, attribute or element, no DOT substitution (\N, \G), no entity decoded.
#include <graphviz/cgraph.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/aggregator/subprocess.h"
#include "tests/aggregator/test_support.h"
#include "tools/ctl/incident_graph.h"

namespace tripline {
namespace {

using ctl::GraphFormat;
using ctl::RenderIncidentGraph;
using testing::RunCommand;
using testing::RunResult;
using testing::TempDir;

size_t Count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

Incident HostileIncident() {
  Incident i;
  i.id = "inc-00000000000000aa";
  i.severity = Severity::kHigh;
  i.title = "moving </text><script>alert(1)</script> \"quoted\" & more";
  i.hosts = {"<script>alert(1)</script>", "evil\"host];n9->n8[label=x", "a\\Nb\\G&amp;c"};
  i.chain = {{i.hosts[0], i.hosts[1], "root\nforged", "", 1'700'000'000'000'000'000, 22},
             {i.hosts[1], i.hosts[2], "\x1b[31mred\xff", "", 1'700'000'003'000'000'000, 2222}};
  i.events = {{"s", 1, i.hosts[0], 1'699'999'990'000'000'000, "login",
               "login sshd <b>x</b> from 198.18.0.66:4000 auth failure"}};
  i.techniques = {"T1021.004", "T1110"};
  return i;
}

TEST(CtlGraphTest, DotReadsBackWithExactlyTheChain) {
  const Incident i = HostileIncident();
  auto dot = RenderIncidentGraph(i, GraphFormat::kDot);
  ASSERT_TRUE(dot.ok()) << dot.status().ToString();
  Agraph_t* g = agmemread(dot->c_str());
  ASSERT_NE(g, nullptr) << *dot;
  EXPECT_EQ(agnnodes(g), 3) << *dot;
  EXPECT_EQ(agnedges(g), 2) << *dot;
  for (size_t k = 0; k < i.hosts.size(); ++k) {
    Agnode_t* n = agnode(g, const_cast<char*>(("h" + std::to_string(k)).c_str()), 0);
    ASSERT_NE(n, nullptr) << k;
    const std::string label = agget(n, const_cast<char*>("label"));
    EXPECT_EQ(label.rfind(ctl::GraphLabelText(i.hosts[k]) + "\\n", 0), 0u) << label;
  }
  agclose(g);
  // Display escapes, then DOT's and SVG's.
  EXPECT_EQ(ctl::GraphLabelText("a\\N&b\n"), "a\\\\N&amp;b\\\\n");
}

TEST(CtlGraphTest, SvgShowsHostileNamesAsTextInChromium) {
  TempDir dir;
  const Incident i = HostileIncident();
  auto svg = RenderIncidentGraph(i, GraphFormat::kSvg);
  ASSERT_TRUE(svg.ok()) << svg.status().ToString();
  const std::string path = dir.Sub("chain.svg");
  std::ofstream(path) << *svg;
  const RunResult r = RunCommand(
      {"/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
       "--user-data-dir=" + dir.Sub("profile"), "--dump-dom", "file://" + path},
      60000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& dom = r.out;
  ASSERT_NE(dom.find("<svg"), std::string::npos) << dom;
  EXPECT_EQ(Count(dom, "<script"), 0u) << dom;
  EXPECT_EQ(Count(dom, "class=\"node host\""), 3u) << dom;
  EXPECT_EQ(Count(dom, "class=\"edge hop\""), 2u) << dom;
  // Each name is a text node, exactly as it was (serialized back with XML escapes).
  for (const char* text : {">&lt;script&gt;alert(1)&lt;/script&gt;<",
                           ">evil\"host];n9-&gt;n8[label=x<", ">a\\Nb\\G&amp;amp;c<",
                           ">hop 1: root\\nforged<", ">hop 2: \\x1b[31mred\\xff<", ">port 2222<"}) {
    EXPECT_NE(dom.find(text), std::string::npos) << text << "\n" << dom;
  }
}

}  // namespace
}  // namespace tripline
