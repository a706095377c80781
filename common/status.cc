#include "common/status.h"

#include <cstring>

namespace tripline {

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kAlreadyExists: return "already exists";
    case Status::Code::kCorruption: return "corruption";
    case Status::Code::kIoError: return "i/o error";
    case Status::Code::kUnavailable: return "unavailable";
    case Status::Code::kResourceExhausted: return "resource exhausted";
    case Status::Code::kPermissionDenied: return "permission denied";
    case Status::Code::kUnsupported: return "unsupported";
    case Status::Code::kAborted: return "aborted";
    case Status::Code::kDeadlineExceeded: return "deadline exceeded";
    case Status::Code::kInternal: return "internal error";
    case Status::Code::kUnauthenticated: return "unauthenticated";
  }
  return "unknown";
}

Status Status::FromErrno(int err, std::string_view context) {
  if (err < 0) err = -err;
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case 0: return Status();
    case ENOENT: return NotFound(msg);
    case EEXIST: return AlreadyExists(msg);
    case EINVAL: return InvalidArgument(msg);
    case EPERM:
    case EACCES: return PermissionDenied(msg);
    case ENOMEM:
    case ENOSPC:
    case E2BIG: return ResourceExhausted(msg);
    case EOPNOTSUPP: return Unsupported(msg);
    case EAGAIN: return Unavailable(msg);
    default: return IoError(msg);
  }
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(CodeName(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, msg);
}

}  // namespace tripline
