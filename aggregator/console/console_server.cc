#include "aggregator/console/console_server.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "aggregator/console/console_assets.h"
#include "common/log.h"

namespace tripline::console {
namespace {

using json = nlohmann::json;

constexpr char kCookie[] = "tripline_session";
constexpr size_t kMaxBody = 64 * 1024;

// No inline script or style, nothing from anywhere but this server, no framing, no form
// posted elsewhere, no plugin.
constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

int HttpCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return 200;
    case Status::Code::kInvalidArgument: return 400;
    case Status::Code::kUnauthenticated: return 401;
    case Status::Code::kPermissionDenied: return 403;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kAlreadyExists:
    case Status::Code::kAborted: return 409;
    case Status::Code::kResourceExhausted: return 429;
    case Status::Code::kUnsupported: return 501;
    case Status::Code::kUnavailable: return 503;
    default: return 500;
  }
}

Status FromGrpc(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(s.error_message());
    case grpc::StatusCode::NOT_FOUND: return Status::NotFound(s.error_message());
    case grpc::StatusCode::PERMISSION_DENIED: return Status::PermissionDenied(s.error_message());
    case grpc::StatusCode::UNAUTHENTICATED: return Status::Unauthenticated(s.error_message());
    case grpc::StatusCode::UNIMPLEMENTED: return Status::Unsupported(s.error_message());
    case grpc::StatusCode::UNAVAILABLE: return Status::Unavailable(s.error_message());
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return Status::ResourceExhausted(s.error_message());
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::ALREADY_EXISTS: return Status::Aborted(s.error_message());
    default: return Status::Internal(s.error_message());
  }
}

void SendJson(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void SendError(httplib::Response& res, const Status& s) {
  SendJson(res, HttpCode(s), json{{"error", s.message()}});
}

// A message as JSON with the proto's field names (what triplinectl --json prints).
json ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(m, &text, options).ok()) return json::object();
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

std::string CookieToken(const httplib::Request& req) {
  const std::string header = req.get_header_value("Cookie");
  std::string_view rest = header;
  while (!rest.empty()) {
    const size_t end = rest.find(';');
    std::string_view part = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == kCookie) {
      return std::string(part.substr(eq + 1));
    }
  }
  return "";
}

int SeverityRank(const std::string& name) {
  static const char* const kNames[] = {"", "info", "low", "medium", "high", "critical"};
  for (int i = 1; i < 6; ++i) {
    if (name == kNames[i]) return i;
  }
  return -1;
}

bool Contains(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return true;
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

// The filters of GET /api/incidents on one incident.
bool Matches(const v1::Incident& in, const httplib::Request& req) {
  const std::string host = req.get_param_value("host");
  const std::string identity = req.get_param_value("identity");
  const std::string technique = req.get_param_value("technique");
  const std::string q = req.get_param_value("q");
  const auto any = [](const auto& list, const std::string& want) {
    if (want.empty()) return true;
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& x) { return x == want || Contains(x, want); });
  };
  if (!any(in.hosts(), host) || !any(in.identities(), identity) ||
      !any(in.techniques(), technique)) {
    return false;
  }
  if (!q.empty() && !Contains(in.title(), q) && !Contains(in.id(), q) &&
      std::none_of(in.explanation().begin(), in.explanation().end(),
                   [&](const std::string& e) { return Contains(e, q); })) {
    return false;
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ConsoleServer>> ConsoleServer::Start(const ConsoleOptions& options,
                                                            ConsoleBackend backend,
                                                            ConsoleAuth* auth) {
  if (backend.query == nullptr || backend.response == nullptr || auth == nullptr) {
    return Status::InvalidArgument("console: the query and response services are required");
  }
  const bool tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (tls && (options.tls_cert_file.empty() || options.tls_key_file.empty())) {
    return Status::InvalidArgument("console: TLS needs both a certificate and a key file");
  }
  if (!tls && !options.listen.IsLoopback()) {
    return Status::InvalidArgument("console: " + options.listen.ToString() +
                                   " is not a loopback address: serving it needs "
                                   "console.tls_cert_file and console.tls_key_file");
  }
  std::unique_ptr<ConsoleServer> s(new ConsoleServer());
  s->backend_ = backend;
  s->auth_ = auth;
  s->tls_ = tls;
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                    options.tls_key_file.c_str());
    if (!ssl->is_valid()) {
      return Status::InvalidArgument("console: cannot load the TLS certificate " +
                                     options.tls_cert_file + " and key " + options.tls_key_file);
    }
    s->server_ = std::move(ssl);
  } else {
    s->server_ = std::make_unique<httplib::Server>();
  }
  s->server_->new_task_queue = [] { return new httplib::ThreadPool(4); };
  s->server_->set_payload_max_length(kMaxBody);
  s->server_->set_read_timeout(10, 0);
  s->server_->set_write_timeout(10, 0);
  s->Route();
  int port = options.listen.port;
  if (port == 0) {
    port = s->server_->bind_to_any_port(options.listen.host);
  } else if (!s->server_->bind_to_port(options.listen.host, port)) {
    port = -1;
  }
  if (port <= 0)
    return Status::Unavailable("console: cannot listen on " + options.listen.ToString());
  s->address_ = HostPort{options.listen.host, static_cast<uint16_t>(port)};
  httplib::Server* server = s->server_.get();
  s->thread_ = std::thread([server] { server->listen_after_bind(); });
  for (int i = 0; i < 2000 && !server->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return s;
}

ConsoleServer::~ConsoleServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void ConsoleServer::Route() {
  httplib::Server& sv = *server_;
  const bool secure = tls_;
  sv.set_post_routing_handler([secure](const httplib::Request& req, httplib::Response& res) {
    if (secure) res.set_header("Strict-Transport-Security", "max-age=31536000");
    res.set_header("Content-Security-Policy", kCsp);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cross-Origin-Opener-Policy", "same-origin");
    res.set_header("Cross-Origin-Resource-Policy", "same-origin");
    if (req.path.rfind("/api/", 0) == 0) res.set_header("Cache-Control", "no-store");
  });
  sv.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      const std::string what = res.status == 404   ? "no such page"
                               : res.status == 413 ? "the request is larger than 64 KiB"
                                                   : "HTTP " + std::to_string(res.status);
      res.set_content(json{{"error", what}}.dump(), "application/json");
    }
  });

  // The page.
  for (const ConsoleAsset& asset : ConsoleAssets()) {
    std::vector<std::string> paths = {asset.path};
    if (asset.path == "/index.html") paths.push_back("/");
    for (const std::string& path : paths) {
      sv.Get(path, [&asset](const httplib::Request&, httplib::Response& res) {
        res.set_content(std::string(asset.body), asset.content_type);
      });
    }
  }

  ConsoleAuth* auth = auth_;
  // A signed-in request, or an answer saying why not.
  const auto session = [auth](const httplib::Request& req, httplib::Response& res) {
    auto s = auth->Check(CookieToken(req));
    if (!s.ok()) SendError(res, s.status());
    return s;
  };
  // A signed-in request that changes something: CSRF token, JSON body, own origin.
  const auto change = [auth](const httplib::Request& req,
                             httplib::Response& res) -> Result<Session> {
    const std::string origin = req.get_header_value("Origin");
    const std::string host = req.get_header_value("Host");
    if (!origin.empty() && origin != "http://" + host && origin != "https://" + host) {
      Status st = Status::PermissionDenied("a request from another origin (" + origin + ")");
      SendError(res, st);
      return st;
    }
    if (req.method != "DELETE" &&
        req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
      Status st = Status::InvalidArgument("the body must be application/json");
      SendError(res, st);
      return st;
    }
    auto s = auth->CheckChange(CookieToken(req), req.get_header_value("X-CSRF-Token"));
    if (!s.ok()) SendError(res, s.status());
    return s;
  };
  const auto session_json = [](const Session& s) {
    return json{{"person", s.person}, {"role", RoleName(s.role)}, {"csrf", s.csrf}};
  };

  sv.Post("/api/session", [auth, secure, session_json](const httplib::Request& req,
                                                       httplib::Response& res) {
    if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
      return SendError(res, Status::InvalidArgument("the body must be application/json"));
    }
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("name") || !body["name"].is_string() ||
        !body.contains("password") || !body["password"].is_string()) {
      return SendError(res, Status::InvalidArgument("the body must be {\"name\", \"password\"}"));
    }
    auto s = auth->SignIn(body["name"].get<std::string>(), body["password"].get<std::string>());
    if (!s.ok()) {
      TL_LOG(WARNING) << "console: sign-in refused from " << req.remote_addr << ": "
                      << s.status().message();
      return SendError(res, s.status());
    }
    TL_LOG(INFO) << "console: " << s->person << " signed in from " << req.remote_addr;
    res.set_header("Set-Cookie", std::string(kCookie) + "=" + s->token +
                                     "; Path=/; HttpOnly; SameSite=Strict" +
                                     (secure ? "; Secure" : ""));
    SendJson(res, 200, session_json(*s));
  });
  sv.Get("/api/session",
         [session, session_json](const httplib::Request& req, httplib::Response& res) {
           auto s = session(req, res);
           if (s.ok()) SendJson(res, 200, session_json(*s));
         });
  sv.Delete("/api/session", [auth, change](const httplib::Request& req, httplib::Response& res) {
    auto s = change(req, res);
    if (!s.ok()) return;
    auth->SignOut(s->token);
    res.set_header("Set-Cookie",
                   std::string(kCookie) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    SendJson(res, 200, json{{"signed_out", s->person}});
  });

  ConsoleBackend b = backend_;
  sv.Get("/api/incidents", [b, session](const httplib::Request& req, httplib::Response& res) {
    if (!session(req, res).ok()) return;
    const std::string sev = req.get_param_value("severity");
    const int min_rank = sev.empty() ? 0 : SeverityRank(sev);
    if (min_rank < 0) {
      return SendError(res,
                       Status::InvalidArgument("severity is info, low, medium, high or critical"));
    }
    size_t limit = 200;
    if (req.has_param("limit")) {
      const std::string l = req.get_param_value("limit");
      if (l.empty() || l.size() > 4 || !std::all_of(l.begin(), l.end(), ::isdigit) ||
          std::stoul(l) == 0) {
        return SendError(res, Status::InvalidArgument("limit is 1 to 9999"));
      }
      limit = std::stoul(l);
    }
    // The response state: "awaiting" (an action waits for a decision), "acted" (one was
    // approved, executed or reverted), "none" (no action proposed).
    const std::string want_state = req.get_param_value("state");
    if (!want_state.empty() && want_state != "awaiting" && want_state != "acted" &&
        want_state != "none") {
      return SendError(res, Status::InvalidArgument("state is awaiting, acted or none"));
    }
    std::map<std::string, std::string> response_state;  // incident id -> awaiting|acted
    if (!want_state.empty()) {
      auto actions = b.response->ListActions(v1::ListActionsRequest());
      if (!actions.ok()) return SendError(res, actions.status());
      for (const v1::Action& a : *actions) {
        std::string& st = response_state[a.incident_id()];
        if (a.state() == v1::Action::STATE_PROPOSED) {
          st = "awaiting";
        } else if (st.empty() && a.state() != v1::Action::STATE_DENIED &&
                   a.state() != v1::Action::STATE_EXPIRED) {
          st = "acted";
        }
      }
    }
    const auto state_of = [&response_state](const std::string& id) {
      const auto it = response_state.find(id);
      return it == response_state.end() || it->second.empty() ? std::string("none") : it->second;
    };
    // Every incident, page by page, then most severe and newest first.
    std::vector<v1::Incident> found;
    v1::ListIncidentsRequest lr;
    lr.set_min_severity(static_cast<v1::Severity>(min_rank));
    for (int page = 0; page < 100; ++page) {
      v1::ListIncidentsResponse out;
      const grpc::Status st = b.query->DoListIncidents(lr, &out);
      if (!st.ok()) return SendError(res, FromGrpc(st));
      for (v1::Incident& in : *out.mutable_incidents()) {
        if (!Matches(in, req)) continue;
        if (!want_state.empty() && state_of(in.id()) != want_state) continue;
        found.push_back(std::move(in));
      }
      if (out.next_page_token().empty()) break;
      lr.set_page_token(out.next_page_token());
    }
    std::stable_sort(found.begin(), found.end(), [](const v1::Incident& x, const v1::Incident& y) {
      if (x.severity() != y.severity()) return x.severity() > y.severity();
      return x.last_seen_ns() > y.last_seen_ns();
    });
    json list = json::array();
    for (size_t i = 0; i < found.size() && i < limit; ++i) list.push_back(ToJson(found[i]));
    SendJson(res, 200, json{{"incidents", std::move(list)}, {"total", found.size()}});
  });
  sv.Get(R"(/api/incidents/([^/]+))",
         [b, session](const httplib::Request& req, httplib::Response& res) {
           if (!session(req, res).ok()) return;
           v1::GetIncidentRequest gr;
           gr.set_id(req.matches[1]);
           v1::Incident in;
           const grpc::Status st = b.query->DoGetIncident(gr, &in);
           if (!st.ok()) return SendError(res, FromGrpc(st));
           v1::ListActionsRequest ar;
           ar.set_incident_id(in.id());
           auto actions = b.response->ListActions(ar);
           if (!actions.ok()) return SendError(res, actions.status());
           json list = json::array();
           for (const v1::Action& a : *actions) list.push_back(ToJson(a));
           SendJson(res, 200, json{{"incident", ToJson(in)}, {"actions", std::move(list)}});
         });
  sv.Get("/api/actions", [b, session](const httplib::Request& req, httplib::Response& res) {
    if (!session(req, res).ok()) return;
    v1::ListActionsRequest ar;
    const std::string state = req.get_param_value("state");
    if (!state.empty()) {
      // "proposed", "revert-requested", ... as triplinectl says them.
      std::string name = "STATE_";
      for (char c : state) {
        name.push_back(c == '-' ? '_'
                                : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      }
      v1::Action::State st;
      if (state.size() > 32 || !v1::Action::State_Parse(name, &st)) {
        return SendError(res, Status::InvalidArgument("no action state '" + state + "'"));
      }
      ar.set_state(st);
    }
    auto actions = b.response->ListActions(ar);
    if (!actions.ok()) return SendError(res, actions.status());
    json list = json::array();
    for (const v1::Action& a : *actions) list.push_back(ToJson(a));
    SendJson(res, 200, json{{"actions", std::move(list)}});
  });
  sv.Get(R"(/api/actions/([^/]+)/trail)",
         [b, session](const httplib::Request& req, httplib::Response& res) {
           if (!session(req, res).ok()) return;
           v1::TrailRequest tr;
           tr.set_action_id(req.matches[1]);
           auto trail = b.response->TrailOf(tr);
           if (!trail.ok()) return SendError(res, trail.status());
           json list = json::array();
           for (const auto& e : *trail) list.push_back(ToJson(e));
           SendJson(res, 200, json{{"trail", std::move(list)}});
         });
  sv.Post(R"(/api/actions/([^/]+)/(approve|deny))", [b, change](const httplib::Request& req,
                                                                httplib::Response& res) {
    auto s = change(req, res);
    if (!s.ok()) return;
    if (s->role != ConsoleRole::kApprover) {
      return SendError(res, Status::PermissionDenied(s->person + " may read, not approve or deny"));
    }
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || (body.contains("reason") && !body["reason"].is_string())) {
      return SendError(res, Status::InvalidArgument("the body must be {\"reason\": \"...\"}"));
    }
    v1::DecideRequest dr;
    dr.set_id(req.matches[1]);
    dr.set_by(s->person);
    if (body.contains("reason")) dr.set_comment(body["reason"].get<std::string>());
    const bool approve = req.matches[2] == "approve";
    auto a = b.response->DecideAs(approve ? "Response.Approve" : "Response.Deny", s->person, dr);
    if (!a.ok()) return SendError(res, a.status());
    SendJson(res, 200, json{{"action", ToJson(*a)}});
  });
  sv.Get("/api/audit", [b, session](const httplib::Request& req, httplib::Response& res) {
    if (!session(req, res).ok()) return;
    if (b.audit == nullptr) return SendError(res, Status::Unsupported("no privilege audit here"));
    v1::GetAuditRequest ar;
    v1::AuditReport report;
    const grpc::Status st = b.audit->GetAudit(ar, &report);
    if (!st.ok()) return SendError(res, FromGrpc(st));
    SendJson(res, 200, ToJson(report));
  });
  sv.Get("/api/fleet", [b, session](const httplib::Request& req, httplib::Response& res) {
    if (!session(req, res).ok()) return;
    v1::Stats stats;
    const grpc::Status st = b.query->DoGetStats(&stats);
    if (!st.ok()) return SendError(res, FromGrpc(st));
    SendJson(res, 200, ToJson(stats));
  });
}

}  // namespace tripline::console
