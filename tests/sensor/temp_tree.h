// TempTree: a throwaway directory tree that stands in for / in sensor tests
// (RootedHostFiles(tree.root())). Removed with everything in it on destruction.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace tripline::sensor {

class TempTree {
 public:
  TempTree() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tripline-sensor-test-XXXXXX").string();
    char* dir = mkdtemp(pattern.data());
    EXPECT_NE(dir, nullptr);
    root_ = pattern;
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const std::string& root() const { return root_; }

  // Writes `text` to `path` (absolute, inside the tree), creating directories.
  void Write(std::string_view path, std::string_view text) const {
    std::filesystem::path full = root_ + std::string(path);
    std::filesystem::create_directories(full.parent_path());
    std::ofstream out(full, std::ios::binary | std::ios::trunc);
    out << text;
  }
  void Symlink(std::string_view target, std::string_view link) const {
    std::filesystem::path full = root_ + std::string(link);
    std::filesystem::create_directories(full.parent_path());
    std::filesystem::remove(full);
    std::filesystem::create_symlink(std::string(target), full);
  }
  void Remove(std::string_view path) const {
    std::filesystem::remove_all(root_ + std::string(path));
  }

 private:
  std::string root_;
};

}  // namespace tripline::sensor
