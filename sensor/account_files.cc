#include "sensor/account_files.h"

#include <charconv>

#include "common/text_lines.h"

namespace tripline::sensor {
namespace {

std::vector<std::string_view> SplitFields(std::string_view line, char sep) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (true) {
    size_t pos = line.find(sep, start);
    if (pos == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return fields;
    }
    fields.push_back(line.substr(start, pos - start));
    start = pos + 1;
  }
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

void AddError(std::vector<std::string>* errors, std::string_view source, size_t line_no,
              std::string_view what) {
  if (errors == nullptr) return;
  std::string e(source);
  e += ":";
  e += std::to_string(line_no);
  e += ": ";
  e += what;
  errors->push_back(std::move(e));
}

// Calls `fn(line, line_no)` for every line that is not blank or a comment. NIS compat
// entries ("+", "-user") name accounts that live elsewhere; they are not errors but there
// is nothing local to parse, so they are skipped too.
template <typename Fn>
void ForEachEntryLine(std::string_view text, Fn fn) {
  ForEachLine(text, [&fn](std::string_view line, size_t line_no) {
    if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') {
      return;
    }
    fn(line, line_no);
  });
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(std::string_view text, std::string_view source,
                                     std::vector<std::string>* errors) {
  std::vector<PasswdEntry> out;
  ForEachEntryLine(text, [&](std::string_view line, size_t line_no) {
    auto f = SplitFields(line, ':');
    if (f.size() != 7) {
      AddError(errors, source, line_no, "expected 7 fields, got " + std::to_string(f.size()));
      return;
    }
    PasswdEntry e;
    if (f[0].empty()) return AddError(errors, source, line_no, "empty user name");
    if (!ParseNumber(f[2], &e.uid)) {
      return AddError(errors, source, line_no, "bad uid '" + std::string(f[2]) + "'");
    }
    if (!ParseNumber(f[3], &e.gid)) {
      return AddError(errors, source, line_no, "bad gid '" + std::string(f[3]) + "'");
    }
    e.name = f[0];
    e.gecos = f[4];
    e.home = f[5];
    e.shell = f[6];
    out.push_back(std::move(e));
  });
  return out;
}

std::vector<GroupEntry> ParseGroup(std::string_view text, std::string_view source,
                                   std::vector<std::string>* errors) {
  std::vector<GroupEntry> out;
  ForEachEntryLine(text, [&](std::string_view line, size_t line_no) {
    auto f = SplitFields(line, ':');
    if (f.size() != 4) {
      AddError(errors, source, line_no, "expected 4 fields, got " + std::to_string(f.size()));
      return;
    }
    GroupEntry e;
    if (f[0].empty()) return AddError(errors, source, line_no, "empty group name");
    if (!ParseNumber(f[2], &e.gid)) {
      return AddError(errors, source, line_no, "bad gid '" + std::string(f[2]) + "'");
    }
    e.name = f[0];
    if (!f[3].empty()) {
      for (std::string_view m : SplitFields(f[3], ',')) {
        if (!m.empty()) e.members.emplace_back(m);
      }
    }
    out.push_back(std::move(e));
  });
  return out;
}

std::vector<ShadowEntry> ParseShadow(std::string_view text, std::string_view source,
                                     std::vector<std::string>* errors) {
  std::vector<ShadowEntry> out;
  ForEachEntryLine(text, [&](std::string_view line, size_t line_no) {
    auto f = SplitFields(line, ':');
    if (f.size() != 9) {
      AddError(errors, source, line_no, "expected 9 fields, got " + std::to_string(f.size()));
      return;
    }
    ShadowEntry e;
    if (f[0].empty()) return AddError(errors, source, line_no, "empty user name");
    e.name = f[0];
    e.hash = f[1];
    if (f[2].empty()) {
      e.last_change_days = -1;
    } else if (!ParseNumber(f[2], &e.last_change_days)) {
      return AddError(errors, source, line_no, "bad last change '" + std::string(f[2]) + "'");
    }
    if (!f[4].empty() && !ParseNumber(f[4], &e.max_days)) {
      return AddError(errors, source, line_no, "bad max days '" + std::string(f[4]) + "'");
    }
    out.push_back(std::move(e));
  });
  return out;
}

bool IsInteractiveShell(std::string_view shell) {
  if (shell.empty()) return true;  // login(1) falls back to /bin/sh
  size_t slash = shell.rfind('/');
  std::string_view base = slash == std::string_view::npos ? shell : shell.substr(slash + 1);
  return !(base == "nologin" || base == "false" || base == "sync" || base == "halt" ||
           base == "shutdown" || base == "true");
}

}  // namespace tripline::sensor
