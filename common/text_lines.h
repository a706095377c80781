// Walking a text file's lines without copying them.
#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

namespace tripline {

// Calls `fn(line, line_number)` for every line of `text`: split at '\n', numbered from 1,
// a trailing '\r' removed, a last line without '\n' included. When `fn` returns bool,
// false stops the walk.
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  size_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if constexpr (std::is_same_v<std::invoke_result_t<Fn&, std::string_view, size_t>, bool>) {
      if (!fn(line, line_no)) return;
    } else {
      fn(line, line_no);
    }
  }
}

}  // namespace tripline
