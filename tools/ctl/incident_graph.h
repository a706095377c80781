// The chain of an incident as a graph: hosts as nodes, hops as arrows labelled with the
// account and the time, the stages seen on each host marked on it (brute force, valid
// account, sensitive files, commands), coloured by severity. Laid out by Graphviz's
// library (gvc/cgraph), which also writes DOT and SVG.
//
// Every name shown comes from hosts an attacker may control. Labels are made safe for
// both outputs: first for display (common/text_escape.h: controls, bidi overrides and
// invalid UTF-8 escaped), then for DOT's escString (a backslash doubled, so "\N" or "\G"
// in a host name is text, not a substitution) and for SVG (an ampersand becomes "&amp;",
// which Graphviz would otherwise pass through as the start of an entity). Quotes, '<' and
// '>' are quoted by cgraph in DOT and escaped by Graphviz in SVG. Node and edge ids are
// Tripline's own ("h0", "e0"), never a name.
//
// Thread-safe (a Graphviz context per call).
#pragma once

#include <string>

#include "common/status.h"
#include "model/incident.h"

namespace tripline::ctl {

enum class GraphFormat { kDot, kSvg };

// DOT text (not laid out, for `dot` and friends) or an SVG picture (laid out by "dot").
Result<std::string> RenderIncidentGraph(const Incident& incident, GraphFormat format);

// A label value safe for DOT and SVG (see above).
std::string GraphLabelText(const std::string& text);

}  // namespace tripline::ctl
