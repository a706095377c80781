#include "aggregator/rules/condition.h"

#include <cctype>

namespace tripline::rules {
namespace {

struct Token {
  enum class Type { kWord, kOpen, kClose, kPipe, kEnd };
  Type type = Type::kEnd;
  std::string text;
  size_t pos = 0;
};

bool WordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '*' || c == '?' ||
         c == '.' || c == '-';
}

Result<std::vector<Token>> Tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
    } else if (c == '(') {
      out.push_back({Token::Type::kOpen, "(", i++});
    } else if (c == ')') {
      out.push_back({Token::Type::kClose, ")", i++});
    } else if (c == '|') {
      out.push_back({Token::Type::kPipe, "|", i++});
    } else if (WordChar(c)) {
      size_t start = i;
      while (i < s.size() && WordChar(s[i])) ++i;
      out.push_back({Token::Type::kWord, std::string(s.substr(start, i - start)), start});
    } else {
      return Status::InvalidArgument("unexpected character '" + std::string(1, c) +
                                     "' at position " + std::to_string(i + 1));
    }
  }
  out.push_back({Token::Type::kEnd, "", s.size()});
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Result<CondNode> Parse() {
    for (const Token& t : t_) {
      if (t.type == Token::Type::kPipe) {
        return Status::Unsupported(
            "a Sigma v1 aggregation ('| count() ...'); write it as a correlation rule");
      }
    }
    auto e = Or(0);
    if (!e.ok()) return e;
    if (Peek().type != Token::Type::kEnd) return Error("unexpected '" + Peek().text + "'");
    return e;
  }

 private:
  const Token& Peek() const { return t_[i_]; }
  bool IsWord(std::string_view w) const {
    return Peek().type == Token::Type::kWord && Peek().text == w;
  }
  Status Error(const std::string& what) const {
    return Status::InvalidArgument("condition: " + what + " at position " +
                                   std::to_string(Peek().pos + 1));
  }

  Result<CondNode> Or(int depth) {
    if (depth > kMaxConditionDepth) return Error("nested too deeply");
    auto first = And(depth + 1);
    if (!first.ok() || !IsWord("or")) return first;
    CondNode n;
    n.kind = CondNode::Kind::kOr;
    n.kids.push_back(std::move(*first));
    while (IsWord("or")) {
      ++i_;
      auto next = And(depth + 1);
      if (!next.ok()) return next;
      n.kids.push_back(std::move(*next));
    }
    return n;
  }

  Result<CondNode> And(int depth) {
    auto first = Unary(depth + 1);
    if (!first.ok() || !IsWord("and")) return first;
    CondNode n;
    n.kind = CondNode::Kind::kAnd;
    n.kids.push_back(std::move(*first));
    while (IsWord("and")) {
      ++i_;
      auto next = Unary(depth + 1);
      if (!next.ok()) return next;
      n.kids.push_back(std::move(*next));
    }
    return n;
  }

  Result<CondNode> Unary(int depth) {
    if (depth > kMaxConditionDepth) return Error("nested too deeply");
    const Token& t = Peek();
    if (t.type == Token::Type::kOpen) {
      ++i_;
      auto e = Or(depth + 1);
      if (!e.ok()) return e;
      if (Peek().type != Token::Type::kClose) return Error("missing ')'");
      ++i_;
      return e;
    }
    if (t.type != Token::Type::kWord) {
      return Error(t.type == Token::Type::kEnd ? "unexpected end" : "unexpected '" + t.text + "'");
    }
    if (t.text == "not") {
      ++i_;
      auto e = Unary(depth + 1);
      if (!e.ok()) return e;
      CondNode n;
      n.kind = CondNode::Kind::kNot;
      n.kids.push_back(std::move(*e));
      return n;
    }
    if (t.text == "and" || t.text == "or" || t.text == "of") {
      return Error("unexpected '" + t.text + "'");
    }
    const bool quant = (t.text == "1" || t.text == "any" || t.text == "all") &&
                       t_[i_ + 1].type == Token::Type::kWord && t_[i_ + 1].text == "of";
    if (quant) {
      CondNode n;
      n.kind = t.text == "all" ? CondNode::Kind::kAllOf : CondNode::Kind::kOneOf;
      i_ += 2;
      if (Peek().type != Token::Type::kWord || Peek().text == "and" || Peek().text == "or" ||
          Peek().text == "not") {
        return Error("'of' wants a name pattern or 'them'");
      }
      n.name = Peek().text;
      ++i_;
      return n;
    }
    CondNode n;
    n.name = t.text;
    ++i_;
    return n;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
};

}  // namespace

Result<CondNode> ParseCondition(std::string_view text) {
  if (text.find('|') != std::string_view::npos) {
    return Status::Unsupported(
        "a Sigma v1 aggregation ('| count() ...'); write it as a correlation rule");
  }
  auto tokens = Tokenize(text);
  if (!tokens.ok()) return Status::InvalidArgument("condition: " + tokens.status().message());
  return Parser(std::move(*tokens)).Parse();
}

bool MatchNamePattern(std::string_view p, std::string_view s) {
  // Iterative glob with one backtrack point: linear in practice, never exponential.
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace tripline::rules
