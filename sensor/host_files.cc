#include "sensor/host_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace tripline::sensor {
namespace {

Status ErrnoStatus(int err, std::string_view what, const std::string& path) {
  std::string context(what);
  context += " ";
  context += path;
  if (err == ENOENT || err == ENOTDIR || err == ESRCH) {
    return Status::NotFound(context);
  }
  return Status::FromErrno(err, context);
}

// Closes a descriptor on every return path.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

// Reads up to `max_bytes` (and one byte more, to tell "exactly max" from "larger") into
// `out`. Returns false with errno set on a read error.
bool ReadUpTo(int fd, size_t max_bytes, std::string* out, bool* larger) {
  out->clear();
  *larger = false;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    size_t room = max_bytes - out->size();
    if (static_cast<size_t>(n) > room) {
      out->append(buf, room);
      *larger = true;
      return true;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

RootedHostFiles::RootedHostFiles(std::string root)
    : root_(root == "/" ? std::string() : std::move(root)) {}

std::string RootedHostFiles::Resolve(std::string_view path) const {
  std::string full;
  full.reserve(root_.size() + path.size());
  full += root_;
  full += path;
  return full;
}

Result<std::string> RootedHostFiles::ReadFile(std::string_view path, size_t max_bytes) const {
  std::string out;
  std::string full = Resolve(path);
  int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", full);
  FdCloser closer(fd);
  bool larger = false;
  if (!ReadUpTo(fd, max_bytes, &out, &larger)) return ErrnoStatus(errno, "read", full);
  if (larger) {
    return Status::ResourceExhausted(full + " is larger than " + std::to_string(max_bytes) +
                                     " bytes");
  }
  return out;
}

Status RootedHostFiles::ReadPrefix(std::string_view path, size_t max_bytes,
                                   std::string* out) const {
  // Built on the stack: /proc paths are short, and this runs for every new process.
  char full[PATH_MAX];
  if (root_.size() + path.size() + 1 > sizeof(full)) {
    return Status::InvalidArgument("path too long");
  }
  std::copy(root_.begin(), root_.end(), full);
  std::copy(path.begin(), path.end(), full + root_.size());
  full[root_.size() + path.size()] = '\0';
  int fd = open(full, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", full);
  FdCloser closer(fd);
  bool larger = false;
  if (!ReadUpTo(fd, max_bytes, out, &larger)) return ErrnoStatus(errno, "read", full);
  return Status::Ok();
}

Result<FileVersion> RootedHostFiles::Stat(std::string_view path) const {
  std::string full = Resolve(path);
  struct stat st {};
  if (stat(full.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", full);
  FileVersion v;
  v.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec;
  v.inode = st.st_ino;
  v.size = static_cast<uint64_t>(st.st_size);
  return v;
}

Result<std::string> RootedHostFiles::ReadLink(std::string_view path) const {
  std::string full = Resolve(path);
  char buf[PATH_MAX];
  ssize_t n = readlink(full.c_str(), buf, sizeof(buf));
  if (n < 0) return ErrnoStatus(errno, "readlink", full);
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::vector<std::string>> RootedHostFiles::ListDir(std::string_view path) const {
  std::string full = Resolve(path);
  DIR* dir = opendir(full.c_str());
  if (dir == nullptr) return ErrnoStatus(errno, "opendir", full);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = readdir(dir)) {
    std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return ErrnoStatus(err, "readdir", full);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace tripline::sensor
