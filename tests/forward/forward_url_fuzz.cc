// Fuzzes the --forward URL parser (outside input: command line and configuration file) and
// the CEF escapes with the same bytes: the parser returns a target or an error and never
// crashes; an accepted URL has a known kind and format, a port for network outputs, and an
// absolute path for files; escaped CEF values hold no raw line break and no unescaped
// separator.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "aggregator/forward/forward_target.h"
#include "aggregator/forward/incident_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto parsed = tripline::ParseForwardUrl(input);
  if (parsed.ok()) {
    using Kind = tripline::ForwardTarget::Kind;
    if (parsed->kind == Kind::kFile) {
      if (parsed->path.empty() || parsed->path[0] != '/') std::abort();
      if (parsed->format != "ocsf" && parsed->format != "ecs") std::abort();
    } else {
      if (parsed->address.port == 0) std::abort();
      if (parsed->kind == Kind::kHttp && !parsed->address.IsLoopback()) std::abort();
    }
  }
  for (const std::string& escaped :
       {tripline::forward::EscapeCefHeader(input), tripline::forward::EscapeCefExtension(input)}) {
    for (size_t i = 0; i < escaped.size(); ++i) {
      const char c = escaped[i];
      if (c == '\n' || c == '\r' || c == '\0') std::abort();
      if (c == '\\') {
        if (i + 1 >= escaped.size()) std::abort();  // a dangling escape
        ++i;
      }
    }
  }
  const std::string header = tripline::forward::EscapeCefHeader(input);
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == '\\') {
      ++i;
    } else if (header[i] == '|') {
      std::abort();
    }
  }
  const std::string ext = tripline::forward::EscapeCefExtension(input);
  for (size_t i = 0; i < ext.size(); ++i) {
    if (ext[i] == '\\') {
      ++i;
    } else if (ext[i] == '=') {
      std::abort();
    }
  }
  return 0;
}
