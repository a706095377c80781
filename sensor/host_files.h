// HostFiles: read access to the host's files (/etc, /proc) through one narrow interface,
// so enrichment and posture can be pointed at a temporary tree in tests.
//
// RootedHostFiles is the only implementation: it prefixes every absolute path with a root
// directory ("" or "/" for the real host). Tests build a tree under a temp dir and pass it
// as the root, so the code under test runs against real files, not a fake.
//
// Threading: implementations are stateless and safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tripline::sensor {

// What identifies one version of a file; a change in any field means "re-read it".
struct FileVersion {
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  uint32_t mode = 0;  // st_mode: type and permission bits
  uint32_t uid = 0;   // owner
  uint32_t gid = 0;

  friend bool operator==(const FileVersion&, const FileVersion&) = default;
};

class HostFiles {
 public:
  virtual ~HostFiles() = default;

  // The whole file. NotFound when it does not exist, ResourceExhausted when it is larger
  // than `max_bytes` (so a hostile or runaway file cannot make the daemon allocate without
  // bound), PermissionDenied when it is not a regular file (a FIFO or device is never
  // read: the open does not block and the read is refused), IoError/PermissionDenied
  // otherwise.
  virtual Result<std::string> ReadFile(std::string_view path, size_t max_bytes) const = 0;
  // A file inside a directory an account controls, e.g. "~/.ssh/authorized_keys": `dir`
  // (the home directory, named by /etc/passwd) is trusted; every component of `relative`
  // is opened without following symbolic links, the file without blocking, and it is read
  // only when it is a regular file owned by `owner_uid` or root (or the sensor's own
  // uid) and at most `max_bytes` long. NotFound when it does not exist; PermissionDenied with the
  // reason (a symbolic link, not a regular file, the wrong owner) when it is skipped;
  // ResourceExhausted when too large.
  virtual Result<std::string> ReadAccountFile(std::string_view dir, std::string_view relative,
                                              uint32_t owner_uid, size_t max_bytes) const = 0;
  // Reads at most `max_bytes` from the start of the file into `out`, reusing its capacity:
  // the per-event /proc reads go through here so they do not allocate once warm.
  virtual Status ReadPrefix(std::string_view path, size_t max_bytes, std::string* out) const = 0;
  virtual Result<FileVersion> Stat(std::string_view path) const = 0;
  // Target of a symbolic link, e.g. /proc/<pid>/exe.
  virtual Result<std::string> ReadLink(std::string_view path) const = 0;
  // Names of the entries of a directory (no "." or ".."), sorted.
  virtual Result<std::vector<std::string>> ListDir(std::string_view path) const = 0;
  // An independent copy, for a thread that may outlive the original (PostureWorker).
  virtual std::unique_ptr<HostFiles> Clone() const = 0;
};

class RootedHostFiles final : public HostFiles {
 public:
  // `root` is prepended to every path; "" and "/" mean the real file system.
  explicit RootedHostFiles(std::string root);

  Result<std::string> ReadFile(std::string_view path, size_t max_bytes) const override;
  Result<std::string> ReadAccountFile(std::string_view dir, std::string_view relative,
                                      uint32_t owner_uid, size_t max_bytes) const override;
  Status ReadPrefix(std::string_view path, size_t max_bytes, std::string* out) const override;
  Result<FileVersion> Stat(std::string_view path) const override;
  Result<std::string> ReadLink(std::string_view path) const override;
  Result<std::vector<std::string>> ListDir(std::string_view path) const override;
  std::unique_ptr<HostFiles> Clone() const override {
    return std::make_unique<RootedHostFiles>(root_);
  }

  const std::string& root() const { return root_; }

 private:
  std::string Resolve(std::string_view path) const;

  const std::string root_;
};

}  // namespace tripline::sensor
