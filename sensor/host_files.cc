#include "sensor/host_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>

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

const char* FileTypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symbolic link";
    default: return "not a regular file";
  }
}

// Reads the regular file open on `fd` (named `full` in errors), at most `max_bytes`.
Result<std::string> ReadRegular(int fd, const std::string& full, size_t max_bytes) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "fstat", full);
  if (!S_ISREG(st.st_mode)) {
    return Status::PermissionDenied(full + " is " + FileTypeName(st.st_mode) + "; not read");
  }
  std::string out;
  bool larger = false;
  if (!ReadUpTo(fd, max_bytes, &out, &larger)) return ErrnoStatus(errno, "read", full);
  if (larger) {
    return Status::ResourceExhausted(full + " is larger than " + std::to_string(max_bytes) +
                                     " bytes");
  }
  return out;
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
  std::string full = Resolve(path);
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, "open", full);
  FdCloser closer(fd);
  return ReadRegular(fd, full, max_bytes);
}

Result<std::string> RootedHostFiles::ReadAccountFile(std::string_view dir,
                                                     std::string_view relative, uint32_t owner_uid,
                                                     size_t max_bytes) const {
  std::string full = Resolve(dir);
  // The directory itself comes from /etc/passwd (root's file): followed like any path.
  int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus(errno, "open", full);
  FdCloser dir_closer(fd);
  // Below it the account decides what exists: no component is followed if it is a link.
  std::string_view rest = relative;
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  int parent = fd;
  int last = -1;
  std::unique_ptr<FdCloser> parent_closer;
  while (true) {
    const size_t slash = rest.find('/');
    const std::string name(rest.substr(0, slash));
    const bool final = slash == std::string_view::npos;
    full += "/" + name;
    if (name.empty() || name == "." || name == "..") {
      return Status::InvalidArgument("bad relative path '" + std::string(relative) + "'");
    }
    const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (final ? 0 : O_DIRECTORY);
    last = openat(parent, name.c_str(), flags);
    if (last < 0) {
      const int err = errno;
      if (err == ELOOP) {
        return Status::PermissionDenied(full + " is a symbolic link; not followed");
      }
      if (err == ENOTDIR && !final) {
        struct stat st {};
        if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
          return Status::PermissionDenied(full + " is a symbolic link; not followed");
        }
      }
      return ErrnoStatus(err, "open", full);
    }
    if (final) break;
    parent_closer = std::make_unique<FdCloser>(last);
    parent = last;
    rest = rest.substr(slash + 1);
  }
  FdCloser closer(last);
  struct stat st {};
  if (fstat(last, &st) != 0) return ErrnoStatus(errno, "fstat", full);
  // sshd's StrictModes rule: the account's own file, or root's. A sensor running as another
  // user trusts its own uid as it trusts root.
  if (S_ISREG(st.st_mode) && st.st_uid != owner_uid && st.st_uid != 0 && st.st_uid != geteuid()) {
    return Status::PermissionDenied(full + " is owned by uid " + std::to_string(st.st_uid) +
                                    ", not by the account (uid " + std::to_string(owner_uid) +
                                    ") or root; not read");
  }
  return ReadRegular(last, full, max_bytes);
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
  v.mode = st.st_mode;
  v.uid = st.st_uid;
  v.gid = st.st_gid;
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
