#include "aggregator/forward/forward_target.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

namespace tripline {
namespace {

Status Bad(std::string_view url, std::string_view why) {
  return Status::InvalidArgument("bad --forward URL '" + std::string(url) +
                                 "': " + std::string(why));
}

// Reads the query "format=x[&token_file=/p][&ca_file=/p]": the format checked against
// `allowed`; the files (http(s) only, `files_allowed`) must be absolute paths.
template <size_t N>
Status ParseQuery(std::string_view url, std::string_view query,
                  const std::array<std::string_view, N>& allowed, bool files_allowed,
                  ForwardTarget* t) {
  t->format = "ocsf";
  bool seen_format = false;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = param.find('=');
    const std::string_view key = param.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
    if (key == "format" && !seen_format) {
      seen_format = true;
      if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
        std::string list;
        for (std::string_view a : allowed) list += (list.empty() ? "" : "|") + std::string(a);
        return Bad(url, "format must be " + list);
      }
      t->format = std::string(value);
    } else if (files_allowed && (key == "token_file" || key == "ca_file")) {
      std::string* out = key == "token_file" ? &t->token_file : &t->ca_file;
      if (!out->empty()) return Bad(url, std::string(key) + " given twice");
      if (value.empty() || value.front() != '/') {
        return Bad(url, std::string(key) + " must be an absolute path");
      }
      *out = std::string(value);
    } else {
      return Bad(url, files_allowed
                          ? "query parameters are format=, token_file= and ca_file=, once each"
                          : "the only query parameter is format=");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ForwardTarget> ParseForwardUrl(std::string_view url) {
  ForwardTarget t;
  t.url = std::string(url);
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return Bad(url, "missing scheme://");
  const std::string_view scheme = url.substr(0, scheme_end);
  std::string_view rest = url.substr(scheme_end + 3);

  if (scheme == "syslog+tcp" || scheme == "syslog+tls") {
    t.kind =
        scheme == "syslog+tcp" ? ForwardTarget::Kind::kSyslogTcp : ForwardTarget::Kind::kSyslogTls;
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?") != std::string_view::npos) {
      return Bad(url, "syslog URLs take HOST:PORT only");
    }
    auto hp = ParseHostPort(rest);
    if (!hp.ok()) return Bad(url, hp.status().message());
    if (hp->port == 0) return Bad(url, "port 0");
    t.address = *hp;
    t.format = "cef";
    return t;
  }

  if (scheme == "https" || scheme == "http") {
    t.kind = scheme == "https" ? ForwardTarget::Kind::kHttps : ForwardTarget::Kind::kHttp;
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path_query = slash == std::string_view::npos ? "/" : rest.substr(slash);
    if (authority.empty()) return Bad(url, "missing host");
    const bool has_port = authority.back() != ']' && authority.rfind(':') != std::string_view::npos;
    std::string with_port(authority);
    if (!has_port) with_port += scheme == "https" ? ":443" : ":80";
    auto hp = ParseHostPort(with_port);
    if (!hp.ok()) return Bad(url, hp.status().message());
    if (hp->port == 0) return Bad(url, "port 0");
    if (t.kind == ForwardTarget::Kind::kHttp && !hp->IsLoopback()) {
      return Bad(url, "plain http is allowed to a loopback host only; use https");
    }
    t.address = *hp;
    const size_t q = path_query.find('?');
    t.path = std::string(path_query.substr(0, q));
    for (char c : t.path) {
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        return Bad(url,
                   "the path must be printable ASCII without spaces (percent-encode the rest)");
      }
    }
    const std::string_view query =
        q == std::string_view::npos ? std::string_view() : path_query.substr(q + 1);
    TL_RETURN_IF_ERROR(ParseQuery(
        url, query, std::array<std::string_view, 4>{"ocsf", "ecs", "hec", "elastic-bulk"},
        /*files_allowed=*/true, &t));
    return t;
  }

  if (scheme == "file") {
    t.kind = ForwardTarget::Kind::kFile;
    const size_t q = rest.find('?');
    t.path = std::string(rest.substr(0, q));
    if (t.path.empty() || t.path.front() != '/') {
      return Bad(url, "file URLs take an absolute path: file:///var/log/tripline.jsonl");
    }
    if (t.path.back() == '/') return Bad(url, "path names a directory");
    const std::string_view query =
        q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
    TL_RETURN_IF_ERROR(ParseQuery(url, query, std::array<std::string_view, 2>{"ocsf", "ecs"},
                                  /*files_allowed=*/false, &t));
    return t;
  }
  return Bad(url, "scheme must be syslog+tcp, syslog+tls, https, http or file");
}

Result<std::string> ReadForwardToken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read token file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) return Status::InvalidArgument("token file " + path + " is empty");
  for (char c : token) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      return Status::InvalidArgument("token file " + path +
                                     ": the token must be one word of printable characters");
    }
  }
  return token;
}

}  // namespace tripline
