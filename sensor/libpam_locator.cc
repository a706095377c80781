#include "sensor/libpam_locator.h"

#include <elf.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace tripline::sensor {
namespace {

constexpr std::string_view kSoname = "libpam.so.0";
constexpr std::string_view kCacheMagic = "glibc-ld.so.cache1.1";
constexpr size_t kCacheHeaderSize = 48;  // magic+version, nlibs, len_strings, flags, ...
constexpr size_t kCacheEntrySize = 24;   // flags, key, value, osversion, hwcap

struct ElfId {
  unsigned char elf_class = 0;
  uint16_t machine = 0;
  bool operator==(const ElfId&) const = default;
};

// Class and machine of an ELF file, or nullopt-like {0,0} when it is not one.
ElfId ReadElfId(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char buf[EI_NIDENT + 4] = {};
  if (!in.read(reinterpret_cast<char*>(buf), sizeof(buf))) return {};
  if (std::memcmp(buf, ELFMAG, SELFMAG) != 0) return {};
  ElfId id;
  id.elf_class = buf[EI_CLASS];
  // e_type (2 bytes) then e_machine (2 bytes), in the file's byte order; we only compare
  // against our own, so host order is right for every object we could load.
  std::memcpy(&id.machine, buf + EI_NIDENT + 2, sizeof(id.machine));
  return id;
}

const ElfId& SelfElfId() {
  static const ElfId id = ReadElfId("/proc/self/exe");
  return id;
}

// `path` canonical, when it is an ELF object this process could have loaded.
Result<std::string> Usable(const std::string& path) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::canonical(path, ec);
  if (ec) return Status::NotFound(path + ": " + ec.message());
  if (!std::filesystem::is_regular_file(canonical, ec)) {
    return Status::NotFound(path + ": not a regular file");
  }
  const ElfId id = ReadElfId(canonical);
  if (id.elf_class == 0) return Status::InvalidArgument(path + ": not an ELF object");
  if (SelfElfId().elf_class != 0 && !(id == SelfElfId())) {
    return Status::InvalidArgument(path + ": ELF class or machine differs from the sensor's");
  }
  return canonical.string();
}

uint32_t ReadU32(std::span<const uint8_t> b, size_t off) {
  uint32_t v;
  std::memcpy(&v, b.data() + off, sizeof(v));
  return v;
}

// NUL-terminated string at `off`, or empty when it runs off the end.
std::string_view CString(std::span<const uint8_t> b, size_t off) {
  if (off >= b.size()) return {};
  const void* nul = std::memchr(b.data() + off, 0, b.size() - off);
  if (nul == nullptr) return {};
  return {reinterpret_cast<const char*>(b.data() + off),
          static_cast<size_t>(static_cast<const uint8_t*>(nul) - (b.data() + off))};
}

// `path` (absolute) inside `root`.
std::string Under(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + path;
}

}  // namespace

std::vector<std::string> LdCacheLookup(std::span<const uint8_t> cache, std::string_view soname) {
  std::vector<std::string> out;
  std::string_view text(reinterpret_cast<const char*>(cache.data()), cache.size());
  const size_t start = text.find(kCacheMagic);
  if (start == std::string_view::npos) return out;
  std::span<const uint8_t> sub = cache.subspan(start);
  if (sub.size() < kCacheHeaderSize) return out;
  const uint32_t nlibs = ReadU32(sub, 20);
  // Offsets of strings are relative to the start of the new-format header.
  for (uint64_t i = 0; i < nlibs; ++i) {
    const uint64_t entry = kCacheHeaderSize + i * kCacheEntrySize;
    if (entry + kCacheEntrySize > sub.size()) break;
    const std::string_view key = CString(sub, ReadU32(sub, entry + 4));
    if (key != soname) continue;
    const std::string_view value = CString(sub, ReadU32(sub, entry + 8));
    if (!value.empty()) out.emplace_back(value);
  }
  return out;
}

Result<std::string> LocateLibpam(std::string_view override_path, const std::string& root) {
  if (!override_path.empty()) {
    Result<std::string> r = Usable(std::string(override_path));
    if (!r.ok()) return r.status().WithContext("libpam_path");
    return r;
  }
  std::vector<std::string> candidates;
  {
    std::ifstream in(Under(root, "/etc/ld.so.cache"), std::ios::binary);
    if (in) {
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
      for (const std::string& path : LdCacheLookup(bytes, kSoname)) {
        candidates.push_back(Under(root, path));
      }
    }
  }
  static constexpr const char* kDirs[] = {
      "/lib/x86_64-linux-gnu",
      "/usr/lib/x86_64-linux-gnu",
      "/lib/aarch64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu",
      "/lib/powerpc64le-linux-gnu",
      "/usr/lib/powerpc64le-linux-gnu",
      "/lib/s390x-linux-gnu",
      "/usr/lib/s390x-linux-gnu",
      "/lib64",
      "/usr/lib64",
      "/lib",
      "/usr/lib",
      "/usr/local/lib64",
      "/usr/local/lib",
  };
  for (const char* dir : kDirs) {
    candidates.push_back(Under(root, std::string(dir) + "/" + std::string(kSoname)));
  }
  for (const std::string& c : candidates) {
    Result<std::string> r = Usable(c);
    if (r.ok()) return r;
  }
  return Status::NotFound("libpam not found (" + std::string(kSoname) +
                          " in /etc/ld.so.cache and the standard library directories)");
}

}  // namespace tripline::sensor
