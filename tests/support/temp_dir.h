// A unique temporary directory for a test, removed with everything in it when the object
// goes out of scope.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace tripline::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tripline-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty when the directory could not be made.
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tripline::testing
