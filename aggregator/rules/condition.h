// The condition grammar of Sigma's detection section:
//
//   expr    := or
//   or      := and ('or' and)*
//   and     := unary ('and' unary)*
//   unary   := 'not' unary | '(' expr ')' | quant | NAME
//   quant   := ('1' | 'any' | 'all') 'of' (PATTERN | 'them')
//
// NAME is a selection name; PATTERN may hold '*' wildcards. Keywords are lower case.
// Sigma v1 aggregations ("... | count() by x > 5") are refused as Unsupported; every other
// error is InvalidArgument naming the position. Nesting is limited (kMaxConditionDepth).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tripline::rules {

inline constexpr int kMaxConditionDepth = 64;

struct CondNode {
  enum class Kind { kName, kAnd, kOr, kNot, kOneOf, kAllOf };
  Kind kind = Kind::kName;
  std::string name;  // selection name (kName) or pattern / "them" (kOneOf, kAllOf)
  std::vector<CondNode> kids;
};

Result<CondNode> ParseCondition(std::string_view text);

// Whether `name` matches a `1 of` / `all of` pattern ('*' any run, '?' one character).
bool MatchNamePattern(std::string_view pattern, std::string_view name);

}  // namespace tripline::rules
