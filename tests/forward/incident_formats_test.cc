// The forwarding formats byte for byte: CEF's escapes as ArcSight documents them, the
// RFC 5424 header and RFC 6587 framing, the OCSF and ECS fields, and hostile values that
// try to forge a field or a record in each form.
#include "aggregator/forward/incident_formats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tests/forward/forward_test_support.h"

namespace tripline::forward {
namespace {

using testing::HostileIncident;
using testing::StoryIncident;

TEST(CefEscapeTest, HeaderEscapesBackslashPipeAndLineBreaks) {
  EXPECT_EQ(EscapeCefHeader(R"(a\b|c)"), R"(a\\b\|c)");
  EXPECT_EQ(EscapeCefHeader("x=y"), "x=y");  // = is not special in the header
  EXPECT_EQ(EscapeCefHeader("l1\nl2\rl3"), R"(l1\nl2\rl3)");
}

TEST(CefEscapeTest, ExtensionEscapesBackslashEqualsAndLineBreaks) {
  EXPECT_EQ(EscapeCefExtension(R"(a\b=c|d)"), R"(a\\b\=c|d)");  // | is not special here
  EXPECT_EQ(EscapeCefExtension("l1\r\nl2"), R"(l1\r\nl2)");
  EXPECT_EQ(EscapeCefExtension("k=v x=y"), R"(k\=v x\=y)");
}

TEST(CefEscapeTest, ControlsAndInvalidUtf8BecomeReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(EscapeCefExtension(std::string("a\0b", 3)), "a" + fffd + "b");
  EXPECT_EQ(EscapeCefExtension("t\tb\x1b[31m\x7f"), "t" + fffd + "b" + fffd + "[31m" + fffd);
  EXPECT_EQ(EscapeCefExtension("\xC2\x85nel"), fffd + "nel");                // C1 NEL
  EXPECT_EQ(EscapeCefExtension("bad\xff\xc3("), "bad" + fffd + fffd + "(");  // invalid
  EXPECT_EQ(EscapeCefExtension("\xED\xA0\x80"), fffd + fffd + fffd);         // a surrogate
  EXPECT_EQ(EscapeCefExtension("caf\xC3\xA9 \xE2\x86\x92"), "caf\xC3\xA9 \xE2\x86\x92");
}

TEST(CefTest, StoryIncidentByteForByte) {
  const Incident incident = StoryIncident();
  EXPECT_EQ(FormatCef(incident),
            "CEF:0|Tripline|Tripline|1|incident|Account alice compromised, brute-forced, moving "
            "laterally hosta \xE2\x86\x92 hostb \xE2\x86\x92 hostc|10|externalId=inc-"
            "0123456789abcdef0123456789abcdef cn1=3 cn1Label=revision rt=1795578075000 "
            "start=1795578060000 end=1795578072000 cat=lateral-movement suser=alice "
            "duser=alice shost=hosta dhost=hostc cfp1=0.95 cfp1Label=confidence cnt=2 "
            "cs1=[\"hosta\",\"hostb\",\"hostc\"] cs1Label=hosts "
            "cs2=[\"T1021.004\",\"T1110.001\"] cs2Label=techniques "
            "cs3=[\"user:alice\",\"host:hosta\",\"source:203.0.113.9\"] cs3Label=identities "
            "cs4=[{\"from\":\"hosta\",\"to\":\"hostb\",\"user\":\"alice\",\"from_user\":\"alice\","
            "\"port\":22,\"at\":\"2026-11-25T03:41:10.000Z\"},{\"from\":\"hostb\",\"to\":\"hostc\","
            "\"user\":\"alice\",\"from_user\":\"alice\",\"port\":22,\"at\":\"2026-11-25T03:41:12."
            "000Z\"}] cs4Label=chain cs5=[\"203.0.113.9\"] cs5Label=sources "
            "cs6=[\"hosta 2026-11-25T03:41:00.000Z login: failed ssh login for alice from "
            "203.0.113.9\",\"hosta 2026-11-25T03:41:05.000Z file_open: cat read /etc/shadow\"] "
            "cs6Label=evidence msg=alice failed, then logged in. Then moved on.");
}

TEST(SyslogTest, HeaderAndFraming) {
  const Incident incident = StoryIncident();
  const std::string message = FormatSyslog(incident, "agg 1\n");
  // Facility 4 (auth) * 8 + severity 2 (crit) for a critical incident.
  EXPECT_EQ(
      message.rfind("<34>1 2026-11-25T03:41:15.000000Z agg_1_ tripline - incident - CEF:0|", 0), 0u)
      << message;
  const std::string framed = FrameOctetCounting(message);
  EXPECT_EQ(framed, std::to_string(message.size()) + " " + message);
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

// The hostile incident's values, each trying to forge something, as they come out.
TEST(CefTest, HostileValuesForgeNothing) {
  const std::string cef = FormatCef(HostileIncident());
  // One line; the first seven unescaped '|' end the header fields as written (a '|' in
  // the extension needs no escape: a parser stops splitting after the seventh).
  EXPECT_EQ(cef.find('\n'), std::string::npos);
  EXPECT_EQ(cef.find('\r'), std::string::npos);
  std::vector<std::string> header;
  size_t field_start = 0;
  for (size_t i = 0; i < cef.size() && header.size() < 7; ++i) {
    if (cef[i] == '\\') {
      ++i;
    } else if (cef[i] == '|') {
      header.push_back(cef.substr(field_start, i - field_start));
      field_start = i + 1;
    }
  }
  ASSERT_EQ(header.size(), 7u);
  EXPECT_EQ(header[4], "incident");
  EXPECT_EQ(header[5], R"(evil\|10\|x\\ \nCEF:0\|forged)");
  EXPECT_EQ(header[6], "10");
  EXPECT_EQ(cef.substr(field_start, 11), "externalId=");
  // The title's "|" and "\" escaped in the header; its line break written as \n.
  EXPECT_NE(cef.find(R"(|evil\|10\|x\\ \nCEF:0\|forged|)"), std::string::npos) << cef;
  // A user trying to add an extension key: its "=" escaped, so it stays in suser.
  EXPECT_NE(cef.find(R"( suser=mallory act\=allowed dst\=1.2.3.4 \r\n<13>1 - )"), std::string::npos)
      << cef;
  // Every unescaped '=' belongs to a key we wrote.
  std::vector<std::string> keys;
  for (size_t i = 0; i < cef.size(); ++i) {
    if (cef[i] == '\\') {
      ++i;
      continue;
    }
    if (cef[i] != '=') continue;
    const size_t start = cef.rfind(' ', i) + 1;
    const size_t bar = cef.rfind('|', i);
    keys.push_back(cef.substr(std::max(start, bar == std::string::npos ? 0 : bar + 1),
                              i - std::max(start, bar == std::string::npos ? 0 : bar + 1)));
  }
  const std::vector<std::string> expected = {
      "externalId", "cn1",      "cn1Label", "rt",       "start",    "end",       "cat",
      "suser",      "duser",    "shost",    "dhost",    "cfp1",     "cfp1Label", "cnt",
      "cs1",        "cs1Label", "cs2",      "cs2Label", "cs3",      "cs3Label",  "cs4",
      "cs4Label",   "cs5",      "cs5Label", "cs6",      "cs6Label", "msg"};
  EXPECT_EQ(keys, expected) << cef;
  // Control bytes and invalid UTF-8 are replaced, never passed on.
  EXPECT_EQ(cef.find('\x1b'), std::string::npos);
  EXPECT_EQ(cef.find('\0'), std::string::npos);
  EXPECT_EQ(cef.find('\xff'), std::string::npos);
}

TEST(OcsfTest, DetectionFindingFields) {
  const nlohmann::ordered_json j = ToOcsf(StoryIncident());
  EXPECT_EQ(j["class_uid"], 2004);
  EXPECT_EQ(j["category_uid"], 2);
  EXPECT_EQ(j["activity_id"], 2);  // revision 3: an update
  EXPECT_EQ(j["type_uid"], 200402);
  EXPECT_EQ(j["severity_id"], 5);
  EXPECT_EQ(j["severity"], "Critical");
  EXPECT_EQ(j["time"], 1795578075000);
  EXPECT_EQ(j["confidence_score"], 95);
  EXPECT_EQ(j["metadata"]["version"], "1.1.0");
  EXPECT_EQ(j["metadata"]["product"]["name"], "Tripline");
  EXPECT_EQ(j["metadata"]["uid"], "inc-0123456789abcdef0123456789abcdef:3");
  EXPECT_EQ(j["finding_info"]["uid"], "inc-0123456789abcdef0123456789abcdef");
  EXPECT_EQ(j["finding_info"]["title"], StoryIncident().title);
  EXPECT_EQ(j["finding_info"]["first_seen_time"], 1795578060000);
  EXPECT_EQ(j["finding_info"]["last_seen_time"], 1795578072000);
  const auto& attacks = j["finding_info"]["attacks"];
  ASSERT_EQ(attacks.size(), 2u);
  EXPECT_EQ(attacks[0]["technique"]["uid"], "T1021.004");
  EXPECT_EQ(attacks[0]["technique"]["name"], "Remote Services: SSH");
  EXPECT_EQ(attacks[0]["tactic"]["uid"], "TA0008");
  EXPECT_EQ(attacks[1]["tactic"]["name"], "Credential Access");
  const auto& resources = j["resources"];
  ASSERT_EQ(resources.size(), 4u);
  EXPECT_EQ(resources[0], (nlohmann::ordered_json{{"type", "host"}, {"name", "hosta"}}));
  EXPECT_EQ(resources[3], (nlohmann::ordered_json{{"type", "user"}, {"name", "alice"}}));
  ASSERT_EQ(j["finding_info"]["related_events"].size(), 2u);
  EXPECT_EQ(j["finding_info"]["related_events"][1]["desc"], "cat read /etc/shadow");
  EXPECT_EQ(j["finding_info"]["related_events"][1]["uid"], "sensor-hosta:2");
  ASSERT_EQ(j["evidences"].size(), 3u);
  EXPECT_EQ(j["evidences"][1]["dst_endpoint"]["hostname"], "hostc");
  EXPECT_EQ(j["evidences"][2]["src_endpoint"]["ip"], "203.0.113.9");
}

TEST(EcsTest, AlertFields) {
  const nlohmann::ordered_json j = ToEcs(StoryIncident());
  EXPECT_EQ(j["@timestamp"], "2026-11-25T03:41:15.000Z");
  EXPECT_EQ(j["event"]["kind"], "alert");
  EXPECT_EQ(j["event"]["id"], "inc-0123456789abcdef0123456789abcdef");
  EXPECT_EQ(j["event"]["sequence"], 3);
  EXPECT_EQ(j["threat"]["framework"], "MITRE ATT&CK");
  EXPECT_EQ(j["threat"]["technique"]["id"], (nlohmann::ordered_json{"T1021.004", "T1110.001"}));
  EXPECT_EQ(j["threat"]["tactic"]["id"], (nlohmann::ordered_json{"TA0008", "TA0006"}));
  EXPECT_EQ(j["related"]["hosts"], (nlohmann::ordered_json{"hosta", "hostb", "hostc"}));
  EXPECT_EQ(j["user"]["name"], "alice");
  EXPECT_EQ(j["tripline"]["incident"]["chain"].size(), 2u);
}

// JSON lines: a hostile value stays inside its string, and each record is one line.
TEST(JsonFormsTest, HostileValuesStayInsideTheirStrings) {
  const Incident hostile = HostileIncident();
  for (const std::string& line : {JsonLine(ToOcsf(hostile)), JsonLine(ToEcs(hostile)),
                                  HecEvent(hostile, "agg"), BulkIndexLines(hostile, "")}) {
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    size_t lines = 0;
    size_t start = 0;
    for (size_t nl = line.find('\n'); nl != std::string::npos; nl = line.find('\n', start)) {
      const auto parsed =
          nlohmann::json::parse(line.substr(start, nl - start), nullptr, /*exceptions=*/false);
      EXPECT_FALSE(parsed.is_discarded()) << line.substr(start, nl - start);
      ++lines;
      start = nl + 1;
    }
    EXPECT_GE(lines, 1u);
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_EQ(line.find('\x1b'), std::string::npos);
  }
  const auto ocsf = nlohmann::json::parse(JsonLine(ToOcsf(hostile)));
  // The value comes back exactly (invalid UTF-8 aside, replaced with U+FFFD).
  EXPECT_EQ(ocsf["message"], "evil|10|x\\ \nCEF:0|forged");
  EXPECT_EQ(ocsf["resources"][3]["name"],
            "mallory act=allowed dst=1.2.3.4 \r\n<13>1 - \"},{\"type\":\"user\"");
  EXPECT_EQ(ocsf["finding_info"]["related_events"][0]["desc"],
            "cat \x1b[2J\"\\\n{\"class_uid\":1} \xEF\xBF\xBD");
}

TEST(BulkTest, ActionCarriesIdVersionAndIndex) {
  const std::string lines = BulkIndexLines(StoryIncident(), "tripline-incidents");
  const size_t nl = lines.find('\n');
  EXPECT_EQ(lines.substr(0, nl),
            R"({"index":{"_id":"inc-0123456789abcdef0123456789abcdef","version":3,)"
            R"("version_type":"external","_index":"tripline-incidents"}})");
  EXPECT_EQ(nlohmann::json::parse(lines.substr(nl + 1))["event"]["kind"], "alert");
}

TEST(HecTest, EnvelopeHasTimeHostSourceAndOcsfEvent) {
  const auto j = nlohmann::json::parse(HecEvent(StoryIncident(), "agg-1"));
  EXPECT_DOUBLE_EQ(j["time"].get<double>(), 1795578075.0);
  EXPECT_EQ(j["host"], "agg-1");
  EXPECT_EQ(j["source"], "tripline");
  EXPECT_EQ(j["sourcetype"], "tripline:incident:ocsf");
  EXPECT_EQ(j["event"]["class_uid"], 2004);
}

// Audit events: a response step and a trust decision.

TEST(AuditFormatsTest, CefOfAResponseStepByteForByte) {
  EXPECT_EQ(FormatCef(testing::ApprovalEvent()),
            "CEF:0|Tripline|Tripline|1|audit|approved: lock account hostb/alice|3|"
            "externalId=response-12 rt=1795578120000 cat=response act=approved suser=bob cn1=12 "
            "cn1Label=sequence cs1=a0123456789abcdef cs1Label=action cs2=lock account "
            "cs2Label=actionKind cs3=hostb/alice cs3Label=target "
            "cs4=inc-0123456789abcdef0123456789abcdef cs4Label=incident dhost=hostb duser=alice "
            "msg=approved: confirmed with the owner; valid until 2026-11-25T03:57:00.000Z");
  EXPECT_EQ(FormatCef(testing::PromotionEvent()),
            "CEF:0|Tripline|Tripline|1|audit|promoted to trusted: agent aiops|3|"
            "externalId=trust-3 rt=1795578180000 cat=agent-trust act=promoted suser=carol cn1=3 "
            "cn1Label=sequence duser=aiops cs1=trusted cs1Label=trustLevel "
            "msg=reviewed its runbooks");
  // A blocked address is the action's address, not a user.
  v1::AuditEvent block = testing::ApprovalEvent();
  block.set_action_kind(v1::Action::KIND_BLOCK_ADDRESS);
  block.set_target("hostb/203.0.113.9");
  block.set_subject("203.0.113.9");
  const std::string cef = FormatCef(block);
  EXPECT_NE(cef.find(" cs5=203.0.113.9 cs5Label=address "), std::string::npos) << cef;
  EXPECT_EQ(cef.find("duser="), std::string::npos) << cef;
}

TEST(AuditFormatsTest, SyslogIsLogAuditNotice) {
  const std::string m = FormatSyslog(testing::ApprovalEvent(), "agg 1");
  EXPECT_EQ(m.rfind("<109>1 2026-11-25T03:42:00.000000Z agg_1 tripline - audit - CEF:0|", 0), 0u)
      << m;
}

TEST(AuditFormatsTest, HostileValuesForgeNoFieldOrRecord) {
  const v1::AuditEvent e = testing::HostileAuditEvent();
  const std::string cef = FormatCef(e);
  EXPECT_EQ(cef.find('\n'), std::string::npos);
  EXPECT_EQ(cef.find('\r'), std::string::npos);
  // Header: seven fields up to the seventh unescaped separator, the agent's | escaped in
  // the name; the extension after it.
  std::vector<std::string> header(1);
  size_t i = 0;
  for (; i < cef.size() && header.size() < 8; ++i) {
    if (cef[i] == '\\') {
      header.back() += cef.substr(i, 2);
      ++i;
    } else if (cef[i] == '|') {
      header.emplace_back();
    } else {
      header.back() += cef[i];
    }
  }
  ASSERT_EQ(header.size(), 8u) << cef;
  EXPECT_EQ(header[4], "audit");
  EXPECT_EQ(header[5], EscapeCefHeader(AuditTitle(e)));
  EXPECT_EQ(header[6], "3");
  // Extension: every key is one Tripline writes, in its order.
  const std::string ext = cef.substr(i);
  std::vector<std::string> keys;
  for (size_t i = 0; i < ext.size(); ++i) {
    if (ext[i] == '\\') {
      ++i;
      continue;
    }
    if (ext[i] != '=') continue;
    size_t k = i;
    while (k > 0 && ext[k - 1] != ' ') --k;
    keys.push_back(ext.substr(k, i - k));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"externalId", "rt", "cat", "act", "suser", "cn1",
                                            "cn1Label", "duser", "cs1", "cs1Label", "msg"}))
      << cef;
  EXPECT_NE(cef.find(R"(suser=mallory suser\=root )"), std::string::npos) << cef;
  EXPECT_NE(cef.find(R"(msg=ok\n<13>1 - forged\r\nCEF:0|x|y|1|audit|forged|10|)"),
            std::string::npos)
      << cef;
  // The JSON forms keep every value whole, inside its string.
  for (const std::string& line : {JsonLine(ToOcsf(e)), JsonLine(ToEcs(e)), HecEvent(e, "agg")}) {
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;  // one record, one line
    EXPECT_EQ(line.find('\r'), std::string::npos);
  }
  const std::string bulk = BulkIndexLines(e, "");
  EXPECT_EQ(std::count(bulk.begin(), bulk.end(), '\n'), 2) << bulk;  // action and document
  const auto ocsf = nlohmann::json::parse(JsonLine(ToOcsf(e)));
  EXPECT_EQ(ocsf["entity"]["name"], e.agent());
  EXPECT_EQ(ocsf["actor"]["user"]["name"], e.by());
  EXPECT_EQ(ocsf["comment"], e.reason());
  const auto ecs = nlohmann::json::parse(JsonLine(ToEcs(e)));
  EXPECT_EQ(ecs["user"]["target"]["name"], e.agent());
  EXPECT_EQ(ecs["tripline"]["audit"]["reason"], e.reason());
}

TEST(AuditFormatsTest, OcsfEntityManagementFields) {
  const auto a = ToOcsf(testing::ApprovalEvent());
  EXPECT_EQ(a["class_uid"], 3004);
  EXPECT_EQ(a["category_uid"], 3);
  EXPECT_EQ(a["activity_id"], 3);
  EXPECT_EQ(a["type_uid"], 300403);
  EXPECT_EQ(a["time"], 1795578120000);
  EXPECT_EQ(a["message"], "approved: lock account hostb/alice");
  EXPECT_EQ(a["actor"]["user"]["name"], "bob");
  EXPECT_EQ(a["entity"]["uid"], "a0123456789abcdef");
  EXPECT_EQ(a["entity"]["type"], "response action");
  EXPECT_EQ(a["entity"]["data"]["target"], "hostb/alice");
  EXPECT_EQ(a["entity"]["data"]["incident_id"], "inc-0123456789abcdef0123456789abcdef");
  EXPECT_EQ(a["metadata"]["uid"], "response-12");
  EXPECT_EQ(a["metadata"]["correlation_uid"], "inc-0123456789abcdef0123456789abcdef");
  EXPECT_EQ(a["unmapped"]["step"], "approved");
  v1::AuditEvent proposed = testing::ApprovalEvent();
  proposed.set_step("proposed");
  EXPECT_EQ(ToOcsf(proposed)["type_uid"], 300401);
  const auto t = ToOcsf(testing::PromotionEvent());
  EXPECT_EQ(t["entity"]["type"], "agent trust level");
  EXPECT_EQ(t["entity"]["data"]["level"], "trusted");
  EXPECT_EQ(t["comment"], "reviewed its runbooks");
}

TEST(AuditFormatsTest, EcsHecAndBulkForms) {
  const auto e = ToEcs(testing::ApprovalEvent());
  EXPECT_EQ(e["event"]["kind"], "event");
  EXPECT_EQ(e["event"]["action"], "response-approved");
  EXPECT_EQ(e["event"]["dataset"], "tripline.audit");
  EXPECT_EQ(e["event"]["id"], "response-12");
  EXPECT_EQ(e["user"]["name"], "bob");
  EXPECT_EQ(e["user"]["target"]["name"], "alice");
  EXPECT_EQ(e["host"]["name"], "hostb");
  EXPECT_EQ(e["tripline"]["audit"]["action"]["kind"], "lock account");
  const auto t = ToEcs(testing::PromotionEvent());
  EXPECT_EQ(t["event"]["action"], "agent-trust-promoted");
  EXPECT_EQ(t["user"]["target"]["name"], "aiops");
  EXPECT_FALSE(t.contains("host"));

  const auto hec = nlohmann::json::parse(HecEvent(testing::PromotionEvent(), "agg-1"));
  EXPECT_EQ(hec["sourcetype"], "tripline:audit:ocsf");
  EXPECT_EQ(hec["host"], "agg-1");
  EXPECT_DOUBLE_EQ(hec["time"].get<double>(), 1795578180.0);
  EXPECT_EQ(hec["event"]["class_uid"], 3004);

  const std::string bulk = BulkIndexLines(testing::ApprovalEvent(), "tripline-audit");
  const size_t nl = bulk.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(bulk.substr(0, nl)),
            nlohmann::json::parse(R"({"index":{"_id":"response-12","_index":"tripline-audit"}})"));
  EXPECT_EQ(nlohmann::json::parse(bulk.substr(nl + 1))["event"]["id"], "response-12");
}

}  // namespace
}  // namespace tripline::forward
