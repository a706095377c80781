// triplinectl import: an auth log sent as the sensor would have reported it
// (tools/import/, docs/import.md).
#include <unistd.h>

#include <algorithm>

#include "tools/ctl/ctl_context.h"
#include "tools/import/log_importer.h"

namespace tripline::ctl {
namespace {

struct ImportFlags {
  std::vector<std::string> file;
  std::string format, host, utc_offset;
  int year = 0;
  bool dry_run = false;
};

// Exit codes: 0 done, 1 the aggregator failed (what it acknowledged stays; run again to
// resume), 6 it cannot be reached, 2 usage or unreadable file, 3 the aggregator rejected
// events, 4 no line of the file is in the given format.
int RunImport(CtlContext& ctx, const ImportFlags& f) {
  if (f.file.size() != 1) return ctx.Usage("import takes one FILE", "import");
  import::ImportOptions io;
  io.path = f.file[0];
  if (f.format.empty() || !import::ParseLogFormat(f.format, &io.parse.format)) {
    return ctx.Usage("import needs --format sshd-syslog or --format journal-json", "import");
  }
  if (f.host.empty()) {
    return ctx.Usage("import needs --host NAME, the host the log was written on", "import");
  }
  // Host names are ASCII (RFC 1123); anything else would reach the store and the
  // incidents as is.
  if (f.host.size() > 255 ||
      !std::all_of(f.host.begin(), f.host.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return ctx.Usage("--host wants a host name (printable ASCII, at most 255 bytes)", "import");
  }
  io.parse.host = f.host;
  if (f.year != 0) {
    if (f.year < 1971 || f.year > 9999) {
      return ctx.Usage("--year wants a year such as 2026, got '" + std::to_string(f.year) + "'",
                       "import");
    }
    io.parse.year = f.year;
  }
  if (!f.utc_offset.empty()) {
    auto t = ParseTimeNs("1970-01-02T00:00:00" + f.utc_offset);
    if (!t.ok()) {
      return ctx.Usage("--utc-offset wants +HH:MM or -HH:MM, got '" + f.utc_offset + "'", "import");
    }
    io.parse.utc_offset_s = 86400 - *t / kNanosPerSecond;
  }
  io.parse.now_ns = ctx.clock.NowNs();
  std::shared_ptr<grpc::Channel> channel;
  if (!f.dry_run) {
    int code = 0;
    channel = ctx.Channel(&code);
    if (!channel) return code;
  }
  io.timeout_ns = ctx.timeout_ns();
  import::ImportReport report;
  const Status s = import::RunImport(io, channel, isatty(STDERR_FILENO) ? &ctx.err : nullptr,
                                     ctx.clock, &report);
  if (!s.ok() && report.sensor_id.empty()) {  // the file could not be opened
    ctx.err << "triplinectl: import: " << s.message() << "\n";
    return kExitUsage;
  }
  if (ctx.json) {
    ctx.out << import::ImportReportJson(report, io, f.dry_run) << "\n";
  } else {
    import::PrintImportReport(report, io, f.dry_run, ctx.out);
  }
  if (!s.ok()) {
    ctx.err << "triplinectl: import: " << s.message() << "\n";
    const bool file = s.code() == Status::Code::kIoError || s.IsInvalidArgument();
    return file ? kExitUsage : CtlContext::ExitCodeOf(s);
  }
  if (report.rejected > 0) return kExitImportRejected;
  if (report.lines > 0 && report.lines_malformed + report.lines_empty == report.lines) {
    ctx.err << "triplinectl: import: no line of " << io.path << " is " << f.format
            << "; is --format right?\n";
    return kExitImportNoLines;
  }
  return kExitOk;
}

}  // namespace

void RegisterImportCommands(CLI::App& app, CtlContext& ctx) {
  auto f = std::make_shared<ImportFlags>();
  CLI::App* import = ctx.AddCommand(
      app, "import",
      "send the logins, failures, sessions and sudo commands of an auth log as the sensor "
      "would have reported them; importing a file again adds nothing (docs/import.md)",
      [&ctx, f] { return RunImport(ctx, *f); });
  import->add_option("FILE", f->file, "the log")->type_name("FILE");
  ctx.Choices(import->add_option("--format", f->format, "how FILE is written")->type_name("FORMAT"),
              {"sshd-syslog", "journal-json"});
  import->add_option("--host", f->host, "the host the log was written on")->type_name("NAME");
  import->add_option("--year", f->year, "the year of syslog lines (they carry none)")
      ->type_name("Y");
  import->add_option("--utc-offset", f->utc_offset, "the log's local time offset")
      ->type_name("+HH:MM");
  import->add_flag("--dry-run", f->dry_run, "parse and report, without an aggregator");
  ctx.AddJsonFlag(import, "the report as one JSON object");
}

}  // namespace tripline::ctl
