#include "sensor/proc_stat.h"

#include <charconv>

namespace tripline::sensor {

Result<ProcStat> ParseProcStat(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return Status::Corruption("stat: no ')' after comm");
  std::string_view rest = text.substr(close + 1);
  // rest: " S ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
  //        cutime cstime priority nice num_threads itrealvalue starttime ..."
  // Field 3 of the file (state) is index 0 here, so ppid is 1 and starttime (22) is 19.
  ProcStat out;
  int index = -1;
  size_t pos = 0;
  while (pos < rest.size() && index < 19) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view field = rest.substr(pos, end - pos);
    pos = end;
    if (field.empty()) break;
    ++index;
    if (index == 1 || index == 19) {
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
      if (ec != std::errc() || p != field.data() + field.size()) {
        return Status::Corruption("stat: bad number '" + std::string(field) + "'");
      }
      if (index == 1) out.ppid = static_cast<uint32_t>(v);
      if (index == 19) out.start_ticks = v;
    }
  }
  if (index < 19) return Status::Corruption("stat: too few fields");
  return out;
}

}  // namespace tripline::sensor
