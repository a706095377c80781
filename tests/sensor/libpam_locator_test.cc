// LocateLibpam against temporary trees laid out like the distributions' library
// directories (Debian's multiarch /lib/x86_64-linux-gnu, Fedora's /usr/lib64) and with an
// ld.so.cache of their own; LdCacheLookup against cache images built here and against
// this host's /etc/ld.so.cache, cross-checked with ldconfig -p. No privileges needed.
#include "sensor/libpam_locator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/sensor/temp_tree.h"

namespace tripline::sensor {
namespace {

// The first bytes of this process's own executable: an ELF header of the sensor's class
// and machine, which is all the locator reads.
std::string OwnElfHeader() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  std::string head(64, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  EXPECT_TRUE(in) << "cannot read /proc/self/exe";
  return head;
}

// The same header with the other ELF class (32 <-> 64 bit).
std::string OtherClassElfHeader() {
  std::string head = OwnElfHeader();
  head[4] = head[4] == 2 ? 1 : 2;  // EI_CLASS
  return head;
}

// Installs libpam the way the packages do: the real file and the soname link to it.
void InstallLibpam(const TempTree& tree, const std::string& dir,
                   const std::string& contents = OwnElfHeader()) {
  tree.Write(dir + "/libpam.so.0.85.1", contents);
  tree.Symlink("libpam.so.0.85.1", dir + "/libpam.so.0");
}

std::string Canonical(const std::string& path) { return std::filesystem::canonical(path).string(); }

// A glibc-ld.so.cache1.1 image: header, entries, then the strings (offsets from the start
// of the header), optionally behind an old-format part.
std::vector<uint8_t> CacheImage(const std::vector<std::pair<std::string, std::string>>& entries,
                                const std::string& old_part = "") {
  const std::string magic = "glibc-ld.so.cache1.1";
  const size_t header = 48, entry = 24;
  std::string strings;
  std::vector<uint8_t> out(header + entry * entries.size(), 0);
  std::memcpy(out.data(), magic.data(), magic.size());
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(out.data() + off, &v, sizeof(v)); };
  put32(20, static_cast<uint32_t>(entries.size()));
  const size_t strings_at = out.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    const size_t e = header + i * entry;
    put32(e, 0x0303);  // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64, as ldconfig writes
    put32(e + 4, static_cast<uint32_t>(strings_at + strings.size()));
    strings += entries[i].first + '\0';
    put32(e + 8, static_cast<uint32_t>(strings_at + strings.size()));
    strings += entries[i].second + '\0';
  }
  put32(24, static_cast<uint32_t>(strings.size()));
  out.insert(out.end(), strings.begin(), strings.end());
  out.insert(out.begin(), old_part.begin(), old_part.end());
  return out;
}

void WriteCache(const TempTree& tree, const std::vector<uint8_t>& image) {
  tree.Write("/etc/ld.so.cache", std::string(image.begin(), image.end()));
}

TEST(LibpamLocatorTest, FindsDebianMultiarchLibpam) {
  TempTree tree;
  InstallLibpam(tree, "/lib/x86_64-linux-gnu");
  auto found = LocateLibpam({}, tree.root());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  // The file itself, symlinks resolved: uprobes attach to an inode.
  EXPECT_EQ(*found, Canonical(tree.root() + "/lib/x86_64-linux-gnu/libpam.so.0.85.1"));
}

TEST(LibpamLocatorTest, FindsFedoraLib64Libpam) {
  TempTree tree;
  InstallLibpam(tree, "/usr/lib64");
  auto found = LocateLibpam({}, tree.root());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, Canonical(tree.root() + "/usr/lib64/libpam.so.0.85.1"));
}

TEST(LibpamLocatorTest, MultiarchComesBeforeLib64AndLib) {
  TempTree tree;
  InstallLibpam(tree, "/usr/lib");
  InstallLibpam(tree, "/usr/lib64");
  InstallLibpam(tree, "/usr/lib/x86_64-linux-gnu");
  auto found = LocateLibpam({}, tree.root());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, Canonical(tree.root() + "/usr/lib/x86_64-linux-gnu/libpam.so.0.85.1"));
}

TEST(LibpamLocatorTest, TheLinkerCacheComesFirst) {
  TempTree tree;
  InstallLibpam(tree, "/lib/x86_64-linux-gnu");
  InstallLibpam(tree, "/opt/pam/lib");
  WriteCache(tree, CacheImage({{"libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"},
                               {"libpam.so.0", "/opt/pam/lib/libpam.so.0"}}));
  auto found = LocateLibpam({}, tree.root());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, Canonical(tree.root() + "/opt/pam/lib/libpam.so.0.85.1"));
}

TEST(LibpamLocatorTest, SkipsWhatCouldNotBeLoaded) {
  TempTree tree;
  // A cache entry for a file that is gone, a text file, an object of the other ELF class
  // and a dangling link; the one usable libpam is the last place looked.
  WriteCache(tree, CacheImage({{"libpam.so.0", "/gone/libpam.so.0"}}));
  tree.Write("/lib/x86_64-linux-gnu/libpam.so.0", "INPUT(libpam.so.0.85.1)\n");
  InstallLibpam(tree, "/usr/lib/x86_64-linux-gnu", OtherClassElfHeader());
  tree.Symlink("libpam.so.0.85.1", "/lib64/libpam.so.0");
  InstallLibpam(tree, "/usr/local/lib");
  auto found = LocateLibpam({}, tree.root());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, Canonical(tree.root() + "/usr/local/lib/libpam.so.0.85.1"));
}

TEST(LibpamLocatorTest, NoneIsNotFound) {
  TempTree tree;
  tree.Write("/lib/x86_64-linux-gnu/libc.so.6", OwnElfHeader());
  tree.Write("/usr/lib64/libpam.so.0", "not an object");
  auto found = LocateLibpam({}, tree.root());
  ASSERT_FALSE(found.ok()) << *found;
  EXPECT_TRUE(found.status().IsNotFound()) << found.status().ToString();
  EXPECT_THAT(found.status().message(), testing::HasSubstr("libpam not found"));
}

TEST(LibpamLocatorTest, AnOverrideIsTakenOrRefusedWithTheReason) {
  TempTree tree;
  InstallLibpam(tree, "/lib/x86_64-linux-gnu");
  InstallLibpam(tree, "/custom");
  auto taken = LocateLibpam(tree.root() + "/custom/libpam.so.0", tree.root());
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(*taken, Canonical(tree.root() + "/custom/libpam.so.0.85.1"));

  // A bad override is an error, never a silent fall back to the search.
  tree.Write("/custom/notelf.so", "text");
  auto text = LocateLibpam(tree.root() + "/custom/notelf.so", tree.root());
  ASSERT_FALSE(text.ok());
  EXPECT_TRUE(text.status().IsInvalidArgument()) << text.status().ToString();
  EXPECT_THAT(text.status().ToString(), testing::HasSubstr("libpam_path"));
  EXPECT_THAT(text.status().ToString(), testing::HasSubstr("not an ELF object"));

  tree.Write("/custom/lib32.so", OtherClassElfHeader());
  auto other = LocateLibpam(tree.root() + "/custom/lib32.so", tree.root());
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(other.status().ToString(), testing::HasSubstr("ELF class or machine differs"));

  auto missing = LocateLibpam(tree.root() + "/custom/missing.so", tree.root());
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();

  tree.Write("/custom/dir/x", "");
  auto dir = LocateLibpam(tree.root() + "/custom/dir", tree.root());
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.status().ToString(), testing::HasSubstr("not a regular file"));
}

TEST(LdCacheLookupTest, ListsEveryPathOfTheSonameInCacheOrder) {
  const auto image = CacheImage({{"libpam.so.0", "/lib/x86_64-linux-gnu/libpam.so.0"},
                                 {"libpamc.so.0", "/lib/x86_64-linux-gnu/libpamc.so.0"},
                                 {"libpam.so.0", "/lib/i386-linux-gnu/libpam.so.0"}});
  EXPECT_THAT(
      LdCacheLookup(image, "libpam.so.0"),
      testing::ElementsAre("/lib/x86_64-linux-gnu/libpam.so.0", "/lib/i386-linux-gnu/libpam.so.0"));
  EXPECT_THAT(LdCacheLookup(image, "libpam"), testing::IsEmpty());
  // Behind the old "ld.so-1.7.0" part, as older ldconfigs write it.
  const auto combined = CacheImage({{"libpam.so.0", "/usr/lib64/libpam.so.0"}},
                                   std::string("ld.so-1.7.0\0\0\0\0\0", 16));
  EXPECT_THAT(LdCacheLookup(combined, "libpam.so.0"),
              testing::ElementsAre("/usr/lib64/libpam.so.0"));
}

TEST(LdCacheLookupTest, DamagedImagesGiveNothingOrWhatIsIntact) {
  auto image = CacheImage({{"libpam.so.0", "/a/libpam.so.0"}, {"libpam.so.0", "/b/libpam.so.0"}});
  EXPECT_THAT(LdCacheLookup({}, "libpam.so.0"), testing::IsEmpty());
  std::vector<uint8_t> no_magic(image.begin() + 1, image.end());
  EXPECT_THAT(LdCacheLookup(no_magic, "libpam.so.0"), testing::IsEmpty());
  // Header only: the entries it announces are not there.
  std::vector<uint8_t> header_only(image.begin(), image.begin() + 48);
  EXPECT_THAT(LdCacheLookup(header_only, "libpam.so.0"), testing::IsEmpty());
  // The last string cut off: only the first entry is intact.
  std::vector<uint8_t> cut(image.begin(), image.end() - 4);
  EXPECT_THAT(LdCacheLookup(cut, "libpam.so.0"), testing::ElementsAre("/a/libpam.so.0"));
  // A count far beyond the data.
  auto huge = image;
  const uint32_t n = 0xffffffffu;
  std::memcpy(huge.data() + 20, &n, sizeof(n));
  EXPECT_THAT(LdCacheLookup(huge, "libpam.so.0"),
              testing::ElementsAre("/a/libpam.so.0", "/b/libpam.so.0"));
}

// This host's real cache says what ldconfig -p says for libc.
TEST(LdCacheLookupTest, AgreesWithLdconfigOnThisHost) {
  std::ifstream in("/etc/ld.so.cache", std::ios::binary);
  if (!in) GTEST_SKIP() << "no /etc/ld.so.cache on this host";
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  std::vector<std::string> expected;
  FILE* p = popen("ldconfig -p 2>/dev/null || /sbin/ldconfig -p", "r");
  ASSERT_NE(p, nullptr);
  char line[4096];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    // "\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6"
    std::string s(line);
    if (s.rfind("\tlibc.so.6 ", 0) != 0) continue;
    const size_t arrow = s.find(" => ");
    ASSERT_NE(arrow, std::string::npos) << s;
    expected.push_back(s.substr(arrow + 4, s.find_last_not_of('\n') - arrow - 3));
  }
  pclose(p);
  ASSERT_FALSE(expected.empty()) << "ldconfig -p lists no libc.so.6";
  EXPECT_EQ(LdCacheLookup(bytes, "libc.so.6"), expected);
}

}  // namespace
}  // namespace tripline::sensor
