#include "tools/ctl/incident_graph.h"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>

#include "common/clock.h"
#include "common/text_escape.h"

namespace tripline::ctl {
namespace {

struct SeverityColours {
  const char* line;  // arrows, borders, title
  const char* fill;  // host nodes
};

SeverityColours ColoursOf(Severity s) {
  switch (s) {
    case Severity::kCritical: return {"#b71c1c", "#ffcdd2"};
    case Severity::kHigh: return {"#e65100", "#ffe0b2"};
    case Severity::kMedium: return {"#f9a825", "#fff9c4"};
    case Severity::kLow: return {"#1565c0", "#bbdefb"};
    case Severity::kInfo: break;
  }
  return {"#546e7a", "#eceff1"};
}

// The time of day of an RFC 3339 time: "03:41:12.301Z".
std::string TimeOfDay(int64_t ns) {
  const std::string t = FormatTimeNs(ns);
  const size_t at = t.find('T');
  return at == std::string::npos ? t : t.substr(at + 1);
}

bool HasTechnique(const Incident& i, const std::string& prefix) {
  for (const auto& t : i.techniques) {
    if (t.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// The stages of the chain seen on each host, from the incident's evidence.
std::map<std::string, std::vector<std::string>> StagesByHost(const Incident& i) {
  struct Counts {
    int failed = 0, logins = 0, files = 0, commands = 0;
  };
  std::map<std::string, Counts> counts;
  for (const EventRef& e : i.events) {
    Counts& c = counts[e.host];
    if (e.kind == "login") {
      // The correlator's summaries ("failed login alice via sshd ...") or the sensor's
      // ("login sshd alice ... auth failure").
      if (e.summary.rfind("failed login", 0) == 0 ||
          e.summary.find("failure") != std::string::npos) {
        ++c.failed;
      } else {
        ++c.logins;
      }
    } else if (e.kind == "file_open") {
      ++c.files;
    } else if (e.kind == "exec") {
      ++c.commands;
    }
  }
  std::string file_techniques;
  for (const auto& t : i.techniques) {
    if (t.rfind("T1003", 0) == 0 || t.rfind("T1552", 0) == 0 || t == "T1005" ||
        t.rfind("T1098", 0) == 0) {
      file_techniques += (file_techniques.empty() ? " " : ", ") + t;
    }
  }
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [host, c] : counts) {
    auto& s = out[host];
    if (c.failed > 0) {
      s.push_back("brute force: " + std::to_string(c.failed) + " failed login" +
                  (c.failed > 1 ? "s" : "") + (HasTechnique(i, "T1110") ? " (T1110)" : ""));
    }
    if (c.logins > 0 && c.failed > 0) {
      s.push_back(std::string("valid account: login") +
                  (HasTechnique(i, "T1078") ? " (T1078)" : ""));
    }
    if (c.files > 0) {
      s.push_back("sensitive files: " + std::to_string(c.files) + file_techniques);
    }
    if (c.commands > 0) s.push_back("commands: " + std::to_string(c.commands));
  }
  return out;
}

void Set(void* object, const char* name, const std::string& value) {
  agsafeset(object, const_cast<char*>(name), const_cast<char*>(value.c_str()),
            const_cast<char*>(""));
}

struct GraphDeleter {
  void operator()(Agraph_t* g) const { agclose(g); }
};
struct ContextDeleter {
  void operator()(GVC_t* c) const { gvFreeContext(c); }
};

}  // namespace

std::string GraphLabelText(const std::string& text) {
  std::string out;
  for (char c : EscapeForDisplay(text)) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '&') {
      out += "&amp;";
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::string> RenderIncidentGraph(const Incident& i, GraphFormat format) {
  std::unique_ptr<GVC_t, ContextDeleter> gvc(gvContext());
  if (!gvc) return Status::Internal("Graphviz: no context");
  std::unique_ptr<Agraph_t, GraphDeleter> g(
      agopen(const_cast<char*>("chain"), Agdirected, nullptr));
  if (!g) return Status::Internal("Graphviz: cannot open a graph");
  const SeverityColours colour = ColoursOf(i.severity);
  const std::string severity(SeverityName(i.severity));
  Set(g.get(), "rankdir", "LR");
  Set(g.get(), "fontname", "Helvetica");
  Set(g.get(), "labelloc", "t");
  Set(g.get(), "fontcolor", colour.line);
  // "\l" ends a left-justified line in DOT; every name in it is escaped, so it is ours.
  Set(g.get(), "label",
      GraphLabelText(i.id) + "  " + severity + "\\l" + GraphLabelText(i.title) + "\\l");

  // Hosts in chain order, then any endpoint of a hop not listed among them.
  std::vector<std::string> hosts = i.hosts;
  for (const Hop& h : i.chain) {
    for (const std::string* host : {&h.from, &h.to}) {
      if (std::find(hosts.begin(), hosts.end(), *host) == hosts.end()) hosts.push_back(*host);
    }
  }
  const auto stages = StagesByHost(i);
  std::map<std::string, Agnode_t*> nodes;
  for (size_t k = 0; k < hosts.size(); ++k) {
    const std::string id = "h" + std::to_string(k);
    Agnode_t* n = agnode(g.get(), const_cast<char*>(id.c_str()), 1);
    nodes[hosts[k]] = n;
    std::string label = GraphLabelText(hosts[k]) + "\\n";
    if (const auto it = stages.find(hosts[k]); it != stages.end()) {
      for (const auto& stage : it->second) label += GraphLabelText(stage) + "\\l";
    }
    Set(n, "label", label);
    Set(n, "shape", k == 0 ? "doubleoctagon" : "box");
    Set(n, "style", "filled,rounded");
    Set(n, "fillcolor", colour.fill);
    Set(n, "color", colour.line);
    Set(n, "fontname", "Helvetica");
    Set(n, "class", "host");
  }
  int64_t previous = 0;
  for (size_t k = 0; k < i.chain.size(); ++k) {
    const Hop& h = i.chain[k];
    const std::string id = "e" + std::to_string(k);
    Agedge_t* e = agedge(g.get(), nodes[h.from], nodes[h.to], const_cast<char*>(id.c_str()), 1);
    std::string label =
        "hop " + std::to_string(k + 1) + ": " + GraphLabelText(h.user) + "\\n" + TimeOfDay(h.at_ns);
    if (previous != 0) label += " (+" + FormatDurationNs(h.at_ns - previous) + ")";
    if (h.port != 0 && h.port != 22) label += "\\nport " + std::to_string(h.port);
    previous = h.at_ns;
    Set(e, "label", label);
    Set(e, "color", colour.line);
    Set(e, "fontcolor", colour.line);
    Set(e, "penwidth", "2");
    Set(e, "fontname", "Helvetica");
    Set(e, "class", "hop");
  }

  if (format == GraphFormat::kDot) {
    char* text = nullptr;
    size_t size = 0;
    FILE* f = open_memstream(&text, &size);
    if (f == nullptr) return Status::Internal("open_memstream failed");
    const int rc = agwrite(g.get(), f);
    std::fclose(f);
    std::string out(text == nullptr ? "" : std::string(text, size));
    std::free(text);
    if (rc != 0) return Status::Internal("Graphviz could not write DOT");
    return out;
  }
  if (gvLayout(gvc.get(), g.get(), "dot") != 0) {
    return Status::Internal("Graphviz has no dot layout (is its plugin configuration there?)");
  }
  char* data = nullptr;
  unsigned int length = 0;
  const int rc = gvRenderData(gvc.get(), g.get(), "svg", &data, &length);
  std::string out(data == nullptr ? "" : std::string(data, length));
  gvFreeRenderData(data);
  gvFreeLayout(gvc.get(), g.get());
  if (rc != 0) return Status::Internal("Graphviz cannot render SVG");
  return out;
}

}  // namespace tripline::ctl
