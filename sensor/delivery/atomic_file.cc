#include "sensor/delivery/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

namespace tripline::delivery {
namespace {

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(err, "fsync " + dir);
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& dir, std::string_view name,
                           std::string_view contents) {
  const std::string path = dir + "/" + std::string(name);
  const std::string tmp = path + ".tmp";
  // unlink removes a link itself, never its target.
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "remove " + tmp);
  }
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  Status s = WriteAll(fd, contents, tmp);
  if (s.ok() && ::fdatasync(fd) != 0) s = Status::FromErrno(errno, "fdatasync " + tmp);
  ::close(fd);
  if (!s.ok()) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::FromErrno(errno, "rename " + tmp);
  }
  return SyncDirectory(dir);
}

namespace {

Result<std::string> ReadFrom(int fd, const std::string& path) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::FromErrno(errno, "open " + path);
  }
  return ReadFrom(fd, path);
}

Result<std::string> ReadOwnFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    if (errno == ELOOP) return Status::PermissionDenied(path + " is a symbolic link; not followed");
    return Status::FromErrno(errno, "open " + path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::PermissionDenied(path + " is not a regular file; not read");
  }
  return ReadFrom(fd, path);
}

Status PrepareOwnDirectory(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "stat " + dir);
    // Parents as the system makes them; the directory itself private.
    const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return Status::IoError("create " + parent.string() + ": " + ec.message());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "create " + dir);
    }
    if (::lstat(dir.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + dir);
  }
  if (S_ISLNK(st.st_mode)) {
    return Status::PermissionDenied("spool directory " + dir +
                                    " is a symbolic link; configure the real path");
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::PermissionDenied("spool directory " + dir + " is not a directory");
  }
  if (st.st_uid != ::geteuid()) {
    return Status::PermissionDenied("spool directory " + dir + " is owned by uid " +
                                    std::to_string(st.st_uid) + ", not by this sensor (uid " +
                                    std::to_string(::geteuid()) +
                                    "); chown it or choose another spool_dir");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::PermissionDenied("spool directory " + dir + " (mode " + mode +
                                    ") is writable by group or others; chmod 700 it");
  }
  return Status::Ok();
}

}  // namespace tripline::delivery
