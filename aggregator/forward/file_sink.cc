// file:///PATH?format=ocsf|ecs: newline-delimited JSON appended to a file. Each run is one
// write(2) of whole lines followed by fdatasync, so a crash leaves whole records (at most the
// run being written repeated at the next start). A file renamed away (log rotation) is
// noticed by its inode and the path is opened afresh.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "aggregator/forward/incident_formats.h"
#include "aggregator/forward/sink.h"

namespace tripline::forward {
namespace {

class FileSink final : public Sink {
 public:
  FileSink(std::string path, std::string format) : path_(std::move(path)), format_(format) {}
  ~FileSink() override { Reset(); }

  SendOutcome Send(const std::vector<ForwardRecord>& records) override {
    SendOutcome out;
    if (Status s = EnsureOpen(); !s.ok()) {
      out.error = s;
      return out;
    }
    std::string lines;
    for (const ForwardRecord& r : records) {
      lines += std::visit(
          [&](const auto& record) {
            return JsonLine(format_ == "ecs" ? ToEcs(record) : ToOcsf(record));
          },
          r);
    }
    size_t done = 0;
    while (done < lines.size()) {
      const ssize_t n = ::write(fd_, lines.data() + done, lines.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        out.error = Status::FromErrno(errno, "writing " + path_);
        Reset();
        return out;
      }
      done += static_cast<size_t>(n);
    }
    if (::fdatasync(fd_) != 0) {
      out.error = Status::FromErrno(errno, "syncing " + path_);
      Reset();
      return out;
    }
    out.delivered = records.size();
    return out;
  }

  void Reset() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  Status EnsureOpen() {
    if (fd_ >= 0) {
      struct stat by_path {};
      if (::stat(path_.c_str(), &by_path) == 0 && by_path.st_ino == inode_ &&
          by_path.st_dev == device_) {
        return Status::Ok();
      }
      Reset();
    }
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) return Status::FromErrno(errno, "opening " + path_);
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat " + path_);
    inode_ = st.st_ino;
    device_ = st.st_dev;
    return Status::Ok();
  }

  const std::string path_;
  const std::string format_;
  int fd_ = -1;
  ino_t inode_ = 0;
  dev_t device_ = 0;
};

}  // namespace

Result<std::unique_ptr<Sink>> MakeFileSink(const ForwardTarget& target, const SinkOptions&) {
  return std::unique_ptr<Sink>(new FileSink(target.path, target.format));
}

Result<std::unique_ptr<Sink>> MakeSink(const ForwardTarget& target, const SinkOptions& options) {
  switch (target.kind) {
    case ForwardTarget::Kind::kSyslogTcp:
    case ForwardTarget::Kind::kSyslogTls: return MakeSyslogSink(target, options);
    case ForwardTarget::Kind::kHttp:
    case ForwardTarget::Kind::kHttps: return MakeHttpSink(target, options);
    case ForwardTarget::Kind::kFile: return MakeFileSink(target, options);
  }
  return Status::InvalidArgument("unknown output kind");
}

}  // namespace tripline::forward
