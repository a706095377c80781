#include "tools/ctl/audit_commands.h"

#include <memory>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/text_escape.h"
#include "model/incident.h"
#include "tripline/v1/query.grpc.pb.h"

namespace tripline::ctl {
namespace {

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string SeverityText(int s) {
  if (s < 1 || s > 5) return "unknown";
  return std::string(SeverityName(static_cast<Severity>(s)));
}

// The drift report: each privilege of each non-human account, unused first.
int PrintDrift(CtlContext& ctx, const v1::AuditReport& report) {
  std::ostream& out = ctx.out;
  if (ctx.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::DriftItem& d : report.drift()) {
      list.push_back(
          {{"host", d.host()},
           {"identity", d.identity()},
           {"kind", d.kind()},
           {"privilege", d.privilege()},
           {"state", d.state()},
           {"last_used", d.last_used_ns() == 0 ? nlohmann::json(nullptr)
                                               : nlohmann::json(FormatTimeNs(d.last_used_ns()))},
           {"since", FormatTimeNs(d.since_ns())},
           {"evidence", d.evidence()},
           {"fix", d.fix()}});
    }
    out << list.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  if (report.drift_size() == 0) {
    out << "no non-human account with privileges seen yet\n";
    return 0;
  }
  for (const v1::DriftItem& d : report.drift()) {
    out << Upper(d.state()) << "  " << EscapeForDisplay(d.host()) << "  "
        << EscapeForDisplay(d.identity()) << " (" << EscapeForDisplay(d.kind()) << ")  "
        << EscapeForDisplay(d.privilege()) << "\n    " << EscapeForDisplay(d.evidence()) << "\n";
    if (!d.fix().empty()) out << "    fix: " << EscapeForDisplay(d.fix()) << "\n";
  }
  return 0;
}

}  // namespace

int RunAudit(CtlContext& ctx, const AuditArgs& args) {
  int code = 0;
  auto stub = ctx.QueryStub(&code);
  if (!stub) return code;
  grpc::ClientContext call;
  ctx.Prepare(&call);
  std::ostream& out = ctx.out;
  v1::GetAuditRequest req;
  req.set_host(args.host);
  req.set_identity(args.identity);
  req.set_include_resolved(args.include_resolved);
  req.set_drift(args.drift);
  v1::AuditReport report;
  if (grpc::Status s = stub->GetAudit(&call, req, &report); !s.ok()) {
    return ctx.RpcFailed("GetAudit", s);
  }
  if (args.drift) return PrintDrift(ctx, report);
  if (ctx.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::AuditFinding& f : report.findings()) {
      nlohmann::json j{
          {"host", f.host()},
          {"identity", f.identity()},
          {"kind", f.kind()},
          {"finding", f.finding()},
          {"subject", f.subject()},
          {"severity", SeverityText(f.severity())},
          {"detail", f.detail()},
          {"fix", f.fix()},
          {"first_seen", FormatTimeNs(f.first_seen_ns())},
          {"last_seen", FormatTimeNs(f.last_seen_ns())},
          {"resolved", f.resolved_ns() == 0 ? nlohmann::json(nullptr)
                                            : nlohmann::json(FormatTimeNs(f.resolved_ns()))}};
      list.push_back(std::move(j));
    }
    out << list.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  if (report.findings_size() == 0) {
    out << "no findings\n";
    return 0;
  }
  for (const v1::AuditFinding& f : report.findings()) {
    out << Upper(SeverityText(f.severity())) << "  " << EscapeForDisplay(f.host()) << "  "
        << EscapeForDisplay(f.identity()) << " (" << EscapeForDisplay(f.kind()) << ")  "
        << EscapeForDisplay(f.finding());
    if (!f.subject().empty() && f.finding() == "root-equivalent-group") {
      out << " " << EscapeForDisplay(f.subject());
    }
    out << "  since " << FormatTimeNs(f.first_seen_ns());
    if (f.resolved_ns() != 0) out << ", resolved " << FormatTimeNs(f.resolved_ns());
    out << "\n    " << EscapeForDisplay(f.detail()) << "\n    fix: " << EscapeForDisplay(f.fix())
        << "\n";
  }
  return 0;
}

void RegisterAuditCommands(CLI::App& app, CtlContext& ctx) {
  auto args = std::make_shared<AuditArgs>();
  CLI::App* audit =
      ctx.AddCommand(app, "audit",
                     "posture findings per host and identity, most severe first, each with a fix "
                     "(docs/audit.md)",
                     [&ctx, args] { return RunAudit(ctx, *args); });
  audit->add_option("--host", args->host, "one host only")->type_name("HOST");
  audit->add_option("--identity", args->identity, "one account only")->type_name("NAME");
  audit->add_flag("--all", args->include_resolved, "also findings that were resolved");
  audit->add_flag("--drift", args->drift,
                  "instead: each non-human account's privileges, provisioned against exercised; "
                  "the unused ones with the fix");
  ctx.AddJsonFlag(audit, "a JSON array of findings");
}

}  // namespace tripline::ctl
