#include "sensor/sudoers_parser.h"

#include <cctype>

namespace tripline::sensor {
namespace {

constexpr size_t kMaxSudoersBytes = 1 << 20;
constexpr int kMaxIncludeDepth = 8;  // sudo itself stops at 128; 8 is plenty in practice
constexpr int kMaxAliasDepth = 8;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool StartsWithWord(std::string_view s, std::string_view word) {
  return s.size() > word.size() && s.substr(0, word.size()) == word && IsSpace(s[word.size()]);
}

std::string CollapseSpaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (IsSpace(c)) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Removes a comment: '#' at the start of a word, unless it is "#<digits>" (a uid).
std::string_view StripComment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '#') continue;
    bool word_start = i == 0 || IsSpace(line[i - 1]) || line[i - 1] == ',' || line[i - 1] == '!' ||
                      line[i - 1] == '(';
    bool uid = i + 1 < line.size() && std::isdigit(static_cast<unsigned char>(line[i + 1]));
    if (word_start && !uid) return line.substr(0, i);
  }
  return line;
}

bool IsAliasName(std::string_view s) {
  if (s.empty() || !(s[0] >= 'A' && s[0] <= 'Z')) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// Splits a comma-separated list, trimming each item.
std::vector<std::string> SplitList(std::string_view s) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    std::string_view item = Trim(s.substr(start, comma - start));
    if (!item.empty()) items.emplace_back(item);
    start = comma + 1;
  }
  return items;
}

void AddError(SudoersPolicy* policy, const std::string& source, size_t line_no,
              std::string_view what) {
  policy->errors.push_back(source + ":" + std::to_string(line_no) + ": " + std::string(what));
}

void ExpandPrincipal(const SudoersPolicy& policy, std::string_view item, bool negated, int depth,
                     std::vector<SudoPrincipal>* out) {
  while (!item.empty() && item.front() == '!') {
    negated = !negated;
    item = Trim(item.substr(1));
  }
  SudoPrincipal p;
  p.negated = negated;
  if (item == "ALL") {
    p.kind = SudoPrincipal::Kind::kAll;
  } else if (item.starts_with("%:") || item.starts_with("%#") || item.starts_with("+")) {
    p.kind = SudoPrincipal::Kind::kOther;
    p.name = item;
  } else if (item.starts_with("%")) {
    p.kind = SudoPrincipal::Kind::kGroup;
    p.name = item.substr(1);
  } else if (item.starts_with("#")) {
    p.kind = SudoPrincipal::Kind::kUid;
    p.name = item.substr(1);
  } else if (IsAliasName(item) && policy.user_aliases.count(std::string(item)) != 0 &&
             depth < kMaxAliasDepth) {
    for (const std::string& member : policy.user_aliases.at(std::string(item))) {
      ExpandPrincipal(policy, member, negated, depth + 1, out);
    }
    return;
  } else {
    p.kind = SudoPrincipal::Kind::kUser;
    p.name = item;
  }
  out->push_back(std::move(p));
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

void ParseInclude(std::string_view target, bool is_dir, const std::string& source, size_t line_no,
                  const HostFiles* files, int depth, SudoersPolicy* policy) {
  if (files == nullptr) {
    return AddError(policy, source, line_no, "include not followed");
  }
  if (depth >= kMaxIncludeDepth) {
    return AddError(policy, source, line_no, "includes nested too deeply");
  }
  std::string path(target);
  if (path.empty()) return AddError(policy, source, line_no, "include without a path");
  // sudo 1.9 resolves a relative include against the including file's directory.
  if (path.front() != '/') path = DirName(source) + "/" + path;
  if (!is_dir) {
    auto text = files->ReadFile(path, kMaxSudoersBytes);
    if (!text.ok()) {
      return AddError(policy, source, line_no, "include: " + text.status().ToString());
    }
    return ParseSudoersText(*text, path, files, depth + 1, policy);
  }
  auto names = files->ListDir(path);
  if (!names.ok()) {
    // A missing includedir is not an error to sudo either.
    if (!names.status().IsNotFound()) {
      AddError(policy, source, line_no, "includedir: " + names.status().ToString());
    }
    return;
  }
  for (const std::string& name : *names) {
    // sudo skips editor backups and package-manager leftovers this way.
    if (name.find('.') != std::string::npos || name.ends_with("~")) continue;
    std::string file = path + "/" + name;
    auto text = files->ReadFile(file, kMaxSudoersBytes);
    if (!text.ok()) {
      AddError(policy, file, 0, text.status().ToString());
      continue;
    }
    ParseSudoersText(*text, file, files, depth + 1, policy);
  }
}

void ParseAlias(std::string_view rest, std::string_view kind, bool keep, const std::string& source,
                size_t line_no, SudoersPolicy* policy) {
  size_t eq = rest.find('=');
  if (eq == std::string_view::npos) {
    return AddError(policy, source, line_no, std::string(kind) + " without '='");
  }
  std::string_view name = Trim(rest.substr(0, eq));
  if (!IsAliasName(name)) {
    return AddError(policy, source, line_no, "bad alias name '" + std::string(name) + "'");
  }
  std::vector<std::string> members = SplitList(rest.substr(eq + 1));
  if (members.empty()) {
    return AddError(policy, source, line_no, "alias " + std::string(name) + " is empty");
  }
  if (keep) policy->user_aliases[std::string(name)] = std::move(members);
}

// True when some command of the specification (the part after the first '=') runs under
// the NOPASSWD tag. Tags carry over to later commands until overridden; any NOPASSWD that
// takes effect at all is what a posture audit needs to flag.
bool HasNopasswdTag(std::string_view commands) {
  size_t pos = 0;
  while ((pos = commands.find("NOPASSWD:", pos)) != std::string_view::npos) {
    bool word_start = pos == 0 || IsSpace(commands[pos - 1]) || commands[pos - 1] == ',' ||
                      commands[pos - 1] == ')' || commands[pos - 1] == ':';
    if (word_start) return true;
    pos += 9;
  }
  return false;
}

void ParseUserSpec(std::string_view line, const std::string& source, size_t line_no,
                   SudoersPolicy* policy) {
  size_t eq = line.find('=');
  if (eq == std::string_view::npos) {
    return AddError(policy, source, line_no,
                    "expected 'USERS HOSTS = COMMANDS', got '" + CollapseSpaces(line) + "'");
  }
  std::string_view lhs = Trim(line.substr(0, eq));
  std::string_view rhs = Trim(line.substr(eq + 1));
  // The user list is comma-separated and may have spaces around the commas; the first
  // whitespace not next to a comma ends it and the host list follows.
  std::vector<std::string> users;
  size_t pos = 0;
  while (true) {
    size_t start = pos;
    while (pos < lhs.size() && !IsSpace(lhs[pos]) && lhs[pos] != ',') ++pos;
    if (pos == start) break;
    users.emplace_back(lhs.substr(start, pos - start));
    size_t after = pos;
    while (after < lhs.size() && IsSpace(lhs[after])) ++after;
    if (after < lhs.size() && lhs[after] == ',') {
      ++after;
      while (after < lhs.size() && IsSpace(lhs[after])) ++after;
      pos = after;
      continue;
    }
    pos = after;
    break;
  }
  std::string_view hosts = Trim(lhs.substr(pos));
  if (users.empty() || hosts.empty()) {
    return AddError(policy, source, line_no,
                    "expected 'USERS HOSTS = COMMANDS', got '" + CollapseSpaces(line) + "'");
  }
  if (rhs.empty()) return AddError(policy, source, line_no, "rule without commands");
  SudoRule rule;
  for (const std::string& u : users) ExpandPrincipal(*policy, u, false, 0, &rule.principals);
  rule.text = CollapseSpaces(line);
  rule.source = source + ":" + std::to_string(line_no);
  rule.nopasswd = HasNopasswdTag(rhs);
  policy->rules.push_back(std::move(rule));
}

}  // namespace

void ParseSudoersText(std::string_view text, const std::string& source, const HostFiles* files,
                      int depth, SudoersPolicy* policy) {
  size_t line_no = 0;
  size_t start = 0;
  std::string logical;
  size_t logical_line = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    if (logical.empty()) logical_line = line_no;
    if (!raw.empty() && raw.back() == '\\') {
      logical.append(raw.substr(0, raw.size() - 1));
      logical += ' ';
      if (start < text.size()) continue;
    } else {
      logical.append(raw);
    }
    std::string_view line = Trim(logical);
    // Include directives look like comments, so they are recognised before comments go.
    if (StartsWithWord(line, "#include") || StartsWithWord(line, "@include")) {
      ParseInclude(Trim(line.substr(8)), false, source, logical_line, files, depth, policy);
    } else if (StartsWithWord(line, "#includedir") || StartsWithWord(line, "@includedir")) {
      ParseInclude(Trim(line.substr(11)), true, source, logical_line, files, depth, policy);
    } else {
      line = Trim(StripComment(line));
      if (line.empty()) {
        // blank or comment
      } else if (line.starts_with("Defaults")) {
        // Not interpreted (see header).
      } else if (StartsWithWord(line, "User_Alias")) {
        ParseAlias(line.substr(10), "User_Alias", true, source, logical_line, policy);
      } else if (StartsWithWord(line, "Runas_Alias") || StartsWithWord(line, "Host_Alias") ||
                 StartsWithWord(line, "Cmnd_Alias") || StartsWithWord(line, "Cmd_Alias")) {
        size_t sp = line.find_first_of(" \t");
        ParseAlias(line.substr(sp), line.substr(0, sp), false, source, logical_line, policy);
      } else {
        ParseUserSpec(line, source, logical_line, policy);
      }
    }
    logical.clear();
  }
}

SudoersPolicy ParseSudoers(const HostFiles& files, const std::string& path) {
  SudoersPolicy policy;
  auto text = files.ReadFile(path, kMaxSudoersBytes);
  if (!text.ok()) {
    // No sudo installed is a normal state, not a parse error.
    if (!text.status().IsNotFound()) policy.errors.push_back(text.status().ToString());
    return policy;
  }
  ParseSudoersText(*text, path, &files, 0, &policy);
  return policy;
}

}  // namespace tripline::sensor
