// The record and map layouts of bpf/include/events.h as the BPF compiler laid them out (the
// BTF of the objects the build makes) against the same structs as the sensor's decoder is
// compiled with, member by member: name, offset and size, in order. The decoder tests build
// their records from the decoder's own structs, so without this only the root tests, which
// load the programs, would notice the two sides disagreeing. No privileges needed.
#include <bpf/btf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "events.h"

namespace {

struct Member {
  std::string name;
  size_t offset;
  size_t size;
};

struct Layout {
  std::string name;
  size_t size;
  std::vector<Member> members;  // in declaration order
};

// One member of `type` as this compiler lays it out.
#define TL_MEMBER(type, field) \
  Member { #field, offsetof(type, field), sizeof(static_cast <type*>(nullptr)->field) }

// Every struct of events.h, every member in declaration order. A struct or member added to
// events.h and missing here fails EveryStructOfEventsHIsListed or the BTF comparison.
const std::vector<Layout>& Layouts() {
  static const std::vector<Layout> layouts = {
      {"tl_header",
       sizeof(tl_header),
       {TL_MEMBER(tl_header, type), TL_MEMBER(tl_header, version), TL_MEMBER(tl_header, size),
        TL_MEMBER(tl_header, ktime_ns), TL_MEMBER(tl_header, pid), TL_MEMBER(tl_header, tgid),
        TL_MEMBER(tl_header, ppid), TL_MEMBER(tl_header, uid), TL_MEMBER(tl_header, gid),
        TL_MEMBER(tl_header, login_uid), TL_MEMBER(tl_header, session_id),
        TL_MEMBER(tl_header, uts_inum), TL_MEMBER(tl_header, cgroup_id),
        TL_MEMBER(tl_header, comm)}},
      {"tl_endpoints",
       sizeof(tl_endpoints),
       {TL_MEMBER(tl_endpoints, local_addr), TL_MEMBER(tl_endpoints, remote_addr),
        TL_MEMBER(tl_endpoints, local_port), TL_MEMBER(tl_endpoints, remote_port),
        TL_MEMBER(tl_endpoints, family), TL_MEMBER(tl_endpoints, _pad)}},
      {"tl_login_record",
       sizeof(tl_login_record),
       {TL_MEMBER(tl_login_record, hdr), TL_MEMBER(tl_login_record, peer),
        TL_MEMBER(tl_login_record, pam_code), TL_MEMBER(tl_login_record, auth_pid),
        TL_MEMBER(tl_login_record, stage), TL_MEMBER(tl_login_record, _pad),
        TL_MEMBER(tl_login_record, service), TL_MEMBER(tl_login_record, user),
        TL_MEMBER(tl_login_record, rhost), TL_MEMBER(tl_login_record, tty)}},
      {"tl_file_open_record",
       sizeof(tl_file_open_record),
       {TL_MEMBER(tl_file_open_record, hdr), TL_MEMBER(tl_file_open_record, result),
        TL_MEMBER(tl_file_open_record, flags), TL_MEMBER(tl_file_open_record, mode),
        TL_MEMBER(tl_file_open_record, rule_id), TL_MEMBER(tl_file_open_record, match),
        TL_MEMBER(tl_file_open_record, path_source), TL_MEMBER(tl_file_open_record, path_len),
        TL_MEMBER(tl_file_open_record, path_truncated), TL_MEMBER(tl_file_open_record, _pad),
        TL_MEMBER(tl_file_open_record, path)}},
      {"tl_exec_record",
       sizeof(tl_exec_record),
       {TL_MEMBER(tl_exec_record, hdr), TL_MEMBER(tl_exec_record, argc),
        TL_MEMBER(tl_exec_record, args_len), TL_MEMBER(tl_exec_record, args_total),
        TL_MEMBER(tl_exec_record, max_args), TL_MEMBER(tl_exec_record, flags),
        TL_MEMBER(tl_exec_record, _pad), TL_MEMBER(tl_exec_record, parent_comm),
        TL_MEMBER(tl_exec_record, filename), TL_MEMBER(tl_exec_record, args)}},
      {"tl_net_record",
       sizeof(tl_net_record),
       {TL_MEMBER(tl_net_record, hdr), TL_MEMBER(tl_net_record, conn),
        TL_MEMBER(tl_net_record, direction), TL_MEMBER(tl_net_record, protocol),
        TL_MEMBER(tl_net_record, _pad)}},
      {"tl_utmp",
       sizeof(tl_utmp),
       {TL_MEMBER(tl_utmp, ut_type), TL_MEMBER(tl_utmp, _pad0), TL_MEMBER(tl_utmp, ut_pid),
        TL_MEMBER(tl_utmp, ut_line), TL_MEMBER(tl_utmp, ut_id), TL_MEMBER(tl_utmp, ut_user),
        TL_MEMBER(tl_utmp, ut_host), TL_MEMBER(tl_utmp, ut_exit_termination),
        TL_MEMBER(tl_utmp, ut_exit_exit), TL_MEMBER(tl_utmp, ut_session),
        TL_MEMBER(tl_utmp, ut_tv_sec), TL_MEMBER(tl_utmp, ut_tv_usec),
        TL_MEMBER(tl_utmp, ut_addr_v6), TL_MEMBER(tl_utmp, _reserved)}},
      {"tl_utmp_record",
       sizeof(tl_utmp_record),
       {TL_MEMBER(tl_utmp_record, hdr), TL_MEMBER(tl_utmp_record, peer),
        TL_MEMBER(tl_utmp_record, file), TL_MEMBER(tl_utmp_record, _pad),
        TL_MEMBER(tl_utmp_record, write_len), TL_MEMBER(tl_utmp_record, ut)}},
      {"tl_path_key",
       sizeof(tl_path_key),
       {TL_MEMBER(tl_path_key, prefixlen), TL_MEMBER(tl_path_key, data)}},
      {"tl_path_rule",
       sizeof(tl_path_rule),
       {TL_MEMBER(tl_path_rule, rule_id), TL_MEMBER(tl_path_rule, match)}},
      {"tl_name_key",
       sizeof(tl_name_key),
       {TL_MEMBER(tl_name_key, depth), TL_MEMBER(tl_name_key, len), TL_MEMBER(tl_name_key, head)}},
      {"tl_path_filter",
       sizeof(tl_path_filter),
       {TL_MEMBER(tl_path_filter, match_all), TL_MEMBER(tl_path_filter, depth_mask),
        TL_MEMBER(tl_path_filter, file_len_mask), TL_MEMBER(tl_path_filter, dir_len_mask)}},
      {"tl_file_id", sizeof(tl_file_id), {TL_MEMBER(tl_file_id, dev), TL_MEMBER(tl_file_id, ino)}},
      {"tl_counters",
       sizeof(tl_counters),
       {TL_MEMBER(tl_counters, ringbuf_drops), TL_MEMBER(tl_counters, helper_errors),
        TL_MEMBER(tl_counters, state_errors)}},
  };
  return layouts;
}

// The objects the build made (bpf/CMakeLists.txt: the programs', the linked skeleton
// object and layouts.bpf.o), ':'-separated.
std::vector<std::string> BpfObjects() {
  std::vector<std::string> out;
  std::stringstream list(TRIPLINE_BPF_OBJECTS);
  std::string path;
  while (std::getline(list, path, ':')) {
    if (!path.empty()) out.push_back(path);
  }
  return out;
}

std::string LayoutsObject() {
  for (const auto& path : BpfObjects()) {
    if (path.ends_with("/layouts.bpf.o")) return path;
  }
  return "";
}

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

BtfPtr ParseBtf(const std::string& path) {
  errno = 0;
  btf* b = btf__parse(path.c_str(), nullptr);
  if (b == nullptr) {
    ADD_FAILURE() << "btf__parse(" << path << "): " << std::strerror(errno);
  }
  return BtfPtr(b);
}

// Differences between struct `id` of `b` and `want`, one line each; empty when they agree.
std::vector<std::string> Compare(const btf* b, uint32_t id, const Layout& want) {
  std::vector<std::string> diffs;
  const btf_type* t = btf__type_by_id(b, id);
  if (t->size != want.size) {
    diffs.push_back(want.name + ": size " + std::to_string(t->size) + " in BPF, " +
                    std::to_string(want.size) + " in the decoder");
  }
  const uint16_t vlen = btf_vlen(t);
  if (vlen != want.members.size()) {
    diffs.push_back(want.name + ": " + std::to_string(vlen) + " members in BPF, " +
                    std::to_string(want.members.size()) + " listed for the decoder");
  }
  const btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < vlen && i < want.members.size(); ++i, ++m) {
    const Member& w = want.members[i];
    const std::string name = btf__name_by_offset(b, m->name_off);
    const uint32_t bit_offset = btf_member_bit_offset(t, i);
    const long size = btf__resolve_size(b, m->type);
    if (btf_member_bitfield_size(t, i) != 0 || bit_offset % 8 != 0) {
      diffs.push_back(want.name + "." + name + ": a bit field in BPF");
      continue;
    }
    if (name != w.name) {
      diffs.push_back(want.name + ": member " + std::to_string(i) + " is " + name + " in BPF, " +
                      w.name + " in the decoder");
      continue;
    }
    if (bit_offset / 8 != w.offset) {
      diffs.push_back(want.name + "." + name + ": offset " + std::to_string(bit_offset / 8) +
                      " in BPF, " + std::to_string(w.offset) + " in the decoder");
    }
    if (size < 0 || static_cast<size_t>(size) != w.size) {
      diffs.push_back(want.name + "." + name + ": size " + std::to_string(size) + " in BPF, " +
                      std::to_string(w.size) + " in the decoder");
    }
  }
  return diffs;
}

// Every struct named like one of Layouts() in `b`: name -> ids.
std::map<std::string, std::vector<uint32_t>> KnownStructs(const btf* b) {
  std::set<std::string> names;
  for (const auto& l : Layouts()) names.insert(l.name);
  std::map<std::string, std::vector<uint32_t>> out;
  const uint32_t count = btf__type_cnt(b);
  for (uint32_t id = 1; id < count; ++id) {
    const btf_type* t = btf__type_by_id(b, id);
    if (!btf_is_struct(t)) continue;
    const std::string name = btf__name_by_offset(b, t->name_off);
    if (names.contains(name)) out[name].push_back(id);
  }
  return out;
}

const Layout& LayoutNamed(const std::string& name) {
  for (const auto& l : Layouts()) {
    if (l.name == name) return l;
  }
  throw std::logic_error("no layout " + name);
}

TEST(RecordLayoutTest, EveryStructOfEventsHIsListed) {
  std::ifstream in(std::string(TRIPLINE_SOURCE_DIR) + "/bpf/include/events.h");
  ASSERT_TRUE(in) << "cannot read events.h";
  std::stringstream text;
  text << in.rdbuf();
  const std::string header = text.str();
  std::set<std::string> defined;
  const std::regex def(R"(^struct (\w+) \{)", std::regex::multiline);
  for (auto it = std::sregex_iterator(header.begin(), header.end(), def);
       it != std::sregex_iterator(); ++it) {
    defined.insert((*it)[1]);
  }
  std::set<std::string> listed;
  for (const auto& l : Layouts()) listed.insert(l.name);
  EXPECT_GE(defined.size(), 14u);
  EXPECT_EQ(defined, listed) << "a struct of events.h is missing from Layouts() here (and "
                                "from bpf/layouts.bpf.c)";
}

TEST(RecordLayoutTest, LayoutObjectHasEveryStructAsTheDecoderSeesIt) {
  const std::string path = LayoutsObject();
  ASSERT_FALSE(path.empty()) << "layouts.bpf.o is not among " << TRIPLINE_BPF_OBJECTS;
  BtfPtr b = ParseBtf(path);
  ASSERT_NE(b, nullptr);
  const auto found = KnownStructs(b.get());
  for (const auto& want : Layouts()) {
    auto it = found.find(want.name);
    if (it == found.end()) {
      ADD_FAILURE() << want.name << " is not in the BTF of " << path
                    << " (add it to struct tl_layouts in bpf/layouts.bpf.c)";
      continue;
    }
    ASSERT_EQ(it->second.size(), 1u) << want.name;
    EXPECT_THAT(Compare(b.get(), it->second[0], want), testing::IsEmpty()) << path;
  }
}

// The program objects carry in their BTF the structs their maps and globals use (the
// counters, the path tables' keys and values, the endpoints in the PAM state, ...). Each
// must agree with the decoder too, and the linked object must hold one layout per name.
TEST(RecordLayoutTest, ProgramObjectsAgreeWithTheDecoder) {
  size_t compared = 0;
  std::set<std::string> seen;
  for (const auto& path : BpfObjects()) {
    BtfPtr b = ParseBtf(path);
    if (b == nullptr) continue;
    for (const auto& [name, ids] : KnownStructs(b.get())) {
      if (path.ends_with("/tripline_probe.bpf.o")) {
        EXPECT_EQ(ids.size(), 1u) << name << " has " << ids.size() << " layouts in " << path;
      }
      for (uint32_t id : ids) {
        EXPECT_THAT(Compare(b.get(), id, LayoutNamed(name)), testing::IsEmpty()) << path;
        ++compared;
        if (!path.ends_with("/layouts.bpf.o")) seen.insert(name);
      }
    }
  }
  // The maps alone use these; if none is found, the objects were not what this test reads.
  for (const char* name : {"tl_counters", "tl_path_key", "tl_path_rule", "tl_endpoints"}) {
    EXPECT_TRUE(seen.contains(name)) << name << " in no program object";
  }
  EXPECT_GT(compared, 20u);
}

// The comparison itself: a member moved, resized or renamed is reported.
TEST(RecordLayoutTest, ComparisonReportsEveryKindOfDifference) {
  BtfPtr b = ParseBtf(LayoutsObject());
  ASSERT_NE(b, nullptr);
  const auto found = KnownStructs(b.get());
  ASSERT_TRUE(found.contains("tl_net_record"));
  const uint32_t id = found.at("tl_net_record")[0];
  const Layout& real = LayoutNamed("tl_net_record");
  ASSERT_THAT(Compare(b.get(), id, real), testing::IsEmpty());

  Layout moved = real;
  moved.members[2].offset += 1;
  EXPECT_THAT(Compare(b.get(), id, moved),
              testing::ElementsAre(testing::HasSubstr("tl_net_record.direction: offset")));
  Layout resized = real;
  resized.members[1].size = 32;
  resized.size = 128;
  EXPECT_THAT(Compare(b.get(), id, resized),
              testing::ElementsAre(testing::HasSubstr("tl_net_record: size 120"),
                                   testing::HasSubstr("tl_net_record.conn: size 40")));
  Layout swapped = real;
  std::swap(swapped.members[2], swapped.members[3]);
  EXPECT_THAT(Compare(b.get(), id, swapped), testing::SizeIs(2));
  Layout shorter = real;
  shorter.members.pop_back();
  EXPECT_THAT(Compare(b.get(), id, shorter),
              testing::ElementsAre(testing::HasSubstr("5 members in BPF, 4 listed")));
}

}  // namespace
