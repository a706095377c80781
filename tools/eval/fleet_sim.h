// FleetSim: a synthetic fleet with ground truth, for measuring what Tripline detects.
//
// A fleet of servers and the identities that use them, over `warmup_days` of ordinary work
// followed by `test_days` in which compromises are injected:
//   - people with habits: workdays, a usual start and end hour, one or two usual home /24s
//     (or the office /24), one to three usual hosts; password typos (one or two failures
//     in 5% of logins; three or four in 0.5%, the old password after a change), a login
//     from a new network now and then (travel);
//   - service accounts on schedules: from one server to a fixed set of others with a key,
//     every hour or few, the same command each time;
//   - agents (automation): from the CI host to many hosts at machine speed, every 15 min;
//   - admins who hop daily: office → bastion → two to four servers by SSH, sudo on each;
//   - compromises of varying stealth: a victim's account used from a new or a known
//     network, at usual or unusual hours, with or without password guessing first, then one
//     to four SSH hops with a little discovery. Every combination of the four is played.
//
// Events are built the way the sensor reports them (login stages, sessions, outbound and
// accepted connects, execs), one sensor per host, sequence numbers in time order. The
// labels are kept aside: which (sensor, seq) belong to which compromise, and which logins
// are benign sessions. Deterministic for a seed; the test period does not depend on the
// warm-up length, so runs with different warm-ups judge the same attacks and the same days.
//
// Threading: plain functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/event.h"

namespace tripline::eval {

struct FleetSpec {
  uint64_t seed = 1;
  int servers = 40;  // besides the bastion, the CI host and the backup host
  int people = 80;
  int admins = 6;
  int service_accounts = 8;
  int agents = 4;
  int warmup_days = 14;
  int test_days = 14;
  int compromises = 64;
  // Midnight UTC of the first test day (a Monday), in the past: the aggregator clamps event
  // times more than a few minutes ahead of its clock to its clock, which would fold a fleet
  // set in the future onto the moment of the run.
  int64_t test_start_ns = 1'766'966'400LL * 1'000'000'000LL;  // 2025-12-29T00:00:00Z
};

using EventKey = std::pair<std::string, uint64_t>;  // sensor id, seq

struct Compromise {
  int id = 0;
  std::string victim;
  std::string source;  // the attacker's address
  std::string entry_host;
  bool failures = false;      // password guessing before the login
  bool unusual_hour = false;  // outside the victim's hours
  bool new_network = false;   // from a /24 the victim never used
  int hops = 1;
  int64_t start_ns = 0;
  std::vector<EventKey> events;  // everything the attacker caused
  EventKey entry_login;          // the successful entry login (session-open stage)
  std::string Label() const;     // "c07 alice fail/3am/new-net/2 hops"
};

struct Fleet {
  FleetSpec spec;
  int64_t first_ns = 0;                               // start of the warm-up
  std::map<std::string, std::vector<Event>> sensors;  // sensor id → events by seq
  std::map<std::string, std::string> sensor_host;     // sensor id → host
  std::vector<Compromise> compromises;
  // Session-open login of every benign session (people, admins, services, agents), with
  // whether it falls in the test period.
  std::vector<std::pair<EventKey, bool>> benign_logins;
  uint64_t benign_sessions_test = 0;
  uint64_t benign_sessions_warmup = 0;
  uint64_t events = 0;
};

Fleet GenerateFleet(const FleetSpec& spec);

}  // namespace tripline::eval
