// Aligned text tables for triplinectl: every column as wide as its widest cell, two spaces
// between columns, the last column not padded. Not thread-safe; one table per output.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace tripline::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  // Missing cells print empty; extra cells are an error of the caller and are dropped.
  // Every cell is shown through EscapeForDisplay (common/text_escape.h).
  void AddRow(std::vector<std::string> row);
  void Print(std::ostream& out) const;
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text (code points; good enough for names and arrows).
size_t DisplayWidth(const std::string& s);

}  // namespace tripline::ctl
