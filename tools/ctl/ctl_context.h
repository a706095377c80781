// CtlContext: what every triplinectl subcommand shares: the connection flags, --json, the
// output streams, the exit codes, and the registry of subcommands.
//
// A subcommand group lives in a file of its own with one function,
//
//   void RegisterIncidentCommands(CLI::App& app, CtlContext& ctx);
//
// which adds its subcommands with ctx.AddCommand (flags with CLI11 as usual, value sets
// with ctx.Choices so bash completion offers them) and is listed once in kCommandGroups
// (tools/ctl/ctl_commands.cc). Nothing else needs to know about a new group: --help, the
// bash completion and the exit codes follow.
//
// Not thread-safe: one context per run.
#pragma once

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline::ctl {

// Exit codes scripts can rely on (docs/triplinectl.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitServerError = 1,     // the aggregator answered with an error, or with nonsense
  kExitUsage = 2,           // bad flags or arguments (also: an unreadable --ca/--cert file)
  kExitImportRejected = 3,  // import: the aggregator rejected events
  kExitImportNoLines = 4,   // import: no line of FILE is in --format
  kExitNotFound = 5,        // the incident, identity or thing named does not exist
  kExitUnreachable = 6,     // no answer: not running, wrong address, TLS refused, timeout
};

struct ConnectionOptions {
  std::string aggregator;
  std::string ca, cert, key, server_name;
  std::string timeout = "10s";
};

class CtlContext {
 public:
  CtlContext(std::ostream& out, std::ostream& err, const Clock& clock)
      : out(out), err(err), clock(clock) {}

  std::ostream& out;
  std::ostream& err;
  const Clock& clock;
  ConnectionOptions connection;
  bool json = false;  // --json of the subcommand being run

  // Adds subcommand `name` under `parent`; `run` is called (and its result is the exit
  // code) when this is the subcommand given. Connection flags work after it too.
  CLI::App* AddCommand(CLI::App& parent, const std::string& name, const std::string& description,
                       std::function<int()> run);
  // --json on `command`: sets `json`.
  CLI::Option* AddJsonFlag(CLI::App* command, const std::string& what);
  // Restricts `option` to `choices` (CLI11 checks them; bash completion offers them).
  CLI::Option* Choices(CLI::Option* option, std::vector<std::string> choices);
  // Values offered for positional `option` by bash completion without restricting it.
  CLI::Option* Suggest(CLI::Option* option, std::vector<std::string> values);
  const std::vector<std::string>* ChoicesOf(const CLI::Option* option) const;
  const std::function<int()>* RunOf(const CLI::App* command) const;

  // Prints "triplinectl: MESSAGE" and a pointer to --help; returns kExitUsage.
  int Usage(const std::string& message, const std::string& command = "");

  // The channel to --aggregator with the connection flags, nullptr after printing why
  // (*exit_code set: usage for bad flags or unreadable files).
  std::shared_ptr<grpc::Channel> Channel(int* exit_code);
  std::unique_ptr<v1::Query::Stub> QueryStub(int* exit_code);
  // Deadline of one call (--timeout).
  void Prepare(grpc::ClientContext* context) const;
  int64_t timeout_ns() const { return timeout_ns_; }

  // Prints what went wrong with `rpc` and returns its exit code: NOT_FOUND is kExitNotFound,
  // UNAVAILABLE and DEADLINE_EXCEEDED kExitUnreachable, the rest kExitServerError.
  int RpcFailed(const char* rpc, const grpc::Status& status);
  // The same for a Status (the importer's); kExitServerError unless unreachable/not found.
  static int ExitCodeOf(const Status& status);
  static int ExitCodeOf(grpc::StatusCode code);

  // Text from the aggregator as it may be shown to a person (common/text_escape.h).
  static std::string Show(const std::string& text);
  // Each item shown, joined by `sep`.
  static std::string Join(const std::vector<std::string>& items, const char* sep);

 private:
  std::map<const CLI::App*, std::function<int()>> runs_;
  std::map<const CLI::Option*, std::vector<std::string>> choices_;
  int64_t timeout_ns_ = 10 * kNanosPerSecond;
};

// The subcommand groups; each in its own file.
void RegisterEventCommands(CLI::App& app, CtlContext& ctx);       // events
void RegisterStatsCommands(CLI::App& app, CtlContext& ctx);       // stats
void RegisterIncidentCommands(CLI::App& app, CtlContext& ctx);    // incidents, incident
void RegisterBaselineCommands(CLI::App& app, CtlContext& ctx);    // baseline, feedback
void RegisterSuggestionCommands(CLI::App& app, CtlContext& ctx);  // suggestions [confirm|dismiss]
void RegisterTrustCommands(CLI::App& app, CtlContext& ctx);       // trust [AGENT|promote|probation]
void RegisterRulesCommands(CLI::App& app, CtlContext& ctx);       // rules, rules test
void RegisterImportCommands(CLI::App& app, CtlContext& ctx);      // import
void RegisterCompletionCommands(CLI::App& app, CtlContext& ctx);  // completion bash

// A count: 0 or more (CLI11 validator).
extern const CLI::Validator kCount;

// Parsing helpers shared by the groups. Each returns an error message, "" when fine.
// A duration ago (10m) or an RFC 3339 time.
std::string ParseTimeFlag(const std::string& flag, const std::string& value, const Clock& clock,
                          int64_t* out);

}  // namespace tripline::ctl
