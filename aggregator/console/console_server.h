// ConsoleServer: the analyst console, served by the aggregator on its own listener
// (--console HOST:PORT or console.listen; docs/console.md).
//
// The page (assets/, served from the binary: no network beyond the aggregator) reads a
// JSON API that answers from the services the aggregator already runs, called in process:
// incidents and fleet figures from the QueryService, the privilege audit from the
// AuditProvider, response actions and their trail from the ResponseService, which also
// decides approvals exactly as for triplinectl, with the signed-in person as the approver.
//
//   GET    /  /app.js  /app.css          the page
//   POST   /api/session {name,password}  sign in: cookie tripline_session, {person,role,csrf}
//   GET    /api/session                  who is signed in, and the CSRF token
//   DELETE /api/session                  sign out
//   GET    /api/incidents                most severe, then newest first; filters severity,
//                                        host, identity, technique, q (text), state
//                                        (awaiting, acted, none: of its actions), limit
//   GET    /api/incidents/ID             the incident and the actions it proposed
//   GET    /api/actions                  every action (state=proposed: the approvals queue)
//   GET    /api/actions/ID/trail         who did what to it, when, and the result
//   POST   /api/actions/ID/approve|deny  {reason}; approvers only; X-CSRF-Token required
//   GET    /api/audit                    the privilege audit's findings
//   GET    /api/fleet                    sensors: families, drops, lag, last seen
//
// Every API call but signing in needs a session; a call that changes something also needs
// the session's CSRF token in X-CSRF-Token, a JSON body and, when the browser sends an
// Origin, this server's own. Every answer carries a strict Content-Security-Policy (no
// inline script or style, nothing from elsewhere), nosniff, no framing, no referrer, and
// API answers are never cached. Bodies are limited to 64 KiB.
//
// Only a loopback address may be served in clear text; any other needs TLS (Start refuses
// it otherwise). Threading: requests run on the server's own threads; the services it
// calls are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "aggregator/console/console_auth.h"
#include "aggregator/query/query_service.h"
#include "aggregator/response/response_service.h"
#include "common/host_port.h"
#include "common/status.h"

namespace httplib {
class Server;
}

namespace tripline::console {

struct ConsoleOptions {
  HostPort listen;            // port 0 picks a free one
  std::string tls_cert_file;  // PEM; both empty: clear text (loopback only)
  std::string tls_key_file;
};

// What the console answers from; none owned, all must outlive the server. `audit` may be
// nullptr (the audit page then says so).
struct ConsoleBackend {
  QueryService* query = nullptr;
  response::ResponseService* response = nullptr;
  AuditProvider* audit = nullptr;
};

class ConsoleServer {
 public:
  static Result<std::unique_ptr<ConsoleServer>> Start(const ConsoleOptions& options,
                                                      ConsoleBackend backend, ConsoleAuth* auth);
  ~ConsoleServer();  // stops and joins
  const HostPort& address() const { return address_; }
  bool tls() const { return tls_; }

 private:
  ConsoleServer() = default;
  void Route();

  HostPort address_;
  bool tls_ = false;
  ConsoleBackend backend_;
  ConsoleAuth* auth_ = nullptr;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace tripline::console
