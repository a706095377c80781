#include "tools/ctl/ctl_table.h"

#include <algorithm>

#include "common/text_escape.h"

namespace tripline::ctl {

size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80 ? 1 : 0;
  return n;
}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  // Cells hold what hosts and sensors sent: a newline would forge a row, an escape
  // sequence would drive the terminal. Escaped here, so no command can forget it.
  for (auto& cell : row) cell = EscapeForDisplay(cell);
  rows_.push_back(std::move(row));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(header_.size(), 0);
  const auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  const auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - DisplayWidth(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  };
  print(header_);
  for (const auto& row : rows_) print(row);
}

}  // namespace tripline::ctl
