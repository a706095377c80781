#include "tools/ctl/ctl_context.h"

#include <fstream>
#include <sstream>

#include "common/host_port.h"
#include "common/text_escape.h"

namespace tripline::ctl {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const char* StatusCodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "ERROR";
  }
}

}  // namespace

CLI::App* CtlContext::AddCommand(CLI::App& parent, const std::string& name,
                                 const std::string& description, std::function<int()> run) {
  CLI::App* command = parent.add_subcommand(name, description);
  runs_[command] = std::move(run);
  return command;
}

CLI::Option* CtlContext::AddJsonFlag(CLI::App* command, const std::string& what) {
  return command->add_flag("--json", json, what)->disable_flag_override();
}

CLI::Option* CtlContext::Choices(CLI::Option* option, std::vector<std::string> choices) {
  option->check(CLI::IsMember(choices));
  choices_[option] = std::move(choices);
  return option;
}

CLI::Option* CtlContext::Suggest(CLI::Option* option, std::vector<std::string> values) {
  choices_[option] = std::move(values);
  return option;
}

const std::vector<std::string>* CtlContext::ChoicesOf(const CLI::Option* option) const {
  const auto it = choices_.find(option);
  return it == choices_.end() ? nullptr : &it->second;
}

const std::function<int()>* CtlContext::RunOf(const CLI::App* command) const {
  const auto it = runs_.find(command);
  return it == runs_.end() ? nullptr : &it->second;
}

int CtlContext::Usage(const std::string& message, const std::string& command) {
  err << "triplinectl: " << message << "\n"
      << "run 'triplinectl " << (command.empty() ? "" : command + " ") << "--help' for usage\n";
  return kExitUsage;
}

std::shared_ptr<grpc::Channel> CtlContext::Channel(int* exit_code) {
  const ConnectionOptions& o = connection;
  const auto usage = [&](const std::string& message) {
    *exit_code = Usage(message);
    return nullptr;
  };
  if (o.aggregator.empty()) return usage("--aggregator HOST:PORT is required");
  if (auto hp = ParseHostPort(o.aggregator); !hp.ok()) return usage(hp.status().message());
  if (o.cert.empty() != o.key.empty()) return usage("--cert and --key go together");
  if (!o.cert.empty() && o.ca.empty()) return usage("--cert/--key need --ca");
  auto t = ParseDurationNs(o.timeout);
  if (!t.ok() || *t <= 0) return usage("--timeout wants a duration such as 10s");
  timeout_ns_ = *t;
  if (o.ca.empty()) return grpc::CreateChannel(o.aggregator, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions ssl;
  for (auto [path, into] :
       {std::pair{&o.ca, &ssl.pem_root_certs}, std::pair{&o.cert, &ssl.pem_cert_chain},
        std::pair{&o.key, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    auto pem = ReadFile(*path);
    if (!pem.ok()) return usage(pem.status().message());
    *into = std::move(*pem);
  }
  grpc::ChannelArguments args;
  if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
  return grpc::CreateCustomChannel(o.aggregator, grpc::SslCredentials(ssl), args);
}

std::unique_ptr<v1::Query::Stub> CtlContext::QueryStub(int* exit_code) {
  auto channel = Channel(exit_code);
  return channel ? v1::Query::NewStub(channel) : nullptr;
}

void CtlContext::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::nanoseconds(timeout_ns_));
}

int CtlContext::ExitCodeOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return kExitOk;
    case grpc::StatusCode::NOT_FOUND: return kExitNotFound;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED: return kExitUnreachable;
    default: return kExitServerError;
  }
}

int CtlContext::ExitCodeOf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk: return kExitOk;
    case Status::Code::kNotFound: return kExitNotFound;
    case Status::Code::kUnavailable:
    case Status::Code::kDeadlineExceeded: return kExitUnreachable;
    default: return kExitServerError;
  }
}

int CtlContext::RpcFailed(const char* rpc, const grpc::Status& s) {
  const int code = ExitCodeOf(s.error_code());
  err << "triplinectl: " << rpc << " on " << Show(connection.aggregator)
      << " failed: " << StatusCodeName(s.error_code()) << ": " << Show(s.error_message()) << "\n";
  if (code == kExitUnreachable) {
    err << "triplinectl: the aggregator at " << Show(connection.aggregator)
        << " cannot be reached: is it running and listening there"
        << (connection.ca.empty() ? " (in clear text)" : ", and do --ca/--cert/--key match it")
        << "?\n";
  }
  return code;
}

std::string CtlContext::Show(const std::string& text) { return EscapeForDisplay(text); }

std::string CtlContext::Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += Show(item);
  }
  return out;
}

const CLI::Validator kCount(
    [](std::string& v) {
      return v.empty() || v[0] == '-' ? std::string("wants a number of 0 or more") : "";
    },
    "N>=0");

std::string ParseTimeFlag(const std::string& flag, const std::string& value, const Clock& clock,
                          int64_t* out) {
  if (value.empty()) return "";
  if (auto d = ParseDurationNs(value); d.ok()) {
    *out = clock.NowNs() - *d;
    return "";
  }
  auto t = ParseTimeNs(value);
  if (!t.ok()) {
    return flag + " wants a duration ago (10m) or an RFC 3339 time, got '" + value + "'";
  }
  *out = *t;
  return "";
}

}  // namespace tripline::ctl
