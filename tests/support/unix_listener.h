// A real listening Unix socket at a path, for tests of what may connect to it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace tripline::testing {

// Binds and listens on `path`; closed with the object. fd() is -1 when that failed.
class UnixListener {
 public:
  explicit UnixListener(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (fd_ >= 0 &&
        (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd_, 8) != 0)) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~UnixListener() {
    if (fd_ >= 0) close(fd_);
  }
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace tripline::testing
