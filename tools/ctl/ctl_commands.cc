#include "tools/ctl/ctl_commands.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <sstream>

#include "tools/ctl/audit_commands.h"
#include "tools/ctl/ctl_context.h"
#include "tools/ctl/response_commands.h"

namespace tripline::ctl {
namespace {

// Every subcommand group, in the order --help lists them. A new group is one file with its
// Register function (tools/ctl/ctl_context.h) and one line here.
constexpr void (*kCommandGroups[])(CLI::App&, CtlContext&) = {
    RegisterIncidentCommands,   RegisterEventCommands,      RegisterStatsCommands,
    RegisterBaselineCommands,   RegisterSuggestionCommands, RegisterImportCommands,
    RegisterCompletionCommands, RegisterAuditCommands,      RegisterResponseCommands,
    RegisterRulesCommands,      RegisterTrustCommands,
};

constexpr const char* kFooter = R"(
Tables by default; --json prints a JSON array for lists (events, incidents) and an object
for single things (stats, incident, baseline). 'triplinectl SUBCOMMAND --help' has the
flags of each. Connection flags may also follow the subcommand.

Exit codes:
  0  ok
  1  the aggregator answered with an error
  2  usage: bad flags or arguments, or an unreadable --ca/--cert/--key or import FILE
  3  import: the aggregator rejected events
  4  import: no line of FILE is in --format
  5  not found: no such incident or identity
  6  unreachable: the aggregator does not answer (not running, wrong address, TLS
     refused, --timeout passed)
)";

// The deepest subcommand given on the command line that has something to run.
const std::function<int()>* Selected(const CLI::App& app, const CtlContext& ctx,
                                     std::string* path) {
  const CLI::App* at = &app;
  const std::function<int()>* run = nullptr;
  while (true) {
    const auto sub = at->get_subcommands();
    if (sub.empty()) return run;
    at = sub.front();
    *path += (path->empty() ? "" : " ") + at->get_name();
    if (const auto* r = ctx.RunOf(at)) run = r;
  }
}

// CLI11's words for the most common mistakes, in the words of this tool.
std::string Explain(const CLI::ParseError& e, const CLI::App& app, const std::string& path) {
  std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    // "The following argument(s) were not expected: a b": a flag is named first if any.
    const size_t colon = what.find(": ");
    std::istringstream words(colon == std::string::npos ? what : what.substr(colon + 2));
    std::string extra, first;
    while (words >> extra) {
      if (first.empty()) first = extra;
      if (extra.rfind("-", 0) == 0 && extra != "-") {
        if (const size_t eq = extra.find('='); eq != std::string::npos) extra.resize(eq);
        return "unknown flag '" + extra + "'" + (path.empty() ? "" : " for " + path);
      }
    }
    if (path.empty()) return "unknown subcommand '" + first + "'";
    return path + " takes no argument '" + first + "'";
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr &&
      what.find("flag") != std::string::npos) {
    std::string flag = what.substr(0, what.find_first_of(" :"));
    if (flag.rfind("-", 0) != 0) flag = "--" + flag;
    return flag + " takes no value";
  }
  (void)app;
  return what;
}

}  // namespace

std::string CtlUsage() {
  std::ostringstream out, err;
  CtlContext ctx(out, err, SystemClock::Get());
  CLI::App app;
  ConfigureCtl(app, ctx);
  return app.help();
}

void ConfigureCtl(CLI::App& app, CtlContext& ctx) {
  app.name("triplinectl");
  app.footer(kFooter);
  app.fallthrough();
  app.set_help_flag("-h,--help", "print this help and exit");
  app.get_formatter()->label("Usage", "usage");
  app.get_formatter()->column_width(32);
  ConnectionOptions& c = ctx.connection;
  const char* group = "Connection";
  app.add_option("--aggregator", c.aggregator, "the aggregator's query address")
      ->type_name("HOST:PORT")
      ->group(group);
  app.add_option("--ca", c.ca, "verify the aggregator with TLS against these roots")
      ->type_name("FILE")
      ->group(group);
  app.add_option("--cert", c.cert, "client certificate for mutual TLS (with --key, --ca)")
      ->type_name("FILE")
      ->group(group);
  app.add_option("--key", c.key, "the client certificate's private key")
      ->type_name("FILE")
      ->group(group);
  app.add_option("--server-name", c.server_name, "name to verify in the aggregator's certificate")
      ->type_name("NAME")
      ->group(group);
  app.add_option("--timeout", c.timeout, "deadline of each call")
      ->type_name("DURATION")
      ->default_str("10s")
      ->group(group);
  for (const auto group_fn : kCommandGroups) group_fn(app, ctx);
}

int RunCtl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           const Clock& clock) {
  CtlContext ctx(out, err, clock);
  CLI::App app;
  ConfigureCtl(app, ctx);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  std::string path;
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help, out, err);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help, out, err);
  } catch (const CLI::ParseError& e) {
    Selected(app, ctx, &path);
    return ctx.Usage(Explain(e, app, path), path);
  }
  const std::function<int()>* run = Selected(app, ctx, &path);
  if (run == nullptr) {
    if (!path.empty()) return ctx.Usage(path + " wants a subcommand", path);
    return ctx.Usage("no subcommand");
  }
  return (*run)();
}

}  // namespace tripline::ctl
