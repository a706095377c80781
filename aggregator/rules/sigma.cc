#include "aggregator/rules/sigma.h"

#include <arpa/inet.h>
#include <hs/hs.h>
#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "aggregator/rules/condition.h"
#include "common/clock.h"

namespace tripline::rules {

std::string_view RuleStateName(RuleState s) {
  switch (s) {
    case RuleState::kLoaded: return "loaded";
    case RuleState::kUnsupported: return "unsupported";
    case RuleState::kBroken: return "broken";
  }
  return "broken";
}

namespace {

// ---- fields -------------------------------------------------------------------------------

// What Tripline can fill a Sigma field from. Arguments a0..a63 follow kArg0.
enum FieldId : int {
  kImage = 0,
  kCommandLine,
  kParentImage,
  kParentCommandLine,
  kUser,
  kProcessId,
  kParentProcessId,
  kAuditType,  // auditd "type": EXECVE for every exec
  kArgc,       // auditd "argc"
  kExe,        // auditd "exe"
  kComm,       // auditd "comm"
  kKeywords,   // the text keyword searches run over (see View::Build)
  kTargetFilename,
  kDestinationIp,
  kDestinationPort,
  kSourceIp,
  kSourcePort,
  kInitiated,
  kService,
  kOutcome,
  kArg0,
};
constexpr int kMaxArgs = 64;
constexpr int kNumFields = kArg0 + kMaxArgs;

// Which events a log source maps to (bits).
enum Source : uint32_t {
  kSrcProcess = 1,    // exec, process_creation fields
  kSrcAuditExec = 2,  // exec, auditd EXECVE fields
  kSrcFileWrite = 4,  // sensitive file opened for writing
  kSrcFileAny = 8,    // sensitive file opened
  kSrcNet = 16,
  kSrcLogin = 32,
};

struct LogsourceMap {
  uint32_t sources = 0;
  std::string name;
  std::map<std::string, int, std::less<>> fields;
  std::map<std::string, std::string, std::less<>> known_missing;  // field -> why
  bool keywords = false;   // keyword (field-less) searches are meaningful
  bool any_field = false;  // accepts every field (checks a rule whose log source has no events)
};

const std::map<std::string, std::string, std::less<>>& CommonMissing() {
  static const auto* m = new std::map<std::string, std::string, std::less<>>{
      {"CurrentDirectory", "the working directory of a process is not captured"},
      {"LogonId", "Windows-style logon ids do not exist on Linux events"},
      {"OriginalFileName", "PE metadata does not exist on Linux"},
      {"Hashes", "executable hashes are not captured"},
      {"Product", "executable metadata is not captured"},
      {"Description", "executable metadata is not captured"},
      {"Company", "executable metadata is not captured"},
      {"IntegrityLevel", "integrity levels do not exist on Linux"},
      {"DestinationHostname", "DNS names of connections are not captured"},
      {"SourceHostname", "DNS names of connections are not captured"},
      {"Protocol", "only TCP connections are captured"},
      {"ParentUser", "the parent's user is not captured"},
      {"Computer", "host names are not a Sigma field in Tripline's mapping"},
  };
  return *m;
}

// nullptr when Tripline has no events for the log source; *why then says so.
const LogsourceMap* MapLogsource(const std::string& product, const std::string& category,
                                 const std::string& service, std::string* why) {
  static const LogsourceMap* process = [] {
    auto* m = new LogsourceMap;
    m->sources = kSrcProcess;
    m->name = "linux/process_creation";
    m->fields = {{"Image", kImage},
                 {"CommandLine", kCommandLine},
                 {"ParentImage", kParentImage},
                 {"ParentCommandLine", kParentCommandLine},
                 {"User", kUser},
                 {"ProcessId", kProcessId},
                 {"ParentProcessId", kParentProcessId}};
    return m;
  }();
  static const LogsourceMap* auditd = [] {
    auto* m = new LogsourceMap;
    m->sources = kSrcAuditExec;
    m->name = "linux/auditd (EXECVE)";
    m->fields = {{"type", kAuditType}, {"argc", kArgc}, {"exe", kExe}, {"comm", kComm}};
    for (int i = 0; i < kMaxArgs; ++i) m->fields["a" + std::to_string(i)] = kArg0 + i;
    m->keywords = true;
    return m;
  }();
  static const LogsourceMap* file_event = [] {
    auto* m = new LogsourceMap;
    m->sources = kSrcFileWrite;
    m->name = "linux/file_event";
    m->fields = {{"TargetFilename", kTargetFilename},
                 {"Image", kImage},
                 {"User", kUser},
                 {"ProcessId", kProcessId}};
    return m;
  }();
  static const LogsourceMap* file_access = [] {
    auto* m = new LogsourceMap(*file_event);
    m->sources = kSrcFileAny;
    m->name = "linux/file_access";
    return m;
  }();
  static const LogsourceMap* net = [] {
    auto* m = new LogsourceMap;
    m->sources = kSrcNet;
    m->name = "linux/network_connection";
    m->fields = {{"DestinationIp", kDestinationIp},
                 {"DestinationPort", kDestinationPort},
                 {"SourceIp", kSourceIp},
                 {"SourcePort", kSourcePort},
                 {"Initiated", kInitiated},
                 {"Image", kImage},
                 {"User", kUser},
                 {"ProcessId", kProcessId}};
    return m;
  }();
  static const LogsourceMap* login = [] {
    auto* m = new LogsourceMap;
    m->sources = kSrcLogin;
    m->name = "linux/sshd (logins)";
    m->fields = {{"User", kUser},          {"TargetUserName", kUser},   {"SourceIp", kSourceIp},
                 {"IpAddress", kSourceIp}, {"SourcePort", kSourcePort}, {"Service", kService},
                 {"Outcome", kOutcome}};
    return m;
  }();
  if (!product.empty() && product != "linux") {
    *why = "logsource product '" + product + "': Tripline watches Linux hosts";
    return nullptr;
  }
  if (category == "process_creation" && service.empty()) return process;
  if (category == "file_event" && service.empty()) return file_event;
  if (category == "file_access" && service.empty()) return file_access;
  if (category == "network_connection" && service.empty()) return net;
  if (category.empty() && service == "auditd") return auditd;
  if (category.empty() && (service == "sshd" || service == "auth")) return login;
  std::string what = category.empty() ? "service '" + service + "'" : "category '" + category + "'";
  if (category.empty() && service.empty()) what = "product 'linux' without category or service";
  *why = "logsource " + what + ": Tripline has no events for it (docs/sigma.md)";
  return nullptr;
}

// ---- values -------------------------------------------------------------------------------

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Sigma's wildcards: '*' any run, '?' one character, '\' escapes either (and itself).
// Matches lower-case text against a lower-case pattern; linear backtracking on '*'.
bool GlobMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char pc = p[pi];
      if (pc == '*') {
        star = pi++;
        mark = si;
        continue;
      }
      if (pc == '?') {
        ++pi;
        ++si;
        continue;
      }
      size_t adv = 1;
      if (pc == '\\' && pi + 1 < p.size() &&
          (p[pi + 1] == '*' || p[pi + 1] == '?' || p[pi + 1] == '\\')) {
        pc = p[pi + 1];
        adv = 2;
      }
      if (pc == s[si]) {
        pi += adv;
        ++si;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    pi = star + 1;
    si = ++mark;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

// Splits a Sigma value into its literal runs; true when it holds an unescaped wildcard.
bool HasWildcards(std::string_view v, std::string* unescaped, std::vector<std::string>* runs) {
  bool wild = false;
  std::string cur;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\\' && i + 1 < v.size() && (v[i + 1] == '*' || v[i + 1] == '?' || v[i + 1] == '\\')) {
      cur += v[i + 1];
      unescaped->push_back(v[i + 1]);
      ++i;
    } else if (c == '*' || c == '?') {
      wild = true;
      runs->push_back(cur);
      cur.clear();
    } else {
      cur += c;
      unescaped->push_back(c);
    }
  }
  runs->push_back(cur);
  return wild;
}

std::string Base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; --k) out += kAlphabet[(n >> (6 * k)) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// The three encodings of `v` as it may sit at any offset inside base64 text (Sigma's
// base64offset: the characters that depend on neighbouring bytes are cut off).
std::vector<std::string> Base64Offsets(std::string_view v) {
  static const size_t kStart[3] = {0, 2, 3};
  static const size_t kEnd[3] = {0, 3, 2};
  std::vector<std::string> out;
  for (size_t i = 0; i < 3; ++i) {
    std::string padded = std::string(i, ' ') + std::string(v);
    std::string enc = Base64(padded);
    const size_t cut_end = kEnd[(v.size() + i) % 3];
    if (enc.size() <= kStart[i] + cut_end) continue;
    out.push_back(enc.substr(kStart[i], enc.size() - kStart[i] - cut_end));
  }
  return out;
}

// windash: '-' at the start of a word may also be written '/', en dash, em dash or
// horizontal bar.
std::vector<std::string> WindashVariants(const std::string& v) {
  static const char* kDashes[] = {"-", "/", "\xe2\x80\x93", "\xe2\x80\x94", "\xe2\x80\x95"};
  std::vector<std::string> out;
  for (const char* d : kDashes) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '-' && (i == 0 || v[i - 1] == ' ')) {
        s += d;
      } else {
        s += v[i];
      }
    }
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

struct Cidr {
  int family = 0;
  unsigned char addr[16] = {};
  int bits = 0;
};

bool ParseAddr(std::string_view text, int* family, unsigned char out[16]) {
  std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), out) == 1) {
    *family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

bool ParseCidr(std::string_view text, Cidr* c) {
  size_t slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  if (!ParseAddr(addr, &c->family, c->addr)) return false;
  const int max = c->family == AF_INET ? 32 : 128;
  c->bits = max;
  if (slash != std::string_view::npos) {
    std::string_view b = text.substr(slash + 1);
    if (b.empty() || b.size() > 3) return false;
    int n = 0;
    for (char ch : b) {
      if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
      n = n * 10 + (ch - '0');
    }
    if (n > max) return false;
    c->bits = n;
  }
  return true;
}

bool InCidr(const Cidr& c, std::string_view text) {
  int family = 0;
  unsigned char a[16];
  if (!ParseAddr(text, &family, a) || family != c.family) return false;
  int bits = c.bits;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((a[i] & mask) != (c.addr[i] & mask)) return false;
  }
  return true;
}

bool ParseNumber(std::string_view s, double* out) {
  if (s.empty() || s.size() > 64) return false;
  std::string t(s);
  char* end = nullptr;
  *out = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size();
}

struct Matcher {
  enum class Op { kEq, kContains, kStarts, kEnds, kGlob, kRe, kCidr, kExists, kNull, kCmp };
  Op op = Op::kEq;
  bool cased = false;
  std::string s;  // the pattern, lower case unless cased
  std::shared_ptr<RE2> re;
  Cidr cidr;
  bool exists = true;
  std::string cmp;  // gt, gte, lt, lte
  double num = 0;
  std::string literal;  // a run the field must contain for this value to match ("" none)
};

struct FieldCond {
  int field = 0;
  bool all = false;  // every value must match (|all); else any
  std::vector<Matcher> values;
};

// A selection: a list of maps (any of them), each map a list of field conditions (all).
struct Selection {
  std::string name;
  std::vector<std::vector<FieldCond>> alternatives;
};

struct Expr {
  enum class Kind { kSel, kAnd, kOr, kNot, kTrue, kFalse };
  Kind kind = Kind::kSel;
  int sel = 0;
  std::vector<Expr> kids;
};

// A set of (field, literal): the rule can match only when one of them occurs.
using Gate = std::vector<std::pair<int, std::string>>;

struct CorrelationSpec {
  enum class Type { kEventCount, kValueCount, kTemporal, kTemporalOrdered };
  Type type = Type::kEventCount;
  std::vector<std::string> refs;  // names or ids as written
  std::vector<int> rules;         // resolved rule indices, in order
  std::vector<std::string> group_by;
  std::vector<int> group_fields;  // resolved
  int64_t timespan_ns = 0;
  std::string cmp = "gte";
  double threshold = 1;
  std::string value_field;
  int value_field_id = -1;
};

struct CompiledRule {
  RuleInfo info;
  std::string name;  // Sigma v2 "name", for correlation references
  uint32_t sources = 0;
  std::vector<Selection> sels;
  Expr cond;
  bool generate = true;  // false: referenced by a correlation that does not generate it
  std::optional<CorrelationSpec> corr;
  std::vector<int> correlations;  // correlation rules that reference this one
  std::optional<Gate> gate;
};

class CompileError {
 public:
  RuleState state;
  std::string reason;
  int line;
};

}  // namespace

// ---- the compiled set ----------------------------------------------------------------------

class RuleSet {
 public:
  std::vector<CompiledRule> rules;
  // Per source bit (index = bit position): loaded rules without a gate.
  std::vector<int> ungated[6];
  // Per field with gates: the literals and the rules each one admits.
  struct FieldDb {
    int field = 0;
    hs_database_t* db = nullptr;
    std::vector<std::vector<int>> admits;  // literal id -> rule indices
  };
  std::vector<FieldDb> dbs;
  uint32_t gated_sources = 0;

  ~RuleSet() {
    for (FieldDb& f : dbs) hs_free_database(f.db);
  }
};

namespace {

// ---- the event view -----------------------------------------------------------------------

struct ProcRecord {
  std::string image;
  std::string cmdline;
};

struct View {
  std::string_view raw[kNumFields];
  bool has[kNumFields] = {};
  std::string lower[kNumFields];
  bool lowered[kNumFields] = {};
  std::string owned[8];

  // Ready for the next event; the strings keep their capacity.
  void Reset() {
    std::fill(std::begin(has), std::end(has), false);
    std::fill(std::begin(lowered), std::end(lowered), false);
    for (std::string& s : owned) s.clear();
  }
  void Set(int f, std::string_view v) {
    raw[f] = v;
    has[f] = true;
  }
  std::string_view Lowered(int f) {
    if (!lowered[f]) {
      lower[f].assign(raw[f]);
      for (char& c : lower[f]) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      lowered[f] = true;
    }
    return lower[f];
  }
};

uint32_t SourcesOf(const Event& e) {
  switch (e.kind()) {
    case EventKind::kExec: return kSrcProcess | kSrcAuditExec;
    case EventKind::kFileOpen: {
      const FileOpenEvent* f = e.As<FileOpenEvent>();
      const bool write = f->access == FileAccess::kWrite || f->access == FileAccess::kReadWrite;
      return write ? kSrcFileAny | kSrcFileWrite : uint32_t{kSrcFileAny};
    }
    case EventKind::kNet: return kSrcNet;
    case EventKind::kLogin: return kSrcLogin;
    default: return 0;
  }
}

// ---- compiling ----------------------------------------------------------------------------

CompileError Broken(const YAML::Node& n, std::string why) {
  return {RuleState::kBroken, std::move(why), n.Mark().line >= 0 ? n.Mark().line + 1 : 0};
}
CompileError Unsupported(std::string why) { return {RuleState::kUnsupported, std::move(why), 0}; }

std::string Scalar(const YAML::Node& n) {
  return n.IsDefined() && n.IsScalar() ? n.Scalar() : std::string();
}

bool IsNullValue(const YAML::Node& n) { return n.IsNull(); }

// Builds the matchers of one value under the modifiers.
void AddValue(const YAML::Node& node, const std::vector<std::string>& mods, int field,
              std::vector<Matcher>* out) {
  bool contains = false, starts = false, ends = false, re = false, cidr = false, b64 = false,
       b64off = false, windash = false, exists = false, cased = false;
  std::string cmp, re_flags;
  for (const std::string& m : mods) {
    if (m == "contains")
      contains = true;
    else if (m == "startswith")
      starts = true;
    else if (m == "endswith")
      ends = true;
    else if (m == "re")
      re = true;
    else if (m == "i" || m == "m" || m == "s")
      re_flags += m;
    else if (m == "cidr")
      cidr = true;
    else if (m == "base64")
      b64 = true;
    else if (m == "base64offset")
      b64off = true;
    else if (m == "windash")
      windash = true;
    else if (m == "exists")
      exists = true;
    else if (m == "cased")
      cased = true;
    else if (m == "gt" || m == "gte" || m == "lt" || m == "lte")
      cmp = m;
  }
  Matcher base;
  base.cased = cased;
  if (IsNullValue(node)) {
    base.op = Matcher::Op::kNull;
    out->push_back(base);
    return;
  }
  if (!node.IsScalar()) throw Broken(node, "a value must be a string, a number or null");
  const std::string v = node.Scalar();
  if (exists) {
    base.op = Matcher::Op::kExists;
    const std::string lv = Lower(v);
    if (lv != "true" && lv != "false") throw Broken(node, "|exists wants true or false");
    base.exists = lv == "true";
    out->push_back(base);
    return;
  }
  if (!cmp.empty()) {
    base.op = Matcher::Op::kCmp;
    base.cmp = cmp;
    if (!ParseNumber(v, &base.num)) throw Broken(node, "|" + cmp + " wants a number");
    out->push_back(base);
    return;
  }
  if (re) {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_case_sensitive(re_flags.find('i') == std::string::npos);
    o.set_dot_nl(re_flags.find('s') != std::string::npos);
    o.set_max_mem(8 << 20);
    std::string pattern = re_flags.find('m') != std::string::npos ? "(?m)" + v : v;
    base.op = Matcher::Op::kRe;
    base.re = std::make_shared<RE2>(pattern, o);
    if (!base.re->ok()) {
      // Perl features RE2 refuses (look-around, back-references) would need a backtracking
      // engine, which a hostile event could make run for ever.
      throw Unsupported("regular expression '" + v + "' (" + base.re->error() +
                        "): RE2 runs in linear time and has no look-around or back-references");
    }
    out->push_back(base);
    return;
  }
  if (cidr) {
    base.op = Matcher::Op::kCidr;
    if (!ParseCidr(v, &base.cidr)) throw Broken(node, "'" + v + "' is not a CIDR range");
    out->push_back(base);
    return;
  }
  // Text: transformations first (windash, base64), then the position.
  std::vector<std::string> texts = {v};
  if (windash) {
    std::vector<std::string> all;
    for (const std::string& t : texts) {
      for (std::string& w : WindashVariants(t)) all.push_back(std::move(w));
    }
    texts = std::move(all);
  }
  if (b64 || b64off) {
    std::vector<std::string> enc;
    for (const std::string& t : texts) {
      if (b64off) {
        for (std::string& e : Base64Offsets(t)) enc.push_back(std::move(e));
      } else {
        enc.push_back(Base64(t));
      }
    }
    texts = std::move(enc);
    base.cased = true;  // base64 text is case-sensitive
  }
  for (const std::string& t : texts) {
    Matcher m = base;
    std::string unescaped;
    std::vector<std::string> runs;
    const bool encoded = b64 || b64off;
    const bool wild = !encoded && HasWildcards(t, &unescaped, &runs);
    std::string pat = m.cased ? t : Lower(t);
    if (wild) {
      m.op = Matcher::Op::kGlob;
      if (contains || ends) pat = "*" + pat;
      if (contains || starts) pat += "*";
      m.s = pat;
      std::string best;
      for (const std::string& r : runs) {
        if (r.size() > best.size()) best = r;
      }
      m.literal = Lower(best);
    } else {
      if (!encoded) pat = m.cased ? unescaped : Lower(unescaped);
      m.s = pat;
      m.op = contains ? Matcher::Op::kContains
             : starts ? Matcher::Op::kStarts
             : ends   ? Matcher::Op::kEnds
                      : Matcher::Op::kEq;
      m.literal = Lower(pat);
    }
    (void)field;
    out->push_back(std::move(m));
  }
}

const std::set<std::string, std::less<>>& KnownModifiers() {
  static const auto* s = new std::set<std::string, std::less<>>{
      "contains", "startswith",   "endswith", "all",    "re",    "i",  "m",   "s",  "cidr",
      "base64",   "base64offset", "windash",  "exists", "cased", "gt", "gte", "lt", "lte"};
  return *s;
}

FieldCond CompileFieldCond(const std::string& key, const YAML::Node& key_node,
                           const YAML::Node& value, const LogsourceMap& ls) {
  std::vector<std::string> parts;
  {
    std::string cur;
    for (char c : key) {
      if (c == '|') {
        parts.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    parts.push_back(cur);
  }
  const std::string field = parts[0];
  std::vector<std::string> mods(parts.begin() + 1, parts.end());
  FieldCond fc;
  for (const std::string& m : mods) {
    if (m == "all") {
      fc.all = true;
    } else if (KnownModifiers().count(m) == 0) {
      static const std::set<std::string> kKnownUnsupported = {
          "expand", "fieldref", "utf16le", "utf16be", "utf16", "wide",
          "minute", "hour",     "day",     "week",    "month", "year"};
      if (kKnownUnsupported.count(m) > 0) {
        throw Unsupported("modifier |" + m + " is not supported (docs/sigma.md)");
      }
      throw Broken(key_node, "unknown modifier |" + m);
    }
  }
  if (field.empty()) {
    if (!ls.keywords) {
      throw Unsupported("keyword search over raw log text: " + ls.name +
                        " events are structured, without a log line");
    }
    fc.field = kKeywords;
  } else if (auto it = ls.fields.find(field); it != ls.fields.end()) {
    fc.field = it->second;
  } else if (ls.any_field) {
    fc.field = kKeywords;
  } else if (auto miss = CommonMissing().find(field); miss != CommonMissing().end()) {
    throw Unsupported("field " + field + ": " + miss->second);
  } else {
    throw Unsupported("field " + field + " is not captured for " + ls.name);
  }
  if (value.IsSequence()) {
    for (const YAML::Node& v : value) AddValue(v, mods, fc.field, &fc.values);
  } else if (value.IsMap()) {
    throw Broken(value, "field " + field + " wants a value or a list of values, not a map");
  } else {
    AddValue(value, mods, fc.field, &fc.values);
  }
  if (fc.values.empty()) throw Broken(value, "field " + field + " has no values");
  if (fc.field == kAuditType) {
    for (const Matcher& m : fc.values) {
      if (m.op != Matcher::Op::kEq || m.s != "execve") {
        std::string type = m.s;
        for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        throw Unsupported("auditd record type '" + type +
                          "' is not captured: Tripline's execs give EXECVE records only");
      }
    }
  }
  return fc;
}

std::vector<FieldCond> CompileMap(const YAML::Node& map, const LogsourceMap& ls) {
  std::vector<FieldCond> out;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) throw Broken(kv.first, "a field name must be text");
    out.push_back(CompileFieldCond(kv.first.Scalar(), kv.first, kv.second, ls));
  }
  return out;
}

Selection CompileSelection(const std::string& name, const YAML::Node& node,
                           const LogsourceMap& ls) {
  Selection s;
  s.name = name;
  if (node.IsMap()) {
    s.alternatives.push_back(CompileMap(node, ls));
  } else if (node.IsSequence()) {
    // A list of maps (any), or a list of keywords.
    FieldCond keywords;
    keywords.field = kKeywords;
    for (const YAML::Node& item : node) {
      if (item.IsMap()) {
        s.alternatives.push_back(CompileMap(item, ls));
      } else if (item.IsScalar()) {
        if (!ls.keywords) {
          throw Unsupported("keyword search over raw log text: " + ls.name +
                            " events are structured, without a log line");
        }
        AddValue(item, {"contains"}, kKeywords, &keywords.values);
      } else {
        throw Broken(item, "selection " + name + " holds a nested list");
      }
    }
    if (!keywords.values.empty()) s.alternatives.push_back({std::move(keywords)});
  } else if (node.IsScalar()) {
    if (!ls.keywords) {
      throw Unsupported("keyword search over raw log text: " + ls.name +
                        " events are structured, without a log line");
    }
    FieldCond keywords;
    keywords.field = kKeywords;
    AddValue(node, {"contains"}, kKeywords, &keywords.values);
    s.alternatives.push_back({std::move(keywords)});
  } else {
    throw Broken(node, "selection " + name + " is empty");
  }
  // Keyword values in a map ('|all': [...]) carry an implicit contains.
  for (auto& alt : s.alternatives) {
    for (FieldCond& fc : alt) {
      if (fc.field != kKeywords) continue;
      for (Matcher& m : fc.values) {
        if (m.op == Matcher::Op::kEq) m.op = Matcher::Op::kContains;
        if (m.op == Matcher::Op::kGlob) {
          if (m.s.empty() || m.s.front() != '*') m.s = "*" + m.s;
          if (m.s.back() != '*') m.s += "*";
        }
      }
    }
  }
  return s;
}

Expr Resolve(const CondNode& n, const std::vector<Selection>& sels, const YAML::Node& where) {
  Expr e;
  switch (n.kind) {
    case CondNode::Kind::kName: {
      for (size_t i = 0; i < sels.size(); ++i) {
        if (sels[i].name == n.name) {
          e.kind = Expr::Kind::kSel;
          e.sel = static_cast<int>(i);
          return e;
        }
      }
      throw Broken(where, "condition names '" + n.name + "', which is not a selection");
    }
    case CondNode::Kind::kAnd:
    case CondNode::Kind::kOr:
      e.kind = n.kind == CondNode::Kind::kAnd ? Expr::Kind::kAnd : Expr::Kind::kOr;
      for (const CondNode& k : n.kids) e.kids.push_back(Resolve(k, sels, where));
      return e;
    case CondNode::Kind::kNot:
      e.kind = Expr::Kind::kNot;
      e.kids.push_back(Resolve(n.kids.at(0), sels, where));
      return e;
    case CondNode::Kind::kOneOf:
    case CondNode::Kind::kAllOf: {
      e.kind = n.kind == CondNode::Kind::kAllOf ? Expr::Kind::kAnd : Expr::Kind::kOr;
      for (size_t i = 0; i < sels.size(); ++i) {
        // "them" means every selection; Sigma leaves out names starting with '_'.
        const bool hit = n.name == "them" ? sels[i].name.empty() || sels[i].name[0] != '_'
                                          : MatchNamePattern(n.name, sels[i].name);
        if (!hit) continue;
        Expr s;
        s.kind = Expr::Kind::kSel;
        s.sel = static_cast<int>(i);
        e.kids.push_back(s);
      }
      if (e.kids.empty()) {
        throw Broken(where, "condition's '" + n.name + "' matches no selection");
      }
      return e;
    }
  }
  return e;
}

// ---- gates (required literals) ------------------------------------------------------------

std::optional<Gate> GateOfCond(const FieldCond& fc) {
  auto one = [&](const Matcher& m) -> std::optional<Gate> {
    if (m.literal.empty()) return std::nullopt;
    // Each argument is also in the command line (joined with spaces).
    int field = fc.field >= kArg0 ? kCommandLine : fc.field;
    if (field == kAuditType || field == kArgc || field == kProcessId || field == kParentProcessId ||
        field == kDestinationPort || field == kSourcePort) {
      return std::nullopt;
    }
    return Gate{{field, m.literal}};
  };
  if (fc.all) {
    std::optional<Gate> best;
    for (const Matcher& m : fc.values) {
      auto g = one(m);
      if (g && (!best || g->front().second.size() > best->front().second.size())) best = g;
    }
    return best;
  }
  Gate all;
  for (const Matcher& m : fc.values) {
    auto g = one(m);
    if (!g) return std::nullopt;
    all.insert(all.end(), g->begin(), g->end());
  }
  return all;
}

size_t GateQuality(const Gate& g) {
  size_t min = SIZE_MAX;
  for (const auto& [f, lit] : g) min = std::min(min, lit.size());
  return min;
}

std::optional<Gate> Better(std::optional<Gate> a, std::optional<Gate> b) {
  if (!a) return b;
  if (!b) return a;
  const size_t qa = GateQuality(*a), qb = GateQuality(*b);
  if (qa != qb) return qa > qb ? a : b;
  return a->size() <= b->size() ? a : b;
}

std::optional<Gate> GateOfExpr(const Expr& e, const std::vector<Selection>& sels) {
  switch (e.kind) {
    case Expr::Kind::kSel: {
      Gate all;
      for (const auto& alt : sels[e.sel].alternatives) {
        std::optional<Gate> best;
        for (const FieldCond& fc : alt) best = Better(best, GateOfCond(fc));
        if (!best) return std::nullopt;
        all.insert(all.end(), best->begin(), best->end());
      }
      if (all.empty()) return std::nullopt;
      return all;
    }
    case Expr::Kind::kAnd: {
      std::optional<Gate> best;
      for (const Expr& k : e.kids) best = Better(best, GateOfExpr(k, sels));
      return best;
    }
    case Expr::Kind::kOr: {
      Gate all;
      for (const Expr& k : e.kids) {
        auto g = GateOfExpr(k, sels);
        if (!g) return std::nullopt;
        all.insert(all.end(), g->begin(), g->end());
      }
      if (all.empty()) return std::nullopt;
      return all;
    }
    default: return std::nullopt;
  }
}

// ---- rule documents -----------------------------------------------------------------------

std::vector<std::string> Techniques(const YAML::Node& tags) {
  std::vector<std::string> out;
  if (!tags.IsDefined() || !tags.IsSequence()) return out;
  for (const YAML::Node& t : tags) {
    std::string s = Lower(Scalar(t));
    if (s.rfind("attack.t", 0) != 0 || s.size() < 12) continue;
    std::string id = "T" + s.substr(8);
    if (!std::isdigit(static_cast<unsigned char>(id[1]))) continue;
    for (char& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out.push_back(id);
  }
  return out;
}

int64_t ParseTimespan(const YAML::Node& n) {
  std::string s = Scalar(n);
  if (s.size() < 2 || s.size() > 12) throw Broken(n, "timespan wants a duration such as 10m");
  int64_t unit = 0;
  switch (s.back()) {
    case 's': unit = kNanosPerSecond; break;
    case 'm': unit = 60 * kNanosPerSecond; break;
    case 'h': unit = 3600 * kNanosPerSecond; break;
    case 'd': unit = 86400 * kNanosPerSecond; break;
    default: throw Broken(n, "timespan wants a duration such as 10m (s, m, h or d)");
  }
  int64_t v = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      throw Broken(n, "timespan wants a duration such as 10m");
    }
    v = v * 10 + (s[i] - '0');
  }
  if (v <= 0 || v > 366 * 86400 * kNanosPerSecond / unit) {
    throw Broken(n, "timespan must be positive and at most a year");
  }
  return v * unit;
}

void CompileCorrelation(const YAML::Node& c, CompiledRule* r) {
  if (!c.IsMap()) throw Broken(c, "correlation must be a map");
  CorrelationSpec spec;
  const std::string type = Scalar(c["type"]);
  if (type == "event_count")
    spec.type = CorrelationSpec::Type::kEventCount;
  else if (type == "value_count")
    spec.type = CorrelationSpec::Type::kValueCount;
  else if (type == "temporal")
    spec.type = CorrelationSpec::Type::kTemporal;
  else if (type == "temporal_ordered")
    spec.type = CorrelationSpec::Type::kTemporalOrdered;
  else
    throw Broken(c["type"] ? c["type"] : c,
                 "correlation type '" + type +
                     "' is not one of "
                     "event_count, value_count, temporal, temporal_ordered");
  const YAML::Node rules = c["rules"];
  if (rules.IsScalar()) {
    spec.refs.push_back(rules.Scalar());
  } else if (rules.IsSequence()) {
    for (const YAML::Node& x : rules) {
      if (!x.IsScalar()) throw Broken(x, "correlation rules are names or ids");
      spec.refs.push_back(x.Scalar());
    }
  }
  if (spec.refs.empty()) throw Broken(c, "correlation needs rules");
  if (spec.refs.size() > 32) throw Broken(rules, "correlation refers to more than 32 rules");
  const YAML::Node gb = c["group-by"];
  if (gb.IsScalar()) spec.group_by.push_back(gb.Scalar());
  if (gb.IsSequence()) {
    for (const YAML::Node& x : gb) spec.group_by.push_back(Scalar(x));
  }
  if (!c["timespan"]) throw Broken(c, "correlation needs a timespan");
  spec.timespan_ns = ParseTimespan(c["timespan"]);
  const YAML::Node cond = c["condition"];
  if (spec.type == CorrelationSpec::Type::kEventCount ||
      spec.type == CorrelationSpec::Type::kValueCount) {
    if (!cond.IsMap()) throw Broken(cond ? cond : c, "correlation condition wants {gte: N}");
    bool have = false;
    for (const auto& kv : cond) {
      const std::string k = Scalar(kv.first);
      if (k == "field") {
        spec.value_field = Scalar(kv.second);
      } else if (k == "gte" || k == "gt" || k == "eq") {
        if (!ParseNumber(Scalar(kv.second), &spec.threshold)) {
          throw Broken(kv.second, "correlation condition wants a number");
        }
        spec.cmp = k;
        have = true;
      } else if (k == "lt" || k == "lte") {
        throw Unsupported("correlation condition '" + k +
                          "': a count below a limit has no moment to fire in a stream");
      } else {
        throw Broken(kv.first, "unknown correlation condition '" + k + "'");
      }
    }
    if (!have) throw Broken(cond, "correlation condition wants gte, gt or eq");
    if (spec.type == CorrelationSpec::Type::kValueCount && spec.value_field.empty()) {
      throw Broken(cond, "value_count wants condition.field");
    }
  }
  const YAML::Node gen = c["generate"];
  (void)gen;
  r->corr = std::move(spec);
}

CompiledRule CompileDocument(const YAML::Node& doc, const std::string& file, int index,
                             int line_offset) {
  CompiledRule r;
  r.info.file = file;
  r.info.line = line_offset + doc.Mark().line + 1;
  r.info.id = file + "#" + std::to_string(index + 1);
  try {
    if (!doc.IsMap()) throw Broken(doc, "a rule must be a YAML map");
    if (doc["id"]) r.info.id = Scalar(doc["id"]);
    r.info.title = Scalar(doc["title"]);
    r.name = Scalar(doc["name"]);
    r.info.level = Lower(Scalar(doc["level"]));
    r.info.techniques = Techniques(doc["tags"]);
    if (r.info.title.empty()) throw Broken(doc, "rule has no title");
    if (doc["correlation"]) {
      r.info.correlation = true;
      r.info.logsource = "correlation";
      CompileCorrelation(doc["correlation"], &r);
      return r;
    }
    const YAML::Node det = doc["detection"];
    if (!det) throw Broken(doc, "rule has no detection");
    if (!det.IsMap()) throw Broken(det, "detection must be a map");
    const YAML::Node ls = doc["logsource"];
    if (ls && !ls.IsMap()) throw Broken(ls, "logsource must be a map");
    const std::string product = ls ? Lower(Scalar(ls["product"])) : "";
    const std::string category = ls ? Lower(Scalar(ls["category"])) : "";
    const std::string service = ls ? Lower(Scalar(ls["service"])) : "";
    r.info.logsource =
        product + (category.empty() ? "" : "/" + category) + (service.empty() ? "" : "/" + service);
    std::string why;
    const LogsourceMap* map = MapLogsource(product, category, service, &why);
    // Parse everything first: a broken rule is reported as broken even when unsupported.
    const YAML::Node cond_node = det["condition"];
    if (!cond_node) throw Broken(det, "detection has no condition");
    std::vector<std::string> conds;
    if (cond_node.IsScalar()) {
      conds.push_back(cond_node.Scalar());
    } else if (cond_node.IsSequence()) {
      for (const YAML::Node& c : cond_node) conds.push_back(Scalar(c));
    } else {
      throw Broken(cond_node, "condition must be text or a list of text");
    }
    std::vector<CondNode> parsed;
    std::optional<CompileError> unsupported;
    for (const std::string& c : conds) {
      auto p = ParseCondition(c);
      if (!p.ok()) {
        if (p.status().code() == Status::Code::kUnsupported) {
          unsupported = Unsupported(p.status().message());
          continue;
        }
        throw Broken(cond_node, p.status().message());
      }
      parsed.push_back(std::move(*p));
    }
    // Every selection is compiled, so that a broken one is reported as broken even in a
    // rule that is unsupported for another reason; the first unsupported reason wins after.
    static const LogsourceMap* kAnyField = [] {
      auto* m = new LogsourceMap;
      m->any_field = true;
      m->keywords = true;
      return m;
    }();
    if (map == nullptr && !unsupported) unsupported = Unsupported(why);
    r.sources = map != nullptr ? map->sources : 0;
    for (const auto& kv : det) {
      const std::string name = Scalar(kv.first);
      if (name == "condition" || name == "timeframe") continue;
      try {
        r.sels.push_back(CompileSelection(name, kv.second, map != nullptr ? *map : *kAnyField));
      } catch (const CompileError& e) {
        if (e.state == RuleState::kBroken) throw;
        if (!unsupported) unsupported = e;
        Selection placeholder;
        placeholder.name = name;
        r.sels.push_back(std::move(placeholder));
      }
    }
    if (det["timeframe"] && !unsupported) {
      unsupported =
          Unsupported("timeframe belongs to Sigma v1 aggregations; use a correlation rule");
    }
    if (parsed.size() == 1) {
      r.cond = Resolve(parsed[0], r.sels, cond_node);
    } else {
      r.cond.kind = Expr::Kind::kOr;
      for (const CondNode& p : parsed) r.cond.kids.push_back(Resolve(p, r.sels, cond_node));
    }
    if (unsupported) throw *unsupported;
    r.gate = GateOfExpr(r.cond, r.sels);
  } catch (const CompileError& e) {
    r.info.state = e.state;
    r.info.reason = e.reason;
    if (e.line > 0) r.info.line = line_offset + e.line;
  } catch (const YAML::Exception& e) {
    r.info.state = RuleState::kBroken;
    r.info.reason = e.msg;
    if (e.mark.line >= 0) r.info.line = line_offset + e.mark.line + 1;
  }
  return r;
}

// One YAML document of a rule file: its text and the line of the file it starts on (0-based).
struct DocumentText {
  std::string text;
  int first_line = 0;
};

bool IsMarkerLine(std::string_view line, std::string_view marker) {
  if (line.substr(0, 3) != marker) return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r';
}

// Reads a document's events and drops them: only whether the text is one document matters.
class DiscardEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// True when the text is at most one YAML document. yaml-cpp stops at some malformed
// tokens (a "," at the top level, say) and reports a document that never ends, so the
// parser is asked for a second document once, never in a loop. Throws YAML::Exception.
bool IsAtMostOneDocument(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DiscardEvents events;
  if (!parser.HandleNextDocument(events)) return true;
  return !parser.HandleNextDocument(events);
}

// Splits a rule file into its documents at the column-0 markers "---" (a document starts)
// and "..." (a document ends); directives and comments before a "---" go with the document
// after it. Each part is then parsed on its own with YAML::Load, which reads one document:
// yaml-cpp's LoadAll can loop forever on some malformed streams (",teiteitvi" is one), and a
// rule file is outside input. A "---" that carries content on its line ("--- a: 1") starts a
// document like any other; a marker inside a block scalar is a marker in YAML too.
std::vector<DocumentText> SplitDocuments(std::string_view text) {
  std::vector<DocumentText> docs;
  DocumentText cur;
  bool cur_has_content = false;  // beyond directives, comments and blank lines
  bool cur_has_start = false;    // begins with "---"
  int line_no = 0;
  auto flush = [&](int next_first_line) {
    if (cur_has_content || cur_has_start) docs.push_back(std::move(cur));
    cur = DocumentText{};
    cur.first_line = next_first_line;
    cur_has_content = false;
    cur_has_start = false;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const size_t next = end == std::string_view::npos ? text.size() : end + 1;
    const std::string_view line =
        text.substr(pos, (end == std::string_view::npos ? text.size() : end) - pos);
    if (IsMarkerLine(line, "---")) {
      if (cur_has_content || cur_has_start) flush(line_no);
      cur_has_start = true;
      cur.text.append(text.substr(pos, next - pos));
    } else if (IsMarkerLine(line, "...")) {
      cur.text.append(text.substr(pos, next - pos));
      flush(line_no + 1);
    } else {
      const size_t first = line.find_first_not_of(" \t\r");
      const bool blank = first == std::string_view::npos || line[first] == '#';
      // Directives count only before a document's content; "%" later is content.
      const bool directive = !cur_has_content && !cur_has_start && !line.empty() && line[0] == '%';
      if (!blank && !directive) cur_has_content = true;
      if (cur.text.empty() && !cur_has_content && !cur_has_start && !directive && blank) {
        cur.first_line = line_no + 1;  // leading blank lines belong to no document
      } else {
        cur.text.append(text.substr(pos, next - pos));
      }
    }
    pos = next;
    ++line_no;
  }
  flush(line_no);
  return docs;
}

void Link(RuleSet* set) {
  std::unordered_map<std::string, int> by_ref;
  for (size_t i = 0; i < set->rules.size(); ++i) {
    const CompiledRule& r = set->rules[i];
    if (r.info.correlation) continue;
    by_ref.emplace(r.info.id, static_cast<int>(i));
    if (!r.name.empty()) by_ref.emplace(r.name, static_cast<int>(i));
  }
  for (size_t i = 0; i < set->rules.size(); ++i) {
    CompiledRule& r = set->rules[i];
    if (!r.corr || r.info.state != RuleState::kLoaded) continue;
    CorrelationSpec& c = *r.corr;
    for (const std::string& ref : c.refs) {
      auto it = by_ref.find(ref);
      if (it == by_ref.end()) {
        r.info.state = RuleState::kBroken;
        r.info.reason = "correlation refers to '" + ref + "', which is not a rule here";
        break;
      }
      const CompiledRule& base = set->rules[it->second];
      if (base.info.state != RuleState::kLoaded) {
        r.info.state = RuleState::kUnsupported;
        r.info.reason = "refers to rule '" + ref + "', which is " +
                        std::string(RuleStateName(base.info.state)) + ": " + base.info.reason;
        break;
      }
      c.rules.push_back(it->second);
    }
    if (r.info.state != RuleState::kLoaded) continue;
    // Group-by and value fields must be fields of every rule referenced.
    auto resolve = [&](const std::string& name) -> int {
      if (name == "Host" || name == "host" || name == "ComputerName" || name == "Hostname") {
        return -2;  // the event's host
      }
      int id = -1;
      for (int b : c.rules) {
        std::string why;
        const CompiledRule& base = set->rules[b];
        const LogsourceMap* map = nullptr;
        for (uint32_t src :
             {kSrcProcess, kSrcAuditExec, kSrcFileWrite, kSrcFileAny, kSrcNet, kSrcLogin}) {
          if (base.sources != src) continue;
          static const char* kCats[][2] = {{"process_creation", ""},   {"", "auditd"},
                                           {"file_event", ""},         {"file_access", ""},
                                           {"network_connection", ""}, {"", "sshd"}};
          int bit = __builtin_ctz(src);
          map = MapLogsource("linux", kCats[bit][0], kCats[bit][1], &why);
        }
        if (map == nullptr) return -1;
        auto f = map->fields.find(name);
        if (f == map->fields.end()) return -1;
        if (id >= 0 && id != f->second) return -1;
        id = f->second;
      }
      return id;
    };
    for (const std::string& g : c.group_by) {
      int f = resolve(g);
      if (f == -1) {
        r.info.state = RuleState::kUnsupported;
        r.info.reason = "group-by field " + g + " is not a field of every rule it correlates";
        break;
      }
      c.group_fields.push_back(f);
    }
    if (r.info.state == RuleState::kLoaded && !c.value_field.empty()) {
      c.value_field_id = resolve(c.value_field);
      if (c.value_field_id == -1) {
        r.info.state = RuleState::kUnsupported;
        r.info.reason = "value_count field " + c.value_field + " is not a field of its rules";
      }
    }
    if (r.info.state != RuleState::kLoaded) continue;
    for (int b : c.rules) {
      set->rules[b].correlations.push_back(static_cast<int>(i));
      set->rules[b].generate = false;
    }
  }
  // A correlation with generate: true lets its rules report on their own as well; handled
  // at compile time by the YAML flag (default false).
}

void BuildIndex(RuleSet* set, const std::vector<bool>& generate_refs) {
  (void)generate_refs;
  std::map<int, std::map<std::string, std::vector<int>>> by_field;
  for (size_t i = 0; i < set->rules.size(); ++i) {
    const CompiledRule& r = set->rules[i];
    if (r.info.state != RuleState::kLoaded || r.info.correlation) continue;
    if (!r.gate) {
      for (int bit = 0; bit < 6; ++bit) {
        if (r.sources & (1u << bit)) set->ungated[bit].push_back(static_cast<int>(i));
      }
      continue;
    }
    for (const auto& [field, lit] : *r.gate) {
      auto& v = by_field[field][lit];
      if (v.empty() || v.back() != static_cast<int>(i)) v.push_back(static_cast<int>(i));
    }
  }
  for (auto& [field, lits] : by_field) {
    RuleSet::FieldDb db;
    db.field = field;
    std::vector<const char*> exprs;
    std::vector<size_t> lens;
    std::vector<unsigned> flags, ids;
    for (auto& [lit, rules] : lits) {
      ids.push_back(static_cast<unsigned>(db.admits.size()));
      exprs.push_back(lit.data());
      lens.push_back(lit.size());
      flags.push_back(HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
      db.admits.push_back(rules);
    }
    hs_compile_error_t* err = nullptr;
    if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(),
                             static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &db.db,
                             &err) != HS_SUCCESS) {
      // Cannot happen for plain literals; evaluate those rules without the index.
      if (err != nullptr) hs_free_compile_error(err);
      for (auto& [lit, rules] : lits) {
        for (int ri : rules) {
          for (int bit = 0; bit < 6; ++bit) {
            if (set->rules[ri].sources & (1u << bit)) set->ungated[bit].push_back(ri);
          }
        }
      }
      continue;
    }
    set->dbs.push_back(std::move(db));
  }
  for (auto& u : set->ungated) {
    std::sort(u.begin(), u.end());
    u.erase(std::unique(u.begin(), u.end()), u.end());
  }
}

}  // namespace

std::shared_ptr<const RuleSet> CompileRules(const std::vector<RuleSource>& sources) {
  auto set = std::make_shared<RuleSet>();
  std::vector<bool> generate_refs;
  for (const RuleSource& src : sources) {
    const std::vector<DocumentText> texts = SplitDocuments(src.text);
    std::vector<YAML::Node> docs;
    std::vector<int> offsets;
    bool broken = false;
    for (const DocumentText& t : texts) {
      try {
        if (!IsAtMostOneDocument(t.text)) {
          CompiledRule r;
          r.info.file = src.file;
          r.info.id = src.file;
          r.info.line = t.first_line + 1;
          r.info.state = RuleState::kBroken;
          r.info.reason = "YAML: text that is not part of any document";
          set->rules.push_back(std::move(r));
          broken = true;
          break;
        }
        docs.push_back(YAML::Load(t.text));
        offsets.push_back(t.first_line);
      } catch (const YAML::Exception& e) {
        CompiledRule r;
        r.info.file = src.file;
        r.info.id = src.file;
        r.info.line = e.mark.line >= 0 ? t.first_line + e.mark.line + 1 : 0;
        r.info.state = RuleState::kBroken;
        r.info.reason = "YAML: " + e.msg;
        set->rules.push_back(std::move(r));
        broken = true;
        break;
      }
    }
    if (broken) continue;
    for (size_t i = 0; i < docs.size(); ++i) {
      if (docs[i].IsNull()) continue;
      CompiledRule r = CompileDocument(docs[i], src.file, static_cast<int>(i), offsets[i]);
      bool gen = false;
      if (r.corr && docs[i]["correlation"]["generate"]) {
        try {
          gen = docs[i]["correlation"]["generate"].as<bool>();
        } catch (const YAML::Exception&) {
          gen = false;
        }
      }
      generate_refs.push_back(gen);
      set->rules.push_back(std::move(r));
    }
  }
  // Ids must be unique: a second rule with a taken id is broken.
  std::set<std::string> ids;
  for (CompiledRule& r : set->rules) {
    if (!ids.insert(r.info.id).second && r.info.state != RuleState::kBroken) {
      r.info.state = RuleState::kBroken;
      r.info.reason = "id " + r.info.id + " is taken by another rule";
    }
  }
  Link(set.get());
  for (size_t i = 0; i < set->rules.size() && i < generate_refs.size(); ++i) {
    if (!generate_refs[i] || !set->rules[i].corr) continue;
    for (int b : set->rules[i].corr->rules) set->rules[b].generate = true;
  }
  BuildIndex(set.get(), generate_refs);
  return set;
}

Result<std::shared_ptr<const RuleSet>> LoadRuleDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound("rules directory " + dir + " is not a readable directory");
  }
  std::vector<fs::path> files;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string ext = it->path().extension().string();
    if (ext == ".yml" || ext == ".yaml") files.push_back(it->path());
  }
  if (ec) return Status::IoError("reading rules directory " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<RuleSource> sources;
  for (const fs::path& p : files) {
    RuleSource s;
    s.file = fs::relative(p, dir, ec).string();
    if (ec || s.file.empty()) s.file = p.string();
    std::ifstream in(p, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in.good() && !in.eof()) {
      s.text = "";
    }
    s.text = text.str();
    if (s.text.size() > (4u << 20)) s.text = "{";  // refuse: reported as broken YAML
    sources.push_back(std::move(s));
  }
  return CompileRules(sources);
}

std::vector<RuleInfo> DescribeRules(const RuleSet& set) {
  std::vector<RuleInfo> out;
  out.reserve(set.rules.size());
  for (const CompiledRule& r : set.rules) out.push_back(r.info);
  return out;
}

RuleCounts CountRules(const RuleSet& set) {
  RuleCounts c;
  for (const CompiledRule& r : set.rules) {
    switch (r.info.state) {
      case RuleState::kLoaded: ++c.loaded; break;
      case RuleState::kUnsupported: ++c.unsupported; break;
      case RuleState::kBroken: ++c.broken; break;
    }
  }
  return c;
}

// ---- evaluation ---------------------------------------------------------------------------

namespace {

bool MatchOne(const Matcher& m, View& v, int field) {
  if (m.op == Matcher::Op::kNull) return !v.has[field] || v.raw[field].empty();
  if (m.op == Matcher::Op::kExists) return v.has[field] == m.exists;
  if (!v.has[field]) return false;
  switch (m.op) {
    case Matcher::Op::kRe:
      return RE2::PartialMatch(re2::StringPiece(v.raw[field].data(), v.raw[field].size()), *m.re);
    case Matcher::Op::kCidr: return InCidr(m.cidr, v.raw[field]);
    case Matcher::Op::kCmp: {
      double x = 0;
      if (!ParseNumber(v.raw[field], &x)) return false;
      if (m.cmp == "gt") return x > m.num;
      if (m.cmp == "gte") return x >= m.num;
      if (m.cmp == "lt") return x < m.num;
      return x <= m.num;
    }
    default: break;
  }
  const std::string_view s = m.cased ? v.raw[field] : v.Lowered(field);
  switch (m.op) {
    case Matcher::Op::kEq: return s == m.s;
    case Matcher::Op::kContains: return s.find(m.s) != std::string_view::npos;
    case Matcher::Op::kStarts: return s.substr(0, m.s.size()) == m.s;
    case Matcher::Op::kEnds:
      return s.size() >= m.s.size() && s.substr(s.size() - m.s.size()) == m.s;
    case Matcher::Op::kGlob: return GlobMatch(m.s, s);
    default: return false;
  }
}

bool MatchCond(const FieldCond& fc, View& v) {
  if (fc.all) {
    for (const Matcher& m : fc.values) {
      if (!MatchOne(m, v, fc.field)) return false;
    }
    return true;
  }
  for (const Matcher& m : fc.values) {
    if (MatchOne(m, v, fc.field)) return true;
  }
  return false;
}

bool MatchSel(const Selection& s, View& v) {
  for (const auto& alt : s.alternatives) {
    bool ok = true;
    for (const FieldCond& fc : alt) {
      if (!MatchCond(fc, v)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

bool Eval(const Expr& e, const std::vector<Selection>& sels, View& v) {
  switch (e.kind) {
    case Expr::Kind::kSel: return MatchSel(sels[e.sel], v);
    case Expr::Kind::kAnd:
      for (const Expr& k : e.kids) {
        if (!Eval(k, sels, v)) return false;
      }
      return true;
    case Expr::Kind::kOr:
      for (const Expr& k : e.kids) {
        if (Eval(k, sels, v)) return true;
      }
      return false;
    case Expr::Kind::kNot: return !Eval(e.kids[0], sels, v);
    case Expr::Kind::kTrue: return true;
    case Expr::Kind::kFalse: return false;
  }
  return false;
}

struct CorrEntry {
  int64_t t = 0;
  int rule = 0;  // position in the spec's rules
  std::string value;
};

struct CorrGroup {
  std::vector<CorrEntry> entries;  // sorted by time
};

// Whether a window of `span` containing `t` satisfies the spec.
bool CorrelationFires(const CorrelationSpec& c, const std::vector<CorrEntry>& es, int64_t t) {
  const int64_t span = c.timespan_ns;
  auto cmp_ok = [&](double n) {
    if (c.cmp == "gt") return n > c.threshold;
    if (c.cmp == "eq") return n == c.threshold;
    return n >= c.threshold;
  };
  // Candidate windows start at an entry time in [t - span, t].
  for (size_t i = 0; i < es.size(); ++i) {
    const int64_t start = es[i].t;
    if (start < t - span) continue;
    if (start > t) break;
    const int64_t end = start + span;
    switch (c.type) {
      case CorrelationSpec::Type::kEventCount: {
        size_t n = 0;
        for (size_t j = i; j < es.size() && es[j].t <= end; ++j) ++n;
        if (cmp_ok(static_cast<double>(n))) return true;
        break;
      }
      case CorrelationSpec::Type::kValueCount: {
        std::set<std::string_view> values;
        for (size_t j = i; j < es.size() && es[j].t <= end; ++j) values.insert(es[j].value);
        if (cmp_ok(static_cast<double>(values.size()))) return true;
        break;
      }
      case CorrelationSpec::Type::kTemporal: {
        uint64_t seen = 0;
        for (size_t j = i; j < es.size() && es[j].t <= end; ++j) seen |= uint64_t{1} << es[j].rule;
        if (seen == (uint64_t{1} << c.rules.size()) - 1) return true;
        break;
      }
      case CorrelationSpec::Type::kTemporalOrdered: {
        if (es[i].rule != 0) break;
        size_t want = 1;
        for (size_t j = i + 1; j < es.size() && es[j].t <= end && want < c.rules.size(); ++j) {
          if (es[j].rule == static_cast<int>(want)) ++want;
        }
        if (want == c.rules.size()) return true;
        break;
      }
    }
  }
  return false;
}

constexpr size_t kMaxCorrEntries = 4096;
constexpr size_t kMaxCorrGroups = 100000;
constexpr size_t kProcTableHalf = 1 << 17;

}  // namespace

struct RuleEngine::State {
  std::shared_ptr<const RuleSet> set;
  hs_scratch_t* scratch = nullptr;
  std::vector<uint32_t> mark;  // per rule: the epoch it was last made a candidate
  uint32_t epoch = 0;
  std::vector<int> candidates;
  // Correlation windows: per correlation rule, per group key.
  std::unordered_map<int, std::unordered_map<std::string, CorrGroup>> groups;
  std::unordered_map<int, int64_t> newest;  // per correlation rule, the newest entry time
  // The latest exec of each (host, tgid), for ParentImage and ParentCommandLine: two
  // generations, the older dropped when the newer fills.
  // Keyed by ProcKey: a 64-bit hash of host and pid (a collision among the table's entries
  // is about as likely as 1 in 10^9; it would lend a process another's parent fields).
  std::unordered_map<uint64_t, ProcRecord> procs, old_procs;
  View view;  // reused from event to event

  ~State() {
    if (scratch != nullptr) hs_free_scratch(scratch);
  }

  void Use(std::shared_ptr<const RuleSet> s) {
    set = std::move(s);
    for (const RuleSet::FieldDb& db : set->dbs) hs_alloc_scratch(db.db, &scratch);
    mark.assign(set->rules.size(), 0);
    epoch = 0;
    groups.clear();
    newest.clear();
  }

  static uint64_t ProcKey(std::string_view host, uint32_t pid) {
    uint64_t h = std::hash<std::string_view>()(host);
    return (h ^ (uint64_t{pid} * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;
  }
  const ProcRecord* FindProc(uint64_t key) const {
    auto it = procs.find(key);
    if (it != procs.end()) return &it->second;
    it = old_procs.find(key);
    return it == old_procs.end() ? nullptr : &it->second;
  }
  void PutProc(uint64_t key, ProcRecord r) {
    if (procs.size() >= kProcTableHalf) {
      old_procs = std::move(procs);
      procs.clear();
    }
    procs.insert_or_assign(key, std::move(r));
  }
};

RuleEngine::RuleEngine(std::string dir)
    : dir_(std::move(dir)), current_(CompileRules({})), state_(std::make_unique<State>()) {
  state_->Use(current_);
}

RuleEngine::~RuleEngine() = default;

Status RuleEngine::Reload() {
  if (dir_.empty()) return Status::InvalidArgument("no rules directory to reload from");
  auto set = LoadRuleDirectory(dir_);
  if (!set.ok()) return set.status();
  Swap(std::move(*set));
  return Status::Ok();
}

void RuleEngine::Swap(std::shared_ptr<const RuleSet> set) {
  std::lock_guard<std::mutex> lock(mu_);
  next_ = std::move(set);
  has_next_.store(true, std::memory_order_release);
}

std::vector<RuleInfo> RuleEngine::Rules() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<const RuleSet> set = next_ ? next_ : current_;
  std::vector<RuleInfo> out = DescribeRules(*set);
  for (RuleInfo& r : out) {
    auto it = hits_.find(r.id);
    if (it != hits_.end() && r.state == RuleState::kLoaded) r.hits = it->second;
  }
  return out;
}

uint64_t RuleEngine::events_evaluated() const {
  return events_relaxed_.load(std::memory_order_relaxed);
}

std::vector<Detection> RuleEngine::Evaluate(const Event& e) {
  std::vector<Detection> out;
  State& st = *state_;
  if (has_next_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(next_);
    next_.reset();
    has_next_.store(false, std::memory_order_relaxed);
    st.Use(current_);
  }
  events_relaxed_.fetch_add(1, std::memory_order_relaxed);
  const uint32_t sources = SourcesOf(e);
  if (sources == 0) return out;
  const RuleSet& set = *st.set;

  // The view: every field this event can fill.
  View& v = st.view;
  v.Reset();
  const ProcessInfo& p = e.process;
  std::string& pid = v.owned[0];
  pid = std::to_string(p.tgid);
  v.Set(kProcessId, pid);
  if (!p.user.empty()) v.Set(kUser, p.user);
  if (!p.exe.empty()) {
    v.Set(kImage, p.exe);
    v.Set(kExe, p.exe);
  }
  if (!p.comm.empty()) v.Set(kComm, p.comm);
  bool remember_proc = false;
  if (const ExecEvent* x = e.As<ExecEvent>()) {
    v.Set(kImage, x->filename);
    v.Set(kExe, x->filename);
    std::string& cmd = v.owned[1];
    for (size_t i = 0; i < x->argv.size(); ++i) {
      if (i > 0) cmd += ' ';
      cmd += x->argv[i];
    }
    v.Set(kCommandLine, cmd);
    for (size_t i = 0; i < x->argv.size() && i < kMaxArgs; ++i) {
      v.Set(kArg0 + static_cast<int>(i), x->argv[i]);
    }
    v.Set(kAuditType, "EXECVE");
    std::string& argc = v.owned[2];
    argc = std::to_string(x->argv.size());
    v.Set(kArgc, argc);
    // Keyword searches over auditd run over the EXECVE record as auditd writes it.
    std::string& kw = v.owned[3];
    kw.append("type=EXECVE argc=").append(argc);
    for (size_t i = 0; i < x->argv.size(); ++i) {
      char index[32];
      std::snprintf(index, sizeof index, " a%zu=\"", i);
      kw.append(index).append(x->argv[i]).push_back('"');
    }
    v.Set(kKeywords, kw);
    std::string& ppid = v.owned[4];
    ppid = std::to_string(p.ppid);
    v.Set(kParentProcessId, ppid);
    if (const ProcRecord* parent = st.FindProc(State::ProcKey(e.host, p.ppid))) {
      v.Set(kParentImage, parent->image);
      v.Set(kParentCommandLine, parent->cmdline);
    }
    remember_proc = true;
  } else if (const FileOpenEvent* f = e.As<FileOpenEvent>()) {
    v.Set(kTargetFilename, f->path);
  } else if (const NetConnectEvent* n = e.As<NetConnectEvent>()) {
    v.Set(kDestinationIp, n->remote_addr);
    v.Set(kSourceIp, n->local_addr);
    v.owned[1] = std::to_string(n->remote_port);
    v.owned[2] = std::to_string(n->local_port);
    v.Set(kDestinationPort, v.owned[1]);
    v.Set(kSourcePort, v.owned[2]);
    v.Set(kInitiated, n->direction == NetDirection::kOutbound ? "true" : "false");
    if (n->direction == NetDirection::kAccepted) {
      // An accepted connection: the peer is the source.
      v.Set(kDestinationIp, n->local_addr);
      v.Set(kSourceIp, n->remote_addr);
      v.Set(kDestinationPort, v.owned[2]);
      v.Set(kSourcePort, v.owned[1]);
    }
  } else if (const LoginEvent* l = e.As<LoginEvent>()) {
    v.Set(kUser, l->user);
    if (!l->remote_addr.empty()) v.Set(kSourceIp, l->remote_addr);
    if (l->remote_port != 0) {
      v.owned[1] = std::to_string(l->remote_port);
      v.Set(kSourcePort, v.owned[1]);
    }
    v.Set(kService, l->service);
    v.Set(kOutcome, OutcomeName(l->outcome));
  }

  // Candidates: rules whose required literal occurs, and rules that require none.
  if (++st.epoch == 0) {
    std::fill(st.mark.begin(), st.mark.end(), 0);
    st.epoch = 1;
  }
  st.candidates.clear();
  struct Ctx {
    const RuleSet::FieldDb* db;
    State* st;
    uint32_t sources;
    const RuleSet* set;
  };
  for (const RuleSet::FieldDb& db : set.dbs) {
    if (!v.has[db.field] || v.raw[db.field].empty()) continue;
    Ctx ctx{&db, &st, sources, &set};
    hs_scan(
        db.db, v.raw[db.field].data(), static_cast<unsigned>(v.raw[db.field].size()), 0, st.scratch,
        [](unsigned id, unsigned long long, unsigned long long, unsigned, void* p) -> int {
          Ctx* c = static_cast<Ctx*>(p);
          for (int ri : c->db->admits[id]) {
            if ((c->set->rules[ri].sources & c->sources) == 0) continue;
            if (c->st->mark[ri] == c->st->epoch) continue;
            c->st->mark[ri] = c->st->epoch;
            c->st->candidates.push_back(ri);
          }
          return 0;
        },
        &ctx);
  }
  for (int bit = 0; bit < 6; ++bit) {
    if ((sources & (1u << bit)) == 0) continue;
    for (int ri : set.ungated[bit]) {
      if (st.mark[ri] == st.epoch) continue;
      st.mark[ri] = st.epoch;
      st.candidates.push_back(ri);
    }
  }
  std::sort(st.candidates.begin(), st.candidates.end());

  std::vector<int> matched;
  for (int ri : st.candidates) {
    const CompiledRule& r = set.rules[ri];
    if (Eval(r.cond, r.sels, v)) matched.push_back(ri);
  }
  auto detection = [&](const CompiledRule& r) {
    Detection d;
    d.rule_id = r.info.id;
    d.title = r.info.title;
    d.level = r.info.level;
    d.techniques = r.info.techniques;
    d.correlation = r.info.correlation;
    d.host = e.host;
    d.session = e.session;
    d.time_ns = e.time_ns;
    d.seq = e.seq;
    return d;
  };
  std::vector<std::string> hit_ids;
  for (int ri : matched) {
    const CompiledRule& r = set.rules[ri];
    hit_ids.push_back(r.info.id);
    if (r.generate) out.push_back(detection(r));
    // Feed the correlations that count this rule.
    for (int ci : r.correlations) {
      const CompiledRule& cr = set.rules[ci];
      const CorrelationSpec& c = *cr.corr;
      std::string key;
      for (int f : c.group_fields) {
        key += f == -2 ? std::string_view(e.host) : (v.has[f] ? v.raw[f] : std::string_view());
        key += '\x1f';
      }
      auto& groups = st.groups[ci];
      if (groups.size() >= kMaxCorrGroups && groups.count(key) == 0) groups.clear();
      CorrGroup& g = groups[key];
      CorrEntry entry;
      entry.t = e.time_ns;
      for (size_t k = 0; k < c.rules.size(); ++k) {
        if (c.rules[k] == ri) entry.rule = static_cast<int>(k);
      }
      if (c.value_field_id != -1) {
        const int f = c.value_field_id;
        entry.value = f == -2 ? e.host : (v.has[f] ? std::string(v.raw[f]) : std::string());
      }
      auto pos = std::upper_bound(g.entries.begin(), g.entries.end(), entry.t,
                                  [](int64_t t, const CorrEntry& x) { return t < x.t; });
      g.entries.insert(pos, std::move(entry));
      int64_t& newest = st.newest[ci];
      newest = std::max(newest, e.time_ns);
      // Entries older than two spans behind the newest can no longer be in a window with
      // anything that still arrives in order; later stragglers are accepted up to that.
      const int64_t horizon = newest - 2 * c.timespan_ns;
      size_t drop = 0;
      while (drop < g.entries.size() && g.entries[drop].t < horizon) ++drop;
      if (g.entries.size() - drop > kMaxCorrEntries) drop = g.entries.size() - kMaxCorrEntries;
      g.entries.erase(g.entries.begin(), g.entries.begin() + static_cast<std::ptrdiff_t>(drop));
      if (CorrelationFires(c, g.entries, e.time_ns)) {
        out.push_back(detection(cr));
        hit_ids.push_back(cr.info.id);
        groups.erase(key);  // fired: the next window starts afresh
      }
    }
  }
  if (!hit_ids.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& id : hit_ids) ++hits_[id];
  }
  if (remember_proc) {
    st.PutProc(State::ProcKey(e.host, p.tgid), ProcRecord{std::string(v.raw[kImage]), v.owned[1]});
  }
  return out;
}

}  // namespace tripline::rules
