#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>

#include "common/text_escape.h"

namespace tripline {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "D";
    case LogLevel::kInfo: return "I";
    case LogLevel::kWarning: return "W";
    case LogLevel::kError: return "E";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  if (name == "debug")
    *out = LogLevel::kDebug;
  else if (name == "info")
    *out = LogLevel::kInfo;
  else if (name == "warning")
    *out = LogLevel::kWarning;
  else if (name == "error")
    *out = LogLevel::kError;
  else
    return false;
  return true;
}

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[32];
  strftime(when, sizeof(when), "%H:%M:%S", &t);
  const char* base = std::strrchr(file, '/');
  stream_ << LevelLetter(level_) << ' ' << when << '.' << (ts.tv_nsec / 1000000) / 100
          << ((ts.tv_nsec / 1000000) / 10) % 10 << (ts.tv_nsec / 1000000) % 10 << ' '
          << (base ? base + 1 : file) << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  // Messages carry names and paths from hosts and sensors: escaped, a host name with a
  // newline or a terminal sequence cannot forge a line or drive the reader's terminal.
  std::string s = EscapeForDisplay(stream_.str());
  s.push_back('\n');
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(STDERR_FILENO, s.data() + off, s.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace tripline
