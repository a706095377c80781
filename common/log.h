// Minimal leveled logging to stderr. Thread-safe: each message is written with one
// write(2) call, so lines from different threads never interleave. A message is one line:
// controls and bidi overrides in it are escaped with EscapeForDisplay (common/text_escape.h).
//
//   TL_LOG(INFO) << "listening on " << addr;
#pragma once

#include <sstream>
#include <string_view>

namespace tripline {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug", "info", "warning", "error"; false when the name is unknown.
bool ParseLogLevel(std::string_view name, LogLevel* out);

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Turns the stream expression of TL_LOG into void; `&` binds looser than `<<`.
class LogVoidify {
 public:
  void operator&(std::ostream&) {}
};

}  // namespace tripline

#define TL_LOG_LEVEL_DEBUG ::tripline::LogLevel::kDebug
#define TL_LOG_LEVEL_INFO ::tripline::LogLevel::kInfo
#define TL_LOG_LEVEL_WARNING ::tripline::LogLevel::kWarning
#define TL_LOG_LEVEL_ERROR ::tripline::LogLevel::kError

// An expression, not an if-statement, so `if (x) TL_LOG(INFO) << ...; else ...` means what
// it says. Operands of the stream are not evaluated when the level is off.
#define TL_LOG(severity)                                \
  (TL_LOG_LEVEL_##severity < ::tripline::GetLogLevel()) \
      ? (void)0                                         \
      : ::tripline::LogVoidify() &                      \
            ::tripline::LogMessage(TL_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()
