#include "sensor/delivery/sensor_id.h"

#include <sys/random.h>

#include <cerrno>
#include <filesystem>

#include "sensor/delivery/atomic_file.h"

namespace tripline::delivery {
namespace {
constexpr char kIdFile[] = "sensor_id";
}  // namespace

bool IsValidSensorId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> LoadOrCreateSensorId(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("create " + dir + ": " + ec.message());
  const std::string path = dir + "/" + kIdFile;
  Result<std::string> existing = ReadOwnFile(path);
  if (existing.ok()) {
    std::string id = *existing;
    while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
    if (!IsValidSensorId(id)) {
      return Status::Corruption(path + " does not hold a 32-digit hex sensor id");
    }
    return id;
  }
  if (!existing.status().IsNotFound()) return existing.status();

  unsigned char raw[16];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = ::getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : raw) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 0xf]);
  }
  TL_RETURN_IF_ERROR(WriteFileAtomically(dir, kIdFile, id + "\n"));
  return id;
}

}  // namespace tripline::delivery
