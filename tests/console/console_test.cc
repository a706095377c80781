// The analyst console's sign-in, sessions and API: real RocksDB in a temp dir, the real
// query and response services, the real HTTP server on 127.0.0.1:0 and a real HTTP client.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sodium.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aggregator/console/console_auth.h"
#include "aggregator/console/console_server.h"
#include "aggregator/query/query_service.h"
#include "aggregator/response/action_book.h"
#include "aggregator/response/response_service.h"
#include "aggregator/store/rocksdb_store.h"
#include "common/clock.h"
#include "tests/aggregator/subprocess.h"
#include "tests/console/browser_driver.h"
#include "tests/support/temp_dir.h"

namespace tripline::console {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// A real Argon2id hash with libsodium's smallest limits: the same verification path as a
// production hash, without a quarter of a second and 256 MiB per test.
std::string QuickHash(const std::string& password) {
  EXPECT_GE(sodium_init(), 0);
  char out[crypto_pwhash_STRBYTES];
  EXPECT_EQ(crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_MIN,
                                  crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
            0);
  return out;
}

std::vector<ConsoleUser> Users() {
  return {{"alice", QuickHash("alice's secret"), ConsoleRole::kApprover},
          {"bob", QuickHash("bob's secret"), ConsoleRole::kOperator}};
}

TEST(ConsoleAuthTest, PasswordsAreArgon2idAndOnlyTheRightOneSignsIn) {
  const auto hash = HashPassword("correct horse");
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(hash->rfind("$argon2id$v=19$", 0), 0u) << *hash;
  EXPECT_TRUE(IsArgon2idHash(*hash));
  EXPECT_FALSE(IsArgon2idHash("$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"));
  EXPECT_FALSE(IsArgon2idHash("$2b$12$abcdefghijklmnopqrstuuJk0Ck3gS9C2b9dS3Lw2dS5l0m5nU8y."));
  EXPECT_FALSE(IsArgon2idHash("$argon2id$v=19$nonsense"));
  EXPECT_FALSE(IsArgon2idHash("correct horse"));
  EXPECT_FALSE(HashPassword("").ok());

  FakeClock clock;
  auto auth = ConsoleAuth::Create({{"carol", *hash, ConsoleRole::kApprover}}, {}, &clock);
  ASSERT_TRUE(auth.ok()) << auth.status().ToString();
  const auto wrong = (*auth)->SignIn("carol", "correct horse!");
  EXPECT_EQ(wrong.status().code(), Status::Code::kUnauthenticated);
  const auto unknown = (*auth)->SignIn("mallory", "correct horse");
  EXPECT_EQ(unknown.status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(wrong.status().message(), unknown.status().message());  // which names exist: untold
  const auto s = (*auth)->SignIn("carol", "correct horse");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->person, "carol");
  EXPECT_EQ(s->token.size(), 64u);
  EXPECT_EQ(s->csrf.size(), 64u);
  EXPECT_NE(s->token, s->csrf);
}

TEST(ConsoleAuthTest, BadConfigurationsAreRefused) {
  FakeClock clock;
  const std::string h = QuickHash("x");
  EXPECT_FALSE(ConsoleAuth::Create({{"", h, ConsoleRole::kOperator}}, {}, &clock).ok());
  EXPECT_FALSE(ConsoleAuth::Create(
                   {{"a", h, ConsoleRole::kOperator}, {"a", h, ConsoleRole::kApprover}}, {}, &clock)
                   .ok());
  EXPECT_FALSE(ConsoleAuth::Create({{"a\nb", h, ConsoleRole::kOperator}}, {}, &clock).ok());
  const auto plain = ConsoleAuth::Create({{"a", "hunter2", ConsoleRole::kOperator}}, {}, &clock);
  ASSERT_FALSE(plain.ok());
  EXPECT_THAT(plain.status().message(), HasSubstr("not an Argon2id hash"));
}

TEST(ConsoleAuthTest, SessionsEndWhenIdleAtTheirLimitAndAtSignOut) {
  FakeClock clock;
  SessionPolicy policy;
  policy.idle_ns = 600 * kNanosPerSecond;
  policy.max_ns = 3600 * kNanosPerSecond;
  auto auth = ConsoleAuth::Create(Users(), policy, &clock);
  ASSERT_TRUE(auth.ok());
  ConsoleAuth& a = **auth;

  auto s = a.SignIn("alice", "alice's secret");
  ASSERT_TRUE(s.ok());
  // Used every 5 minutes it lives until its hour is up, not one second more.
  for (int i = 0; i < 11; ++i) {
    clock.AdvanceNs(300 * kNanosPerSecond);
    ASSERT_TRUE(a.Check(s->token).ok()) << i;
  }
  clock.AdvanceNs(300 * kNanosPerSecond);
  EXPECT_EQ(a.Check(s->token).status().code(), Status::Code::kUnauthenticated);

  // Idle for the idle time: gone.
  s = a.SignIn("alice", "alice's secret");
  ASSERT_TRUE(s.ok());
  clock.AdvanceNs(600 * kNanosPerSecond);
  EXPECT_EQ(a.Check(s->token).status().code(), Status::Code::kUnauthenticated);

  // A change needs the session's CSRF token, exactly.
  s = a.SignIn("bob", "bob's secret");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(a.CheckChange(s->token, s->csrf).ok());
  EXPECT_EQ(a.CheckChange(s->token, "").status().code(), Status::Code::kPermissionDenied);
  std::string off = s->csrf;
  off.back() = off.back() == '0' ? '1' : '0';
  EXPECT_EQ(a.CheckChange(s->token, off).status().code(), Status::Code::kPermissionDenied);
  const auto other = a.SignIn("bob", "bob's secret");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(a.CheckChange(s->token, other->csrf).status().code(),
            Status::Code::kPermissionDenied);  // another session's token is stale here
  a.SignOut(s->token);
  EXPECT_EQ(a.Check(s->token).status().code(), Status::Code::kUnauthenticated);
  EXPECT_TRUE(a.Check(other->token).ok());
  EXPECT_EQ(a.Check("").status().code(), Status::Code::kUnauthenticated);
}

TEST(ConsoleAuthTest, RepeatedFailuresLockANameForAWhile) {
  FakeClock clock;
  SessionPolicy policy;
  policy.max_failures = 3;
  policy.lockout_ns = 60 * kNanosPerSecond;
  auto auth = ConsoleAuth::Create(Users(), policy, &clock);
  ASSERT_TRUE(auth.ok());
  for (int i = 0; i < 3; ++i) EXPECT_FALSE((*auth)->SignIn("alice", "guess").ok());
  // Locked: even the right password is refused, and says why.
  const auto locked = (*auth)->SignIn("alice", "alice's secret");
  EXPECT_EQ(locked.status().code(), Status::Code::kResourceExhausted);
  // Another name is not locked by alice's failures.
  EXPECT_TRUE((*auth)->SignIn("bob", "bob's secret").ok());
  clock.AdvanceNs(61 * kNanosPerSecond);
  EXPECT_TRUE((*auth)->SignIn("alice", "alice's secret").ok());
}

TEST(ConsoleAuthTest, BeyondTheLimitTheSessionIdleLongestEnds) {
  FakeClock clock;
  SessionPolicy policy;
  policy.max_sessions = 2;
  auto auth = ConsoleAuth::Create(Users(), policy, &clock);
  ASSERT_TRUE(auth.ok());
  auto s1 = (*auth)->SignIn("bob", "bob's secret");
  clock.AdvanceNs(kNanosPerSecond);
  auto s2 = (*auth)->SignIn("bob", "bob's secret");
  clock.AdvanceNs(kNanosPerSecond);
  ASSERT_TRUE((*auth)->Check(s1->token).ok());  // s2 is now the idlest
  clock.AdvanceNs(kNanosPerSecond);
  auto s3 = (*auth)->SignIn("bob", "bob's secret");
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ((*auth)->sessions(), 2u);
  EXPECT_TRUE((*auth)->Check(s1->token).ok());
  EXPECT_FALSE((*auth)->Check(s2->token).ok());
  EXPECT_TRUE((*auth)->Check(s3->token).ok());
}

// What an attacker may write into an incident: markup, quotes, bidi overrides, controls.
const char kHostileUser[] = "<script>window.__pwned=true</script>";
const char kHostileHost[] = "\"><img src=x onerror=\"window.__pwned=true;alert(1)\">";
const char kBidiHost[] = "srv\u202Egnp.exe\u0007";

class ConsoleServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RocksDbStoreOptions options;
    options.path = dir_.Sub("db");
    auto store = RocksDbStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    response::ResponsePolicy policy;
    book_ = std::make_unique<response::ActionBook>(store_->db(), store_->column_family("actions"),
                                                   policy, clock_);
    query_ = std::make_unique<QueryService>(store_.get(), nullptr);
    response_ = std::make_unique<response::ResponseService>(book_.get(), store_.get(), nullptr);
    SessionPolicy sp;
    sp.idle_ns = 600 * kNanosPerSecond;
    auto auth = ConsoleAuth::Create(Users(), sp, &clock_);
    ASSERT_TRUE(auth.ok());
    auth_ = std::move(*auth);

    // Two incidents: a critical chain with hostile values, and an older low one.
    v1::Incident crit;
    crit.set_id("inc-critical");
    crit.set_severity(v1::SEVERITY_CRITICAL);
    crit.set_title(std::string("Lateral movement by ") + kHostileUser);
    crit.add_hosts("hosta");
    crit.add_hosts(kHostileHost);
    crit.add_hosts(kBidiHost);
    crit.add_identities(std::string("user:") + kHostileUser);
    crit.add_techniques("T1021.004");
    crit.set_last_seen_ns(2000);
    crit.add_explanation(std::string("first login ever from 203.0.113.9 for ") + kHostileUser);
    v1::Hop* hop = crit.add_chain();
    hop->set_from("hosta");
    hop->set_to(kHostileHost);
    hop->set_user(kHostileUser);
    ASSERT_TRUE(PutIncident(*store_, crit).ok());
    v1::Incident low;
    low.set_id("inc-low");
    low.set_severity(v1::SEVERITY_LOW);
    low.set_title("Failed logins on hostc");
    low.add_hosts("hostc");
    low.set_last_seen_ns(3000);
    ASSERT_TRUE(PutIncident(*store_, low).ok());

    response::Proposal p;
    p.kind = v1::Action::KIND_LOCK_ACCOUNT;
    p.target = "hostb/aiops";
    p.incident_id = "inc-critical";
    p.reason = "brute-forced";
    p.by = "tripline";
    auto a = book_->Propose(p);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    action_id_ = a->id();

    ConsoleOptions co;
    co.listen = HostPort{"127.0.0.1", 0};
    auto server = ConsoleServer::Start(co, {query_.get(), response_.get(), nullptr}, auth_.get());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->address().port);
  }

  // Signs in; returns (cookie header, csrf).
  std::pair<std::string, std::string> SignIn(const std::string& name, const std::string& password) {
    auto r = client_->Post("/api/session", json{{"name", name}, {"password", password}}.dump(),
                           "application/json");
    EXPECT_TRUE(r);
    if (!r || r->status != 200) return {"", ""};
    const std::string cookie = r->get_header_value("Set-Cookie");
    EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
    EXPECT_THAT(cookie, HasSubstr("SameSite=Strict"));
    return {cookie.substr(0, cookie.find(';')), json::parse(r->body)["csrf"].get<std::string>()};
  }

  httplib::Result Approve(const std::string& cookie, const std::string& csrf,
                          const std::string& verb = "approve", const std::string& origin = "") {
    httplib::Headers h;
    if (!cookie.empty()) h.emplace("Cookie", cookie);
    if (!csrf.empty()) h.emplace("X-CSRF-Token", csrf);
    if (!origin.empty()) h.emplace("Origin", origin);
    return client_->Post(("/api/actions/" + action_id_ + "/" + verb).c_str(), h,
                         json{{"reason", "confirmed with the owner"}}.dump(), "application/json");
  }

  v1::Action::State ActionState() {
    auto list = book_->List(v1::Action::STATE_UNSPECIFIED, "");
    EXPECT_TRUE(list.ok());
    for (const auto& a : *list) {
      if (a.id() == action_id_) return a.state();
    }
    return v1::Action::STATE_UNSPECIFIED;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<response::ActionBook> book_;
  std::unique_ptr<QueryService> query_;
  std::unique_ptr<response::ResponseService> response_;
  std::unique_ptr<ConsoleAuth> auth_;
  std::unique_ptr<ConsoleServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::string action_id_;
};

TEST_F(ConsoleServerTest, EveryAnswerCarriesAStrictPolicyAndThePageIsServedFromTheBinary) {
  const auto [cookie, csrf] = SignIn("bob", "bob's secret");
  httplib::Headers h = {{"Cookie", cookie}};
  for (const char* path : {"/", "/index.html", "/app.js", "/app.css", "/api/session",
                           "/api/incidents", "/api/fleet", "/nowhere", "/api/incidents/none"}) {
    auto r = client_->Get(path, h);
    ASSERT_TRUE(r) << path;
    const std::string csp = r->get_header_value("Content-Security-Policy");
    EXPECT_THAT(csp, HasSubstr("default-src 'none'")) << path;
    EXPECT_THAT(csp, HasSubstr("script-src 'self'")) << path;
    EXPECT_THAT(csp, ::testing::Not(HasSubstr("unsafe-inline"))) << path;
    EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'")) << path;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    if (std::string(path).rfind("/api/", 0) == 0) {
      EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store") << path;
    }
  }
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page->body, HasSubstr("<script src=\"/app.js\" defer></script>"));
  // No inline script or style on the page: only the one script element, with a src.
  size_t scripts = 0;
  for (size_t at = page->body.find("<script"); at != std::string::npos;
       at = page->body.find("<script", at + 1)) {
    ++scripts;
  }
  EXPECT_EQ(scripts, 1u);
  EXPECT_EQ(page->body.find("style="), std::string::npos);
  EXPECT_EQ(page->body.find("<style"), std::string::npos);
  auto js = client_->Get("/app.js");
  ASSERT_TRUE(js);
  EXPECT_THAT(js->get_header_value("Content-Type"), HasSubstr("text/javascript"));
  EXPECT_EQ(js->body.find("innerHTML"), std::string::npos);  // values reach the page as text
  EXPECT_EQ(client_->Get("/nowhere")->status, 404);
  // A body past the limit is refused before any handler reads it.
  auto big = client_->Post("/api/session", std::string(65 * 1024, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_THAT(big->body, HasSubstr("64 KiB"));
}

TEST_F(ConsoleServerTest, WithoutASessionNothingIsAnsweredOrDecided) {
  for (const char* path : {"/api/session", "/api/incidents", "/api/incidents/inc-critical",
                           "/api/actions", "/api/fleet", "/api/audit"}) {
    auto r = client_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path;
    EXPECT_EQ(r->body.find("inc-critical\",\"severity"), std::string::npos) << path;
  }
  auto forged =
      client_->Get("/api/incidents", {{"Cookie", "tripline_session=" + std::string(64, 'a')}});
  EXPECT_EQ(forged->status, 401);
  auto r = Approve("", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(ActionState(), v1::Action::STATE_PROPOSED);
  // Wrong passwords and unknown names get the same answer.
  auto wrong = client_->Post("/api/session", json{{"name", "alice"}, {"password", "no"}}.dump(),
                             "application/json");
  auto unknown = client_->Post("/api/session", json{{"name", "eve"}, {"password", "no"}}.dump(),
                               "application/json");
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(unknown->status, 401);
  EXPECT_EQ(wrong->body, unknown->body);
  EXPECT_TRUE(wrong->get_header_value("Set-Cookie").empty());
  auto garbage = client_->Post("/api/session", "{\"name\": 3", "application/json");
  EXPECT_EQ(garbage->status, 400);
}

TEST_F(ConsoleServerTest, IncidentsComeMostSevereFirstFilteredAndWithHostileValuesIntact) {
  const auto [cookie, csrf] = SignIn("bob", "bob's secret");
  httplib::Headers h = {{"Cookie", cookie}};
  auto r = client_->Get("/api/incidents", h);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("application/json"));
  json j = json::parse(r->body);
  ASSERT_EQ(j["incidents"].size(), 2u);
  EXPECT_EQ(j["incidents"][0]["id"], "inc-critical");  // critical before the newer low one
  EXPECT_EQ(j["incidents"][1]["id"], "inc-low");
  // Hostile values arrive as the same strings, JSON-escaped, never as markup.
  EXPECT_EQ(j["incidents"][0]["hosts"][1], kHostileHost);
  EXPECT_EQ(j["incidents"][0]["hosts"][2], kBidiHost);
  EXPECT_EQ(j["incidents"][0]["chain"][0]["user"], kHostileUser);
  EXPECT_EQ(j["incidents"][0]["title"], std::string("Lateral movement by ") + kHostileUser);

  j = json::parse(client_->Get("/api/incidents?severity=high", h)->body);
  ASSERT_EQ(j["incidents"].size(), 1u);
  EXPECT_EQ(j["incidents"][0]["id"], "inc-critical");
  j = json::parse(client_->Get("/api/incidents?host=hostc", h)->body);
  ASSERT_EQ(j["incidents"].size(), 1u);
  EXPECT_EQ(j["incidents"][0]["id"], "inc-low");
  j = json::parse(client_->Get("/api/incidents?technique=T1021", h)->body);
  EXPECT_EQ(j["incidents"].size(), 1u);
  j = json::parse(client_->Get("/api/incidents?q=203.0.113.9", h)->body);
  EXPECT_EQ(j["incidents"].size(), 1u);
  // By the state of their response: the critical one has a proposal waiting.
  j = json::parse(client_->Get("/api/incidents?state=awaiting", h)->body);
  ASSERT_EQ(j["incidents"].size(), 1u);
  EXPECT_EQ(j["incidents"][0]["id"], "inc-critical");
  j = json::parse(client_->Get("/api/incidents?state=none", h)->body);
  ASSERT_EQ(j["incidents"].size(), 1u);
  EXPECT_EQ(j["incidents"][0]["id"], "inc-low");
  EXPECT_EQ(json::parse(client_->Get("/api/incidents?state=acted", h)->body)["incidents"].size(),
            0u);
  EXPECT_EQ(client_->Get("/api/incidents?state=open", h)->status, 400);
  EXPECT_EQ(client_->Get("/api/incidents?severity=dire", h)->status, 400);
  EXPECT_EQ(client_->Get("/api/incidents?limit=-1", h)->status, 400);

  r = client_->Get("/api/incidents/inc-critical", h);
  ASSERT_EQ(r->status, 200);
  j = json::parse(r->body);
  EXPECT_EQ(j["incident"]["explanation"][0],
            std::string("first login ever from 203.0.113.9 for ") + kHostileUser);
  ASSERT_EQ(j["actions"].size(), 1u);
  EXPECT_EQ(j["actions"][0]["id"], action_id_);
  EXPECT_EQ(j["actions"][0]["state"], "STATE_PROPOSED");
  EXPECT_EQ(client_->Get("/api/incidents/inc-nothing", h)->status, 404);
  j = json::parse(client_->Get("/api/actions?state=proposed", h)->body);
  EXPECT_EQ(j["actions"].size(), 1u);
  EXPECT_EQ(client_->Get("/api/actions?state=bogus", h)->status, 400);
}

TEST_F(ConsoleServerTest, AnApprovalNeedsTheSessionsCsrfTokenAndIsRecordedAsThePerson) {
  const auto [bob_cookie, bob_csrf] = SignIn("bob", "bob's secret");
  const auto [cookie, csrf] = SignIn("alice", "alice's secret");
  ASSERT_FALSE(cookie.empty());
  // Without the token, with another session's, from another origin, as an operator.
  EXPECT_EQ(Approve(cookie, "")->status, 403);
  EXPECT_EQ(Approve(cookie, bob_csrf)->status, 403);
  EXPECT_EQ(Approve(cookie, csrf, "approve", "http://evil.example")->status, 403);
  auto as_operator = Approve(bob_cookie, bob_csrf);
  EXPECT_EQ(as_operator->status, 403);
  EXPECT_THAT(as_operator->body, HasSubstr("may read"));
  // Not JSON: refused (a form post from elsewhere cannot send application/json).
  httplib::Headers h = {{"Cookie", cookie}, {"X-CSRF-Token", csrf}};
  EXPECT_EQ(client_
                ->Post(("/api/actions/" + action_id_ + "/approve").c_str(), h, "reason=x",
                       "application/x-www-form-urlencoded")
                ->status,
            400);
  EXPECT_EQ(ActionState(), v1::Action::STATE_PROPOSED);

  auto r = Approve(cookie, csrf, "approve",
                   "http://127.0.0.1:" + std::to_string(server_->address().port));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(ActionState(), v1::Action::STATE_APPROVED);
  // The trail says who, as the person signed in, with the reason.
  auto trail =
      client_->Get(("/api/actions/" + action_id_ + "/trail").c_str(), {{"Cookie", cookie}});
  ASSERT_EQ(trail->status, 200);
  const json t = json::parse(trail->body)["trail"];
  bool approved = false;
  for (const json& e : t) {
    if (e["step"] == "approved") {
      approved = true;
      EXPECT_EQ(e["by"], "alice");
      EXPECT_THAT(e["what"].get<std::string>(), HasSubstr("confirmed with the owner"));
    }
  }
  EXPECT_TRUE(approved) << t.dump();
  // Decided once: a second decision is refused by the workflow, not by the console.
  EXPECT_EQ(Approve(cookie, csrf, "deny")->status, 409);

  // Signed out, the same cookie and token decide nothing.
  httplib::Headers out = {{"Cookie", cookie}, {"X-CSRF-Token", csrf}};
  EXPECT_EQ(client_->Delete("/api/session", out)->status, 200);
  EXPECT_EQ(client_->Get("/api/incidents", {{"Cookie", cookie}})->status, 401);
}

TEST_F(ConsoleServerTest, AnExpiredSessionDecidesNothing) {
  const auto [cookie, csrf] = SignIn("alice", "alice's secret");
  clock_.AdvanceNs(601 * kNanosPerSecond);
  auto r = Approve(cookie, csrf);
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->body, HasSubstr("expired"));
  EXPECT_EQ(ActionState(), v1::Action::STATE_PROPOSED);
}

// Every page of the console in a real browser, with incidents whose every field an attacker
// wrote: nothing runs, nothing becomes markup, the values are shown as the text they are.
TEST_F(ConsoleServerTest, HostileValuesStayTextOnEveryPageOfARealBrowser) {
  const std::string url = "http://127.0.0.1:" + std::to_string(server_->address().port) + "/";
  auto r = console_test::RunConsoleBrowser(
      {"--url", url, "--name", "alice", "--password", "alice's secret", "--hostile"},
      console_test::ArtifactsDir("hostile"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const json& out = *r;
  SCOPED_TRACE(out.dump(2));
  EXPECT_EQ(out.value("pwned", true), false);
  EXPECT_EQ(out.value("injected_elements", -1), 0);
  EXPECT_TRUE(out["dialogs"].empty());
  EXPECT_EQ(out.value("csp_violations", -1), 0);
  EXPECT_TRUE(out["console_errors"].empty());
  ASSERT_EQ(out["incident_rows"].size(), 2u);
  // Shown as written: the markup as text, the bidi override and the bell as code points.
  const json& cells = out["incident_rows"][0]["cells"];
  EXPECT_EQ(cells[1], std::string("Lateral movement by ") + kHostileUser);
  EXPECT_THAT(cells[2].get<std::string>(), HasSubstr(kHostileHost));
  EXPECT_THAT(cells[2].get<std::string>(), HasSubstr("srv\\u202egnp.exe\\u0007"));
  EXPECT_EQ(out.value("after_sign_out", 0), 401);
}

TEST(ConsoleListenerTest, OnlyLoopbackInClearTextAndTlsServesTheSameConsole) {
  FakeClock clock;
  testing::TempDir dir;
  RocksDbStoreOptions options;
  options.path = dir.Sub("db");
  auto store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok());
  response::ActionBook book((*store)->db(), (*store)->column_family("actions"), {}, clock);
  QueryService query(store->get(), nullptr);
  response::ResponseService response(&book, store->get(), nullptr);
  auto auth = ConsoleAuth::Create(Users(), {}, &clock);
  ASSERT_TRUE(auth.ok());

  ConsoleOptions co;
  co.listen = HostPort{"0.0.0.0", 0};
  auto refused = ConsoleServer::Start(co, {&query, &response, nullptr}, auth->get());
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("tls_cert_file"));

  // A self-signed certificate for 127.0.0.1, made by openssl.
  const std::string cert = dir.Sub("console.crt"), key = dir.Sub("console.key");
  const auto made = tripline::testing::RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
       "-keyout", key, "-out", cert});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  co.listen = HostPort{"127.0.0.1", 0};
  co.tls_cert_file = cert;
  co.tls_key_file = dir.Sub("missing.key");
  EXPECT_FALSE(ConsoleServer::Start(co, {&query, &response, nullptr}, auth->get()).ok());
  co.tls_key_file = key;
  auto server = ConsoleServer::Start(co, {&query, &response, nullptr}, auth->get());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_TRUE((*server)->tls());
  httplib::SSLClient client("127.0.0.1", (*server)->address().port);
  client.set_ca_cert_path(cert.c_str());
  client.enable_server_certificate_verification(true);
  auto r =
      client.Post("/api/session", json{{"name", "alice"}, {"password", "alice's secret"}}.dump(),
                  "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->get_header_value("Set-Cookie"), HasSubstr("; Secure"));
  EXPECT_THAT(r->get_header_value("Strict-Transport-Security"), HasSubstr("max-age="));
  // Clear text to the TLS port gets no console.
  httplib::Client plain("127.0.0.1", (*server)->address().port);
  auto p = plain.Get("/");
  EXPECT_TRUE(!p || p->status != 200);
}

}  // namespace
}  // namespace tripline::console

namespace tripline::console {
namespace {

// The real tripline-aggregator: --hash-password, --console with configured people, and the
// refusals a person configuring it meets.
TEST(ConsoleProcessTest, TheAggregatorServesTheConsoleItsConfigurationNames) {
  testing::TempDir dir;
  const std::string bin = std::string(TRIPLINE_BIN_DIR) + "/tripline-aggregator";
  lab::SpawnOptions hash;
  hash.argv = {bin, "--hash-password"};
  hash.stdin_data = "a long console password\n";
  auto hashed = lab::Subprocess::Run(hash, std::chrono::seconds(60));
  ASSERT_TRUE(hashed.ok()) << hashed.status().ToString();
  ASSERT_EQ(hashed->exit_code, 0) << hashed->err;
  std::string h = hashed->out;
  while (!h.empty() && h.back() == '\n') h.pop_back();
  EXPECT_TRUE(IsArgon2idHash(h)) << h;

  const std::string conf = dir.Sub("aggregator.conf");
  const auto write = [&](const std::string& text) {
    FILE* f = std::fopen(conf.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  const auto refused = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {bin,           "--listen", "127.0.0.1:0", "--data-dir",
                                     dir.Sub("db"), "--config", conf};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = lab::Subprocess::Run(argv, std::chrono::seconds(30));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : lab::RunResult{};
  };
  write("console { users { name: \"carol\" password_hash: \"hunter2\" } }\n");
  auto r = refused({"--console", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not an Argon2id hash"));
  write("console { users { name: \"carol\" password_hash: \"" + h + "\" role: \"admin\" } }\n");
  r = refused({"--console", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not approver or operator"));
  write("console { users { name: \"carol\" password_hash: \"" + h + "\" role: \"approver\" } }\n");
  r = refused({"--console", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("tls_cert_file"));

  lab::SpawnOptions run;
  run.argv = {bin,        "--listen", "127.0.0.1:0", "--data-dir", dir.Sub("db"),
              "--config", conf,       "--console",   "127.0.0.1:0"};
  run.stderr_options.capture = false;
  run.stderr_options.log_path = dir.Sub("aggregator.log");
  auto proc = lab::Subprocess::Spawn(std::move(run));
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  auto line =
      proc->ReadLineUntil(lab::OutputStream::kStdout, lab::ContainsText("console on http://"),
                          lab::DeadlineIn(std::chrono::seconds(30)));
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  const std::string url = line->substr(line->find("http://") + 7);
  const size_t colon = url.rfind(':');
  httplib::Client client(url.substr(0, colon), std::stoi(url.substr(colon + 1)));
  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto signed_in = client.Post(
      "/api/session", json{{"name", "carol"}, {"password", "a long console password"}}.dump(),
      "application/json");
  ASSERT_TRUE(signed_in);
  EXPECT_EQ(signed_in->status, 200) << signed_in->body;
  EXPECT_EQ(json::parse(signed_in->body).value("role", ""), "approver");
  auto ended = proc->Terminate(std::chrono::seconds(30));
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  EXPECT_EQ(*ended, 0);
}

}  // namespace
}  // namespace tripline::console
